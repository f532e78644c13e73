/**
 * A real protocol-v2 brain on a loopback port, for tests: bearer auth, hello/hello_ack, signed frames
 * in both directions with the replay guard, `event_batch_ack`s, commands and their results. It records
 * everything it receives and injects faults on request (refused auth, close codes, dropped
 * connections, withheld or delayed acks, a skewed clock).
 *
 * @since 0.1.0
 */

import { randomBytes, randomUUID } from "node:crypto"
import type { AddressInfo } from "node:net"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { type WebSocket, WebSocketServer } from "ws"
import {
  decodeAgentFrame,
  decodeHmacSecret,
  FrameSigner,
  FrameVerifier,
  formatPydanticDatetime,
  renderCanonical
} from "../protocol/index.js"

/**
 * One event as the brain received it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReceivedEvent {
  readonly id: string
  readonly kind: string
  readonly engine: string
  readonly task_id: string
  readonly occurred_at: string
  readonly data: Record<string, unknown>
  /** The frame id of the batch that carried it. */
  readonly batchId: string
  readonly sessionId: string
}

/**
 * One verified frame as the brain received it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReceivedFrame {
  readonly type: string
  readonly id: string
  readonly payload: Record<string, unknown>
  readonly sessionId: string
  readonly receivedAtMillis: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CommandResultRecord {
  readonly status: string
  readonly result: Record<string, unknown> | null
  readonly error: string | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TestBrainOptions {
  /** Default: a random token. */
  readonly token?: string
  /** Default: a free port. Give the port of a stopped brain to restart it at the same address. */
  readonly port?: number
  /** The project's HMAC secret as the brain shows it (base64url). Default: 32 random bytes. */
  readonly hmacSecret?: string
  /** Default: a random UUID. */
  readonly projectId?: string
  /** Default: a random UUID. */
  readonly agentId?: string
  readonly heartbeatIntervalSeconds?: number
  readonly maxFrameSizeBytes?: number
  /**
   * `brain_version` in hello_ack. Default `testbrain`: this brain speaks protocol 2 but is not a release
   * of z4j, so it does not claim one.
   */
  readonly brainVersion?: string
}

/**
 * Faults the brain injects, changeable at any time.
 *
 * @since 0.1.0
 * @category models
 */
export interface Faults {
  /** Close every new connection with 4401 after accepting it, as the real brain does for an unknown token. */
  refuseAuth: boolean
  /** Close every new connection right after its hello with this code (4426, 4429...). */
  closeAfterHello: number | undefined
  /** Do not acknowledge event batches. */
  withholdAcks: boolean
  /** Delay each event_batch_ack by this many milliseconds. */
  ackDelayMillis: number
  /** Added to the brain's clock, for its own timestamps and for checking the agent's. */
  clockSkewMillis: number
  /** Answer the hello with this protocol version instead of echoing the agent's. */
  helloAckProtocolVersion: string | undefined
}

interface Session {
  readonly id: string
  readonly socket: WebSocket
  readonly signer: FrameSigner
  readonly verifier: FrameVerifier
  readonly workerId: string | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TestBrainShape {
  /** `ws://127.0.0.1:<port>`; the agent appends `/ws/agent`. */
  readonly url: string
  readonly token: string
  /** The project's HMAC secret, base64url with padding, as the real brain hands it out. */
  readonly hmacSecret: string
  readonly projectId: string
  readonly agentId: string
  /** Options for `Z4j.layer` that point an agent at this brain. */
  readonly agentOptions: {
    readonly brainUrl: string
    readonly token: string
    readonly hmacSecret: string
    readonly projectId: string
  }
  readonly faults: Faults
  readonly hellos: ReadonlyArray<Record<string, unknown>>
  readonly frames: ReadonlyArray<ReceivedFrame>
  readonly events: ReadonlyArray<ReceivedEvent>
  /** Wire text of every signed frame the brain sent, oldest first, for replay tests. */
  readonly sentFrames: ReadonlyArray<string>
  /** Close codes the brain sent, and frames it rejected, with reasons. */
  readonly rejections: ReadonlyArray<{ readonly code: number; readonly reason: string }>
  /** Normal closes initiated by agents, with their code and reason. */
  readonly agentCloses: ReadonlyArray<{ readonly code: number; readonly reason: string }>
  readonly connectedSessions: () => number
  /** Sends a signed command to the first connected session and returns its id. */
  readonly sendCommand: (command: {
    readonly action: string
    readonly target?: { readonly type: string; readonly id: string | null } & Record<string, unknown>
    readonly parameters?: Record<string, unknown>
    readonly timeoutSeconds?: number
    readonly id?: string
  }) => string
  /** Sends a raw text frame to every session, for hostile-input tests. */
  readonly sendRaw: (text: string) => void
  /** Signs and sends an arbitrary frame to every session. */
  readonly sendSigned: (type: string, id: string, payload: Record<string, unknown>) => void
  readonly commandResult: (id: string) => CommandResultRecord | undefined
  readonly commandAcks: () => ReadonlyArray<string>
  /** Waits until `predicate` holds, polling every 10 ms, for at most `timeoutMillis`. */
  readonly waitFor: <A>(probe: () => A | undefined | false, timeoutMillis?: number) => Promise<A>
  /** Closes every connected session with `code`. */
  readonly closeAll: (code: number, reason?: string) => void
  /** Cuts every connected socket without a close handshake. */
  readonly dropAll: () => void
  readonly stop: () => Promise<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class TestBrain extends Context.Tag("z4j-agent/TestBrain")<TestBrain, TestBrainShape>() {}

const toBase64Url = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64").replace(/\+/g, "-").replace(/\//g, "_")

/**
 * Returns the options that start a brain at `brain`'s address with its token, HMAC secret and ids, so
 * that an agent of the stopped brain reconnects to the new one as to the same brain.
 *
 * @since 0.1.0
 * @category constructors
 */
export const sameAddress = (brain: TestBrainShape): TestBrainOptions => ({
  port: Number(new URL(brain.url).port),
  token: brain.token,
  hmacSecret: brain.hmacSecret,
  projectId: brain.projectId,
  agentId: brain.agentId
})

/**
 * Starts a brain on 127.0.0.1 with a free port. To restart a brain, stop it and start one with
 * {@link sameAddress}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = async (options: TestBrainOptions = {}): Promise<TestBrainShape> => {
  const token = options.token ?? randomBytes(32).toString("base64url")
  const secret =
    options.hmacSecret === undefined ? new Uint8Array(randomBytes(32)) : decodeHmacSecret(options.hmacSecret)
  const projectId = options.projectId ?? randomUUID()
  const agentId = options.agentId ?? randomUUID()
  const heartbeatIntervalSeconds = options.heartbeatIntervalSeconds ?? 10
  const maxFrameSizeBytes = options.maxFrameSizeBytes ?? 1_048_576
  const brainVersion = options.brainVersion ?? "testbrain"
  const faults: Faults = {
    refuseAuth: false,
    closeAfterHello: undefined,
    withholdAcks: false,
    ackDelayMillis: 0,
    clockSkewMillis: 0,
    helloAckProtocolVersion: undefined
  }
  const hellos: Array<Record<string, unknown>> = []
  const frames: Array<ReceivedFrame> = []
  const events: Array<ReceivedEvent> = []
  const seenEventIds = new Set<string>()
  const rejections: Array<{ code: number; reason: string }> = []
  const agentCloses: Array<{ code: number; reason: string }> = []
  const results = new Map<string, CommandResultRecord>()
  const sentFrames: Array<string> = []
  const acks: Array<string> = []
  const sessions = new Set<Session>()
  const now = () => new Date(Date.now() + faults.clockSkewMillis)

  const server = new WebSocketServer({
    host: "127.0.0.1",
    port: options.port ?? 0,
    path: "/ws/agent",
    perMessageDeflate: false
  })
  await new Promise<void>((resolve, reject) => {
    server.once("listening", () => resolve())
    server.once("error", reject)
  })
  const port = (server.address() as AddressInfo).port

  const reject = (socket: WebSocket, code: number, reason: string) => {
    rejections.push({ code, reason })
    socket.close(code)
  }

  const sendFrame = (session: Session, type: string, id: string, payload: Record<string, unknown>) => {
    if (session.socket.readyState !== session.socket.OPEN) return
    const text = session.signer.sign(type, id, renderCanonical(payload as never), now())
    sentFrames.push(text)
    // The real brain sends binary frames; doing the same checks that the agent decodes them.
    session.socket.send(Buffer.from(text, "utf8"))
  }

  const onSessionFrame = (session: Session, text: string) => {
    const verified = session.verifier.verify(text, now())
    if (Either.isLeft(verified)) {
      reject(session.socket, 4403, `${verified.left.reason}: ${verified.left.detail}`)
      return
    }
    const decoded = decodeAgentFrame(verified.right)
    if (Either.isLeft(decoded)) {
      reject(session.socket, 1011, decoded.left.message)
      return
    }
    const frame = decoded.right as unknown as { type: string; id: string; payload: Record<string, unknown> }
    frames.push({
      type: frame.type,
      id: frame.id,
      payload: frame.payload,
      sessionId: session.id,
      receivedAtMillis: Date.now()
    })
    switch (frame.type) {
      case "event_batch": {
        const batch = (frame.payload.events as Array<Record<string, unknown>>).slice(0, 1000)
        let accepted = 0
        for (const event of batch) {
          const id = String(event.id)
          if (!seenEventIds.has(id)) {
            seenEventIds.add(id)
            accepted += 1
          }
          events.push({ ...(event as unknown as ReceivedEvent), batchId: frame.id, sessionId: session.id })
        }
        if (faults.withholdAcks) return
        const ack = () =>
          sendFrame(session, "event_batch_ack", `eba_${frame.id}`.slice(0, 64), {
            acked_id: frame.id,
            received: batch.length,
            accepted,
            rejected: batch.length - accepted
          })
        if (faults.ackDelayMillis > 0) setTimeout(ack, faults.ackDelayMillis).unref()
        else ack()
        return
      }
      case "command_ack":
        acks.push(frame.id)
        return
      case "command_result":
        results.set(frame.id, {
          status: String(frame.payload.status),
          result: (frame.payload.result ?? null) as Record<string, unknown> | null,
          error: (frame.payload.error ?? null) as string | null
        })
        return
    }
  }

  server.on("connection", (socket, request) => {
    const header = request.headers.authorization ?? ""
    const parts = header.trim().split(/\s+/)
    const bearer = parts.length === 2 && parts[0]!.toLowerCase() === "bearer" ? parts[1] : undefined
    if (faults.refuseAuth || bearer !== token) {
      reject(socket, 4401, "bearer token missing or unknown")
      return
    }
    let session: Session | undefined
    socket.on("close", (code, reason) => {
      if (session !== undefined) sessions.delete(session)
      if (code === 1000 || code === 1001) agentCloses.push({ code, reason: reason.toString("utf8") })
    })
    socket.on("message", (data) => {
      const text = Array.isArray(data) ? Buffer.concat(data).toString("utf8") : data.toString("utf8")
      if (Buffer.byteLength(text) > maxFrameSizeBytes) {
        reject(socket, 4400, "frame larger than max_frame_size_bytes")
        return
      }
      if (session !== undefined) {
        onSessionFrame(session, text)
        return
      }
      let hello: Record<string, unknown>
      try {
        hello = JSON.parse(text)
      } catch {
        reject(socket, 4400, "first frame is not JSON")
        return
      }
      const payload = hello.payload as Record<string, unknown> | undefined
      if (hello.type !== "hello" || hello.v !== 2 || payload === undefined) {
        reject(socket, 4400, "first frame is not a hello")
        return
      }
      hellos.push(hello)
      if (payload.protocol_version !== "2") {
        reject(socket, 4426, "unsupported protocol version")
        return
      }
      if (faults.closeAfterHello !== undefined) {
        reject(socket, faults.closeAfterHello, "fault injected after hello")
        return
      }
      const sessionId = randomUUID()
      const binding = { agentId, projectId, sessionId }
      session = {
        id: sessionId,
        socket,
        signer: new FrameSigner(secret, binding),
        verifier: new FrameVerifier(secret, binding),
        workerId: typeof payload.worker_id === "string" ? payload.worker_id : null
      }
      for (const other of sessions) {
        if (other.workerId !== null && other.workerId === session.workerId) reject(other.socket, 4002, "replaced")
      }
      sessions.add(session)
      const ack = {
        v: 2,
        type: "hello_ack",
        id: `hack_${sessionId.replace(/-/g, "").slice(0, 12)}`,
        ts: formatPydanticDatetime(now()),
        payload: {
          protocol_version: faults.helloAckProtocolVersion ?? payload.protocol_version,
          brain_version: brainVersion,
          agent_id: agentId,
          project_id: projectId,
          session_id: sessionId,
          heartbeat_interval_seconds: heartbeatIntervalSeconds,
          max_frame_size_bytes: maxFrameSizeBytes
        }
      }
      socket.send(Buffer.from(renderCanonical(ack), "utf8"))
    })
  })

  const firstSession = () => {
    for (const session of sessions) return session
    return undefined
  }

  const waitFor = <A>(probe: () => A | undefined | false, timeoutMillis = 10_000): Promise<A> =>
    new Promise((resolve, rejectWait) => {
      const deadline = Date.now() + timeoutMillis
      const poll = () => {
        let value: A | undefined | false
        try {
          value = probe()
        } catch (error) {
          rejectWait(error)
          return
        }
        if (value !== undefined && value !== false) resolve(value)
        else if (Date.now() > deadline) rejectWait(new Error(`condition not met within ${timeoutMillis} ms`))
        else setTimeout(poll, 10)
      }
      poll()
    })

  const brainUrl = `ws://127.0.0.1:${port}`
  const hmacSecret = toBase64Url(secret)
  return {
    url: brainUrl,
    token,
    hmacSecret,
    projectId,
    agentId,
    agentOptions: { brainUrl, token, hmacSecret, projectId },
    faults,
    hellos,
    frames,
    events,
    sentFrames,
    rejections,
    agentCloses,
    connectedSessions: () => sessions.size,
    sendCommand: (command) => {
      const session = firstSession()
      if (session === undefined) throw new Error("no agent is connected to the test brain")
      const id = command.id ?? randomUUID()
      sendFrame(session, "command", id, {
        action: command.action,
        target: command.target ?? { type: "task", id: null },
        parameters: command.parameters ?? {},
        timeout_seconds: command.timeoutSeconds ?? 60,
        issued_by: null
      })
      return id
    },
    sendRaw: (text) => {
      for (const session of sessions) session.socket.send(text)
    },
    sendSigned: (type, id, payload) => {
      for (const session of sessions) sendFrame(session, type, id, payload)
    },
    commandResult: (id) => results.get(id),
    commandAcks: () => acks,
    waitFor,
    closeAll: (code, reason) => {
      for (const session of sessions) session.socket.close(code, reason)
    },
    dropAll: () => {
      for (const session of sessions) session.socket.terminate()
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const client of server.clients) client.terminate()
        server.close(() => resolve())
      })
  }
}

/**
 * The test brain as a scoped layer: started when the layer is built, stopped when it is released.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: TestBrainOptions = {}): Layer.Layer<TestBrain> =>
  Layer.scoped(
    TestBrain,
    Effect.acquireRelease(
      Effect.promise(() => start(options)),
      (brain) => Effect.promise(() => brain.stop())
    )
  )
