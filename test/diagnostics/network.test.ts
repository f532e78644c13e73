import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { probeDns, probeTcp, probeTls, targetOf } from "../../src/services/internal/diagnosticsNetwork.js"
import { type Certificates, generateCertificates, hasOpenssl } from "./support/certificates.js"
import { closedPort, httpServer, type Running, tlsServer } from "./support/servers.js"

const using = <A>(start: () => Promise<Running>, use: (server: Running) => Effect.Effect<A>) =>
  Effect.acquireUseRelease(Effect.promise(start), use, (server) => Effect.promise(() => server.stop()))

const failingLookup = (code: string) => () => Promise.reject(Object.assign(new Error(`getaddrinfo ${code}`), { code }))

describe("targetOf", () => {
  it("default ports and IPv6 brackets", () => {
    expect(targetOf("wss://brain.example/ws/agent")).toEqual({
      url: "wss://brain.example/ws/agent",
      secure: true,
      host: "brain.example",
      port: 443
    })
    expect(targetOf("ws://[::1]/ws/agent").host).toBe("::1")
    expect(targetOf("ws://[::1]/ws/agent").port).toBe(80)
    expect(targetOf("ws://127.0.0.1:7700/ws/agent").port).toBe(7700)
  })
})

describe("probeDns", () => {
  it.live("IP address needs no lookup", () =>
    Effect.gen(function* () {
      const result = yield* probeDns(targetOf("ws://127.0.0.1:7700/ws/agent"), failingLookup("ENOTFOUND"), 1_000)
      expect(result.ok).toBe(true)
      expect(result.details.addresses).toEqual(["127.0.0.1"])
    })
  )

  it.live("localhost resolves", () =>
    Effect.gen(function* () {
      const lookup = (host: string) => import("node:dns/promises").then((dns) => dns.lookup(host, { all: true }))
      const result = yield* probeDns(targetOf("ws://localhost:7700/ws/agent"), lookup, 5_000)
      expect(result.ok).toBe(true)
      expect(result.message).toContain("localhost resolves to")
    })
  )

  it.live("unknown host names the fix", () =>
    Effect.gen(function* () {
      const result = yield* probeDns(targetOf("wss://brain.invalid/ws/agent"), failingLookup("ENOTFOUND"), 1_000)
      expect(result.ok).toBe(false)
      expect(result.details.code).toBe("ENOTFOUND")
      expect(result.message).toContain("brain.invalid was not found in DNS")
      expect(result.message).toContain("Z4J_BRAIN_URL")
    })
  )

  it.live("slow resolver times out", () =>
    Effect.gen(function* () {
      const result = yield* probeDns(targetOf("wss://brain.invalid/ws/agent"), () => new Promise(() => undefined), 50)
      expect(result.ok).toBe(false)
      expect(result.details.code).toBe("timeout")
      expect(result.message).toContain("timed out after 50 ms")
    })
  )
})

describe("probeTcp", () => {
  it.live("listening port passes", () =>
    using(
      () => httpServer(200),
      (server) =>
        Effect.gen(function* () {
          const result = yield* probeTcp(targetOf(`ws://127.0.0.1:${server.port}/ws/agent`), 2_000)
          expect(result.ok).toBe(true)
          expect(result.details.port).toBe(server.port)
        })
    )
  )

  it.live("closed port is refused", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(closedPort)
      const result = yield* probeTcp(targetOf(`ws://127.0.0.1:${port}/ws/agent`), 2_000)
      expect(result.ok).toBe(false)
      expect(result.details.code).toBe("ECONNREFUSED")
      expect(result.message).toContain("Check that the brain is running")
    })
  )
})

describe.skipIf(!hasOpenssl())("probeTls", () => {
  let certificates: Certificates
  beforeAll(() => {
    certificates = generateCertificates()
  })
  afterAll(() => certificates?.remove())

  const options = { timeoutMillis: 2_000, rejectUnauthorized: true, warnDays: 14 }
  const probe = (port: number, host = "localhost") => probeTls(targetOf(`wss://${host}:${port}/ws/agent`), options)

  it.live("ws URL is not applicable", () =>
    Effect.gen(function* () {
      const result = yield* probeTls(targetOf("ws://127.0.0.1:1/ws/agent"), options)
      expect(result.ok).toBe(true)
      expect(result.details.skipped).toBe(true)
    })
  )

  it.live("self-signed certificate fails", () =>
    using(
      () => tlsServer(certificates.selfSigned),
      (server) =>
        Effect.gen(function* () {
          const result = yield* probe(server.port)
          expect(result.ok).toBe(false)
          expect(result.details.verificationError).toBe("DEPTH_ZERO_SELF_SIGNED_CERT")
          expect(result.message).toContain("self-signed")
          expect(result.message).toContain("NODE_EXTRA_CA_CERTS")
          expect(result.details.subject).toBe("CN=localhost")
          expect(result.details.daysLeft).toBeGreaterThanOrEqual(2)
        })
    )
  )

  it.live("expired certificate names its end date", () =>
    using(
      () => tlsServer(certificates.selfSignedExpired),
      (server) =>
        Effect.gen(function* () {
          const result = yield* probe(server.port)
          expect(result.ok).toBe(false)
          expect(result.details.validTo).toBe("2020-02-01T00:00:00.000Z")
          expect(result.details.daysLeft).toBeLessThan(0)
          expect(result.message).toContain("expired on 2020-02-01T00:00:00.000Z")
          expect(result.message).toContain("Renew the certificate")
        })
    )
  )

  it.live("untrusted CA names the issuer", () =>
    using(
      () => tlsServer(certificates.valid),
      (server) =>
        Effect.gen(function* () {
          const result = yield* probe(server.port)
          expect(result.ok).toBe(false)
          expect(result.details.issuer).toBe("CN=z4j test CA")
          expect(result.message).toContain("issued by CN=z4j test CA, which this machine does not trust")
        })
    )
  )

  it.live("verification turned off passes with a warning", () =>
    using(
      () => tlsServer(certificates.selfSigned),
      (server) =>
        Effect.gen(function* () {
          const result = yield* probeTls(targetOf(`wss://localhost:${server.port}/ws/agent`), {
            ...options,
            rejectUnauthorized: false
          })
          expect(result.ok).toBe(true)
          expect(result.message).toContain("verification is turned off")
        })
    )
  )

  it.live("plain HTTP port is not TLS", () =>
    using(
      () => httpServer(200),
      (server) =>
        Effect.gen(function* () {
          const result = yield* probe(server.port, "127.0.0.1")
          expect(result.ok).toBe(false)
          expect(result.message).toContain("does not seem to serve TLS")
        })
    )
  )
})
