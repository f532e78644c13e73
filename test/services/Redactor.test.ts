import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fc from "fast-check"
import { secretKeyNames, valueShapes } from "../../src/services/internal/redactorPatterns.js"
import * as Redactor from "../../src/services/Redactor.js"

const marker = Redactor.marker
const build = (options?: Redactor.RedactorOptions) => Effect.runSync(Redactor.make(options))
const { redact } = build()

// Fake credentials are assembled at run time so that no scanner mistakes this file for a leak.
const alnum = (length: number) => "aB3dE6gH9j".repeat(Math.ceil(length / 10)).slice(0, length)
const upper = (length: number) => "AB3DE6GH9J".repeat(Math.ceil(length / 10)).slice(0, length)
const hex = (length: number) => "0123456789abcdef".repeat(Math.ceil(length / 16)).slice(0, length)

const shapeHits: ReadonlyArray<readonly [string, string, string]> = [
  ["jwt", "jwt", `token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.${alnum(20)}`],
  ["jwt without a signature", "jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."],
  ["bearer", "bearer", `Authorization: Bearer ${alnum(16)}`],
  ["bearer in capitals", "bearer", `BEARER ${alnum(40)}`],
  ["stripe sk_live", "stripe", `key=sk_live_${alnum(24)}`],
  ["stripe sk_test", "stripe", `sk_test_${alnum(30)}`],
  ["stripe pk_live", "stripe", `pk_live_${alnum(24)}`],
  ["stripe pk_test", "stripe", `pk_test_${alnum(24)}`],
  ["stripe rk_live", "stripe", `rk_live_${alnum(24)}`],
  ["stripe rk_test", "stripe", `rk_test_${alnum(24)}`],
  ["stripe whsec", "stripe", `whsec_${alnum(32)}`],
  ["slack xoxb", "slack-token", `xoxb-${alnum(10)}`],
  ["slack xoxp", "slack-token", `xoxp-1234-${alnum(12)}`],
  ["slack xoxa", "slack-token", `xoxa-${alnum(10)}`],
  [
    "slack webhook",
    "slack-webhook",
    `post to https://hooks.slack.com/services/T0${upper(8)}/B0${upper(8)}/${alnum(24)}`
  ],
  ["github ghp", "github-token", `ghp_${alnum(36)}`],
  ["github gho", "github-token", `gho_${alnum(36)}`],
  ["github ghs", "github-token", `ghs_${alnum(36)}`],
  ["github pat", "github-pat", `github_pat_${alnum(82)}`],
  ["aws AKIA", "aws-access-key-id", `AKIA${upper(16)}`],
  ["aws ASIA", "aws-access-key-id", `id ASIA${upper(16)} used`],
  ["aws lower case", "aws-access-key-id", `akia${upper(16).toLowerCase()}`],
  ["google", "google-api-key", `AIza${alnum(35)}`],
  ["twilio", "twilio-key", `SK${hex(32)}`],
  ["sendgrid", "sendgrid-key", `SG.${alnum(22)}.${alnum(43)}`],
  ["postgres url", "url-with-password", "postgres://app:s3cret@db.internal:5432/app"],
  ["postgresql url", "url-with-password", "postgresql://app:s3cret@db/app"],
  ["postgres driver url", "url-with-password", "postgresql+psycopg://app:s3cret@db/app"],
  ["mysql url", "url-with-password", "mysql://root:pw@127.0.0.1/x"],
  ["mariadb url", "url-with-password", "mariadb://root:pw@127.0.0.1/x"],
  ["mongodb url", "url-with-password", "mongodb://u:pw@mongo:27017"],
  ["mongodb+srv url", "url-with-password", "mongodb+srv://u:pw@cluster0.example.net/db"],
  ["redis url", "url-with-password", "redis://default:pw@cache:6379/0"],
  ["redis url without user", "url-with-password", "redis://:pw@cache:6379"],
  ["rediss url", "url-with-password", "rediss://u:pw@cache:6380"],
  ["amqp url", "url-with-password", "amqp://guest:guest@rabbit:5672/"],
  ["amqps url", "url-with-password", "AMQPS://guest:guest@rabbit:5671/"],
  ["pem private key", "pem-private-key", "-----BEGIN PRIVATE KEY-----\nMIIE..."],
  ["pem rsa", "pem-private-key", "-----BEGIN RSA PRIVATE KEY-----"],
  ["pem ec", "pem-private-key", "-----BEGIN EC PRIVATE KEY-----"],
  ["pem dsa", "pem-private-key", "-----BEGIN DSA PRIVATE KEY-----"],
  ["pem openssh", "pem-private-key", "-----BEGIN OPENSSH PRIVATE KEY-----"],
  ["pem encrypted", "pem-private-key", "-----BEGIN ENCRYPTED PRIVATE KEY-----"],
  ["pem pgp", "pem-private-key", "-----BEGIN PGP PRIVATE KEY BLOCK-----"],
  ["email", "email", "contact Bob.Smith+tag@Example.co.uk today"],
  ["short email", "email", "a@b.co"],
  ["email in capitals", "email", "ALICE@EXAMPLE.COM"],
  ["ssn", "us-ssn", "ssn is 123-45-6789."]
]

const shapeMisses: ReadonlyArray<readonly [string, string]> = [
  ["jwt with two segments", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0"],
  ["eyj inside a word", "heyjude.foo.bar"],
  ["bearer with 15 characters", `Bearer ${alnum(15)}`],
  ["stripe with 23 characters", `sk_live_${alnum(23)}`],
  ["stripe prefix inside a word", `task_live_${alnum(24)}`],
  ["stripe unknown mode", `sk_prod_${alnum(24)}`],
  ["slack with 9 characters", `xoxb-${alnum(9)}`],
  ["slack webhook without ids", "https://hooks.slack.com/services/"],
  ["github with 35 characters", `ghp_${alnum(35)}`],
  ["github pat with 81 characters", `github_pat_${alnum(81)}`],
  ["aws with 15 characters", `AKIA${upper(15)}`],
  ["aws prefix inside a word", `MAKIA${upper(16)}`],
  ["google with 34 characters", `AIza${alnum(34)}`],
  ["twilio with 31 hex digits", `SK${hex(31)}`],
  ["twilio inside a word", `disk${hex(32)}`],
  ["sendgrid with a short part", `SG.${alnum(21)}.${alnum(43)}`],
  ["url without a password", "postgres://app@db/app"],
  ["url with a port only", "redis://cache:6379/0"],
  ["http url with a port", "https://example.com:8443/x"],
  ["pem public key", "-----BEGIN PUBLIC KEY-----"],
  ["pem certificate", "-----BEGIN CERTIFICATE-----"],
  ["email without a dot in the domain", "bob@localhost"],
  ["at sign alone", "price @ 5.00"],
  ["ssn with 5 trailing digits", "123-45-67890"],
  ["phone number", "555-123-4567"],
  ["iso date", "2024-01-02T03:04:05.000Z"],
  ["uuid", "123e4567-e89b-12d3-a456-426614174000"],
  ["task name", "app.tasks.send_welcome_email"]
]

describe("Redactor key names", () => {
  it("masks every default key name", () => {
    for (const name of secretKeyNames) {
      expect(redact({ [name]: "v", other: "kept" }), name).toEqual({ [name]: marker, other: "kept" })
    }
  })

  it("matches key names ignoring case", () => {
    expect(redact({ PASSWORD: "a", "Api-Key": "b", Set_Cookie: "c" })).toEqual({
      PASSWORD: marker,
      "Api-Key": marker,
      Set_Cookie: marker
    })
  })

  it("matches whole keys only", () => {
    const value = { last_password_reset: "2024-01-01", tokens_used: 3, authority: "x", my_secret_sauce: "y" }
    expect(redact(value)).toEqual(value)
  })

  it("masks every leaf and keeps the shape", () => {
    const value = { password: { a: 1, b: [true, null, "x", 2.5], c: {}, d: [], e: { f: { g: false } } } }
    expect(redact(value)).toEqual({
      password: { a: marker, b: [marker, marker, marker, marker], c: {}, d: [], e: { f: { g: marker } } }
    })
  })

  it("masks numbers booleans and null", () => {
    expect(redact({ cvv: 123, pwd: true, token: null, ssn: 10n })).toEqual({
      cvv: marker,
      pwd: marker,
      token: marker,
      ssn: marker
    })
  })
})

describe("Redactor value shapes", () => {
  it.each(shapeHits)("replaces %s", (_label, _shape, text) => {
    expect(redact(text)).toBe(marker)
    expect(redact({ note: text })).toEqual({ note: marker })
  })

  it.each(shapeMisses)("keeps %s", (_name, text) => {
    expect(redact(text)).toBe(text)
  })

  it("matches each sample by its own shape", () => {
    for (const shape of valueShapes) {
      const samples = shapeHits.filter(([, name]) => name === shape.name)
      expect(samples.length, shape.name).toBeGreaterThan(0)
      const pattern = new RegExp(shape.source, "i")
      for (const [label, , text] of samples) {
        expect(pattern.test(text), label).toBe(true)
      }
    }
  })

  it("renames a key holding a value shape", () => {
    expect(redact({ "bob@example.com": { visits: 3 } })).toEqual({ [marker]: { visits: 3 } })
  })

  it("numbers renamed keys that collide", () => {
    const out = redact({ "a@x.io": 1, [marker]: 2, "b@x.io": 3, [`${marker}#2`]: 4 })
    expect(out).toEqual({ [`${marker}#3`]: 1, [marker]: 2, [`${marker}#4`]: 3, [`${marker}#2`]: 4 })
  })

  it("keeps the marker itself", () => {
    expect(redact(marker)).toBe(marker)
    expect(redact({ [marker]: marker })).toEqual({ [marker]: marker })
  })
})

describe("Redactor truncation", () => {
  it("cuts at the byte cap with the suffix", () => {
    const { redact: small } = build({ maxStringBytes: 8 })
    expect(small("abcdefgh")).toBe("abcdefgh")
    expect(small("abcdefghi")).toBe("abcdefgh[...1 more bytes truncated]")
  })

  it("replaces a split character with U+FFFD", () => {
    const { redact: small } = build({ maxStringBytes: 8 })
    // "€" is 3 bytes: the cut keeps its first byte and drops 2.
    expect(small("abcdefg€")).toBe("abcdefg\uFFFD[...2 more bytes truncated]")
    // "😀" is 4 bytes: the cut keeps 2 of them and drops 2 plus the 2 of "xy".
    expect(small("abcdef😀xy")).toBe("abcdef\uFFFD[...4 more bytes truncated]")
    expect(small("éééé€")).toBe("éééé[...3 more bytes truncated]")
  })

  it("cuts at 8192 bytes by default", () => {
    expect(redact("x".repeat(8192))).toBe("x".repeat(8192))
    expect(redact("x".repeat(10_000))).toBe(`${"x".repeat(8192)}[...1808 more bytes truncated]`)
    expect(redact("é".repeat(5000))).toBe(`${"é".repeat(4096)}[...1808 more bytes truncated]`)
  })

  it("searches value shapes in the cut text", () => {
    const { redact: small } = build({ maxStringBytes: 32 })
    expect(small(`mail bob@example.com ${"x".repeat(100)}`)).toBe(marker)
    const late = `${"x".repeat(40)} bob@example.com`
    expect(small(late)).toBe(`${"x".repeat(32)}[...24 more bytes truncated]`)
  })

  it("cuts long keys", () => {
    const { redact: small } = build({ maxStringBytes: 4 })
    expect(small({ abcdef: 1 })).toEqual({ "abcd[...2 more bytes truncated]": 1 })
  })

  it("numbers cut keys that collide", () => {
    const { redact: small } = build({ maxStringBytes: 4 })
    const out = small({ abcdXY: 1, abcdZW: 2 })
    expect(out).toEqual({ "abcd[...2 more bytes truncated]": 1, "abcd[...2 more bytes truncated]#2": 2 })
    expect(small(out)).toEqual(out)
  })

  it("leaves truncated text alone on a second pass", () => {
    const { redact: small } = build({ maxStringBytes: 8 })
    for (const text of ["abcdefghijk", "abcdefg€", "abcdef😀xy", "x".repeat(1000)]) {
      const once = small(text)
      expect(small(once)).toBe(once)
    }
  })
})

describe("Redactor depth and cycles", () => {
  const nest = (levels: number, leaf: unknown): unknown => {
    let value = leaf
    for (let level = 0; level < levels; level++) {
      value = level % 2 === 0 ? [value] : { next: value }
    }
    return value
  }
  const innermost = (value: unknown): unknown => {
    let current = value
    while (typeof current === "object" && current !== null) {
      current = Array.isArray(current) ? current[0] : (current as { next: unknown }).next
    }
    return current
  }

  it("keeps values down to depth 64", () => {
    expect(innermost(redact(nest(64, "leaf")))).toBe("leaf")
  })

  it("masks values deeper than 64", () => {
    expect(innermost(redact(nest(65, "leaf")))).toBe(marker)
    expect(innermost(redact(nest(65, { a: 1 })))).toBe(marker)
  })

  it("follows the maxDepth option", () => {
    const { redact: shallow } = build({ maxDepth: 2 })
    expect(shallow({ a: { b: { c: 1 } } })).toEqual({ a: { b: { c: marker } } })
    expect(shallow({ a: { b: 1 } })).toEqual({ a: { b: 1 } })
    expect(build({ maxDepth: 0 }).redact({ a: 1 })).toEqual({ a: marker })
  })

  it("survives ten thousand levels", () => {
    expect(innermost(redact(nest(10_000, "leaf")))).toBe(marker)
  })

  it("masks an object inside itself", () => {
    const looped: Record<string, unknown> = { name: "a" }
    looped.self = looped
    looped.list = [looped, 1]
    expect(redact(looped)).toEqual({ name: "a", self: marker, list: [marker, 1] })
  })

  it("masks mutual cycles", () => {
    const first: Record<string, unknown> = { id: 1 }
    const second: Record<string, unknown> = { id: 2, back: first }
    first.next = second
    expect(redact(first)).toEqual({ id: 1, next: { id: 2, back: marker } })
  })

  it("masks an array inside itself", () => {
    const list: Array<unknown> = [1]
    list.push(list)
    expect(redact(list)).toEqual([1, marker])
  })

  it("copies shared references each time", () => {
    const shared = { x: 1, inner: [2] }
    const out = redact({ a: shared, b: shared, list: [shared, shared] }) as Record<string, unknown>
    expect(out).toEqual({ a: shared, b: shared, list: [shared, shared] })
    expect(out.a).not.toBe(shared)
  })
})

// JSON-like values with secrets, secret keys, long strings and numbers that need normalizing.
const secretish = fc.constantFrom(
  "bob@example.com",
  `Bearer ${alnum(20)}`,
  "123-45-6789",
  "redis://:pw@cache:6379",
  marker,
  `${marker}#2`,
  "abcdefg€€€€",
  "x[...3 more bytes truncated]"
)
const keyArbitrary = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom(...secretKeyNames),
  secretish,
  fc.constant("__proto__")
)
const leafArbitrary = fc.oneof(
  fc.string({ maxLength: 40, unit: "binary" }),
  secretish,
  fc.double(),
  fc.integer(),
  fc.bigInt(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined)
)
const { tree: jsonLike } = fc.letrec<{ tree: unknown }>((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leafArbitrary,
    fc.array(tie("tree"), { maxLength: 5 }),
    fc.dictionary(keyArbitrary, tie("tree"), { maxKeys: 5 })
  )
}))

describe("Redactor properties", () => {
  const { redact: small } = build({ maxStringBytes: 16, maxDepth: 4 })

  it.prop("is idempotent", [jsonLike], ([value]) => {
    const once = redact(value)
    expect(redact(once)).toStrictEqual(once)
    const onceSmall = small(value)
    expect(small(onceSmall)).toStrictEqual(onceSmall)
  })

  it.prop(
    "is idempotent on any value",
    [
      fc.anything({
        withBigInt: true,
        withDate: true,
        withMap: true,
        withSet: true,
        withTypedArray: true,
        withSparseArray: true,
        withNullPrototype: true,
        withBoxedValues: true
      })
    ],
    ([value]) => {
      const once = small(value)
      expect(small(once)).toStrictEqual(once)
    }
  )

  it.prop("does not mutate its input", [jsonLike], ([value]) => {
    const before = structuredClone(value)
    redact(value)
    small(value)
    expect(value).toEqual(before)
  })

  it.prop("returns JSON-safe values", [jsonLike], ([value]) => {
    const text = JSON.stringify(redact(value), (_key, item) => (typeof item === "bigint" ? item.toString() : item))
    expect(typeof text).toBe("string")
    expect(text).not.toContain("bob@example.com")
  })
})
