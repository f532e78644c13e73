/**
 * Storage between the dispatcher and the socket: redacted, serialized events wait here until the
 * brain acknowledges the batch that carried them.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"

/**
 * One stored event.
 *
 * @since 0.1.0
 * @category models
 */
export interface BufferEntry {
  /** Position in the buffer: strictly increasing in insertion order, never reused by one buffer. */
  readonly id: number
  /** Canonical JSON text of one redacted event, exactly as it goes into `event_batch.payload.events`. */
  readonly body: string
  /** UTF-8 length of `body`. */
  readonly bytes: number
  readonly enqueuedAtMillis: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface BufferStats {
  readonly depth: number
  readonly bytes: number
  readonly oldestEnqueuedAtMillis: number | null
  /** Entries evicted because a cap was reached, since the buffer opened. */
  readonly droppedTotal: number
  /** Entries discarded as undeliverable (too large, undecodable, older schema), since the buffer opened. */
  readonly discardedTotal: number
  /**
   * Storage failures (disk full, I/O error, read-only file system) that moved a durable buffer to memory,
   * since the buffer opened. Always 0 for the in-memory buffer.
   */
  readonly storageFailuresTotal: number
  /** False for the in-memory buffer, and for a durable buffer that fell back to memory after an I/O error. */
  readonly durable: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface EventBufferShape {
  /**
   * Stores event bodies in order, in one transaction. When a cap is exceeded the oldest entries are
   * evicted and counted in `droppedTotal`. It never fails: storage errors are handled inside the
   * buffer (logged, counted, and a fallback to memory), so the host's events are never refused here.
   */
  readonly append: (bodies: ReadonlyArray<string>) => Effect.Effect<void>
  /**
   * Reads the oldest entries whose id is greater than `afterId`: at most `maxEntries`, and at most
   * `maxBytes` in total, except that a single entry larger than `maxBytes` is still returned alone so
   * the caller can discard it.
   */
  readonly read: (afterId: number, maxEntries: number, maxBytes: number) => Effect.Effect<ReadonlyArray<BufferEntry>>
  /** Deletes delivered entries. Ids that are no longer stored are ignored. */
  readonly remove: (ids: ReadonlyArray<number>) => Effect.Effect<void>
  /** Deletes entries that can never be delivered, counting them in `discardedTotal`. */
  readonly discard: (ids: ReadonlyArray<number>, reason: string) => Effect.Effect<void>
  readonly stats: Effect.Effect<BufferStats>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class EventBuffer extends Context.Tag("z4j-agent/EventBuffer")<EventBuffer, EventBufferShape>() {}
