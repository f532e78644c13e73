/**
 * The in-memory event buffer: bounded like the durable one, but its entries are lost with the process.
 * Used when `Z4J_BUFFER=memory` and in tests.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type BufferEntry, EventBuffer, type EventBufferShape } from "../EventBuffer.js"
import { EntryQueue } from "./internal/entryQueue.js"
import { type Caps, DropStreak, defaultCaps, flushNotices, type Notice } from "./internal/notices.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryBufferOptions {
  /** Maximum number of stored entries. Default 100,000. */
  readonly maxEvents?: number
  /** Maximum total UTF-8 bytes of stored bodies. Default 256 MiB. */
  readonly maxBytes?: number
}

/**
 * Builds an in-memory buffer. When an append exceeds a cap, the oldest entries are evicted and counted
 * in `droppedTotal`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: MemoryBufferOptions = {}): Effect.Effect<EventBufferShape> =>
  Effect.sync(() => {
    const caps: Caps = {
      maxEvents: options.maxEvents ?? defaultCaps.maxEvents,
      maxBytes: options.maxBytes ?? defaultCaps.maxBytes
    }
    const queue = new EntryQueue()
    const notices: Array<Notice> = []
    const streak = new DropStreak(caps, notices)
    let nextId = 1
    let droppedTotal = 0
    let discardedTotal = 0

    const append = (bodies: ReadonlyArray<string>, nowMillis: number) => {
      if (bodies.length === 0) return
      for (const body of bodies) {
        const entry: BufferEntry = { id: nextId++, body, bytes: Buffer.byteLength(body), enqueuedAtMillis: nowMillis }
        queue.push(entry)
      }
      let evicted = 0
      while (queue.depth > caps.maxEvents || (queue.bytes > caps.maxBytes && queue.depth > 0)) {
        queue.evictOldest()
        evicted += 1
      }
      droppedTotal += evicted
      streak.record(evicted)
      queue.compact()
    }

    const removeAll = (ids: ReadonlyArray<number>): number => {
      let removed = 0
      for (const id of ids) {
        if (queue.remove(id) !== undefined) removed += 1
      }
      queue.compact()
      return removed
    }

    const shape: EventBufferShape = {
      append: (bodies) =>
        Effect.flatMap(Clock.currentTimeMillis, (nowMillis) => {
          append(bodies, nowMillis)
          return flushNotices(notices)
        }),
      read: (afterId, maxEntries, maxBytes) => Effect.sync(() => queue.read(afterId, maxEntries, maxBytes)),
      remove: (ids) =>
        Effect.sync(() => {
          removeAll(ids)
        }),
      discard: (ids, reason) =>
        Effect.suspend(() => {
          const discarded = removeAll(ids)
          discardedTotal += discarded
          return discarded === 0 ? Effect.void : Effect.logDebug(`discarded ${discarded} buffered events: ${reason}`)
        }),
      stats: Effect.sync(() => ({
        depth: queue.depth,
        bytes: queue.bytes,
        oldestEnqueuedAtMillis: queue.oldest()?.enqueuedAtMillis ?? null,
        droppedTotal,
        discardedTotal,
        storageFailuresTotal: 0,
        durable: false
      }))
    }
    return shape
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: MemoryBufferOptions = {}): Layer.Layer<EventBuffer> =>
  Layer.effect(EventBuffer, make(options))
