import type { Job, Queue } from "bullmq"
import type { Redis } from "ioredis"
import type { Reporter } from "./events.js"

/**
 * The adapter's own Redis hash, next to BullMQ's keys: the last QueueEvents stream id reported per queue
 * (field `cursor:<queue>`) and the templates of disabled job schedulers (field `disabled:<queue>:<id>`).
 * The key does not end in `:meta`, so queue discovery never mistakes it for a queue.
 */
export const stateKey = (prefix: string, adapterName: string): string => `${prefix}:z4j-agent:${adapterName}`

export const eventsKey = (prefix: string, queue: string): string => `${prefix}:${queue}:events`

/** Compares two stream ids (`<millis>-<sequence>`). */
export const compareStreamIds = (left: string, right: string): number => {
  const [leftMillis = "0", leftSequence = "0"] = left.split("-")
  const [rightMillis = "0", rightSequence = "0"] = right.split("-")
  const millis = BigInt(leftMillis) - BigInt(rightMillis)
  if (millis !== 0n) return millis < 0n ? -1 : 1
  const sequence = BigInt(leftSequence) - BigInt(rightSequence)
  if (sequence === 0n) return 0
  return sequence < 0n ? -1 : 1
}

/** The stream id QueueEvents starts reading after, and whether entries were lost since the last run. */
export interface ResumePoint {
  readonly lastEventId: string
  /** The saved id when the stream no longer contains it, so entries after it may have been trimmed unread. */
  readonly trimmedAfter: string | undefined
  /** Whether `lastEventId` is the cursor saved by an earlier run. */
  readonly fromSavedCursor: boolean
}

const streamInfo = async (client: Redis, key: string): Promise<{ first?: string; last?: string } | undefined> => {
  let raw: unknown
  try {
    raw = await client.xinfo("STREAM", key)
  } catch (error) {
    if (error instanceof Error && /no such key/i.test(error.message)) return undefined
    throw error
  }
  const fields = raw as Array<unknown>
  const info: { first?: string; last?: string } = {}
  for (let index = 0; index + 1 < fields.length; index += 2) {
    const name = fields[index]
    const value = fields[index + 1]
    if (name === "first-entry" && Array.isArray(value) && typeof value[0] === "string") info.first = value[0]
    if (name === "last-generated-id" && typeof value === "string") info.last = value
  }
  return info
}

/**
 * Reads the saved cursor of `queue` and checks it against the stream. Without a saved cursor the adapter
 * starts after the stream's last entry (taken now, so nothing between this read and the first XREAD is
 * missed), or at the stream's start when `fromStart` is set. A saved id older than the stream's first
 * entry means the stream was trimmed past it (BullMQ trims to about 10,000 entries by default): entries
 * may be lost, and the caller reconciles from job lists.
 */
export const resumePoint = async (
  client: Redis,
  prefix: string,
  adapterName: string,
  queue: string,
  fromStart = false
): Promise<ResumePoint> => {
  const saved = await client.hget(stateKey(prefix, adapterName), `cursor:${queue}`)
  if (saved === null || saved === "") {
    if (fromStart) return { lastEventId: "0-0", trimmedAfter: undefined, fromSavedCursor: false }
    const info = await streamInfo(client, eventsKey(prefix, queue))
    return { lastEventId: info?.last ?? "0-0", trimmedAfter: undefined, fromSavedCursor: false }
  }
  const info = await streamInfo(client, eventsKey(prefix, queue))
  if (info === undefined) return { lastEventId: "0-0", trimmedAfter: undefined, fromSavedCursor: false }
  const trimmed = info.first !== undefined && compareStreamIds(info.first, saved) > 0
  return { lastEventId: saved, trimmedAfter: trimmed ? saved : undefined, fromSavedCursor: true }
}

export const saveCursors = async (
  client: Redis,
  prefix: string,
  adapterName: string,
  cursors: ReadonlyArray<readonly [queue: string, id: string]>
): Promise<void> => {
  if (cursors.length === 0) return
  const fields: Array<string> = []
  for (const [queue, id] of cursors) fields.push(`cursor:${queue}`, id)
  await client.hset(stateKey(prefix, adapterName), ...fields)
}

/**
 * Reports the current state of the jobs that finished since `sinceMillis` (completed and failed lists,
 * newest first) and of the active ones, at most `limit` jobs per list. The events carry the jobs' own
 * timestamps, so events that did reach the brain before are deduplicated there (same task, kind and second).
 */
export const reconcileQueue = async (
  reporter: Reporter,
  queue: Queue,
  sinceMillis: number,
  limit: number
): Promise<{ completed: number; failed: number; active: number }> => {
  const counts = { completed: 0, failed: 0, active: 0 }
  const finishedSince = (job: Job) => typeof job.finishedOn === "number" && job.finishedOn >= sinceMillis
  const completed = (await queue.getJobs(["completed"], 0, limit - 1, false)).filter(
    (job): job is Job => job !== undefined && finishedSince(job)
  )
  for (const job of completed) {
    reporter.received(queue.name, job)
    reporter.succeeded(queue.name, job, job.returnvalue)
    counts.completed++
  }
  const failed = (await queue.getJobs(["failed"], 0, limit - 1, false)).filter(
    (job): job is Job => job !== undefined && finishedSince(job)
  )
  for (const job of failed) {
    reporter.received(queue.name, job)
    reporter.failedAttempt(queue.name, job, undefined)
    counts.failed++
  }
  const active = (await queue.getJobs(["active"], 0, limit - 1, false)).filter((job): job is Job => job !== undefined)
  for (const job of active) {
    reporter.received(queue.name, job)
    reporter.started(queue.name, job, undefined)
    counts.active++
  }
  return counts
}
