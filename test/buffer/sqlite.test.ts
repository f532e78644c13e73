import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Sqlite from "../../src/services/EventBuffer/Sqlite.js"
import type { EventBufferShape } from "../../src/services/EventBuffer.js"
import { bodies, type LogLine, seqs, tempFolder, withCapturedLogs } from "./support.js"

const agentKey = "agent-a"
const bufferFolder = (home: string) => join(home, "buffers", agentKey)
const bufferFiles = (home: string) => readdirSync(bufferFolder(home)).filter((name) => name.endsWith(".sqlite"))
const mode = (path: string) => statSync(path).mode & 0o777

/** Opens a buffer in its own scope, so a test can close it before opening the next one. */
const openBuffer = (options: Partial<Sqlite.SqliteBufferOptions> & { readonly home: string }) =>
  Effect.gen(function* () {
    const scope = yield* Scope.make()
    const buffer = yield* Scope.extend(Sqlite.make({ agentKey, ...options }), scope)
    return { buffer, close: Scope.close(scope, Exit.void) }
  })

/** Reads every entry, 500 at a time, as the dispatcher does. */
const readAll = (buffer: EventBufferShape) =>
  Effect.gen(function* () {
    const all = []
    let cursor = 0
    for (;;) {
      const page = yield* buffer.read(cursor, 500, 1 << 20)
      if (page.length === 0) return all
      all.push(...page)
      cursor = page[page.length - 1]!.id
    }
  })

/** A pid that belonged to a process which has exited. */
const deadPid = () => spawnSync(process.execPath, ["-e", ""]).pid!

const appenderScript = join(import.meta.dirname, "fixtures", "appender.ts")

/** Starts the appender fixture and collects its stdout lines. */
const startAppender = (home: string, appenderMode: "loop" | "hold") =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, ["--import", "tsx", appenderScript, home, agentKey, appenderMode], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      const lines: Array<string> = []
      let partial = ""
      child.stdout!.setEncoding("utf8")
      child.stdout!.on("data", (chunk: string) => {
        const parts = (partial + chunk).split("\n")
        partial = parts.pop()!
        lines.push(...parts)
      })
      let stderr = ""
      child.stderr!.setEncoding("utf8")
      child.stderr!.on("data", (chunk: string) => {
        stderr += chunk
      })
      return { child, lines, stderr: () => stderr }
    }),
    ({ child }) => Effect.sync(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"))
  )

const waitUntil = (condition: () => boolean, what: () => string, timeoutMillis = 20_000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMillis
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })

const killAndWait = (child: ChildProcess) =>
  Effect.promise(
    () =>
      new Promise<void>((resolve) => {
        child.once("exit", () => resolve())
        child.kill("SIGKILL")
      })
  )

describe("Sqlite buffer files", () => {
  it.scoped("folders 0700 and file 0600", () =>
    Effect.gen(function* () {
      const root = yield* tempFolder
      const home = join(root, "home")
      const { buffer } = yield* openBuffer({ home })
      yield* buffer.append(bodies(1, 1))

      expect(mode(home)).toBe(0o700)
      expect(mode(join(home, "buffers"))).toBe(0o700)
      expect(mode(bufferFolder(home))).toBe(0o700)
      const [file] = bufferFiles(home)
      expect(file).toMatch(new RegExp(`^buffer-${process.pid}-\\d+-[0-9a-f]+\\.sqlite$`))
      expect(mode(join(bufferFolder(home), file!))).toBe(0o600)
      expect(mode(join(bufferFolder(home), `${file}-wal`))).toBe(0o600)
    })
  )

  it.scoped("existing home keeps its mode", () =>
    Effect.gen(function* () {
      const root = yield* tempFolder
      const home = join(root, "home")
      mkdirSync(join(home, "buffers"), { recursive: true, mode: 0o755 })
      execFileSync("chmod", ["755", home, join(home, "buffers")])
      yield* openBuffer({ home })

      expect(mode(home)).toBe(0o755)
      expect(mode(join(home, "buffers"))).toBe(0o700)
    })
  )

  it.scoped("empty file deleted at close", () =>
    Effect.gen(function* () {
      const home = join(yield* tempFolder, "home")
      const { buffer, close } = yield* openBuffer({ home })
      yield* buffer.append(bodies(1, 3))
      yield* buffer.remove((yield* buffer.read(0, 500, 1 << 20)).map((entry) => entry.id))
      yield* close

      expect(readdirSync(bufferFolder(home))).toEqual([])
    })
  )

  it.scoped("append after close dropped and counted", () =>
    Effect.gen(function* () {
      const home = join(yield* tempFolder, "home")
      const { buffer, close } = yield* openBuffer({ home })
      yield* close
      yield* buffer.append(bodies(1, 2))

      const stats = yield* buffer.stats
      expect(stats.droppedTotal).toBe(2)
      expect(stats.storageFailuresTotal).toBe(0)
      expect(yield* buffer.read(0, 10, 1000)).toEqual([])
      expect(readdirSync(bufferFolder(home))).toEqual([])
    })
  )

  it.scoped("restart adopts rows in order", () =>
    Effect.gen(function* () {
      const home = join(yield* tempFolder, "home")
      const first = yield* openBuffer({ home })
      yield* TestClock.adjust(5000)
      yield* first.buffer.append(bodies(1, 5))
      const [oldest] = yield* first.buffer.read(0, 1, 1 << 20)
      yield* first.buffer.remove([oldest!.id])
      yield* first.close
      const [leftFile] = bufferFiles(home)
      expect(leftFile).toBeDefined()

      // The left file carries this process's pid, which is alive: only its free lock marks it as orphaned.
      const lines: Array<LogLine> = []
      const second = yield* withCapturedLogs(openBuffer({ home }), lines)
      yield* TestClock.adjust(1000)
      yield* second.buffer.append(bodies(6, 6))

      const entries = yield* readAll(second.buffer)
      expect(seqs(entries)).toEqual([2, 3, 4, 5, 6])
      expect(entries.map((entry) => entry.enqueuedAtMillis)).toEqual([5000, 5000, 5000, 5000, 6000])
      expect(bufferFiles(home)).not.toContain(leftFile)
      expect(bufferFiles(home).length).toBe(1)
      expect(lines.some((line) => line.message.includes(`adopted 4 buffered events from`))).toBe(true)
      expect((yield* second.buffer.stats).depth).toBe(5)
    })
  )

  it.scoped("adopts older files first", () =>
    Effect.gen(function* () {
      const home = join(yield* tempFolder, "home")
      // Both are open together, so neither adopts the other; the first one's name has the earlier start time.
      const older = yield* openBuffer({ home })
      yield* older.buffer.append(bodies(1, 3))
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
      const newer = yield* openBuffer({ home })
      yield* newer.buffer.append(bodies(4, 6))
      yield* newer.close
      yield* older.close
      expect(bufferFiles(home).length).toBe(2)

      const { buffer } = yield* openBuffer({ home })
      expect(seqs(yield* readAll(buffer))).toEqual([1, 2, 3, 4, 5, 6])
    })
  )

  it.scoped("live buffer in this process left alone", () =>
    Effect.gen(function* () {
      const home = join(yield* tempFolder, "home")
      const first = yield* openBuffer({ home })
      yield* first.buffer.append(bodies(1, 3))

      const second = yield* openBuffer({ home })
      expect(yield* readAll(second.buffer)).toEqual([])
      expect(bufferFiles(home).length).toBe(2)
      yield* first.buffer.append(bodies(4, 4))
      expect(seqs(yield* readAll(first.buffer))).toEqual([1, 2, 3, 4])
    })
  )

  it.scoped("empty files judged by pid", () =>
    Effect.gen(function* () {
      const home = join(yield* tempFolder, "home")
      yield* openBuffer({ home })
      const dead = join(bufferFolder(home), `buffer-${deadPid()}-1-aaaa.sqlite`)
      const live = join(bufferFolder(home), `buffer-${process.pid}-2-bbbb.sqlite`)
      writeFileSync(dead, "")
      writeFileSync(live, "")

      yield* openBuffer({ home })
      expect(existsSync(dead)).toBe(false)
      expect(existsSync(live)).toBe(true)
    })
  )
})

describe("Sqlite buffer homes", () => {
  it.scoped("unwritable home uses the fallback", () =>
    Effect.gen(function* () {
      const root = yield* tempFolder
      writeFileSync(join(root, "file"), "")
      const home = join(root, "file", "home")
      const fallbackHome = join(root, "fallback")
      const lines: Array<LogLine> = []

      const { buffer } = yield* withCapturedLogs(openBuffer({ home, fallbackHome }), lines)
      yield* buffer.append(bodies(1, 2))

      expect(bufferFiles(fallbackHome).length).toBe(1)
      expect(mode(fallbackHome)).toBe(0o700)
      const warning = lines.find((line) => line.level === "WARN")
      expect(warning?.message).toContain(`${home} is not writable (ENOTDIR`)
      expect(warning?.message).toContain(bufferFolder(fallbackHome))
      expect((yield* buffer.stats).durable).toBe(true)
    })
  )

  it.scoped("default fallback is TMPDIR/z4j-uid", () =>
    Effect.gen(function* () {
      const root = yield* tempFolder
      writeFileSync(join(root, "file"), "")
      const previous = process.env.TMPDIR
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          process.env.TMPDIR = root
        }),
        () =>
          Effect.sync(() => {
            if (previous === undefined) delete process.env.TMPDIR
            else process.env.TMPDIR = previous
          })
      )

      yield* openBuffer({ home: join(root, "file", "home") })
      expect(bufferFiles(join(root, `z4j-${process.getuid!()}`)).length).toBe(1)
    })
  )

  it.scoped("nothing writable fails with the paths", () =>
    Effect.gen(function* () {
      const root = yield* tempFolder
      writeFileSync(join(root, "file"), "")
      mkdirSync(join(root, "target"))
      symlinkSync(join(root, "target"), join(root, "link"))
      const home = join(root, "file", "home")
      const fallbackHome = join(root, "link")

      const error = yield* Effect.flip(openBuffer({ home, fallbackHome }))
      expect(error._tag).toBe("BufferUnavailableError")
      expect(error.attempts.map((attempt) => attempt.path)).toEqual([home, fallbackHome])
      expect(error.message).toContain(`${home} (ENOTDIR`)
      expect(error.message).toContain(`${fallbackHome} (${fallbackHome} exists and is not a folder`)
      expect(error.message).toContain("Set Z4J_HOME to a writable folder")
    })
  )

  it.effect("invalid agentKey is a defect", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(Effect.scoped(Sqlite.make({ home: "/nonexistent", agentKey: "../escape" })))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(Exit.isFailure(exit) && Option.isSome(Cause.dieOption(exit.cause))).toBe(true)
    })
  )
})

describe("Sqlite buffer poison rows", () => {
  it.scoped("discarded, counted, and not blocking", () =>
    Effect.gen(function* () {
      const home = join(yield* tempFolder, "home")
      const first = yield* openBuffer({ home })
      yield* first.buffer.append(bodies(1, 1))
      yield* first.close
      const file = join(bufferFolder(home), bufferFiles(home)[0]!)

      const raw = new Database(file)
      const insert = raw.prepare("INSERT INTO events (id, body, bytes, enqueued_at, format) VALUES (?, ?, ?, 0, ?)")
      insert.run(2, '{"seq":2}', 9, 0)
      insert.run(3, '{"seq":3', 8, 1)
      raw
        .prepare("INSERT INTO events VALUES (4, CAST(? AS TEXT), 9, 0, 1)")
        .run(Buffer.from([0x7b, 0x22, 0x73, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]))
      insert.run(5, Buffer.from('{"seq":5}'), 9, 1)
      insert.run(6, '{"seq":6,"note":"\uFFFD kept"}', 28, 1)
      insert.run(7, '{"seq":7}', 9, 1)
      raw.close()

      const lines: Array<LogLine> = []
      const { buffer } = yield* withCapturedLogs(openBuffer({ home }), lines)
      const firstPage = yield* withCapturedLogs(buffer.read(0, 1, 1 << 20), lines)
      expect(seqs(firstPage)).toEqual([1])
      const secondPage = yield* withCapturedLogs(buffer.read(firstPage[0]!.id, 1, 1 << 20), lines)
      expect(seqs(secondPage)).toEqual([6])
      expect(secondPage[0]!.body).toContain("\uFFFD")
      expect(seqs(yield* withCapturedLogs(readAll(buffer), lines))).toEqual([1, 6, 7])

      const stats = yield* buffer.stats
      expect(stats.discardedTotal).toBe(4)
      expect(stats.depth).toBe(3)
      // The first read stops at seq 6 and the BLOB body behind it is found by the next read.
      const warnings = lines.filter((line) => line.message.includes("undeliverable")).map((line) => line.message)
      expect(warnings.length).toBe(2)
      const warning = warnings.join("\n")
      expect(warnings[0]).toContain("discarded 3 undeliverable buffered events")
      expect(warnings[1]).toContain("discarded 1 undeliverable buffered events")
      expect(warning).toContain("body format 0 instead of 1")
      expect(warning).toContain("body is not a JSON object")
      expect(warning).toContain("body is not valid UTF-8")
      expect(warning).toContain("body is not text")
    })
  )

  it.scoped("older file version discarded and counted", () =>
    Effect.gen(function* () {
      const home = join(yield* tempFolder, "home")
      yield* openBuffer({ home })
      const older = join(bufferFolder(home), `buffer-${deadPid()}-1-0001.sqlite`)
      const raw = new Database(older)
      raw.exec("CREATE TABLE events (seq INTEGER PRIMARY KEY, payload TEXT)")
      raw.exec(`INSERT INTO events (payload) VALUES ('{"a":1}'), ('{"a":2}'), ('{"a":3}')`)
      raw.close()

      const { buffer } = yield* openBuffer({ home })
      expect(yield* readAll(buffer)).toEqual([])
      expect((yield* buffer.stats).discardedTotal).toBe(3)
      expect(existsSync(older)).toBe(false)
    })
  )

  it.scoped("newer file version left alone", () =>
    Effect.gen(function* () {
      const home = join(yield* tempFolder, "home")
      yield* openBuffer({ home })
      const newer = join(bufferFolder(home), `buffer-${deadPid()}-1-0002.sqlite`)
      const raw = new Database(newer)
      raw.exec("CREATE TABLE events (id INTEGER PRIMARY KEY)")
      raw.pragma("user_version = 99")
      raw.close()

      const lines: Array<LogLine> = []
      const { buffer } = yield* withCapturedLogs(openBuffer({ home }), lines)
      expect(existsSync(newer)).toBe(true)
      expect((yield* buffer.stats).discardedTotal).toBe(0)
      expect(lines.some((line) => line.message.includes("written by a newer agent (file version 99"))).toBe(true)
    })
  )
})

describe("Sqlite buffer processes", () => {
  it.scoped(
    "SIGKILL loses no confirmed event",
    () =>
      Effect.gen(function* () {
        const home = join(yield* tempFolder, "home")
        const appender = yield* startAppender(home, "loop")
        yield* waitUntil(
          () => appender.lines.length >= 300,
          () => `300 batches from the appender (stderr: ${appender.stderr()})`
        )
        yield* killAndWait(appender.child)
        const confirmed = Number(appender.lines[appender.lines.length - 1])
        expect(confirmed).toBeGreaterThanOrEqual(3000)

        const { buffer } = yield* openBuffer({ home })
        const stored = seqs(yield* readAll(buffer))
        // The batch being appended at the kill either committed whole or not at all.
        expect([confirmed, confirmed + 10]).toContain(stored.length)
        expect(stored).toEqual(Array.from({ length: stored.length }, (_, index) => index + 1))
      }),
    60_000
  )

  it.scoped(
    "live process keeps its file",
    () =>
      Effect.gen(function* () {
        const home = join(yield* tempFolder, "home")
        const holder = yield* startAppender(home, "hold")
        yield* waitUntil(
          () => holder.lines.includes("ready"),
          () => `"ready" from the holder (stderr: ${holder.stderr()})`
        )

        const during = yield* openBuffer({ home })
        expect(yield* readAll(during.buffer)).toEqual([])
        yield* during.close
        expect(bufferFiles(home).length).toBe(1)

        yield* killAndWait(holder.child)
        const after = yield* openBuffer({ home })
        expect((yield* readAll(after.buffer)).map((entry) => entry.body)).toEqual(['{"seq":0,"held":true}'])
      }),
    60_000
  )
})

/** Mounts a tmpfs of `kilobytes` at `folder`; false where mounting needs privileges this process lacks. */
const mountTmpfs = (folder: string, kilobytes: number): boolean => {
  mkdirSync(folder, { recursive: true })
  return spawnSync("mount", ["-t", "tmpfs", "-o", `size=${kilobytes}k`, "tmpfs", folder]).status === 0
}

const canMount = (() => {
  if (process.getuid?.() !== 0) return false
  const probe = join(process.env.TMPDIR ?? "/tmp", `z4j-mount-probe-${process.pid}`)
  const mounted = mountTmpfs(probe, 64)
  if (mounted) spawnSync("umount", [probe])
  rmSync(probe, { recursive: true, force: true })
  return mounted
})()

describe("Sqlite buffer disk full", () => {
  it.scoped.skipIf(!canMount)(
    "falls back to memory and recovers",
    () =>
      Effect.gen(function* () {
        const root = yield* tempFolder
        const disk = join(root, "disk")
        yield* Effect.acquireRelease(
          Effect.sync(() => mountTmpfs(disk, 512)),
          () => Effect.sync(() => spawnSync("umount", ["-l", disk]))
        )
        const home = join(disk, "home")
        const filler = join(disk, "filler")
        writeFileSync(filler, Buffer.alloc(320 * 1024))

        const lines: Array<LogLine> = []
        const { buffer, close } = yield* withCapturedLogs(openBuffer({ home }), lines)
        let seq = 0
        while ((yield* buffer.stats).durable && seq < 5000) {
          yield* withCapturedLogs(buffer.append(bodies(seq + 1, seq + 10, 900)), lines)
          seq += 10
        }
        expect((yield* buffer.stats).durable).toBe(false)
        for (let batch = 0; batch < 3; batch++) {
          yield* withCapturedLogs(buffer.append(bodies(seq + 1, seq + 10, 900)), lines)
          seq += 10
        }
        const inMemory = yield* readAll(buffer)
        expect(seqs(inMemory)).toEqual(Array.from({ length: seq }, (_, index) => index + 1))
        yield* buffer.remove(inMemory.slice(0, 5).map((entry) => entry.id))

        rmSync(filler)
        yield* TestClock.adjust(29_000)
        yield* withCapturedLogs(buffer.append(bodies(seq + 1, seq + 1)), lines)
        seq += 1
        expect((yield* buffer.stats).durable).toBe(false)
        yield* TestClock.adjust(1_000)
        yield* withCapturedLogs(buffer.append(bodies(seq + 1, seq + 1)), lines)
        seq += 1

        const stats = yield* buffer.stats
        expect(stats.durable).toBe(true)
        expect(stats.storageFailuresTotal).toBe(1)
        expect(stats.depth).toBe(seq - 5)
        const expected = Array.from({ length: seq - 5 }, (_, index) => index + 6)
        expect(seqs(yield* readAll(buffer))).toEqual(expected)
        const warnings = lines.filter((line) => line.message.includes("keeping events in memory"))
        expect(warnings.length).toBe(1)
        expect(warnings[0]!.message).toContain("SQLITE_FULL")
        expect(lines.some((line) => line.message.includes("works again: moved"))).toBe(true)

        // Everything is on disk now: the closed file contains exactly the entries not yet removed.
        yield* close
        const raw = new Database(join(bufferFolder(home), bufferFiles(home)[0]!), { readonly: true })
        const onDisk = raw.prepare("SELECT body FROM events ORDER BY id").all() as Array<{ body: string }>
        raw.close()
        expect(seqs(onDisk)).toEqual(expected)
      }),
    60_000
  )
})
