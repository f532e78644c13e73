import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as TestBrain from "../../src/testing/TestBrain.js"
import { type Certificates, generateCertificates, hasOpenssl } from "../diagnostics/support/certificates.js"
import { httpServer, type Running } from "../diagnostics/support/servers.js"
import { baseEnvironment, cli, type Outcome } from "./support.js"

const home = fs.mkdtempSync(path.join(os.tmpdir(), "z4j-cli-test-"))
afterAll(() => fs.rmSync(home, { recursive: true, force: true }))
const environment = baseEnvironment(home)

const wrongSecret = Buffer.alloc(32, 5).toString("base64url")

const expectNoSecret = (outcome: Outcome, secrets: ReadonlyArray<string>) => {
  for (const secret of secrets) {
    expect(outcome.stdout).not.toContain(secret)
    expect(outcome.stderr).not.toContain(secret)
  }
}

/** The one JSON document on stdout. */
const document = (outcome: Outcome) => JSON.parse(outcome.stdout) as Record<string, unknown>

const probe = (outcome: Outcome, name: string) => {
  const probes = document(outcome).probes as Array<Record<string, unknown>>
  const found = probes.find((each) => each.name === name)
  if (found === undefined) throw new Error(`no ${name} probe in ${outcome.stdout}`)
  return found as { name: string; ok: boolean; message: string; details: Record<string, unknown> }
}

describe("z4j-agent version and help", () => {
  it("version --json", async () => {
    const outcome = await cli(["version", "--json"], environment)
    expect(outcome.code).toBe(0)
    const versions = document(outcome)
    expect(Object.keys(versions).sort()).toEqual(["agent", "arch", "node", "platform", "protocol"])
    expect(versions.protocol).toBe("2")
    expect(versions.node).toBe(process.versions.node)
  })

  it("help lists commands", async () => {
    const outcome = await cli(["--help"], environment)
    expect(outcome.code).toBe(0)
    expect(outcome.stdout).toContain("Commands:")
    expect(outcome.stdout).toContain("doctor")
  })

  it("help of a command", async () => {
    const outcome = await cli(["help", "doctor"], environment)
    expect(outcome.code).toBe(0)
    expect(outcome.stdout).toContain("--no-websocket")
    expect(outcome.stdout).toContain("default: 5000")
  })

  it("unknown command exits 2", async () => {
    const outcome = await cli(["doctr"], environment)
    expect(outcome.code).toBe(2)
    expect(outcome.stderr).toContain('did you mean "doctor"?')
  })

  it("no command exits 2 with help", async () => {
    const outcome = await cli([], environment)
    expect(outcome.code).toBe(2)
    expect(outcome.stderr).toContain("Usage: z4j-agent <command>")
  })

  it("unknown flag names it", async () => {
    const outcome = await cli(["doctor", "--tokn", "x"], environment)
    expect(outcome.code).toBe(2)
    expect(outcome.stderr).toContain("unknown flag --tokn")
    expect(outcome.stderr).toContain("z4j-agent doctor --help")
  })

  it("invalid log level exits 2", async () => {
    const outcome = await cli(["version"], { ...environment, Z4J_LOG_LEVEL: "loud" })
    expect(outcome.code).toBe(2)
    expect(outcome.stderr).toContain("Z4J_LOG_LEVEL")
  })
})

describe("z4j-agent doctor", () => {
  let brain: TestBrain.TestBrainShape
  beforeAll(async () => {
    brain = await TestBrain.start()
  })
  afterAll(() => brain?.stop())

  const flags = (overrides: { token?: string; hmacSecret?: string } = {}) => [
    "--brain-url",
    brain.url,
    "--token",
    overrides.token ?? brain.token,
    "--project-id",
    brain.projectId,
    "--hmac-secret",
    overrides.hmacSecret ?? brain.hmacSecret,
    "--home",
    path.join(home, "agent")
  ]

  it("all probes pass with exit 0", async () => {
    const outcome = await cli(["doctor", "--json", ...flags()], environment)
    expect(outcome.code).toBe(0)
    const result = document(outcome)
    expect(Object.keys(result).sort()).toEqual(["ok", "probes"])
    expect(result.ok).toBe(true)
    const probes = result.probes as Array<Record<string, unknown>>
    expect(probes.map((each) => each.name)).toEqual(["config", "buffer", "dns", "tcp", "tls", "websocket", "handshake"])
    for (const each of probes) {
      expect(Object.keys(each).sort()).toEqual(["details", "message", "name", "ok"])
      expect(typeof each.message).toBe("string")
    }
    expectNoSecret(outcome, [brain.token, brain.hmacSecret])
  })

  it("environment variables work like flags", async () => {
    const outcome = await cli(["doctor", "--no-websocket"], {
      ...environment,
      Z4J_BRAIN_URL: brain.url,
      Z4J_TOKEN: brain.token,
      Z4J_PROJECT_ID: brain.projectId,
      Z4J_HMAC_SECRET: brain.hmacSecret
    })
    expect(outcome.code).toBe(0)
    expect(outcome.stdout).toContain("pass  config")
    expect(outcome.stdout).toContain("All 5 probes passed.")
    expectNoSecret(outcome, [brain.token, brain.hmacSecret])
  })

  it("wrong token exits 1 with 4401", async () => {
    const token = "wrong-token-7c3e9d2a1b"
    const outcome = await cli(["doctor", "--json", ...flags({ token })], environment)
    expect(outcome.code).toBe(1)
    expect(document(outcome).ok).toBe(false)
    expect(probe(outcome, "websocket").details.closeCode).toBe(4401)
    expectNoSecret(outcome, [token, brain.hmacSecret])
  })

  it("wrong secret exits 1 with 4403", async () => {
    const outcome = await cli(["doctor", "--json", ...flags({ hmacSecret: wrongSecret })], environment)
    expect(outcome.code).toBe(1)
    const handshake = probe(outcome, "handshake")
    expect(handshake.details.closeCode).toBe(4403)
    expect(handshake.message).toContain("Z4J_HMAC_SECRET")
    expectNoSecret(outcome, [brain.token, wrongSecret])
  })

  it("invalid config is stage config", async () => {
    const secret = "not/a*secret-but-private-9f8e7d"
    const outcome = await cli(["doctor", "--json", ...flags({ hmacSecret: secret })], environment)
    expect(outcome.code).toBe(1)
    const result = document(outcome)
    expect(result.ok).toBe(false)
    expect(result.stage).toBe("config")
    const error = result.error as { message: string; problems: Array<{ setting: string }> }
    expect(error.problems.map((problem) => problem.setting)).toEqual(["Z4J_HMAC_SECRET"])
    expectNoSecret(outcome, [brain.token, secret])
  })

  it("text output hides secrets on bad input", async () => {
    const secret = "c2hvcnQ"
    const outcome = await cli(["doctor", ...flags({ hmacSecret: secret })], environment)
    expect(outcome.code).toBe(1)
    expect(outcome.stdout).toContain("FAIL  config")
    expect(outcome.stdout).toContain("Z4J_HMAC_SECRET")
    expectNoSecret(outcome, [brain.token, secret])
  })

  it("usage error with --json is JSON", async () => {
    const outcome = await cli(["doctor", "--json", "--token", brain.token, "--bogus"], environment)
    expect(outcome.code).toBe(2)
    expect(document(outcome)).toEqual({
      ok: false,
      stage: "arguments",
      error: { message: expect.stringContaining("unknown flag --bogus") }
    })
    expectNoSecret(outcome, [brain.token])
  })
})

describe.skipIf(!hasOpenssl())("z4j-agent doctor over TLS", () => {
  let certificates: Certificates
  const servers: Array<Running> = []
  beforeAll(() => {
    certificates = generateCertificates()
  })
  afterAll(async () => {
    for (const server of servers) await server.stop()
    certificates?.remove()
  })

  /** Runs doctor against an HTTPS server that returns 426, trusting the test CA through NODE_EXTRA_CA_CERTS. */
  const doctorAgainst = async (pair: { readonly key: string; readonly cert: string }) => {
    const server = await httpServer(426, {}, pair)
    servers.push(server)
    return cli(
      [
        "doctor",
        "--json",
        "--brain-url",
        `https://localhost:${server.port}`,
        "--token",
        "t",
        "--project-id",
        "p",
        "--hmac-secret",
        wrongSecret
      ],
      { ...environment, NODE_EXTRA_CA_CERTS: certificates.ca.certPath }
    )
  }

  it("trusted certificate passes, proxy is named", async () => {
    const outcome = await doctorAgainst(certificates.valid)
    expect(outcome.code).toBe(1)
    const tls = probe(outcome, "tls")
    expect(tls.ok).toBe(true)
    expect(tls.details.authorized).toBe(true)
    expect(tls.details.issuer).toBe("CN=z4j test CA")
    expect(tls.message).toContain("valid until")
    const websocket = probe(outcome, "websocket")
    expect(websocket.details.status).toBe(426)
    expect(websocket.message).toContain("strips the Upgrade and Connection headers")
  })

  it("certificate near expiry passes with a warning", async () => {
    const outcome = await doctorAgainst(certificates.expiringSoon)
    const tls = probe(outcome, "tls")
    expect(tls.ok).toBe(true)
    expect(tls.details.daysLeft).toBe(2)
    expect(tls.message).toContain("renew it soon")
  })

  it("expired certificate fails", async () => {
    const outcome = await doctorAgainst(certificates.expired)
    const tls = probe(outcome, "tls")
    expect(tls.ok).toBe(false)
    expect(tls.details.verificationError).toBe("CERT_HAS_EXPIRED")
    expect(tls.message).toContain("expired on 2020-02-01")
    expect(probe(outcome, "websocket").details.skipped).toBe(true)
  })

  it("certificate for another host fails", async () => {
    const outcome = await doctorAgainst(certificates.otherHost)
    const tls = probe(outcome, "tls")
    expect(tls.ok).toBe(false)
    expect(tls.details.verificationError).toBe("ERR_TLS_CERT_ALTNAME_INVALID")
    expect(tls.message).toContain("does not cover localhost")
    expect(tls.message).toContain("DNS:brain.example")
  })
})
