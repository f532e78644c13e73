/**
 * Finds BullMQ queues in a Redis and builds a sidecar adapter for them. This module imports `bullmq` and
 * the adapter only dynamically, so the runtime can offer the BullMQ adapter while `bullmq` stays an
 * optional peer dependency.
 *
 * A sidecar reports jobs from the queues' event streams (QueueEvents) and executes commands through
 * Queue and Job, so it needs no change to the code of the workers that process the jobs.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Redis } from "ioredis"
import type { EngineAdapter } from "../EngineAdapter.js"
import type { InvalidOptions, Options } from "./BullMQ.js"

/**
 * @since 0.1.0
 * @category errors
 */
export class DiscoveryFailed extends Data.TaggedError("DiscoveryFailed")<{
  readonly reason: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return this.reason
  }
}

/**
 * Whether `bullmq` can be imported in this process.
 *
 * @since 0.1.0
 * @category discovery
 */
export const isAvailable: Effect.Effect<boolean> = Effect.promise(() =>
  import("bullmq").then(
    () => true,
    () => false
  )
)

/**
 * The queues of a Redis: every key `<prefix>:<queue>:meta` (BullMQ writes one per queue), found with
 * SCAN so a large Redis is not blocked. Sorted by name.
 *
 * @since 0.1.0
 * @category discovery
 */
export const discoverQueues = (
  connection: Redis,
  prefix = "bull"
): Effect.Effect<ReadonlyArray<string>, DiscoveryFailed> =>
  Effect.tryPromise({
    try: async () => {
      const found = new Set<string>()
      const head = `${prefix}:`
      let cursor = "0"
      do {
        const [next, keys] = await connection.scan(cursor, "MATCH", `${escapeGlob(prefix)}:*:meta`, "COUNT", 1000)
        cursor = next
        for (const key of keys) {
          const queue = key.slice(head.length, key.length - ":meta".length)
          if (queue !== "" && !queue.includes(":")) found.add(queue)
        }
      } while (cursor !== "0")
      return [...found].sort()
    },
    catch: (cause) =>
      new DiscoveryFailed({
        reason: `Scanning Redis for BullMQ queues with prefix "${prefix}" failed: ${cause instanceof Error ? cause.message : String(cause)}`,
        cause
      })
  })

const escapeGlob = (text: string): string => text.replace(/[*?[\]\\]/g, (character) => `\\${character}`)

/**
 * Options of {@link makeSidecar}: those of the adapter without `queues` and `workers`, which discovery
 * fills in. `connection` must be an ioredis client here, since discovery scans with it.
 *
 * @since 0.1.0
 * @category models
 */
export interface SidecarOptions extends Omit<Options, "queues" | "workers" | "connection" | "queueEvents"> {
  readonly connection: Redis
  /** Queues to add to the discovered ones (queues that have no meta key yet). */
  readonly extraQueues?: ReadonlyArray<string> | undefined
}

/**
 * Discovers the queues under `prefix` and builds an adapter that observes them through QueueEvents.
 * Fails when `bullmq` is not installed or no queue is found.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSidecar = (
  options: SidecarOptions
): Effect.Effect<EngineAdapter, DiscoveryFailed | InvalidOptions, Scope.Scope> =>
  Effect.gen(function* () {
    const prefix = options.prefix ?? "bull"
    const module = yield* Effect.tryPromise({
      try: () => import("./BullMQ.js"),
      catch: (cause) =>
        new DiscoveryFailed({
          reason: `Loading the BullMQ adapter failed; install bullmq and ioredis (npm install bullmq ioredis): ${cause instanceof Error ? cause.message : String(cause)}`,
          cause
        })
    })
    const discovered = yield* discoverQueues(options.connection, prefix)
    const queues = [...new Set([...discovered, ...(options.extraQueues ?? [])])]
    if (queues.length === 0) {
      return yield* new DiscoveryFailed({
        reason: `No BullMQ queue found in Redis under prefix "${prefix}" (no "${prefix}:<queue>:meta" key); check the prefix, or name the queues (the CLI's --queues, the library's extraQueues). Queues are discovered once, at start`
      })
    }
    const { extraQueues: _extraQueues, ...adapterOptions } = options
    return yield* module.make({ ...adapterOptions, queues, queueEvents: true })
  })
