import { describe, expect, it } from "@effect/vitest"
import { runSoak, type SoakResult } from "../../bench/soak.js"

// The short version of the soak bench: the ten-minute run and its figures are in BENCHMARKS.md.
describe("short soak", () => {
  it("cuts and restarts lose no event", { timeout: 120_000 }, async () => {
    const result: SoakResult = await runSoak({ seconds: 20, rate: 500, cutEverySeconds: 4, sampleEverySeconds: 5 })

    expect(result.emitted).toBeGreaterThan(5_000)
    expect(result.cuts).toBeGreaterThanOrEqual(2)
    expect(result.restarts).toBeGreaterThanOrEqual(2)
    // The last fault may land as the run stops, before the agent reconnects.
    expect(result.connects).toBeGreaterThanOrEqual(result.cuts + result.restarts)
    expect(result.dropped).toBe(0)
    expect(result.lost).toBe(0)
    expect(result.received).toBe(result.emitted)
    expect(result.finalDepth).toBe(0)
    expect(result.maxStallMillis).toBeLessThan(1_000)
  })
})
