/**
 * `z4j-agent run`: the agent as its own process, watching BullMQ queues as a sidecar, attached to a
 * worker module, or both.
 *
 * @since 0.1.0
 */
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import type { EngineAdapter, EventSink } from "../engines/EngineAdapter.js"
import * as Z4j from "../layers/Z4j.js"
import { Agent, type AgentShape } from "../services/Agent.js"
import { AgentConfig } from "../services/AgentConfig.js"
import type { RunPlan } from "./runPlan.js"
import * as Sidecar from "./sidecar.js"

/**
 * The argument a worker module's function receives once the agent is built.
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerContext {
  /** The agent as an Effect service. */
  readonly agent: AgentShape
  /** The agent's synchronous, never-blocking event sink, for code outside Effect. */
  readonly sink: EventSink
  /** Registers an engine adapter for the rest of the agent's life. */
  readonly attachEngine: (adapter: EngineAdapter) => Promise<void>
  /** Aborted when the process starts shutting down. */
  readonly signal: AbortSignal
}

/**
 * The function form of a worker module's export. It may return, or resolve to, a function that is
 * called at shutdown before the agent disconnects. The returned Promise is awaited before the
 * process counts as started, so a function should not await a worker that runs until shutdown.
 *
 * @since 0.1.0
 * @category models
 */
export type WorkerFunction = (context: WorkerContext) => unknown

/**
 * The worker module could not be loaded or has an export the CLI cannot use.
 *
 * @since 0.1.0
 * @category errors
 */
export class WorkerModuleFailed extends Data.TaggedError("WorkerModuleFailed")<{
  readonly module: string
  readonly problem: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `Worker module ${this.module}: ${this.problem}`
  }
}

/**
 * Opens the Redis client and builds the BullMQ sidecar before the agent exists (see `Sidecar.prepare`).
 * Returns the layer that registers the adapter with the agent.
 */
const makeBullmqLayer = (plan: Sidecar.SidecarPlan) =>
  Effect.gen(function* () {
    const { Redis } = yield* Effect.tryPromise({
      try: () => import("ioredis"),
      catch: (cause) =>
        new WorkerModuleFailed({ module: "ioredis", problem: "cannot be loaded; install bullmq and ioredis", cause })
    })
    yield* Effect.logInfo("looking for BullMQ queues").pipe(
      Effect.annotateLogs({ redis: Sidecar.withoutPassword(plan.redisUrl), prefix: plan.prefix })
    )
    // BullMQ's blocking reads need a client that never gives up on a request.
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => new Redis(plan.redisUrl, { maxRetriesPerRequest: null })),
      (redis) => Effect.promise(() => redis.quit().catch(() => redis.disconnect()))
    )
    return yield* Sidecar.prepare(plan, client)
  })

const isWorkerLayer = (value: unknown): value is Layer.Layer<never, unknown, Z4j.Services> => Layer.isLayer(value)

const workerLayer = (specifier: string) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const location = path.resolve(specifier)
      const loaded = yield* Effect.tryPromise({
        try: () => import(pathToFileURL(location).href) as Promise<Record<string, unknown>>,
        catch: (cause) =>
          new WorkerModuleFailed({
            module: location,
            problem: `cannot be imported: ${cause instanceof Error ? cause.message : String(cause)}`,
            cause
          })
      })
      const entry = loaded.z4j ?? loaded.default
      if (entry === undefined) {
        yield* Effect.logInfo("worker module loaded; it exports no z4j entry, so it runs for its side effects").pipe(
          Effect.annotateLogs("module", location)
        )
        return
      }
      if (isWorkerLayer(entry)) {
        yield* Layer.buildWithScope(entry, yield* Effect.scope)
        yield* Effect.logInfo("worker module's layer built").pipe(Effect.annotateLogs("module", location))
        return
      }
      if (typeof entry !== "function") {
        return yield* new WorkerModuleFailed({
          module: location,
          problem: `its ${loaded.z4j === undefined ? "default export" : "z4j export"} is a ${typeof entry}; export a function that receives the agent, or an Effect Layer`
        })
      }

      const agent = yield* Agent
      const runtime = yield* Effect.runtime<never>()
      const controller = new AbortController()
      const context: WorkerContext = {
        agent,
        sink: agent.sink,
        attachEngine: (adapter) => Runtime.runPromise(runtime)(agent.attachEngine(adapter)),
        signal: controller.signal
      }
      const cleanup = yield* Effect.tryPromise({
        try: () => Promise.resolve((entry as WorkerFunction)(context)),
        catch: (cause) =>
          new WorkerModuleFailed({
            module: location,
            problem: `its function failed: ${cause instanceof Error ? cause.message : String(cause)}`,
            cause
          })
      })
      yield* Effect.addFinalizer(() =>
        Effect.gen(function* () {
          controller.abort()
          if (typeof cleanup !== "function") return
          yield* Effect.tryPromise(() => Promise.resolve((cleanup as () => unknown)())).pipe(
            Effect.catchAll((error) => Effect.logError("the worker module's shutdown function failed", error.error)),
            Effect.annotateLogs("module", location)
          )
        })
      )
      yield* Effect.logInfo("worker module attached").pipe(Effect.annotateLogs("module", location))
    })
  )

/** Logs the start and the stop, and handles SIGHUP by skipping the reconnect wait. */
const lifecycleLayer = Layer.scopedDiscard(
  Effect.gen(function* () {
    const agent = yield* Agent
    const config = yield* AgentConfig
    const annotations = { brainUrl: config.brainUrl, projectId: config.projectId, agentName: config.agentName }
    yield* Effect.logInfo("agent started").pipe(Effect.annotateLogs(annotations))
    yield* Effect.addFinalizer(() => Effect.logInfo("agent stopping").pipe(Effect.annotateLogs(annotations)))

    const runtime = yield* Effect.runtime<never>()
    const onHangup = () => {
      Runtime.runFork(runtime)(Effect.zipRight(Effect.logInfo("SIGHUP: reconnecting now"), agent.reconnectNow))
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("SIGHUP", onHangup)),
      () => Effect.sync(() => process.off("SIGHUP", onHangup))
    )
  })
)

/**
 * How long the process may take to stop after the first signal. The agent's own bounds are shorter:
 * Z4J_DRAIN_TIMEOUT_MILLIS (default 5000 ms) plus 2000 ms for the brain's close reply. This limit only
 * keeps a stuck shutdown from holding the process forever.
 */
export const shutdownLimitMillis = 15_000

/**
 * The agent did not finish stopping within {@link shutdownLimitMillis} of the first signal.
 *
 * @since 0.1.0
 * @category errors
 */
export class ShutdownTimedOut extends Data.TaggedError("ShutdownTimedOut")<{ readonly limitMillis: number }> {
  override get message(): string {
    return `the agent did not stop within ${this.limitMillis} ms of the signal; exiting anyway, and events not yet acknowledged may be lost`
  }
}

/**
 * Runs the agent and what the plan attaches to it until SIGTERM or SIGINT. Layers are released in
 * reverse: the worker module and the BullMQ watcher stop before the agent flushes and disconnects.
 *
 * The agent runs on a fiber of its own, which the runtime's own SIGTERM and SIGINT handling does not
 * interrupt, so its scope closes as a normal exit, after a log line that names the signal.
 *
 * @since 0.1.0
 * @category commands
 */
export const run = (plan: RunPlan): Effect.Effect<void, unknown> => {
  const agent = Z4j.layer(plan.options)
  const program = (stop: Deferred.Deferred<NodeJS.Signals>) =>
    Effect.scoped(
      Effect.gen(function* () {
        const sidecar = plan.bullmq === undefined ? Layer.empty : yield* makeBullmqLayer(plan.bullmq)
        const attached = Layer.mergeAll(
          sidecar,
          lifecycleLayer,
          plan.module === undefined ? Layer.empty : workerLayer(plan.module)
        )
        yield* Layer.build(attached.pipe(Layer.provide(agent)))
        const signal = yield* Deferred.await(stop)
        yield* Effect.logInfo(`${signal}: flushing the buffer and disconnecting`)
      })
    )
  // The agent runs on a daemon fiber, and this fiber waits for it without being interruptible, so the
  // process exits only after the drain and goodbye, or at the shutdown limit. A second signal exits at
  // once, without draining.
  return Effect.gen(function* () {
    const stop = yield* Deferred.make<NodeJS.Signals>()
    // Forked fibers inherit the region they are forked from; the agent's own fibers must stay interruptible.
    const fiber = yield* Effect.forkDaemon(Effect.interruptible(program(stop)))
    yield* Effect.async<void, unknown>((resume) => {
      let received = false
      let finished = false
      let deadline: NodeJS.Timeout | undefined
      const finish = (outcome: Effect.Effect<void, unknown>) => {
        if (finished) return
        finished = true
        clearTimeout(deadline)
        process.off("SIGTERM", onSignal)
        process.off("SIGINT", onSignal)
        resume(outcome)
      }
      const onSignal = (signal: NodeJS.Signals) => {
        if (received) {
          process.stderr.write(`z4j-agent: second ${signal}, exiting without waiting for the drain\n`)
          process.exit(1)
        }
        received = true
        Deferred.unsafeDone(stop, Effect.succeed(signal))
        // The runtime has already been asked to interrupt this fiber, so a failure returned from here
        // would be reported as a clean interruption. The limit therefore logs and sets the exit status itself.
        deadline = setTimeout(
          () =>
            finish(
              Effect.zipRight(
                Effect.logError(new ShutdownTimedOut({ limitMillis: shutdownLimitMillis }).message),
                Effect.sync(() => process.exit(1))
              )
            ),
          shutdownLimitMillis
        )
      }
      process.on("SIGTERM", onSignal)
      process.on("SIGINT", onSignal)
      fiber.addObserver((exit) => finish(exit))
    })
  }).pipe(Effect.uninterruptible)
}
