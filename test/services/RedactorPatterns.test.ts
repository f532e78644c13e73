import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import { findNestedQuantifier } from "../../src/services/internal/redactorPatterns.js"
import * as Redactor from "../../src/services/Redactor.js"

const marker = Redactor.marker

const fromEnv = (entries: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

const configured = (entries: Record<string, string>) =>
  Redactor.Redactor.pipe(Effect.provide(Redactor.layerConfig), fromEnv(entries))

describe("Redactor extra patterns", () => {
  it.effect("masks keys matching an extra key pattern", () =>
    Effect.gen(function* () {
      const { redact } = yield* Redactor.make({ extraKeyPatterns: ["internal_.*", "tenant"] })
      expect(redact({ INTERNAL_ID: 1, internal_note: { a: "x" }, my_internal_id: 2, tenant: "t", tenants: 3 })).toEqual(
        {
          INTERNAL_ID: marker,
          internal_note: { a: marker },
          my_internal_id: 2,
          tenant: marker,
          tenants: 3
        }
      )
    })
  )

  it.effect("masks strings matching an extra value pattern", () =>
    Effect.gen(function* () {
      const { redact } = yield* Redactor.make({ extraValuePatterns: ["acct-\\d{6}"] })
      expect(redact({ note: "charged ACCT-123456 today", other: "acct-12345" })).toEqual({
        note: marker,
        other: "acct-12345"
      })
      expect(redact({ "acct-654321": 1 })).toEqual({ [marker]: 1 })
    })
  )

  it.effect("keeps defaults beside extra patterns", () =>
    Effect.gen(function* () {
      const { redact } = yield* Redactor.make({ extraKeyPatterns: ["x"], extraValuePatterns: ["y{3}"] })
      expect(redact({ password: 1, note: "bob@example.com" })).toEqual({ password: marker, note: marker })
    })
  )

  it.effect("stays idempotent when a pattern matches the marker", () =>
    Effect.gen(function* () {
      const { redact } = yield* Redactor.make({
        extraKeyPatterns: ["\\[redacted\\].*"],
        extraValuePatterns: ["binary|unreadable|T03"]
      })
      const value = {
        "bob@example.com": 1,
        "carol@example.com": { n: 2 },
        at: new Date(Date.UTC(2024, 0, 2, 3)),
        bytes: new Uint8Array(2)
      }
      const once = redact(value)
      expect(once).toEqual({ [marker]: 1, [`${marker}#2`]: { n: 2 }, at: marker, bytes: marker })
      expect(redact(once)).toStrictEqual(once)
    })
  )

  it.effect("reads extra patterns from Config", () =>
    Effect.gen(function* () {
      const { redact } = yield* configured({
        Z4J_REDACTION_EXTRA_KEY_PATTERNS: "internal_.*, tenant ,",
        Z4J_REDACTION_EXTRA_VALUE_PATTERNS: "acct-\\d{6}"
      })
      expect(redact({ internal_id: 1, tenant: 2, note: "acct-123456", plain: "x" })).toEqual({
        internal_id: marker,
        tenant: marker,
        note: marker,
        plain: "x"
      })
    })
  )

  it.effect("reads the string cap from Config", () =>
    Effect.gen(function* () {
      const { redact } = yield* configured({ Z4J_MAX_PAYLOAD_BYTES: "4" })
      expect(redact("abcdef")).toBe("abcd[...2 more bytes truncated]")
    })
  )

  it.effect("uses defaults when Config is empty", () =>
    Effect.gen(function* () {
      const { redact } = yield* configured({})
      expect(redact({ password: 1, long: "x".repeat(8193) })).toEqual({
        password: marker,
        long: `${"x".repeat(8192)}[...1 more bytes truncated]`
      })
    })
  )

  it.effect("rejects a bad cap in Config", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(configured({ Z4J_MAX_PAYLOAD_BYTES: "0" }))
      expect(Exit.isFailure(exit)).toBe(true)
      const notANumber = yield* Effect.exit(configured({ Z4J_MAX_PAYLOAD_BYTES: "lots" }))
      expect(Exit.isFailure(notANumber)).toBe(true)
    })
  )

  it.effect("prefers overrides to Config", () =>
    Effect.gen(function* () {
      const { redact } = yield* Redactor.makeFromConfig({ maxStringBytes: 6, extraValuePatterns: ["zz"] }).pipe(
        fromEnv({
          Z4J_MAX_PAYLOAD_BYTES: "not a number",
          Z4J_REDACTION_EXTRA_VALUE_PATTERNS: "(((",
          Z4J_REDACTION_EXTRA_KEY_PATTERNS: "tenant"
        })
      )
      expect(redact("abcdefgh")).toBe("abcdef[...2 more bytes truncated]")
      expect(redact("zz")).toBe(marker)
      expect(redact({ tenant: 1 })).toEqual({ tenant: marker })
    })
  )

  it.effect("lets a user layer replace the default", () =>
    Effect.gen(function* () {
      const custom = Layer.succeed(Redactor.Redactor, { redact: () => "custom" })
      const { redact } = yield* Effect.provide(Redactor.Redactor, custom)
      expect(redact({ password: 1 })).toBe("custom")
    })
  )
})

describe("Redactor invalid patterns", () => {
  it.effect("fails on a syntax error", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Redactor.make({ extraValuePatterns: ["ok", "acct-(\\d+"] }))
      expect(error._tag).toBe("InvalidRedactionPattern")
      expect(error.pattern).toBe("acct-(\\d+")
      expect(error.kind).toBe("value")
      expect(error.reason).toBe("syntax")
      expect(error.cause).toBeInstanceOf(SyntaxError)
      expect(error.message).toContain('"acct-(\\d+"')
      expect(error.message).toContain("not a valid JavaScript regular expression")
      expect(error.message).toContain("Z4J_REDACTION_EXTRA_VALUE_PATTERNS")
    })
  )

  it.effect("fails on a fragment that only parses once anchored", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Redactor.make({ extraKeyPatterns: ["a)|(b"] }))
      expect(error.kind).toBe("key")
      expect(error.reason).toBe("syntax")
      expect(error.message).toContain("Z4J_REDACTION_EXTRA_KEY_PATTERNS")
    })
  )

  it.effect("fails on a nested quantifier", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Redactor.make({ extraValuePatterns: ["^(a+)+$"] }))
      expect(error.reason).toBe("backtracking")
      expect(error.cause).toBe("(a+)+")
      expect(error.message).toContain('"^(a+)+$"')
      expect(error.message).toContain("nested quantifier")
    })
  )

  it.effect("fails from Config", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(configured({ Z4J_REDACTION_EXTRA_VALUE_PATTERNS: "fine,(x*)*" }))
      expect(error._tag).toBe("InvalidRedactionPattern")
      if (error._tag === "InvalidRedactionPattern") {
        expect(error.pattern).toBe("(x*)*")
      }
    })
  )

  it.effect("dies on out-of-range options", () =>
    Effect.gen(function* () {
      for (const options of [{ maxStringBytes: 0 }, { maxStringBytes: 1.5 }, { maxDepth: -1 }, { maxDepth: 5000 }]) {
        const exit = yield* Effect.exit(Redactor.make(options))
        expect(Exit.isFailure(exit), JSON.stringify(options)).toBe(true)
        if (Exit.isFailure(exit)) {
          expect(exit.cause._tag, JSON.stringify(options)).toBe("Die")
        }
      }
    })
  )
})

describe("findNestedQuantifier", () => {
  it.each([
    ["(a+)+", "(a+)+"],
    ["(a*)*", "(a*)*"],
    ["x(?:a|b+){2,}y", "(?:a|b+){2,}"],
    ["((ab)*c)+", "((ab)*c)+"],
    ["(\\d+)*$", "(\\d+)*"],
    ["(a{2,3})+", "(a{2,3})+"],
    ["(?<word>\\w+)+?", "(?<word>\\w+)+?"],
    ["((a+))+", "((a+))+"],
    ["(.*,)*", "(.*,)*"]
  ])("rejects %s", (source, fragment) => {
    expect(findNestedQuantifier(source)).toBe(fragment)
  })

  it.each([
    "(ab)+",
    "(a+)?",
    "a+b+",
    "[(a+)]+",
    "\\(a+\\)+",
    "(a{2})+",
    "(-?\\d)+",
    "(?=a+)b",
    "\\p{L}+",
    "(a+){1}",
    "a{2,}b*",
    "x{,3}"
  ])("accepts %s", (source) => {
    expect(findNestedQuantifier(source)).toBeUndefined()
  })
})
