import { createHash } from "node:crypto"

/** The job a task id names. */
export interface JobRef {
  readonly queue: string
  readonly jobId: string
}

/** The brain stores task ids in a 200-character column. */
export const maxTaskIdLength = 200

// `/` would break the brain's `/tasks/{engine}/{task_id}` route and `:` separates the parts, so both are
// percent-encoded, together with `%` itself so that decoding is exact.
const needsEscape = /[%/:]/

const escapePart = (part: string): string =>
  needsEscape.test(part) ? part.replace(/%/g, "%25").replace(/\//g, "%2F").replace(/:/g, "%3A") : part

const unescapePart = (part: string): string => part.replace(/%3A/gi, ":").replace(/%2F/gi, "/").replace(/%25/g, "%")

/**
 * Builds and parses the task ids of one adapter: `<queue>:<jobId>`, or `<adapter>:<queue>:<jobId>` when
 * the adapter name is not the default, because BullMQ job ids are unique per queue only. An id longer
 * than {@link maxTaskIdLength} is replaced by a digest, which `parse` resolves only while the codec still
 * remembers it (a bounded map of the most recent ones).
 */
export interface TaskIdCodec {
  readonly format: (queue: string, jobId: string) => string
  readonly parse: (taskId: string) => JobRef | undefined
}

export const makeCodec = (adapterPrefix: string | undefined, rememberedDigests = 10_000): TaskIdCodec => {
  const head = adapterPrefix === undefined ? "" : `${escapePart(adapterPrefix)}:`
  const digests = new Map<string, JobRef>()

  // The listeners of one job event format the same id several times in a row.
  let lastQueue = ""
  let lastJobId = ""
  let lastTaskId = ""

  const format = (queue: string, jobId: string): string => {
    if (queue === lastQueue && jobId === lastJobId && lastTaskId !== "") return lastTaskId
    const taskId = formatUncached(queue, jobId)
    lastQueue = queue
    lastJobId = jobId
    lastTaskId = taskId
    return taskId
  }

  const formatUncached = (queue: string, jobId: string): string => {
    const plain = `${head}${escapePart(queue)}:${escapePart(jobId)}`
    if (plain.length <= maxTaskIdLength) return plain
    const digest = `${head}${escapePart(queue).slice(0, 80)}:~${createHash("sha256").update(plain).digest("hex").slice(0, 40)}`
    if (!digests.has(digest)) {
      if (digests.size >= rememberedDigests) {
        const oldest = digests.keys().next()
        if (oldest.done !== true) digests.delete(oldest.value)
      }
      digests.set(digest, { queue, jobId })
    }
    return digest
  }

  const parse = (taskId: string): JobRef | undefined => {
    if (head !== "" && !taskId.startsWith(head)) return undefined
    const rest = taskId.slice(head.length)
    const separator = rest.indexOf(":")
    if (separator <= 0 || separator === rest.length - 1) return undefined
    if (rest[separator + 1] === "~") return digests.get(taskId)
    // A second raw `:` means the id belongs to an adapter with a name prefix.
    if (rest.indexOf(":", separator + 1) !== -1) return undefined
    return { queue: unescapePart(rest.slice(0, separator)), jobId: unescapePart(rest.slice(separator + 1)) }
  }

  return { format, parse }
}
