import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import {
  canonicalEnvelope,
  canonicalize,
  computeFrameHmac,
  decodeHmacSecret,
  deriveProjectSecret,
  FrameVerifier,
  parseIsoTimestamp
} from "../../src/protocol/index.js"

// CI lays the shared reference tree beside the repository, so the vectors sit at ../shared from the root.
const vectorPath = fileURLToPath(new URL("../../../shared/vectors/protocol-v2.json", import.meta.url))

interface CanonicalCase {
  readonly name: string
  readonly input_json: string
  readonly canonical: string | null
  readonly error: boolean
}

interface DeriveCase {
  readonly master_secret_hex: string
  readonly project_id: string
  readonly derived_hex: string
}

interface EnvelopeCase {
  readonly name: string
  readonly secret_hex: string
  readonly agent_id: string
  readonly project_id: string
  readonly session_id: string
  readonly frame_json: string
  readonly canonical_envelope: string
  readonly hmac: string
  readonly frame: { readonly ts: string }
}

interface VectorFile {
  readonly canonical_json: ReadonlyArray<CanonicalCase>
  readonly derive_project_secret: ReadonlyArray<DeriveCase>
  readonly signed_envelopes: ReadonlyArray<EnvelopeCase>
}

const vectors: VectorFile | null = existsSync(vectorPath)
  ? (JSON.parse(readFileSync(vectorPath, "utf8")) as VectorFile)
  : null

const hex = (text: string) => new Uint8Array(Buffer.from(text, "hex"))

const attempt = (run: () => string): string | null => {
  try {
    return run()
  } catch {
    return null
  }
}

describe("protocol-v2.json vectors", () => {
  it("vector file present", () => {
    if (vectors === null) expect.fail(`the golden vectors are missing: looked for ${vectorPath}`)
    expect(vectors.canonical_json.length).toBeGreaterThan(0)
    expect(vectors.derive_project_secret.length).toBeGreaterThan(0)
    expect(vectors.signed_envelopes.length).toBeGreaterThan(0)
  })

  describe("canonical_json", () => {
    for (const vector of vectors?.canonical_json ?? []) {
      it(vector.name, () => {
        if (vector.error) {
          expect(() => canonicalize(vector.input_json)).toThrow()
        } else {
          expect(canonicalize(vector.input_json)).toBe(vector.canonical)
        }
      })
    }
  })

  describe("derive_project_secret", () => {
    for (const vector of vectors?.derive_project_secret ?? []) {
      it(vector.project_id, () => {
        const derived = deriveProjectSecret(hex(vector.master_secret_hex), vector.project_id)
        expect(Buffer.from(derived).toString("hex")).toBe(vector.derived_hex)
      })
    }
  })

  describe("signed_envelopes", () => {
    for (const vector of vectors?.signed_envelopes ?? []) {
      const binding = { agentId: vector.agent_id, projectId: vector.project_id, sessionId: vector.session_id }
      const secret = hex(vector.secret_hex)

      it(`${vector.name} envelope`, () => {
        expect(canonicalEnvelope(vector.frame_json, binding)).toBe(vector.canonical_envelope)
      })

      it(`${vector.name} hmac`, () => {
        expect(computeFrameHmac(secret, vector.frame_json, binding)).toBe(vector.hmac)
      })

      it(`${vector.name} verifies`, () => {
        const wire = vector.frame_json.replace(/^\{/, `{"hmac":"${vector.hmac}",`)
        const sentAt = parseIsoTimestamp(vector.frame.ts)
        expect(sentAt).not.toBeNull()
        const now = new Date(Math.floor(sentAt!.epochMicros / 1000) + 1500)
        const verified = new FrameVerifier(secret, binding).verify(wire, now)
        expect(Either.isRight(verified)).toBe(true)
      })
    }
  })
})

const hardPath = fileURLToPath(new URL("./fixtures/canonical-hard.json", import.meta.url))
const hard = JSON.parse(readFileSync(hardPath, "utf8")) as { readonly canonical_json: ReadonlyArray<CanonicalCase> }

describe("canonicalize hard cases", () => {
  for (const vector of hard.canonical_json) {
    it(vector.name, () => {
      const output = attempt(() => canonicalize(vector.input_json))
      expect(output).toBe(vector.error ? null : vector.canonical)
    })
  }
})

describe("appendix A", () => {
  const agentId = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
  const projectId = "11223344-5566-7788-99aa-bbccddeeff00"
  const sessionId = "0f0e0d0c-0b0a-4908-8706-050403020100"
  const binding = { agentId, projectId, sessionId }

  it("project secret from master", () => {
    const derived = deriveProjectSecret(Buffer.from("0123456789abcdef0123456789abcdef", "utf8"), projectId)
    expect(Buffer.from(derived).toString("hex")).toBe(
      "edcd96a3235d38dde8668ba0b4a4a0c6fb836e9d6cde8848c9039a5c450fd593"
    )
  })

  it("hmac_secret decodes to project secret", () => {
    const secret = decodeHmacSecret("7c2WoyNdON3oZougtKSgxvuDbp1s3ohIyQOaXEUP1ZM=")
    expect(Buffer.from(secret).toString("hex")).toBe("edcd96a3235d38dde8668ba0b4a4a0c6fb836e9d6cde8848c9039a5c450fd593")
  })

  const secret = hex("edcd96a3235d38dde8668ba0b4a4a0c6fb836e9d6cde8848c9039a5c450fd593")

  it("heartbeat envelope and hmac", () => {
    const wire =
      '{"v":2,"id":"hb_0123456789ab","ts":"2026-05-01T12:00:00.123Z","nonce":"AAAAAAAAAAAAAAAAAAAAAA","seq":1,"type":"heartbeat","payload":{"buffer_size":0,"last_flush_at":null,"dropped_events":0,"adapter_health":{}},"hmac":"58c73c6e57519e4cccf715c0e1acdc0a8e256b6aa7d7be9ea243d02b13c0cbc4"}'
    expect(canonicalEnvelope(wire, binding)).toBe(
      '{"agent_id":"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee","id":"hb_0123456789ab","nonce":"AAAAAAAAAAAAAAAAAAAAAA","payload":{"adapter_health":{},"buffer_size":0,"dropped_events":0,"last_flush_at":null},"project_id":"11223344-5566-7788-99aa-bbccddeeff00","seq":1,"session_id":"0f0e0d0c-0b0a-4908-8706-050403020100","ts":"2026-05-01T12:00:00.123Z","type":"heartbeat","v":2}'
    )
    expect(computeFrameHmac(secret, wire, binding)).toBe(
      "58c73c6e57519e4cccf715c0e1acdc0a8e256b6aa7d7be9ea243d02b13c0cbc4"
    )
    const verified = new FrameVerifier(secret, binding).verify(wire, new Date("2026-05-01T12:00:30Z"))
    expect(Either.isRight(verified)).toBe(true)
  })

  it("command with float pitfalls", () => {
    const wire =
      '{"v":2,"id":"5b0e8f3c-1d2a-4c3b-9e4f-0a1b2c3d4e5f","ts":"2026-05-01T12:00:01.000001Z","nonce":"BBBBBBBBBBBBBBBBBBBBBB","seq":1,"hmac":"","type":"command","payload":{"action":"cancel_task","target":{"type":"task","id":"bullmq:emails:42"},"parameters":{"engine":"bullmq","task_id":"emails:42","f":1.0,"g":0.00001,"h":"café"},"timeout_seconds":60,"issued_by":null}}'
    expect(canonicalEnvelope(wire, binding)).toBe(
      '{"agent_id":"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee","id":"5b0e8f3c-1d2a-4c3b-9e4f-0a1b2c3d4e5f","nonce":"BBBBBBBBBBBBBBBBBBBBBB","payload":{"action":"cancel_task","issued_by":null,"parameters":{"engine":"bullmq","f":1.0,"g":1e-05,"h":"café","task_id":"emails:42"},"target":{"id":"bullmq:emails:42","type":"task"},"timeout_seconds":60},"project_id":"11223344-5566-7788-99aa-bbccddeeff00","seq":1,"session_id":"0f0e0d0c-0b0a-4908-8706-050403020100","ts":"2026-05-01T12:00:01.000001Z","type":"command","v":2}'
    )
    const expected = "6819cb9500914ab6da38f2edb9f44c186256425f93a3e80af6717bbef530878e"
    expect(computeFrameHmac(secret, wire, binding)).toBe(expected)
    const signed = wire.replace('"hmac":""', `"hmac":"${expected}"`)
    const verified = new FrameVerifier(secret, binding).verify(signed, new Date("2026-05-01T12:00:00Z"))
    expect(Either.isRight(verified)).toBe(true)
  })

  it("key order pitfall", () => {
    expect(canonicalize('{"😀":6,"！":7,"é":5,"a":3,"B":4,"9":2,"10":1}')).toBe(
      '{"10":1,"9":2,"B":4,"a":3,"é":5,"！":7,"😀":6}'
    )
  })
})
