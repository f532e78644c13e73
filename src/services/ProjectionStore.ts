/**
 * Stores, per scheduler, the rows of the last schedule projection the brain acknowledged, so that an
 * agent started again can send the schedules removed while it was stopped once more before it deletes
 * them. z4j 1.13.0 rejects a complete snapshot that deletes, at the start of a new epoch, a schedule the
 * previous epoch listed (see `CommandRouter`, which sends that bridging snapshot).
 *
 * With the file store, each scheduler has one JSON file (mode 0600) in the agent's state folder,
 * `<home>/buffers/<agentKey>/`, the folder of the durable buffer, with the same fallback home.
 *
 * @since 0.1.0
 */
import * as path from "node:path"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { ScheduleRow } from "../protocol/ScheduleProjection.js"
import type { EventBufferShape } from "./EventBuffer.js"
import {
  defaultFallbackHome,
  fileName,
  openFolder,
  readProjection,
  type StoredProjection,
  writeProjection
} from "./internal/projectionFile.js"

/**
 * A projection handed to the event buffer, with the `payload_digest` of the event that carries it.
 *
 * @since 0.1.0
 * @category models
 */
export interface SentProjection extends StoredProjection {
  readonly digest: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ProjectionStoreShape {
  /**
   * Reads the rows that an earlier process stored for `scheduler`. Returns none when there is no file,
   * when it cannot be read or decoded (logged at warning level), and with the memory store.
   */
  readonly restore: (scheduler: string) => Effect.Effect<Option.Option<ReadonlyArray<ScheduleRow>>>
  /** Registers a projection just emitted. Its rows are written once the brain acknowledges its event. */
  readonly track: (projection: SentProjection) => Effect.Effect<void>
  /**
   * Wraps the event buffer: removing an entry that carries a tracked projection means the brain
   * acknowledged its batch, so that projection is written.
   */
  readonly observe: (buffer: EventBufferShape) => EventBufferShape
}

/**
 * @since 0.1.0
 * @category tags
 */
export class ProjectionStore extends Context.Tag("z4j-agent/ProjectionStore")<
  ProjectionStore,
  ProjectionStoreShape
>() {}

/**
 * A store that keeps nothing: a restarted agent does not know what it sent before.
 *
 * @since 0.1.0
 * @category constructors
 */
export const none: ProjectionStoreShape = {
  restore: () => Effect.succeedNone,
  track: () => Effect.void,
  observe: (buffer) => buffer
}

/** Projections tracked per scheduler while their acknowledgement is pending. Older ones are forgotten. */
const maxPendingPerScheduler = 16
/** Entries of the buffer known to carry a tracked projection. Older ones are forgotten. */
const maxCarriers = 1_024

// Event bodies are canonical JSON, so the digest always appears in exactly this form.
const digestPattern = /"payload_digest":"([0-9a-f]{64})"/

/**
 * @since 0.1.0
 * @category models
 */
export interface FileStoreOptions {
  /** State folder of the agent (`Z4J_HOME`). */
  readonly home: string
  /** Folder name for this agent, the one the durable buffer uses (brain, project and token). */
  readonly agentKey: string
  /** Home used when `home` is not writable. Default `$TMPDIR/z4j-<uid>`, as for the durable buffer. */
  readonly fallbackHome?: string
}

/**
 * A store that keeps one file per scheduler. It never fails: a folder or file it cannot use is logged
 * once at warning level, and the agent carries on as with {@link none}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeFile = (options: FileStoreOptions): Effect.Effect<ProjectionStoreShape> =>
  Effect.sync(() => {
    // The folder is prepared on first use, so an agent without schedulers never creates it.
    let folder: Option.Option<string | undefined> = Option.none()
    const pending = new Map<string, Map<string, SentProjection & { readonly order: number }>>()
    const written = new Map<string, number>()
    const carriers = new Map<number, string>()
    let order = 0
    let writeFailing = false

    const resolveFolder = Effect.suspend(() => {
      if (Option.isSome(folder)) return Effect.succeed(folder.value)
      const opened = openFolder(options.home, options.agentKey, options.fallbackHome ?? defaultFallbackHome())
      folder = Option.some(opened.folder)
      if (opened.failures.length === 0) return Effect.succeed(opened.folder)
      const where = opened.folder === undefined ? "nowhere" : `in ${opened.folder}`
      return Effect.as(
        Effect.logWarning(
          `cannot use ${opened.failures.join(", ")} for schedule projection files, so they are kept ${where}. ` +
            "Set Z4J_HOME to a writable folder"
        ),
        opened.folder
      )
    })

    const restore = (scheduler: string) =>
      Effect.gen(function* () {
        const found = yield* resolveFolder
        if (found === undefined) return Option.none()
        const file = path.join(found, fileName(scheduler))
        const outcome = readProjection(file, scheduler)
        if (outcome._tag === "Missing") {
          // A first start, or a scheduler that never had an acknowledged projection: nothing to warn about.
          yield* Effect.logDebug(`no stored schedule projection of ${scheduler} at ${file}`)
          return Option.none()
        }
        if (outcome._tag === "Invalid") {
          yield* Effect.logWarning(
            `ignoring the stored schedule projection ${file}: ${outcome.reason}. Schedules of ${scheduler} ` +
              "removed while the agent was stopped may stay on the brain, and the brain may reject this epoch's snapshots"
          )
          return Option.none()
        }
        yield* Effect.logInfo(
          `restored the ${outcome.stored.schedules.length} schedules of projection ${outcome.stored.sequence} ` +
            `of ${scheduler} (epoch ${outcome.stored.epochNumber}) from ${file}`
        )
        return Option.some(outcome.stored.schedules)
      }).pipe(Effect.annotateLogs("module", "ProjectionStore"))

    const track = (projection: SentProjection) =>
      Effect.sync(() => {
        order += 1
        const ofScheduler = pending.get(projection.scheduler) ?? new Map()
        pending.set(projection.scheduler, ofScheduler)
        ofScheduler.set(projection.digest, { ...projection, order })
        // A brain that withholds acks (a sequence gap) never settles these, so only the newest are kept.
        for (const digest of ofScheduler.keys()) {
          if (ofScheduler.size <= maxPendingPerScheduler) break
          ofScheduler.delete(digest)
        }
      })

    const write = (projection: SentProjection & { readonly order: number }) =>
      Effect.gen(function* () {
        const found = yield* resolveFolder
        if (found === undefined) return
        const file = path.join(found, fileName(projection.scheduler))
        const failure = yield* Effect.try(() => writeProjection(file, projection)).pipe(Effect.flip, Effect.option)
        if (Option.isNone(failure)) {
          writeFailing = false
          yield* Effect.logDebug(`stored schedule projection ${projection.sequence} of ${projection.scheduler}`)
          return
        }
        // One warning per streak of failures: every acknowledged projection would otherwise log one.
        if (!writeFailing) {
          yield* Effect.logWarning(
            `cannot write ${file}; a restart will not send the removed schedules of ${projection.scheduler} again`,
            failure.value
          )
        }
        writeFailing = true
      })

    const acknowledged = (digest: string) =>
      Effect.gen(function* () {
        for (const [scheduler, ofScheduler] of pending) {
          const projection = ofScheduler.get(digest)
          if (projection === undefined) continue
          // Projections up to this one are settled, and an ack that arrives after a newer one's is stale.
          for (const [key, other] of ofScheduler) if (other.order <= projection.order) ofScheduler.delete(key)
          // An empty map would keep `remember` scanning every event body read from the buffer.
          if (ofScheduler.size === 0) pending.delete(scheduler)
          if ((written.get(scheduler) ?? 0) > projection.order) return
          written.set(scheduler, projection.order)
          yield* write(projection)
          return
        }
      }).pipe(Effect.annotateLogs("module", "ProjectionStore"))

    const remember = (entries: ReadonlyArray<{ readonly id: number; readonly body: string }>) =>
      Effect.sync(() => {
        if (pending.size === 0) return
        for (const entry of entries) {
          const digest = digestPattern.exec(entry.body)?.[1]
          if (digest === undefined) continue
          for (const ofScheduler of pending.values()) if (ofScheduler.has(digest)) carriers.set(entry.id, digest)
        }
        for (const id of carriers.keys()) {
          if (carriers.size <= maxCarriers) break
          carriers.delete(id)
        }
      })

    // Runs on every acknowledged batch, so a buffer without carriers costs nothing per event.
    const settle = (ids: ReadonlyArray<number>, acknowledge: boolean) =>
      Effect.suspend(() =>
        carriers.size === 0
          ? Effect.void
          : Effect.forEach(
              ids,
              (id) => {
                const digest = carriers.get(id)
                if (digest === undefined) return Effect.void
                carriers.delete(id)
                return acknowledge ? acknowledged(digest) : Effect.void
              },
              { discard: true }
            )
      )

    const observe = (buffer: EventBufferShape): EventBufferShape => ({
      ...buffer,
      read: (afterId, maxEntries, maxBytes) => Effect.tap(buffer.read(afterId, maxEntries, maxBytes), remember),
      remove: (ids) => Effect.zipRight(buffer.remove(ids), settle(ids, true)),
      discard: (ids, reason) => Effect.zipRight(buffer.discard(ids, reason), settle(ids, false))
    })

    return { restore, track, observe }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerNone: Layer.Layer<ProjectionStore> = Layer.succeed(ProjectionStore, none)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (options: FileStoreOptions): Layer.Layer<ProjectionStore> =>
  Layer.effect(ProjectionStore, makeFile(options))
