import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as TestClock from "effect/TestClock"
import * as fc from "fast-check"
import {
  canonicalize,
  computeFrameHmac,
  decodeHmacSecret,
  deriveProjectSecret,
  FrameRejected,
  FrameSigner,
  FrameVerifier,
  InvalidSecret,
  isSignatureFailure,
  newNonce,
  ReplayGuard,
  renderCanonical,
  signFrame,
  uuidBytesLe,
  verifyFrameHmac
} from "../../src/protocol/index.js"

const secret = new Uint8Array(Buffer.from("ce89011bb74203bc4fea2bb87098336798b2af07a72affda6f59f513e6a0ec7d", "hex"))
const binding = {
  agentId: "5f0c3a3e-8d52-4b7e-9c1a-2f4b6d8e0a11",
  projectId: "a3c1e7f2-1b2d-4e5f-8a9b-0c1d2e3f4a5b",
  sessionId: "0b9d8c7e-6f5a-4b3c-a2d1-e0f9a8b7c6d5"
}
const now = new Date("2026-12-04T10:00:00.250Z")

const reasonOf = <A>(result: Either.Either<A, FrameRejected>): string =>
  Either.isLeft(result) ? result.left.reason : "accepted"

const signed = (fields: Partial<Parameters<typeof signFrame>[2]> = {}) =>
  signFrame(secret, binding, {
    type: "command",
    id: "7d0e4c1a-3f2b-4a5c-9e8d-1b2c3d4e5f60",
    payload: '{"action":"cancel_task"}',
    ts: "2026-12-04T10:00:00.250000Z",
    nonce: "n-1",
    seq: 1,
    ...fields
  })

const canonicalOrNull = (text: string): string | null => {
  try {
    return canonicalize(text)
  } catch {
    return null
  }
}

/** Signs arbitrary frame JSON text the way the brain would. */
const signText = (frameJson: string): string => {
  const hmac = computeFrameHmac(secret, frameJson, binding)
  return frameJson.replace(/^\{/, `{"hmac":"${hmac}",`)
}

describe("deriveProjectSecret", () => {
  it("bytes_le order", () => {
    expect(Buffer.from(uuidBytesLe("11223344-5566-7788-99aa-bbccddeeff00")).toString("hex")).toBe(
      "443322116655887799aabbccddeeff00"
    )
  })

  it("UUID case and forms", () => {
    const master = "x".repeat(32)
    const expected = Buffer.from(deriveProjectSecret(master, "deadbeef-cafe-4bad-8fed-0123456789ab")).toString("hex")
    for (const form of [
      "DEADBEEF-CAFE-4BAD-8FED-0123456789AB",
      "{deadbeef-cafe-4bad-8fed-0123456789ab}",
      "urn:uuid:deadbeef-cafe-4bad-8fed-0123456789ab",
      "deadbeefcafe4bad8fed0123456789ab"
    ]) {
      expect(Buffer.from(deriveProjectSecret(master, form)).toString("hex")).toBe(expected)
    }
  })

  it("rejects slug and short master", () => {
    expect(() => deriveProjectSecret("x".repeat(32), "my-project")).toThrow(InvalidSecret)
    expect(() => deriveProjectSecret("x".repeat(31), "deadbeef-cafe-4bad-8fed-0123456789ab")).toThrow(/31 bytes/)
  })
})

describe("decodeHmacSecret", () => {
  const raw = Buffer.from("edcd96a3235d38dde8668ba0b4a4a0c6fb836e9d6cde8848c9039a5c450fd593", "hex")

  it("url-safe, standard, padded or not", () => {
    for (const text of [
      raw.toString("base64url"),
      `${raw.toString("base64url")}=`,
      raw.toString("base64"),
      ` ${raw.toString("base64")}\n`
    ]) {
      expect(Buffer.from(decodeHmacSecret(text)).equals(raw)).toBe(true)
    }
  })

  it("rejects invalid base64 without echoing it", () => {
    const text = "not base64 at all!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    try {
      decodeHmacSecret(text)
      expect.fail("expected InvalidSecret")
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidSecret)
      expect((error as InvalidSecret).reason).toBe("invalid_base64")
      expect((error as Error).message).not.toContain("base64 at all")
    }
  })

  it("rejects short secrets", () => {
    const short = Buffer.alloc(31, 7).toString("base64url")
    expect(() => decodeHmacSecret(short)).toThrow(/31 bytes; expected at least 32/)
  })
})

describe("FrameSigner", () => {
  it("seq, nonce and ts", () => {
    const nonces = ["a", "b"]
    const signer = new FrameSigner(secret, binding, { nonce: () => nonces.shift()! })
    const first = JSON.parse(signer.sign("heartbeat", "hb_1", "{}", new Date("2026-12-04T10:00:00Z")))
    const second = JSON.parse(signer.sign("heartbeat", "hb_2", "{}", new Date("2026-12-04T10:00:00.5Z")))
    expect(first.seq).toBe(1)
    expect(second.seq).toBe(2)
    expect(first.nonce).toBe("a")
    expect(second.nonce).toBe("b")
    expect(first.ts).toBe("2026-12-04T10:00:00Z")
    expect(second.ts).toBe("2026-12-04T10:00:00.500000Z")
    expect(signer.lastSeq).toBe(2)
  })

  it("wire text is canonical", () => {
    const wire = new FrameSigner(secret, binding).sign(
      "event_batch",
      "ev_1",
      renderCanonical({ events: [{ b: 1, a: 2 }] })
    )
    expect(renderCanonical(JSON.parse(wire))).toBe(wire)
  })

  it("hmac matches computeFrameHmac", () => {
    const wire = signed()
    expect(JSON.parse(wire).hmac).toBe(computeFrameHmac(secret, wire, binding))
    expect(verifyFrameHmac(secret, wire, binding)).toBe(true)
  })

  it("newNonce shape", () => {
    const nonce = newNonce()
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{22}$/)
    expect(newNonce()).not.toBe(nonce)
  })
})

describe("FrameVerifier", () => {
  const verify = (text: string, at: Date = now) => new FrameVerifier(secret, binding).verify(text, at)

  it("returns the frame as received", () => {
    const result = verify(signed())
    expect(Either.isRight(result)).toBe(true)
    const frame = Either.getOrThrow(result)
    expect(frame.type).toBe("command")
    expect(frame.seq).toBe(1)
    expect(frame.payload).toEqual({ action: "cancel_task" })
    expect(frame.hmac).toBe(JSON.parse(signed()).hmac)
    expect("agent_id" in frame).toBe(false)
  })

  it("malformed, version and payload", () => {
    expect(reasonOf(verify("{"))).toBe("malformed")
    expect(reasonOf(verify("[1]"))).toBe("malformed")
    expect(reasonOf(verify(signText('{"v":1,"seq":1,"nonce":"x","ts":"2026-12-04T10:00:00Z"}')))).toBe("bad_version")
    expect(reasonOf(verify(signText('{"v":2,"payload":[],"seq":1,"nonce":"x","ts":"2026-12-04T10:00:00Z"}')))).toBe(
      "bad_payload"
    )
  })

  it("v 2.0 equals 2 as in Python", () => {
    expect(reasonOf(verify(signText('{"v":2.0,"payload":{},"seq":1,"nonce":"x","ts":"2026-12-04T10:00:00Z"}')))).toBe(
      "accepted"
    )
  })

  it("signature before replay checks", () => {
    const tampered = signed({ seq: 0 }).replace('"seq":0', '"seq":-5')
    expect(reasonOf(verify(tampered))).toBe("bad_signature")
    expect(reasonOf(verify(signed().replace(/"hmac":"[0-9a-f]+"/, '"hmac":"00"')))).toBe("bad_signature")
    expect(reasonOf(verify(signed().replace(/"hmac":"[0-9a-f]+",/, "")))).toBe("bad_signature")
    const upper = signed().replace(/"hmac":"([0-9a-f]+)"/, (_, digest: string) => `"hmac":"${digest.toUpperCase()}"`)
    expect(reasonOf(verify(upper))).toBe("bad_signature")
  })

  it("seq must be an int >= 1", () => {
    expect(reasonOf(verify(signed({ seq: 0 })))).toBe("bad_seq")
    expect(reasonOf(verify(signText('{"v":2,"seq":1.0,"nonce":"x","ts":"2026-12-04T10:00:00Z"}')))).toBe("bad_seq")
    expect(reasonOf(verify(signText('{"v":2,"seq":"1","nonce":"x","ts":"2026-12-04T10:00:00Z"}')))).toBe("bad_seq")
  })

  it("nonce and ts presence", () => {
    expect(reasonOf(verify(signed({ nonce: "" })))).toBe("missing_field")
    expect(reasonOf(verify(signText('{"v":2,"seq":1,"nonce":"x"}')))).toBe("missing_field")
    expect(reasonOf(verify(signText('{"v":2,"seq":1,"nonce":"x","ts":12}')))).toBe("bad_timestamp")
    expect(reasonOf(verify(signed({ ts: "yesterday" })))).toBe("bad_timestamp")
    expect(reasonOf(verify(signed({ ts: "2026-12-04T10:00:00" })))).toBe("naive_timestamp")
  })

  it("skew limit is 60 s both ways", () => {
    expect(reasonOf(verify(signed(), new Date("2026-12-04T10:01:00.250Z")))).toBe("accepted")
    expect(reasonOf(verify(signed(), new Date("2026-12-04T10:01:00.251Z")))).toBe("stale")
    expect(reasonOf(verify(signed(), new Date("2026-12-04T09:59:00.250Z")))).toBe("accepted")
    expect(reasonOf(verify(signed(), new Date("2026-12-04T09:59:00.249Z")))).toBe("future")
    expect(reasonOf(verify(signed({ ts: "2026-12-04T12:00:00.250+02:00" })))).toBe("accepted")
  })

  it("replays and state on failure", () => {
    const verifier = new FrameVerifier(secret, binding)
    expect(reasonOf(verifier.verify(signed({ seq: 5, nonce: "a" }), now))).toBe("accepted")
    expect(reasonOf(verifier.verify(signed({ seq: 5, nonce: "b" }), now))).toBe("replayed_seq")
    expect(reasonOf(verifier.verify(signed({ seq: 6, nonce: "a" }), now))).toBe("replayed_nonce")
    expect(reasonOf(verifier.verify(signed({ seq: 9, nonce: "c" }).replace('"nonce"', '"nonce" '), now))).toBe(
      "accepted"
    )
    expect(verifier.guard.lastSeq).toBe(9n)
    // A rejected frame records nothing: seq 7 is still below 9, and nonce "d" stays unused.
    expect(reasonOf(verifier.verify(signed({ seq: 7, nonce: "d" }), now))).toBe("replayed_seq")
    expect(reasonOf(verifier.verify(signed({ seq: 10, nonce: "d" }), now))).toBe("accepted")
  })

  it("rejection carries the frame id", () => {
    const result = verify(signed({ seq: 0 }))
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left.frameId).toBe("7d0e4c1a-3f2b-4a5c-9e8d-1b2c3d4e5f60")
      expect(isSignatureFailure(result.left)).toBe(true)
      expect(result.left.message).not.toContain(Buffer.from(secret).toString("hex"))
    }
  })

  it.effect("verifyEffect reads the Effect clock", () =>
    Effect.gen(function* () {
      const verifier = new FrameVerifier(secret, binding)
      yield* TestClock.setTime(now.getTime())
      const frame = yield* verifier.verifyEffect(signed())
      expect(frame.seq).toBe(1)
      yield* TestClock.adjust("61 seconds")
      const late = yield* Effect.flip(verifier.verifyEffect(signed({ seq: 2, nonce: "n-2" })))
      expect(late).toBeInstanceOf(FrameRejected)
      expect(late.reason).toBe("stale")
    })
  )
})

describe("ReplayGuard", () => {
  const ts = "2026-12-04T10:00:00Z"
  const base = Date.parse(ts)

  it("nonces expire after 180 s", () => {
    let clock = base
    const guard = new ReplayGuard({ clock: () => clock, maxSkewMillis: 10_000_000 })
    expect(Either.isRight(guard.check({ seq: 1, nonce: "a", ts }))).toBe(true)
    clock += 180_000
    expect(reasonOf(guard.check({ seq: 2, nonce: "a", ts }))).toBe("replayed_nonce")
    clock += 1
    expect(reasonOf(guard.check({ seq: 2, nonce: "a", ts }))).toBe("accepted")
  })

  it("window keeps 4096 nonces", () => {
    const guard = new ReplayGuard({ clock: () => base })
    for (let seq = 1; seq <= 4097; seq++) guard.check({ seq, nonce: `n${seq}`, ts })
    expect(guard.nonceCount).toBe(4096)
    expect(reasonOf(guard.check({ seq: 5000, nonce: "n1", ts }))).toBe("accepted")
    expect(reasonOf(guard.check({ seq: 5001, nonce: "n3", ts }))).toBe("replayed_nonce")
  })

  it("big and boolean seq", () => {
    const guard = new ReplayGuard({ clock: () => base })
    expect(reasonOf(guard.check({ seq: true, nonce: "a", ts }))).toBe("accepted")
    expect(reasonOf(guard.check({ seq: 2n ** 70n, nonce: "b", ts }))).toBe("accepted")
    expect(reasonOf(guard.check({ seq: 2n ** 70n, nonce: "c", ts }))).toBe("replayed_seq")
  })

  it.prop(
    "rejects every seq that does not increase",
    [fc.array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 40 })],
    ([sequence]) => {
      const guard = new ReplayGuard({ clock: () => base })
      let highest = 0
      sequence.forEach((seq, index) => {
        const accepted = Either.isRight(guard.check({ seq, nonce: `n${index}`, ts }))
        expect(accepted).toBe(seq > highest)
        if (accepted) highest = seq
      })
    }
  )
})

describe("signing properties", () => {
  const payloadArbitrary = fc
    .dictionary(
      fc.string({ unit: "binary" }),
      fc.oneof(fc.string({ unit: "binary" }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
      { maxKeys: 6 }
    )
    .map((record) => renderCanonical(record))

  it.prop(
    "sign then verify round-trips",
    [payloadArbitrary, fc.string({ minLength: 1, maxLength: 64 })],
    ([payload, id]) => {
      const signer = new FrameSigner(secret, binding)
      const verifier = new FrameVerifier(secret, binding)
      for (let count = 0; count < 3; count++) {
        const result = verifier.verify(signer.sign("command", id, payload, now), now)
        expect(reasonOf(result)).toBe("accepted")
      }
    }
  )

  it.prop(
    "flipping any byte breaks verification",
    [payloadArbitrary, fc.nat(), fc.integer({ min: 1, max: 255 })],
    ([payload, position, mask]) => {
      const wire = new FrameSigner(secret, binding).sign("command", "cmd-1", payload, now)
      const bytes = Buffer.from(wire, "utf8")
      const index = position % bytes.length
      bytes[index] = bytes[index]! ^ mask
      const mutated = bytes.toString("utf8")
      // A flip that leaves the canonical form unchanged (1.0 -> 1e0) is the same frame to the brain too.
      fc.pre(canonicalOrNull(mutated) !== canonicalOrNull(wire))
      const result = new FrameVerifier(secret, binding).verify(mutated, now)
      expect(Either.isLeft(result)).toBe(true)
    }
  )

  it("binding mismatch breaks verification", () => {
    const wire = signed()
    for (const other of [
      { ...binding, agentId: binding.agentId.toUpperCase() },
      { ...binding, projectId: "a3c1e7f2-1b2d-4e5f-8a9b-0c1d2e3f4a5c" },
      { ...binding, sessionId: "" }
    ]) {
      expect(reasonOf(new FrameVerifier(secret, other).verify(wire, now))).toBe("bad_signature")
    }
  })
})
