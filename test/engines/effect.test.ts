import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import type { CommandRequest, RegistryDelta, TaskEvent } from "../../src/engines/EngineAdapter.js"
import { Tasks } from "../../src/engines/effect/index.js"
import { isFloat } from "../../src/protocol/JsonValue.js"
import { Dispatcher } from "../../src/services/Dispatcher.js"
import * as EngineRegistry from "../../src/services/EngineRegistry.js"

class Boom extends Data.TaggedError("Boom")<{ readonly detail: string }> {
  override get message(): string {
    return `boom: ${this.detail}`
  }
}

/** A dispatcher that records what the engine sends to its sink. */
const recordingDispatcher = (events: Array<TaskEvent>, deltas: Array<RegistryDelta>) =>
  Layer.succeed(Dispatcher, {
    sink: { emit: (event) => void events.push(event), registry: (delta) => void deltas.push(delta) },
    emit: (event) => Effect.sync(() => void events.push(event)),
    flush: Effect.void,
    stats: Effect.succeed({
      acceptedTotal: events.length,
      droppedAtIntakeTotal: 0,
      rejectedTotal: 0,
      ackedTotal: 0,
      inFlightBatches: 0,
      lastFlushAtMillis: null
    })
  })

/** Builds the engine on a real EngineRegistry in the current scope. */
const harness = (options: Tasks.Options = {}) =>
  Effect.gen(function* () {
    const events: Array<TaskEvent> = []
    const deltas: Array<RegistryDelta> = []
    const layer = Tasks.layer({ worker: "test-worker", ...options }).pipe(
      Layer.provideMerge(EngineRegistry.layer),
      Layer.provide(recordingDispatcher(events, deltas))
    )
    const context = yield* Layer.build(layer)
    const tasks = Context.get(context, Tasks.Tasks)
    const registry = Context.get(context, EngineRegistry.EngineRegistry)
    const eventsOf = (taskId: string) => events.filter((event) => event.taskId === taskId)
    const kindsOf = (taskId: string) => eventsOf(taskId).map((event) => event.kind)
    return { tasks, registry, context, events, deltas, eventsOf, kindsOf }
  })

const command = (action: string, parameters: Record<string, unknown>): CommandRequest => ({
  id: "0190f0a0-0000-7000-8000-000000000000",
  action,
  target: { type: "task", id: typeof parameters.task_id === "string" ? `effect:${parameters.task_id}` : null },
  parameters,
  timeoutSeconds: 60,
  issuedBy: "operator"
})

/** An effect that signals when its body has started, then never ends. */
const blockForever = (started: Deferred.Deferred<void>) =>
  Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)

describe("Tasks", () => {
  it.scoped("adapter advertises the effect engine", () =>
    Effect.gen(function* () {
      const { registry } = yield* harness()
      const adapters = yield* registry.adapters
      expect(adapters.map((adapter) => adapter.name)).toEqual(["effect"])
      expect(adapters[0]?.engine).toBe("effect")
      expect([...(adapters[0]?.capabilities ?? [])].sort()).toEqual(["cancel_task", "retry_task", "submit_task"])
    })
  )

  it.scoped("run success reports received, started, succeeded", () =>
    Effect.gen(function* () {
      const { context, events } = yield* harness({ queue: "mail" })
      const effect = Effect.as(Effect.sleep("1500 millis"), 3)
      const fiber = yield* Effect.fork(
        Tasks.run("add", effect, { args: [1, 2], kwargs: { carry: true }, priority: "high" }).pipe(
          Effect.provide(context)
        )
      )
      yield* TestClock.adjust("1500 millis")
      const result = yield* Fiber.join(fiber)

      expect(result).toBe(3)
      expect(events.map((event) => event.kind)).toEqual(["task.received", "task.started", "task.succeeded"])
      const taskId = events[0]!.taskId
      for (const event of events) {
        expect(event.taskId).toBe(taskId)
        expect(event.engine).toBe("effect")
        expect(event.data.task_name).toBe("add")
      }
      expect(taskId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      const [received, started, succeeded] = events
      expect(received?.data).toEqual({
        task_name: "add",
        queue: "mail",
        args: [1, 2],
        kwargs: { carry: true },
        priority: "high"
      })
      expect(started?.data.worker).toBe("test-worker")
      expect(succeeded?.data.result).toBe(3)
      expect(succeeded?.data.runtime_ms).toBe(1500)
      const runtime = succeeded?.data.runtime
      expect(isFloat(runtime)).toBe(true)
      expect(isFloat(runtime) ? runtime.value : undefined).toBe(1.5)
    })
  )

  it.scoped("task pipes an effect through the service", () =>
    Effect.gen(function* () {
      const { context, events } = yield* harness()
      const result = yield* Effect.succeed("sent").pipe(Tasks.task("send", { args: ["a"] }), Effect.provide(context))
      expect(result).toBe("sent")
      expect(events.map((event) => event.kind)).toEqual(["task.received", "task.started", "task.succeeded"])
      expect(events[0]?.data.args).toEqual(["a"])
    })
  )

  it.scoped("run failure reports failed and returns the error", () =>
    Effect.gen(function* () {
      const { tasks, events } = yield* harness()
      const error = yield* Effect.flip(tasks.run("fail", Effect.fail(new Boom({ detail: "disk full" }))))

      expect(error).toBeInstanceOf(Boom)
      expect(error.detail).toBe("disk full")
      expect(events.map((event) => event.kind)).toEqual(["task.received", "task.started", "task.failed"])
      const failed = events[2]!
      expect(failed.data.exception).toBe("Boom: boom: disk full")
      expect(failed.data.traceback).toContain("disk full")
      expect(failed.data.task_name).toBe("fail")
      expect(yield* tasks.running).toEqual([])
    })
  )

  it.scoped("run defect reports failed and dies unchanged", () =>
    Effect.gen(function* () {
      const { tasks, events } = yield* harness()
      const exit = yield* Effect.exit(tasks.run("crash", Effect.die(new TypeError("x is undefined"))))

      expect(Exit.isFailure(exit)).toBe(true)
      expect(Cause.isDie(Exit.isFailure(exit) ? exit.cause : Cause.empty)).toBe(true)
      expect(events.map((event) => event.kind)).toEqual(["task.received", "task.started", "task.failed"])
      expect(events[2]?.data.exception).toBe("TypeError: x is undefined")
    })
  )

  it.scoped("run retries with its schedule", () =>
    Effect.gen(function* () {
      const { tasks, events } = yield* harness()
      const attempts = yield* Ref.make(0)
      const flaky = Effect.flatMap(
        Ref.updateAndGet(attempts, (n) => n + 1),
        (n) => (n < 3 ? Effect.fail(new Boom({ detail: `attempt ${n}` })) : Effect.succeed(`ok after ${n}`))
      )
      const fiber = yield* Effect.fork(tasks.run("flaky", flaky, { retry: Schedule.spaced("1 second") }))
      yield* TestClock.adjust("999 millis")
      expect(events.map((event) => event.kind)).toEqual(["task.received", "task.started", "task.retried"])
      yield* TestClock.adjust("1 millis")
      expect(events.map((event) => event.kind)).toEqual([
        "task.received",
        "task.started",
        "task.retried",
        "task.started",
        "task.retried"
      ])
      yield* TestClock.adjust("1 second")
      const result = yield* Fiber.join(fiber)

      expect(result).toBe("ok after 3")
      expect(events.map((event) => event.kind)).toEqual([
        "task.received",
        "task.started",
        "task.retried",
        "task.started",
        "task.retried",
        "task.started",
        "task.succeeded"
      ])
      expect(events.map((event) => event.data.retry_count)).toEqual([undefined, undefined, 1, 1, 2, 2, 2])
      expect(events[2]?.data.exception).toBe("Boom: boom: attempt 1")
      expect(events[4]?.data.exception).toBe("Boom: boom: attempt 2")
    })
  )

  it.scoped("run fails once its schedule is done", () =>
    Effect.gen(function* () {
      const { tasks, events } = yield* harness()
      const error = yield* Effect.flip(
        tasks.run("doomed", Effect.fail(new Boom({ detail: "always" })), { retry: Schedule.recurs(1) })
      )

      expect(error.detail).toBe("always")
      expect(events.map((event) => event.kind)).toEqual([
        "task.received",
        "task.started",
        "task.retried",
        "task.started",
        "task.failed"
      ])
      expect(events[4]?.data.retry_count).toBe(1)
    })
  )

  it.scoped("run does not retry defects", () =>
    Effect.gen(function* () {
      const { tasks, events } = yield* harness()
      const exit = yield* Effect.exit(tasks.run("crash", Effect.die("bug"), { retry: Schedule.recurs(3) }))

      expect(Exit.isFailure(exit)).toBe(true)
      expect(events.map((event) => event.kind)).toEqual(["task.received", "task.started", "task.failed"])
    })
  )

  it.scoped("interrupted run reports revoked", () =>
    Effect.gen(function* () {
      const { tasks, events } = yield* harness()
      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(tasks.run("stuck", blockForever(started)))
      yield* Deferred.await(started)
      const exit = yield* Fiber.interrupt(fiber)

      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(events.map((event) => event.kind)).toEqual(["task.received", "task.started", "task.revoked"])
      expect(events[2]?.data.reason).toBe("interrupted")
      expect(events[2]?.data.task_name).toBe("stuck")
      expect(yield* tasks.running).toEqual([])
    })
  )

  it.scoped("nested run reports its parent and root", () =>
    Effect.gen(function* () {
      const { tasks, events } = yield* harness()
      yield* tasks.run("outer", tasks.run("middle", tasks.run("inner", Effect.void)))

      const received = events.filter((event) => event.kind === "task.received")
      const [outer, middle, inner] = received
      expect(outer?.data.parent_task_id).toBeUndefined()
      expect(middle?.data.parent_task_id).toBe(outer?.taskId)
      expect(middle?.data.root_task_id).toBe(outer?.taskId)
      expect(inner?.data.parent_task_id).toBe(middle?.taskId)
      expect(inner?.data.root_task_id).toBe(outer?.taskId)
    })
  )

  it.scoped("cancel_task interrupts a running run", () =>
    Effect.gen(function* () {
      const { tasks, events } = yield* harness()
      const started = yield* Deferred.make<void>()
      const caller = yield* Effect.fork(tasks.run("long", blockForever(started)))
      yield* Deferred.await(started)
      const [taskId] = yield* tasks.running

      const result = yield* tasks.adapter.execute(command("cancel_task", { engine: "effect", task_id: taskId }))
      const exit = yield* Fiber.await(caller)

      expect(result).toEqual({ task_id: taskId, cancelled: true, state_before: "started" })
      expect(Exit.isFailure(exit)).toBe(true)
      expect(Cause.isInterruptedOnly(Exit.isFailure(exit) ? exit.cause : Cause.empty)).toBe(true)
      expect(events.map((event) => event.kind)).toEqual(["task.received", "task.started", "task.revoked"])
      expect(events[2]?.data.reason).toBe("cancel_task")
    })
  )

  it.scoped("cancel_task reads the id from the target", () =>
    Effect.gen(function* () {
      const { tasks } = yield* harness()
      const started = yield* Deferred.make<void>()
      const caller = yield* Effect.fork(tasks.run("long", blockForever(started)))
      yield* Deferred.await(started)
      const [taskId] = yield* tasks.running
      const request: CommandRequest = {
        ...command("cancel_task", {}),
        target: { type: "task", id: `effect:${taskId}` }
      }

      const result = yield* tasks.adapter.execute(request)
      expect(result).toEqual({ task_id: taskId, cancelled: true, state_before: "started" })
      expect(Exit.isInterrupted(yield* Fiber.await(caller))).toBe(true)
    })
  )

  it.scoped("cancel_task rejects unknown and finished ids", () =>
    Effect.gen(function* () {
      const { tasks, events } = yield* harness()
      const unknown = yield* Effect.flip(
        tasks.adapter.execute(command("cancel_task", { task_id: "0190f0a0-1111-7000-8000-000000000000" }))
      )
      expect(unknown.reason).toContain('No task "0190f0a0-1111-7000-8000-000000000000"')

      yield* tasks.run("quick", Effect.void)
      const finishedId = events[0]!.taskId
      const finished = yield* Effect.flip(tasks.adapter.execute(command("cancel_task", { task_id: finishedId })))
      expect(finished.reason).toContain("already finished (success)")
    })
  )

  it.scoped("retry_task reruns with the original args", () =>
    Effect.gen(function* () {
      const { tasks, events } = yield* harness()
      const calls = yield* Queue.unbounded<readonly [ReadonlyArray<unknown>, Readonly<Record<string, unknown>>]>()
      yield* tasks.register("charge", (args, kwargs) => Queue.offer(calls, [args, kwargs] as const))
      const first = yield* tasks.submit("charge", { args: ["acct-1", 4200], kwargs: { card: "4111 1111 1111 1111" } })
      expect(yield* Queue.take(calls)).toEqual([["acct-1", 4200], { card: "4111 1111 1111 1111" }])
      yield* Fiber.await(first.fiber)

      const result = yield* tasks.adapter.execute(
        command("retry_task", {
          engine: "effect",
          task_id: first.taskId,
          task_name: "charge",
          args: ["[REDACTED]", 4200],
          kwargs: { card: "[REDACTED]" },
          override_args: null,
          override_kwargs: null,
          eta_seconds: null,
          priority: null
        })
      )

      expect(yield* Queue.take(calls)).toEqual([["acct-1", 4200], { card: "4111 1111 1111 1111" }])
      const newTaskId = (result as { new_task_id: string }).new_task_id
      expect(result).toEqual({ task_id: first.taskId, new_task_id: newTaskId })
      expect(newTaskId).not.toBe(first.taskId)
      const received = events.find((event) => event.taskId === newTaskId && event.kind === "task.received")
      expect(received?.data.retried_from).toBe(first.taskId)
      expect(received?.data.args).toEqual(["acct-1", 4200])
    })
  )

  it.scoped("retry_task applies the operator's overrides", () =>
    Effect.gen(function* () {
      const { tasks } = yield* harness()
      const calls = yield* Queue.unbounded<readonly [ReadonlyArray<unknown>, Readonly<Record<string, unknown>>]>()
      yield* tasks.register("charge", (args, kwargs) => Queue.offer(calls, [args, kwargs] as const))
      const first = yield* tasks.submit("charge", { args: ["acct-1"], kwargs: { amount: 1 } })
      yield* Queue.take(calls)
      yield* Fiber.await(first.fiber)

      yield* tasks.adapter.execute(
        command("retry_task", { task_id: first.taskId, override_args: ["acct-2"], override_kwargs: null })
      )
      expect(yield* Queue.take(calls)).toEqual([["acct-2"], { amount: 1 }])
    })
  )

  it.scoped("retry_task rejects unregistered and evicted tasks", () =>
    Effect.gen(function* () {
      const { tasks, events } = yield* harness({ retainedTasks: 1 })
      yield* tasks.register("charge", () => Effect.void)

      yield* tasks.run("adhoc", Effect.void)
      const adhocId = events[0]!.taskId
      const unregistered = yield* Effect.flip(tasks.adapter.execute(command("retry_task", { task_id: adhocId })))
      expect(unregistered.reason).toContain('ran as "adhoc", which is not registered')

      const first = yield* tasks.submit("charge", { args: [1] })
      yield* Fiber.await(first.fiber)
      const second = yield* tasks.submit("charge", { args: [2] })
      yield* Fiber.await(second.fiber)
      const evicted = yield* Effect.flip(
        tasks.adapter.execute(command("retry_task", { task_id: first.taskId, task_name: "charge", args: [1] }))
      )
      expect(evicted.reason).toContain(`The arguments of task "${first.taskId}" are no longer held`)

      const unnamed = yield* Effect.flip(tasks.adapter.execute(command("retry_task", { task_id: first.taskId })))
      expect(unnamed.reason).toContain("the command names no task")
    })
  )

  it.scoped("submit_task waits for eta_seconds", () =>
    Effect.gen(function* () {
      const { tasks, kindsOf } = yield* harness()
      const calls = yield* Queue.unbounded<ReadonlyArray<unknown>>()
      yield* tasks.register("report", (args) => Queue.offer(calls, args))

      const result = yield* tasks.adapter.execute(
        command("submit_task", { name: "report", args: [5], kwargs: {}, queue: "reports", eta_seconds: 10 })
      )
      const taskId = (result as { new_task_id: string }).new_task_id
      expect(result).toEqual({ new_task_id: taskId })
      expect(kindsOf(taskId)).toEqual(["task.received"])

      yield* TestClock.adjust("9 seconds")
      expect(kindsOf(taskId)).toEqual(["task.received"])
      expect(yield* Queue.size(calls)).toBe(0)

      yield* TestClock.adjust("1 second")
      expect(yield* Queue.take(calls)).toEqual([5])
      yield* Effect.yieldNow()
      expect(kindsOf(taskId)).toEqual(["task.received", "task.started", "task.succeeded"])
    })
  )

  it.scoped("submit_task rejects unknown names and bad parameters", () =>
    Effect.gen(function* () {
      const { tasks } = yield* harness()
      yield* tasks.register("report", () => Effect.void)

      const unknown = yield* Effect.flip(tasks.adapter.execute(command("submit_task", { name: "missing" })))
      expect(unknown.reason).toContain('No task named "missing" is registered')
      const badArgs = yield* Effect.flip(tasks.adapter.execute(command("submit_task", { name: "report", args: "5" })))
      expect(badArgs.reason).toBe("submit_task: parameters.args must be a list, but it is string")
      const badEta = yield* Effect.flip(
        tasks.adapter.execute(command("submit_task", { name: "report", eta: "next tuesday" }))
      )
      expect(badEta.reason).toContain("parameters.eta must be an ISO 8601 time")
      const unsupported = yield* Effect.flip(tasks.adapter.execute(command("purge_queue", { queue: "q" })))
      expect(unsupported.reason).toContain("does not implement purge_queue")
    })
  )

  it.scoped("submit runs a registered task with its context", () =>
    Effect.gen(function* () {
      class Greeting extends Context.Tag("test/Greeting")<Greeting, string>() {}
      const { tasks, kindsOf, eventsOf } = yield* harness()
      yield* tasks
        .register("greet", (args) => Effect.map(Greeting, (greeting) => `${greeting}, ${String(args[0])}`))
        .pipe(Effect.provideService(Greeting, "hello"))

      const handle = yield* tasks.submit("greet", { args: ["ada"] })
      const exit = yield* Fiber.await(handle.fiber)

      expect(exit).toEqual(Exit.succeed("hello, ada"))
      expect(kindsOf(handle.taskId)).toEqual(["task.received", "task.started", "task.succeeded"])
      expect(eventsOf(handle.taskId)[2]?.data.result).toBe("hello, ada")
      const missing = yield* Effect.flip(tasks.submit("nope"))
      expect(missing.name).toBe("nope")
    })
  )

  it.scoped("register rejects a taken name", () =>
    Effect.gen(function* () {
      const { tasks, deltas } = yield* harness()
      yield* tasks.register("sync", () => Effect.void, { queue: "io" })
      const error = yield* Effect.flip(tasks.register("sync", () => Effect.succeed(1)))

      expect(error._tag).toBe("TaskNameTaken")
      expect(error.name).toBe("sync")
      expect(deltas).toEqual([{ engine: "effect", added: [{ name: "sync", queue: "io" }], removed: [] }])
    })
  )

  it.effect("scope close revokes submitted tasks", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { tasks, registry, kindsOf, eventsOf } = yield* Scope.extend(harness(), scope)
      const started = yield* Deferred.make<void>()
      yield* tasks.register("forever", () => blockForever(started))
      const handle = yield* tasks.submit("forever")
      yield* Deferred.await(started)
      expect((yield* registry.adapters).length).toBe(1)

      yield* Scope.close(scope, Exit.void)

      expect(kindsOf(handle.taskId)).toEqual(["task.received", "task.started", "task.revoked"])
      expect(eventsOf(handle.taskId)[2]?.data.reason).toBe("interrupted")
      expect(Exit.isInterrupted(yield* Fiber.await(handle.fiber))).toBe(true)
      expect(yield* tasks.running).toEqual([])
    })
  )

  it.effect("scope close revokes tasks not yet started", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const { tasks, kindsOf, eventsOf } = yield* Scope.extend(harness(), scope)
      yield* tasks.register("later", () => Effect.void)
      const handle = yield* tasks.submit("later")

      yield* Scope.close(scope, Exit.void)

      expect(kindsOf(handle.taskId)).toEqual(["task.received", "task.revoked"])
      expect(eventsOf(handle.taskId)[1]?.data.task_name).toBe("later")
      expect(yield* tasks.running).toEqual([])
    })
  )

  it.scoped("cancel_task times out on an uninterruptible task", () =>
    Effect.gen(function* () {
      const { tasks, kindsOf } = yield* harness({ cancelTimeout: "5 seconds" })
      const started = yield* Deferred.make<void>()
      const body = Effect.uninterruptible(
        Effect.zipRight(Deferred.succeed(started, undefined), Effect.sleep("1 minute"))
      )
      const caller = yield* Effect.fork(tasks.run("stubborn", body))
      yield* Deferred.await(started)
      const [taskId = ""] = yield* tasks.running

      const cancel = yield* Effect.fork(Effect.flip(tasks.adapter.execute(command("cancel_task", { task_id: taskId }))))
      yield* TestClock.adjust("5 seconds")
      const error = yield* Fiber.join(cancel)

      expect(error.reason).toContain("still running after 5s")
      expect(error.result).toEqual({ task_id: taskId, cancelled: false, state_before: "started" })
      expect(kindsOf(taskId)).toEqual(["task.received", "task.started"])

      yield* TestClock.adjust("1 minute")
      expect(Exit.isInterrupted(yield* Fiber.await(caller))).toBe(true)
      expect(kindsOf(taskId)).toEqual(["task.received", "task.started", "task.revoked"])
    })
  )

  it.scoped("cancel_task revokes a task waiting for its eta", () =>
    Effect.gen(function* () {
      const { tasks, kindsOf } = yield* harness()
      const calls = yield* Ref.make(0)
      yield* tasks.register("report", () => Ref.update(calls, (n) => n + 1))
      const submitted = yield* tasks.adapter.execute(command("submit_task", { name: "report", eta_seconds: 60 }))
      const taskId = (submitted as { new_task_id: string }).new_task_id

      const result = yield* tasks.adapter.execute(command("cancel_task", { task_id: taskId }))
      yield* TestClock.adjust("1 minute")

      expect(result).toEqual({ task_id: taskId, cancelled: true, state_before: "received" })
      expect(kindsOf(taskId)).toEqual(["task.received", "task.revoked"])
      expect(yield* Ref.get(calls)).toBe(0)
    })
  )

  it.scoped("handles matches only this engine's tasks", () =>
    Effect.gen(function* () {
      const { tasks, events } = yield* harness()
      const handles = tasks.adapter.handles
      yield* tasks.register("report", () => Effect.void)
      yield* tasks.run("report", Effect.void)
      const taskId = events[0]!.taskId

      expect(handles?.(command("retry_task", { task_id: taskId }))).toBe(true)
      expect(handles?.({ ...command("cancel_task", {}), target: { type: "task", id: `effect:${taskId}` } })).toBe(true)
      expect(handles?.(command("cancel_task", { task_id: "someone-else" }))).toBe(false)
      expect(handles?.(command("submit_task", { name: "report" }))).toBe(true)
      expect(handles?.(command("submit_task", { name: "unknown" }))).toBe(false)
    })
  )
})
