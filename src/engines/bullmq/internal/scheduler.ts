import type { JobSchedulerJson, Queue, RepeatOptions } from "bullmq"
import * as Effect from "effect/Effect"
import type { Redis } from "ioredis"
import {
  CommandFailed,
  type CommandRequest,
  type CommandResult,
  type ScheduleEntry,
  type SchedulerAdapter
} from "../../EngineAdapter.js"
import { isoTime } from "./events.js"
import { stateKey } from "./state.js"
import type { TaskIdCodec } from "./taskId.js"

/** The adapter state that the scheduler uses. */
export interface SchedulerContext {
  readonly name: string
  readonly adapterName: string
  readonly prefix: string
  readonly queues: ReadonlyMap<string, Queue>
  readonly client: Redis
  readonly codec: TaskIdCodec
}

/** A job scheduler taken out of BullMQ by `schedule.disable`, kept so that `schedule.enable` can re-create it. */
interface DisabledScheduler {
  readonly queue: string
  readonly scheduler: JobSchedulerJson
}

const disabledField = (queue: string, id: string) => `disabled:${queue}:${id}`

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const call = <A>(what: string, run: () => Promise<A>): Effect.Effect<A, CommandFailed> =>
  Effect.tryPromise({
    try: run,
    catch: (error) => new CommandFailed({ reason: `${what} failed: ${messageOf(error)}` })
  })

const fail = (reason: string) => Effect.fail(new CommandFailed({ reason }))

/** The schedule name on the brain: `<queue>:<scheduler id>`, because scheduler ids are unique per queue only. */
export const scheduleName = (queue: string, id: string): string => `${queue}:${id}`

const schedulerId = (scheduler: JobSchedulerJson): string => scheduler.id ?? scheduler.key

const toEntry = (queue: string, scheduler: JobSchedulerJson, enabled: boolean): ScheduleEntry => {
  const id = schedulerId(scheduler)
  const interval = scheduler.pattern === undefined || scheduler.pattern === null
  const data = scheduler.template?.data
  return {
    name: scheduleName(queue, id),
    task_name: scheduler.name,
    kind: interval ? "interval" : "cron",
    // Interval schedules are written as milliseconds with their unit, the form BullMQ's `every` takes.
    expression: interval ? `${scheduler.every ?? 0}ms` : String(scheduler.pattern),
    timezone: scheduler.tz ?? "UTC",
    queue,
    args: data === undefined ? [] : [data],
    kwargs: {},
    is_enabled: enabled,
    last_run_at: null,
    next_run_at: enabled ? isoTime(scheduler.next) : null,
    total_runs: scheduler.iterationCount ?? 0,
    external_id: id
  }
}

const repeatOptionsOf = (scheduler: JobSchedulerJson): Omit<RepeatOptions, "key"> => {
  const options: Omit<RepeatOptions, "key"> = {}
  if (scheduler.pattern !== undefined && scheduler.pattern !== null) options.pattern = scheduler.pattern
  if (scheduler.every !== undefined && scheduler.every !== null) options.every = Number(scheduler.every)
  if (scheduler.tz !== undefined && scheduler.tz !== null) options.tz = scheduler.tz
  if (scheduler.limit !== undefined && scheduler.limit !== null) options.limit = Number(scheduler.limit)
  if (scheduler.startDate !== undefined && scheduler.startDate !== null) options.startDate = Number(scheduler.startDate)
  if (scheduler.endDate !== undefined && scheduler.endDate !== null) options.endDate = Number(scheduler.endDate)
  if (scheduler.offset !== undefined && scheduler.offset !== null) options.offset = Number(scheduler.offset)
  return options
}

const templateOf = (scheduler: JobSchedulerJson) => ({
  name: scheduler.name,
  ...(scheduler.template?.data === undefined ? {} : { data: scheduler.template.data }),
  ...(scheduler.template?.opts === undefined ? {} : { opts: scheduler.template.opts })
})

const readDisabled = (context: SchedulerContext) =>
  call("Reading the disabled job schedulers", () =>
    context.client.hgetall(stateKey(context.prefix, context.adapterName))
  ).pipe(
    Effect.map((fields) => {
      const disabled: Array<DisabledScheduler> = []
      for (const [field, value] of Object.entries(fields)) {
        if (!field.startsWith("disabled:")) continue
        try {
          disabled.push(JSON.parse(value) as DisabledScheduler)
        } catch {
          // An unreadable entry is skipped, not fatal, but it still names the schedule in the snapshot.
          const [, queue = "", ...rest] = field.split(":")
          disabled.push({ queue, scheduler: { key: rest.join(":"), name: rest.join(":") } })
        }
      }
      return disabled
    })
  )

/**
 * Lists every job scheduler of every queue, and the disabled ones kept in the adapter's hash. Any failed
 * read fails the whole snapshot, because the brain deletes every schedule missing from a snapshot.
 */
const snapshot = (context: SchedulerContext): Effect.Effect<ReadonlyArray<ScheduleEntry>, CommandFailed> =>
  Effect.gen(function* () {
    const entries: Array<ScheduleEntry> = []
    for (const queue of context.queues.values()) {
      const schedulers = yield* call(`Listing the job schedulers of queue "${queue.name}"`, () =>
        queue.getJobSchedulers(0, -1, true)
      )
      for (const scheduler of schedulers) entries.push(toEntry(queue.name, scheduler, true))
    }
    const disabled = yield* readDisabled(context)
    const live = new Set(entries.map((entry) => entry.name))
    for (const { queue, scheduler } of disabled) {
      if (!context.queues.has(queue)) continue
      const entry = toEntry(queue, scheduler, false)
      if (!live.has(entry.name)) entries.push(entry)
    }
    return entries
  })

const parameter = (command: CommandRequest, name: string): string | undefined => {
  const value = command.parameters[name]
  return typeof value === "string" && value !== "" ? value : undefined
}

/**
 * Finds the queue and scheduler id a schedule command names. The brain puts the schedule name in
 * `schedule_id` (and in `schedule_name`), and the scheduler id in `external_id`. A name without a queue
 * part is looked up in every queue.
 */
const resolve = (context: SchedulerContext, command: CommandRequest) =>
  Effect.gen(function* () {
    const candidates = [
      parameter(command, "schedule_id"),
      parameter(command, "schedule_name"),
      parameter(command, "external_id")
    ].filter((value): value is string => value !== undefined)
    const disabled = yield* readDisabled(context)
    for (const candidate of candidates) {
      for (const queue of context.queues.values()) {
        const prefix = `${queue.name}:`
        const id = candidate.startsWith(prefix) ? candidate.slice(prefix.length) : candidate
        const live = yield* call(`Reading job scheduler "${id}" of queue "${queue.name}"`, () =>
          queue.getJobScheduler(id)
        )
        if (live !== undefined && live !== null) return { queue, id, live, disabled: undefined }
        const stored = disabled.find((entry) => entry.queue === queue.name && schedulerId(entry.scheduler) === id)
        if (stored !== undefined) return { queue, id, live: undefined, disabled: stored }
      }
    }
    return yield* fail(
      `No BullMQ job scheduler named ${JSON.stringify(candidates[0] ?? null)} in queues ${[...context.queues.keys()].join(", ")}; expected parameters.schedule_id as "<queue>:<scheduler id>"`
    )
  })

/**
 * Handles `schedule.enable`, `schedule.disable`, `schedule.delete` and `schedule.trigger_now`. BullMQ has
 * no disabled state for a job scheduler, so `disable` stores the scheduler (repeat options and job
 * template) in the adapter's Redis hash and removes it from BullMQ; `enable` upserts it again and clears
 * the stored copy. `trigger_now` adds one job from the template now, leaving the schedule unchanged.
 */
const execute = (context: SchedulerContext, command: CommandRequest): Effect.Effect<CommandResult, CommandFailed> =>
  Effect.gen(function* () {
    const target = yield* resolve(context, command)
    const name = scheduleName(target.queue.name, target.id)
    const hash = stateKey(context.prefix, context.adapterName)
    switch (command.action) {
      case "schedule.enable": {
        if (target.live !== undefined) return { schedule: name, is_enabled: true, changed: false }
        const stored = target.disabled!.scheduler
        yield* call(`Re-creating job scheduler "${target.id}" of queue "${target.queue.name}"`, () =>
          target.queue.upsertJobScheduler(target.id, repeatOptionsOf(stored), templateOf(stored))
        )
        yield* call("Clearing the disabled copy", () =>
          context.client.hdel(hash, disabledField(target.queue.name, target.id))
        )
        return { schedule: name, is_enabled: true, changed: true }
      }
      case "schedule.disable": {
        if (target.live === undefined) return { schedule: name, is_enabled: false, changed: false }
        const stored: DisabledScheduler = { queue: target.queue.name, scheduler: { ...target.live, id: target.id } }
        yield* call("Storing the disabled job scheduler", () =>
          context.client.hset(hash, disabledField(target.queue.name, target.id), JSON.stringify(stored))
        )
        yield* call(`Removing job scheduler "${target.id}" of queue "${target.queue.name}"`, () =>
          target.queue.removeJobScheduler(target.id)
        )
        return { schedule: name, is_enabled: false, changed: true }
      }
      case "schedule.delete": {
        if (target.live !== undefined) {
          yield* call(`Removing job scheduler "${target.id}" of queue "${target.queue.name}"`, () =>
            target.queue.removeJobScheduler(target.id)
          )
        }
        yield* call("Clearing the disabled copy", () =>
          context.client.hdel(hash, disabledField(target.queue.name, target.id))
        )
        return { schedule: name, deleted: true }
      }
      case "schedule.trigger_now": {
        const scheduler = target.live ?? target.disabled!.scheduler
        const template = templateOf(scheduler)
        const job = yield* call(`Adding a job from job scheduler "${target.id}"`, () =>
          target.queue.add(template.name, template.data ?? {}, { ...(template.opts ?? {}) })
        )
        return { schedule: name, task_id: context.codec.format(target.queue.name, String(job.id)) }
      }
      default:
        return yield* fail(
          `The BullMQ scheduler does not execute "${command.action}"; it executes schedule.enable, schedule.disable, schedule.delete and schedule.trigger_now`
        )
    }
  })

export const make = (context: SchedulerContext): SchedulerAdapter => ({
  name: context.name,
  capabilities: ["delete", "disable", "enable", "list", "trigger_now"],
  snapshot: snapshot(context),
  execute: (command) => execute(context, command)
})
