/**
 * A private `redis-server` for tests: a free loopback port, a temporary directory and no persistence,
 * so a test never touches a Redis that runs on the machine already.
 *
 * Use it from vitest hooks (`const redis = await startRedis()` in `beforeAll`, `await redis.stop()` in
 * `afterAll`) or as an Effect scoped resource (`yield* RedisServer.scoped`).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer, Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/** A running private Redis. */
export interface RedisServer {
  readonly host: "127.0.0.1"
  readonly port: number
  /** `redis://127.0.0.1:<port>`, for clients that take a URL. */
  readonly url: string
  /** Stops the server and removes its directory; safe to call twice. */
  readonly stop: () => Promise<void>
}

const redisBinary = (): string => {
  try {
    return execFileSync("sh", ["-c", "command -v redis-server"], { encoding: "utf8" }).trim()
  } catch {
    throw new Error(
      "redis-server is not installed, and the BullMQ tests need a private Redis; install it with `apt-get install redis-server`"
    )
  }
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const ping = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = new Socket()
    let reply = ""
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.once("error", () => done(false))
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1")
      if (reply.includes("\r\n")) done(reply.startsWith("+PONG"))
    })
    socket.connect(port, "127.0.0.1", () => socket.write("PING\r\n"))
  })

const exited = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once("exit", () => resolve())
  })

/**
 * Starts a private `redis-server` and resolves once it replies to PING (within 10 seconds). The port is
 * picked free just before the start, so a clash with another process is retried on a new port.
 */
export const startRedis = async (): Promise<RedisServer> => {
  const binary = redisBinary()
  let lastError = "no attempt made"
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const dir = mkdtempSync(join(tmpdir(), "z4j-redis-"))
    const child = spawn(
      binary,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
      { stdio: ["ignore", "pipe", "pipe"] }
    )
    let output = ""
    child.stdout?.on("data", (chunk: Buffer) => {
      if (output.length < 4096) output += chunk.toString()
    })
    child.stderr?.on("data", (chunk: Buffer) => {
      if (output.length < 4096) output += chunk.toString()
    })
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM")
        const timer = setTimeout(() => child.kill("SIGKILL"), 3_000)
        await exited(child)
        clearTimeout(timer)
      }
      rmSync(dir, { recursive: true, force: true })
    }

    const deadline = Date.now() + 10_000
    while (Date.now() < deadline && child.exitCode === null) {
      if (await ping(port)) return { host: "127.0.0.1", port, url: `redis://127.0.0.1:${port}`, stop }
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    await stop()
    lastError = `redis-server on port ${port} did not reply to PING within 10 seconds; its output: ${output.trim()}`
  }
  throw new Error(lastError)
}

/** {@link startRedis} as a scoped resource: the server stops when the scope closes. */
export const scoped: Effect.Effect<RedisServer, Error, Scope.Scope> = Effect.acquireRelease(
  Effect.tryPromise({ try: startRedis, catch: (error) => (error instanceof Error ? error : new Error(String(error))) }),
  (server) => Effect.promise(server.stop)
)
