import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { float, renderCanonical, ScheduleProjection } from "../../src/protocol/index.js"

// Expected bytes and digests come from the brain's own functions: fixtures/schedule-projection.py
// writes them with the brain's interpreter, from the same inputs as below.
const fixture = JSON.parse(readFileSync(new URL("./fixtures/schedule-projection.json", import.meta.url), "utf8")) as {
  readonly source_scope: string
  readonly cases: ReadonlyArray<{ readonly name: string; readonly canonical: string; readonly digest: string }>
}

const expected = (name: string) => fixture.cases.find((entry) => entry.name === name)!

const authority: ScheduleProjection.StreamAuthority = {
  owner: "bullmq",
  sourceScope: ScheduleProjection.sourceScope("bullmq"),
  streamId: "3f0c2d1e-8a4b-4c6d-9e7f-0a1b2c3d4e5f",
  epochUuid: "9d8c7b6a-5f4e-4d3c-8b2a-190817263544",
  epochNumber: 7,
  adapterInstanceId: "5a6b7c8d-0000-4111-8222-933344455566",
  stableSource: true
}

const activation = {
  scheduler: "bullmq",
  owner: "bullmq",
  source_scope: fixture.source_scope,
  stream_id: authority.streamId,
  epoch_uuid: authority.epochUuid,
  epoch_number: 7,
  adapter_instance_id: authority.adapterInstanceId,
  stable_source: true,
  registry_owner_id: "0f0f0f0f-0000-4000-8000-000000000000",
  session_generation: "1"
}

const errorOf = (run: () => unknown) => {
  try {
    run()
  } catch (error) {
    return error as ScheduleProjection.ScheduleProjectionError
  }
  throw new Error("expected a ScheduleProjectionError")
}

describe("ScheduleProjection", () => {
  it("sourceScope matches the brain's whole-owner scope", () => {
    expect(ScheduleProjection.sourceScope("bullmq")).toBe(fixture.source_scope)
    expect(errorOf(() => ScheduleProjection.sourceScope("z4j-scheduler")).reason).toBe("bad_activation")
  })

  it("cron schedule matches brain bytes", () => {
    const body = ScheduleProjection.projectionBody({
      authority,
      sequence: 1,
      kind: "snapshot",
      complete: true,
      schedules: [
        {
          name: "emails:nightly-digest",
          task_name: "digest",
          kind: "cron",
          expression: "0 3 * * *",
          timezone: "UTC",
          queue: "emails",
          args: [{ kind: "daily" }],
          kwargs: {},
          is_enabled: true,
          last_run_at: null,
          next_run_at: "2026-12-05T03:00:00.000Z",
          total_runs: 0,
          external_id: "nightly-digest",
          source_key: "emails:nightly-digest",
          engine: "bullmq"
        }
      ]
    })
    expect(renderCanonical(body)).toBe(expected("one cron schedule").canonical)
    expect(ScheduleProjection.payloadDigest(body)).toBe(expected("one cron schedule").digest)
    expect(ScheduleProjection.projectionEventData(body)).toEqual({
      external_projection: body,
      payload_digest: expected("one cron schedule").digest
    })
  })

  it("normalization edge cases match brain", () => {
    const body = ScheduleProjection.projectionBody({
      authority,
      sequence: 42,
      kind: "snapshot",
      complete: true,
      schedules: [
        {
          name: "  b:zeta ",
          task_name: " t ",
          queue: null,
          args: [1.5, float(1e21), 1e-7, float(-0), 100000000000000000000, "é😀"],
          kwargs: { z: 1, a: { "\uffff": 2, "😀": 3, B: [true, null] } },
          next_run_at: "2026-06-01T12:30:45.123456+02:00",
          last_run_at: "2026-01-01T00:00:00-05:30",
          total_runs: 3,
          is_enabled: false,
          kind: "interval",
          expression: "60000ms",
          timezone: "Europe/Paris",
          engine: "bullmq"
        },
        { name: "a:😀", task_name: "emoji", source_key: "\uffff-key" },
        { name: "a:é", task_name: "accent", external_id: "x-1" }
      ]
    })
    expect(renderCanonical(body)).toBe(expected("normalization edges").canonical)
    expect(ScheduleProjection.payloadDigest(body)).toBe(expected("normalization edges").digest)
  })

  it("deleted keys match brain", () => {
    const body = ScheduleProjection.projectionBody({
      authority: { ...authority },
      sequence: 2,
      kind: "deleted",
      complete: false,
      schedules: [],
      deletedSourceKeys: [" q:2", "q:1", "q:1", "", "😀", "\uffff"]
    })
    expect(renderCanonical(body)).toBe(expected("empty snapshot with deletions").canonical)
    expect(ScheduleProjection.payloadDigest(body)).toBe(expected("empty snapshot with deletions").digest)
  })

  it("projectionBody rejects invalid rows", () => {
    const row = { name: "q:a", task_name: "t" }
    const build =
      (schedules: ReadonlyArray<ScheduleProjection.ScheduleRow>, sequence = 1) =>
      () =>
        ScheduleProjection.projectionBody({ authority, sequence, kind: "snapshot", complete: true, schedules })
    expect(errorOf(build([row, { ...row, name: " q:a" }])).reason).toBe("duplicate_source_key")
    expect(errorOf(build([{ ...row, task_name: " " }])).reason).toBe("bad_schedule")
    expect(errorOf(build([{ ...row, total_runs: -1 }])).reason).toBe("bad_schedule")
    expect(errorOf(build([{ ...row, next_run_at: "2026-12-05T03:00:00" }])).reason).toBe("bad_schedule")
    expect(errorOf(build([{ ...row, next_run_at: "2026-02-30T03:00:00Z" }])).reason).toBe("bad_schedule")
    expect(errorOf(build([row], 0)).reason).toBe("bad_activation")
  })

  it("normalizeTimestamp writes UTC with microseconds", () => {
    expect(ScheduleProjection.normalizeTimestamp("2026-12-31T23:30:00.5-01:00", "t")).toBe(
      "2027-01-01T00:30:00.500000+00:00"
    )
    expect(ScheduleProjection.normalizeTimestamp("2026-01-01T00:00Z", "t")).toBe("2026-01-01T00:00:00.000000+00:00")
  })

  it("decodeActivation reads the brain's activation parameters", () => {
    expect(ScheduleProjection.decodeActivation(activation, "bullmq")).toEqual(authority)
    expect(
      ScheduleProjection.decodeActivation({ ...activation, stream_id: authority.streamId.toUpperCase() }, "bullmq")
        .streamId
    ).toBe(authority.streamId)
  })

  it("decodeActivation rejects invalid parameters", () => {
    const reasonOf = (parameters: unknown, owner = "bullmq") =>
      errorOf(() => ScheduleProjection.decodeActivation(parameters, owner)).detail
    expect(reasonOf(activation, "other")).toContain("parameters.owner")
    expect(reasonOf({ ...activation, source_scope: "{}" })).toContain("source_scope")
    expect(reasonOf({ ...activation, stream_id: "not-a-uuid" })).toContain("stream_id")
    expect(reasonOf({ ...activation, epoch_number: 0 })).toContain("epoch_number")
    expect(reasonOf({ ...activation, epoch_number: 1.5 })).toContain("epoch_number")
    expect(reasonOf({ ...activation, adapter_instance_id: "" })).toContain("adapter_instance_id")
    expect(reasonOf({ ...activation, stable_source: "yes" })).toContain("stable_source")
    expect(reasonOf(null)).toContain("not an object")
  })
})
