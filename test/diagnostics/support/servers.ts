import * as http from "node:http"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import * as net from "node:net"
import * as tls from "node:tls"
import { WebSocketServer } from "ws"

/** A loopback server the tests start, with its port and a function that stops it. */
export interface Running {
  readonly port: number
  readonly stop: () => Promise<void>
}

const listen = async (server: net.Server): Promise<Running> => {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const sockets = new Set<net.Socket>()
  server.on("connection", (socket: net.Socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  server.on("secureConnection", (socket: net.Socket) => {
    sockets.add(socket)
    socket.on("close", () => sockets.delete(socket))
  })
  return {
    port: (server.address() as AddressInfo).port,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      })
  }
}

/** A port nothing listens on: bound, then released. */
export const closedPort = async (): Promise<number> => {
  const running = await listen(net.createServer())
  await running.stop()
  return running.port
}

/** Accepts TCP connections and never writes a byte. */
export const silentServer = (): Promise<Running> => listen(net.createServer(() => undefined))

export const tlsServer = (pair: { readonly key: string; readonly cert: string }): Promise<Running> =>
  listen(tls.createServer({ key: pair.key, cert: pair.cert }, (socket) => socket.end()))

/** Answers every request, upgrade requests included, with `status` and `headers`, as a proxy that strips Upgrade does. */
export const httpServer = (
  status: number,
  headers: Record<string, string> = {},
  pair?: { readonly key: string; readonly cert: string }
): Promise<Running> => {
  const handler = (_request: http.IncomingMessage, response: http.ServerResponse) => {
    response.writeHead(status, headers)
    response.end("not a websocket endpoint")
  }
  const server = pair === undefined ? http.createServer(handler) : https.createServer(pair, handler)
  return listen(server)
}

/** A WebSocket server on /ws/agent that closes every new socket with `closeCode`, or keeps it open when undefined. */
export const webSocketServer = async (
  closeCode: number | undefined
): Promise<Running & { readonly closes: ReadonlyArray<number> }> => {
  const server = http.createServer()
  const wss = new WebSocketServer({ server, path: "/ws/agent" })
  const closes: Array<number> = []
  wss.on("connection", (socket) => {
    socket.on("close", (code) => closes.push(code))
    if (closeCode !== undefined) socket.close(closeCode)
  })
  const running = await listen(server)
  return {
    ...running,
    closes,
    stop: async () => {
      for (const client of wss.clients) client.terminate()
      wss.close()
      await running.stop()
    }
  }
}
