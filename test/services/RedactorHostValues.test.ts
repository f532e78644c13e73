import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as fc from "fast-check"
import { Float, float } from "../../src/protocol/JsonValue.js"
import * as Redactor from "../../src/services/Redactor.js"

const marker = Redactor.marker
const { redact } = Effect.runSync(Redactor.make())

describe("Redactor host values", () => {
  it("keeps bigints", () => {
    expect(redact({ big: 2n ** 70n })).toEqual({ big: 2n ** 70n })
  })

  it("drops functions symbols and undefined", () => {
    const value = { keep: 1, fn: () => 1, sym: Symbol("s"), none: undefined }
    expect(redact(value)).toStrictEqual({ keep: 1 })
    expect(redact([() => 1, Symbol("s"), undefined, 2])).toStrictEqual([null, null, null, 2])
    expect(redact(undefined)).toBe(null)
    expect(redact(() => 1)).toBe(null)
  })

  it("writes the marker for omitted items under a secret key", () => {
    expect(redact({ token: [undefined, () => 1], password: { fn: () => 1 } })).toStrictEqual({
      token: [marker, marker],
      password: {}
    })
  })

  it("turns non-finite numbers into null", () => {
    expect(redact([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])).toStrictEqual([null, null, null])
  })

  it("turns -0 into 0", () => {
    expect(Object.is(redact(-0), 0)).toBe(true)
    expect(Object.is((redact([-0]) as Array<number>)[0], 0)).toBe(true)
  })

  it("writes dates as ISO strings", () => {
    expect(redact({ at: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)) })).toEqual({ at: "2024-01-02T03:04:05.006Z" })
    expect(redact({ at: new Date(Number.NaN) })).toEqual({ at: null })
  })

  it("copies errors with cause", () => {
    const inner = new TypeError("inner")
    const error = Object.assign(new Error("outer", { cause: inner }), { code: "E_OUTER" })
    const out = redact(error) as Record<string, Record<string, unknown> | string>
    expect(out.name).toBe("Error")
    expect(out.message).toBe("outer")
    expect(out.code).toBe("E_OUTER")
    expect(typeof out.stack).toBe("string")
    expect(out.stack).toContain("outer")
    const cause = out.cause as Record<string, unknown>
    expect(cause.name).toBe("TypeError")
    expect(cause.message).toBe("inner")
  })

  it("copies errors without cause", () => {
    expect(Object.keys(redact(new RangeError("r")) as object)).toEqual(["name", "message", "stack"])
  })

  it("writes an error subclass name once", () => {
    class JobFailed extends Error {
      override name = "JobFailed"
      readonly attempt = 3
    }
    const out = redact(new JobFailed("no")) as Record<string, unknown>
    expect(Object.keys(out)).toEqual(["name", "message", "stack", "attempt"])
    expect(out.name).toBe("JobFailed")
  })

  it("scrubs error messages", () => {
    expect((redact(new Error("login bob@example.com failed")) as Record<string, unknown>).message).toBe(marker)
  })

  it("turns maps into objects of string keys", () => {
    const map = new Map<unknown, unknown>([
      ["a", 1],
      [2, "number key"],
      [{ k: 1 }, "object key"],
      ["password", "p"],
      ["nested", new Map([["b", 2]])]
    ])
    expect(redact(map)).toEqual({ a: 1, password: marker, nested: { b: 2 } })
  })

  it("turns sets into arrays", () => {
    expect(redact(new Set([1, "bob@example.com", undefined]))).toEqual([1, marker, null])
  })

  it("writes binary data as its length", () => {
    const bytes = Buffer.from("secret bytes")
    expect(redact({ buffer: bytes })).toEqual({ buffer: "[binary: 12 bytes]" })
    expect(redact(new Uint16Array(4))).toBe("[binary: 8 bytes]")
    expect(redact(new Float64Array(2))).toBe("[binary: 16 bytes]")
    expect(redact(new DataView(new ArrayBuffer(5)))).toBe("[binary: 5 bytes]")
    expect(redact(new ArrayBuffer(7))).toBe("[binary: 7 bytes]")
    expect(redact(new SharedArrayBuffer(3))).toBe("[binary: 3 bytes]")
    expect(JSON.stringify(redact(bytes))).not.toContain("secret")
  })

  it("copies own enumerable properties of class instances", () => {
    class Job {
      readonly id = "j1"
      private readonly attempts = 2
      get label() {
        return "from the prototype"
      }
      run() {
        return this.attempts
      }
    }
    expect(redact(new Job())).toStrictEqual({ id: "j1", attempts: 2 })
  })

  it("uses toJSON", () => {
    const money = { amount: 5, toJSON: () => ({ cents: 500, email: "bob@example.com" }) }
    expect(redact({ money })).toEqual({ money: { cents: 500, email: marker } })
    expect(redact({ id: { toJSON: () => "abc" } })).toEqual({ id: "abc" })
    class Versioned {
      toJSON() {
        return { version: 2 }
      }
    }
    expect(redact(new Versioned())).toEqual({ version: 2 })
    const list = Object.assign([1, 2], { toJSON: () => "summarized" })
    expect(redact({ list })).toEqual({ list: "summarized" })
  })

  it("calls toJSON once per value", () => {
    const self = {
      n: 1,
      toJSON() {
        return this
      }
    }
    expect(redact(self)).toEqual({ n: 1 })
    let calls = 0
    const chain = {
      toJSON() {
        calls += 1
        return { toJSON: () => "second", keep: true }
      }
    }
    expect(redact(chain)).toEqual({ keep: true })
    expect(calls).toBe(1)
  })

  it("marks a throwing toJSON as unreadable", () => {
    expect(
      redact({
        value: {
          toJSON() {
            throw new SyntaxError("bad")
          }
        }
      })
    ).toEqual({ value: "[unreadable: SyntaxError]" })
  })

  it("marks a throwing getter as unreadable", () => {
    const value = {
      ok: 1,
      get broken(): number {
        throw new RangeError("secret detail")
      }
    }
    expect(redact(value)).toEqual({ ok: 1, broken: "[unreadable: RangeError]" })
  })

  it("never shows a thrown string", () => {
    const value = {
      get broken(): number {
        throw "hunter2"
      }
    }
    expect(redact(value)).toEqual({ broken: "[unreadable: string]" })
  })

  it("masks a throwing getter under a secret key", () => {
    const value = {
      password: {
        get broken(): number {
          throw new Error("x")
        }
      }
    }
    expect(redact(value)).toEqual({ password: { broken: marker } })
  })

  it("marks throwing proxies as unreadable", () => {
    const hostile = new Proxy(
      {},
      {
        ownKeys() {
          throw new TypeError("no keys")
        },
        getPrototypeOf() {
          throw new TypeError("no prototype")
        }
      }
    )
    expect(redact({ hostile, after: 1 })).toEqual({ hostile: "[unreadable: TypeError]", after: 1 })
    const revocable = Proxy.revocable({ a: 1 }, {})
    revocable.revoke()
    expect(redact([revocable.proxy])).toEqual(["[unreadable: TypeError]"])
    const getter = new Proxy(
      { a: 1, b: 2 },
      {
        get(target, key) {
          if (key === "b") throw new EvalError("trap")
          return Reflect.get(target, key)
        }
      }
    )
    expect(redact(getter)).toEqual({ a: 1, b: "[unreadable: EvalError]" })
  })

  it("copies null-prototype objects", () => {
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, token: "t" })
    const out = redact(bare)
    expect(out).toStrictEqual({ a: 1, token: marker })
  })

  it("skips symbol keys", () => {
    expect(redact({ a: 1, [Symbol("hidden")]: "x" })).toStrictEqual({ a: 1 })
  })

  it("writes sparse array holes as null", () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is the case under test
    const sparse = [1, , 3]
    sparse[5] = 6
    expect(redact(sparse)).toStrictEqual([1, null, 3, null, null, 6])
  })

  it("keeps a __proto__ key as data", () => {
    const parsed = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as unknown
    const out = redact(parsed) as Record<string, unknown>
    expect(Object.keys(out)).toEqual(["__proto__", "a"])
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it("passes Float through", () => {
    const runtime = float(1)
    expect((redact({ runtime }) as Record<string, unknown>).runtime).toBe(runtime)
    expect(redact({ secret: new Float(2) })).toEqual({ secret: marker })
  })

  it("unwraps boxed primitives", () => {
    expect(redact([Object("s"), Object(1), Object(false), Object(3n)])).toStrictEqual(["s", 1, false, 3n])
  })

  it("truncates huge strings before scanning", () => {
    const huge = `${"a".repeat(8000)}${"@".repeat(1_000_000)}bob@example.com`
    const out = redact(huge) as string
    // The e-mail address lies past the cap, so only the cut text was searched.
    expect(out).toBe(`${"a".repeat(8000)}${"@".repeat(192)}[...999823 more bytes truncated]`)
  })

  it.prop(
    "never throws on any value",
    [
      fc.anything({
        withBigInt: true,
        withBoxedValues: true,
        withDate: true,
        withMap: true,
        withNullPrototype: true,
        withObjectString: true,
        withSet: true,
        withSparseArray: true,
        withTypedArray: true
      })
    ],
    ([value]) => {
      const out = redact(value)
      const text = JSON.stringify(out, (_key, item) => (typeof item === "bigint" ? `${item}n` : item))
      expect(typeof text).toBe("string")
    }
  )
})
