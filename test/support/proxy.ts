/**
 * A loopback TCP proxy between an agent and a test brain, for fault tests: it forwards bytes both
 * ways and, on request, cuts every connection, holds bytes back (pause), or delays them (latency).
 *
 * @since 0.1.0
 */
import * as net from "node:net"

/**
 * @since 0.1.0
 * @category models
 */
export interface TcpProxy {
  /** `ws://127.0.0.1:<port>`, to use as the agent's `brainUrl`. */
  readonly url: string
  readonly port: number
  /** Connections accepted since start. */
  readonly accepted: () => number
  /** Connections open now. */
  readonly open: () => number
  /** Destroys every open connection on both sides, without a WebSocket close. */
  readonly cutAll: () => void
  /** Holds bytes in both directions until `resume`; connections stay open. */
  readonly pause: () => void
  readonly resume: () => void
  /** Delays every chunk in both directions by this many milliseconds (0 turns it off). */
  readonly setLatency: (millis: number) => void
  /** Refuses new connections (they are destroyed on accept) until called with false. */
  readonly refuseNew: (refuse: boolean) => void
  readonly close: () => Promise<void>
}

interface Pair {
  readonly client: net.Socket
  readonly upstream: net.Socket
}

/**
 * Starts a proxy on 127.0.0.1 with a free port that forwards to `target` (a `ws://127.0.0.1:<port>` url
 * or a port number).
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = async (target: string | number): Promise<TcpProxy> => {
  const targetPort = typeof target === "number" ? target : Number(new URL(target).port)
  const pairs = new Set<Pair>()
  let accepted = 0
  let paused = false
  let latencyMillis = 0
  let refusing = false
  const held: Array<() => void> = []

  const forward = (from: net.Socket, to: net.Socket) => {
    from.on("data", (chunk: Buffer) => {
      const write = () => {
        if (!to.destroyed) to.write(chunk)
      }
      const deliver = () => (latencyMillis > 0 ? setTimeout(write, latencyMillis) : write())
      // Order matters on a byte stream: while paused, every chunk waits in `held`, and resume sends
      // them in arrival order.
      if (paused) held.push(deliver)
      else deliver()
    })
  }

  const server = net.createServer((client) => {
    accepted += 1
    if (refusing) {
      client.destroy()
      return
    }
    const upstream = net.connect({ host: "127.0.0.1", port: targetPort })
    const pair: Pair = { client, upstream }
    pairs.add(pair)
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on("error", end)
    upstream.on("error", end)
    client.on("close", end)
    upstream.on("close", end)
    forward(client, upstream)
    forward(upstream, client)
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const port = (server.address() as net.AddressInfo).port

  const cutAll = () => {
    for (const pair of pairs) {
      pair.client.resetAndDestroy()
      pair.upstream.destroy()
    }
    pairs.clear()
    held.length = 0
  }

  return {
    url: `ws://127.0.0.1:${port}`,
    port,
    accepted: () => accepted,
    open: () => pairs.size,
    cutAll,
    pause: () => {
      paused = true
    },
    resume: () => {
      paused = false
      for (const deliver of held.splice(0)) deliver()
    },
    setLatency: (millis) => {
      latencyMillis = millis
    },
    refuseNew: (refuse) => {
      refusing = refuse
    },
    close: () =>
      new Promise<void>((resolve) => {
        cutAll()
        server.close(() => resolve())
      })
  }
}
