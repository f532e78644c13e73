import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as HashSet from "effect/HashSet"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import type * as Scope from "effect/Scope"
import * as Memory from "../../src/services/EventBuffer/Memory.js"
import * as Sqlite from "../../src/services/EventBuffer/Sqlite.js"
import type { EventBufferShape } from "../../src/services/EventBuffer.js"

/** A fresh folder, removed with the test's scope. */
export const tempFolder = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "z4j-buffer-test-"))),
  (folder) => Effect.sync(() => rmSync(folder, { recursive: true, force: true }))
)

export interface Caps {
  readonly maxEvents?: number
  readonly maxBytes?: number
}

/** One buffer backend under test; `make` opens a fresh buffer with these caps. */
export interface Backend {
  readonly name: string
  readonly durable: boolean
  readonly make: (caps?: Caps) => Effect.Effect<EventBufferShape, Sqlite.BufferUnavailableError, Scope.Scope>
}

export const backends: ReadonlyArray<Backend> = [
  { name: "Memory", durable: false, make: (caps = {}) => Memory.make(caps) },
  {
    name: "Sqlite",
    durable: true,
    make: (caps = {}) =>
      Effect.flatMap(tempFolder, (home) => Sqlite.make({ home: join(home, "home"), agentKey: "agent-a", ...caps }))
  }
]

export interface LogLine {
  readonly level: string
  readonly message: string
}

/** Log lines written while `effect` runs, at every level; only the fibers of `effect` write to `lines`. */
export const withCapturedLogs = <A, E, R>(effect: Effect.Effect<A, E, R>, lines: Array<LogLine>) => {
  const logger = Logger.make(({ logLevel, message }) => {
    const parts = Array.isArray(message) ? message : [message]
    lines.push({ level: logLevel.label, message: parts.map(String).join(" ") })
  })
  return effect.pipe(
    Effect.locally(FiberRef.currentLoggers, HashSet.make(logger)),
    Logger.withMinimumLogLevel(LogLevel.All)
  )
}

/** Event bodies `{"seq":from}` .. `{"seq":to}`, padded to a fixed size. */
export const bodies = (from: number, to: number, pad = 0): Array<string> =>
  Array.from({ length: to - from + 1 }, (_, index) => JSON.stringify({ seq: from + index, pad: "x".repeat(pad) }))

/** The `seq` of each body. */
export const seqs = (entries: ReadonlyArray<{ readonly body: string }>): Array<number> =>
  entries.map((entry) => (JSON.parse(entry.body) as { seq: number }).seq)
