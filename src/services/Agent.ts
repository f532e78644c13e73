/**
 * The agent as an application sees it: emit events, register engines, read status. Building its
 * layer starts the connection supervisor; closing the layer's scope stops intake, flushes, waits for
 * the brain's acks up to `drainTimeoutMillis`, says goodbye with a normal WebSocket close, and
 * releases the buffer.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { EngineAdapter, EventSink, TaskEvent } from "../engines/EngineAdapter.js"
import { AgentConfig } from "./AgentConfig.js"
import { AgentState, type ConnectionStats } from "./AgentState.js"
import { CommandRouter } from "./CommandRouter.js"
import { DispatcherRuntime, type DispatcherStats } from "./Dispatcher.js"
import { type EngineNameTaken, EngineRegistry } from "./EngineRegistry.js"
import { type BufferStats, EventBuffer } from "./EventBuffer.js"
import { Heartbeat } from "./Heartbeat.js"
import { Supervisor } from "./Supervisor.js"

/** How long the goodbye waits for the brain's close reply. */
const closeReplyTimeoutMillis = 2_000

/**
 * @since 0.1.0
 * @category models
 */
export interface AgentStatus {
  readonly connection: ConnectionStats
  readonly sessionId: string | null
  readonly brainVersion: string | null
  readonly buffer: BufferStats
  readonly dispatcher: DispatcherStats
  /** Every event lost so far, whatever the cause; the same number heartbeats report as `dropped_events`. */
  readonly droppedEvents: number
  readonly engines: ReadonlyArray<{ readonly name: string; readonly engine: string }>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AgentShape {
  /** The synchronous, never-blocking sink, for code outside Effect. */
  readonly sink: EventSink
  readonly emit: (event: TaskEvent) => Effect.Effect<void>
  /** Registers an adapter for as long as the calling scope lives. */
  readonly registerEngine: (adapter: EngineAdapter) => Effect.Effect<void, EngineNameTaken, Scope.Scope>
  /** Registers an adapter for the rest of the agent's life. */
  readonly attachEngine: (adapter: EngineAdapter) => Effect.Effect<void, EngineNameTaken>
  readonly status: Effect.Effect<AgentStatus>
  /** Moves queued events into the buffer and sends what it can now. */
  readonly flush: Effect.Effect<void>
  /** Skips the current reconnect wait. */
  readonly reconnectNow: Effect.Effect<void>
  /**
   * Closes the live connection and reconnects at once, so that the next hello lists the engines registered
   * now. The brain reads engines only from the hello, so call it after registering or removing an engine.
   */
  readonly renewSession: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Agent extends Context.Tag("z4j-agent/Agent")<Agent, AgentShape>() {}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<
  AgentShape,
  never,
  | AgentConfig
  | AgentState
  | CommandRouter
  | DispatcherRuntime
  | EngineRegistry
  | EventBuffer
  | Heartbeat
  | Supervisor
  | Scope.Scope
> = Effect.gen(function* () {
  const config = yield* AgentConfig
  const state = yield* AgentState
  const router = yield* CommandRouter
  const dispatcher = yield* DispatcherRuntime
  const registry = yield* EngineRegistry
  const buffer = yield* EventBuffer
  const heartbeat = yield* Heartbeat
  const supervisor = yield* Supervisor
  const agentScope = yield* Effect.scope

  yield* supervisor.run.pipe(
    Effect.catchAll(() => Effect.logError("the agent stopped connecting; events stay in the buffer")),
    Effect.annotateLogs("module", "Supervisor"),
    Effect.forkScoped
  )

  // A complete schedule snapshot after the first connect, then periodically. Snapshots travel as
  // events, through the buffer like any other.
  yield* state.session.changes.pipe(
    Stream.filter(Option.isSome),
    Stream.take(1),
    Stream.runDrain,
    Effect.zipRight(router.snapshotSchedules("boot").pipe(Effect.ignoreLogged)),
    Effect.zipRight(
      router
        .snapshotSchedules("periodic")
        .pipe(Effect.ignoreLogged, Effect.delay(config.scheduleResyncIntervalMillis), Effect.forever)
    ),
    Effect.annotateLogs("module", "Agent"),
    Effect.forkScoped
  )

  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      yield* dispatcher.stopIntake
      const remaining = yield* dispatcher.drain(config.drainTimeoutMillis)
      yield* supervisor.goodbye(closeReplyTimeoutMillis)
      if (remaining > 0 && config.buffer === "memory") {
        yield* Effect.logWarning(
          `agent stopped with ${remaining} events the brain has not acknowledged; the memory buffer loses them (the SQLite buffer keeps them for the next start)`
        )
      } else if (remaining > 0) {
        yield* Effect.logInfo(`agent stopped with ${remaining} events not yet acknowledged; they stay in the buffer`)
      } else {
        yield* Effect.logDebug("agent stopped; every event was acknowledged")
      }
    }).pipe(
      // A timeout works by interrupting what it bounds, so the shutdown runs interruptibly: otherwise a
      // brain that never acks or never replies to the close would hold it forever. It runs on a fiber of its
      // own because the finalizer's fiber may be the one being interrupted (Fiber.interrupt, SIGTERM
      // under runMain), and an interruptible region there would end before the goodbye. Its timeouts
      // bound the wait.
      Effect.interruptible,
      Effect.annotateLogs("module", "Agent"),
      Effect.forkDaemon,
      Effect.flatMap(Fiber.await)
    )
  )

  const status = Effect.gen(function* () {
    const connection = yield* Ref.get(state.stats)
    const session = yield* SubscriptionRef.get(state.session)
    const adapters = yield* registry.adapters
    return {
      connection,
      sessionId: Option.isSome(session) ? session.value.sessionId : null,
      brainVersion: Option.isSome(session) ? session.value.brainVersion : null,
      buffer: yield* buffer.stats,
      dispatcher: yield* dispatcher.stats,
      droppedEvents: yield* heartbeat.droppedEvents,
      engines: adapters.map((adapter) => ({ name: adapter.name, engine: adapter.engine }))
    }
  })

  const attachEngine = (adapter: EngineAdapter): Effect.Effect<void, EngineNameTaken> =>
    Effect.gen(function* () {
      const scope = yield* Scope.fork(agentScope, ExecutionStrategy.sequential)
      yield* registry.register(adapter).pipe(
        Scope.extend(scope),
        Effect.tapError(() => Scope.close(scope, Exit.void))
      )
    })

  return {
    sink: dispatcher.sink,
    emit: dispatcher.emit,
    registerEngine: registry.register,
    attachEngine,
    status,
    flush: dispatcher.flush,
    reconnectNow: supervisor.reconnectNow,
    renewSession: supervisor.renewSession
  }
})
