import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import type { CommandRequest } from "../../engines/EngineAdapter.js"
import {
  type CommandFrame,
  decodeBrainFrame,
  decodeHelloAck,
  encodeHello,
  FrameSigner,
  FrameVerifier,
  parsePlain
} from "../../protocol/index.js"
import { protocolVersion } from "../../version.js"
import type { AgentStateShape, LiveSession } from "../AgentState.js"
import type { CommandRouterShape } from "../CommandRouter.js"
import type { CloseInfo, Socket } from "../Connection.js"
import type { HelloPayload } from "../HelloBuilder.js"
import type { DispatcherRuntime } from "./dispatcher.js"
import { classifyClose, type Failure } from "./failures.js"

/** The outcome of a session or a connection attempt. */
export type SessionFailure = Failure

const nextMessage = (socket: Socket) =>
  Effect.raceFirst(
    Effect.map(Queue.take(socket.messages), (text) => ({ _tag: "Message" as const, text })),
    Effect.map(Deferred.await(socket.closed), (close: CloseInfo) => ({ _tag: "Closed" as const, close }))
  )

const verificationRemedy =
  "Check Z4J_HMAC_SECRET (it must be the hmac_secret the brain returned for this project) and this machine's clock (keep NTP running: the brain and the agent reject frames more than 60 s off)"

/**
 * Sends the hello and reads the hello_ack; on success returns a session whose `send` signs frames
 * with this session's keys and sequence.
 */
export const handshake = (
  socket: Socket,
  hello: HelloPayload,
  options: { readonly secret: Uint8Array; readonly timeoutMillis: number }
): Effect.Effect<LiveSession & { readonly verifier: FrameVerifier }, Failure> =>
  Effect.gen(function* () {
    const sent = yield* Effect.either(socket.send(encodeHello(hello)))
    if (Either.isLeft(sent)) {
      // The brain closes right after accepting a socket it refuses (an unknown token, a rate limit), so
      // the close code, when one arrives, says more than the failed write.
      const close = yield* Deferred.await(socket.closed).pipe(Effect.timeout(1_000), Effect.option)
      if (close._tag === "Some") return yield* Effect.fail(classifyClose(close.value, "handshake"))
      return yield* Effect.fail<Failure>({
        class: "network",
        message: `the connection closed before the hello was sent: ${sent.left.detail}`,
        remedy: "Check that the brain is running"
      })
    }
    const first = yield* nextMessage(socket).pipe(
      Effect.timeoutFail({
        duration: options.timeoutMillis,
        onTimeout: (): Failure => ({
          class: "network",
          message: `the brain sent no hello_ack within ${options.timeoutMillis} ms`,
          remedy: "Check that Z4J_BRAIN_URL points at a z4j brain and that nothing between holds the connection"
        })
      })
    )
    if (first._tag === "Closed") return yield* Effect.fail(classifyClose(first.close, "handshake"))
    const decoded = Either.flatMap(
      Either.try({ try: () => parsePlain(first.text), catch: (error) => error as Error }),
      (plain) => decodeHelloAck(plain)
    )
    if (Either.isLeft(decoded)) {
      return yield* Effect.fail<Failure>({
        class: "protocol",
        message: `the brain's first frame is not a valid hello_ack: ${decoded.left.message}`,
        remedy: "Check that Z4J_BRAIN_URL points at a z4j brain speaking protocol 2"
      })
    }
    const ack = decoded.right.payload
    if (ack.protocol_version !== protocolVersion) {
      return yield* Effect.fail<Failure>({
        class: "protocol",
        message: `the brain answered with protocol version "${ack.protocol_version}", and this agent speaks "${protocolVersion}"`,
        remedy: "Upgrade z4j-agent or the brain so that both speak the same protocol version"
      })
    }
    const binding = { agentId: ack.agent_id, projectId: ack.project_id, sessionId: ack.session_id }
    const signer = new FrameSigner(options.secret, binding)
    const verifier = new FrameVerifier(options.secret, binding)
    const connectedAtMillis = yield* Clock.currentTimeMillis
    return {
      sessionId: ack.session_id,
      agentId: ack.agent_id,
      projectId: ack.project_id,
      brainVersion: ack.brain_version,
      heartbeatIntervalMillis: ack.heartbeat_interval_seconds * 1000,
      maxFrameBytes: ack.max_frame_size_bytes,
      connectedAtMillis,
      verifier,
      send: (type: string, id: string, payload: string) => socket.send(() => signer.sign(type, id, payload))
    }
  })

const toCommandRequest = (frame: CommandFrame): CommandRequest => ({
  id: frame.id,
  action: frame.payload.action,
  target: frame.payload.target,
  parameters: frame.payload.parameters,
  timeoutSeconds: frame.payload.timeout_seconds,
  issuedBy: frame.payload.issued_by ?? null,
  deliveryClaimToken: frame.payload.delivery_claim_token ?? null
})

/**
 * Legacy schedule events, which brains with sequenced schedule control (z4j 1.13) reject. Sequenced
 * projections have the same kinds and carry `external_projection` in their data.
 */
const isScheduleEvent = (body: string) =>
  /"kind":"schedule\.(snapshot|created|updated|deleted)"/.test(body) && !body.includes('"external_projection":')

/**
 * The brain's `error` frames. `scheduler_upgrade_required` answers a batch that carried a legacy
 * schedule event: the brain stored the batch's other events but will never acknowledge it, so the
 * batch is settled here instead of being sent again forever, and legacy snapshots stop for this process.
 * Schedulers whose stream the brain activated keep sending sequenced projections.
 */
const onBrainError = (
  frameId: string,
  payload: { readonly code: string; readonly message: string },
  services: { readonly dispatcher: DispatcherRuntime; readonly state: AgentStateShape }
) =>
  Effect.gen(function* () {
    if (payload.code !== "scheduler_upgrade_required") {
      yield* Effect.logWarning(`the brain reported an error: ${payload.code}: ${payload.message}`)
      return
    }
    const reason = `the brain refused a legacy schedule snapshot (${payload.code}: ${payload.message}); legacy snapshots are off, and only schedulers whose stream the brain activates are sent`
    const discarded = frameId.startsWith("err_")
      ? yield* services.dispatcher.settleRefused(frameId.slice(4), isScheduleEvent, reason)
      : undefined
    const previous = yield* Ref.getAndUpdate(services.state.stats, (stats) => ({
      ...stats,
      scheduleSnapshotsRefused: stats.scheduleSnapshotsRefused ?? reason
    }))
    if (previous.scheduleSnapshotsRefused === null) {
      yield* Effect.logWarning(`${reason} (${discarded ?? 0} schedule event(s) discarded and counted as dropped)`)
    }
  })

/**
 * Frame types whose first ignored frame is logged as a warning, per session. A brain that sends many
 * distinct unknown types would otherwise get a warning, and a remembered type, for each.
 */
const maxWarnedIgnoredTypes = 10

/**
 * The receive loop of a live session: verifies every inbound frame, applies acks, hands commands to
 * the router, and returns how the session ended. A frame that fails verification ends the session,
 * because the reference agent does the same and a new session resets both sequence counters.
 */
export const openSession = (
  socket: Socket,
  session: LiveSession & { readonly verifier: FrameVerifier },
  services: {
    readonly dispatcher: DispatcherRuntime
    readonly router: CommandRouterShape
    readonly state: AgentStateShape
  }
): Effect.Effect<Failure> =>
  Effect.gen(function* () {
    const ignoredTypes = new Set<string>()
    while (true) {
      const next = yield* nextMessage(socket)
      if (next._tag === "Closed") return classifyClose(next.close, "session")
      const verified = session.verifier.verify(next.text, new Date())
      if (Either.isLeft(verified)) {
        yield* Effect.logWarning(`rejected a frame from the brain (${verified.left.reason}): ${verified.left.detail}`)
        yield* socket.close(1008, "frame failed verification", 2_000)
        return {
          class: "protocol" as const,
          message: `a frame from the brain failed verification (${verified.left.reason})`,
          remedy: verificationRemedy
        }
      }
      const frame = decodeBrainFrame(verified.right)
      if (Either.isLeft(frame)) {
        const type = String((verified.right as { type?: unknown }).type)
        if (ignoredTypes.has(type) || ignoredTypes.size > maxWarnedIgnoredTypes) {
          yield* Effect.logDebug(`ignored a frame from the brain: ${frame.left.message}`)
        } else if (ignoredTypes.size === maxWarnedIgnoredTypes) {
          ignoredTypes.add(type)
          yield* Effect.logWarning(
            `ignored frames of ${maxWarnedIgnoredTypes} types from the brain; further ignored frames are logged at debug level`
          )
        } else {
          ignoredTypes.add(type)
          yield* Effect.logWarning(`ignored a frame from the brain: ${frame.left.message}`)
        }
        continue
      }
      switch (frame.right.type) {
        case "event_batch_ack":
          yield* services.dispatcher.acknowledge(frame.right.payload.acked_id)
          break
        case "command":
          yield* services.router.handle(toCommandRequest(frame.right), session)
          break
        case "error":
          yield* onBrainError(frame.right.id, frame.right.payload, services)
          break
      }
    }
  })
