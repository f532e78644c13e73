import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { normalizeSchedule, type ScheduleRow } from "../../protocol/ScheduleProjection.js"
import { describeFailure, prepareFolder } from "../EventBuffer/internal/folders.js"

/** Format version written in every projection file. A file with another version is ignored. */
const formatVersion = 1

/** The last projection of one scheduler that the brain acknowledged, as stored on disk. */
export interface StoredProjection {
  readonly scheduler: string
  readonly streamId: string
  readonly epochNumber: number
  readonly sequence: number
  /** The rows the projection listed, redacted, exactly as they were sent. */
  readonly schedules: ReadonlyArray<ScheduleRow>
}

/** Outcome of reading a projection file. */
export type ReadOutcome =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Invalid"; readonly reason: string }
  | { readonly _tag: "Found"; readonly stored: StoredProjection }

/** `$TMPDIR/z4j-<uid>`: the fallback home of the durable buffer, so both land in the same folder. */
export const defaultFallbackHome = (): string =>
  path.join(os.tmpdir(), `z4j-${process.getuid?.() ?? os.userInfo().username}`)

/**
 * Prepares the agent's state folder, `<home>/buffers/<agentKey>` (mode 0700), trying `home` first and
 * `fallbackHome` second, in the order the durable buffer tries them.
 */
export const openFolder = (
  home: string,
  agentKey: string,
  fallbackHome: string
): { readonly folder: string | undefined; readonly failures: ReadonlyArray<string> } => {
  const failures: Array<string> = []
  const candidates = [
    { home, privateHome: false },
    { home: fallbackHome, privateHome: true }
  ].filter((candidate, index) => index === 0 || path.resolve(candidate.home) !== path.resolve(home))
  for (const candidate of candidates) {
    try {
      return { folder: prepareFolder(candidate.home, agentKey, candidate), failures }
    } catch (error) {
      failures.push(`${candidate.home} (${describeFailure(error)})`)
    }
  }
  return { folder: undefined, failures }
}

/**
 * File name for one scheduler: a readable part of its name, plus a hash of the whole name so that two
 * names that differ only in characters a file name cannot hold get different files.
 */
export const fileName = (scheduler: string): string => {
  const readable = scheduler.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 64)
  const hash = createHash("sha256").update(scheduler, "utf8").digest("hex").slice(0, 12)
  return `schedules-${readable}-${hash}.json`
}

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> =>
  value !== null && typeof value === "object" && !Array.isArray(value)

const isCount = (value: unknown): value is number => typeof value === "number" && Number.isSafeInteger(value)

/** Decodes the parsed content of a file written by {@link writeProjection}, or returns why it is not one. */
const decode = (content: unknown, scheduler: string): StoredProjection | string => {
  if (!isRecord(content)) return "the content is not a JSON object"
  if (content.version !== formatVersion) return `version is ${JSON.stringify(content.version)}, not ${formatVersion}`
  if (content.scheduler !== scheduler) return `scheduler is ${JSON.stringify(content.scheduler)}, not "${scheduler}"`
  if (typeof content.stream_id !== "string") return "stream_id is not a string"
  if (!isCount(content.epoch_number) || !isCount(content.sequence)) return "epoch_number or sequence is not an integer"
  if (!Array.isArray(content.schedules)) return "schedules is not an array"
  for (const [index, row] of content.schedules.entries()) {
    if (!isRecord(row) || typeof row.name !== "string" || typeof row.task_name !== "string") {
      return `schedules[${index}] has no string name and task_name`
    }
    // A row the projection cannot take would make the whole activation snapshot fail.
    try {
      normalizeSchedule(row as unknown as ScheduleRow, scheduler)
    } catch (error) {
      return `schedules[${index}] is invalid: ${describeFailure(error)}`
    }
  }
  return {
    scheduler,
    streamId: content.stream_id,
    epochNumber: content.epoch_number,
    sequence: content.sequence,
    schedules: content.schedules as ReadonlyArray<ScheduleRow>
  }
}

/** Reads the projection stored for `scheduler`. Never throws: a file that cannot be read or decoded is `Invalid`. */
export const readProjection = (file: string, scheduler: string): ReadOutcome => {
  let text: string
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return { _tag: "Missing" }
    return { _tag: "Invalid", reason: describeFailure(error) }
  }
  let content: unknown
  try {
    content = JSON.parse(text)
  } catch (error) {
    return { _tag: "Invalid", reason: `invalid JSON: ${describeFailure(error)}` }
  }
  const decoded = decode(content, scheduler)
  return typeof decoded === "string" ? { _tag: "Invalid", reason: decoded } : { _tag: "Found", stored: decoded }
}

/**
 * Replaces the file atomically: writes a temporary file with mode 0600 in the same folder, flushes it to
 * disk, and renames it over `file`. Throws the failing system call's error, after removing the temporary file.
 */
export const writeProjection = (file: string, stored: StoredProjection): void => {
  const content = JSON.stringify({
    version: formatVersion,
    scheduler: stored.scheduler,
    stream_id: stored.streamId,
    epoch_number: stored.epochNumber,
    sequence: stored.sequence,
    schedules: stored.schedules
  })
  const temporary = `${file}.${process.pid}-${randomBytes(4).toString("hex")}.tmp`
  try {
    const fd = fs.openSync(temporary, "wx", 0o600)
    try {
      // openSync applies the umask, which may clear bits of 0600.
      fs.fchmodSync(fd, 0o600)
      fs.writeFileSync(fd, content, "utf8")
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    fs.renameSync(temporary, file)
  } catch (error) {
    fs.rmSync(temporary, { force: true })
    throw error
  }
}
