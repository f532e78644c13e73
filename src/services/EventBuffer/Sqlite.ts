/**
 * The durable event buffer: one SQLite file per worker process in `<home>/buffers/<agentKey>/`, so events
 * survive a crash or a kill of the worker and a restarted worker of the same agent sends them first.
 * When the disk fails it keeps working in memory and moves the entries back once the disk works again.
 *
 * @since 0.1.0
 */
import * as os from "node:os"
import * as path from "node:path"
import type Database from "better-sqlite3"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { EventBuffer, type EventBufferShape } from "../EventBuffer.js"
import { DurableStore } from "./internal/durable.js"
import { createBufferFile, describeFailure, prepareFolder, removeBufferFile } from "./internal/folders.js"
import { type Caps, DropStreak, defaultCaps, flushNotices, type Notice } from "./internal/notices.js"
import { openOwn } from "./internal/sqliteFile.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface SqliteBufferOptions {
  /** State folder of the agent (`Z4J_HOME`). Created with mode 0700 when missing; an existing one is used as it is. */
  readonly home: string
  /** Folder name for this agent's buffers, the same for every worker process of one agent. */
  readonly agentKey: string
  /** Maximum number of stored entries. Default 100,000. */
  readonly maxEvents?: number
  /** Maximum total UTF-8 bytes of stored bodies. Default 256 MiB. */
  readonly maxBytes?: number
  /** Home used when `home` is not writable. Default `$TMPDIR/z4j-<uid>`. */
  readonly fallbackHome?: string
}

/**
 * A folder that was tried for the buffer, and why it could not hold it.
 *
 * @since 0.1.0
 * @category models
 */
export interface FailedHome {
  readonly path: string
  readonly reason: string
}

/**
 * No folder could hold the durable buffer.
 *
 * @since 0.1.0
 * @category errors
 */
export class BufferUnavailableError extends Data.TaggedError("BufferUnavailableError")<{
  readonly attempts: ReadonlyArray<FailedHome>
}> {
  override get message(): string {
    const tried = this.attempts.map((attempt) => `${attempt.path} (${attempt.reason})`).join(", ")
    return (
      `cannot create the durable event buffer: tried ${tried}. Set Z4J_HOME to a writable folder, ` +
      "or set Z4J_BUFFER=memory to keep events in memory only"
    )
  }
}

const safeAgentKey = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/

/** `$TMPDIR/z4j-<uid>`, or the user name where there are no uids. */
const defaultFallbackHome = (): string => path.join(os.tmpdir(), `z4j-${process.getuid?.() ?? os.userInfo().username}`)

interface OpenedFile {
  readonly db: Database.Database
  readonly file: string
  readonly folder: string
}

const openFirstWritable = (
  options: SqliteBufferOptions,
  startMillis: number
): { readonly opened: OpenedFile | undefined; readonly attempts: Array<FailedHome> } => {
  const attempts: Array<FailedHome> = []
  const fallbackHome = options.fallbackHome ?? defaultFallbackHome()
  const homes = [
    { home: options.home, privateHome: false },
    { home: fallbackHome, privateHome: true }
  ].filter((candidate, index) => index === 0 || path.resolve(candidate.home) !== path.resolve(options.home))
  for (const { home, privateHome } of homes) {
    try {
      const folder = prepareFolder(home, options.agentKey, { privateHome })
      const file = createBufferFile(folder, startMillis)
      try {
        return { opened: { db: openOwn(file), file, folder }, attempts }
      } catch (error) {
        removeBufferFile(file)
        throw error
      }
    } catch (error) {
      attempts.push({ path: home, reason: describeFailure(error) })
    }
  }
  return { opened: undefined, attempts }
}

/**
 * Opens a new buffer file for this process, adopts the files that dead processes of the same agent left,
 * and closes the file when the scope closes, deleting it if it is empty. Fails only when neither the home
 * nor the fallback home can hold a file.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: SqliteBufferOptions
): Effect.Effect<EventBufferShape, BufferUnavailableError, Scope.Scope> =>
  Effect.gen(function* () {
    if (!safeAgentKey.test(options.agentKey)) {
      return yield* Effect.dieMessage(
        `invalid agentKey ${JSON.stringify(options.agentKey)}: use letters, digits, ".", "_" and "-" only`
      )
    }
    const caps: Caps = {
      maxEvents: options.maxEvents ?? defaultCaps.maxEvents,
      maxBytes: options.maxBytes ?? defaultCaps.maxBytes
    }

    // The file name carries the wall-clock start time, which orders adoption, so it does not use Clock.
    const { opened, attempts } = openFirstWritable(options, Date.now())
    if (opened === undefined) return yield* new BufferUnavailableError({ attempts })
    if (attempts.length > 0) {
      yield* Effect.logWarning(
        `${attempts.map((attempt) => `${attempt.path} is not writable (${attempt.reason})`).join("; ")}; ` +
          `buffering events in ${opened.folder} instead. Set Z4J_HOME to a writable folder to keep them there`
      )
    }

    const notices: Array<Notice> = []
    const store = yield* Effect.acquireRelease(
      Effect.map(Clock.currentTimeMillis, (nowMillis) => {
        const store = new DurableStore(opened.db, opened.file, caps, new DropStreak(caps, notices), notices)
        store.adopt(opened.folder, nowMillis)
        return store
      }),
      (store) =>
        Effect.flatMap(Clock.currentTimeMillis, (nowMillis) => {
          store.close(nowMillis)
          return flushNotices(notices)
        })
    )
    yield* flushNotices(notices)
    yield* Effect.logDebug(`event buffer opened at ${opened.file}`)

    const run = <A>(operation: (nowMillis: number) => A): Effect.Effect<A> =>
      Effect.flatMap(Clock.currentTimeMillis, (nowMillis) => {
        const result = operation(nowMillis)
        return notices.length === 0 ? Effect.succeed(result) : Effect.as(flushNotices(notices), result)
      })

    const shape: EventBufferShape = {
      append: (bodies) => run((nowMillis) => store.append(bodies, nowMillis)),
      read: (afterId, maxEntries, maxBytes) => run((nowMillis) => store.read(afterId, maxEntries, maxBytes, nowMillis)),
      remove: (ids) =>
        run((nowMillis) => {
          store.remove(ids, nowMillis)
        }),
      discard: (ids, reason) =>
        Effect.flatMap(
          run((nowMillis) => store.discard(ids, nowMillis)),
          (discarded) =>
            discarded === 0 ? Effect.void : Effect.logDebug(`discarded ${discarded} buffered events: ${reason}`)
        ),
      stats: Effect.sync(() => store.stats())
    }
    return shape
  }).pipe(Effect.annotateLogs("service", "z4j-agent/EventBuffer"))

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: SqliteBufferOptions): Layer.Layer<EventBuffer, BufferUnavailableError> =>
  Layer.scoped(EventBuffer, make(options))
