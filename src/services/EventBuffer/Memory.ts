/**
 * The in-memory event buffer: fast, bounded, and lost with the process. Used when `Z4J_BUFFER=memory`,
 * in tests, and as the fallback of the durable buffer.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type BufferEntry, type BufferStats, EventBuffer, type EventBufferShape } from "../EventBuffer.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryBufferOptions {
  /** Default 100,000 entries. */
  readonly maxEvents?: number
  /** Default 256 MiB of event bodies. */
  readonly maxBytes?: number
}

/**
 * Builds the buffer synchronously; the durable buffer uses it directly as its fallback.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeUnsafe = (
  options: MemoryBufferOptions = {}
): EventBufferShape & {
  /** Removes and returns every entry, oldest first (for moving them to another buffer). */
  readonly takeAll: () => Array<BufferEntry>
} => {
  const maxEvents = options.maxEvents ?? 100_000
  const maxBytes = options.maxBytes ?? 256 * 1024 * 1024
  // A queue with a moving head: entries before `head` are gone. Compacted when the dead prefix is large,
  // so removal from the front costs O(1) amortized instead of Array.shift's O(n).
  let entries: Array<BufferEntry | undefined> = []
  let head = 0
  let depth = 0
  let bytes = 0
  let nextId = 1
  let droppedTotal = 0
  let discardedTotal = 0
  const positions = new Map<number, number>()

  const compact = () => {
    if (head < 1024 || head < entries.length / 2) return
    const live: Array<BufferEntry | undefined> = []
    positions.clear()
    for (let index = head; index < entries.length; index++) {
      const entry = entries[index]
      if (entry === undefined) continue
      positions.set(entry.id, live.length)
      live.push(entry)
    }
    entries = live
    head = 0
  }

  const dropAt = (index: number): BufferEntry | undefined => {
    const entry = entries[index]
    if (entry === undefined) return undefined
    entries[index] = undefined
    positions.delete(entry.id)
    depth -= 1
    bytes -= entry.bytes
    while (head < entries.length && entries[head] === undefined) head += 1
    return entry
  }

  const evictOldest = () => {
    while (depth > maxEvents || (bytes > maxBytes && depth > 0)) {
      dropAt(head)
      droppedTotal += 1
    }
  }

  const appendSync = (bodies: ReadonlyArray<string>, nowMillis: number) => {
    for (const body of bodies) {
      const entry: BufferEntry = { id: nextId++, body, bytes: Buffer.byteLength(body), enqueuedAtMillis: nowMillis }
      positions.set(entry.id, entries.length)
      entries.push(entry)
      depth += 1
      bytes += entry.bytes
    }
    evictOldest()
    compact()
  }

  const read = (afterId: number, maxEntries: number, maxReadBytes: number): Array<BufferEntry> => {
    const out: Array<BufferEntry> = []
    let total = 0
    for (let index = head; index < entries.length && out.length < maxEntries; index++) {
      const entry = entries[index]
      if (entry === undefined || entry.id <= afterId) continue
      if (out.length > 0 && total + entry.bytes > maxReadBytes) break
      out.push(entry)
      total += entry.bytes
      if (total > maxReadBytes) break
    }
    return out
  }

  const removeSync = (ids: ReadonlyArray<number>) => {
    for (const id of ids) {
      const index = positions.get(id)
      if (index !== undefined) dropAt(index)
    }
    compact()
  }

  const stats = (): BufferStats => {
    const oldest = entries[head]
    return {
      depth,
      bytes,
      oldestEnqueuedAtMillis: depth === 0 || oldest === undefined ? null : oldest.enqueuedAtMillis,
      droppedTotal,
      discardedTotal,
      durable: false
    }
  }

  return {
    append: (bodies) => Effect.sync(() => appendSync(bodies, Date.now())),
    read: (afterId, maxEntries, maxReadBytes) => Effect.sync(() => read(afterId, maxEntries, maxReadBytes)),
    remove: (ids) => Effect.sync(() => removeSync(ids)),
    discard: (ids) =>
      Effect.sync(() => {
        const before = depth
        removeSync(ids)
        discardedTotal += before - depth
      }),
    stats: Effect.sync(stats),
    takeAll: () => {
      const all = entries.slice(head).filter((entry): entry is BufferEntry => entry !== undefined)
      entries = []
      head = 0
      depth = 0
      bytes = 0
      positions.clear()
      return all
    }
  }
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: MemoryBufferOptions = {}): Layer.Layer<EventBuffer> =>
  Layer.sync(EventBuffer, () => makeUnsafe(options))
