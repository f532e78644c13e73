import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import {
  CanonicalJsonError,
  canonicalize,
  compareCodePoints,
  Float,
  float,
  formatPythonFloat,
  type LosslessNumber,
  parseLossless,
  parsePlain,
  renderCanonical,
  toPlain
} from "../../src/protocol/index.js"

const reasonOf = (run: () => unknown): string | null => {
  try {
    run()
    return null
  } catch (error) {
    return error instanceof CanonicalJsonError ? error.reason : "other"
  }
}

describe("canonicalize", () => {
  it("keeps the last of duplicate keys", () => {
    // Python's json.loads keeps the last value of a repeated key, so the brain signs that one.
    expect(canonicalize('{"b":1,"a":1,"a":2}')).toBe('{"a":2,"b":1}')
  })

  it("rejects NaN and infinities", () => {
    expect(reasonOf(() => canonicalize("[NaN]"))).toBe("non_finite_number")
    expect(reasonOf(() => canonicalize("[-Infinity]"))).toBe("non_finite_number")
    expect(reasonOf(() => canonicalize("1e400"))).toBe("non_finite_number")
  })

  it("rejects lone surrogates after unescaping", () => {
    expect(reasonOf(() => canonicalize('"\\udfff"'))).toBe("lone_surrogate")
    expect(reasonOf(() => canonicalize('{"k\\ud800":1}'))).toBe("lone_surrogate")
    expect(reasonOf(() => canonicalize('"\ud800"'))).toBe("lone_surrogate")
  })

  it("rejects nesting past the depth limit", () => {
    expect(reasonOf(() => canonicalize(`${"[".repeat(991)}${"]".repeat(991)}`))).toBe("too_deep")
    expect(canonicalize(`${"[".repeat(990)}${"]".repeat(990)}`)).toHaveLength(1980)
  })

  it("error message hides the input", () => {
    try {
      canonicalize('{"password":"hunter2",}')
      expect.fail("expected a CanonicalJsonError")
    } catch (error) {
      expect(error).toBeInstanceOf(CanonicalJsonError)
      expect((error as Error).message).not.toContain("hunter2")
      expect((error as CanonicalJsonError).position).toBe(22)
    }
  })

  it("keeps big integers exact", () => {
    expect(canonicalize("[12345678901234567890123456789,-0]")).toBe("[12345678901234567890123456789,0]")
  })
})

describe("formatPythonFloat", () => {
  const cases: ReadonlyArray<readonly [number, string]> = [
    [1, "1.0"],
    [0.00001, "1e-05"],
    [0.0001, "0.0001"],
    [1e16, "1e+16"],
    [1e15, "1000000000000000.0"],
    [-0, "-0.0"],
    [0, "0.0"],
    [1.5e16, "1.5e+16"],
    [1e-7, "1e-07"],
    [123.456, "123.456"],
    [5e-324, "5e-324"],
    [1.7976931348623157e308, "1.7976931348623157e+308"],
    [-2.5e-10, "-2.5e-10"],
    [0.1 + 0.2, "0.30000000000000004"]
  ]
  for (const [value, expected] of cases) {
    it(`${expected}`, () => {
      expect(formatPythonFloat(value)).toBe(expected)
    })
  }

  it("rejects NaN", () => {
    expect(reasonOf(() => formatPythonFloat(Number.NaN))).toBe("non_finite_number")
  })
})

describe("renderCanonical", () => {
  it("integral numbers as ints", () => {
    expect(renderCanonical([1, -0, 2 ** 60, 1e21, 12n, -(2n ** 70n)])).toBe(
      "[1,0,1152921504606846976,1000000000000000000000,12,-1180591620717411303424]"
    )
  })

  it("Float and fractions as floats", () => {
    expect(renderCanonical([float(1), new Float(0.00001), 0.5, float(-0), 1e-7])).toBe("[1.0,1e-05,0.5,-0.0,1e-07]")
  })

  it("sorts integer-like and astral keys as Python", () => {
    expect(renderCanonical({ "9": 1, "10": 2, b: 3, "😀": 4, "！": 5, "": 6 })).toBe(
      '{"":6,"10":2,"9":1,"b":3,"！":5,"😀":4}'
    )
  })

  it("replaces lone surrogates", () => {
    expect(renderCanonical({ "k\ud800": "v\udc00x" })).toBe('{"k\ufffd":"v\ufffdx"}')
  })

  it("later key wins after surrogate repair", () => {
    expect(renderCanonical({ "\ud800": 1, "\udbff": 2 })).toBe('{"\ufffd":2}')
  })

  it("omits undefined members", () => {
    const value = { a: 1, b: undefined, c: [undefined] } as unknown as Parameters<typeof renderCanonical>[0]
    expect(renderCanonical(value)).toBe('{"a":1,"c":[null]}')
  })

  it("escapes controls like Python", () => {
    expect(renderCanonical('\u0000\u001f\b\t\n\f\r"\\/\u007f\u2028é')).toBe(
      '"\\u0000\\u001f\\b\\t\\n\\f\\r\\"\\\\/\u007f\u2028é"'
    )
  })

  it("writes dates through toJSON", () => {
    const value = { at: new Date(Date.UTC(2026, 4, 1)) } as unknown as Parameters<typeof renderCanonical>[0]
    expect(renderCanonical(value)).toBe('{"at":"2026-05-01T00:00:00.000Z"}')
  })

  it("rejects non-finite numbers and functions", () => {
    expect(reasonOf(() => renderCanonical({ a: Number.POSITIVE_INFINITY }))).toBe("non_finite_number")
    expect(reasonOf(() => renderCanonical(float(Number.NaN)))).toBe("non_finite_number")
    const withFunction = { f: () => 1 } as unknown as Parameters<typeof renderCanonical>[0]
    expect(reasonOf(() => renderCanonical(withFunction))).toBe("unsupported_value")
  })

  it("rejects cycles", () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(reasonOf(() => renderCanonical(cyclic as Parameters<typeof renderCanonical>[0]))).toBe("too_deep")
  })

  it("renders lossless trees", () => {
    expect(renderCanonical(parseLossless('{"b":1.0,"a":[1E2,-0]}'))).toBe('{"a":[100.0,0],"b":1.0}')
  })
})

describe("parseLossless", () => {
  it("keeps lexemes", () => {
    const tree = parseLossless('{"f":1.0,"i":1,"big":123456789012345678901}')
    expect(tree).toBeInstanceOf(Map)
    const map = tree as Map<string, unknown>
    expect((map.get("f") as LosslessNumber).isFloat).toBe(true)
    expect((map.get("i") as LosslessNumber).isFloat).toBe(false)
    expect((map.get("big") as LosslessNumber).lexeme).toBe("123456789012345678901")
  })

  it("converts to plain values", () => {
    expect(parsePlain('{"a":[1,2.5,9007199254740993,-0],"b":{"__proto__":1}}')).toEqual({
      a: [1, 2.5, 9007199254740993n, 0],
      b: Object.defineProperty({}, "__proto__", { value: 1, enumerable: true, writable: true, configurable: true })
    })
    expect(toPlain(parseLossless("9007199254740991"))).toBe(9007199254740991)
  })
})

describe("compareCodePoints", () => {
  it("orders astral after U+FFFF", () => {
    expect(compareCodePoints("\uffff", "😀")).toBeLessThan(0)
    expect(compareCodePoints("\ue000", "\ud7ff")).toBeGreaterThan(0)
    expect(compareCodePoints("ab", "a")).toBeGreaterThan(0)
    expect(compareCodePoints("a", "a")).toBe(0)
  })

  it.prop("matches code point order", [fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" })], ([a, b]) => {
    const left = [...a].map((char) => char.codePointAt(0)!)
    const right = [...b].map((char) => char.codePointAt(0)!)
    let expected = 0
    for (let index = 0; index < Math.min(left.length, right.length); index++) {
      if (left[index] !== right[index]) {
        expected = left[index]! - right[index]!
        break
      }
    }
    if (expected === 0) expected = left.length - right.length
    expect(Math.sign(compareCodePoints(a, b))).toBe(Math.sign(expected))
  })
})

const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.string({ unit: "binary" }),
    fc.integer(),
    fc.bigInt(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map(float),
    fc.array(tie("value"), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: "binary" }), tie("value"), { maxKeys: 5 })
  )
})).value as fc.Arbitrary<Parameters<typeof renderCanonical>[0]>

const jsonText = fc.json({ maxDepth: 4 })

describe("canonical properties", () => {
  it.prop("canonicalize is idempotent", [jsonText], ([text]) => {
    const once = canonicalize(text)
    expect(canonicalize(once)).toBe(once)
  })

  it.prop("renderCanonical is a fixed point", [jsonValue], ([value]) => {
    const rendered = renderCanonical(value)
    expect(canonicalize(rendered)).toBe(rendered)
  })
})
