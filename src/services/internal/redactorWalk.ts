/**
 * The redactor's copy-and-scrub walk over host values.
 *
 * @since 0.1.0
 */
import { Float, type JsonValue } from "../../protocol/JsonValue.js"
import { atValueShapesPattern, minValueShapeLength, secretKeyNames, valueShapesPattern } from "./redactorPatterns.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface WalkSettings {
  readonly marker: string
  readonly maxStringBytes: number
  readonly maxDepth: number
  readonly extraKeyPatterns: ReadonlyArray<RegExp>
  readonly extraValuePatterns: ReadonlyArray<RegExp>
}

interface KeyDecision {
  /** The key written to the output: the input key, its truncated form or the marker. */
  readonly key: string
  /** Whether every leaf under the key becomes the marker. */
  readonly secret: boolean
}

type Fields = Record<string, JsonValue>

const truncatedTail = " more bytes truncated]"
const truncatedHead = "[..."
const collisionTail = /#[0-9]+$/
const collisionNumber = /^#[0-9]+$/
const plainErrorName = /^[A-Za-z_$][\w$]{0,63}$/
// Keys are cached only up to this length, and the cache is emptied when it reaches its size limit,
// so a host that invents a new key per event costs memory only up to this bound.
const cachedKeyMaxLength = 256
const keyCacheMaxEntries = 4096

const encoder = new TextEncoder()
// ignoreBOM keeps a leading U+FEFF in the text instead of stripping it.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true })

/**
 * Builds the `redact` function of a redactor from validated settings.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeRedact = (settings: WalkSettings): ((value: unknown) => JsonValue) => {
  const { extraKeyPatterns, extraValuePatterns, marker, maxDepth, maxStringBytes } = settings
  const markerKeyPrefix = `${marker}#`
  const keyCache = new Map<string, KeyDecision>()

  // Strings of at most this many UTF-16 code units fit the cap whatever they contain, because no code
  // unit takes more than 3 UTF-8 bytes.
  const safeLength = Math.floor(maxStringBytes / 3)

  const utf8Length = (text: string): number => Buffer.byteLength(text, "utf8")

  // Returns where the truncation suffix starts when `text` is already the output of truncating at this
  // cap, else -1. Without this check a second pass would cut the suffix off again.
  const truncatedAt = (text: string): number => {
    if (!text.endsWith(truncatedTail)) {
      return -1
    }
    const digitsEnd = text.length - truncatedTail.length
    const start = text.lastIndexOf(truncatedHead, digitsEnd)
    if (start < 0 || start + truncatedHead.length >= digitsEnd) {
      return -1
    }
    for (let index = start + truncatedHead.length; index < digitsEnd; index++) {
      const code = text.charCodeAt(index)
      if (code < 48 || code > 57) {
        return -1
      }
    }
    // A character split by the cut becomes U+FFFD (3 bytes), so the kept text can exceed the cap by 2.
    return utf8Length(text.slice(0, start)) <= maxStringBytes + 2 ? start : -1
  }

  const truncate = (text: string, isKey: boolean): string => {
    if (text.length <= safeLength) {
      return text
    }
    const bytes = utf8Length(text)
    if (bytes <= maxStringBytes) {
      return text
    }
    const unsuffixed = isKey ? text.replace(collisionTail, "") : text
    if (truncatedAt(unsuffixed) >= 0) {
      return text
    }
    // Each code unit is at least one byte, so the first maxStringBytes units cover the cut point.
    const head = encoder.encode(text.slice(0, maxStringBytes)).subarray(0, maxStringBytes)
    return `${decoder.decode(head)}${truncatedHead}${bytes - maxStringBytes}${truncatedTail}`
  }

  const matchesValueShape = (text: string): boolean => {
    if (
      text.length >= minValueShapeLength &&
      (valueShapesPattern.test(text) || (text.includes("@") && atValueShapesPattern.test(text)))
    ) {
      return true
    }
    for (const pattern of extraValuePatterns) {
      if (pattern.test(text)) {
        return true
      }
    }
    return false
  }

  const scrubString = (text: string): string => {
    if (text === marker) {
      return text
    }
    const capped = truncate(text, false)
    return matchesValueShape(capped) ? marker : capped
  }

  const isMarkerKey = (key: string): boolean =>
    key === marker || (key.startsWith(markerKeyPrefix) && collisionNumber.test(key.slice(marker.length)))

  const decideKey = (key: string): KeyDecision => {
    // Keys this walk wrote itself stay as they are, which keeps a second pass from changing them.
    if (isMarkerKey(key)) {
      return { key, secret: false }
    }
    // Extra key patterns see the cut text of a key longer than the cap, like value patterns do.
    const capped = truncate(key, true)
    let secret = secretKeyNames.has(key.toLowerCase())
    for (let index = 0; !secret && index < extraKeyPatterns.length; index++) {
      secret = extraKeyPatterns[index]!.test(capped)
    }
    return { key: matchesValueShape(capped) ? marker : capped, secret }
  }

  const keyDecision = (key: string): KeyDecision => {
    let decision = keyCache.get(key)
    if (decision === undefined) {
      decision = decideKey(key)
      if (key.length <= cachedKeyMaxLength) {
        if (keyCache.size >= keyCacheMaxEntries) {
          keyCache.clear()
        }
        keyCache.set(key, decision)
      }
    }
    return decision
  }

  const unreadable = (error: unknown, masked: boolean): string => {
    if (masked) {
      return marker
    }
    // Only a short identifier is shown: a thrown value's text may itself carry a secret.
    let name: string = typeof error
    if (typeof error === "object" && error !== null) {
      try {
        const candidate = (error as { name?: unknown }).name
        name = typeof candidate === "string" && plainErrorName.test(candidate) ? candidate : "Error"
      } catch {
        name = "Error"
      }
    }
    return scrubString(`[unreadable: ${name}]`)
  }

  const leaf = (value: JsonValue, masked: boolean): JsonValue => (masked ? marker : value)

  // Text this walk writes itself goes through the same scrub as host strings, so an extra value
  // pattern that matches it gives the same result on a second pass.
  const placeholder = (text: string, masked: boolean): string => (masked ? marker : scrubString(text))

  // `undefined` means "omit": objects drop the property, arrays write null, as JSON.stringify does.
  const walk = (value: unknown, depth: number, masked: boolean, stack: Array<object>): JsonValue | undefined => {
    switch (typeof value) {
      case "undefined":
      case "function":
      case "symbol":
        return undefined
    }
    if (depth > maxDepth) {
      return marker
    }
    switch (typeof value) {
      case "string":
        return masked ? marker : scrubString(value)
      case "number":
        if (!Number.isFinite(value)) {
          return leaf(null, masked)
        }
        // Adding 0 turns -0 into 0 and leaves every other number as it is.
        return leaf(value + 0, masked)
      case "boolean":
      case "bigint":
        return leaf(value, masked)
    }
    if (value === null) {
      return leaf(null, masked)
    }
    return walkObject(value as object, depth, masked, stack, false)
  }

  const walkObject = (
    value: object,
    depth: number,
    masked: boolean,
    stack: Array<object>,
    viaToJSON: boolean
  ): JsonValue | undefined => {
    // Only ancestors count as a cycle: a shared object reached twice by different paths is copied twice.
    for (let index = 0; index < depth; index++) {
      if (stack[index] === value) {
        return marker
      }
    }
    stack[depth] = value
    try {
      if (Array.isArray(value)) {
        if (!viaToJSON) {
          const converted = fromToJSON(value, depth, masked, stack)
          if (converted !== noToJSON) {
            return converted
          }
        }
        return walkArray(value, depth, masked, stack)
      }
      const proto = Object.getPrototypeOf(value)
      if (proto === Object.prototype || proto === null) {
        if (!viaToJSON) {
          const converted = fromToJSON(value, depth, masked, stack)
          if (converted !== noToJSON) {
            return converted
          }
        }
        return walkFields(value, Object.keys(value), undefined, depth, masked, stack)
      }
      return walkInstance(value, depth, masked, stack, viaToJSON)
    } catch (error) {
      return unreadable(error, masked)
    }
  }

  const noToJSON: unique symbol = Symbol("noToJSON")

  const fromToJSON = (
    value: object,
    depth: number,
    masked: boolean,
    stack: Array<object>
  ): JsonValue | undefined | typeof noToJSON => {
    const toJSON = (value as { toJSON?: unknown }).toJSON
    if (typeof toJSON !== "function") {
      return noToJSON
    }
    const converted: unknown = toJSON.call(value, "")
    // Like JSON.stringify, the result of toJSON is not asked for its own toJSON.
    if (typeof converted === "object" && converted !== null) {
      return walkObject(converted, depth, masked, stack, true)
    }
    return walk(converted, depth, masked, stack)
  }

  const walkInstance = (
    value: object,
    depth: number,
    masked: boolean,
    stack: Array<object>,
    viaToJSON: boolean
  ): JsonValue | undefined => {
    if (value instanceof Float) {
      return leaf(value, masked)
    }
    if (value instanceof Date) {
      const time = Date.prototype.getTime.call(value)
      return Number.isNaN(time) ? leaf(null, masked) : placeholder(Date.prototype.toISOString.call(value), masked)
    }
    if (ArrayBuffer.isView(value)) {
      return placeholder(`[binary: ${value.byteLength} bytes]`, masked)
    }
    if (
      value instanceof ArrayBuffer ||
      (typeof SharedArrayBuffer !== "undefined" && value instanceof SharedArrayBuffer)
    ) {
      return placeholder(`[binary: ${value.byteLength} bytes]`, masked)
    }
    if (value instanceof String || value instanceof Number || value instanceof Boolean || value instanceof BigInt) {
      return walk(value.valueOf(), depth, masked, stack)
    }
    if (!viaToJSON) {
      const converted = fromToJSON(value, depth, masked, stack)
      if (converted !== noToJSON) {
        return converted
      }
    }
    if (value instanceof Map) {
      const keys: Array<string> = []
      const values: Array<unknown> = []
      for (const [key, item] of value) {
        if (typeof key === "string") {
          keys.push(key)
          values.push(item)
        }
      }
      return walkFields(value, keys, values, depth, masked, stack)
    }
    if (value instanceof Set) {
      return walkArray(Array.from(value), depth, masked, stack)
    }
    if (value instanceof Error) {
      const keys = ["name", "message", "stack"]
      if ("cause" in value) {
        keys.push("cause")
      }
      for (const key of Object.keys(value)) {
        if (!keys.includes(key)) {
          keys.push(key)
        }
      }
      return walkFields(value, keys, undefined, depth, masked, stack)
    }
    return walkFields(value, Object.keys(value), undefined, depth, masked, stack)
  }

  const walkArray = (
    value: ReadonlyArray<unknown>,
    depth: number,
    masked: boolean,
    stack: Array<object>
  ): Array<JsonValue> => {
    // NOTE: a sparse array is copied hole by hole, so `new Array(1e8)` costs the host that many steps.
    const length = value.length
    const out: Array<JsonValue> = []
    for (let index = 0; index < length; index++) {
      let item: unknown
      try {
        item = value[index]
      } catch (error) {
        out.push(unreadable(error, masked))
        continue
      }
      // An omitted item is written as null, and that null is subject to the depth cap like any other.
      out.push(walk(item, depth + 1, masked, stack) ?? walk(null, depth + 1, masked, stack) ?? null)
    }
    return out
  }

  const walkFields = (
    source: object,
    keys: ReadonlyArray<string>,
    values: ReadonlyArray<unknown> | undefined,
    depth: number,
    masked: boolean,
    stack: Array<object>
  ): Fields => {
    const out: Fields = {}
    let inputKeys: Set<string> | undefined
    for (let index = 0; index < keys.length; index++) {
      const key = keys[index]!
      const decision = keyDecision(key)
      let copied: JsonValue | undefined
      if (values === undefined) {
        try {
          copied = walk((source as Record<string, unknown>)[key], depth + 1, masked || decision.secret, stack)
        } catch (error) {
          copied = unreadable(error, masked || decision.secret)
        }
      } else {
        copied = walk(values[index], depth + 1, masked || decision.secret, stack)
      }
      if (copied === undefined) {
        continue
      }

      let outKey = decision.key
      if (outKey !== key) {
        // A rewritten key must not overwrite another entry: it takes the first free `#n` form instead.
        inputKeys ??= new Set(keys)
        const base = outKey
        for (let attempt = 2; inputKeys.has(outKey) || Object.hasOwn(out, outKey); attempt++) {
          outKey = `${base}#${attempt}`
        }
      }
      if (outKey === "__proto__") {
        Object.defineProperty(out, outKey, { value: copied, enumerable: true, writable: true, configurable: true })
      } else {
        out[outKey] = copied
      }
    }
    return out
  }

  return (value: unknown): JsonValue => {
    try {
      return walk(value, 0, false, []) ?? null
    } catch (error) {
      // Only a stack overflow or an engine fault gets here: every host callback above is guarded.
      return unreadable(error, false)
    }
  }
}
