import { hostname } from "node:os"
import type { Job, Queue, QueueEvents, Worker } from "bullmq"
import type { EventKind, EventSink, TaskEvent } from "../../EngineAdapter.js"
import type { TaskIdCodec } from "./taskId.js"

/** The engine name every BullMQ adapter reports. */
export const engineName = "bullmq"

/** Logs from listeners, which run outside any fiber. */
export interface ListenerLog {
  readonly warning: (message: string, annotations: Readonly<Record<string, unknown>>) => void
}

/**
 * A set that evicts its oldest members past `capacity`, so it stays bounded on a long-running worker.
 * The insertion order is kept in a ring buffer: evicting through the Set's own iterator would cost time
 * proportional to the members already deleted, because V8 skips them on every new iteration.
 */
export class BoundedSet {
  private readonly members = new Set<string>()
  private readonly order: Array<string | undefined>
  private next = 0
  constructor(private readonly capacity: number) {
    this.order = new Array<string | undefined>(capacity)
  }
  has(member: string): boolean {
    return this.members.has(member)
  }
  /** Adds `member` and returns false when it was already present. */
  add(member: string): boolean {
    if (this.members.has(member)) return false
    const evicted = this.order[this.next]
    if (evicted !== undefined) this.members.delete(evicted)
    this.order[this.next] = member
    this.next = (this.next + 1) % this.capacity
    this.members.add(member)
    return true
  }
  get size(): number {
    return this.members.size
  }
  values(): IterableIterator<string> {
    return this.members.values()
  }
}

export const isoTime = (millis: number | null | undefined): string | null =>
  typeof millis === "number" && Number.isFinite(millis) && millis > 0 ? new Date(millis).toISOString() : null

/**
 * Maps a BullMQ priority to the brain's labels. BullMQ runs jobs without a priority (0) before any
 * prioritized job, and among prioritized jobs a lower number runs first; so 0 gets no label (the brain
 * then shows `normal`) and the ranges below mirror {@link priorityNumber}.
 */
export const priorityLabel = (priority: number | undefined): string | undefined => {
  if (priority === undefined || priority <= 0) return undefined
  if (priority <= 1) return "critical"
  if (priority <= 10) return "high"
  if (priority <= 100) return "normal"
  return "low"
}

/** Converts a brain priority label to the BullMQ priority `submit_task` uses, or undefined for other labels. */
export const priorityNumber = (label: unknown): number | undefined => {
  switch (label) {
    case "critical":
      return 1
    case "high":
      return 10
    case "normal":
      return 100
    case "low":
      return 1000
    default:
      return undefined
  }
}

/** Selects the job options reported as `kwargs`: the ones an operator reads when a job misbehaves. */
const jobOptions = (job: Job): Record<string, unknown> => {
  const options: Record<string, unknown> = {}
  const source = job.opts ?? {}
  if (source.attempts !== undefined) options.attempts = source.attempts
  if (source.backoff !== undefined) options.backoff = source.backoff
  if (source.delay !== undefined && source.delay > 0) options.delay = source.delay
  if (source.priority !== undefined && source.priority > 0) options.priority = source.priority
  if (source.lifo === true) options.lifo = true
  if (job.repeatJobKey !== undefined) options.repeat_job_key = job.repeatJobKey
  if (job.parentKey !== undefined) options.parent_key = job.parentKey
  return options
}

/** The label of a Worker in `data.worker` and in the heartbeat's worker details. */
export const workerLabel = (worker: Worker): string =>
  worker.opts?.name ?? `${hostname()}:${process.pid}:${worker.name}`

const errorText = (error: unknown): string => {
  if (error instanceof Error) return error.name === "Error" ? error.message : `${error.name}: ${error.message}`
  return String(error)
}

const isUnrecoverable = (error: unknown): boolean =>
  typeof error === "object" && error !== null && (error as { name?: unknown }).name === "UnrecoverableError"

/**
 * Turns what BullMQ reports about a job into {@link TaskEvent}s. Every event carries a dedupe key made
 * of the task id, the kind and the attempt, so that a job seen by both a local Worker and a QueueEvents
 * stream is reported once.
 */
export class Reporter {
  /** Dedupe keys of the events already emitted. */
  private readonly emitted = new BoundedSet(50_000)
  /**
   * Whether a QueueEvents stream reports jobs too. Without one, each event has a single source, so the
   * dedupe keys and the set of local jobs are skipped: they are a visible share of the per-job cost.
   */
  streamsActive = false
  /**
   * Task ids a local Worker has taken. The QueueEvents stream leaves their execution events to the Worker.
   * NOTE: when a worker in another process runs a retry of such a job, the stream does not report that
   * attempt. Only that process's own adapter reports it, if it has one.
   */
  readonly localJobs = new BoundedSet(50_000)
  /** The jobs each local Worker runs now (task id to job name), for the heartbeat's worker details. */
  readonly activeByWorker = new Map<Worker, Map<string, string>>()
  private readonly names = new BoundedSet(1_000)
  private readonly namesByQueue = new Map<string, Set<string>>()

  constructor(
    readonly sink: EventSink,
    readonly codec: TaskIdCodec,
    readonly log: ListenerLog
  ) {}

  /** Reports `name` to the registry the first time it is seen; the set of names is bounded. */
  noteName(name: string, queue: string): void {
    let queueNames = this.namesByQueue.get(queue)
    if (queueNames === undefined) {
      queueNames = new Set()
      this.namesByQueue.set(queue, queueNames)
    }
    if (queueNames.size < 1_000) queueNames.add(name)
    if (this.names.has(name) || this.names.size >= 1_000) return
    this.names.add(name)
    try {
      this.sink.registry({ engine: engineName, added: [{ name, queue }], removed: [] })
    } catch (error) {
      this.log.warning("the registry sink threw; the task name is not reported", { task_name: name, error })
    }
  }

  /** Returns the job names seen so far, in one queue or in all. */
  knownNames(queue?: string): ReadonlyArray<string> {
    if (queue !== undefined) return [...(this.namesByQueue.get(queue) ?? [])]
    return [...this.names.values()]
  }

  /** Returns the queues where a job named `name` was seen. */
  queuesOf(name: string): ReadonlyArray<string> {
    return [...this.namesByQueue.entries()].filter(([, names]) => names.has(name)).map(([queue]) => queue)
  }

  /** Emits `event` unless an event with the same dedupe key went out before. */
  emit(event: TaskEvent, dedupeKey: string | undefined): void {
    if (this.streamsActive && dedupeKey !== undefined && !this.emitted.add(dedupeKey)) return
    try {
      this.sink.emit(event)
    } catch (error) {
      this.log.warning("the event sink threw; the event is lost", { task_id: event.taskId, kind: event.kind, error })
    }
  }

  /** Builds and emits one event about `job`; `attempt` goes into the dedupe key. */
  emitJob(
    kind: EventKind,
    queue: string,
    job: Job,
    attempt: number | undefined,
    data: Record<string, unknown>,
    occurredAtMillis?: number
  ): void {
    const taskId = this.codec.format(queue, String(job.id))
    this.noteName(job.name, queue)
    const event: TaskEvent = {
      kind,
      engine: engineName,
      taskId,
      ...(occurredAtMillis !== undefined && occurredAtMillis > 0 ? { occurredAt: new Date(occurredAtMillis) } : {}),
      data: withBaseData(queue, job, data)
    }
    this.emit(event, attempt === undefined ? undefined : `${taskId}|${kind}|${attempt}`)
  }

  /** Emits an event about a job whose hash is gone, with what the stream entry holds. */
  emitBare(kind: EventKind, queue: string, jobId: string, data: Record<string, unknown>, dedupeKey?: string): void {
    const taskId = this.codec.format(queue, jobId)
    this.emit({ kind, engine: engineName, taskId, data: { queue, job_id: jobId, ...data } }, dedupeKey)
  }

  received(queue: string, job: Job): void {
    this.emitJob("task.received", queue, job, 0, { args: job.data, kwargs: jobOptions(job) }, job.timestamp)
  }

  started(queue: string, job: Job, worker: string | undefined): void {
    this.emitJob(
      "task.started",
      queue,
      job,
      job.attemptsStarted,
      { worker: worker ?? job.processedBy ?? null, attempt: job.attemptsStarted },
      job.processedOn
    )
  }

  /** Progress is reported as `task.started` with `data.progress`, because the brain stores unknown kinds as `unknown`. */
  progress(queue: string, job: Job, progress: unknown, worker: string | undefined): void {
    this.emitJob("task.started", queue, job, undefined, { worker: worker ?? job.processedBy ?? null, progress })
  }

  succeeded(queue: string, job: Job, result: unknown): void {
    this.emitJob(
      "task.succeeded",
      queue,
      job,
      job.attemptsMade,
      { result, runtime_ms: runtimeMillis(job), retry_count: retries(job) },
      job.finishedOn
    )
  }

  /** A failed attempt: `task.retried` when BullMQ will run the job again, `task.failed` when it will not. */
  failedAttempt(queue: string, job: Job, error: unknown): void {
    const attempts = job.opts?.attempts ?? 1
    const final = typeof job.finishedOn === "number" || isUnrecoverable(error) || job.attemptsMade >= attempts
    const failure = {
      exception: error === undefined ? (job.failedReason ?? null) : errorText(error),
      traceback: traceback(job, error)
    }
    if (final) {
      this.emitJob(
        "task.failed",
        queue,
        job,
        job.attemptsMade,
        { ...failure, runtime_ms: runtimeMillis(job), retry_count: retries(job) },
        job.finishedOn
      )
    } else {
      this.emitJob("task.retried", queue, job, job.attemptsMade, {
        ...failure,
        retry_count: job.attemptsMade,
        ...(job.delay > 0 ? { eta: isoTime(Date.now() + job.delay) } : {})
      })
    }
  }

  /** Reports a job whose lock expired. BullMQ moves it back to wait, so it is a retry with `data.stalled`. */
  stalled(queue: string, job: Job | undefined, jobId: string): void {
    const data = {
      stalled: true,
      reason: "the job's lock expired before its worker renewed it, so BullMQ moved it back to wait"
    }
    if (job === undefined) {
      this.emitBare("task.retried", queue, jobId, data)
      return
    }
    this.emitJob("task.retried", queue, job, undefined, {
      ...data,
      retry_count: job.attemptsMade,
      stalled_count: job.stalledCounter
    })
  }

  /** Reports a removed job, whose hash is gone, as `task.revoked`. */
  removed(queue: string, jobId: string, previousState: string | undefined): void {
    this.emitBare(
      "task.revoked",
      queue,
      jobId,
      { reason: "removed", previous_state: previousState ?? null },
      `${this.codec.format(queue, jobId)}|task.revoked|0`
    )
  }

  /**
   * Reports the events of a Worker running in this process. Returns the function that removes the
   * listeners. Every listener catches what it throws, so nothing reaches BullMQ's emitter.
   */
  attachWorker(worker: Worker): () => void {
    const queue = worker.name
    const label = workerLabel(worker)
    const active = new Map<string, string>()
    this.activeByWorker.set(worker, active)
    const guard =
      <A extends ReadonlyArray<unknown>>(name: string, body: (...args: A) => void) =>
      (...args: A): void => {
        try {
          body(...args)
        } catch (error) {
          this.log.warning("reporting a Worker event failed; the event is not reported", {
            queue,
            worker_event: name,
            error
          })
        }
      }
    const onActive = guard("active", (job: Job) => {
      const taskId = this.codec.format(queue, String(job.id))
      if (this.streamsActive) this.localJobs.add(taskId)
      if (active.size < 10_000) active.set(taskId, job.name)
      if (job.attemptsStarted <= 1) this.received(queue, job)
      this.started(queue, job, label)
    })
    const onProgress = guard("progress", (job: Job, progress: unknown) => this.progress(queue, job, progress, label))
    const onCompleted = guard("completed", (job: Job, result: unknown) => {
      active.delete(this.codec.format(queue, String(job.id)))
      this.succeeded(queue, job, result)
    })
    const onFailed = guard("failed", (job: Job | undefined, error: Error) => {
      if (job === undefined) return
      active.delete(this.codec.format(queue, String(job.id)))
      this.failedAttempt(queue, job, error)
    })
    worker.on("active", onActive)
    worker.on("progress", onProgress)
    worker.on("completed", onCompleted)
    worker.on("failed", onFailed)
    return () => {
      this.activeByWorker.delete(worker)
      worker.off("active", onActive)
      worker.off("progress", onProgress)
      worker.off("completed", onCompleted)
      worker.off("failed", onFailed)
    }
  }
}

/**
 * Adds the keys every job event carries to `data`, in place. The job's timestamps (enqueued, processed,
 * finished) are the events' `occurredAt` instead of data keys, because formatting dates is a visible part
 * of the per-event cost on a busy worker.
 */
const withBaseData = (queue: string, job: Job, data: Record<string, unknown>): Record<string, unknown> => {
  data.task_name = job.name
  data.queue = queue
  data.job_id = job.id ?? null
  data.attempts = job.opts?.attempts ?? 1
  data.attempts_made = job.attemptsMade
  const label = priorityLabel(job.opts?.priority ?? job.priority)
  if (label !== undefined) data.priority = label
  return data
}

const runtimeMillis = (job: Job): number | null =>
  typeof job.finishedOn === "number" && typeof job.processedOn === "number"
    ? Math.max(0, job.finishedOn - job.processedOn)
    : null

const retries = (job: Job): number => Math.max(0, job.attemptsMade - 1)

const traceback = (job: Job, error: unknown): string | null => {
  if (error instanceof Error && typeof error.stack === "string") return error.stack
  const stack = job.stacktrace
  return Array.isArray(stack) && stack.length > 0 ? String(stack[stack.length - 1]) : null
}

/** The Queue used to fetch the jobs named in a QueueEvents stream, and that stream. */
export interface StreamSource {
  readonly queue: Queue
  readonly events: QueueEvents
}

interface StreamEntry {
  readonly id: string
  ready: boolean
  emit: (() => void) | undefined
}

/** The largest number of stream entries whose job fetch may be in flight before new entries are reported without one. */
const maxPendingFetches = 10_000

/**
 * Reports the entries of one queue's event stream (QueueEvents), for jobs processed by any worker. An
 * entry that needs the job's hash (name, data, attempts) fetches it. Entries are emitted in stream order
 * even though fetches finish out of order. `cursor` advances only past emitted entries, so the saved
 * cursor is safe to resume from.
 */
export class StreamReporter {
  private readonly entries: Array<StreamEntry> = []
  private head = 0
  private readonly detach: () => void
  private idleWaiters: Array<() => void> = []
  /** The id of the last entry emitted (or skipped). */
  cursor: string | undefined
  /** Entries seen, for health and tests. */
  seen = 0

  constructor(
    private readonly reporter: Reporter,
    private readonly source: StreamSource,
    private readonly fetchJob: (queue: Queue, jobId: string) => Promise<Job | undefined>
  ) {
    reporter.streamsActive = true
    const events = source.events
    const names = ["added", "active", "progress", "completed", "failed", "waiting", "delayed", "removed", "stalled"]
    const listeners = names.map(
      (name) => [name, (args: Record<string, unknown>, id: string) => this.onEntry(name, args, id)] as const
    )
    for (const [name, listener] of listeners) events.on(name as "added", listener)
    this.detach = () => {
      for (const [name, listener] of listeners) events.off(name as "added", listener)
    }
  }

  get queueName(): string {
    return this.source.queue.name
  }

  stop(): void {
    this.detach()
  }

  /** Resolves when every entry received so far is emitted. */
  idle(): Promise<void> {
    if (this.head >= this.entries.length) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  private onEntry(name: string, args: Record<string, unknown>, id: string): void {
    try {
      this.seen++
      const entry: StreamEntry = { id, ready: false, emit: undefined }
      this.entries.push(entry)
      const plan = this.plan(name, args)
      if (plan === undefined) {
        entry.ready = true
      } else if (plan.needsJob && this.entries.length - this.head <= maxPendingFetches) {
        const jobId = String(args.jobId)
        this.fetchJob(this.source.queue, jobId).then(
          (job) => {
            entry.emit = () => plan.report(job)
            entry.ready = true
            this.drain()
          },
          (error: unknown) => {
            this.reporter.log.warning("fetching a job for its QueueEvents entry failed; reporting the entry alone", {
              queue: this.queueName,
              job_id: jobId,
              stream_id: id,
              error
            })
            entry.emit = () => plan.report(undefined)
            entry.ready = true
            this.drain()
          }
        )
        return
      } else {
        entry.emit = () => plan.report(undefined)
        entry.ready = true
      }
      this.drain()
    } catch (error) {
      this.reporter.log.warning("reporting a QueueEvents entry failed; the entry is skipped", {
        queue: this.queueName,
        stream_id: id,
        error
      })
    }
  }

  private drain(): void {
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head]!
      if (!entry.ready) return
      try {
        entry.emit?.()
      } catch (error) {
        this.reporter.log.warning("reporting a QueueEvents entry failed; the entry is skipped", {
          queue: this.queueName,
          stream_id: entry.id,
          error
        })
      }
      this.cursor = entry.id
      this.head++
    }
    this.entries.length = 0
    this.head = 0
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const resolve of waiters) resolve()
  }

  /** Decides what an entry reports, and whether that needs the job's hash. */
  private plan(
    name: string,
    args: Record<string, unknown>
  ): { readonly needsJob: boolean; readonly report: (job: Job | undefined) => void } | undefined {
    const queue = this.queueName
    const jobId = String(args.jobId ?? "")
    if (jobId === "") return undefined
    const reporter = this.reporter
    const taskId = reporter.codec.format(queue, jobId)
    // A local Worker reports its own jobs, because it has the job object at hand. Skipping them here also
    // spares a fetch per entry on the worker's hot path.
    const local = () => reporter.localJobs.has(taskId)
    const executionEntry = name === "active" || name === "progress" || name === "completed" || name === "failed"
    if (executionEntry && local()) return undefined
    if (name === "waiting" && args.prev === "active" && local()) return undefined
    switch (name) {
      case "added":
        return {
          needsJob: true,
          report: (job) => {
            if (job !== undefined) reporter.received(queue, job)
            else
              reporter.emitBare(
                "task.received",
                queue,
                jobId,
                { task_name: args.name ?? null },
                `${taskId}|task.received|0`
              )
          }
        }
      case "active":
        return {
          needsJob: true,
          report: (job) => {
            if (local()) return
            if (job !== undefined) reporter.started(queue, job, undefined)
            else reporter.emitBare("task.started", queue, jobId, {})
          }
        }
      case "progress":
        return {
          needsJob: true,
          report: (job) => {
            if (local()) return
            if (job !== undefined) reporter.progress(queue, job, args.data, undefined)
            else reporter.emitBare("task.started", queue, jobId, { progress: args.data ?? null })
          }
        }
      case "completed":
        return {
          needsJob: true,
          report: (job) => {
            if (local()) return
            if (job !== undefined) reporter.succeeded(queue, job, args.returnvalue)
            else reporter.emitBare("task.succeeded", queue, jobId, { result: args.returnvalue ?? null })
          }
        }
      case "failed":
        // The stream records `failed` only when the job will not run again; retries appear as
        // `waiting` or `delayed` entries whose previous state is `active`.
        return {
          needsJob: true,
          report: (job) => {
            if (local()) return
            if (job !== undefined) {
              reporter.emitJob(
                "task.failed",
                queue,
                job,
                job.attemptsMade,
                {
                  exception: job.failedReason ?? args.failedReason ?? null,
                  traceback: traceback(job, undefined),
                  runtime_ms: runtimeMillis(job),
                  retry_count: retries(job)
                },
                job.finishedOn
              )
            } else {
              reporter.emitBare("task.failed", queue, jobId, { exception: args.failedReason ?? null })
            }
          }
        }
      case "waiting":
        if (args.prev !== "active") return undefined
        return { needsJob: true, report: (job) => this.retried(job, local) }
      case "delayed":
        return {
          needsJob: true,
          report: (job) => {
            // A delayed entry follows every add with a delay too; only one after a failed attempt is a retry.
            if (job === undefined || job.attemptsMade === 0 || job.failedReason === undefined) return
            this.retried(job, local, isoTime(Number(args.delay)))
          }
        }
      case "removed":
        if (args.prev === "completed" || args.prev === "failed") return undefined
        return {
          needsJob: false,
          report: () => reporter.removed(queue, jobId, typeof args.prev === "string" ? args.prev : undefined)
        }
      case "stalled":
        return { needsJob: true, report: (job) => reporter.stalled(queue, job, jobId) }
      default:
        return undefined
    }
  }

  private retried(job: Job | undefined, local: () => boolean, eta?: string | null): void {
    if (job === undefined || local()) return
    this.reporter.emitJob("task.retried", this.queueName, job, job.attemptsMade, {
      exception: job.failedReason ?? null,
      traceback: traceback(job, undefined),
      retry_count: job.attemptsMade,
      ...(eta !== undefined && eta !== null ? { eta } : {})
    })
  }
}
