import type Database from "better-sqlite3"
import type { BufferEntry, BufferStats } from "../../EventBuffer.js"
import { EntryQueue } from "./entryQueue.js"
import { type BufferFile, fileSize, isProcessAlive, listBufferFiles, removeBufferFile } from "./folders.js"
import type { Caps, DropStreak, Notice } from "./notices.js"
import {
  bodyFormat,
  decodeRow,
  errorCode,
  fileVersion,
  isValidUtf8,
  openLocked,
  prepare,
  type Statements
} from "./sqliteFile.js"

/** How long the buffer stays in memory after a storage failure before the next append tries the disk again. */
export const diskRetryIntervalMillis = 30_000

/**
 * The durable buffer's storage: an SQLite file while the disk works, memory while it fails. Every method
 * is synchronous, so one call never interleaves with another; log lines go to `notices`.
 *
 * Ids continue across the switch to memory and back, so ids already handed to the dispatcher stay valid.
 */
export class DurableStore {
  private readonly statements: Statements
  private mode: "disk" | "memory" = "disk"
  /** Rows on disk (and their bytes) while on disk, or rows left unreadable on disk while in memory. */
  private depth = 0
  private bytes = 0
  private nextId = 1
  /** Rows with smaller ids were adopted from files of other processes and get the full JSON check. */
  private firstOwnId = 1
  private oldestMillis: number | null = null
  private oldestKnown = true

  /** Entries held while the disk fails. */
  private readonly memory = new EntryQueue()
  /** True when the disk rows could not be read into memory at the switch, so they are still on disk only. */
  private stranded = false
  /** Ids below this one were on disk when the buffer switched to memory. */
  private firstMemoryId = 1
  /** Stranded rows delivered or discarded while in memory, deleted from disk on recovery. */
  private readonly pendingDiskRemovals = new Set<number>()
  private retryAtMillis = 0
  private closed = false

  droppedTotal = 0
  discardedTotal = 0
  storageFailuresTotal = 0

  private readonly appendTransaction: (bodies: ReadonlyArray<string>, nowMillis: number) => AppendResult
  private readonly deleteTransaction: (ids: ReadonlyArray<number>) => { count: number; bytes: number }
  private readonly recoverTransaction: () => { depth: number; bytes: number }
  private readonly adoptTransaction: (other: Database.Database, nowMillis: number) => CopyResult

  constructor(
    private readonly db: Database.Database,
    readonly file: string,
    private readonly caps: Caps,
    private readonly streak: DropStreak,
    private readonly notices: Array<Notice>
  ) {
    this.statements = prepare(db)
    this.appendTransaction = db.transaction((bodies: ReadonlyArray<string>, nowMillis: number) =>
      this.insertAndEvict(bodies, nowMillis)
    )
    this.deleteTransaction = db.transaction((ids: ReadonlyArray<number>) => this.deleteRows(ids))
    this.recoverTransaction = db.transaction(() => this.copyMemoryToDisk())
    this.adoptTransaction = db.transaction((other: Database.Database, nowMillis: number) =>
      this.copyFrom(other, nowMillis)
    )
  }

  // ---------------------------------------------------------------------------------------------------
  // operations

  append(bodies: ReadonlyArray<string>, nowMillis: number): void {
    if (bodies.length === 0) return
    if (this.closed) {
      // The scope that owned the buffer has closed, so nothing would ever send these events.
      this.droppedTotal += bodies.length
      this.notices.push({
        level: "warning",
        message: `dropped ${bodies.length} events appended after ${this.file} was closed`
      })
      return
    }
    if (this.mode === "memory" && nowMillis >= this.retryAtMillis) this.recover(nowMillis)
    if (this.mode === "disk") {
      try {
        const result = this.appendTransaction(bodies, nowMillis)
        if (this.depth === 0) this.oldestMillis = nowMillis
        this.nextId = result.nextId
        this.depth += bodies.length - result.evicted.count
        this.bytes += result.addedBytes - result.evicted.bytes
        if (result.evicted.count > 0) this.oldestKnown = false
        this.droppedTotal += result.evicted.count
        this.streak.record(result.evicted.count)
        return
      } catch (error) {
        this.fallBack(error, "append", nowMillis)
      }
    }
    this.appendToMemory(bodies, nowMillis)
  }

  read(afterId: number, maxEntries: number, maxBytes: number, nowMillis: number): ReadonlyArray<BufferEntry> {
    if (this.closed) return []
    if (this.mode === "disk") {
      try {
        return this.readDisk(afterId, maxEntries, maxBytes)
      } catch (error) {
        this.fallBack(error, "read", nowMillis)
      }
    }
    return this.memory.read(afterId, maxEntries, maxBytes)
  }

  /** Deletes the entries with these ids and returns how many were stored. */
  remove(ids: ReadonlyArray<number>, nowMillis: number): number {
    if (ids.length === 0 || this.closed) return 0
    if (this.mode === "disk") {
      try {
        const deleted = this.deleteTransaction(ids)
        this.depth -= deleted.count
        this.bytes -= deleted.bytes
        if (deleted.count > 0) this.oldestKnown = false
        return deleted.count
      } catch (error) {
        this.fallBack(error, "remove", nowMillis)
      }
    }
    let removed = 0
    for (const id of ids) {
      if (this.memory.remove(id) !== undefined) removed += 1
      else if (this.stranded && id < this.firstMemoryId && !this.pendingDiskRemovals.has(id)) {
        this.pendingDiskRemovals.add(id)
        removed += 1
      }
    }
    this.memory.compact()
    return removed
  }

  discard(ids: ReadonlyArray<number>, nowMillis: number): number {
    const discarded = this.remove(ids, nowMillis)
    this.discardedTotal += discarded
    return discarded
  }

  stats(): BufferStats {
    const onDisk = this.mode === "disk" || this.stranded
    const depth = this.memory.depth + (onDisk ? this.depth : 0)
    return {
      depth,
      bytes: this.memory.bytes + (onDisk ? this.bytes : 0),
      oldestEnqueuedAtMillis: depth === 0 ? null : this.oldest(),
      droppedTotal: this.droppedTotal,
      discardedTotal: this.discardedTotal,
      storageFailuresTotal: this.storageFailuresTotal,
      durable: this.mode === "disk"
    }
  }

  /**
   * Writes memory entries back if the disk works again, then closes the file. Deletes the file when it is
   * empty, so homes do not fill with empty files, and keeps it otherwise for the next process to adopt.
   */
  close(nowMillis: number): void {
    this.closed = true
    if (this.mode === "memory") {
      this.recover(nowMillis)
      if (this.mode === "memory" && this.memory.depth > 0) {
        this.droppedTotal += this.memory.depth
        this.notices.push({
          level: "error",
          message: `lost ${this.memory.depth} buffered events at shutdown: ${this.file} still fails, so they could not be saved`
        })
      }
    }
    const empty = this.mode === "disk" && this.depth === 0
    try {
      if (!empty) this.db.pragma("wal_checkpoint(TRUNCATE)")
    } catch (error) {
      this.notices.push({ level: "warning", message: `checkpoint of ${this.file} failed (${errorCode(error)})` })
    }
    this.db.close()
    if (empty) {
      try {
        removeBufferFile(this.file)
      } catch (error) {
        this.notices.push({ level: "warning", message: `failed to delete the empty ${this.file}: ${errorCode(error)}` })
      }
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // adoption

  /**
   * Moves the rows of files left in `folder` by dead processes into this file, oldest file first, so they
   * keep their order and come before any new append. A file whose lock is held belongs to a live buffer
   * and is left alone. A file with no content yet is judged by its pid instead, because its owner may not
   * have taken the lock yet.
   */
  adopt(folder: string, nowMillis: number): void {
    try {
      for (const candidate of listBufferFiles(folder, this.file)) {
        const size = fileSize(candidate.path)
        if (size === undefined) continue
        if (size === 0) {
          if (!isProcessAlive(candidate.pid)) removeBufferFile(candidate.path)
          continue
        }
        this.adoptFile(candidate, nowMillis)
      }
    } catch (error) {
      this.notices.push({
        level: "warning",
        message: `failed to list the buffer files to adopt in ${folder}: ${errorCode(error)}`
      })
    }
    this.firstOwnId = this.nextId
  }

  private adoptFile(candidate: BufferFile, nowMillis: number): void {
    let other: Database.Database
    let version: number
    try {
      other = openLocked(candidate.path)
    } catch (error) {
      this.notices.push({ level: "warning", message: `left ${candidate.path} alone: ${errorCode(error)}` })
      return
    }
    try {
      other.exec("BEGIN IMMEDIATE")
      version = other.pragma("user_version", { simple: true }) as number
    } catch (error) {
      other.close()
      if (errorCode(error) === "SQLITE_BUSY") {
        this.notices.push({ level: "debug", message: `${candidate.path} is in use by a live process` })
      } else {
        this.notices.push({ level: "warning", message: `left ${candidate.path} alone: ${errorCode(error)}` })
      }
      return
    }

    if (version > fileVersion) {
      other.close()
      this.notices.push({
        level: "warning",
        message: `left ${candidate.path} alone: it was written by a newer agent (file version ${version}, this agent reads ${fileVersion})`
      })
      return
    }
    if (version < fileVersion) {
      const rows = countRows(other)
      other.close()
      removeBufferFile(candidate.path)
      this.discardedTotal += rows
      this.notices.push({
        level: "warning",
        message: `discarded ${rows} events from ${candidate.path}: it was written by an older agent (file version ${version}, this agent reads ${fileVersion})`
      })
      return
    }

    let copied: CopyResult
    try {
      copied = this.adoptTransaction(other, nowMillis)
    } catch (error) {
      other.close()
      this.notices.push({
        level: "warning",
        message: `failed to adopt ${candidate.path} (${errorCode(error)}); it stays in place for a later process to adopt`
      })
      return
    }
    this.nextId = copied.nextId
    this.depth += copied.count - copied.evicted.count
    this.bytes += copied.bytes - copied.evicted.bytes
    this.oldestKnown = false
    this.droppedTotal += copied.evicted.count
    this.discardedTotal += copied.unusable
    this.streak.record(copied.evicted.count)

    // The rows are safe in this file now. Emptying the old file before deleting it means that a process
    // which opened it meanwhile finds nothing to adopt twice.
    try {
      other.exec("DELETE FROM events")
      other.exec("COMMIT")
    } catch (error) {
      this.notices.push({
        level: "warning",
        message: `failed to empty ${candidate.path} after copying its rows (${errorCode(error)}); a later process may send them again`
      })
    }
    other.close()
    removeBufferFile(candidate.path)
    this.notices.push({
      level: "info",
      message:
        `adopted ${copied.count} buffered events from ${candidate.path}, left by process ${candidate.pid}` +
        (copied.unusable > 0 ? ` (${copied.unusable} rows without a body discarded)` : "")
    })
  }

  /**
   * Copies every row of `other` after the rows of this file, in their order; call inside a transaction.
   * Bodies are copied as raw bytes, so a body that is not valid UTF-8 stays invalid and `read` discards it.
   */
  private copyFrom(other: Database.Database, nowMillis: number): CopyResult {
    let id = this.nextId
    let bytes = 0
    let unusable = 0
    const rows = other
      .prepare("SELECT typeof(body) AS type, CAST(body AS BLOB) AS raw, enqueued_at, format FROM events ORDER BY id")
      .iterate() as Iterable<{ type: string; raw: unknown; enqueued_at: unknown; format: unknown }>
    for (const row of rows) {
      if ((row.type !== "text" && row.type !== "blob") || !(row.raw instanceof Uint8Array)) {
        unusable += 1
        continue
      }
      const enqueuedAt = typeof row.enqueued_at === "number" ? row.enqueued_at : nowMillis
      // A row with an unreadable format keeps an impossible one, so `read` discards and counts it.
      const format = typeof row.format === "number" ? row.format : -1
      const insert = row.type === "text" ? this.statements.insertRawText : this.statements.insert
      insert.run(id, Buffer.from(row.raw), row.raw.byteLength, enqueuedAt, format)
      id += 1
      bytes += row.raw.byteLength
    }
    const count = id - this.nextId
    return {
      nextId: id,
      count,
      bytes,
      unusable,
      evicted: this.evictOnDisk(this.depth + count, this.bytes + bytes)
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // disk

  private insertAndEvict(bodies: ReadonlyArray<string>, nowMillis: number): AppendResult {
    let id = this.nextId
    let addedBytes = 0
    for (const body of bodies) {
      const bytes = Buffer.byteLength(body)
      this.statements.insert.run(id, body, bytes, nowMillis, bodyFormat)
      id += 1
      addedBytes += bytes
    }
    return {
      nextId: id,
      addedBytes,
      evicted: this.evictOnDisk(this.depth + bodies.length, this.bytes + addedBytes)
    }
  }

  /** Deletes the oldest rows until `depth` and `bytes` are within the caps; call inside a transaction. */
  private evictOnDisk(depth: number, bytes: number): { count: number; bytes: number } {
    if (depth <= this.caps.maxEvents && bytes <= this.caps.maxBytes) return { count: 0, bytes: 0 }
    let count = 0
    let evictedBytes = 0
    let lastId = 0
    for (const row of this.statements.scanSizes.iterate()) {
      if (depth - count <= this.caps.maxEvents && bytes - evictedBytes <= this.caps.maxBytes) break
      count += 1
      evictedBytes += row.bytes
      lastId = row.id
    }
    if (count > 0) this.statements.deleteThrough.run(lastId)
    return { count, bytes: evictedBytes }
  }

  private readDisk(afterId: number, maxEntries: number, maxBytes: number): ReadonlyArray<BufferEntry> {
    let cursor = afterId
    for (;;) {
      const out: Array<BufferEntry> = []
      const poison: Array<Poison> = []
      const suspects: Array<number> = []
      let total = 0
      for (const row of this.statements.scanFrom.iterate(cursor)) {
        if (out.length >= maxEntries) break
        const decoded = decodeRow(row, row.id < this.firstOwnId)
        if ("poison" in decoded) {
          poison.push({ id: row.id, reason: decoded.poison })
          cursor = row.id
          continue
        }
        if (out.length > 0 && total + decoded.entry.bytes > maxBytes) break
        out.push(decoded.entry)
        total += decoded.entry.bytes
        cursor = row.id
        if (decoded.suspect) suspects.push(row.id)
      }
      // The raw bytes cannot be read while the scan above is open.
      for (const id of suspects) {
        if (isValidUtf8(this.statements.rawBody.get(id)?.raw)) continue
        poison.push({ id, reason: "body is not valid UTF-8" })
        out.splice(
          out.findIndex((entry) => entry.id === id),
          1
        )
      }
      if (poison.length === 0) return out
      this.discardPoison(poison)
      // A pass that found only poison goes on after it, so poison never hides the rows behind it.
      if (out.length > 0) return out
    }
  }

  private discardPoison(poison: ReadonlyArray<Poison>): void {
    const deleted = this.deleteTransaction(poison.map((row) => row.id))
    this.depth -= deleted.count
    this.bytes -= deleted.bytes
    this.oldestKnown = false
    this.discardedTotal += poison.length
    const reasons = [...new Set(poison.map((row) => row.reason))].join("; ")
    this.notices.push({
      level: "warning",
      message: `discarded ${poison.length} undeliverable buffered events from ${this.file}: ${reasons}`
    })
  }

  private deleteRows(ids: ReadonlyArray<number>): { count: number; bytes: number } {
    let bytes = 0
    let count = 0
    if (isConsecutive(ids)) {
      for (const rowBytes of this.statements.deleteRange.all(ids[0]!, ids[ids.length - 1]!)) {
        bytes += rowBytes
        count += 1
      }
      return { count, bytes }
    }
    for (const id of ids) {
      const rowBytes = this.statements.deleteOne.get(id)
      if (rowBytes === undefined) continue
      bytes += rowBytes
      count += 1
    }
    return { count, bytes }
  }

  private oldest(): number | null {
    if (this.mode === "memory" && !this.stranded) return this.memory.oldest()?.enqueuedAtMillis ?? null
    if (this.mode === "disk" && !this.oldestKnown) {
      try {
        this.oldestMillis = this.statements.oldest.get() ?? null
        this.oldestKnown = true
      } catch {
        // Stats never fail, so the last known value is returned until an append or a read meets the error.
      }
    }
    return this.oldestMillis
  }

  // ---------------------------------------------------------------------------------------------------
  // memory fallback

  private fallBack(error: unknown, operation: string, nowMillis: number): void {
    this.storageFailuresTotal += 1
    this.mode = "memory"
    this.retryAtMillis = nowMillis + diskRetryIntervalMillis
    this.firstMemoryId = this.nextId
    let moved = 0
    try {
      const rows = this.statements.scanFrom.all(0)
      for (const row of rows) {
        const decoded = decodeRow(row, row.id < this.firstOwnId)
        if ("poison" in decoded || (decoded.suspect && !isValidUtf8(this.statements.rawBody.get(row.id)?.raw))) {
          this.discardedTotal += 1
          continue
        }
        this.memory.push(decoded.entry)
        moved += 1
      }
      this.stranded = false
    } catch {
      // NOTE: no test reaches this branch, which needs a disk that fails reads as well as writes.
      this.memory.drain()
      this.stranded = true
      moved = 0
    }
    this.notices.push({
      level: "warning",
      message:
        `event buffer ${this.file} failed during ${operation} (${errorCode(error)}); keeping events in memory ` +
        `(${moved} moved from disk${this.stranded ? `, ${this.depth} left unreadable on disk` : ""}) and trying ` +
        `the disk again every ${diskRetryIntervalMillis / 1000} s`
    })
  }

  private appendToMemory(bodies: ReadonlyArray<string>, nowMillis: number): void {
    for (const body of bodies) {
      this.memory.push({ id: this.nextId++, body, bytes: Buffer.byteLength(body), enqueuedAtMillis: nowMillis })
    }
    let evicted = 0
    while (
      this.memory.depth > this.caps.maxEvents ||
      (this.memory.bytes > this.caps.maxBytes && this.memory.depth > 0)
    ) {
      this.memory.evictOldest()
      evicted += 1
    }
    this.droppedTotal += evicted
    this.streak.record(evicted)
    this.memory.compact()
  }

  /** Tries to move the memory entries back to disk; stays in memory until the next retry if it fails. */
  private recover(nowMillis: number): void {
    const moved = this.memory.depth
    try {
      const totals = this.recoverTransaction()
      this.depth = totals.depth
      this.bytes = totals.bytes
    } catch (error) {
      this.retryAtMillis = nowMillis + diskRetryIntervalMillis
      this.notices.push({ level: "debug", message: `event buffer ${this.file} still fails (${errorCode(error)})` })
      return
    }
    this.memory.drain()
    this.pendingDiskRemovals.clear()
    this.stranded = false
    this.mode = "disk"
    this.oldestKnown = false
    this.notices.push({
      level: "info",
      message: `event buffer ${this.file} works again: moved ${moved} events from memory back to disk`
    })
  }

  private copyMemoryToDisk(): { depth: number; bytes: number } {
    if (this.stranded) {
      for (const id of this.pendingDiskRemovals) this.statements.deleteOne.get(id)
    } else {
      this.statements.deleteAll.run()
    }
    for (const entry of this.memory.read(0, Number.MAX_SAFE_INTEGER, Number.POSITIVE_INFINITY)) {
      this.statements.insert.run(entry.id, entry.body, entry.bytes, entry.enqueuedAtMillis, bodyFormat)
    }
    const totals = this.statements.totals.get()!
    return { depth: totals.depth, bytes: totals.bytes ?? 0 }
  }
}

interface Poison {
  readonly id: number
  readonly reason: string
}

interface CopyResult {
  readonly nextId: number
  readonly count: number
  readonly bytes: number
  /** Rows without a text or blob body, which cannot be stored in this file at all. */
  readonly unusable: number
  readonly evicted: { readonly count: number; readonly bytes: number }
}

interface AppendResult {
  readonly nextId: number
  readonly addedBytes: number
  readonly evicted: { readonly count: number; readonly bytes: number }
}

const isConsecutive = (ids: ReadonlyArray<number>): boolean => {
  const first = ids[0]!
  for (let index = 1; index < ids.length; index++) {
    if (ids[index] !== first + index) return false
  }
  return true
}

const countRows = (db: Database.Database): number => {
  try {
    return (db.prepare("SELECT count(*) FROM events").pluck().get() as number | undefined) ?? 0
  } catch {
    return 0
  }
}
