import { describe, expect, it } from "@effect/vitest"
import { runSoak, type SoakResult } from "../../bench/soak.js"

// The short version of the soak bench: the ten-minute run and its figures are in BENCHMARKS.md.
describe("short soak", () => {
  it("cuts every 4 s lose no event", { timeout: 120_000 }, async () => {
    const result: SoakResult = await runSoak({ seconds: 20, rate: 500, cutEverySeconds: 4, sampleEverySeconds: 5 })

    expect(result.emitted).toBeGreaterThan(5_000)
    expect(result.cuts).toBeGreaterThanOrEqual(4)
    expect(result.connects).toBeGreaterThan(result.cuts)
    expect(result.dropped).toBe(0)
    expect(result.lost).toBe(0)
    expect(result.received).toBe(result.emitted)
    expect(result.finalDepth).toBe(0)
    expect(result.maxStallMillis).toBeLessThan(1_000)
  })
})
