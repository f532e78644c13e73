/**
 * What the agent knows about its own connection: the live session, failure streaks per class, and
 * the last successful connect. The supervisor writes it; heartbeats, the command router and
 * `Agent.status` read it.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { ConnectionClosed } from "./Connection.js"

/**
 * Failure classes, each with its own reconnect backoff.
 *
 * @since 0.1.0
 * @category models
 */
export type FailureClass = "network" | "protocol" | "auth"

/**
 * An authenticated connection to the brain, after `hello_ack`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LiveSession {
  readonly sessionId: string
  readonly agentId: string
  readonly projectId: string
  readonly brainVersion: string
  readonly heartbeatIntervalMillis: number
  readonly maxFrameBytes: number
  readonly connectedAtMillis: number
  /** Signs and sends one frame whose payload is already canonical JSON text. */
  readonly send: (type: string, id: string, payload: string) => Effect.Effect<void, ConnectionClosed>
}

/**
 * @since 0.1.0
 * @category models
 */
export type Phase = "starting" | "connecting" | "connected" | "backoff" | "terminal" | "stopping" | "stopped"

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectionStats {
  readonly phase: Phase
  readonly failureStreaks: Readonly<Record<FailureClass, number>>
  readonly lastSuccessfulConnectAtMillis: number | null
  /** The last failure, as a sentence with its remedy; null after a successful connect. */
  readonly lastError: string | null
  /** Set when the brain refused this agent for good (an unsupported protocol version). */
  readonly terminalReason: string | null
  readonly connectsTotal: number
  /**
   * Set when the brain rejected a legacy schedule snapshot because it needs its sequenced schedule
   * protocol. The agent then stops sending legacy snapshots, which that brain would reject every time.
   */
  readonly scheduleSnapshotsRefused: string | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AgentStateShape {
  readonly session: SubscriptionRef.SubscriptionRef<Option.Option<LiveSession>>
  readonly stats: Ref.Ref<ConnectionStats>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class AgentState extends Context.Tag("z4j-agent/AgentState")<AgentState, AgentStateShape>() {}

/**
 * @since 0.1.0
 * @category constants
 */
export const initialStats: ConnectionStats = {
  phase: "starting",
  failureStreaks: { network: 0, protocol: 0, auth: 0 },
  lastSuccessfulConnectAtMillis: null,
  lastError: null,
  terminalReason: null,
  connectsTotal: 0,
  scheduleSnapshotsRefused: null
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<AgentStateShape> = Effect.all({
  session: SubscriptionRef.make<Option.Option<LiveSession>>(Option.none()),
  stats: Ref.make(initialStats)
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<AgentState> = Layer.effect(AgentState, make)
