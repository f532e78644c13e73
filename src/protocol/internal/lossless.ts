import * as Data from "effect/Data"
import { formatPythonFloat } from "./pythonFloat.js"

/**
 * The reason a text or a value has no canonical JSON form.
 *
 * @since 0.1.0
 * @category models
 */
export type CanonicalJsonErrorReason =
  | "invalid_json"
  | "non_finite_number"
  | "lone_surrogate"
  | "integer_too_long"
  | "too_deep"
  | "unsupported_value"

/**
 * Raised for input that z4j-core's `canonical_json` rejects (invalid JSON, NaN or infinite numbers,
 * lone surrogates, integers over Python's 4300-digit limit, nesting deeper than Python's recursion
 * limit) and for JavaScript values that have no JSON form. The message never quotes the input, because
 * frames may carry secrets.
 *
 * @since 0.1.0
 * @category errors
 */
export class CanonicalJsonError extends Data.TaggedError("CanonicalJsonError")<{
  readonly reason: CanonicalJsonErrorReason
  readonly detail: string
  /** UTF-16 offset into the text where parsing stopped, or -1 for values built in JavaScript. */
  readonly position: number
}> {
  override get message(): string {
    const where = this.position >= 0 ? ` at offset ${this.position}` : ""
    return `cannot write canonical JSON (${this.reason})${where}: ${this.detail}`
  }
}

/**
 * A JSON number as it was written: `lexeme` is the source text, `isFloat` tells whether Python reads it
 * as a float (the lexeme has `.`, `e` or `E`), and `canonical` is what `canonical_json` writes for it.
 *
 * @since 0.1.0
 * @category models
 */
export class LosslessNumber {
  readonly _tag = "LosslessNumber"
  constructor(
    readonly lexeme: string,
    readonly isFloat: boolean,
    readonly canonical: string
  ) {}

  /**
   * The value as JavaScript sees it: a `number` for floats and safe integers, a `bigint` for integers
   * outside ±(2^53 - 1).
   */
  toValue(): number | bigint {
    if (this.isFloat) return Number(this.lexeme)
    if (this.canonical.length <= 15) return Number(this.canonical)
    const big = BigInt(this.canonical)
    return big <= 9007199254740991n && big >= -9007199254740991n ? Number(big) : big
  }
}

/**
 * A parsed JSON value that keeps what Python would see: number lexemes, and objects as a `Map` with the
 * last duplicate key winning.
 *
 * @since 0.1.0
 * @category models
 */
export type LosslessValue = null | boolean | string | LosslessNumber | LosslessArray | LosslessObject

/**
 * @since 0.1.0
 * @category models
 */
export interface LosslessArray extends Array<LosslessValue> {}

/**
 * @since 0.1.0
 * @category models
 */
export interface LosslessObject extends Map<string, LosslessValue> {}

/**
 * Deepest nesting accepted. CPython 3.11's C scanner and encoder recurse once per level under the
 * default recursion limit of 1000, so `json.loads` followed by `json.dumps` fails at 994 levels when
 * called from module level and a few levels earlier from deeper call stacks.
 */
// NOTE: the exact Python limit depends on the caller's stack depth; 990 is the value observed with a
// few frames on the stack, so texts nested 990..993 levels deep may differ from a given reference run.
export const maxDepth = 990

/** CPython 3.11 refuses to convert integer literals of more than 4300 digits (`sys.int_info`). */
const maxIntegerDigits = 4300

const wellFormed = String.prototype as unknown as { isWellFormed: (this: string) => boolean }

/** Whether `text` has no lone surrogate (ES2024 `String.prototype.isWellFormed`, present from Node 20). */
export const isWellFormed = (text: string): boolean => wellFormed.isWellFormed.call(text)

const invalid = (detail: string, position: number) =>
  new CanonicalJsonError({ reason: "invalid_json", detail, position })

const hexValue = (code: number): number => {
  if (code >= 48 && code <= 57) return code - 48
  if (code >= 97 && code <= 102) return code - 87
  if (code >= 65 && code <= 70) return code - 55
  return -1
}

/**
 * Parses `text` with the grammar of CPython 3.11's `json.loads` (strict mode): whitespace is only space,
 * tab, CR and LF; raw control characters inside strings are rejected; a leading BOM is rejected. The
 * NaN and Infinity literals that Python accepts are rejected here, because `canonical_json` rejects them.
 */
export const parseLosslessText = (text: string): LosslessValue => {
  if (!isWellFormed(text)) {
    throw new CanonicalJsonError({
      reason: "lone_surrogate",
      detail: "the text contains a lone UTF-16 surrogate, which has no UTF-8 encoding",
      position: -1
    })
  }
  if (text.charCodeAt(0) === 0xfeff) throw invalid("unexpected byte order mark; strip it before parsing", 0)
  const length = text.length
  let position = 0

  const skipWhitespace = (): void => {
    while (position < length) {
      const code = text.charCodeAt(position)
      if (code === 32 || code === 10 || code === 13 || code === 9) position++
      else return
    }
  }

  const parseString = (): string => {
    // `position` is just past the opening quote.
    const start = position
    while (position < length) {
      const code = text.charCodeAt(position)
      if (code === 34) {
        const value = text.slice(start, position)
        position++
        return value
      }
      if (code === 92) return parseEscapedString(start)
      if (code < 32) throw invalid("invalid control character inside a string; escape it", position)
      position++
    }
    throw invalid("unterminated string", start - 1)
  }

  const parseEscapedString = (start: number): string => {
    let out = text.slice(start, position)
    let escapedSurrogate = false
    let chunkStart = position
    while (position < length) {
      const code = text.charCodeAt(position)
      if (code === 34) {
        out += text.slice(chunkStart, position)
        position++
        if (escapedSurrogate && !isWellFormed(out)) {
          throw new CanonicalJsonError({
            reason: "lone_surrogate",
            detail: "a \\u escape produces a lone surrogate, which has no UTF-8 encoding",
            position: start
          })
        }
        return out
      }
      if (code < 32) throw invalid("invalid control character inside a string; escape it", position)
      if (code !== 92) {
        position++
        continue
      }
      out += text.slice(chunkStart, position)
      const escapeCode = text.charCodeAt(position + 1)
      switch (escapeCode) {
        case 34:
          out += '"'
          break
        case 92:
          out += "\\"
          break
        case 47:
          out += "/"
          break
        case 98:
          out += "\b"
          break
        case 102:
          out += "\f"
          break
        case 110:
          out += "\n"
          break
        case 114:
          out += "\r"
          break
        case 116:
          out += "\t"
          break
        case 117: {
          let unit = 0
          for (let index = 2; index < 6; index++) {
            const digit = hexValue(text.charCodeAt(position + index))
            if (digit < 0) throw invalid("invalid \\uXXXX escape", position)
            unit = unit * 16 + digit
          }
          if (unit >= 0xd800 && unit <= 0xdfff) escapedSurrogate = true
          out += String.fromCharCode(unit)
          position += 4
          break
        }
        default:
          throw invalid("invalid \\escape", position)
      }
      position += 2
      chunkStart = position
    }
    throw invalid("unterminated string", start - 1)
  }

  const isDigit = (code: number): boolean => code >= 48 && code <= 57

  const parseNumber = (): LosslessNumber => {
    const start = position
    if (text.charCodeAt(position) === 45) position++
    const first = text.charCodeAt(position)
    if (first === 48) {
      position++
    } else if (first >= 49 && first <= 57) {
      while (isDigit(text.charCodeAt(position))) position++
    } else {
      if (text.startsWith("Infinity", position)) {
        throw new CanonicalJsonError({ reason: "non_finite_number", detail: "-Infinity is not JSON", position: start })
      }
      throw invalid("expecting a value", start)
    }
    let isFloat = false
    if (text.charCodeAt(position) === 46 && isDigit(text.charCodeAt(position + 1))) {
      isFloat = true
      position += 2
      while (isDigit(text.charCodeAt(position))) position++
    }
    const e = text.charCodeAt(position)
    if (e === 101 || e === 69) {
      let cursor = position + 1
      const sign = text.charCodeAt(cursor)
      if (sign === 43 || sign === 45) cursor++
      if (isDigit(text.charCodeAt(cursor))) {
        isFloat = true
        position = cursor + 1
        while (isDigit(text.charCodeAt(position))) position++
      }
    }
    const lexeme = text.slice(start, position)
    if (isFloat) {
      const value = Number(lexeme)
      if (!Number.isFinite(value)) {
        throw new CanonicalJsonError({
          reason: "non_finite_number",
          detail: `a float literal of ${lexeme.length} characters overflows to infinity`,
          position: start
        })
      }
      return new LosslessNumber(lexeme, true, formatPythonFloat(value))
    }
    const digitCount = lexeme.charCodeAt(0) === 45 ? lexeme.length - 1 : lexeme.length
    if (digitCount > maxIntegerDigits) {
      throw new CanonicalJsonError({
        reason: "integer_too_long",
        detail: `an integer literal has ${digitCount} digits; Python accepts at most ${maxIntegerDigits}`,
        position: start
      })
    }
    return new LosslessNumber(lexeme, false, lexeme === "-0" ? "0" : lexeme)
  }

  const parseValue = (depth: number): LosslessValue => {
    const code = text.charCodeAt(position)
    switch (code) {
      case 34:
        position++
        return parseString()
      case 123:
        return parseObject(depth + 1)
      case 91:
        return parseArray(depth + 1)
      case 116:
        if (text.startsWith("true", position)) {
          position += 4
          return true
        }
        break
      case 102:
        if (text.startsWith("false", position)) {
          position += 5
          return false
        }
        break
      case 110:
        if (text.startsWith("null", position)) {
          position += 4
          return null
        }
        break
      case 78:
        if (text.startsWith("NaN", position)) {
          throw new CanonicalJsonError({ reason: "non_finite_number", detail: "NaN is not JSON", position })
        }
        break
      case 73:
        if (text.startsWith("Infinity", position)) {
          throw new CanonicalJsonError({ reason: "non_finite_number", detail: "Infinity is not JSON", position })
        }
        break
      default:
        if (code === 45 || (code >= 48 && code <= 57)) return parseNumber()
    }
    throw invalid("expecting a value", position)
  }

  const checkDepth = (depth: number): void => {
    if (depth > maxDepth) {
      throw new CanonicalJsonError({
        reason: "too_deep",
        detail: `nesting deeper than ${maxDepth} levels exceeds Python's recursion limit`,
        position
      })
    }
  }

  const parseArray = (depth: number): LosslessArray => {
    checkDepth(depth)
    position++
    const items: LosslessArray = []
    skipWhitespace()
    if (text.charCodeAt(position) === 93) {
      position++
      return items
    }
    while (true) {
      skipWhitespace()
      items.push(parseValue(depth))
      skipWhitespace()
      const code = text.charCodeAt(position)
      position++
      if (code === 93) return items
      if (code !== 44) throw invalid("expecting ',' or ']' after an array item", position - 1)
    }
  }

  const parseObject = (depth: number): LosslessObject => {
    checkDepth(depth)
    position++
    const members: LosslessObject = new Map()
    skipWhitespace()
    if (text.charCodeAt(position) === 125) {
      position++
      return members
    }
    while (true) {
      skipWhitespace()
      if (text.charCodeAt(position) !== 34) throw invalid("expecting a property name in double quotes", position)
      position++
      const key = parseString()
      skipWhitespace()
      if (text.charCodeAt(position) !== 58) throw invalid("expecting ':' after a property name", position)
      position++
      skipWhitespace()
      // Map.set keeps the first position but the last value, as Python's dict does for duplicates.
      members.set(key, parseValue(depth))
      skipWhitespace()
      const code = text.charCodeAt(position)
      position++
      if (code === 125) return members
      if (code !== 44) throw invalid("expecting ',' or '}' after an object member", position - 1)
    }
  }

  skipWhitespace()
  const value = parseValue(0)
  skipWhitespace()
  if (position !== length) throw invalid("extra data after the JSON value", position)
  return value
}
