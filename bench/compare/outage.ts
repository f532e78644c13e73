/**
 * A loopback TCP relay in front of a brain that can play an outage: while down it cuts every open
 * connection and resets each new one on accept, as a brain that is unreachable would look to an agent.
 */
import * as net from "node:net"

/** A relay started by {@link startRelay}. */
export interface Relay {
  /** `ws://127.0.0.1:<port>`, to give the agent as its brain URL. */
  readonly url: string
  /** Connections open now. */
  readonly open: () => number
  readonly setDown: (down: boolean) => void
  readonly close: () => Promise<void>
}

/** Starts a relay on a free loopback port that forwards to `targetPort` on 127.0.0.1. */
export const startRelay = async (targetPort: number): Promise<Relay> => {
  const pairs = new Set<readonly [net.Socket, net.Socket]>()
  let down = false
  const server = net.createServer((client) => {
    if (down) {
      client.resetAndDestroy()
      return
    }
    const upstream = net.connect(targetPort, "127.0.0.1")
    const pair = [client, upstream] as const
    pairs.add(pair)
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on("error", end).on("close", end)
    upstream.on("error", end).on("close", end)
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    url: `ws://127.0.0.1:${port}`,
    open: () => pairs.size,
    setDown: (value) => {
      down = value
      if (!value) return
      for (const [client, upstream] of pairs) {
        client.resetAndDestroy()
        upstream.destroy()
      }
      pairs.clear()
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const [client, upstream] of pairs) {
          client.destroy()
          upstream.destroy()
        }
        server.close(() => resolve())
      })
  }
}
