/**
 * The sequenced schedule projection of z4j 1.13 (its "external schedule protocol", version 1). A brain
 * with sequenced schedule control refuses the legacy `schedule.snapshot` events; it takes schedules only
 * as projections bound to a stream it allocated.
 *
 * How a stream comes to exist: the agent's hello lists {@link runtimeFeature} in `runtime_features` and
 * {@link stableSnapshotCapability} in `capabilities[<scheduler>]`. Right after the handshake the brain
 * creates a stream for each such scheduler, bound to that WebSocket session, and sends the command
 * `schedule.external.activate` with the stream id, epoch and adapter instance id. The agent then sends a
 * complete snapshot at sequence 1, and later snapshots at 2, 3 and so on. A new session gets a new
 * epoch, which starts again at 1.
 *
 * Every projection travels as one event whose `data` is `{external_projection: body, payload_digest}`.
 * The brain rebuilds the body from its fields, normalizing every schedule row, and compares the SHA-256
 * of its canonical JSON with `payload_digest`; so the agent sends rows already in normal form, and the
 * digest is taken over exactly the body it sends.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import * as Data from "effect/Data"
import { compareCodePoints, renderCanonical } from "./CanonicalJson.js"
import type { JsonObject, JsonValue } from "./JsonValue.js"

/**
 * @since 0.1.0
 * @category constants
 */
export const protocolVersion = 1

/**
 * The `hello.runtime_features` token that requests stream activations from the brain.
 *
 * @since 0.1.0
 * @category constants
 */
export const runtimeFeature = "external_schedule_protocol_v1"

/**
 * The token in `hello.capabilities[<scheduler>]` that declares that this scheduler sends complete snapshots.
 *
 * @since 0.1.0
 * @category constants
 */
export const stableSnapshotCapability = "external_schedule_stable_snapshot_v1"

/**
 * The command the brain sends to hand a stream epoch to this session.
 *
 * @since 0.1.0
 * @category constants
 */
export const activateAction = "schedule.external.activate"

/**
 * The command a brain sends when an operator enables or disables a projected schedule. The agent must
 * change the schedule and send a `control` projection at the reserved sequence.
 *
 * @since 0.1.0
 * @category constants
 */
export const controlAction = "schedule.external.control"

/** The owner name the brain keeps for its own scheduler. */
const reservedOwner = "z4j-scheduler"

/**
 * @since 0.1.0
 * @category models
 */
export type ScheduleProjectionErrorReason = "bad_activation" | "bad_schedule" | "duplicate_source_key"

/**
 * A schedule or an activation that cannot be written as a projection the brain would take.
 *
 * @since 0.1.0
 * @category errors
 */
export class ScheduleProjectionError extends Data.TaggedError("ScheduleProjectionError")<{
  readonly reason: ScheduleProjectionErrorReason
  readonly detail: string
}> {
  override get message(): string {
    return `${this.reason}: ${this.detail}`
  }
}

const fail = (reason: ScheduleProjectionErrorReason, detail: string): never => {
  throw new ScheduleProjectionError({ reason, detail })
}

/**
 * The stream epoch the brain handed to one scheduler of this session.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamAuthority {
  readonly owner: string
  readonly sourceScope: string
  readonly streamId: string
  readonly epochUuid: string
  readonly epochNumber: number
  readonly adapterInstanceId: string
  readonly stableSource: boolean
}

/**
 * The whole-owner source scope of version 1, as the brain writes it: a canonical JSON object in a string.
 *
 * @since 0.1.0
 * @category constructors
 */
export const sourceScope = (owner: string): string => {
  if (owner === "" || owner === reservedOwner) fail("bad_activation", `owner "${owner}" is empty or reserved`)
  return renderCanonical({ kind: "scheduler-owner", owner, version: 1 })
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  value !== null && typeof value === "object" && !Array.isArray(value)

/**
 * Reads the parameters of a `schedule.external.activate` command meant for the scheduler `owner`.
 * Throws {@link ScheduleProjectionError} with reason `bad_activation` when a field is missing, has the
 * wrong type, or names another owner or scope.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeActivation = (parameters: unknown, owner: string): StreamAuthority => {
  if (!isRecord(parameters)) return fail("bad_activation", "the parameters are not an object")
  const text = (key: string): string => {
    const value = parameters[key]
    return typeof value === "string" && value.trim() !== ""
      ? value
      : fail("bad_activation", `parameters.${key} is missing or not a non-empty string`)
  }
  const uuid = (key: string): string => {
    const value = text(key).toLowerCase()
    return uuidPattern.test(value) ? value : fail("bad_activation", `parameters.${key} is not a UUID`)
  }
  if (text("owner") !== owner) {
    fail("bad_activation", `parameters.owner is "${text("owner")}", not this scheduler ("${owner}")`)
  }
  const expectedScope = sourceScope(owner)
  if (text("source_scope") !== expectedScope) {
    fail("bad_activation", `parameters.source_scope is not the whole-owner scope ${expectedScope}`)
  }
  const epochNumber = parameters.epoch_number
  if (typeof epochNumber !== "number" || !Number.isSafeInteger(epochNumber) || epochNumber <= 0) {
    fail("bad_activation", "parameters.epoch_number is not a positive integer")
  }
  const stableSource = parameters.stable_source ?? true
  if (typeof stableSource !== "boolean") fail("bad_activation", "parameters.stable_source is not a boolean")
  return {
    owner,
    sourceScope: expectedScope,
    streamId: uuid("stream_id"),
    epochUuid: uuid("epoch_uuid"),
    epochNumber: epochNumber as number,
    adapterInstanceId: text("adapter_instance_id"),
    stableSource: stableSource as boolean
  }
}

const pad = (value: number, width: number) => String(value).padStart(width, "0")

const isoPattern = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6}))?)?(Z|z|[+-]\d{2}:?\d{2})$/

/**
 * Writes an ISO-8601 time with an offset as the brain stores it: UTC, microseconds, `+00:00`
 * (`2026-12-04T03:00:00.000000+00:00`). A time without an offset is rejected, as the brain rejects it.
 *
 * @since 0.1.0
 * @category rendering
 */
export const normalizeTimestamp = (value: string, field: string): string => {
  const match = isoPattern.exec(value.trim())
  if (match === null) return fail("bad_schedule", `${field} "${value}" is not an ISO-8601 time with an offset`)
  const [, year, month, day, hour, minute, second, fraction, zone] = match
  let offsetMinutes = 0
  if (zone !== "Z" && zone !== "z") {
    const digits = zone!.slice(1).replace(":", "")
    offsetMinutes = (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4))) * (zone!.startsWith("-") ? -1 : 1)
  }
  const local = Date.UTC(
    Number(year),
    Number(month) - 1,
    Number(day),
    Number(hour),
    Number(minute),
    Number(second ?? 0)
  )
  const check = new Date(local)
  if (
    check.getUTCMonth() !== Number(month) - 1 ||
    check.getUTCDate() !== Number(day) ||
    check.getUTCHours() !== Number(hour) ||
    check.getUTCMinutes() !== Number(minute)
  ) {
    return fail("bad_schedule", `${field} "${value}" is not a valid time`)
  }
  const date = new Date(local - offsetMinutes * 60_000)
  const micros = (fraction ?? "").padEnd(6, "0")
  return (
    `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)}` +
    `T${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}.${micros}+00:00`
  )
}

/**
 * One schedule before normalization: the fields of a legacy snapshot row, plus the optional identity
 * fields of the projection.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduleRow {
  readonly name: string
  readonly task_name: string
  readonly kind?: string
  readonly expression?: string
  readonly timezone?: string
  readonly queue?: string | null
  readonly args?: ReadonlyArray<JsonValue>
  readonly kwargs?: JsonObject
  readonly is_enabled?: boolean
  readonly last_run_at?: string | null
  readonly next_run_at?: string | null
  readonly total_runs?: number
  readonly external_id?: string | null
  /** The key that identifies the schedule within its stream. Default: `external_id`, then `name`. */
  readonly source_key?: string
  /** The engine that runs the schedule's task. Default: `owner` up to its first `-`. */
  readonly engine?: string
  readonly priority?: string
  readonly catch_up?: string
  readonly source?: string
  readonly source_hash?: string | null
}

const orDefault = (value: string | null | undefined, fallback: string): string =>
  value === undefined || value === null || value === "" ? fallback : value

/**
 * Normalizes one row the way the brain does before it digests a projection, so that the brain's own
 * normalization leaves it unchanged. Throws {@link ScheduleProjectionError} (`bad_schedule`) for an
 * empty name or task name, a negative or fractional run count, or a time without an offset.
 *
 * @since 0.1.0
 * @category constructors
 */
export const normalizeSchedule = (row: ScheduleRow, owner: string): JsonObject => {
  const name = row.name.trim()
  const taskName = row.task_name.trim()
  if (name === "" || taskName === "") fail("bad_schedule", `schedule "${row.name}" needs a name and a task name`)
  const sourceKey = orDefault(row.source_key, orDefault(row.external_id, name)).trim()
  if (sourceKey === "") fail("bad_schedule", `schedule "${name}" has an empty source key`)
  const totalRuns = row.total_runs ?? 0
  if (!Number.isSafeInteger(totalRuns) || totalRuns < 0) {
    fail("bad_schedule", `schedule "${name}" has total_runs ${totalRuns}, not a count`)
  }
  const time = (value: string | null | undefined, field: string) =>
    value === undefined || value === null ? null : normalizeTimestamp(value, `${name}.${field}`)
  return {
    source_key: sourceKey,
    engine: orDefault(row.engine, orDefault(owner.split("-", 1)[0], owner)),
    scheduler: owner,
    name,
    task_name: taskName,
    kind: orDefault(row.kind, "interval"),
    expression: row.expression ?? "",
    timezone: orDefault(row.timezone, "UTC"),
    queue: row.queue ?? null,
    priority: orDefault(row.priority, "normal"),
    args: row.args ?? [],
    kwargs: row.kwargs ?? {},
    is_enabled: row.is_enabled ?? true,
    last_run_at: time(row.last_run_at, "last_run_at"),
    next_run_at: time(row.next_run_at, "next_run_at"),
    total_runs: totalRuns,
    external_id: row.external_id ?? null,
    catch_up: orDefault(row.catch_up, "skip"),
    source: orDefault(row.source, "agent"),
    source_hash: row.source_hash ?? null
  }
}

/**
 * The kinds of projection, each sent in the event kind `schedule.<kind>`. Only a `complete` snapshot
 * deletes the schedules it no longer lists.
 *
 * @since 0.1.0
 * @category models
 */
export type ProjectionKind = "snapshot" | "created" | "updated" | "deleted"

/**
 * Builds the projection body, with its closed set of fields, rows normalized and sorted by source key,
 * and deleted keys trimmed, de-duplicated and sorted.
 *
 * @since 0.1.0
 * @category constructors
 */
export const projectionBody = (options: {
  readonly authority: StreamAuthority
  readonly sequence: number
  readonly kind: ProjectionKind
  readonly schedules: ReadonlyArray<ScheduleRow>
  readonly deletedSourceKeys?: ReadonlyArray<string>
  readonly complete: boolean
}): JsonObject => {
  const { authority, sequence } = options
  if (!Number.isSafeInteger(sequence) || sequence <= 0) {
    fail("bad_activation", `sequence ${sequence} is not a positive integer`)
  }
  const rows = options.schedules
    .map((row) => normalizeSchedule(row, authority.owner))
    .sort((left, right) => compareCodePoints(left.source_key as string, right.source_key as string))
  const keys = new Set<string>()
  for (const row of rows) {
    const key = row.source_key as string
    if (keys.has(key)) fail("duplicate_source_key", `two schedules have the source key "${key}"`)
    keys.add(key)
  }
  const deleted = [...new Set((options.deletedSourceKeys ?? []).map((key) => key.trim()).filter((key) => key !== ""))]
  for (const key of deleted) {
    if (keys.has(key)) fail("duplicate_source_key", `"${key}" is both listed and deleted`)
  }
  return {
    protocol_version: protocolVersion,
    stream_id: authority.streamId,
    epoch_uuid: authority.epochUuid,
    epoch_number: authority.epochNumber,
    sequence,
    kind: options.kind,
    owner: authority.owner,
    source_scope: authority.sourceScope,
    adapter_instance_id: authority.adapterInstanceId,
    complete: options.complete,
    stable_source: authority.stableSource,
    operation_id: null,
    schedules: rows,
    deleted_source_keys: deleted.sort(compareCodePoints)
  }
}

/**
 * The `payload_digest` of a body: SHA-256, in lowercase hex, of its canonical JSON in UTF-8.
 *
 * @since 0.1.0
 * @category constructors
 */
export const payloadDigest = (body: JsonObject): string =>
  createHash("sha256").update(renderCanonical(body), "utf8").digest("hex")

/**
 * The `data` of the event that carries `body`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const projectionEventData = (body: JsonObject): JsonObject => ({
  external_projection: body,
  payload_digest: payloadDigest(body)
})
