import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { targetOf } from "../../src/services/internal/diagnosticsNetwork.js"
import { probeWebSocket } from "../../src/services/internal/diagnosticsUpgrade.js"
import { httpServer, type Running, silentServer, webSocketServer } from "./support/servers.js"

const using = <S extends Running, A>(start: () => Promise<S>, use: (server: S) => Effect.Effect<A>) =>
  Effect.acquireUseRelease(Effect.promise(start), use, (server) => Effect.promise(() => server.stop()))

const token = "tok_do_not_print_3f9a1c"
const options = { token: Redacted.make(token), rejectUnauthorized: true, timeoutMillis: 2_000, settleMillis: 200 }
const probe = (port: number) => probeWebSocket(targetOf(`ws://127.0.0.1:${port}/ws/agent`), options)

describe("probeWebSocket", () => {
  it.live("open socket passes and closes with 1000", () =>
    using(
      () => webSocketServer(undefined),
      (server) =>
        Effect.gen(function* () {
          const result = yield* probe(server.port)
          expect(result.ok).toBe(true)
          expect(result.details.status).toBe(101)
          yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 100)))
          expect(server.closes).toEqual([1000])
        })
    )
  )

  it.live("close 4401 is a bad token", () =>
    using(
      () => webSocketServer(4401),
      (server) =>
        Effect.gen(function* () {
          const result = yield* probe(server.port)
          expect(result.ok).toBe(false)
          expect(result.details.closeCode).toBe(4401)
          expect(result.message).toContain("4401 (unauthorized)")
          expect(result.message).toContain("Z4J_TOKEN")
        })
    )
  )

  it.live("close 4003 is a revoked agent", () =>
    using(
      () => webSocketServer(4003),
      (server) =>
        Effect.gen(function* () {
          const result = yield* probe(server.port)
          expect(result.ok).toBe(false)
          expect(result.message).toContain("the agent was revoked in the brain")
        })
    )
  )

  it.live("close 4429 is a rate limit", () =>
    using(
      () => webSocketServer(4429),
      (server) =>
        Effect.gen(function* () {
          const result = yield* probe(server.port)
          expect(result.ok).toBe(false)
          expect(result.message).toContain("600 connects")
        })
    )
  )

  const statuses: ReadonlyArray<readonly [number, string]> = [
    [200, "strips the Upgrade and Connection headers"],
    [426, "strips the Upgrade and Connection headers"],
    [400, "strips the Upgrade and Connection headers"],
    [404, "no WebSocket endpoint"],
    [401, "the token is wrong or the agent was revoked"],
    [403, "the token is wrong or the agent was revoked"],
    [502, "failed with HTTP 502"]
  ]
  for (const [status, expected] of statuses) {
    it.live(`HTTP ${status} is translated`, () =>
      using(
        () => httpServer(status),
        (server) =>
          Effect.gen(function* () {
            const result = yield* probe(server.port)
            expect(result.ok).toBe(false)
            expect(result.details.status).toBe(status)
            expect(result.message).toContain(expected)
            expect(result.message).not.toContain(token)
          })
      )
    )
  }

  it.live("redirect names its location", () =>
    using(
      () => httpServer(301, { location: "https://brain.example/ws/agent" }),
      (server) =>
        Effect.gen(function* () {
          const result = yield* probe(server.port)
          expect(result.ok).toBe(false)
          expect(result.message).toContain("https://brain.example/ws/agent")
          expect(result.message).toContain("does not follow redirects")
        })
    )
  )

  it.live("silent server times out", () =>
    using(silentServer, (server) =>
      Effect.gen(function* () {
        const result = yield* probeWebSocket(targetOf(`ws://127.0.0.1:${server.port}/ws/agent`), {
          ...options,
          timeoutMillis: 300
        })
        expect(result.ok).toBe(false)
        expect(result.details.code).toBe("timeout")
        expect(result.message).toContain("within 300 ms")
      })
    )
  )
})
