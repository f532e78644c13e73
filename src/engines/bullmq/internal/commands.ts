import type { Job, JobsOptions, Queue, Worker } from "bullmq"
import { UnrecoverableError } from "bullmq"
import * as Effect from "effect/Effect"
import type { Redis } from "ioredis"
import { CommandFailed, type CommandRequest, type CommandResult } from "../../EngineAdapter.js"
import { engineName, isoTime, priorityNumber, type Reporter } from "./events.js"
import type { JobRef, TaskIdCodec } from "./taskId.js"

/** The adapter state that command handlers use. */
export interface CommandContext {
  readonly adapterName: string
  readonly prefix: string
  readonly queues: ReadonlyMap<string, Queue>
  readonly workers: ReadonlyArray<Worker>
  readonly client: Redis
  readonly codec: TaskIdCodec
  /** The reporter of the running adapter, used to report the effect of a command right away. */
  readonly reporter: () => Reporter | undefined
}

/** The engine actions the adapter executes, advertised as its capabilities. */
export const engineActions = [
  "bulk_retry",
  "cancel_task",
  "pause_queue",
  "purge_queue",
  "rate_limit",
  "reconcile_task",
  "requeue_dead_letter",
  "resume_queue",
  "retry_task",
  "submit_task"
] as const

/** Upper bound of `bulk_retry`, the largest `max` the brain sends. */
export const maxBulkRetry = 10_000

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const fail = (reason: string, result?: Record<string, unknown>) =>
  Effect.fail(new CommandFailed(result === undefined ? { reason } : { reason, result }))

/** Runs a BullMQ call and turns its rejection into a {@link CommandFailed} that keeps BullMQ's message. */
const call = <A>(what: string, run: () => Promise<A>): Effect.Effect<A, CommandFailed> =>
  Effect.tryPromise({
    try: run,
    catch: (error) => new CommandFailed({ reason: `${what} failed: ${messageOf(error)}` })
  })

const stringParameter = (command: CommandRequest, name: string): string | undefined => {
  const value = command.parameters[name]
  return typeof value === "string" && value !== "" ? value : undefined
}

/**
 * Finds the job a command names: `parameters.task_id` in this adapter's task id form, else `target.id`,
 * which is `bullmq:<task id>` for retry and cancel and the bare task id for `reconcile_task`.
 */
export const jobRefOf = (codec: TaskIdCodec, command: CommandRequest): JobRef | undefined => {
  const fromParameters = stringParameter(command, "task_id")
  if (fromParameters !== undefined) {
    const ref = codec.parse(fromParameters)
    if (ref !== undefined) return ref
  }
  const target = command.target.id
  if (typeof target !== "string" || target === "") return undefined
  const enginePrefix = `${engineName}:`
  if (target.startsWith(enginePrefix)) {
    const ref = codec.parse(target.slice(enginePrefix.length))
    if (ref !== undefined) return ref
  }
  return codec.parse(target)
}

/** The queue a queue-level command names: `parameters.queue`, else `target.id`. */
export const queueNameOf = (command: CommandRequest): string | undefined =>
  stringParameter(command, "queue") ?? (typeof command.target.id === "string" ? command.target.id : undefined)

const queueOf = (context: CommandContext, name: string | undefined): Effect.Effect<Queue, CommandFailed> => {
  if (name === undefined) return fail("The command names no queue; pass parameters.queue")
  const queue = context.queues.get(name)
  if (queue === undefined) {
    return fail(
      `Queue "${name}" is not one of the queues of BullMQ adapter "${context.adapterName}" (${[...context.queues.keys()].join(", ")}); add it to the adapter's queues`
    )
  }
  return Effect.succeed(queue)
}

const jobOf = (
  context: CommandContext,
  command: CommandRequest
): Effect.Effect<{ ref: JobRef; queue: Queue; job: Job; taskId: string }, CommandFailed> =>
  Effect.gen(function* () {
    const ref = jobRefOf(context.codec, command)
    if (ref === undefined) {
      return yield* fail(
        `The command names no BullMQ job: expected parameters.task_id as "<queue>:<jobId>", got ${JSON.stringify(command.parameters.task_id ?? command.target.id ?? null)}`
      )
    }
    const queue = yield* queueOf(context, ref.queue)
    const taskId = context.codec.format(ref.queue, ref.jobId)
    const job = yield* call(`Reading job ${ref.jobId} of queue "${ref.queue}"`, () => queue.getJob(ref.jobId))
    if (job === undefined || job === null) {
      return yield* fail(`Job ${ref.jobId} was not found in queue "${ref.queue}" (removed, or never existed)`, {
        task_id: taskId
      })
    }
    return { ref, queue, job, taskId }
  })

const pendingStates = new Set(["waiting", "delayed", "prioritized", "paused", "waiting-children", "wait"])

/**
 * `retry_task`: runs the job again from its own data in Redis, never from the brain's copy of the
 * arguments (which is redacted). A failed or completed job is retried in place with `job.retry`; a job
 * that is still pending or running is left alone. Explicit `override_args`/`override_kwargs` add a new
 * job with the original name and the override as its data.
 */
const retryTask = (context: CommandContext, command: CommandRequest) =>
  Effect.gen(function* () {
    const { job, queue, taskId, ref } = yield* jobOf(context, command)
    const overrideArgs = command.parameters.override_args
    const overrideKwargs = command.parameters.override_kwargs
    if (isPresent(overrideArgs) || isPresent(overrideKwargs)) {
      const data = jobDataOf(overrideArgs, overrideKwargs)
      const added = yield* call(`Adding a copy of job ${ref.jobId} with the override data`, () =>
        queue.add(job.name, data, copyOptions(job, command))
      )
      return { task_id: taskId, new_task_id: context.codec.format(ref.queue, String(added.id)), action: "resubmitted" }
    }
    const state = yield* call(`Reading the state of job ${ref.jobId}`, () => job.getState())
    if (state !== "failed" && state !== "completed") {
      return yield* fail(
        `Job ${ref.jobId} of queue "${ref.queue}" is ${state}, so it is not retried; only failed or completed jobs are`,
        { task_id: taskId, state }
      )
    }
    const eta = etaMillis(command.parameters.eta_seconds ?? command.parameters.eta)
    if (eta !== undefined && eta > 0) {
      const added = yield* call(`Adding a delayed copy of job ${ref.jobId}`, () =>
        queue.add(job.name, job.data, { ...copyOptions(job, command), delay: eta })
      )
      return {
        task_id: taskId,
        new_task_id: context.codec.format(ref.queue, String(added.id)),
        action: "resubmitted",
        eta: isoTime(Date.now() + eta)
      }
    }
    yield* call(`Retrying job ${ref.jobId} of queue "${ref.queue}"`, () => job.retry(state))
    return { task_id: taskId, new_task_id: taskId, action: "retried", previous_state: state }
  })

const isPresent = (value: unknown): boolean =>
  value !== undefined &&
  value !== null &&
  !(Array.isArray(value) && value.length === 0) &&
  !(typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0)

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * Builds job data from the brain's `args` and `kwargs`. BullMQ job data is one value (usually an
 * object), and the adapter reports it as `args`. So a one-element `args` list or a bare object becomes
 * the data. Otherwise the data is `kwargs`, with any remaining `args` under `data.args`.
 */
export const jobDataOf = (args: unknown, kwargs: unknown): unknown => {
  const keywords = isPlainObject(kwargs) ? kwargs : {}
  if (isPlainObject(args)) return { ...args, ...keywords }
  if (Array.isArray(args) && args.length === 1 && Object.keys(keywords).length === 0) return args[0]
  if (Array.isArray(args) && args.length > 0) return { ...keywords, args }
  return keywords
}

const copyOptions = (job: Job, command: CommandRequest): JobsOptions => {
  const options: JobsOptions = {}
  if (job.opts?.attempts !== undefined) options.attempts = job.opts.attempts
  if (job.opts?.backoff !== undefined) options.backoff = job.opts.backoff
  const priority = priorityNumber(command.parameters.priority) ?? job.opts?.priority
  if (priority !== undefined && priority > 0) options.priority = priority
  return options
}

/** Converts seconds (a number) or an ISO time to a delay in milliseconds. */
const etaMillis = (eta: unknown): number | undefined => {
  if (typeof eta === "number" && Number.isFinite(eta)) return Math.max(0, Math.round(eta * 1000))
  if (typeof eta === "string" && eta !== "") {
    const seconds = Number(eta)
    if (Number.isFinite(seconds)) return Math.max(0, Math.round(seconds * 1000))
    const at = Date.parse(eta)
    if (Number.isFinite(at)) return Math.max(0, at - Date.now())
  }
  return undefined
}

/**
 * `cancel_task`: a pending job (waiting, delayed, prioritized, paused) is removed. An active job is first
 * aborted through the local Worker that runs it (`worker.cancelJob`, which only processors that take the
 * abort signal observe). If it is still active after `abortWaitMillis`, it is moved to failed with an
 * `UnrecoverableError` under the job's current lock token. BullMQ then does not retry it, and rejects
 * the worker's own completion. The result's `outcome` tells which of these happened.
 */
const cancelTask = (context: CommandContext, command: CommandRequest, abortWaitMillis = 2_000) =>
  Effect.gen(function* () {
    const { job, queue, taskId, ref } = yield* jobOf(context, command)
    const state = yield* call(`Reading the state of job ${ref.jobId}`, () => job.getState())
    const reason = `cancelled by operator${command.issuedBy === null ? "" : ` ${command.issuedBy}`} (command ${command.id})`

    if (pendingStates.has(state)) {
      const removed = yield* call(`Removing job ${ref.jobId} of queue "${ref.queue}"`, () => queue.remove(ref.jobId))
      if (removed !== 1) {
        return yield* fail(
          `Job ${ref.jobId} of queue "${ref.queue}" was not removed: BullMQ reported it or one of its dependencies locked`,
          { task_id: taskId, state }
        )
      }
      context.reporter()?.removed(ref.queue, ref.jobId, state)
      return { task_id: taskId, previous_state: state, outcome: "removed" }
    }
    if (state !== "active") {
      return yield* fail(`Job ${ref.jobId} of queue "${ref.queue}" is already ${state}; there is nothing to cancel`, {
        task_id: taskId,
        state
      })
    }

    // Older bullmq 5 releases have no Worker.cancelJob; with them the job goes straight to the move below.
    const signalled = context.workers.some(
      (worker) =>
        worker.name === ref.queue && typeof worker.cancelJob === "function" && worker.cancelJob(ref.jobId, reason)
    )
    if (signalled) {
      const after = yield* waitWhileActive(job, abortWaitMillis)
      if (after !== "active") {
        return { task_id: taskId, previous_state: state, outcome: "aborted", state: after }
      }
    }

    const lockKey = `${context.prefix}:${ref.queue}:${ref.jobId}:lock`
    const token = yield* call(`Reading the lock of job ${ref.jobId}`, () => context.client.get(lockKey))
    if (token === null) {
      const now = yield* call(`Reading the state of job ${ref.jobId}`, () => job.getState())
      if (now !== "active") return { task_id: taskId, previous_state: state, outcome: "finished", state: now }
      return yield* fail(
        `Job ${ref.jobId} of queue "${ref.queue}" is active but holds no lock, so it cannot be moved to failed; it will be handled as stalled`,
        { task_id: taskId, state }
      )
    }
    yield* call(`Moving active job ${ref.jobId} of queue "${ref.queue}" to failed`, () =>
      job.moveToFailed(new UnrecoverableError(reason), token, false)
    )
    return { task_id: taskId, previous_state: state, outcome: "moved_to_failed", signalled_worker: signalled }
  })

const waitWhileActive = (job: Job, timeoutMillis: number) =>
  Effect.gen(function* () {
    const deadline = Date.now() + timeoutMillis
    let state = yield* call(`Reading the state of job ${job.id}`, () => job.getState())
    while (state === "active" && Date.now() < deadline) {
      yield* Effect.sleep(25)
      state = yield* call(`Reading the state of job ${job.id}`, () => job.getState())
    }
    return state
  })

/**
 * `bulk_retry`: retries failed jobs, either those listed in `filter.task_ids` or, without a list, the
 * newest failed jobs of `filter.queue` (every queue of the adapter when absent), optionally only those
 * named `filter.name`. At most `max` jobs, capped at {@link maxBulkRetry}.
 */
const bulkRetry = (context: CommandContext, command: CommandRequest) =>
  Effect.gen(function* () {
    const filter = isPlainObject(command.parameters.filter) ? command.parameters.filter : {}
    const requested = typeof command.parameters.max === "number" ? command.parameters.max : maxBulkRetry
    const max = Math.max(1, Math.min(maxBulkRetry, Math.floor(requested)))
    const state = typeof filter.state === "string" ? filter.state : "failed"
    if (state !== "failed" && state !== "failure") {
      return yield* fail(`bulk_retry retries failed jobs only; filter.state is "${state}"`)
    }
    const counts = { retried: 0, skipped: 0, not_found: 0, failed: 0 }
    const errors: Array<string> = []
    const retryOne = (job: Job) =>
      Effect.tryPromise(() => job.retry("failed")).pipe(
        Effect.match({
          onSuccess: () => {
            counts.retried++
            return true
          },
          onFailure: (error) => {
            counts.failed++
            if (errors.length < 10) errors.push(`${job.queueName}:${job.id}: ${messageOf(error.error)}`)
            return false
          }
        })
      )

    if (Array.isArray(filter.task_ids)) {
      const ids = filter.task_ids.filter((id): id is string => typeof id === "string").slice(0, max)
      for (const id of ids) {
        const ref = context.codec.parse(id.startsWith(`${engineName}:`) ? id.slice(engineName.length + 1) : id)
        const queue = ref === undefined ? undefined : context.queues.get(ref.queue)
        if (ref === undefined || queue === undefined) {
          counts.not_found++
          continue
        }
        const job = yield* call(`Reading job ${ref.jobId}`, () => queue.getJob(ref.jobId))
        if (job === undefined || job === null) {
          counts.not_found++
          continue
        }
        const jobState = yield* call(`Reading the state of job ${ref.jobId}`, () => job.getState())
        if (jobState !== "failed") {
          counts.skipped++
          continue
        }
        yield* retryOne(job)
      }
      return { ...counts, max, errors }
    }

    const queueName = typeof filter.queue === "string" && filter.queue !== "" ? filter.queue : undefined
    const queues = queueName === undefined ? [...context.queues.values()] : [yield* queueOf(context, queueName)]
    const name = typeof filter.name === "string" && filter.name !== "" ? filter.name : undefined
    for (const queue of queues) {
      // Retried jobs leave the failed set, so the offset counts only the jobs left in it.
      let offset = 0
      while (counts.retried + counts.failed < max) {
        const page = yield* call(`Listing failed jobs of queue "${queue.name}"`, () =>
          queue.getJobs(["failed"], offset, offset + 499, false)
        )
        if (page.length === 0) break
        for (const job of page) {
          if (counts.retried + counts.failed >= max) break
          if (job === undefined || job === null || (name !== undefined && job.name !== name)) {
            if (job !== undefined && job !== null) counts.skipped++
            offset++
            continue
          }
          const retried = yield* retryOne(job)
          if (!retried) offset++
        }
      }
    }
    return { ...counts, max, errors }
  })

/** Waiting, delayed, prioritized and paused jobs: what a purge removes and what the heartbeat reports as depth. */
export const depthOf = async (client: Redis, prefix: string, queue: string): Promise<number> => {
  const key = (suffix: string) => `${prefix}:${queue}:${suffix}`
  const replies = await client
    .pipeline()
    .llen(key("wait"))
    .llen(key("paused"))
    .zcard(key("delayed"))
    .zcard(key("prioritized"))
    .exec()
  return (replies ?? []).reduce((sum, [error, count]) => (error === null ? sum + Number(count) : sum), 0)
}

/**
 * The `confirm_token` that `purge_queue` accepts without `force`: `<queue>:<depth>`, the queue name and
 * its depth (waiting, delayed, prioritized and paused jobs) as the operator saw it. A purge confirmed for
 * another depth is rejected, so jobs added after the operator looked are not removed unseen.
 */
export const purgeToken = (queue: string, depth: number): string => `${queue}:${depth}`

/**
 * `purge_queue`: `mode` `drain` (default) removes waiting, delayed, prioritized and paused jobs;
 * `clean` also removes completed and failed ones; `obliterate` deletes the whole queue (BullMQ refuses
 * while jobs are active). Requires `force: true` or a valid {@link purgeToken}.
 */
const purgeQueue = (context: CommandContext, command: CommandRequest) =>
  Effect.gen(function* () {
    const queue = yield* queueOf(context, queueNameOf(command))
    const before = yield* call(`Counting the jobs of queue "${queue.name}"`, () =>
      depthOf(context.client, context.prefix, queue.name)
    )
    const token = command.parameters.confirm_token
    if (command.parameters.force !== true && token !== purgeToken(queue.name, before)) {
      return yield* fail(
        `Purging queue "${queue.name}" needs force: true or confirm_token "<queue>:<depth>" for its current depth ${before}; the token given ${typeof token === "string" ? `was "${token}"` : "is missing"}`,
        { queue: queue.name, depth_before: before }
      )
    }
    const mode = stringParameter(command, "mode") ?? "drain"
    switch (mode) {
      case "drain":
        yield* call(`Draining queue "${queue.name}"`, () => queue.drain(true))
        break
      case "clean":
        yield* call(`Draining queue "${queue.name}"`, () => queue.drain(true))
        yield* call(`Cleaning completed jobs of queue "${queue.name}"`, () => queue.clean(0, 0, "completed"))
        yield* call(`Cleaning failed jobs of queue "${queue.name}"`, () => queue.clean(0, 0, "failed"))
        break
      case "obliterate":
        yield* call(`Obliterating queue "${queue.name}"`, () => queue.obliterate())
        break
      default:
        return yield* fail(`Unknown purge mode "${mode}"; use drain, clean or obliterate`)
    }
    const after = yield* call(`Counting the jobs of queue "${queue.name}"`, () =>
      depthOf(context.client, context.prefix, queue.name)
    )
    return { queue: queue.name, mode, depth_before: before, depth_after: after }
  })

/** `requeue_dead_letter`: BullMQ keeps dead letters in the failed set, so this retries one failed job. */
const requeueDeadLetter = (context: CommandContext, command: CommandRequest) =>
  Effect.gen(function* () {
    const { job, taskId, ref } = yield* jobOf(context, command)
    const state = yield* call(`Reading the state of job ${ref.jobId}`, () => job.getState())
    if (state !== "failed") {
      return yield* fail(
        `Job ${ref.jobId} of queue "${ref.queue}" is ${state}, not failed; only failed jobs are requeued`,
        {
          task_id: taskId,
          state
        }
      )
    }
    yield* call(`Requeueing job ${ref.jobId} of queue "${ref.queue}"`, () => job.retry("failed"))
    return { task_id: taskId, requeued: true }
  })

/** `submit_task` (and `schedule.fire`): adds a job named `name` (or `task_name`) to `queue`. */
const submitTask = (context: CommandContext, command: CommandRequest) =>
  Effect.gen(function* () {
    const name = stringParameter(command, "name") ?? stringParameter(command, "task_name")
    if (name === undefined) return yield* fail("submit_task needs parameters.name, the job name")
    const queueName =
      stringParameter(command, "queue") ?? (context.queues.size === 1 ? [...context.queues.keys()][0] : undefined)
    const queue = yield* queueOf(context, queueName)
    const options: JobsOptions = {}
    const delay = etaMillis(command.parameters.eta ?? command.parameters.eta_seconds)
    if (delay !== undefined && delay > 0) options.delay = delay
    const priority = priorityNumber(command.parameters.priority)
    if (priority !== undefined) options.priority = priority
    const data = jobDataOf(command.parameters.args, command.parameters.kwargs)
    const job = yield* call(`Adding job "${name}" to queue "${queue.name}"`, () => queue.add(name, data, options))
    const taskId = context.codec.format(queue.name, String(job.id))
    return { task_id: taskId, new_task_id: taskId, queue: queue.name, job_id: job.id ?? null }
  })

const durations: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000 }

/** Parses a Celery-style rate: `0` (no limit), `N` (per second), `N/s`, `N/m` or `N/h`. */
export const parseRate = (rate: unknown): { max: number; durationMillis: number } | "none" | undefined => {
  let text = ""
  if (typeof rate === "number") text = String(rate)
  else if (typeof rate === "string") text = rate.trim()
  const match = /^(\d+(?:\.\d+)?)(?:\s*\/\s*([smh]))?$/.exec(text)
  if (match === null) return undefined
  const count = Number(match[1])
  if (count === 0) return "none"
  const unit = durations[match[2] ?? "s"]!
  // BullMQ's limiter takes whole jobs per window, so a fractional rate widens the window instead.
  if (Number.isInteger(count)) return { max: count, durationMillis: unit }
  return { max: 1, durationMillis: Math.round(unit / count) }
}

/**
 * `rate_limit`: BullMQ limits a queue, not a job name, so the limit goes on the queues where jobs named
 * `task_name` were seen (or `parameters.queue`, or every queue of the adapter). It uses the queue's global
 * rate limit (`queue.setGlobalRateLimit`), which every worker of the queue reads from Redis on each fetch.
 * A Worker's own `limiter` option is fixed when the Worker is built, and it would reach only this process.
 */
const rateLimit = (context: CommandContext, command: CommandRequest) =>
  Effect.gen(function* () {
    const rate = parseRate(command.parameters.rate)
    if (rate === undefined) {
      return yield* fail(`Invalid rate ${JSON.stringify(command.parameters.rate ?? null)}; use 0, N, N/s, N/m or N/h`)
    }
    const taskName =
      stringParameter(command, "task_name") ?? (typeof command.target.id === "string" ? command.target.id : undefined)
    const explicit = stringParameter(command, "queue")
    const seenIn = taskName === undefined ? [] : (context.reporter()?.queuesOf(taskName) ?? [])
    let names: ReadonlyArray<string> = [...context.queues.keys()]
    if (explicit !== undefined) names = [explicit]
    else if (seenIn.length > 0) names = seenIn
    const applied: Array<string> = []
    for (const name of names) {
      const queue = yield* queueOf(context, name)
      const withLimits = queue as Queue & {
        setGlobalRateLimit?: (max: number, duration: number) => Promise<unknown>
        removeGlobalRateLimit?: () => Promise<unknown>
      }
      if (
        typeof withLimits.setGlobalRateLimit !== "function" ||
        typeof withLimits.removeGlobalRateLimit !== "function"
      ) {
        return yield* fail(
          "This BullMQ version has no queue-wide rate limit (Queue.setGlobalRateLimit); upgrade bullmq to set rates from z4j"
        )
      }
      if (rate === "none") {
        yield* call(`Removing the rate limit of queue "${name}"`, () => withLimits.removeGlobalRateLimit!())
      } else {
        yield* call(`Setting the rate limit of queue "${name}"`, () =>
          withLimits.setGlobalRateLimit!(rate.max, rate.durationMillis)
        )
      }
      applied.push(name)
    }
    return {
      task_name: taskName ?? null,
      queues: applied,
      scope: "queue",
      ...(rate === "none" ? { limit: null } : { limit: { max: rate.max, duration_ms: rate.durationMillis } })
    }
  })

const engineStates: Record<string, string> = {
  waiting: "pending",
  wait: "pending",
  delayed: "pending",
  prioritized: "pending",
  paused: "pending",
  "waiting-children": "pending",
  active: "started",
  completed: "success",
  failed: "failure"
}

/** `reconcile_task`: the job's state in Redis, in the brain's vocabulary; a job that is gone is `unknown`. */
const reconcileTask = (context: CommandContext, command: CommandRequest) =>
  Effect.gen(function* () {
    const ref = jobRefOf(context.codec, command)
    const taskId =
      ref === undefined
        ? (stringParameter(command, "task_id") ?? command.target.id ?? null)
        : context.codec.format(ref.queue, ref.jobId)
    const unknown = { task_id: taskId, engine_state: "unknown", finished_at: null, exception: null }
    if (ref === undefined) return unknown
    const queue = context.queues.get(ref.queue)
    if (queue === undefined) return unknown
    const job = yield* call(`Reading job ${ref.jobId}`, () => queue.getJob(ref.jobId))
    if (job === undefined || job === null) return unknown
    const state = yield* call(`Reading the state of job ${ref.jobId}`, () => job.getState())
    const engineState = engineStates[state] ?? "unknown"
    const finished = engineState === "success" || engineState === "failure"
    return {
      task_id: taskId,
      engine_state: engineState,
      finished_at: finished ? isoTime(job.finishedOn) : null,
      exception: engineState === "failure" ? (job.failedReason ?? null) : null
    }
  })

const pauseQueue = (context: CommandContext, command: CommandRequest, pause: boolean) =>
  Effect.gen(function* () {
    const queue = yield* queueOf(context, queueNameOf(command))
    yield* call(`${pause ? "Pausing" : "Resuming"} queue "${queue.name}"`, () =>
      pause ? queue.pause() : queue.resume()
    )
    const paused = yield* call(`Reading whether queue "${queue.name}" is paused`, () => queue.isPaused())
    return { queue: queue.name, paused }
  })

/** Executes one engine command. */
export const execute = (
  context: CommandContext,
  command: CommandRequest
): Effect.Effect<CommandResult, CommandFailed> => {
  switch (command.action) {
    case "retry_task":
      return retryTask(context, command)
    case "cancel_task":
      return cancelTask(context, command)
    case "bulk_retry":
      return bulkRetry(context, command)
    case "purge_queue":
      return purgeQueue(context, command)
    case "requeue_dead_letter":
      return requeueDeadLetter(context, command)
    case "submit_task":
    case "schedule.fire":
      return submitTask(context, command)
    case "rate_limit":
      return rateLimit(context, command)
    case "reconcile_task":
      return reconcileTask(context, command)
    case "pause_queue":
      return pauseQueue(context, command, true)
    case "resume_queue":
      return pauseQueue(context, command, false)
    default:
      return fail(
        `BullMQ adapter "${context.adapterName}" does not execute "${command.action}"; it executes ${engineActions.join(", ")}`
      )
  }
}

/** Whether `command` targets a job or queue of this adapter, for routing between adapters that share the engine name. */
export const handles = (
  context: CommandContext,
  command: CommandRequest,
  knownNames: () => ReadonlyArray<string>
): boolean => {
  const ref = jobRefOf(context.codec, command)
  if (ref !== undefined) return context.queues.has(ref.queue)
  switch (command.action) {
    case "bulk_retry": {
      const filter = isPlainObject(command.parameters.filter) ? command.parameters.filter : {}
      if (Array.isArray(filter.task_ids)) {
        return filter.task_ids.some((id) => {
          if (typeof id !== "string") return false
          const parsed = context.codec.parse(id.startsWith(`${engineName}:`) ? id.slice(engineName.length + 1) : id)
          return parsed !== undefined && context.queues.has(parsed.queue)
        })
      }
      return typeof filter.queue === "string" ? context.queues.has(filter.queue) : true
    }
    case "rate_limit": {
      const queue = stringParameter(command, "queue")
      if (queue !== undefined) return context.queues.has(queue)
      const name = stringParameter(command, "task_name") ?? command.target.id
      return typeof name === "string" && knownNames().includes(name)
    }
    case "purge_queue":
    case "pause_queue":
    case "resume_queue":
    case "submit_task":
    case "schedule.fire": {
      const queue = queueNameOf(command)
      return queue !== undefined && context.queues.has(queue)
    }
    default:
      return false
  }
}
