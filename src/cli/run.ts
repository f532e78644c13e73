/**
 * `z4j-agent run`: the agent as its own process, watching BullMQ queues as a sidecar, attached to a
 * worker module, or both.
 *
 * @since 0.1.0
 */
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Runtime from "effect/Runtime"
import type { EngineAdapter, EventSink } from "../engines/EngineAdapter.js"
import * as Z4j from "../layers/Z4j.js"
import { Agent, type AgentShape } from "../services/Agent.js"
import type { RunPlan } from "./runPlan.js"

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

/** Redis URLs may carry a password; logs show them without it. */
const withoutPassword = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return "(unparsable Redis URL)"
  }
}

const bullmqLayer = (plan: NonNullable<RunPlan["bullmq"]>) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const agent = yield* Agent
      const { Redis } = yield* Effect.tryPromise({
        try: () => import("ioredis"),
        catch: (cause) =>
          new WorkerModuleFailed({ module: "ioredis", problem: "cannot be loaded; install bullmq and ioredis", cause })
      })
      // BullMQ's blocking reads need a client that never gives up on a request.
      const client = yield* Effect.acquireRelease(
        Effect.sync(() => new Redis(plan.redisUrl, { maxRetriesPerRequest: null, lazyConnect: false })),
        (redis) => Effect.promise(() => redis.quit().catch(() => redis.disconnect()))
      )
      const adapter = yield* plan.queues === undefined
        ? Effect.flatMap(
            Effect.promise(() => import("../engines/bullmq/Discovery.js")),
            (discovery) => discovery.makeSidecar({ connection: client, prefix: plan.prefix })
          )
        : Effect.flatMap(
            Effect.promise(() => import("../engines/bullmq/BullMQ.js")),
            (bullmq) =>
              bullmq.make({ connection: client, queues: plan.queues ?? [], prefix: plan.prefix, queueEvents: true })
          )
      yield* agent.attachEngine(adapter)
      yield* Effect.logInfo("watching BullMQ queues").pipe(
        Effect.annotateLogs({ redis: withoutPassword(plan.redisUrl), prefix: plan.prefix, adapter: adapter.name })
      )
    })
  )

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

/** SIGHUP skips the reconnect wait; SIGTERM and SIGINT are only logged here, the runtime handles them. */
const signalLayer = Layer.scopedDiscard(
  Effect.gen(function* () {
    const agent = yield* Agent
    const runtime = yield* Effect.runtime<never>()
    const run = Runtime.runFork(runtime)
    const onHangup = () => {
      run(Effect.zipRight(Effect.logInfo("SIGHUP: reconnecting now"), agent.reconnectNow))
    }
    const onStop = (signal: NodeJS.Signals) => {
      run(Effect.logInfo(`${signal}: flushing the buffer and disconnecting`))
    }
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        process.on("SIGHUP", onHangup)
        process.once("SIGTERM", onStop)
        process.once("SIGINT", onStop)
      }),
      () =>
        Effect.sync(() => {
          process.off("SIGHUP", onHangup)
          process.off("SIGTERM", onStop)
          process.off("SIGINT", onStop)
        })
    )
  })
)

/**
 * Runs the agent and what the plan attaches to it until the process is interrupted. Layers are
 * released in reverse: the worker module and the BullMQ watcher stop before the agent flushes and
 * disconnects.
 *
 * @since 0.1.0
 * @category commands
 */
export const run = (plan: RunPlan): Effect.Effect<never, unknown> => {
  const agent = Z4j.layer(plan.options)
  const attached = Layer.mergeAll(
    signalLayer,
    plan.bullmq === undefined ? Layer.empty : bullmqLayer(plan.bullmq),
    plan.module === undefined ? Layer.empty : workerLayer(plan.module)
  )
  return Effect.zipRight(Effect.logInfo("z4j-agent starting"), Layer.launch(attached.pipe(Layer.provide(agent))))
}
