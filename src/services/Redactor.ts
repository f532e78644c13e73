/**
 * Scrubs secrets and personal data from everything the agent buffers or sends (events, command results,
 * schedule snapshots), and turns any value a host application hands over into a JSON-safe copy.
 *
 * To change what is scrubbed, give the agent's layer `redaction` (extra patterns, depth) or a whole
 * `redactor` of your own (see `Z4j.Options`).
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { JsonValue } from "../protocol/JsonValue.js"
import { compileExtraPattern } from "./internal/redactorPatterns.js"
import { makeRedact } from "./internal/redactorWalk.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface RedactorShape {
  /**
   * Returns a scrubbed, JSON-safe copy of `value`. Total: it never throws and never writes to `value`,
   * and `redact(redact(x))` deep-equals `redact(x)`. It does call the host's getters, Proxy traps and
   * `toJSON` methods, which may have side effects of their own.
   *
   * - A key whose whole name, ignoring case, is a secret name (`password`, `token`, `api_key`, `cookie`,
   *   `ssn`, `cvv`, ...) or matches an extra key pattern keeps its value's shape, but every leaf under it
   *   (null, numbers and booleans included) becomes {@link marker}.
   * - A string in which a value shape (JWT, bearer token, Stripe, Slack, GitHub, AWS, Google, Twilio or
   *   SendGrid key, URL with a password, PEM private key header, e-mail address, US SSN) or an extra
   *   value pattern occurs anywhere becomes {@link marker}, ignoring case.
   * - A key that contains a value shape is renamed to the marker and its value is kept. When that name is
   *   taken in the same object, it becomes `[REDACTED]#2`, `[REDACTED]#3` and so on, so no entry is lost.
   * - A string longer than `maxStringBytes` in UTF-8 is cut at that byte, a split character becomes
   *   U+FFFD, and `[...N more bytes truncated]` is appended with N the bytes removed. Value shapes are
   *   searched in the cut text. Keys are cut the same way.
   * - A value nested deeper than `maxDepth` (the argument is depth 0) becomes the marker, and so does
   *   an object where it appears inside itself. An object reached twice along different paths is
   *   copied twice.
   * - As in `JSON.stringify`, `undefined`, functions and symbols are dropped from objects and become
   *   null in arrays (the marker under a secret key), holes in sparse arrays become null, and symbol
   *   keys are skipped.
   * - NaN and ±Infinity become null, -0 becomes 0, bigints stay bigints, `Float` instances pass through
   *   as they are, and boxed primitives are unwrapped.
   * - A Date becomes its ISO string, or null when it is invalid. An Error becomes an object with its
   *   `name`, `message`, `stack`, `cause` (when present) and own enumerable properties. A Map becomes an
   *   object of its string-keyed entries and a Set becomes an array.
   * - Typed arrays, Buffers, DataViews and ArrayBuffers become `[binary: N bytes]`, and their bytes are
   *   never copied.
   * - An object with a `toJSON` method is replaced by what that method returns, as in `JSON.stringify`.
   *   Any other object, a class instance or a null-prototype object, becomes an object of its own
   *   enumerable string-keyed properties.
   * - A property, `toJSON` method or Proxy trap that throws becomes `[unreadable: <error name>]`.
   */
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
  /** Maximum UTF-8 length of a string before it is truncated, in bytes. Default 8192. */
  readonly maxStringBytes?: number
  /** Maximum nesting depth; deeper values become the marker. Default 64, at most 1000. */
  readonly maxDepth?: number
  /**
   * Extra secret key names as JavaScript regular expression sources, matched against whole keys and
   * ignoring case.
   */
  readonly extraKeyPatterns?: ReadonlyArray<string>
  /** Extra value shapes as JavaScript regular expression sources, searched in strings and ignoring case. */
  readonly extraValuePatterns?: ReadonlyArray<string>
}

/**
 * The string that replaces a scrubbed value.
 *
 * @since 0.1.0
 * @category constants
 */
export const marker = "[REDACTED]"

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxStringBytes = 8192

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxDepth = 64

const maxDepthLimit = 1000

/**
 * An extra key or value pattern does not compile as a JavaScript regular expression
 * (`reason: "syntax"`), or contains a repeated group that itself repeats, such as `(a+)+`, which can
 * take exponential time on a near-miss (`reason: "backtracking"`).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRedactionPattern extends Data.TaggedError("InvalidRedactionPattern")<{
  readonly pattern: string
  readonly kind: "key" | "value"
  readonly reason: "syntax" | "backtracking"
  readonly cause: unknown
}> {
  override get message(): string {
    const setting = this.kind === "key" ? "Z4J_REDACTION_EXTRA_KEY_PATTERNS" : "Z4J_REDACTION_EXTRA_VALUE_PATTERNS"
    const option = this.kind === "key" ? "extraKeyPatterns" : "extraValuePatterns"
    const problem =
      this.reason === "syntax"
        ? `is not a valid JavaScript regular expression (${describe(this.cause)}); fix its syntax`
        : `repeats a group that already repeats (${describe(this.cause)}), which can backtrack for exponential time; rewrite it without the nested quantifier, for example (ab)+ in place of (a+b)+`
    return `Invalid extra redaction ${this.kind} pattern "${this.pattern}": it ${problem}, or remove it from ${setting} (option ${option})`
  }
}

const describe = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const compileAll = (
  sources: ReadonlyArray<string>,
  kind: "key" | "value"
): Effect.Effect<ReadonlyArray<RegExp>, InvalidRedactionPattern> =>
  Effect.forEach(sources, (pattern) => {
    const compiled = compileExtraPattern(pattern, kind === "key")
    return compiled instanceof RegExp
      ? Effect.succeed(compiled)
      : Effect.fail(new InvalidRedactionPattern({ pattern, kind, reason: compiled.reason, cause: compiled.cause }))
  })

const checkLimit = (name: string, value: number, min: number, max: number): Effect.Effect<number> =>
  Number.isInteger(value) && value >= min && value <= max
    ? Effect.succeed(value)
    : Effect.die(
        new Cause.IllegalArgumentException(
          `Redactor option ${name} must be an integer from ${min} to ${max}, got ${value}`
        )
      )

/**
 * Builds the default redactor. Fails with {@link InvalidRedactionPattern} when an extra pattern is
 * invalid; an out-of-range `maxStringBytes` or `maxDepth` is a defect.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: RedactorOptions = {}): Effect.Effect<RedactorShape, InvalidRedactionPattern> =>
  Effect.gen(function* () {
    const maxStringBytes = yield* checkLimit(
      "maxStringBytes",
      options.maxStringBytes ?? defaultMaxStringBytes,
      1,
      Number.MAX_SAFE_INTEGER
    )
    const maxDepth = yield* checkLimit("maxDepth", options.maxDepth ?? defaultMaxDepth, 0, maxDepthLimit)
    const extraKeyPatterns = yield* compileAll(options.extraKeyPatterns ?? [], "key")
    const extraValuePatterns = yield* compileAll(options.extraValuePatterns ?? [], "value")
    return { redact: makeRedact({ marker, maxStringBytes, maxDepth, extraKeyPatterns, extraValuePatterns }) }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RedactorOptions = {}): Layer.Layer<Redactor, InvalidRedactionPattern> =>
  Layer.effect(Redactor, make(options))

const patternList = (name: string): Config.Config<ReadonlyArray<string>> =>
  Config.map(Config.withDefault(Config.array(Config.string(), name), []), (patterns) =>
    patterns.map((pattern) => pattern.trim()).filter((pattern) => pattern.length > 0)
  )

/**
 * Builds the default redactor from `Z4J_MAX_PAYLOAD_BYTES` (the string cap, default 8192) and the
 * comma-separated `Z4J_REDACTION_EXTRA_KEY_PATTERNS` and `Z4J_REDACTION_EXTRA_VALUE_PATTERNS`. A field set
 * in `overrides` replaces the value read from Config, so a caller that already resolved the payload cap
 * passes it here.
 *
 * Each pattern is trimmed and empty entries are ignored. A pattern read this way cannot contain a comma,
 * so a count such as `{2,5}` has to be passed through `overrides` instead.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFromConfig = (
  overrides: RedactorOptions = {}
): Effect.Effect<RedactorShape, InvalidRedactionPattern | ConfigError.ConfigError> =>
  Effect.gen(function* () {
    // A setting given in `overrides` is not read, so an unset or invalid variable cannot fail it.
    const maxStringBytes =
      overrides.maxStringBytes ??
      (yield* Config.integer("Z4J_MAX_PAYLOAD_BYTES").pipe(
        Config.validate({
          message: "Z4J_MAX_PAYLOAD_BYTES must be a positive number of bytes",
          validation: (bytes) => bytes >= 1
        }),
        Config.withDefault(defaultMaxStringBytes)
      ))
    const extraKeyPatterns = overrides.extraKeyPatterns ?? (yield* patternList("Z4J_REDACTION_EXTRA_KEY_PATTERNS"))
    const extraValuePatterns =
      overrides.extraValuePatterns ?? (yield* patternList("Z4J_REDACTION_EXTRA_VALUE_PATTERNS"))
    return yield* make({ ...overrides, maxStringBytes, extraKeyPatterns, extraValuePatterns })
  })

/**
 * The default redactor configured as {@link makeFromConfig} describes, with no overrides.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig: Layer.Layer<Redactor, InvalidRedactionPattern | ConfigError.ConfigError> = Layer.effect(
  Redactor,
  makeFromConfig()
)
