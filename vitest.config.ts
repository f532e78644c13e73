import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/interop/**", "node_modules/**"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // The machines that run this suite have two cores; more workers only add contention on sockets and Redis.
    maxWorkers: 2,
    minWorkers: 1
  }
})
