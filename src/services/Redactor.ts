/**
 * Scrubs secrets from events before they are buffered, and turns any host value into JSON-safe form.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Float, type JsonValue } from "../protocol/JsonValue.js"

// TODO: interim implementation (key names and host-value sanitizing only) until the full redactor
// with value shapes and truncation lands.

/**
 * @since 0.1.0
 * @category models
 */
export interface RedactorShape {
  readonly redact: (value: unknown) => JsonValue
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Redactor extends Context.Tag("z4j-agent/Redactor")<Redactor, RedactorShape>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface RedactorOptions {
  readonly maxStringBytes?: number
  readonly maxDepth?: number
  readonly extraKeyPatterns?: ReadonlyArray<string>
  readonly extraValuePatterns?: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 * @category errors
 */
export class InvalidRedactionPattern extends Data.TaggedError("InvalidRedactionPattern")<{
  readonly pattern: string
  readonly cause: unknown
}> {}

const secretKeys = new Set(
  "password password_confirmation password_hash passwd pwd old_password new_password secret secrets client_secret webhook_secret token access_token refresh_token id_token api_token bearer_token session_token api_key apikey api-key x-api-key x_api_key authorization auth credentials cookie set-cookie set_cookie ssn social_security social_security_number credit_card credit_card_number card_number cvv cvc".split(
    " "
  )
)

const marker = "[REDACTED]"

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: RedactorOptions = {}): Effect.Effect<RedactorShape, InvalidRedactionPattern> =>
  Effect.sync(() => {
    const maxDepth = options.maxDepth ?? 64
    const walk = (value: unknown, depth: number, seen: Set<object>, masked: boolean): JsonValue => {
      if (depth > maxDepth) return marker
      if (value === null || value === undefined) return masked ? marker : null
      if (typeof value === "string") return masked ? marker : value
      if (typeof value === "number")
        return masked ? marker : Number.isFinite(value) ? (Object.is(value, -0) ? 0 : value) : null
      if (typeof value === "boolean" || typeof value === "bigint") return masked ? marker : value
      if (value instanceof Float) return masked ? marker : value
      if (typeof value !== "object") return null
      if (seen.has(value)) return marker
      seen.add(value)
      try {
        if (Array.isArray(value)) return value.map((item) => walk(item, depth + 1, seen, masked))
        if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString()
        const out: Record<string, JsonValue> = {}
        for (const key of Object.keys(value)) {
          let item: unknown
          try {
            item = (value as Record<string, unknown>)[key]
          } catch (error) {
            out[key] = `[unreadable: ${error instanceof Error ? error.name : "error"}]`
            continue
          }
          if (typeof item === "function" || typeof item === "symbol" || item === undefined) continue
          out[key] = walk(item, depth + 1, seen, masked || secretKeys.has(key.toLowerCase()))
        }
        return out
      } finally {
        seen.delete(value)
      }
    }
    return { redact: (value) => walk(value, 0, new Set(), false) }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RedactorOptions = {}): Layer.Layer<Redactor, InvalidRedactionPattern> =>
  Layer.effect(Redactor, make(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<Redactor, InvalidRedactionPattern | ConfigError.ConfigError> = Layer.effect(
  Redactor,
  Effect.flatMap(Config.withDefault(Config.integer("Z4J_MAX_PAYLOAD_BYTES"), 8192), (maxStringBytes) =>
    make({ maxStringBytes })
  )
)
