import * as net from "node:net"
import * as tls from "node:tls"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Z4j from "../../src/layers/Z4j.js"
import { Agent } from "../../src/services/Agent.js"
import type { TestBrainShape } from "../../src/testing/TestBrain.js"
import {
  type Certificates,
  generateCertificates,
  hasOpenssl,
  type KeyPair
} from "../diagnostics/support/certificates.js"
import { agentLayer, captureLogs } from "../support/agent.js"
import { statusWhen, waitFor, warnings, withBrain } from "./support.js"

/** A TLS endpoint in front of the test brain. */
interface TlsFront {
  readonly url: string
  /** TLS handshakes the front completed. */
  readonly handshakes: () => number
  readonly server: tls.Server
}

/** Starts a TLS endpoint in front of the test brain, with `pair` as its certificate. */
const startTlsFront = (brain: TestBrainShape, pair: { readonly key: string; readonly cert: string }) =>
  Effect.acquireRelease(
    Effect.promise(
      () =>
        new Promise<TlsFront>((resolve) => {
          let handshakes = 0
          const target = new URL(brain.url)
          const server = tls.createServer({ key: pair.key, cert: pair.cert }, (socket) => {
            handshakes += 1
            const upstream = net.connect(Number(target.port), target.hostname)
            socket.pipe(upstream).pipe(socket)
            socket.on("error", () => upstream.destroy())
            upstream.on("error", () => socket.destroy())
          })
          server.on("tlsClientError", () => undefined)
          server.listen(0, "127.0.0.1", () => {
            const port = (server.address() as net.AddressInfo).port
            resolve({ url: `wss://127.0.0.1:${port}`, handshakes: () => handshakes, server })
          })
        })
    ),
    (front) => Effect.promise(() => new Promise<void>((resolve) => front.server.close(() => resolve())))
  )

describe.skipIf(!hasOpenssl())("TLS to the brain", () => {
  let certificates: Certificates
  beforeAll(() => {
    certificates = generateCertificates()
  })
  afterAll(() => certificates.remove())

  /** Runs `test` with an agent pointed at a TLS front of the brain that presents `pair`. */
  const behindTls = (
    pair: KeyPair,
    options: Z4j.Options,
    test: (brain: TestBrainShape, front: TlsFront, logs: ReadonlyArray<string>) => Effect.Effect<void, never, Agent>
  ) =>
    withBrain((brain) => {
      const logs = captureLogs()
      return Effect.scoped(
        Effect.flatMap(startTlsFront(brain, pair), (front) =>
          test(brain, front, logs.lines).pipe(
            Effect.provide(agentLayer(brain, { brainUrl: front.url, ...options })),
            Effect.provide(logs.layer)
          )
        )
      )
    })

  const rejectedHandshake = (brain: TestBrainShape, lines: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      yield* Agent
      yield* waitFor(brain, () => lines.some((line) => line.includes("TLS handshake")))
      expect(brain.connectedSessions()).toBe(0)
    })

  it.live("self-signed certificate is rejected by default", () =>
    behindTls(certificates.selfSigned, {}, (brain, front, lines) =>
      Effect.gen(function* () {
        yield* rejectedHandshake(brain, lines)
        expect(front.handshakes()).toBe(0)
        const tlsWarnings = warnings(lines, "TLS handshake")
        expect(tlsWarnings).toHaveLength(1)
        expect(tlsWarnings[0]).toContain("self-signed")
      })
    )
  )

  it.live("expired certificate is rejected by default", () =>
    behindTls(certificates.selfSignedExpired, {}, (brain, _front, lines) => rejectedHandshake(brain, lines))
  )

  it.live("verification off connects and delivers", () =>
    behindTls(certificates.selfSigned, { rejectUnauthorized: false }, (brain, front) =>
      Effect.gen(function* () {
        const agent = yield* Agent
        yield* statusWhen(agent, (status) => status.sessionId !== null)
        yield* agent.emit({ kind: "task.succeeded", engine: "test", taskId: "over-tls", data: {} })
        yield* waitFor(brain, () => brain.events.length >= 1)
        expect(brain.events[0]!.task_id).toBe("over-tls")
        expect(front.handshakes()).toBeGreaterThanOrEqual(1)
      })
    )
  )
})
