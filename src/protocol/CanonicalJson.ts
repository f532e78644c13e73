/**
 * Canonical JSON, byte for byte as z4j-core writes it: `json.dumps(value, sort_keys=True,
 * separators=(",", ":"), ensure_ascii=False, allow_nan=False)` encoded as UTF-8. Signatures are computed
 * over this form, so every difference from Python breaks verification.
 *
 * Two directions are covered. {@link canonicalize} and {@link parseLossless} read JSON text as Python's
 * `json.loads` reads it (number lexemes decide int or float, duplicate keys keep the last value).
 * {@link renderCanonical} writes values built in TypeScript, following the {@link JsonValue} rules.
 *
 * @since 0.1.0
 */
import {
  CanonicalJsonError,
  isWellFormed,
  LosslessNumber,
  type LosslessValue,
  maxDepth,
  parseLosslessText
} from "./internal/lossless.js"
import { formatPythonFloat as formatFloat } from "./internal/pythonFloat.js"
import { Float, type JsonValue } from "./JsonValue.js"

export type {
  /**
   * @since 0.1.0
   * @category models
   */
  CanonicalJsonErrorReason,
  /**
   * @since 0.1.0
   * @category models
   */
  LosslessArray,
  /**
   * @since 0.1.0
   * @category models
   */
  LosslessObject,
  /**
   * @since 0.1.0
   * @category models
   */
  LosslessValue
} from "./internal/lossless.js"
export {
  /**
   * @since 0.1.0
   * @category errors
   */
  CanonicalJsonError,
  /**
   * @since 0.1.0
   * @category models
   */
  LosslessNumber
}

/**
 * Writes a finite double as CPython's `repr(float)`: `1.0`, `1e-05`, `1e+16`, `-0.0`. Throws
 * {@link CanonicalJsonError} for NaN and infinities, which `allow_nan=False` rejects.
 *
 * @since 0.1.0
 * @category rendering
 */
export const formatPythonFloat = (value: number): string => {
  if (!Number.isFinite(value)) {
    throw new CanonicalJsonError({
      reason: "non_finite_number",
      detail: `${value} has no JSON form; send null or a string instead`,
      position: -1
    })
  }
  return formatFloat(value)
}

/**
 * Parses JSON text the way CPython 3.11's `json.loads` does, keeping number lexemes and applying
 * last-wins to duplicate keys. Throws {@link CanonicalJsonError} on anything `canonical_json` could not
 * write afterwards (invalid JSON, NaN, infinities and overflowing floats, lone surrogates).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseLossless = (jsonText: string): LosslessValue => parseLosslessText(jsonText)

/**
 * Rewrites JSON text in canonical form, byte-identical to z4j-core's `canonical_json(json.loads(text))`.
 * Accepts any top-level value.
 *
 * @since 0.1.0
 * @category rendering
 */
export const canonicalize = (jsonText: string): string => renderLossless(parseLosslessText(jsonText))

const surrogatePattern = /[\uD800-\uDFFF]/

const toWellFormed = String.prototype as unknown as { toWellFormed: (this: string) => string }

/**
 * Orders two strings by Unicode code point, as Python compares `str`. UTF-16 order (JavaScript's `<`)
 * differs only when one side has a surrogate and the other a unit in U+E000..U+FFFF at the first
 * difference, so those units are remapped: U+E000..U+FFFF down by 0x800, surrogates up by 0x2000.
 *
 * @since 0.1.0
 * @category ordering
 */
export const compareCodePoints = (left: string, right: string): number => {
  if (left === right) return 0
  const shared = Math.min(left.length, right.length)
  for (let index = 0; index < shared; index++) {
    let a = left.charCodeAt(index)
    let b = right.charCodeAt(index)
    if (a === b) continue
    if (a >= 0xd800 && b >= 0xd800) {
      a += a >= 0xe000 ? -0x800 : 0x2000
      b += b >= 0xe000 ? -0x800 : 0x2000
    }
    return a - b
  }
  return left.length - right.length
}

const sortKeys = (keys: Array<string>): Array<string> => {
  keys.sort()
  for (const key of keys) {
    if (surrogatePattern.test(key)) return keys.sort(compareCodePoints)
  }
  return keys
}

/**
 * Writes a well-formed string as a canonical JSON string. `JSON.stringify` of a single string escapes
 * exactly what Python escapes (`"`, `\`, U+0000..U+001F with the short forms and lowercase `\u00xx`) and
 * nothing else, as long as the string has no lone surrogate.
 */
const quoteWellFormed = (text: string): string => JSON.stringify(text)

/**
 * Writes `text` as a canonical JSON string, replacing lone surrogates with U+FFFD first: Python cannot
 * encode them, and the brain would fail on the frame.
 *
 * @since 0.1.0
 * @category rendering
 */
export const quoteString = (text: string): string =>
  JSON.stringify(isWellFormed(text) ? text : toWellFormed.toWellFormed.call(text))

const tooDeep = () =>
  new CanonicalJsonError({
    reason: "too_deep",
    detail: `the value nests deeper than ${maxDepth} levels (or contains a cycle); Python cannot write it`,
    position: -1
  })

const renderLosslessAt = (value: LosslessValue, depth: number): string => {
  if (value === null) return "null"
  switch (typeof value) {
    case "string":
      return quoteWellFormed(value)
    case "boolean":
      return value ? "true" : "false"
  }
  if (value instanceof LosslessNumber) return value.canonical
  if (depth >= maxDepth) throw tooDeep()
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]"
    let out = "["
    for (let index = 0; index < value.length; index++) {
      if (index > 0) out += ","
      out += renderLosslessAt(value[index]!, depth + 1)
    }
    return `${out}]`
  }
  const keys = sortKeys([...value.keys()])
  if (keys.length === 0) return "{}"
  let out = "{"
  for (let index = 0; index < keys.length; index++) {
    const key = keys[index]!
    if (index > 0) out += ","
    out += `${quoteWellFormed(key)}:${renderLosslessAt(value.get(key)!, depth + 1)}`
  }
  return `${out}}`
}

/**
 * Writes a tree from {@link parseLossless} in canonical form. The tree's strings must be well-formed,
 * which holds for every tree `parseLossless` returns.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderLossless = (value: LosslessValue): string => renderLosslessAt(value, 0)

const unsupported = (what: string) =>
  new CanonicalJsonError({
    reason: "unsupported_value",
    detail: `${what} has no JSON form; convert it to a string, number, boolean, null, array or plain object`,
    position: -1
  })

const renderNumber = (value: number): string => {
  if (Number.isSafeInteger(value)) return value === 0 ? "0" : String(value)
  if (Number.isInteger(value)) return BigInt(value).toString()
  return formatPythonFloat(value)
}

const renderValueAt = (value: unknown, depth: number): string => {
  switch (typeof value) {
    case "string":
      return quoteString(value)
    case "number":
      return renderNumber(value)
    case "boolean":
      return value ? "true" : "false"
    case "bigint":
      return value.toString()
    case "object":
      break
    default:
      throw unsupported(`a value of type ${typeof value}`)
  }
  if (value === null) return "null"
  if (depth >= maxDepth && !(value instanceof Float) && !(value instanceof LosslessNumber)) throw tooDeep()
  const prototype = Object.getPrototypeOf(value)
  if (prototype === Object.prototype || prototype === null) return renderRecord(value as Record<string, unknown>, depth)
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]"
    let out = "["
    for (let index = 0; index < value.length; index++) {
      if (index > 0) out += ","
      const item: unknown = value[index]
      // JSON.stringify writes undefined array items as null; do the same.
      out += item === undefined ? "null" : renderValueAt(item, depth + 1)
    }
    return `${out}]`
  }
  if (value instanceof Float) return formatPythonFloat(value.value)
  if (value instanceof LosslessNumber) return value.canonical
  if (value instanceof Map) return renderEntries(value as Map<unknown, unknown>, depth)
  const toJSON = (value as { toJSON?: unknown }).toJSON
  if (typeof toJSON === "function") return renderValueAt(toJSON.call(value), depth + 1)
  return renderRecord(value as Record<string, unknown>, depth)
}

/** A key's quoted form, with the two facts that change sorting and repair. */
interface KeyInfo {
  readonly quoted: string
  readonly wellFormed: boolean
  readonly hasSurrogate: boolean
}

// Event dicts repeat the same few keys, so their quoted form is cached. The cache is cleared when
// full, which bounds its memory whatever keys callers send.
const keyCache = new Map<string, KeyInfo>()
const keyCacheLimit = 4096

const keyInfo = (key: string): KeyInfo => {
  let info = keyCache.get(key)
  if (info === undefined) {
    const wellFormed = isWellFormed(key)
    info = { quoted: wellFormed ? quoteWellFormed(key) : "", wellFormed, hasSurrogate: surrogatePattern.test(key) }
    if (keyCache.size >= keyCacheLimit) keyCache.clear()
    keyCache.set(key, info)
  }
  return info
}

const renderRecord = (record: Record<string, unknown>, depth: number): string => {
  const keys = Object.keys(record)
  let codePointSort = false
  for (let index = 0; index < keys.length; index++) {
    const info = keyInfo(keys[index]!)
    if (!info.wellFormed) return renderEntries(new Map(Object.entries(record)), depth)
    if (info.hasSurrogate) codePointSort = true
  }
  if (codePointSort) keys.sort(compareCodePoints)
  else keys.sort()
  let out = "{"
  let first = true
  for (let index = 0; index < keys.length; index++) {
    const key = keys[index]!
    const item = record[key]
    if (item === undefined) continue
    out += `${first ? "" : ","}${keyInfo(key).quoted}:${renderValueAt(item, depth + 1)}`
    first = false
  }
  return `${out}}`
}

const renderEntries = (entries: Map<unknown, unknown>, depth: number): string => {
  // Keys are repaired before sorting, and two keys that become equal keep the later value, as a
  // Python dict built from the repaired keys would.
  const members = new Map<string, unknown>()
  for (const [rawKey, item] of entries) {
    if (typeof rawKey !== "string") throw unsupported(`a map key of type ${typeof rawKey}`)
    if (item === undefined) continue
    const key = isWellFormed(rawKey) ? rawKey : toWellFormed.toWellFormed.call(rawKey)
    members.delete(key)
    members.set(key, item)
  }
  const keys = sortKeys([...members.keys()])
  let out = "{"
  for (let index = 0; index < keys.length; index++) {
    const key = keys[index]!
    if (index > 0) out += ","
    out += `${quoteWellFormed(key)}:${renderValueAt(members.get(key), depth + 1)}`
  }
  return `${out}}`
}

/**
 * Writes a value built in TypeScript as canonical JSON, in the form the brain re-canonicalizes to the
 * same bytes. Integral `number`s and `bigint`s are ints (`-0` becomes `0`); other finite numbers and
 * {@link Float} values use Python's float repr; lone surrogates in strings and keys become U+FFFD; object
 * members whose value is `undefined` are left out, and `undefined` array items become `null`. Values
 * with a `toJSON` method (such as `Date`) are written through it, and trees from {@link parseLossless}
 * are accepted too. Throws {@link CanonicalJsonError} for NaN, infinities, functions, symbols and
 * nesting deeper than 990 levels (which also catches cycles).
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderCanonical = (value: JsonValue | LosslessValue): string => {
  if (value === undefined) throw unsupported("undefined")
  return renderValueAt(value, 0)
}

/**
 * Converts a {@link parseLossless} tree into plain JavaScript values for Schema decoding: objects become
 * plain objects, floats and safe integers become `number`s, larger integers `bigint`s.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toPlain = (value: LosslessValue): unknown => {
  if (value === null || typeof value !== "object") return value
  if (value instanceof LosslessNumber) return value.toValue()
  if (Array.isArray(value)) return value.map(toPlain)
  const out: Record<string, unknown> = {}
  for (const [key, item] of value) {
    if (key === "__proto__") {
      Object.defineProperty(out, key, { value: toPlain(item), enumerable: true, writable: true, configurable: true })
    } else {
      out[key] = toPlain(item)
    }
  }
  return out
}

/**
 * Parses JSON text into plain values ({@link toPlain} of {@link parseLossless}).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parsePlain = (jsonText: string): unknown => toPlain(parseLosslessText(jsonText))
