import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterEach, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { probeBufferPath } from "../../src/services/internal/diagnosticsBuffer.js"

const folders: Array<string> = []
const tempFolder = () => {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), "z4j-buffer-test-"))
  folders.push(folder)
  return folder
}
afterEach(() => {
  for (const folder of folders.splice(0)) fs.rmSync(folder, { recursive: true, force: true })
})

/** Returns a path under a regular file, which no one can create as a folder, not even root. */
const unwritable = () => {
  const file = path.join(tempFolder(), "file")
  fs.writeFileSync(file, "")
  return path.join(file, "home")
}

const maxBytes = 256 * 1024 * 1024

describe("probeBufferPath", () => {
  it.live("writable home passes and leaves nothing", () =>
    Effect.gen(function* () {
      const home = path.join(tempFolder(), "nested", "home")
      const result = yield* probeBufferPath({
        buffer: "sqlite",
        home,
        fallback: unwritable(),
        subfolder: "buffers/key",
        maxBytes
      })
      expect(result.ok).toBe(true)
      const folder = path.join(home, "buffers", "key")
      expect(result.details.folder).toBe(folder)
      expect(result.details.fallbackUsed).toBe(false)
      expect(typeof result.details.freeBytes).toBe("number")
      expect(fs.readdirSync(folder)).toEqual([])
      expect(fs.statSync(folder).mode & 0o777).toBe(0o700)
    })
  )

  it.live("unwritable home reports the fallback", () =>
    Effect.gen(function* () {
      const home = unwritable()
      const fallback = tempFolder()
      const result = yield* probeBufferPath({ buffer: "sqlite", home, fallback, subfolder: "buffers", maxBytes })
      expect(result.ok).toBe(true)
      expect(result.details.fallbackUsed).toBe(true)
      expect(result.details.folder).toBe(path.join(fallback, "buffers"))
      expect(result.details.homeError).toBe("ENOTDIR")
      expect(result.message).toContain(`the agent will keep its buffer in ${path.join(fallback, "buffers")}`)
      expect(result.message).toContain("set Z4J_HOME")
    })
  )

  it.live("no writable folder fails", () =>
    Effect.gen(function* () {
      const result = yield* probeBufferPath({
        buffer: "sqlite",
        home: unwritable(),
        fallback: unwritable(),
        subfolder: "buffers",
        maxBytes
      })
      expect(result.ok).toBe(false)
      expect(result.details.folder).toBe(null)
      expect(result.message).toContain("Set Z4J_HOME to a writable folder")
    })
  )

  it.live("small disk is mentioned", () =>
    Effect.gen(function* () {
      const home = tempFolder()
      const result = yield* probeBufferPath({
        buffer: "sqlite",
        home,
        fallback: home,
        subfolder: "buffers",
        maxBytes: Number.MAX_SAFE_INTEGER
      })
      expect(result.ok).toBe(true)
      expect(result.message).toContain("Z4J_BUFFER_MAX_BYTES")
    })
  )

  it.live("memory buffer is not applicable", () =>
    Effect.gen(function* () {
      const result = yield* probeBufferPath({
        buffer: "memory",
        home: unwritable(),
        fallback: unwritable(),
        subfolder: "buffers",
        maxBytes
      })
      expect(result.ok).toBe(true)
      expect(result.details.skipped).toBe(true)
    })
  )
})
