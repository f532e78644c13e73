/**
 * Codecs for every protocol v2 frame in both directions, with the limits of z4j-core's pydantic
 * models. Decoders take a verified frame as plain values (or JSON text), ignore unknown fields, fill
 * defaults, and fail with {@link FrameDecodeError} naming the field path and the limit.
 *
 * Encoders write "pydantic-shaped" payloads as canonical JSON text: every model field present (defaults
 * where no value is given), no other fields, datetimes in pydantic form and float-typed fields as
 * floats. Both the raw-dict verifier of z4j-core 1.5.1+ and the older model-dump verifier accept them.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { parsePlain, renderCanonical } from "./CanonicalJson.js"
import { formatPydanticDatetime, parseIsoTimestamp } from "./Datetime.js"
import { newHelloId } from "./Ids.js"
import { Float, type JsonValue } from "./JsonValue.js"

// building blocks

const boundedString = (maxLength: number) => Schema.String.pipe(Schema.maxLength(maxLength))

const intBetween = (minimum: number, maximum: number) => Schema.Int.pipe(Schema.between(minimum, maximum))

const withDefault = <S extends Schema.Schema.AnyNoContext>(schema: S, value: () => Schema.Schema.Type<S>) =>
  Schema.optionalWith(schema, { default: value as never, exact: true })

/**
 * An ISO-8601 datetime string, as Python 3.11's `datetime.fromisoformat` reads it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const IsoDatetime = Schema.String.pipe(
  Schema.filter((text) => parseIsoTimestamp(text) !== null, {
    message: () => "Expected an ISO-8601 datetime such as 2026-05-01T12:00:00.123456Z"
  })
)

/**
 * A frame id: 1 to 64 characters.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FrameId = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64))

const JsonObject = Schema.Record({ key: Schema.String, value: Schema.Unknown })

const signedFields = {
  v: Schema.Literal(2),
  id: FrameId,
  ts: IsoDatetime,
  nonce: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(32)),
  seq: Schema.Int.pipe(Schema.greaterThanOrEqualTo(1)),
  hmac: boundedString(128)
}

const unsignedFields = {
  v: Schema.Literal(2),
  id: FrameId,
  ts: withDefault(Schema.NullOr(IsoDatetime), () => null)
}

// payloads

/**
 * @since 0.1.0
 * @category schemas
 */
export const HelloPayload = Schema.Struct({
  protocol_version: boundedString(40),
  agent_version: boundedString(40),
  framework: boundedString(40),
  engines: withDefault(Schema.Array(Schema.String).pipe(Schema.maxItems(64)), () => []),
  schedulers: withDefault(Schema.Array(Schema.String).pipe(Schema.maxItems(64)), () => []),
  capabilities: withDefault(Schema.Record({ key: Schema.String, value: Schema.Array(Schema.String) }), () => ({})),
  host: withDefault(JsonObject, () => ({})),
  worker_id: withDefault(Schema.NullOr(boundedString(128)), () => null),
  worker_role: withDefault(Schema.NullOr(boundedString(32)), () => null),
  worker_pid: withDefault(Schema.NullOr(intBetween(0, 2 ** 31 - 1)), () => null),
  worker_started_at: withDefault(Schema.NullOr(IsoDatetime), () => null)
})

/**
 * @since 0.1.0
 * @category models
 */
export type HelloPayload = typeof HelloPayload.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const HelloAckPayload = Schema.Struct({
  protocol_version: boundedString(40),
  brain_version: boundedString(40),
  agent_id: Schema.String,
  project_id: Schema.String,
  session_id: Schema.String,
  heartbeat_interval_seconds: withDefault(intBetween(1, 3600), () => 10),
  max_frame_size_bytes: withDefault(intBetween(1024, 64 * 1024 * 1024), () => 1_048_576)
})

/**
 * @since 0.1.0
 * @category models
 */
export type HelloAckPayload = typeof HelloAckPayload.Type

/**
 * One item of `event_batch.payload.events`. The brain skips events without `engine` or `kind`, stores
 * `engine` in 40 characters and `task_id` in 200, and reads `occurred_at` with `fromisoformat`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Event = Schema.Struct({
  id: Schema.String,
  kind: Schema.String.pipe(Schema.minLength(1)),
  engine: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(40)),
  task_id: withDefault(boundedString(200), () => ""),
  occurred_at: IsoDatetime,
  data: withDefault(JsonObject, () => ({}))
})

/**
 * @since 0.1.0
 * @category models
 */
export type Event = typeof Event.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const EventBatchPayload = Schema.Struct({
  events: Schema.Array(Event).pipe(Schema.maxItems(5000))
})

/**
 * @since 0.1.0
 * @category models
 */
export type EventBatchPayload = typeof EventBatchPayload.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const EventBatchAckPayload = Schema.Struct({
  acked_id: boundedString(64),
  received: withDefault(Schema.NonNegativeInt, () => 0),
  accepted: withDefault(Schema.NonNegativeInt, () => 0),
  rejected: withDefault(Schema.NonNegativeInt, () => 0)
})

/**
 * @since 0.1.0
 * @category models
 */
export type EventBatchAckPayload = typeof EventBatchAckPayload.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const HeartbeatPayload = Schema.Struct({
  buffer_size: withDefault(intBetween(0, 10_000_000), () => 0),
  last_flush_at: withDefault(Schema.NullOr(IsoDatetime), () => null),
  dropped_events: withDefault(intBetween(0, 10_000_000), () => 0),
  adapter_health: withDefault(Schema.Record({ key: Schema.String, value: Schema.String }), () => ({}))
})

/**
 * @since 0.1.0
 * @category models
 */
export type HeartbeatPayload = typeof HeartbeatPayload.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const AgentStatusPayload = Schema.Struct({
  auth_failure_streak: withDefault(intBetween(0, 1_000_000), () => 0),
  protocol_failure_streak: withDefault(intBetween(0, 1_000_000), () => 0),
  connection_failure_streak: withDefault(intBetween(0, 1_000_000), () => 0),
  last_successful_connect_at: withDefault(Schema.NullOr(IsoDatetime), () => null),
  current_session_age_seconds: withDefault(Schema.NullOr(Schema.Number.pipe(Schema.between(0, 3.1536e8))), () => null),
  buffer_depth: withDefault(intBetween(0, 10_000_000), () => 0),
  buffer_oldest_age_seconds: withDefault(Schema.NullOr(Schema.Number.pipe(Schema.nonNegative())), () => null),
  agent_version: boundedString(40),
  protocol_version: boundedString(10),
  engines: withDefault(Schema.Array(Schema.String).pipe(Schema.maxItems(32)), () => []),
  schedulers: withDefault(Schema.Array(Schema.String).pipe(Schema.maxItems(32)), () => [])
})

/**
 * @since 0.1.0
 * @category models
 */
export type AgentStatusPayload = typeof AgentStatusPayload.Type

/**
 * `command.payload.target`: always `type` and `id`; newer brains may add keys such as `engine`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CommandTarget = Schema.Struct(
  { type: Schema.String, id: Schema.NullOr(Schema.String) },
  Schema.Record({ key: Schema.String, value: Schema.Unknown })
)

/**
 * @since 0.1.0
 * @category schemas
 */
export const CommandPayload = Schema.Struct({
  action: boundedString(80),
  target: CommandTarget,
  parameters: withDefault(JsonObject, () => ({})),
  timeout_seconds: withDefault(intBetween(1, 3600), () => 60),
  issued_by: withDefault(Schema.NullOr(Schema.String), () => null),
  /** Set by z4j 1.13 on commands bound to one session. The agent echoes it in the ack and the result. */
  delivery_claim_token: Schema.optional(Schema.NullOr(Schema.String))
})

/**
 * @since 0.1.0
 * @category models
 */
export type CommandPayload = typeof CommandPayload.Type

/**
 * `command_ack` carries a free-form object (the reference agent sends `{}`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const CommandAckPayload = JsonObject

/**
 * @since 0.1.0
 * @category models
 */
export type CommandAckPayload = typeof CommandAckPayload.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const CommandResultPayload = Schema.Struct({
  status: Schema.Literal("success", "failed"),
  result: withDefault(Schema.NullOr(JsonObject), () => null),
  error: withDefault(Schema.NullOr(boundedString(8192)), () => null),
  delivery_claim_token: Schema.optional(Schema.NullOr(boundedString(64)))
})

/**
 * @since 0.1.0
 * @category models
 */
export type CommandResultPayload = typeof CommandResultPayload.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const RegistryDeltaPayload = Schema.Struct({
  engine: boundedString(40),
  added: withDefault(Schema.Array(JsonObject).pipe(Schema.maxItems(10_000)), () => []),
  removed: withDefault(Schema.Array(Schema.String).pipe(Schema.maxItems(10_000)), () => []),
  updated: withDefault(Schema.Array(JsonObject).pipe(Schema.maxItems(10_000)), () => [])
})

/**
 * @since 0.1.0
 * @category models
 */
export type RegistryDeltaPayload = typeof RegistryDeltaPayload.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const ErrorPayload = Schema.Struct({
  code: boundedString(80),
  message: boundedString(8192),
  fatal: withDefault(Schema.Boolean, () => false)
})

/**
 * @since 0.1.0
 * @category models
 */
export type ErrorPayload = typeof ErrorPayload.Type

// frames

/**
 * @since 0.1.0
 * @category schemas
 */
export const HelloFrame = Schema.Struct({ ...unsignedFields, type: Schema.Literal("hello"), payload: HelloPayload })

/**
 * @since 0.1.0
 * @category models
 */
export type HelloFrame = typeof HelloFrame.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const HelloAckFrame = Schema.Struct({
  ...unsignedFields,
  type: Schema.Literal("hello_ack"),
  payload: HelloAckPayload
})

/**
 * @since 0.1.0
 * @category models
 */
export type HelloAckFrame = typeof HelloAckFrame.Type

const signedFrame = <Type extends string, Payload extends Schema.Schema.AnyNoContext>(type: Type, payload: Payload) =>
  Schema.Struct({ ...signedFields, type: Schema.Literal(type), payload })

/**
 * @since 0.1.0
 * @category schemas
 */
export const EventBatchFrame = signedFrame("event_batch", EventBatchPayload)

/**
 * @since 0.1.0
 * @category models
 */
export type EventBatchFrame = typeof EventBatchFrame.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const EventBatchAckFrame = signedFrame("event_batch_ack", EventBatchAckPayload)

/**
 * @since 0.1.0
 * @category models
 */
export type EventBatchAckFrame = typeof EventBatchAckFrame.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const HeartbeatFrame = signedFrame("heartbeat", HeartbeatPayload)

/**
 * @since 0.1.0
 * @category models
 */
export type HeartbeatFrame = typeof HeartbeatFrame.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const AgentStatusFrame = signedFrame("agent_status", AgentStatusPayload)

/**
 * @since 0.1.0
 * @category models
 */
export type AgentStatusFrame = typeof AgentStatusFrame.Type

/**
 * A command from the brain; its `id` is the command UUID.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CommandFrame = signedFrame("command", CommandPayload)

/**
 * @since 0.1.0
 * @category models
 */
export type CommandFrame = typeof CommandFrame.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const CommandAckFrame = signedFrame("command_ack", CommandAckPayload)

/**
 * @since 0.1.0
 * @category models
 */
export type CommandAckFrame = typeof CommandAckFrame.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const CommandResultFrame = signedFrame("command_result", CommandResultPayload)

/**
 * @since 0.1.0
 * @category models
 */
export type CommandResultFrame = typeof CommandResultFrame.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const RegistryDeltaFrame = signedFrame("registry_delta", RegistryDeltaPayload)

/**
 * @since 0.1.0
 * @category models
 */
export type RegistryDeltaFrame = typeof RegistryDeltaFrame.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const ErrorFrame = signedFrame("error", ErrorPayload)

/**
 * @since 0.1.0
 * @category models
 */
export type ErrorFrame = typeof ErrorFrame.Type

/**
 * A signed frame the brain sends to an agent.
 *
 * @since 0.1.0
 * @category models
 */
export type BrainFrame = EventBatchAckFrame | CommandFrame | ErrorFrame

/**
 * A frame an agent sends to the brain.
 *
 * @since 0.1.0
 * @category models
 */
export type AgentFrame =
  | HelloFrame
  | EventBatchFrame
  | HeartbeatFrame
  | AgentStatusFrame
  | CommandAckFrame
  | CommandResultFrame
  | RegistryDeltaFrame
  | ErrorFrame

// decoding

/**
 * One violated rule: the field path (such as `payload.events.3.engine`) and the rule.
 *
 * @since 0.1.0
 * @category models
 */
export interface FrameIssue {
  readonly path: string
  readonly message: string
}

/**
 * A frame that is not valid JSON, has an unexpected `type`, or breaks a field rule.
 *
 * @since 0.1.0
 * @category errors
 */
export class FrameDecodeError extends Data.TaggedError("FrameDecodeError")<{
  /** The frame's `type`, or null when it could not be read. */
  readonly frameType: string | null
  readonly issues: ReadonlyArray<FrameIssue>
}> {
  override get message(): string {
    const issues = this.issues.map((issue) => (issue.path === "" ? issue.message : `${issue.path}: ${issue.message}`))
    return `invalid ${this.frameType ?? "frame"}: ${issues.join("; ")}`
  }
}

const readInput = (input: unknown): Either.Either<unknown, FrameDecodeError> => {
  if (typeof input !== "string") return Either.right(input)
  try {
    return Either.right(parsePlain(input))
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    return Either.left(new FrameDecodeError({ frameType: null, issues: [{ path: "", message }] }))
  }
}

const frameTypeOf = (value: unknown): string | null => {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null
  const type = (value as { readonly type?: unknown }).type
  return typeof type === "string" ? type : null
}

/** Groups issues by field path, because a union such as `null | int` reports one issue per failed member. */
const groupIssues = (error: ParseResult.ParseError): ReadonlyArray<FrameIssue> => {
  const byPath = new Map<string, Array<string>>()
  for (const issue of ParseResult.ArrayFormatter.formatErrorSync(error)) {
    const path = issue.path.map(String).join(".")
    const messages = byPath.get(path)
    if (messages === undefined) byPath.set(path, [issue.message])
    else messages.push(issue.message)
  }
  return [...byPath].map(([path, messages]) => ({ path, message: messages.join(", or ") }))
}

const decodeWith =
  <A, I>(schema: Schema.Schema<A, I>) =>
  (value: unknown, frameType: string | null): Either.Either<A, FrameDecodeError> =>
    Schema.decodeUnknownEither(schema, { errors: "all" })(value).pipe(
      Either.mapLeft((error) => new FrameDecodeError({ frameType, issues: groupIssues(error) }))
    )

const byType = <Frame>(
  decoders: Record<string, (value: unknown, frameType: string | null) => Either.Either<Frame, FrameDecodeError>>,
  expected: string
) => {
  return (input: unknown): Either.Either<Frame, FrameDecodeError> =>
    Either.flatMap(readInput(input), (value) => {
      const type = frameTypeOf(value)
      // Own keys only: a frame typed "constructor" or "valueOf" must not reach Object.prototype.
      const decoder = type === null || !Object.hasOwn(decoders, type) ? undefined : decoders[type]
      if (decoder === undefined) {
        const found = type === null ? "no type" : `type ${JSON.stringify(type)}`
        return Either.left(
          new FrameDecodeError({
            frameType: type,
            issues: [{ path: "type", message: `expected ${expected}, got ${found}` }]
          })
        )
      }
      return decoder(value, type)
    })
}

/**
 * Decodes a `hello_ack` from JSON text or plain values.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeHelloAck: (input: unknown) => Either.Either<HelloAckFrame, FrameDecodeError> = byType(
  { hello_ack: decodeWith(HelloAckFrame) },
  "hello_ack"
)

/**
 * Decodes a `hello` from JSON text or plain values.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeHello: (input: unknown) => Either.Either<HelloFrame, FrameDecodeError> = byType(
  { hello: decodeWith(HelloFrame) },
  "hello"
)

/**
 * Decodes a verified brain->agent frame (`event_batch_ack`, `command` or `error`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeBrainFrame: (input: unknown) => Either.Either<BrainFrame, FrameDecodeError> = byType<BrainFrame>(
  {
    event_batch_ack: decodeWith(EventBatchAckFrame),
    command: decodeWith(CommandFrame),
    error: decodeWith(ErrorFrame)
  },
  "event_batch_ack, command or error"
)

/**
 * Decodes an agent->brain frame (a `hello`, or a verified signed frame), for test brains.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeAgentFrame: (input: unknown) => Either.Either<AgentFrame, FrameDecodeError> = byType<AgentFrame>(
  {
    hello: decodeWith(HelloFrame),
    event_batch: decodeWith(EventBatchFrame),
    heartbeat: decodeWith(HeartbeatFrame),
    agent_status: decodeWith(AgentStatusFrame),
    command_ack: decodeWith(CommandAckFrame),
    command_result: decodeWith(CommandResultFrame),
    registry_delta: decodeWith(RegistryDeltaFrame),
    error: decodeWith(ErrorFrame)
  },
  "hello, event_batch, heartbeat, agent_status, command_ack, command_result, registry_delta or error"
)

// encoding

/**
 * A datetime for an outbound field: a `Date` is written in pydantic form, a string as given.
 *
 * @since 0.1.0
 * @category models
 */
export type DatetimeInput = Date | string

const datetime = (value: DatetimeInput | null | undefined): string | null => {
  if (value === null || value === undefined) return null
  return typeof value === "string" ? value : formatPydanticDatetime(value)
}

const floatOrNull = (value: number | Float | null | undefined): Float | null => {
  if (value === null || value === undefined) return null
  return value instanceof Float ? value : new Float(value)
}

type JsonRecord = { readonly [key: string]: unknown }

/**
 * @since 0.1.0
 * @category models
 */
export interface HeartbeatPayloadInput {
  readonly buffer_size?: number
  readonly last_flush_at?: DatetimeInput | null
  readonly dropped_events?: number
  readonly adapter_health?: Readonly<Record<string, string>>
}

/**
 * Writes a `heartbeat` payload.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeHeartbeatPayload = (payload: HeartbeatPayloadInput): string =>
  renderCanonical({
    buffer_size: payload.buffer_size ?? 0,
    last_flush_at: datetime(payload.last_flush_at),
    dropped_events: payload.dropped_events ?? 0,
    adapter_health: payload.adapter_health ?? {}
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface AgentStatusPayloadInput {
  readonly auth_failure_streak?: number
  readonly protocol_failure_streak?: number
  readonly connection_failure_streak?: number
  readonly last_successful_connect_at?: DatetimeInput | null
  /** Written as a float even when integral. */
  readonly current_session_age_seconds?: number | Float | null
  readonly buffer_depth?: number
  /** Written as a float even when integral. */
  readonly buffer_oldest_age_seconds?: number | Float | null
  readonly agent_version: string
  readonly protocol_version: string
  readonly engines?: ReadonlyArray<string>
  readonly schedulers?: ReadonlyArray<string>
}

/**
 * Writes an `agent_status` payload.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeAgentStatusPayload = (payload: AgentStatusPayloadInput): string =>
  renderCanonical({
    auth_failure_streak: payload.auth_failure_streak ?? 0,
    protocol_failure_streak: payload.protocol_failure_streak ?? 0,
    connection_failure_streak: payload.connection_failure_streak ?? 0,
    last_successful_connect_at: datetime(payload.last_successful_connect_at),
    current_session_age_seconds: floatOrNull(payload.current_session_age_seconds),
    buffer_depth: payload.buffer_depth ?? 0,
    buffer_oldest_age_seconds: floatOrNull(payload.buffer_oldest_age_seconds),
    agent_version: payload.agent_version,
    protocol_version: payload.protocol_version,
    engines: payload.engines ?? [],
    schedulers: payload.schedulers ?? []
  })

/**
 * Writes a `command_ack` payload (`{}` unless given an object).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeCommandAckPayload = (payload: JsonRecord = {}): string => renderCanonical(payload as JsonValue)

/**
 * @since 0.1.0
 * @category models
 */
export interface CommandResultPayloadInput {
  readonly status: "success" | "failed"
  readonly result?: JsonRecord | null
  readonly error?: string | null
  readonly delivery_claim_token?: string | null
}

/**
 * Writes a `command_result` payload. The brain stores at most 8192 characters of `error`, so the
 * caller truncates longer texts.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeCommandResultPayload = (payload: CommandResultPayloadInput): string =>
  renderCanonical({
    status: payload.status,
    result: (payload.result ?? null) as JsonValue,
    error: payload.error ?? null,
    ...(typeof payload.delivery_claim_token === "string" ? { delivery_claim_token: payload.delivery_claim_token } : {})
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface RegistryDeltaPayloadInput {
  readonly engine: string
  readonly added?: ReadonlyArray<JsonRecord>
  readonly removed?: ReadonlyArray<string>
  readonly updated?: ReadonlyArray<JsonRecord>
}

/**
 * Writes a `registry_delta` payload.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeRegistryDeltaPayload = (payload: RegistryDeltaPayloadInput): string =>
  renderCanonical({
    engine: payload.engine,
    added: (payload.added ?? []) as JsonValue,
    removed: payload.removed ?? [],
    updated: (payload.updated ?? []) as JsonValue
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface ErrorPayloadInput {
  readonly code: string
  readonly message: string
  readonly fatal?: boolean
}

/**
 * Writes an `error` payload.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeErrorPayload = (payload: ErrorPayloadInput): string =>
  renderCanonical({ code: payload.code, message: payload.message, fatal: payload.fatal ?? false })

/**
 * @since 0.1.0
 * @category models
 */
export interface EventInput {
  readonly id: string
  readonly kind: string
  readonly engine: string
  readonly task_id: string
  readonly occurred_at: DatetimeInput
  readonly data: JsonRecord
}

/**
 * Writes one event dict for `event_batch.payload.events`, to be cached and joined by
 * {@link encodeEventBatchPayload}.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeEvent = (event: EventInput): string =>
  renderCanonical({
    id: event.id,
    kind: event.kind,
    engine: event.engine,
    task_id: event.task_id,
    occurred_at: datetime(event.occurred_at),
    data: event.data as JsonValue
  })

/**
 * Writes an `event_batch` payload from events already written by {@link encodeEvent} (or
 * `renderCanonical`), without parsing them again.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeEventBatchPayload = (eventBodies: ReadonlyArray<string>): string =>
  `{"events":[${eventBodies.join(",")}]}`

/**
 * @since 0.1.0
 * @category models
 */
export interface HelloPayloadInput {
  readonly protocol_version: string
  readonly agent_version: string
  readonly framework: string
  readonly engines?: ReadonlyArray<string>
  readonly schedulers?: ReadonlyArray<string>
  readonly capabilities?: Readonly<Record<string, ReadonlyArray<string>>>
  readonly host?: JsonRecord
  readonly worker_id?: string | null
  readonly worker_role?: string | null
  readonly worker_pid?: number | null
  readonly worker_started_at?: DatetimeInput | null
  /**
   * Runtime-wide feature flags (z4j 1.12+). Written only when given: older brains ignore unknown
   * hello fields, and the hello is not signed, so its field set does not affect any HMAC.
   */
  readonly runtime_features?: ReadonlyArray<string>
}

/**
 * Writes the whole (unsigned) `hello` frame: `v`, `type`, `id` (default `hello_` and 16 hex digits),
 * `ts` (default now) and the payload with every field.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeHello = (
  payload: HelloPayloadInput,
  options: { readonly id?: string; readonly now?: Date } = {}
): string =>
  renderCanonical({
    v: 2,
    type: "hello",
    id: options.id ?? newHelloId(),
    ts: formatPydanticDatetime(options.now ?? new Date()),
    payload: {
      protocol_version: payload.protocol_version,
      agent_version: payload.agent_version,
      framework: payload.framework,
      engines: payload.engines ?? [],
      schedulers: payload.schedulers ?? [],
      capabilities: payload.capabilities ?? {},
      host: (payload.host ?? {}) as JsonValue,
      worker_id: payload.worker_id ?? null,
      worker_role: payload.worker_role ?? null,
      worker_pid: payload.worker_pid ?? null,
      worker_started_at: datetime(payload.worker_started_at),
      ...(payload.runtime_features === undefined ? {} : { runtime_features: [...payload.runtime_features] })
    }
  })
