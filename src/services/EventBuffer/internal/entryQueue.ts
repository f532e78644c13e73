import type { BufferEntry } from "../../EventBuffer.js"

/** Dead slots at the front that trigger a compaction, at least; see {@link EntryQueue.compact}. */
const minCompactionSlots = 1024

/**
 * Buffer entries in id order, held in an array with a moving head. Removing from the front only moves
 * the head, and the dead prefix is cut off in one slice once it is at least half the array, so removal
 * costs O(1) amortized instead of the O(n) of `Array.shift`.
 *
 * `ids` mirrors `slots` and keeps the id of a removed entry, so it stays sorted and a binary search
 * finds any id or cursor in O(log n).
 */
export class EntryQueue {
  private slots: Array<BufferEntry | undefined> = []
  private ids: Array<number> = []
  private head = 0
  /** Live entries. */
  depth = 0
  /** Sum of `bytes` over the live entries. */
  bytes = 0

  /** Appends an entry whose id is greater than every id already stored. */
  push(entry: BufferEntry): void {
    this.slots.push(entry)
    this.ids.push(entry.id)
    this.depth += 1
    this.bytes += entry.bytes
  }

  oldest(): BufferEntry | undefined {
    return this.slots[this.head]
  }

  /** Last id ever stored, live or removed; 0 when empty. */
  lastId(): number {
    return this.ids.length === 0 ? 0 : this.ids[this.ids.length - 1]!
  }

  evictOldest(): BufferEntry | undefined {
    const entry = this.slots[this.head]
    if (entry === undefined) return undefined
    this.clear(this.head, entry)
    return entry
  }

  /** Removes the entry with this id and returns it, or returns undefined when it is not stored. */
  remove(id: number): BufferEntry | undefined {
    const index = this.indexAfter(id - 1)
    if (index >= this.ids.length || this.ids[index] !== id) return undefined
    const entry = this.slots[index]
    if (entry === undefined) return undefined
    this.clear(index, entry)
    return entry
  }

  /** Same limits as `EventBufferShape.read`. */
  read(afterId: number, maxEntries: number, maxBytes: number): Array<BufferEntry> {
    const out: Array<BufferEntry> = []
    let total = 0
    for (let index = this.indexAfter(afterId); index < this.slots.length && out.length < maxEntries; index++) {
      const entry = this.slots[index]
      if (entry === undefined) continue
      if (out.length > 0 && total + entry.bytes > maxBytes) break
      out.push(entry)
      total += entry.bytes
    }
    return out
  }

  /** Removes and returns every live entry, oldest first. */
  drain(): Array<BufferEntry> {
    const live: Array<BufferEntry> = []
    for (let index = this.head; index < this.slots.length; index++) {
      const entry = this.slots[index]
      if (entry !== undefined) live.push(entry)
    }
    this.slots = []
    this.ids = []
    this.head = 0
    this.depth = 0
    this.bytes = 0
    return live
  }

  /** Drops the dead prefix once it is large enough that copying the rest is cheaper than keeping it. */
  compact(): void {
    if (this.head < minCompactionSlots || this.head * 2 < this.slots.length) return
    this.slots = this.slots.slice(this.head)
    this.ids = this.ids.slice(this.head)
    this.head = 0
  }

  /** Index of the first slot whose id is greater than `afterId`, at or after the head. */
  private indexAfter(afterId: number): number {
    let low = this.head
    let high = this.ids.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if (this.ids[middle]! <= afterId) low = middle + 1
      else high = middle
    }
    return low
  }

  private clear(index: number, entry: BufferEntry): void {
    this.slots[index] = undefined
    this.depth -= 1
    this.bytes -= entry.bytes
    while (this.head < this.slots.length && this.slots[this.head] === undefined) this.head += 1
  }
}
