/**
 * Sends `heartbeat` and `agent_status` right after each connect and then at the interval the brain
 * set in `hello_ack`. Heartbeats keep the brain's idle timer from closing the socket and carry the
 * buffer depth, the dropped-event count and each adapter's health.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import {
  encodeAgentStatusPayload,
  encodeHeartbeatPayload,
  float,
  formatPydanticDatetime,
  newAgentStatusId,
  newHeartbeatId
} from "../protocol/index.js"
import { agentVersion, protocolVersion } from "../version.js"
import { AgentConfig } from "./AgentConfig.js"
import { AgentState, type LiveSession } from "./AgentState.js"
import { DispatcherRuntime } from "./Dispatcher.js"
import { EngineRegistry } from "./EngineRegistry.js"
import { EventBuffer } from "./EventBuffer.js"

/** The brain reads at most 256 keys of `adapter_health`. */
const maxHealthKeys = 256
/** Upper bounds of the brain's `heartbeat` and `agent_status` models. */
const maxCount = 10_000_000
const maxStreak = 1_000_000

/**
 * Two adapters of one engine report under the same keys (`bullmq.queue_depths`); the brain reads each
 * value as one JSON object, so objects are merged, and anything else keeps the later value.
 */
const mergeJsonObjects = (first: string, second: string): string => {
  try {
    const left: unknown = JSON.parse(first)
    const right: unknown = JSON.parse(second)
    const isObject = (value: unknown): value is Record<string, unknown> =>
      value !== null && typeof value === "object" && !Array.isArray(value)
    if (isObject(left) && isObject(right)) return JSON.stringify({ ...left, ...right })
  } catch {
    // Not JSON: the later value wins below.
  }
  return second
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HeartbeatShape {
  /** Runs the heartbeat loop for `session` until the scope closes. */
  readonly attach: (session: LiveSession) => Effect.Effect<void, never, Scope.Scope>
  /** The `adapter_health` map as the next heartbeat would send it. */
  readonly adapterHealth: Effect.Effect<Record<string, string>>
  /** Total events lost so far: evicted from a full buffer, discarded as undeliverable, or refused at intake. */
  readonly droppedEvents: Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Heartbeat extends Context.Tag("z4j-agent/Heartbeat")<Heartbeat, HeartbeatShape>() {}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<
  HeartbeatShape,
  never,
  AgentConfig | AgentState | DispatcherRuntime | EngineRegistry | EventBuffer
> = Effect.gen(function* () {
  const config = yield* AgentConfig
  const state = yield* AgentState
  const dispatcher = yield* DispatcherRuntime
  const registry = yield* EngineRegistry
  const buffer = yield* EventBuffer

  const adapterHealth = Effect.gen(function* () {
    const adapters = yield* registry.adapters
    const reports = yield* Effect.forEach(
      adapters,
      (adapter) =>
        adapter.health === undefined
          ? Effect.succeed({} as Readonly<Record<string, string>>)
          : adapter.health.pipe(
              Effect.timeoutTo({
                duration: config.healthTimeoutMillis,
                onTimeout: () => ({
                  [`${adapter.name}.error`]: `health check timed out after ${config.healthTimeoutMillis} ms`
                }),
                onSuccess: (health) => health
              }),
              Effect.catchAllCause((cause) =>
                Effect.succeed({ [`${adapter.name}.error`]: `health check failed: ${cause.toString().slice(0, 500)}` })
              )
            ),
      { concurrency: "unbounded" }
    )
    const merged: Record<string, string> = {}
    let keys = 0
    for (const report of reports) {
      for (const [key, value] of Object.entries(report)) {
        if (typeof value !== "string") continue
        const existing = merged[key]
        if (existing !== undefined) {
          merged[key] = mergeJsonObjects(existing, value)
          continue
        }
        if (keys >= maxHealthKeys) continue
        merged[key] = value
        keys += 1
      }
    }
    return merged
  })

  const droppedEvents = Effect.gen(function* () {
    const bufferStats = yield* buffer.stats
    const dispatcherStats = yield* dispatcher.stats
    return (
      bufferStats.droppedTotal +
      bufferStats.discardedTotal +
      dispatcherStats.droppedAtIntakeTotal +
      dispatcherStats.rejectedTotal
    )
  })

  const sendHeartbeat = (session: LiveSession) =>
    Effect.gen(function* () {
      const bufferStats = yield* buffer.stats
      const dispatcherStats = yield* dispatcher.stats
      const payload = encodeHeartbeatPayload({
        buffer_size: Math.min(bufferStats.depth, maxCount),
        last_flush_at:
          dispatcherStats.lastFlushAtMillis === null
            ? null
            : formatPydanticDatetime(new Date(dispatcherStats.lastFlushAtMillis)),
        dropped_events: Math.min(yield* droppedEvents, maxCount),
        adapter_health: yield* adapterHealth
      })
      yield* session.send("heartbeat", newHeartbeatId(), payload)
    })

  const sendStatus = (session: LiveSession) =>
    Effect.gen(function* () {
      const nowMillis = yield* Clock.currentTimeMillis
      const stats = yield* Ref.get(state.stats)
      const bufferStats = yield* buffer.stats
      const adapters = yield* registry.adapters
      const engines = [...new Set(adapters.map((adapter) => adapter.engine))].sort().slice(0, 32)
      const schedulers = [
        ...new Set(adapters.flatMap((adapter) => (adapter.scheduler ? [adapter.scheduler.name] : [])))
      ]
        .sort()
        .slice(0, 32)
      const payload = encodeAgentStatusPayload({
        auth_failure_streak: Math.min(stats.failureStreaks.auth, maxStreak),
        protocol_failure_streak: Math.min(stats.failureStreaks.protocol, maxStreak),
        connection_failure_streak: Math.min(stats.failureStreaks.network, maxStreak),
        last_successful_connect_at:
          stats.lastSuccessfulConnectAtMillis === null
            ? null
            : formatPydanticDatetime(new Date(stats.lastSuccessfulConnectAtMillis)),
        current_session_age_seconds: float(Math.max(0, (nowMillis - session.connectedAtMillis) / 1000)),
        buffer_depth: Math.min(bufferStats.depth, maxCount),
        buffer_oldest_age_seconds:
          bufferStats.oldestEnqueuedAtMillis === null
            ? null
            : float(Math.max(0, (nowMillis - bufferStats.oldestEnqueuedAtMillis) / 1000)),
        agent_version: agentVersion,
        protocol_version: protocolVersion,
        engines,
        schedulers
      })
      yield* session.send("agent_status", newAgentStatusId(), payload)
    })

  const attach = (session: LiveSession): Effect.Effect<void, never, Scope.Scope> =>
    Effect.gen(function* () {
      yield* sendHeartbeat(session)
      if (config.agentStatusEnabled) yield* sendStatus(session)
    }).pipe(
      Effect.zipRight(Effect.sleep(session.heartbeatIntervalMillis)),
      Effect.forever,
      Effect.catchAllCause((cause) => Effect.logDebug("heartbeat loop ended with the session", cause)),
      Effect.annotateLogs({ module: "Heartbeat", session: session.sessionId }),
      Effect.forkScoped,
      Effect.asVoid
    )

  return { attach, adapterHealth, droppedEvents }
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  Heartbeat,
  never,
  AgentConfig | AgentState | DispatcherRuntime | EngineRegistry | EventBuffer
> = Layer.effect(Heartbeat, make)
