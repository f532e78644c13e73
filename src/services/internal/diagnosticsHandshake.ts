import * as os from "node:os"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import {
  decodeHelloAck,
  encodeHeartbeatPayload,
  encodeHello,
  FrameSigner,
  FrameVerifier,
  formatPydanticDatetime,
  newHeartbeatId,
  parseIsoTimestamp
} from "../../protocol/index.js"
import { agentVersion, protocolVersion } from "../../version.js"
import { defaults } from "../AgentConfig.js"
import { type CloseInfo, connectWs, type Socket } from "../Connection.js"
import type { ProbeDetails, ProbeResult } from "../Diagnostics.js"
import type { HelloPayload } from "../HelloBuilder.js"
import { closeCause, upgradeStatusCause } from "./diagnosticsCauses.js"
import type { Target } from "./diagnosticsNetwork.js"
import { fail, pass } from "./diagnosticsResult.js"

export interface HandshakeOptions {
  readonly token: Redacted.Redacted<string>
  readonly secret: Redacted.Redacted<Uint8Array>
  readonly agentName: string
  readonly rejectUnauthorized: boolean
  readonly timeoutMillis: number
  /** How long to wait after the signed heartbeat for the brain to reject it. */
  readonly observeMillis: number
}

/** The brain's replay guard rejects frames whose `ts` is more than this far from its clock. */
const maxSkewMillis = 60_000

/**
 * A hello that announces no engines, from a worker id of its own so that it takes no running worker's
 * slot. NOTE: the brain stores a hello's engines and capabilities on the agent, so until the real
 * agent reconnects the dashboard shows this agent without engines.
 */
const doctorHello = (agentName: string): HelloPayload => ({
  protocol_version: protocolVersion,
  agent_version: agentVersion,
  framework: "node",
  engines: [],
  schedulers: [],
  capabilities: {},
  host: {
    name: agentName,
    hostname: os.hostname(),
    platform: `${process.platform}-${process.arch}`,
    runtime: `node ${process.versions.node}`
  },
  worker_id: `doctor-${process.pid}-${Date.now()}`,
  worker_role: null,
  worker_pid: process.pid,
  worker_started_at: formatPydanticDatetime(new Date())
})

const nextEvent = (socket: Socket) =>
  Effect.raceFirst(
    Effect.map(Queue.take(socket.messages), (text) => ({ _tag: "Message" as const, text })),
    Effect.map(Deferred.await(socket.closed), (close: CloseInfo) => ({ _tag: "Closed" as const, close }))
  )

const describeOffset = (offsetMillis: number | null): string => {
  if (offsetMillis === null) return "The brain's clock could not be read from its hello_ack"
  const seconds = Math.round(Math.abs(offsetMillis) / 1000)
  if (Math.abs(offsetMillis) > maxSkewMillis) {
    return `This machine's clock is about ${seconds} s ${offsetMillis > 0 ? "behind" : "ahead of"} the brain's, more than the 60 s the brain allows: fix the clock first`
  }
  return `This machine's clock is within about ${seconds} s of the brain's, so the secret is the likelier cause`
}

const closedDuring = (phase: string, close: CloseInfo, details: ProbeDetails, offsetMillis: number | null) => {
  const { cause, remedy } = closeCause(close.code)
  const clock = close.code === 4403 ? ` ${describeOffset(offsetMillis)}.` : ""
  return fail("handshake", `${phase}, ${cause}. ${remedy}.${clock}`, {
    ...details,
    closeCode: close.code,
    closeReason: close.reason
  })
}

/**
 * Sends a hello, reads the hello_ack, signs one heartbeat with the project secret, then watches the
 * socket for `observeMillis`: the brain closes with 4403 when the signature or the timestamp is wrong.
 * Frames the brain sends meanwhile (commands pending for the agent) are verified and counted, not run.
 */
export const probeHandshake = (target: Target, options: HandshakeOptions): Effect.Effect<ProbeResult> =>
  Effect.scoped(
    Effect.gen(function* () {
      const base = { url: target.url }
      const opened = yield* Effect.either(
        connectWs({
          url: target.url,
          token: options.token,
          handshakeTimeoutMillis: options.timeoutMillis,
          maxInboundFrameBytes: defaults.maxInboundFrameBytes,
          pingIntervalMillis: defaults.pingIntervalMillis,
          rejectUnauthorized: options.rejectUnauthorized
        })
      )
      if (Either.isLeft(opened)) {
        const error = opened.left
        if (error.reason === "http_status" && error.status !== undefined) {
          const { cause, remedy } = upgradeStatusCause(error.status, undefined)
          return fail("handshake", `${cause}. ${remedy}`, { ...base, status: error.status })
        }
        return fail("handshake", `cannot open the WebSocket (${error.reason}): ${error.detail}`, {
          ...base,
          code: error.reason
        })
      }
      const socket = opened.right

      const sentAtMillis = Date.now()
      const helloSent = yield* Effect.either(socket.send(encodeHello(doctorHello(options.agentName))))
      if (Either.isLeft(helloSent)) {
        return fail("handshake", `the socket closed before the hello was sent: ${helloSent.left.detail}`, base)
      }
      const first = yield* nextEvent(socket).pipe(Effect.timeout(options.timeoutMillis), Effect.option)
      if (first._tag === "None") {
        return fail(
          "handshake",
          `the brain sent no hello_ack within ${options.timeoutMillis} ms. Check that Z4J_BRAIN_URL points at a z4j brain`,
          { ...base, code: "timeout" }
        )
      }
      if (first.value._tag === "Closed") {
        return closedDuring("after the hello", first.value.close, base, null)
      }
      const receivedAtMillis = Date.now()
      const decoded = decodeHelloAck(first.value.text)
      if (Either.isLeft(decoded)) {
        return fail(
          "handshake",
          `the brain's first frame is not a valid hello_ack (${decoded.left.message}). Check that Z4J_BRAIN_URL points at a z4j brain speaking protocol ${protocolVersion}`,
          base
        )
      }
      const ack = decoded.right
      const brainTime = typeof ack.ts === "string" ? parseIsoTimestamp(ack.ts) : null
      // The brain stamped its ts between our send and our receive; the midpoint is the best local estimate.
      const offsetMillis =
        brainTime === null ? null : Math.round(brainTime.epochMicros / 1000 - (sentAtMillis + receivedAtMillis) / 2)
      const details = {
        ...base,
        brainVersion: ack.payload.brain_version,
        agentId: ack.payload.agent_id,
        projectId: ack.payload.project_id,
        sessionId: ack.payload.session_id,
        heartbeatIntervalSeconds: ack.payload.heartbeat_interval_seconds,
        maxFrameSizeBytes: ack.payload.max_frame_size_bytes,
        clockOffsetMillis: offsetMillis
      }
      if (ack.payload.protocol_version !== protocolVersion) {
        return fail(
          "handshake",
          `the brain answered with protocol version "${ack.payload.protocol_version}", and this agent speaks "${protocolVersion}". Upgrade z4j-agent or the brain so that both speak the same version`,
          details
        )
      }

      const binding = {
        agentId: ack.payload.agent_id,
        projectId: ack.payload.project_id,
        sessionId: ack.payload.session_id
      }
      const secret = Redacted.value(options.secret)
      const signer = new FrameSigner(secret, binding)
      const verifier = new FrameVerifier(secret, binding)
      const heartbeat = encodeHeartbeatPayload({
        buffer_size: 0,
        last_flush_at: null,
        dropped_events: 0,
        adapter_health: {}
      })
      const heartbeatSent = yield* Effect.either(
        socket.send(() => signer.sign("heartbeat", newHeartbeatId(), heartbeat))
      )
      if (Either.isLeft(heartbeatSent)) {
        return fail(
          "handshake",
          `the socket closed before the heartbeat was sent: ${heartbeatSent.left.detail}`,
          details
        )
      }

      const closed = yield* Deferred.await(socket.closed).pipe(Effect.timeout(options.observeMillis), Effect.option)
      if (closed._tag === "Some") {
        return closedDuring("after the signed heartbeat", closed.value, details, offsetMillis)
      }

      const inbound = yield* Queue.takeAll(socket.messages)
      let commands = 0
      const rejected: Array<string> = []
      for (const text of inbound) {
        const verified = verifier.verify(text, new Date())
        if (Either.isLeft(verified)) {
          rejected.push(verified.left.reason)
        } else if (verified.right.type === "command") {
          commands += 1
        }
      }
      const reply = yield* socket.close(1000, "z4j-agent doctor", 2_000)
      const observed = {
        ...details,
        observeMillis: options.observeMillis,
        inboundFrames: inbound.length,
        commandsReceived: commands,
        rejectedFrames: rejected,
        closeCode: reply.code
      }
      if (rejected.length > 0) {
        return fail(
          "handshake",
          `the brain accepted the signed heartbeat, but ${rejected.length} of its frames failed verification here (${rejected.join(", ")}). Check Z4J_HMAC_SECRET and this machine's clock`,
          observed
        )
      }
      const pending =
        commands === 0
          ? ""
          : `; the brain delivered ${commands} pending commands to this session, which were not run and will time out on the brain`
      return pass(
        "handshake",
        `hello_ack from brain ${ack.payload.brain_version} (session ${ack.payload.session_id}), and the brain accepted a signed heartbeat for ${options.observeMillis} ms${pending}`,
        observed
      )
    })
  )
