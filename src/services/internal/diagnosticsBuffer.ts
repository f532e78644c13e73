import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import * as Effect from "effect/Effect"
import type { ProbeResult } from "../Diagnostics.js"
import { errorCode, errorMessage, fail, notApplicable, pass } from "./diagnosticsResult.js"

export interface BufferProbeOptions {
  readonly buffer: "sqlite" | "memory"
  readonly home: string
  /** The home the SQLite buffer falls back to when `home` is not writable. */
  readonly fallback: string
  /** The buffer's folder inside a home: `buffers/<agent key>`, or `buffers` when the key is unknown. */
  readonly subfolder: string
  /** The buffer's size cap; less free space than this is reported. */
  readonly maxBytes: number
}

/** `$TMPDIR/z4j-<uid>` (the user name where there are no uids), as the SQLite buffer names its fallback home. */
export const fallbackFolder = (): string =>
  path.join(os.tmpdir(), `z4j-${process.getuid?.() ?? os.userInfo().username}`)

const probeBytes = 4096

/** Creates, writes, fsyncs and deletes a file in `folder`, creating the folder first as the buffer would. */
const tryWrite = (
  folder: string
): Effect.Effect<{ readonly freeBytes: number | null }, { readonly step: string; readonly error: unknown }> =>
  Effect.tryPromise({
    try: async () => {
      let step = "create the folder"
      const file = path.join(folder, `.z4j-doctor-${process.pid}-${randomBytes(4).toString("hex")}`)
      try {
        await fs.mkdir(folder, { recursive: true, mode: 0o700 })
        step = "create a file"
        const handle = await fs.open(file, "wx", 0o600)
        try {
          step = "write"
          await handle.write(randomBytes(probeBytes))
          step = "fsync"
          await handle.sync()
        } finally {
          await handle.close()
        }
        step = "delete the file"
        await fs.unlink(file)
        step = "read the free space"
        const stats = await fs.statfs(folder)
        return { freeBytes: stats.bavail * stats.bsize }
      } catch (error) {
        await fs.rm(file, { force: true }).catch(() => undefined)
        throw { step, error }
      }
    },
    catch: (failure) => failure as { readonly step: string; readonly error: unknown }
  })

const describeFailure = (folder: string, failure: { readonly step: string; readonly error: unknown }) =>
  `cannot ${failure.step} in ${folder} (${errorCode(failure.error) ?? errorMessage(failure.error)})`

const spaceNote = (freeBytes: number | null, maxBytes: number) =>
  freeBytes !== null && freeBytes < maxBytes
    ? `; only ${Math.floor(freeBytes / 1048576)} MiB free, less than the buffer's cap of ${Math.floor(maxBytes / 1048576)} MiB (Z4J_BUFFER_MAX_BYTES)`
    : ""

export const probeBufferPath = (options: BufferProbeOptions): Effect.Effect<ProbeResult> => {
  if (options.buffer === "memory") {
    return Effect.succeed(
      notApplicable(
        "buffer",
        "not applicable: Z4J_BUFFER=memory keeps events in memory, so they are lost if the process exits"
      )
    )
  }
  const home = path.join(options.home, options.subfolder)
  const fallback = path.join(options.fallback, options.subfolder)
  return tryWrite(home).pipe(
    Effect.map(({ freeBytes }) =>
      pass("buffer", `created, wrote, fsynced and deleted a file in ${home}${spaceNote(freeBytes, options.maxBytes)}`, {
        folder: home,
        fallbackUsed: false,
        freeBytes
      })
    ),
    Effect.catchAll((homeFailure) =>
      tryWrite(fallback).pipe(
        Effect.map(({ freeBytes }) =>
          pass(
            "buffer",
            `${describeFailure(home, homeFailure)}, so the agent will keep its buffer in ${fallback}, which the system may clear at reboot. Fix the permissions of ${options.home} or set Z4J_HOME to a writable folder${spaceNote(freeBytes, options.maxBytes)}`,
            {
              folder: fallback,
              fallbackUsed: true,
              home,
              homeError: errorCode(homeFailure.error) ?? errorMessage(homeFailure.error),
              freeBytes
            }
          )
        ),
        Effect.catchAll((fallbackFailure) =>
          Effect.succeed(
            fail(
              "buffer",
              `${describeFailure(home, homeFailure)}, and ${describeFailure(fallback, fallbackFailure)}. Set Z4J_HOME to a writable folder`,
              {
                folder: null,
                fallbackUsed: false,
                home,
                homeError: errorCode(homeFailure.error) ?? errorMessage(homeFailure.error),
                fallback,
                fallbackError: errorCode(fallbackFailure.error) ?? errorMessage(fallbackFailure.error)
              }
            )
          )
        )
      )
    )
  )
}
