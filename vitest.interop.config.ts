import { defineConfig } from "vitest/config"

// The interop suite boots the real z4j brain (Python) once per file, so files run one at a time.
export default defineConfig({
  test: {
    include: ["test/interop/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    pool: "forks",
    fileParallelism: false,
    maxWorkers: 1,
    minWorkers: 1
  }
})
