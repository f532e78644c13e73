import { defineConfig } from "vitest/config"

// One brain (a Python process) serves the whole run, started by the global setup. Files run one at a
// time because they share it, and because a few tests stop a brain of their own.
export default defineConfig({
  test: {
    include: ["test/interop/**/*.test.ts"],
    globalSetup: ["./interop/globalSetup.ts"],
    testTimeout: 120_000,
    // A cold run installs the brain into a virtualenv first, which takes minutes on a slow network.
    hookTimeout: 900_000,
    teardownTimeout: 60_000,
    pool: "forks",
    fileParallelism: false,
    maxWorkers: 1,
    minWorkers: 1
  }
})
