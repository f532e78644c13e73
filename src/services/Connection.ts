/**
 * The WebSocket transport to the brain, on the `ws` package, on every Node version: it sends the
 * `Authorization` header the brain requires on the upgrade request (Node 20 has no stable global
 * `WebSocket`), reports the HTTP status of a refused upgrade, bounds the handshake time and the
 * inbound frame size, and exposes ping/pong for liveness.
 *
 * @since 0.1.0
 */

import type { IncomingMessage } from "node:http"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import type * as Redacted from "effect/Redacted"
import { value as redactedValue } from "effect/Redacted"
import type * as Scope from "effect/Scope"
import WebSocket from "ws"

/**
 * The failure of a connection attempt before the socket opened.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectFailed extends Data.TaggedError("ConnectFailed")<{
  readonly url: string
  readonly reason: "refused" | "dns" | "timeout" | "tls" | "http_status" | "network"
  /** The HTTP status when the server answered the upgrade request with something other than 101. */
  readonly status?: number | undefined
  readonly detail: string
}> {
  override get message(): string {
    const status = this.status === undefined ? "" : ` (HTTP ${this.status})`
    return `Could not connect to ${this.url}: ${this.reason}${status}: ${this.detail}`
  }
}

/**
 * The socket is closed; sending is no longer possible.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionClosed extends Data.TaggedError("ConnectionClosed")<{ readonly detail: string }> {}

/**
 * The end of a socket: its close code, its reason, and which side closed it.
 *
 * @since 0.1.0
 * @category models
 */
export interface CloseInfo {
  readonly code: number
  readonly reason: string
  /** True when this side started the close handshake. */
  readonly initiatedLocally: boolean
}

/**
 * An open socket. Inbound messages, text or binary, arrive as UTF-8 text in `messages`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Socket {
  /**
   * Sends one text frame and resolves once it has been handed to the operating system, which gives
   * senders backpressure. A function is called right before the write, in the same synchronous step,
   * so frames that carry a sequence number leave in the order they were numbered.
   */
  readonly send: (text: string | (() => string)) => Effect.Effect<void, ConnectionClosed>
  readonly messages: Queue.Dequeue<string>
  readonly closed: Deferred.Deferred<CloseInfo>
  /** Starts the close handshake and waits for the peer's reply, at most `timeoutMillis`, then cuts the socket. */
  readonly close: (code: number, reason: string, timeoutMillis: number) => Effect.Effect<CloseInfo>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions {
  readonly url: string
  readonly token: Redacted.Redacted<string>
  readonly handshakeTimeoutMillis: number
  readonly maxInboundFrameBytes: number
  readonly pingIntervalMillis: number
  readonly rejectUnauthorized: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectionShape {
  /** Opens a socket; closing the scope cuts it if it is still open. */
  readonly connect: (options: ConnectOptions) => Effect.Effect<Socket, ConnectFailed, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Connection extends Context.Tag("z4j-agent/Connection")<Connection, ConnectionShape>() {}

const classifyError = (url: string, error: Error & { code?: string }): ConnectFailed => {
  const code = error.code ?? ""
  const match = /Unexpected server response: (\d+)/.exec(error.message)
  if (match !== null) {
    return new ConnectFailed({ url, reason: "http_status", status: Number(match[1]), detail: error.message })
  }
  if (code === "ECONNREFUSED") return new ConnectFailed({ url, reason: "refused", detail: error.message })
  if (code === "ENOTFOUND" || code === "EAI_AGAIN")
    return new ConnectFailed({ url, reason: "dns", detail: error.message })
  if (code === "ETIMEDOUT" || /timed out/i.test(error.message)) {
    return new ConnectFailed({ url, reason: "timeout", detail: error.message })
  }
  if (code.startsWith("ERR_TLS") || code.includes("CERT") || code === "DEPTH_ZERO_SELF_SIGNED_CERT") {
    return new ConnectFailed({ url, reason: "tls", detail: `${code}: ${error.message}` })
  }
  return new ConnectFailed({
    url,
    reason: "network",
    detail: code === "" ? error.message : `${code}: ${error.message}`
  })
}

const toText = (data: WebSocket.RawData): string => {
  if (Array.isArray(data)) return Buffer.concat(data).toString("utf8")
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString("utf8")
  return data.toString("utf8")
}

/**
 * Opens a socket with `ws`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connectWs = (options: ConnectOptions): Effect.Effect<Socket, ConnectFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const messages = yield* Queue.unbounded<string>()
    const closed = yield* Deferred.make<CloseInfo>()
    let closingLocally = false

    const ws = yield* Effect.acquireRelease(
      Effect.async<WebSocket, ConnectFailed>((resume) => {
        const socket = new WebSocket(options.url, {
          headers: { Authorization: `Bearer ${redactedValue(options.token)}` },
          handshakeTimeout: options.handshakeTimeoutMillis,
          maxPayload: options.maxInboundFrameBytes,
          perMessageDeflate: false,
          rejectUnauthorized: options.rejectUnauthorized,
          followRedirects: false
        })
        let opened = false
        socket.on("unexpected-response", (_request, response: IncomingMessage) => {
          response.resume()
          socket.terminate()
          resume(
            Effect.fail(
              new ConnectFailed({
                url: options.url,
                reason: "http_status",
                status: response.statusCode,
                detail:
                  `the server answered the upgrade request with HTTP ${response.statusCode} ${response.statusMessage ?? ""}`.trim()
              })
            )
          )
        })
        socket.on("error", (error) => {
          if (!opened) resume(Effect.fail(classifyError(options.url, error)))
        })
        socket.on("message", (data) => {
          messages.unsafeOffer(toText(data))
        })
        socket.on("close", (code, reason) => {
          Deferred.unsafeDone(
            closed,
            Effect.succeed({ code, reason: reason.toString("utf8"), initiatedLocally: closingLocally })
          )
        })
        socket.once("open", () => {
          opened = true
          resume(Effect.succeed(socket))
        })
        return Effect.sync(() => socket.terminate())
      }),
      (socket) => Effect.sync(() => socket.terminate())
    )

    // A peer that stops answering pings is gone even if TCP has not noticed; cut it so the
    // supervisor reconnects instead of waiting for the operating system's timeout.
    let awaitingPong = false
    ws.on("pong", () => {
      awaitingPong = false
    })
    const pinger = setInterval(() => {
      if (awaitingPong) {
        ws.terminate()
        return
      }
      awaitingPong = true
      ws.ping()
    }, options.pingIntervalMillis)
    pinger.unref()
    yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(pinger)))

    const send = (text: string | (() => string)): Effect.Effect<void, ConnectionClosed> =>
      Effect.async<void, ConnectionClosed>((resume) => {
        if (ws.readyState !== WebSocket.OPEN) {
          resume(Effect.fail(new ConnectionClosed({ detail: "the socket is not open" })))
          return
        }
        let frame: string
        try {
          frame = typeof text === "string" ? text : text()
        } catch (error) {
          resume(Effect.die(error))
          return
        }
        ws.send(frame, (error) => {
          resume(error ? Effect.fail(new ConnectionClosed({ detail: error.message })) : Effect.void)
        })
      })

    const close = (code: number, reason: string, timeoutMillis: number): Effect.Effect<CloseInfo> =>
      Effect.gen(function* () {
        closingLocally = true
        if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
          ws.close(code, reason)
        }
        const reply = yield* Deferred.await(closed).pipe(Effect.timeout(timeoutMillis), Effect.option)
        if (reply._tag === "Some") return reply.value
        ws.terminate()
        return { code: 1006, reason: "no close reply from the peer", initiatedLocally: true }
      })

    return { send, messages, closed, close }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerWs: Layer.Layer<Connection> = Layer.succeed(Connection, { connect: connectWs })
