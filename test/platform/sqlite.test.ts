import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"

/** A fresh folder for database files, removed with the test's scope. */
const tempFolder = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "z4j-agent-sqlite-"))),
  (folder) => Effect.sync(() => rmSync(folder, { recursive: true, force: true }))
)

const openDatabase = (path: string, options?: Database.Options) =>
  Effect.acquireRelease(
    Effect.sync(() => new Database(path, options)),
    (database) => Effect.sync(() => database.close())
  )

// Opening a database loads better-sqlite3's native binding, which throws a NODE_MODULE_VERSION mismatch when
// it was compiled for another Node ABI. So every test here fails on a Node that the install did not build for.
describe("better-sqlite3 on this Node version", () => {
  it.scoped("file database switches to WAL", () =>
    Effect.gen(function* () {
      const folder = yield* tempFolder
      const path = join(folder, "buffer.db")
      const database = yield* openDatabase(path)

      expect(database.pragma("journal_mode = WAL", { simple: true })).toBe("wal")
      expect(database.pragma("journal_mode", { simple: true })).toBe("wal")

      database.exec("CREATE TABLE events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")
      expect(existsSync(`${path}-wal`)).toBe(true)
    })
  )

  it.scoped("reader sees committed rows while a writer is open", () =>
    Effect.gen(function* () {
      const folder = yield* tempFolder
      const path = join(folder, "buffer.db")
      const writer = yield* openDatabase(path)
      writer.pragma("journal_mode = WAL")
      writer.exec("CREATE TABLE events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")
      const insert = writer.prepare("INSERT INTO events (body) VALUES (?)")
      writer.transaction((bodies: ReadonlyArray<string>) => {
        for (const body of bodies) insert.run(body)
      })(["a", "b", "c"])

      const reader = yield* openDatabase(path, { readonly: true })
      const rows = reader.prepare("SELECT seq, body FROM events ORDER BY seq").all()

      expect(rows).toEqual([
        { seq: 1, body: "a" },
        { seq: 2, body: "b" },
        { seq: 3, body: "c" }
      ])
      expect(reader.pragma("journal_mode", { simple: true })).toBe("wal")
    })
  )
})
