import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Z4j from "../../src/layers/Z4j.js"
import type { AgentConfigShape } from "../../src/services/AgentConfig.js"
import * as Diagnostics from "../../src/services/Diagnostics.js"
import * as TestBrain from "../../src/testing/TestBrain.js"
import { closedPort } from "./support/servers.js"

const home = fs.mkdtempSync(path.join(os.tmpdir(), "z4j-diagnostics-test-"))
afterAll(() => fs.rmSync(home, { recursive: true, force: true }))

/** Diagnostics over `options` and the given environment only, never the machine's Z4J_* variables. */
const diagnose = (options: Diagnostics.DiagnosticsOptions, environment: Record<string, string> = {}) =>
  Diagnostics.make({ home, settleMillis: 200, observeMillis: 500, ...options }).pipe(
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(environment))))
  )

const withBrain = <A, E>(use: (brain: TestBrain.TestBrainShape) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.promise(() => TestBrain.start()),
    use,
    (brain) => Effect.promise(() => brain.stop())
  )

const byName = (report: Diagnostics.Report, name: Diagnostics.ProbeName) => {
  const probe = report.probes.find((each) => each.name === name)
  if (probe === undefined) throw new Error(`no ${name} probe in the report`)
  return probe
}

const wrongSecret = Buffer.alloc(32, 7).toString("base64url")

describe("Diagnostics", () => {
  it.live("missing settings are named by variable", () =>
    Effect.gen(function* () {
      const diagnostics = yield* diagnose({})
      const report = yield* diagnostics.runAll()
      const config = byName(report, "config")
      expect(report.ok).toBe(false)
      expect(config.ok).toBe(false)
      for (const setting of ["Z4J_BRAIN_URL", "Z4J_TOKEN", "Z4J_PROJECT_ID", "Z4J_HMAC_SECRET"]) {
        expect(config.message).toContain(`${setting}: missing`)
      }
      expect(config.details.token).toBe("missing")
      expect(config.details.hmacSecret).toBe("missing")
      expect(byName(report, "buffer").ok).toBe(true)
      for (const name of ["dns", "tcp", "tls", "websocket", "handshake"] as const) {
        expect(byName(report, name).details).toEqual({ skipped: true, after: "config" })
      }
    })
  )

  it.live("environment is read when options are absent", () =>
    Effect.gen(function* () {
      const diagnostics = yield* diagnose(
        {},
        {
          Z4J_BRAIN_URL: "http://127.0.0.1:7700",
          Z4J_TOKEN: "t",
          Z4J_PROJECT_ID: "p",
          Z4J_HMAC_SECRET: wrongSecret
        }
      )
      const config = yield* diagnostics.probeConfig
      expect(config.ok).toBe(true)
      expect(config.details.brainUrl).toBe("ws://127.0.0.1:7700/ws/agent")
    })
  )

  it.live("short secret is reported without its value", () =>
    Effect.gen(function* () {
      const secret = Buffer.alloc(16, 9).toString("base64url")
      const diagnostics = yield* diagnose({
        brainUrl: "http://127.0.0.1:7700",
        token: "t",
        projectId: "p",
        hmacSecret: secret
      })
      const config = yield* diagnostics.probeConfig
      expect(config.ok).toBe(false)
      expect(config.message).toContain("Z4J_HMAC_SECRET")
      expect(config.message).toContain("16 bytes")
      expect(JSON.stringify(config)).not.toContain(secret)
    })
  )

  it.live("malformed tunable is reported", () =>
    Effect.gen(function* () {
      const diagnostics = yield* diagnose(
        { brainUrl: "http://127.0.0.1:7700", token: "t", projectId: "p", hmacSecret: wrongSecret },
        { Z4J_MAX_BATCH_EVENTS: "5000" }
      )
      const config = yield* diagnostics.probeConfig
      expect(config.ok).toBe(false)
      expect(config.message).toContain("Z4J_MAX_BATCH_EVENTS")
    })
  )

  it.live("credentials in the URL are rejected unquoted", () =>
    Effect.gen(function* () {
      const diagnostics = yield* diagnose({
        brainUrl: "https://admin:hunter2hunter2@brain.example",
        token: "t",
        projectId: "p",
        hmacSecret: wrongSecret
      })
      const report = yield* diagnostics.runAll()
      expect(byName(report, "config").message).toContain("contains a user name or password")
      expect(JSON.stringify(report)).not.toContain("hunter2hunter2")
      expect(byName(report, "dns").details.skipped).toBe(true)
    })
  )

  it.live("every probe passes against a brain", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const diagnostics = yield* diagnose(brain.agentOptions)
        const report = yield* diagnostics.runAll()
        expect(report.probes.map((probe) => [probe.name, probe.ok])).toEqual([
          ["config", true],
          ["buffer", true],
          ["dns", true],
          ["tcp", true],
          ["tls", true],
          ["websocket", true],
          ["handshake", true]
        ])
        expect(report.ok).toBe(true)
        const key = Z4j.agentKey({
          brainUrl: `${brain.url}/ws/agent`,
          projectId: brain.projectId,
          token: Redacted.make(brain.token)
        } as AgentConfigShape)
        expect(byName(report, "buffer").details.folder).toBe(path.join(home, "buffers", key))
        const handshake = byName(report, "handshake")
        expect(handshake.details.brainVersion).toBe("testbrain")
        expect(handshake.details.agentId).toBe(brain.agentId)
        expect(handshake.details.closeCode).toBe(1000)
        expect(brain.frames.map((frame) => frame.type)).toEqual(["heartbeat"])
        expect(brain.hellos).toHaveLength(1)
        expect(brain.rejections).toEqual([])
        yield* Effect.promise(() => brain.waitFor(() => brain.agentCloses.length >= 2))
        expect(brain.agentCloses.map((close) => close.code)).toEqual([1000, 1000])
      })
    )
  )

  it.live("wrong token fails at the upgrade", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const diagnostics = yield* diagnose({ ...brain.agentOptions, token: "not-the-token" })
        const report = yield* diagnostics.runAll()
        const websocket = byName(report, "websocket")
        expect(websocket.ok).toBe(false)
        expect(websocket.details.closeCode).toBe(4401)
        expect(websocket.message).toContain("Z4J_TOKEN")
        expect(byName(report, "handshake").details).toEqual({ skipped: true, after: "websocket" })
      })
    )
  )

  it.live("wrong secret fails after the heartbeat", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const diagnostics = yield* diagnose({ ...brain.agentOptions, hmacSecret: wrongSecret })
        const handshake = yield* diagnostics.probeHandshake
        expect(handshake.ok).toBe(false)
        expect(handshake.details.closeCode).toBe(4403)
        expect(handshake.message).toContain("Z4J_HMAC_SECRET")
        expect(handshake.message).toContain("clock")
        expect(handshake.message).toContain("the secret is the likelier cause")
      })
    )
  )

  it.live("skewed clock is named as the cause", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        brain.faults.clockSkewMillis = 120_000
        const diagnostics = yield* diagnose(brain.agentOptions)
        const handshake = yield* diagnostics.probeHandshake
        expect(handshake.ok).toBe(false)
        expect(handshake.details.closeCode).toBe(4403)
        expect(handshake.details.clockOffsetMillis).toBeGreaterThan(110_000)
        expect(handshake.message).toContain("behind the brain's")
        expect(handshake.message).toContain("fix the clock first")
      })
    )
  )

  it.live("protocol version close is explained", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        brain.faults.closeAfterHello = 4426
        const diagnostics = yield* diagnose(brain.agentOptions)
        const handshake = yield* diagnostics.probeHandshake
        expect(handshake.ok).toBe(false)
        expect(handshake.details.closeCode).toBe(4426)
        expect(handshake.message).toContain("protocol version 2")
      })
    )
  )

  it.live("pending commands are counted, not run", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const diagnostics = yield* diagnose({ ...brain.agentOptions, observeMillis: 1_000 })
        const sender = Effect.promise(async () => {
          await brain.waitFor(() => brain.frames.length > 0)
          brain.sendCommand({ action: "cancel_task", target: { type: "task", id: "x" } })
        })
        const [handshake] = yield* Effect.all([diagnostics.probeHandshake, sender], { concurrency: 2 })
        expect(handshake.ok).toBe(true)
        expect(handshake.details.commandsReceived).toBe(1)
        expect(handshake.message).toContain("1 pending commands")
        expect(brain.commandAcks()).toEqual([])
      })
    )
  )

  it.live("no-websocket runs five probes", () =>
    withBrain((brain) =>
      Effect.gen(function* () {
        const diagnostics = yield* diagnose(brain.agentOptions)
        const report = yield* diagnostics.runAll({ websocket: false })
        expect(report.probes.map((probe) => probe.name)).toEqual(["config", "buffer", "dns", "tcp", "tls"])
        expect(report.ok).toBe(true)
        expect(brain.hellos).toEqual([])
      })
    )
  )

  it.live("closed port skips the later probes", () =>
    Effect.gen(function* () {
      const port = yield* Effect.promise(closedPort)
      const diagnostics = yield* diagnose({
        brainUrl: `http://127.0.0.1:${port}`,
        token: "t",
        projectId: "p",
        hmacSecret: wrongSecret
      })
      const report = yield* diagnostics.runAll()
      expect(byName(report, "tcp").ok).toBe(false)
      expect(byName(report, "tls").details).toEqual({ skipped: true, after: "tcp" })
      expect(byName(report, "websocket").details).toEqual({ skipped: true, after: "tcp" })
      expect(byName(report, "handshake").details).toEqual({ skipped: true, after: "tcp" })
    })
  )
})
