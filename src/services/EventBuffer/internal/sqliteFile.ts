import { isUtf8 } from "node:buffer"
import Database from "better-sqlite3"
import type { BufferEntry } from "../../EventBuffer.js"

/**
 * Layout of a buffer file, stored in `PRAGMA user_version`. Bump it when the `events` table changes; files
 * with a lower version are then discarded (and their rows counted) instead of being read.
 */
export const fileVersion = 1

/**
 * Format of the event bodies, stored on every row. Bump it when the rendering of events changes in a way
 * the brain would reject; rows of another format are discarded on read.
 */
export const bodyFormat = 1

/** A row as SQLite returns it. Rows written by other programs may contain any type in any column. */
export interface StoredRow {
  readonly id: number
  readonly body: unknown
  readonly bytes: unknown
  readonly enqueued_at: unknown
  readonly format: unknown
}

const schema = `
CREATE TABLE IF NOT EXISTS events (
  id INTEGER PRIMARY KEY,
  body TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  enqueued_at INTEGER NOT NULL,
  format INTEGER NOT NULL
)`

/**
 * Opens an existing file with an exclusive lock that lasts until `close`. In WAL mode with
 * `locking_mode=EXCLUSIVE`, SQLite takes the lock on the first read or write and keeps no shared-memory
 * file, so another connection, in this process or another, gets SQLITE_BUSY instead of reading. The
 * kernel drops the lock when the owner dies, so a dead owner's file can be locked even if its pid has
 * been reused.
 */
export const openLocked = (file: string): Database.Database => {
  // `timeout: 0`: a busy file belongs to a live buffer, and waiting would not change that.
  const db = new Database(file, { fileMustExist: true, timeout: 0 })
  try {
    db.pragma("locking_mode = EXCLUSIVE")
    return db
  } catch (error) {
    db.close()
    throw error
  }
}

/** Opens a buffer file this process just created, takes its lock and creates the table. */
export const openOwn = (file: string): Database.Database => {
  const db = openLocked(file)
  try {
    db.pragma("journal_mode = WAL")
    // NORMAL in WAL mode syncs the WAL only at checkpoints. A committed transaction is in the WAL file
    // when `append` returns, so it survives the process being killed. A power loss or kernel crash can
    // roll back the transactions committed since the last checkpoint, but does not corrupt the file.
    db.pragma("synchronous = NORMAL")
    db.exec(schema)
    db.pragma(`user_version = ${fileVersion}`)
    return db
  } catch (error) {
    db.close()
    throw error
  }
}

/** Statements on one buffer file, prepared once. */
export interface Statements {
  readonly insert: Database.Statement<[number, string | Buffer, number, number, number]>
  /** Stores raw bytes as text without checking that they are UTF-8. */
  readonly insertRawText: Database.Statement<[number, Buffer, number, number, number]>
  readonly scanFrom: Database.Statement<[number], StoredRow>
  readonly scanSizes: Database.Statement<[], { id: number; bytes: number }>
  readonly rawBody: Database.Statement<[number], { raw: unknown }>
  readonly deleteOne: Database.Statement<[number], number>
  readonly deleteRange: Database.Statement<[number, number], number>
  readonly deleteThrough: Database.Statement<[number]>
  readonly deleteAll: Database.Statement<[]>
  readonly oldest: Database.Statement<[], number>
  readonly totals: Database.Statement<[], { depth: number; bytes: number | null; lastId: number | null }>
}

export const prepare = (db: Database.Database): Statements => ({
  insert: db.prepare("INSERT INTO events (id, body, bytes, enqueued_at, format) VALUES (?, ?, ?, ?, ?)"),
  insertRawText: db.prepare(
    "INSERT INTO events (id, body, bytes, enqueued_at, format) VALUES (?, CAST(? AS TEXT), ?, ?, ?)"
  ),
  scanFrom: db.prepare("SELECT id, body, bytes, enqueued_at, format FROM events WHERE id > ? ORDER BY id"),
  scanSizes: db.prepare("SELECT id, bytes FROM events ORDER BY id"),
  rawBody: db.prepare("SELECT CAST(body AS BLOB) AS raw FROM events WHERE id = ?"),
  deleteOne: db.prepare<[number], number>("DELETE FROM events WHERE id = ? RETURNING bytes").pluck(),
  deleteRange: db
    .prepare<[number, number], number>("DELETE FROM events WHERE id BETWEEN ? AND ? RETURNING bytes")
    .pluck(),
  deleteThrough: db.prepare("DELETE FROM events WHERE id <= ?"),
  deleteAll: db.prepare("DELETE FROM events"),
  oldest: db.prepare<[], number>("SELECT enqueued_at FROM events ORDER BY id LIMIT 1").pluck(),
  totals: db.prepare("SELECT count(*) AS depth, sum(bytes) AS bytes, max(id) AS lastId FROM events")
})

/**
 * A row that decoded to an entry, or the reason it cannot be delivered. `suspect` marks a body that
 * contains U+FFFD, whose raw bytes must still pass {@link isValidUtf8}.
 */
export type Decoded = { readonly entry: BufferEntry; readonly suspect: boolean } | { readonly poison: string }

/**
 * Checks one row cheaply: the body format and the column types. Rows written by another process
 * (`foreign`) must also parse as a JSON object, because one invalid body makes the brain reject the
 * whole `event_batch` frame that carries it. Rows this process wrote contain text it rendered itself.
 */
export const decodeRow = (row: StoredRow, foreign: boolean): Decoded => {
  if (row.format !== bodyFormat) return { poison: `body format ${String(row.format)} instead of ${bodyFormat}` }
  const body = row.body
  if (typeof body !== "string") return { poison: "body is not text" }
  if (typeof row.bytes !== "number" || typeof row.enqueued_at !== "number") return { poison: "invalid columns" }
  if (foreign && !isJsonObject(body)) return { poison: "body is not a JSON object" }
  // SQLite returns invalid UTF-8 bytes as U+FFFD, so only bodies containing it need their raw bytes checked.
  return {
    entry: { id: row.id, body, bytes: row.bytes, enqueuedAtMillis: row.enqueued_at },
    suspect: body.includes("\uFFFD")
  }
}

/** Whether the raw bytes of a body, as `CAST(body AS BLOB)` returns them, are valid UTF-8. */
export const isValidUtf8 = (raw: unknown): boolean => raw instanceof Uint8Array && isUtf8(raw)

const isJsonObject = (text: string): boolean => {
  if (!text.startsWith("{")) return false
  try {
    JSON.parse(text)
    return true
  } catch {
    return false
  }
}

/** Returns the SQLite code of an error, or the message of any other error. */
export const errorCode = (error: unknown): string => {
  const code = (error as { code?: unknown }).code
  if (typeof code === "string") return code
  return error instanceof Error ? error.message : String(error)
}
