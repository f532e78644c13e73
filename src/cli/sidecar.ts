/**
 * The BullMQ sidecar of `z4j-agent run --engine bullmq`: one adapter over the queues of a Redis. Without
 * `--queues` it scans Redis again at an interval and replaces the adapter when new queues appear, so a
 * sidecar may start before the first queue exists.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import type { Redis } from "ioredis"
import type * as BullMQ from "../engines/bullmq/BullMQ.js"
import { DiscoveryFailed } from "../engines/bullmq/Discovery.js"
import type { EngineAdapter } from "../engines/EngineAdapter.js"
import { Agent } from "../services/Agent.js"
import type { EngineNameTaken } from "../services/EngineRegistry.js"
import type { RunPlan } from "./runPlan.js"

/**
 * The `bullmq` part of a run plan.
 *
 * @since 0.1.0
 * @category models
 */
export type SidecarPlan = NonNullable<RunPlan["bullmq"]>

/** Redis URLs may carry a password; logs show them without it. */
export const withoutPassword = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return "(unparsable Redis URL)"
  }
}

/** One adapter and the scope that owns its Queues, QueueEvents and registration. */
interface Generation {
  readonly adapter: EngineAdapter
  readonly queues: ReadonlyArray<string>
  readonly scope: Scope.CloseableScope
}

const loadModules = Effect.tryPromise({
  try: () => Promise.all([import("../engines/bullmq/BullMQ.js"), import("../engines/bullmq/Discovery.js")]),
  catch: (cause) =>
    new DiscoveryFailed({
      reason: `Loading the BullMQ adapter failed; install bullmq and ioredis (npm install bullmq ioredis): ${cause instanceof Error ? cause.message : String(cause)}`,
      cause
    })
})

/**
 * Builds the sidecar's first adapter and returns the layer that registers it with the agent. The
 * adapter is built before the agent starts, so that the hello of the first connection lists it. With
 * discovery on, the layer also scans for new queues every `discoverIntervalSeconds`.
 *
 * Fails when no queue is found and discovery is off (interval 0), or when a named queue is invalid.
 *
 * @since 0.1.0
 * @category constructors
 */
export const prepare = (
  plan: SidecarPlan,
  client: Redis
): Effect.Effect<Layer.Layer<never, EngineNameTaken, Agent>, DiscoveryFailed | BullMQ.InvalidOptions, Scope.Scope> =>
  Effect.gen(function* () {
    const [bullmq, discovery] = yield* loadModules
    const outerScope = yield* Effect.scope
    const annotations = { redis: withoutPassword(plan.redisUrl), prefix: plan.prefix }

    const build = (queues: ReadonlyArray<string>, readFromStreamStart: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const scope = yield* Scope.fork(outerScope, ExecutionStrategy.sequential)
        const adapter = yield* bullmq
          .make({ connection: client, queues, prefix: plan.prefix, queueEvents: true, readFromStreamStart })
          .pipe(
            Scope.extend(scope),
            Effect.tapErrorCause(() => Scope.close(scope, Exit.void))
          )
        return { adapter, queues, scope } satisfies Generation
      })

    // named queues: one adapter for the agent's life
    if (plan.queues !== undefined) {
      const fixed = yield* build(plan.queues, [])
      yield* Effect.logInfo("watching BullMQ queues").pipe(
        Effect.annotateLogs({ ...annotations, adapter: fixed.adapter.name, queues: fixed.queues.join(",") })
      )
      return Layer.scopedDiscard(
        Effect.flatMap(Agent, (agent) => agent.registerEngine(fixed.adapter).pipe(Scope.extend(fixed.scope)))
      )
    }

    const intervalSeconds = plan.discoverIntervalSeconds
    const foundAtStart = yield* discovery.discoverQueues(client, plan.prefix)
    if (foundAtStart.length === 0 && intervalSeconds === 0) {
      return yield* new DiscoveryFailed({
        reason: `No BullMQ queue found in Redis under prefix "${plan.prefix}" (no "${plan.prefix}:<queue>:meta" key). Check the prefix, name the queues with --queues, or set --discover-interval above 0 to wait for the first queue`
      })
    }
    let current: Generation | undefined
    if (foundAtStart.length > 0) {
      current = yield* build(foundAtStart, [])
      yield* Effect.logInfo("watching BullMQ queues").pipe(
        Effect.annotateLogs({ ...annotations, adapter: current.adapter.name, queues: foundAtStart.join(",") })
      )
    } else {
      yield* Effect.logWarning(
        `no BullMQ queue found in Redis yet, so the agent waits for one and scans again every ${intervalSeconds} s`
      ).pipe(Effect.annotateLogs(annotations))
    }

    // Queues found later were created after the start, so their whole event stream is new.
    const streamStartQueues = (queues: ReadonlyArray<string>) => queues.filter((queue) => !foundAtStart.includes(queue))

    const follow = Effect.gen(function* () {
      const agent = yield* Agent
      yield* Effect.addFinalizer(() => (current === undefined ? Effect.void : Scope.close(current.scope, Exit.void)))
      if (current !== undefined) yield* agent.registerEngine(current.adapter).pipe(Scope.extend(current.scope))
      if (intervalSeconds === 0) return

      let failedScans = 0
      const scan = Effect.gen(function* () {
        const found = yield* discovery.discoverQueues(client, plan.prefix)
        if (failedScans > 0) {
          yield* Effect.logInfo(`scanning Redis for BullMQ queues works again after ${failedScans} failed scans`)
          failedScans = 0
        }
        // NOTE: queues are only added. A queue whose keys are removed (Queue.obliterate) stays watched
        // until the agent restarts.
        const watched = current?.queues ?? []
        const added = found.filter((queue) => !watched.includes(queue))
        if (added.length === 0) return
        const queues = [...new Set([...watched, ...added])].sort()

        // The old adapter must be unregistered first, because the new one takes the same name. Closing
        // it saves its QueueEvents cursors, and the new adapter resumes from them, so no entry is skipped.
        // A shutdown that interrupts the swap leaves the new scope open until the program's scope closes.
        const previous = current
        current = undefined
        if (previous !== undefined) yield* Scope.close(previous.scope, Exit.void)
        const next = yield* build(queues, streamStartQueues(queues)).pipe(
          Effect.tap((generation) =>
            agent.registerEngine(generation.adapter).pipe(
              Scope.extend(generation.scope),
              Effect.tapErrorCause(() => Scope.close(generation.scope, Exit.void))
            )
          ),
          Effect.either
        )
        if (next._tag === "Left") {
          yield* Effect.logWarning(
            `starting the BullMQ adapter for new queues failed, so no queue is watched until the next scan in ${intervalSeconds} s`
          ).pipe(Effect.annotateLogs({ added: added.join(","), error: next.left.message }))
          if (previous !== undefined) yield* agent.renewSession
          return
        }
        current = next.right
        yield* Effect.logInfo("watching new BullMQ queues").pipe(
          Effect.annotateLogs({ added: added.join(","), queues: queues.join(","), adapter: next.right.adapter.name })
        )
        // The brain reads the engine list only from the hello, so a new engine needs a new connection.
        if (previous === undefined) yield* agent.renewSession
      }).pipe(
        Effect.catchAll((error) => {
          failedScans++
          const message = `scanning Redis for BullMQ queues failed (${failedScans} in a row), retrying in ${intervalSeconds} s`
          return failedScans === 1
            ? Effect.logWarning(message).pipe(Effect.annotateLogs("error", error.message))
            : Effect.logDebug(message).pipe(Effect.annotateLogs("error", error.message))
        }),
        // A defect (a bug in the adapter or in BullMQ) ends this scan only, so the next scan retries.
        Effect.catchAllDefect((defect) =>
          Effect.logWarning(
            `scanning for BullMQ queues failed on an internal error, retrying in ${intervalSeconds} s`,
            defect
          )
        )
      )
      yield* scan.pipe(
        Effect.delay(`${intervalSeconds} seconds`),
        Effect.forever,
        Effect.annotateLogs({ module: "Sidecar", ...annotations }),
        Effect.forkScoped
      )
    })
    return Layer.scopedDiscard(follow)
  })
