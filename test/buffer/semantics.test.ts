import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import * as fc from "fast-check"
import type { BufferEntry } from "../../src/services/EventBuffer.js"
import { backends, bodies, type LogLine, seqs, withCapturedLogs } from "./support.js"

/** Bodies of exactly `bytes` UTF-8 bytes. */
const sized = (bytes: number, tag: string) => `{"t":"${tag}${"x".repeat(bytes - tag.length - 8)}"}`

for (const backend of backends) {
  describe(`${backend.name} buffer`, () => {
    it.scoped("append and read in order", () =>
      Effect.gen(function* () {
        const buffer = yield* backend.make()
        yield* TestClock.adjust(1234)
        yield* buffer.append(['{"k":"a"}', '{"k":"é"}'])
        yield* buffer.append(['{"k":"c"}'])

        const entries = yield* buffer.read(0, 500, 1 << 20)
        expect(entries.map((entry) => entry.body)).toEqual(['{"k":"a"}', '{"k":"é"}', '{"k":"c"}'])
        expect(entries.map((entry) => entry.bytes)).toEqual([9, 10, 9])
        expect(entries.map((entry) => entry.enqueuedAtMillis)).toEqual([1234, 1234, 1234])
        const ids = entries.map((entry) => entry.id)
        expect(ids).toEqual([...ids].sort((a, b) => a - b))
        expect(new Set(ids).size).toBe(3)
      })
    )

    it.scoped("append of nothing stores nothing", () =>
      Effect.gen(function* () {
        const buffer = yield* backend.make()
        yield* buffer.append([])
        expect((yield* buffer.stats).depth).toBe(0)
        expect(yield* buffer.read(0, 10, 1000)).toEqual([])
      })
    )

    it.scoped("read after a cursor", () =>
      Effect.gen(function* () {
        const buffer = yield* backend.make()
        yield* buffer.append(bodies(1, 10))
        const all = yield* buffer.read(0, 500, 1 << 20)

        const after = yield* buffer.read(all[3]!.id, 500, 1 << 20)
        expect(seqs(after)).toEqual([5, 6, 7, 8, 9, 10])
        expect(yield* buffer.read(all[9]!.id, 500, 1 << 20)).toEqual([])
      })
    )

    // Each case appends bodies of the given sizes and reads once with the limits.
    const limitCases: ReadonlyArray<{
      readonly name: string
      readonly sizes: ReadonlyArray<number>
      readonly maxEntries: number
      readonly maxBytes: number
      readonly expected: ReadonlyArray<number>
    }> = [
      { name: "maxEntries", sizes: [20, 20, 20, 20], maxEntries: 3, maxBytes: 1000, expected: [0, 1, 2] },
      { name: "maxBytes exact fit", sizes: [20, 20, 20, 20], maxEntries: 10, maxBytes: 60, expected: [0, 1, 2] },
      { name: "maxBytes one short", sizes: [20, 20, 20, 20], maxEntries: 10, maxBytes: 59, expected: [0, 1] },
      { name: "oversized entry alone", sizes: [100, 20, 20], maxEntries: 10, maxBytes: 50, expected: [0] },
      { name: "stops before oversized", sizes: [20, 100, 20], maxEntries: 10, maxBytes: 50, expected: [0] },
      { name: "zero maxBytes", sizes: [20, 20], maxEntries: 10, maxBytes: 0, expected: [0] },
      { name: "zero maxEntries", sizes: [20, 20], maxEntries: 0, maxBytes: 1000, expected: [] }
    ]
    for (const testCase of limitCases) {
      it.scoped(`read limit: ${testCase.name}`, () =>
        Effect.gen(function* () {
          const buffer = yield* backend.make()
          const appended = testCase.sizes.map((size, index) => sized(size, `e${index}`))
          yield* buffer.append(appended)

          const entries = yield* buffer.read(0, testCase.maxEntries, testCase.maxBytes)
          expect(entries.map((entry) => entry.body)).toEqual(testCase.expected.map((index) => appended[index]))
        })
      )
    }

    it.scoped("oversized entry read alone after cursor", () =>
      Effect.gen(function* () {
        const buffer = yield* backend.make()
        yield* buffer.append([sized(20, "a"), sized(100, "big"), sized(20, "c")])
        const first = yield* buffer.read(0, 10, 50)
        expect(first.length).toBe(1)

        const second = yield* buffer.read(first[0]!.id, 10, 50)
        expect(second.map((entry) => entry.bytes)).toEqual([100])
        const third = yield* buffer.read(second[0]!.id, 10, 50)
        expect(third.map((entry) => entry.body)).toEqual([sized(20, "c")])
      })
    )

    it.scoped("remove deletes and ignores unknown ids", () =>
      Effect.gen(function* () {
        const buffer = yield* backend.make()
        yield* buffer.append(bodies(1, 6))
        const ids = (yield* buffer.read(0, 500, 1 << 20)).map((entry) => entry.id)

        yield* buffer.remove([ids[0]!, ids[1]!, 999_999])
        yield* buffer.remove([ids[3]!, ids[5]!])
        yield* buffer.remove([ids[0]!])

        expect(seqs(yield* buffer.read(0, 500, 1 << 20))).toEqual([3, 5])
        const stats = yield* buffer.stats
        expect(stats.depth).toBe(2)
        expect(stats.discardedTotal).toBe(0)
      })
    )

    it.scoped("discard counts only stored ids", () =>
      Effect.gen(function* () {
        const buffer = yield* backend.make()
        yield* buffer.append(bodies(1, 4))
        const ids = (yield* buffer.read(0, 500, 1 << 20)).map((entry) => entry.id)

        yield* buffer.discard([ids[1]!, 424_242], "too large")
        yield* buffer.discard([ids[1]!], "too large")

        const stats = yield* buffer.stats
        expect(stats.discardedTotal).toBe(1)
        expect(stats.depth).toBe(3)
        expect(seqs(yield* buffer.read(0, 500, 1 << 20))).toEqual([1, 3, 4])
      })
    )

    it.scoped("ids are never reused", () =>
      Effect.gen(function* () {
        const buffer = yield* backend.make()
        yield* buffer.append(bodies(1, 3))
        const first = yield* buffer.read(0, 500, 1 << 20)
        yield* buffer.remove(first.map((entry) => entry.id))

        yield* buffer.append(bodies(4, 4))
        const second = yield* buffer.read(0, 500, 1 << 20)
        expect(second[0]!.id).toBeGreaterThan(first[2]!.id)
      })
    )

    it.scoped("maxEvents evicts the oldest", () =>
      Effect.gen(function* () {
        const buffer = yield* backend.make({ maxEvents: 5 })
        yield* buffer.append(bodies(1, 4))
        yield* buffer.append(bodies(5, 8))
        yield* buffer.append(bodies(9, 20))

        expect(seqs(yield* buffer.read(0, 500, 1 << 20))).toEqual([16, 17, 18, 19, 20])
        const stats = yield* buffer.stats
        expect(stats.droppedTotal).toBe(15)
        expect(stats.depth).toBe(5)
      })
    )

    it.scoped("maxBytes evicts the oldest", () =>
      Effect.gen(function* () {
        const buffer = yield* backend.make({ maxBytes: 100 })
        yield* buffer.append([sized(40, "a"), sized(40, "b")])
        yield* buffer.append([sized(30, "c")])

        const entries = yield* buffer.read(0, 500, 1 << 20)
        expect(entries.map((entry) => entry.body)).toEqual([sized(40, "b"), sized(30, "c")])
        const stats = yield* buffer.stats
        expect(stats.droppedTotal).toBe(1)
        expect(stats.bytes).toBe(70)
      })
    )

    it.scoped("entry larger than maxBytes evicts all", () =>
      Effect.gen(function* () {
        const buffer = yield* backend.make({ maxBytes: 50 })
        yield* buffer.append([sized(20, "a"), sized(60, "b")])

        expect(yield* buffer.read(0, 500, 1 << 20)).toEqual([])
        const stats = yield* buffer.stats
        expect(stats.droppedTotal).toBe(2)
        expect(stats.bytes).toBe(0)
      })
    )

    it.scoped("stats track depth, bytes and age", () =>
      Effect.gen(function* () {
        const buffer = yield* backend.make()
        const empty = yield* buffer.stats
        expect(empty).toEqual({
          depth: 0,
          bytes: 0,
          oldestEnqueuedAtMillis: null,
          droppedTotal: 0,
          discardedTotal: 0,
          storageFailuresTotal: 0,
          durable: backend.durable
        })

        yield* TestClock.adjust(100)
        yield* buffer.append([sized(20, "a")])
        yield* TestClock.adjust(100)
        yield* buffer.append([sized(30, "b")])
        const entries = yield* buffer.read(0, 500, 1 << 20)
        const full = yield* buffer.stats
        expect(full.depth).toBe(2)
        expect(full.bytes).toBe(50)
        expect(full.oldestEnqueuedAtMillis).toBe(100)

        yield* buffer.remove([entries[0]!.id])
        const after = yield* buffer.stats
        expect(after.depth).toBe(1)
        expect(after.bytes).toBe(30)
        expect(after.oldestEnqueuedAtMillis).toBe(200)

        yield* buffer.remove([entries[1]!.id])
        expect((yield* buffer.stats).oldestEnqueuedAtMillis).toBeNull()
      })
    )

    it.scoped("drops log once per streak", () =>
      Effect.gen(function* () {
        const lines: Array<LogLine> = []
        yield* withCapturedLogs(
          Effect.gen(function* () {
            const buffer = yield* backend.make({ maxEvents: 3 })
            yield* buffer.append(bodies(1, 3))
            yield* buffer.append(bodies(4, 5))
            yield* buffer.append(bodies(6, 7))
            yield* buffer.append(bodies(8, 9))
            const entries = yield* buffer.read(0, 500, 1 << 20)
            yield* buffer.remove(entries.map((entry) => entry.id))
            yield* buffer.append(bodies(10, 10))
            yield* buffer.append(bodies(11, 14))
          }),
          lines
        )

        const drops = lines.filter((line) => line.message.includes("dropp"))
        expect(drops.map((line) => line.level)).toEqual(["WARN", "INFO", "WARN"])
        expect(drops[0]!.message).toContain("maxEvents=3")
        expect(drops[1]!.message).toContain("6 oldest events were dropped")
      })
    )

    // Every sequence of operations leaves the buffer equal to a plain array model of it.
    it.effect.prop(
      "matches a model under random operations",
      [
        fc.array(
          fc.oneof(
            fc.record({ op: fc.constant("append" as const), count: fc.integer({ min: 0, max: 6 }) }),
            fc.record({ op: fc.constant("remove" as const), picks: fc.array(fc.nat(), { maxLength: 4 }) }),
            fc.record({
              op: fc.constant("read" as const),
              after: fc.nat(),
              maxEntries: fc.integer({ min: 0, max: 5 }),
              maxBytes: fc.integer({ min: 0, max: 80 })
            })
          ),
          { maxLength: 25 }
        )
      ],
      ([operations]) =>
        Effect.scoped(
          Effect.gen(function* () {
            const buffer = yield* backend.make({ maxEvents: 8 })
            let model: Array<BufferEntry> = []
            let seq = 0
            for (const operation of operations) {
              if (operation.op === "append") {
                const batch = bodies(seq + 1, seq + operation.count, seq % 3)
                seq += operation.count
                yield* buffer.append(batch)
                const stored = yield* buffer.read(model.at(-1)?.id ?? 0, 500, 1 << 20)
                model = [...model, ...stored].slice(-8)
              } else if (operation.op === "remove") {
                const ids = operation.picks.map((pick) => model[pick % Math.max(model.length, 1)]?.id ?? -1)
                yield* buffer.remove(ids)
                model = model.filter((entry) => !ids.includes(entry.id))
              } else {
                const afterId = model[operation.after % Math.max(model.length, 1)]?.id ?? 0
                const expected: Array<BufferEntry> = []
                let total = 0
                for (const entry of model) {
                  if (entry.id <= afterId) continue
                  if (expected.length >= operation.maxEntries) break
                  if (expected.length > 0 && total + entry.bytes > operation.maxBytes) break
                  expected.push(entry)
                  total += entry.bytes
                }
                expect(yield* buffer.read(afterId, operation.maxEntries, operation.maxBytes)).toEqual(expected)
              }
            }
            expect(yield* buffer.read(0, 500, 1 << 20)).toEqual(model)
            expect((yield* buffer.stats).depth).toBe(model.length)
          })
        ),
      { fastCheck: { numRuns: 40 } }
    )
  })
}
