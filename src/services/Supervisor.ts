/**
 * Keeps the agent connected: connect, handshake, run the session (sender, heartbeat, receive loop),
 * and after any failure reconnect with a backoff chosen by the failure's class. Only a version
 * refusal by the brain stops it for good.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import * as SubscriptionRef from "effect/SubscriptionRef"
import { encodeRegistryDeltaPayload, type FrameVerifier } from "../protocol/index.js"
import { AgentConfig, defaults } from "./AgentConfig.js"
import { AgentState, type FailureClass, type LiveSession } from "./AgentState.js"
import { CommandRouter } from "./CommandRouter.js"
import { type CloseInfo, type ConnectFailed, Connection, type Socket } from "./Connection.js"
import { DispatcherRuntime } from "./Dispatcher.js"
import { Heartbeat } from "./Heartbeat.js"
import { HelloBuilder } from "./HelloBuilder.js"
import { classifyConnectFailure, type Failure } from "./internal/failures.js"
import { handshake, openSession, type SessionFailure } from "./internal/session.js"

/**
 * The brain refused this agent in a way reconnecting cannot fix (an unsupported protocol version).
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentRefused extends Data.TaggedError("AgentRefused")<{ readonly reason: string }> {
  override get message(): string {
    return this.reason
  }
}

/**
 * Base and cap of the reconnect delay per failure class; each delay doubles up to its cap, plus a
 * random 0-30 % so a fleet of workers does not reconnect in step.
 *
 * @since 0.1.0
 * @category constants
 */
export const backoffMillis: Readonly<Record<FailureClass, { readonly base: number; readonly cap: number }>> = {
  network: { base: 1_000, cap: 30_000 },
  protocol: { base: 1_000, cap: 60_000 },
  auth: { base: 10_000, cap: 600_000 }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SupervisorShape {
  /** Connects and stays connected until interrupted; fails only when the brain refuses the agent for good. */
  readonly run: Effect.Effect<void, AgentRefused>
  /** Ends the current backoff wait at once (what SIGHUP does under `runForever`). */
  readonly reconnectNow: Effect.Effect<void>
  /**
   * Closes the live connection with 1000 "engines changed" and connects again without a backoff wait, so
   * that the next hello lists the engines registered now. Without a live connection it does what
   * `reconnectNow` does.
   */
  readonly renewSession: Effect.Effect<void>
  /** Closes the live socket with 1000 "goodbye" and waits for the brain's close reply, at most `timeoutMillis`. */
  readonly goodbye: (timeoutMillis: number) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Supervisor extends Context.Tag("z4j-agent/Supervisor")<Supervisor, SupervisorShape>() {}

/** How long renewSession waits for the brain's reply to its close. */
const closeReplyTimeoutMillis = 2_000

/** Streak lengths at which a repeated failure is logged again at warning level. */
const isLoggedStreak = (streak: number) => streak === 1 || (streak >= 10 && Number.isInteger(Math.log10(streak)))

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<
  SupervisorShape,
  never,
  AgentConfig | AgentState | CommandRouter | Connection | DispatcherRuntime | Heartbeat | HelloBuilder
> = Effect.gen(function* () {
  const config = yield* AgentConfig
  const state = yield* AgentState
  const router = yield* CommandRouter
  const connection = yield* Connection
  const dispatcher = yield* DispatcherRuntime
  const heartbeat = yield* Heartbeat
  const helloBuilder = yield* HelloBuilder

  const wakeUp = yield* Queue.sliding<void>(1)
  const delays: Record<FailureClass, number> = {
    network: backoffMillis.network.base,
    protocol: backoffMillis.protocol.base,
    auth: backoffMillis.auth.base
  }
  let currentSocket: Socket | undefined
  let lastLoggedError: string | undefined
  let stopping = false
  let renewing = false

  const setPhase = (phase: "connecting" | "connected" | "backoff" | "terminal" | "stopping") =>
    Ref.update(state.stats, (stats) => ({ ...stats, phase }))

  const recordFailure = (failureClass: FailureClass, failure: Failure) =>
    Effect.gen(function* () {
      const stats = yield* Ref.updateAndGet(state.stats, (stats) => ({
        ...stats,
        failureStreaks: { ...stats.failureStreaks, [failureClass]: stats.failureStreaks[failureClass] + 1 },
        lastError: failure.message
      }))
      const streak = stats.failureStreaks[failureClass]
      const line = `${failure.message}. ${failure.remedy}`
      if (line !== lastLoggedError || isLoggedStreak(streak)) {
        lastLoggedError = line
        const repeats = streak > 1 ? ` (${streak} failures in a row)` : ""
        yield* Effect.logWarning(`${line}${repeats}`)
      } else {
        yield* Effect.logDebug(line)
      }
    })

  const waitBackoff = (failureClass: FailureClass) =>
    Effect.gen(function* () {
      const base = delays[failureClass]
      delays[failureClass] = Math.min(base * 2, backoffMillis[failureClass].cap)
      const jitter = yield* Random.nextRange(0, 0.3)
      const millis = Math.round(base * (1 + jitter))
      yield* setPhase("backoff")
      yield* Effect.logDebug(`reconnecting in ${millis} ms (${failureClass} backoff)`)
      yield* Queue.takeAll(wakeUp)
      yield* Effect.raceFirst(Effect.sleep(millis), Queue.take(wakeUp))
    })

  const runSession = (
    socket: Socket,
    session: LiveSession & { readonly verifier: FrameVerifier },
    sessionScope: Scope.Scope
  ) =>
    Effect.gen(function* () {
      const nowMillis = yield* Clock.currentTimeMillis
      yield* Ref.update(state.stats, (stats) => ({
        ...stats,
        phase: "connected" as const,
        failureStreaks: { network: 0, protocol: 0, auth: 0 },
        lastSuccessfulConnectAtMillis: nowMillis,
        lastError: null,
        connectsTotal: stats.connectsTotal + 1
      }))
      delays.network = backoffMillis.network.base
      delays.protocol = backoffMillis.protocol.base
      delays.auth = backoffMillis.auth.base
      lastLoggedError = undefined
      yield* SubscriptionRef.set(state.session, Option.some(session))
      yield* Effect.logInfo(`connected to the brain (version ${session.brainVersion})`)

      yield* Effect.addFinalizer(() => SubscriptionRef.set(state.session, Option.none()))
      yield* dispatcher.attach(session)
      yield* heartbeat.attach(session)
      yield* Queue.take(dispatcher.registryDeltas).pipe(
        Effect.flatMap((delta) =>
          session.send("registry_delta", `rd_${session.sessionId.slice(0, 8)}`, encodeRegistryDeltaPayload(delta))
        ),
        Effect.forever,
        Effect.ignore,
        Effect.forkScoped
      )
      return yield* openSession(socket, session, { dispatcher, router, state })
    }).pipe(Scope.extend(sessionScope))

  const attempt: Effect.Effect<SessionFailure, never> = Effect.scoped(
    Effect.gen(function* () {
      yield* setPhase("connecting")
      const socketExit = yield* connection
        .connect({
          url: config.brainUrl,
          token: config.token,
          handshakeTimeoutMillis: config.handshakeTimeoutMillis,
          maxInboundFrameBytes: defaults.maxInboundFrameBytes,
          pingIntervalMillis: defaults.pingIntervalMillis,
          rejectUnauthorized: config.rejectUnauthorized
        })
        .pipe(Effect.either)
      if (socketExit._tag === "Left") return classifyConnectFailure(socketExit.left as ConnectFailed)
      const socket = socketExit.right
      currentSocket = socket
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          currentSocket = undefined
        })
      )
      const hello = yield* helloBuilder.build
      const established = yield* handshake(socket, hello, {
        secret: Redacted.value(config.hmacSecret),
        timeoutMillis: config.handshakeTimeoutMillis
      }).pipe(Effect.either)
      if (established._tag === "Left") return established.left
      const sessionScope = yield* Effect.scope
      return yield* runSession(socket, established.right, sessionScope)
    })
  )

  // A defect in one attempt (a bug in a transport, a decoder or an adapter hook) ends that attempt
  // only: without this, it would end the supervisor and the agent would never connect again.
  const guardedAttempt: Effect.Effect<SessionFailure, never> = Effect.catchAllDefect(
    attempt,
    (defect): Effect.Effect<SessionFailure> =>
      Effect.succeed({
        class: "protocol",
        message: `the connection failed on an internal error: ${defect instanceof Error ? defect.message : String(defect)}`,
        remedy: "The agent reconnects; report this error to the z4j-agent maintainers with the agent's debug log"
      })
  )

  const run: Effect.Effect<void, AgentRefused> = Effect.gen(function* () {
    while (!stopping) {
      const failure = yield* guardedAttempt
      if (stopping) return
      if (renewing) {
        // The session ended because renewSession closed it, which is no failure to back off from.
        renewing = false
        continue
      }
      const failureClass = failure.class
      if (failureClass === "terminal") {
        yield* Ref.update(state.stats, (stats) => ({
          ...stats,
          phase: "terminal" as const,
          terminalReason: `${failure.message}. ${failure.remedy}`,
          lastError: failure.message
        }))
        yield* Effect.logError(`${failure.message}. ${failure.remedy} The agent will not reconnect.`)
        return yield* new AgentRefused({ reason: `${failure.message}. ${failure.remedy}` })
      }
      yield* recordFailure(failureClass, failure)
      yield* waitBackoff(failureClass)
    }
  }).pipe(Effect.annotateLogs("module", "Supervisor"))

  const goodbye = (timeoutMillis: number): Effect.Effect<void> =>
    Effect.gen(function* () {
      stopping = true
      yield* setPhase("stopping")
      const socket = currentSocket
      if (socket === undefined) return
      const reply: CloseInfo = yield* socket.close(1000, "goodbye", timeoutMillis)
      yield* Effect.logDebug(`connection closed (code ${reply.code})`)
    }).pipe(Effect.annotateLogs("module", "Supervisor"))

  const reconnectNow = Effect.asVoid(Queue.offer(wakeUp, undefined))

  const renewSession: Effect.Effect<void> = Effect.gen(function* () {
    const socket = currentSocket
    if (socket === undefined || stopping) return yield* reconnectNow
    renewing = true
    yield* Effect.logInfo("reconnecting so that the brain receives the new list of engines")
    yield* socket.close(1000, "engines changed", closeReplyTimeoutMillis)
  }).pipe(Effect.annotateLogs("module", "Supervisor"))

  return {
    run,
    reconnectNow,
    renewSession,
    goodbye
  }
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  Supervisor,
  never,
  AgentConfig | AgentState | CommandRouter | Connection | DispatcherRuntime | Heartbeat | HelloBuilder
> = Layer.effect(Supervisor, make)
