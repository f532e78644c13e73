/**
 * The BullMQ engine adapter. It reports the lifecycle of BullMQ jobs to the brain (engine name `bullmq`),
 * from the Workers of this process and from each queue's event stream (QueueEvents). It executes the
 * operator's commands through Queue and Job, and exposes the queues' job schedulers as a scheduler.
 *
 * Event mapping: `added` is `task.received`, `active` is `task.started`, `completed` is
 * `task.succeeded`, a failed attempt that BullMQ will retry is `task.retried` and a final one
 * `task.failed`, a removed pending or active job is `task.revoked`. Progress updates are sent as
 * `task.started` with `data.progress`, and stalled jobs as `task.retried` with `data.stalled: true`,
 * because the brain stores kinds it does not know as `unknown` and drops them from the task.
 *
 * Task ids are `<queue>:<jobId>` (BullMQ job ids are unique per queue only), prefixed with
 * `<adapter name>:` when the adapter is not named `bullmq`; `/`, `:` and `%` inside the parts are
 * percent-encoded.
 *
 * @since 0.1.0
 */
import { type ConnectionOptions, type Job, Queue, QueueEvents, type Worker } from "bullmq"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import type { EngineAdapter } from "../EngineAdapter.js"
import * as Commands from "./internal/commands.js"
import { engineName, type ListenerLog, Reporter, StreamReporter } from "./internal/events.js"
import { health } from "./internal/health.js"
import * as Scheduler from "./internal/scheduler.js"
import * as State from "./internal/state.js"
import { makeCodec } from "./internal/taskId.js"

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * The adapter name, unique among the agent's adapters. Default `"bullmq"`. Another name also prefixes
   * this adapter's task ids, so that two adapters over two Redis prefixes never report the same id.
   */
  readonly name?: string | undefined
  /** An ioredis client (shared, never closed by the adapter) or ioredis options (the adapter opens its own clients). */
  readonly connection: ConnectionOptions
  /** The queues to report and command: names, or Queue instances the application already has. */
  readonly queues: ReadonlyArray<string | Queue>
  /** Workers running in this process; their events carry the job object, so they cost no Redis read. */
  readonly workers?: ReadonlyArray<Worker> | undefined
  /**
   * `true`: the adapter reads each queue's event stream with its own QueueEvents, resuming after a
   * restart from the last entry it reported; this sees jobs that workers elsewhere process, and removals.
   * QueueEvents instances: the adapter listens to them, without resuming. `false`: only the Workers'
   * events are reported. Default: `false` when `workers` are given (each worker process runs its own
   * agent), `true` otherwise (a producer or a sidecar).
   *
   * The stream reads each added job's hash once (for its name and data). On a no-op Worker in the same
   * process that cost about a quarter of its throughput in bench/bullmq.bench.ts, against about 2% with
   * `false`, which is why workers default to `false`.
   */
  readonly queueEvents?: boolean | ReadonlyArray<QueueEvents> | undefined
  /** The BullMQ key prefix. Default `"bull"`. */
  readonly prefix?: string | undefined
  /** How many jobs per list (completed, failed, active) a reconciliation after a trimmed stream reports. Default 1,000. */
  readonly reconcileLimit?: number | undefined
  /** How often the QueueEvents cursors are saved to Redis. Default 1 second; they are also saved on shutdown. */
  readonly cursorSaveInterval?: Duration.DurationInput | undefined
  /** The scheduler name in `hello.schedulers`. Default the adapter name. */
  readonly schedulerName?: string | undefined
  /**
   * Queues whose event stream is read from its first entry when the adapter has no saved cursor for it,
   * instead of from its last entry. For queues created after the caller started watching the Redis, so
   * that their first jobs are reported too. A saved cursor always wins. Default none.
   */
  readonly readFromStreamStart?: ReadonlyArray<string> | undefined
}

/**
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions extends Data.TaggedError("InvalidOptions")<{
  readonly option: string
  readonly value: unknown
  readonly reason: string
}> {
  override get message(): string {
    return `Invalid BullMQ adapter option "${this.option}" (${JSON.stringify(this.value) ?? String(this.value)}): ${this.reason}`
  }
}

const isRedisClient = (connection: ConnectionOptions): connection is Redis =>
  typeof connection === "object" &&
  connection !== null &&
  typeof (connection as { duplicate?: unknown }).duplicate === "function" &&
  typeof (connection as { pipeline?: unknown }).pipeline === "function"

/** Connection options for a QueueEvents of our own: a blocking client, which BullMQ needs without request retries. */
const blockingOptions = (connection: ConnectionOptions): ConnectionOptions =>
  isRedisClient(connection)
    ? ({ ...connection.options, maxRetriesPerRequest: null } as ConnectionOptions)
    : ({ ...(connection as object), maxRetriesPerRequest: null } as ConnectionOptions)

const fetchJob = (queue: Queue, jobId: string): Promise<Job | undefined> =>
  queue.getJob(jobId).then((job) => job ?? undefined)

/**
 * Builds a BullMQ adapter. The Queues and Redis clients it opens are closed when the scope closes; the
 * Queues, Workers, QueueEvents and client given in `options` are left open.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<EngineAdapter, InvalidOptions, Scope.Scope> =>
  Effect.gen(function* () {
    const name = options.name ?? engineName
    const prefix = options.prefix ?? "bull"
    if (name === "" || name.length > 64) {
      return yield* new InvalidOptions({ option: "name", value: name, reason: "use 1 to 64 characters" })
    }
    if (options.queues.length === 0) {
      return yield* new InvalidOptions({ option: "queues", value: [], reason: "name at least one queue" })
    }

    const client: Redis = isRedisClient(options.connection)
      ? options.connection
      : yield* Effect.acquireRelease(
          Effect.sync(() => new Redis({ ...(options.connection as object), maxRetriesPerRequest: null })),
          (owned) =>
            Effect.promise(() =>
              owned.quit().then(
                () => undefined,
                () => owned.disconnect()
              )
            )
        )

    const queues = new Map<string, Queue>()
    for (const entry of options.queues) {
      if (typeof entry !== "string") {
        const queuePrefix = entry.opts?.prefix ?? "bull"
        if (queuePrefix !== prefix) {
          return yield* new InvalidOptions({
            option: "queues",
            value: entry.name,
            reason: `the Queue uses prefix "${queuePrefix}" but the adapter uses "${prefix}"; register one adapter per prefix`
          })
        }
        queues.set(entry.name, entry)
        continue
      }
      if (entry === "" || entry.includes(":")) {
        return yield* new InvalidOptions({
          option: "queues",
          value: entry,
          reason: "a queue name is non-empty and has no ':'"
        })
      }
      const queue = yield* Effect.acquireRelease(
        Effect.sync(() => new Queue(entry, { connection: client, prefix })),
        (owned) => Effect.promise(() => owned.close().catch(() => undefined))
      )
      queue.on("error", () => undefined)
      queues.set(entry, queue)
    }

    const workers = options.workers ?? []
    for (const worker of workers) {
      if (!queues.has(worker.name)) {
        return yield* new InvalidOptions({
          option: "workers",
          value: worker.name,
          reason: "the Worker's queue is not one of the adapter's queues; add it to queues"
        })
      }
    }

    const codec = makeCodec(name === engineName ? undefined : name)
    let reporter: Reporter | undefined
    const commandContext: Commands.CommandContext = {
      adapterName: name,
      prefix,
      queues,
      workers,
      client,
      codec,
      reporter: () => reporter
    }
    const scheduler = Scheduler.make({
      name: options.schedulerName ?? name,
      adapterName: name,
      prefix,
      queues,
      client,
      codec
    })
    const reconcileLimit = options.reconcileLimit ?? 1_000
    const cursorSaveInterval = Duration.decode(options.cursorSaveInterval ?? "1 second")
    const readFromStreamStart = new Set(options.readFromStreamStart ?? [])

    const start = (sink: Parameters<EngineAdapter["start"]>[0]) =>
      Effect.gen(function* () {
        const runtime = yield* Effect.runtime<never>()
        const runLog = Runtime.runFork(runtime)
        const log: ListenerLog = {
          warning: (message, annotations) =>
            runLog(Effect.logWarning(message).pipe(Effect.annotateLogs({ adapter: name, ...annotations })))
        }
        const current = new Reporter(sink, codec, log)
        const queueEvents = options.queueEvents ?? workers.length === 0
        current.streamsActive = queueEvents !== false
        reporter = current
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            if (reporter === current) reporter = undefined
          })
        )

        for (const worker of workers) {
          const detach = current.attachWorker(worker)
          yield* Effect.addFinalizer(() => Effect.sync(detach))
        }

        const streams: Array<StreamReporter> = []
        const saved = new Map<string, string>()
        // Where each stream started reading. It is saved until the stream reports an entry, so that an
        // adapter started later (a sidecar's replacement) resumes there and skips nothing in between. A start
        // at 0-0 is not saved, because resumePoint would take it for a cursor the stream was trimmed past.
        const startIds = new Map<string, string>()
        // The final save is registered first so that it runs last, after the streams are idle and their
        // QueueEvents closed.
        const saveLoop = Effect.gen(function* () {
          yield* Effect.addFinalizer(() =>
            Effect.suspend(saveCursors).pipe(
              Effect.catchAll((error) =>
                Effect.logWarning("saving the QueueEvents cursors on shutdown failed").pipe(
                  Effect.annotateLogs({ adapter: name, error: String(error.error) })
                )
              )
            )
          )
          yield* Effect.suspend(saveCursors).pipe(
            Effect.catchAll((error) =>
              Effect.logWarning("saving the QueueEvents cursors failed; retrying at the next interval").pipe(
                Effect.annotateLogs({ adapter: name, error: String(error.error) })
              )
            ),
            Effect.repeat(Schedule.spaced(cursorSaveInterval)),
            Effect.forkScoped
          )
        })
        if (Array.isArray(queueEvents)) {
          for (const events of queueEvents as ReadonlyArray<QueueEvents>) {
            const queue = queues.get(events.name)
            if (queue === undefined) {
              yield* Effect.logWarning(
                "a QueueEvents instance is for a queue the adapter does not have; it is ignored"
              ).pipe(Effect.annotateLogs({ adapter: name, queue: events.name }))
              continue
            }
            const stream = new StreamReporter(current, { queue, events }, fetchJob)
            yield* Effect.addFinalizer(() => Effect.sync(() => stream.stop()))
            streams.push(stream)
          }
        } else if (queueEvents !== false) {
          for (const queue of queues.values()) {
            const stream = yield* ownStream(queue, current)
            streams.push(stream)
          }
          yield* saveLoop
        }
        yield* Effect.logDebug("BullMQ adapter started").pipe(
          Effect.annotateLogs({ adapter: name, queues: [...queues.keys()].join(","), workers: workers.length })
        )

        function ownStream(queue: Queue, current: Reporter) {
          return Effect.gen(function* () {
            const resume = yield* Effect.tryPromise(() =>
              State.resumePoint(client, prefix, name, queue.name, readFromStreamStart.has(queue.name))
            ).pipe(
              Effect.catchAll((error) =>
                Effect.logWarning("reading the saved QueueEvents cursor failed; reading new entries only").pipe(
                  Effect.annotateLogs({ adapter: name, queue: queue.name, error: String(error.error) }),
                  Effect.as<State.ResumePoint>({ lastEventId: "$", trimmedAfter: undefined, fromSavedCursor: false })
                )
              )
            )
            if (resume.trimmedAfter !== undefined) {
              const sinceMillis = Number(resume.trimmedAfter.split("-")[0])
              yield* Effect.logWarning(
                "the queue's event stream was trimmed past the saved cursor, so entries may be lost; reconciling from the job lists"
              ).pipe(Effect.annotateLogs({ adapter: name, queue: queue.name, cursor: resume.trimmedAfter }))
              const counts = yield* Effect.tryPromise(() =>
                State.reconcileQueue(current, queue, sinceMillis, reconcileLimit)
              ).pipe(
                Effect.catchAll((error) =>
                  Effect.logWarning("reconciling the queue from its job lists failed").pipe(
                    Effect.annotateLogs({ adapter: name, queue: queue.name, error: String(error.error) }),
                    Effect.as(undefined)
                  )
                )
              )
              if (counts !== undefined) {
                yield* Effect.logInfo("reconciled the queue from its job lists").pipe(
                  Effect.annotateLogs({ adapter: name, queue: queue.name, ...counts })
                )
              }
            }
            if (resume.fromSavedCursor) saved.set(queue.name, resume.lastEventId)
            if (resume.lastEventId !== "$" && resume.lastEventId !== "0-0") startIds.set(queue.name, resume.lastEventId)

            const events = yield* Effect.acquireRelease(
              Effect.sync(
                () =>
                  new QueueEvents(queue.name, {
                    connection: blockingOptions(options.connection),
                    prefix,
                    lastEventId: resume.lastEventId,
                    autorun: false
                  })
              ),
              (owned) => Effect.promise(() => owned.close().catch(() => undefined))
            )
            events.on("error", (error: Error) =>
              log.warning("QueueEvents reported an error", { queue: queue.name, error })
            )
            const stream = new StreamReporter(current, { queue, events }, fetchJob)
            // Released before the QueueEvents closes (finalizers run in reverse): wait for the fetches in
            // flight, so the final cursor covers every entry read.
            yield* Effect.addFinalizer(() =>
              Effect.promise(() => stream.idle()).pipe(
                Effect.timeout("2 seconds"),
                Effect.ignore,
                Effect.andThen(Effect.sync(() => stream.stop()))
              )
            )
            events.run().catch((error: unknown) => log.warning("QueueEvents stopped", { queue: queue.name, error }))
            return stream
          })
        }

        function saveCursors() {
          const changed: Array<readonly [string, string]> = []
          for (const stream of streams) {
            const cursor = stream.cursor ?? startIds.get(stream.queueName)
            if (cursor !== undefined && saved.get(stream.queueName) !== cursor) changed.push([stream.queueName, cursor])
          }
          if (changed.length === 0) return Effect.void
          return Effect.tryPromise(() => State.saveCursors(client, prefix, name, changed)).pipe(
            Effect.tap(() =>
              Effect.sync(() => {
                for (const [queue, cursor] of changed) saved.set(queue, cursor)
              })
            )
          )
        }
      })

    const adapter: EngineAdapter = {
      name,
      engine: engineName,
      capabilities: [...Commands.engineActions],
      start: (sink) => Effect.suspend(() => start(sink)),
      execute: (command) => Commands.execute(commandContext, command),
      handles: (command) => Commands.handles(commandContext, command, () => reporter?.knownNames() ?? []),
      health: Effect.tryPromise(() => health(client, prefix, [...queues.keys()], workers, reporter)).pipe(
        Effect.catchAll((error) =>
          Effect.succeed({ [`${engineName}.health_error`]: `reading queue depths failed: ${String(error.error)}` })
        )
      ),
      scheduler
    }
    return adapter
  })

/**
 * The confirmation `purge_queue` accepts in place of `force: true`: `"<queue>:<depth>"`, where depth
 * counts the waiting, paused, delayed and prioritized jobs. A token for another depth is rejected, so
 * jobs added after the operator looked are not purged unseen.
 *
 * @since 0.1.0
 * @category commands
 */
export const purgeToken: (queue: string, depth: number) => string = Commands.purgeToken
