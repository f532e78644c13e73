import { createServer, type IncomingHttpHeaders } from "node:http"
import type { AddressInfo } from "node:net"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import { WebSocketServer } from "ws"
import { type ConnectOptions, connectWs } from "../../src/services/Connection.js"

/**
 * A loopback WebSocket server that records the headers of each upgrade request and echoes every text frame.
 * It completes upgrades with `ws`, so the test checks the client side only.
 */
const echoServer = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly upgrades: Array<IncomingHttpHeaders>; readonly close: () => void }>(
    (resume) => {
      const upgrades: Array<IncomingHttpHeaders> = []
      const sockets = new WebSocketServer({ noServer: true })
      sockets.on("connection", (socket) => {
        socket.on("message", (data) => socket.send(data.toString()))
      })
      const server = createServer()
      server.on("upgrade", (request, socket, head) => {
        upgrades.push(request.headers)
        sockets.handleUpgrade(request, socket, head, (client) => sockets.emit("connection", client, request))
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        const close = () => {
          for (const client of sockets.clients) client.terminate()
          sockets.close()
          server.close()
        }
        resume(Effect.succeed({ url: `ws://127.0.0.1:${port}/ws/agent`, upgrades, close }))
      })
    }
  ),
  (server) => Effect.sync(server.close)
)

const connectOptions = (url: string): ConnectOptions => ({
  url,
  token: Redacted.make("platform-test-token"),
  handshakeTimeoutMillis: 5_000,
  maxInboundFrameBytes: 1 << 20,
  pingIntervalMillis: 60_000,
  rejectUnauthorized: true
})

/** A stand-in for the global `WebSocket` (on by default from Node 22.0.0) that fails if anything constructs it. */
class ForbiddenWebSocket {
  constructor() {
    throw new Error("the agent constructed the global WebSocket; it must use the ws package")
  }
}

describe("Connection on this Node version", () => {
  it.scoped("upgrade request carries the Authorization header", () =>
    Effect.gen(function* () {
      const server = yield* echoServer
      const socket = yield* connectWs(connectOptions(server.url))

      expect(server.upgrades).toHaveLength(1)
      expect(server.upgrades[0]?.authorization).toBe("Bearer platform-test-token")

      yield* socket.send("hello")
      expect(yield* Queue.take(socket.messages)).toBe("hello")
    })
  )

  it.scoped("transport ignores the global WebSocket", () =>
    Effect.gen(function* () {
      const server = yield* echoServer
      const original = Object.getOwnPropertyDescriptor(globalThis, "WebSocket")
      yield* Effect.acquireRelease(
        Effect.sync(() =>
          Object.defineProperty(globalThis, "WebSocket", {
            value: ForbiddenWebSocket,
            configurable: true,
            writable: true
          })
        ),
        () =>
          Effect.sync(() => {
            if (original === undefined) Reflect.deleteProperty(globalThis, "WebSocket")
            else Object.defineProperty(globalThis, "WebSocket", original)
          })
      )

      const socket = yield* connectWs(connectOptions(server.url))

      yield* socket.send("still ws")
      expect(yield* Queue.take(socket.messages)).toBe("still ws")
    })
  )
})
