import { createHash, randomUUID } from "node:crypto"
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { EngineAdapter, ScheduleEntry } from "../../src/engines/EngineAdapter.js"
import { renderCanonical, ScheduleProjection } from "../../src/protocol/index.js"
import { Agent } from "../../src/services/Agent.js"
import * as TestBrain from "../../src/testing/TestBrain.js"
import { agentLayer, captureLogs, recordingAdapter } from "../support/agent.js"

const withBrain = <A, E>(use: (brain: TestBrain.TestBrainShape) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.promise(() => TestBrain.start()),
    use,
    (brain) => Effect.promise(() => brain.stop())
  )

const waitFor = <A>(brain: TestBrain.TestBrainShape, probe: () => A | undefined | false, timeoutMillis = 10_000) =>
  Effect.promise(() => brain.waitFor(probe, timeoutMillis))

const entry = (id: string): ScheduleEntry => ({
  name: `reports:${id}`,
  task_name: `reports.${id}`,
  kind: "cron",
  expression: "0 3 * * *",
  timezone: "UTC",
  queue: "reports",
  args: [{ id }],
  kwargs: {},
  is_enabled: true,
  last_run_at: null,
  next_run_at: "2026-12-05T03:00:00.000Z",
  total_runs: 0,
  external_id: id
})

/** Builds an adapter of engine "jobs" whose scheduler "jobs-cron" lists the entries of `schedules`. */
const schedulingAdapter = () => {
  const schedules: Array<ScheduleEntry> = [entry("a"), entry("b")]
  const base = recordingAdapter({ engine: "jobs", capabilities: ["cancel_task"] }).adapter
  const adapter: EngineAdapter = {
    ...base,
    scheduler: {
      name: "jobs-cron",
      capabilities: ["list"],
      snapshot: Effect.sync(() => [...schedules]),
      execute: () => Effect.succeed(null)
    }
  }
  return { adapter, schedules }
}

const withAdapter = (brain: TestBrain.TestBrainShape, adapter: EngineAdapter, home?: string) =>
  Layer.effectDiscard(Effect.flatMap(Agent, (agent) => agent.attachEngine(adapter))).pipe(
    Layer.provideMerge(agentLayer(brain, home === undefined ? {} : { buffer: "sqlite", home }))
  )

/** Sends `schedule.external.activate` with a delivery claim, as z4j 1.13 does, and returns its id. */
const activate = (brain: TestBrain.TestBrainShape, epochNumber: number) => {
  const id = randomUUID()
  const parameters = {
    scheduler: "jobs-cron",
    owner: "jobs-cron",
    source_scope: ScheduleProjection.sourceScope("jobs-cron"),
    stream_id: "6f1d2c3b-4a59-4e7d-8c6b-5a4938271605",
    epoch_uuid: randomUUID(),
    epoch_number: epochNumber,
    adapter_instance_id: randomUUID(),
    stable_source: true,
    registry_owner_id: randomUUID(),
    session_generation: String(epochNumber)
  }
  brain.sendSigned("command", id, {
    action: ScheduleProjection.activateAction,
    target: { type: "scheduler", id: "jobs-cron", scheduler: "jobs-cron" },
    parameters,
    timeout_seconds: 60,
    issued_by: null,
    delivery_claim_token: `claim-${epochNumber}`
  })
  return { id, parameters }
}

const projections = (brain: TestBrain.TestBrainShape, epochUuid: string) =>
  brain.events.filter(
    (event) =>
      event.kind === "schedule.snapshot" &&
      (event.data.external_projection as { epoch_uuid?: string } | undefined)?.epoch_uuid === epochUuid
  )

interface Body {
  readonly sequence: number
  readonly schedules: ReadonlyArray<{ readonly source_key: string; readonly engine: string }>
}

describe("schedule streams", () => {
  it.live("hello requests a stream per scheduler", () =>
    withBrain((brain) => {
      const { adapter } = schedulingAdapter()
      return Effect.gen(function* () {
        const hello = yield* waitFor(brain, () => brain.hellos.at(-1))
        const payload = hello.payload as Record<string, ReadonlyArray<string> & Record<string, unknown>>
        expect(payload.runtime_features).toEqual([ScheduleProjection.runtimeFeature])
        expect(payload.schedulers).toEqual(["jobs-cron"])
        expect((payload.capabilities as Record<string, Array<string>>)["jobs-cron"]).toEqual([
          ScheduleProjection.stableSnapshotCapability,
          "list"
        ])
      }).pipe(Effect.provide(withAdapter(brain, adapter)))
    })
  )

  it.live("activation sends projection 1 only", () =>
    withBrain((brain) => {
      const { adapter } = schedulingAdapter()
      return Effect.gen(function* () {
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        const { id, parameters } = activate(brain, 3)
        const result = yield* waitFor(brain, () => brain.commandResult(id))
        expect(result).toMatchObject({ status: "success", result: { sequence: 1, schedules: 2 } })
        const [event] = yield* waitFor(brain, () => {
          const found = projections(brain, parameters.epoch_uuid)
          return found.length > 0 ? found : undefined
        })
        expect(event!.engine).toBe("jobs-cron")
        const body = event!.data.external_projection as Record<string, unknown> & Body
        expect(body).toMatchObject({
          stream_id: parameters.stream_id,
          epoch_number: 3,
          sequence: 1,
          kind: "snapshot",
          owner: "jobs-cron",
          adapter_instance_id: parameters.adapter_instance_id,
          complete: true,
          stable_source: true
        })
        expect(body.schedules.map((row) => [row.source_key, row.engine])).toEqual([
          ["reports:a", "jobs"],
          ["reports:b", "jobs"]
        ])
        // The digest is the SHA-256 of the canonical JSON of the body the brain received.
        expect(event!.data.payload_digest).toBe(
          createHash("sha256")
            .update(renderCanonical(body as never))
            .digest("hex")
        )

        // The ack and the result echo the delivery claim.
        const acks = brain.frames.filter((frame) => frame.type === "command_ack" && frame.id === id)
        expect(acks[0]!.payload).toEqual({ delivery_claim_token: "claim-3" })
        const results = brain.frames.filter((frame) => frame.type === "command_result" && frame.id === id)
        expect(results[0]!.payload.delivery_claim_token).toBe("claim-3")

        // The boot snapshot waited for the activation and sent nothing else.
        yield* Effect.sleep("3500 millis")
        expect(brain.events.filter((received) => received.kind === "schedule.snapshot")).toHaveLength(1)
      }).pipe(Effect.provide(withAdapter(brain, adapter)))
    })
  )

  it.live("no activation: legacy boot snapshot", () =>
    withBrain((brain) => {
      const { adapter } = schedulingAdapter()
      return Effect.gen(function* () {
        const snapshot = yield* waitFor(brain, () => brain.events.find((event) => event.kind === "schedule.snapshot"))
        expect(snapshot.engine).toBe("jobs")
        expect(snapshot.data.scheduler).toBe("jobs-cron")
        expect(snapshot.data.reason).toBe("boot")
        expect((snapshot.data.schedules as Array<{ name: string }>).map((row) => row.name)).toEqual([
          "reports:a",
          "reports:b"
        ])
        expect(snapshot.data.external_projection).toBeUndefined()
      }).pipe(Effect.provide(withAdapter(brain, adapter)))
    })
  )

  it.live("reconnect resends removed schedules, then deletes", () =>
    withBrain((brain) => {
      const { adapter, schedules } = schedulingAdapter()
      return Effect.gen(function* () {
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        const first = activate(brain, 1)
        yield* waitFor(brain, () => brain.commandResult(first.id))

        schedules.splice(1, 1, entry("c"))
        brain.dropAll()
        yield* waitFor(brain, () => brain.connectedSessions() === 1 && brain.hellos.length === 2)
        const second = activate(brain, 2)
        const result = yield* waitFor(brain, () => brain.commandResult(second.id))
        expect(result).toMatchObject({ status: "success", result: { sequence: 2, schedules: 2 } })
        const bodies = yield* waitFor(brain, () => {
          const found = projections(brain, second.parameters.epoch_uuid)
          return found.length === 2 ? found.map((event) => event.data.external_projection as Body) : undefined
        })
        const keys = (body: Body) => body.schedules.map((row) => row.source_key)
        expect(bodies.map((body) => body.sequence)).toEqual([1, 2])
        expect(keys(bodies[0]!)).toEqual(["reports:a", "reports:b", "reports:c"])
        expect(keys(bodies[1]!)).toEqual(["reports:a", "reports:c"])
      }).pipe(Effect.provide(withAdapter(brain, adapter)))
    })
  )

  it.live("rejected legacy snapshot, then activation", () =>
    withBrain((brain) => {
      const { adapter } = schedulingAdapter()
      brain.faults.withholdAcks = true
      return Effect.gen(function* () {
        const agent = yield* Agent
        const legacy = yield* waitFor(brain, () => brain.events.find((event) => event.kind === "schedule.snapshot"))
        // The frame z4j 1.13 sends for a batch with a legacy schedule event.
        brain.sendSigned("error", `err_${legacy.batchId}`, {
          code: "scheduler_upgrade_required",
          message: "schedule projection requires a current Boundary-D scheduler adapter",
          fatal: true
        })
        const refused = yield* Effect.promise(() =>
          brain.waitFor(() =>
            Effect.runSync(
              Effect.map(agent.status, (status) => status.connection.scheduleSnapshotsRefused ?? undefined)
            )
          )
        )
        expect(refused).toContain("scheduler_upgrade_required")
        const status = yield* agent.status
        expect(status.buffer.discardedTotal).toBe(1)
        expect(status.dispatcher.inFlightBatches).toBe(0)

        const { id, parameters } = activate(brain, 5)
        expect((yield* waitFor(brain, () => brain.commandResult(id))).status).toBe("success")
        // The command result may arrive before the batch that carries the projection.
        yield* waitFor(brain, () => projections(brain, parameters.epoch_uuid).length > 0)
        expect(projections(brain, parameters.epoch_uuid)).toHaveLength(1)
      }).pipe(Effect.provide(withAdapter(brain, adapter)))
    })
  )

  it.live("activation for another owner fails", () =>
    withBrain((brain) => {
      const { adapter } = schedulingAdapter()
      return Effect.gen(function* () {
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        const id = randomUUID()
        brain.sendSigned("command", id, {
          action: ScheduleProjection.activateAction,
          target: { type: "scheduler", id: "jobs-cron", scheduler: "jobs-cron" },
          parameters: { scheduler: "jobs-cron", owner: "other", epoch_number: 1 },
          timeout_seconds: 60,
          issued_by: null
        })
        const result = yield* waitFor(brain, () => brain.commandResult(id))
        expect(result.status).toBe("failed")
        expect(result.error).toContain("parameters.owner")
      }).pipe(Effect.provide(withAdapter(brain, adapter)))
    })
  )

  it.live("control command fails as not implemented", () =>
    withBrain((brain) => {
      const { adapter } = schedulingAdapter()
      return Effect.gen(function* () {
        yield* waitFor(brain, () => brain.connectedSessions() === 1)
        const id = brain.sendCommand({
          action: ScheduleProjection.controlAction,
          target: { type: "schedule", id: randomUUID(), scheduler: "jobs-cron" },
          parameters: { scheduler: "jobs-cron", source_key: "reports:a" }
        })
        const result = yield* waitFor(brain, () => brain.commandResult(id))
        expect(result.status).toBe("failed")
        expect(result.error).toContain("not implemented by this agent")
      }).pipe(Effect.provide(withAdapter(brain, adapter)))
    })
  )
})

/** A temporary agent home, removed when the effect ends. */
const withHome = <A, E>(use: (home: string) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "z4j-projection-file-"))),
    use,
    (home) => Effect.sync(() => rmSync(home, { recursive: true, force: true }))
  )

/** Lists the projection files under `home`: `<home>/buffers/<agentKey>/schedules-*.json`. */
const projectionFiles = (home: string) => {
  const buffers = join(home, "buffers")
  let agents: Array<string>
  try {
    agents = readdirSync(buffers)
  } catch {
    return []
  }
  return agents.flatMap((agent) =>
    readdirSync(join(buffers, agent))
      .filter((name) => name.startsWith("schedules-") && name.endsWith(".json"))
      .map((name) => join(buffers, agent, name))
  )
}

interface StoredFile {
  readonly version: number
  readonly scheduler: string
  readonly stream_id: string
  readonly epoch_number: number
  readonly sequence: number
  readonly schedules: ReadonlyArray<{ readonly source_key: string }>
}

/** Waits until the single projection file under `home` stores `sequence` of `epochNumber`. */
const storedProjection = (brain: TestBrain.TestBrainShape, home: string, epochNumber: number, sequence: number) =>
  waitFor(brain, () => {
    const [file] = projectionFiles(home)
    if (file === undefined) return undefined
    let stored: StoredFile
    try {
      stored = JSON.parse(readFileSync(file, "utf8")) as StoredFile
    } catch {
      return undefined
    }
    return stored.epoch_number === epochNumber && stored.sequence === sequence ? { file, stored } : undefined
  })

/** Activates epoch `epochNumber` on a connected agent and returns the bodies of its projections. */
const activateAndCollect = (brain: TestBrain.TestBrainShape, epochNumber: number, expected: number) =>
  Effect.gen(function* () {
    yield* waitFor(brain, () => brain.connectedSessions() === 1)
    const { id, parameters } = activate(brain, epochNumber)
    const result = yield* waitFor(brain, () => brain.commandResult(id))
    expect(result.status).toBe("success")
    return yield* waitFor(brain, () => {
      const found = projections(brain, parameters.epoch_uuid)
      return found.length === expected ? found.map((event) => event.data.external_projection as Body) : undefined
    })
  })

const keysOf = (body: Body | StoredFile) => body.schedules.map((row) => row.source_key)

describe("schedule projection file", () => {
  it.live("acknowledged projection is written", () =>
    withBrain((brain) =>
      withHome((home) => {
        const { adapter } = schedulingAdapter()
        return Effect.gen(function* () {
          yield* activateAndCollect(brain, 1, 1)
          const { file, stored } = yield* storedProjection(brain, home, 1, 1)
          expect(stored.version).toBe(1)
          expect(stored.scheduler).toBe("jobs-cron")
          expect(stored.stream_id).toBe("6f1d2c3b-4a59-4e7d-8c6b-5a4938271605")
          expect(keysOf(stored)).toEqual(["reports:a", "reports:b"])
          expect(statSync(file).mode & 0o777).toBe(0o600)
          expect(statSync(join(file, "..")).mode & 0o777).toBe(0o700)
          // The temporary file was renamed, not left beside it.
          expect(readdirSync(join(file, "..")).filter((name) => name.endsWith(".tmp"))).toEqual([])
        }).pipe(Effect.provide(withAdapter(brain, adapter, home)))
      })
    )
  )

  it.live("restart bridges from the file", () =>
    withBrain((brain) =>
      withHome((home) => {
        const { adapter, schedules } = schedulingAdapter()
        return Effect.gen(function* () {
          yield* Effect.gen(function* () {
            yield* activateAndCollect(brain, 1, 1)
            yield* storedProjection(brain, home, 1, 1)
          }).pipe(Effect.provide(withAdapter(brain, adapter, home)))

          // Removed while the agent was stopped.
          schedules.splice(1, 1, entry("c"))
          yield* Effect.gen(function* () {
            const bodies = yield* activateAndCollect(brain, 2, 2)
            expect(bodies.map((body) => body.sequence)).toEqual([1, 2])
            expect(keysOf(bodies[0]!)).toEqual(["reports:a", "reports:b", "reports:c"])
            expect(keysOf(bodies[1]!)).toEqual(["reports:a", "reports:c"])
            const { stored } = yield* storedProjection(brain, home, 2, 2)
            expect(keysOf(stored)).toEqual(["reports:a", "reports:c"])
          }).pipe(Effect.provide(withAdapter(brain, adapter, home)))
        })
      })
    )
  )

  const corruptions = [
    { label: "invalid JSON", content: () => "{ not json", reason: "invalid JSON" },
    {
      label: "invalid row",
      content: (file: string) => {
        const stored = JSON.parse(readFileSync(file, "utf8")) as { schedules: Array<Record<string, unknown>> }
        stored.schedules[1]!.next_run_at = "tomorrow"
        return JSON.stringify(stored)
      },
      reason: "schedules[1] is invalid"
    }
  ]
  for (const corruption of corruptions) {
    it.live(`corrupt file falls back: ${corruption.label}`, () =>
      withBrain((brain) =>
        withHome((home) => {
          const { adapter, schedules } = schedulingAdapter()
          const logs = captureLogs()
          return Effect.gen(function* () {
            const { file } = yield* Effect.gen(function* () {
              yield* activateAndCollect(brain, 1, 1)
              return yield* storedProjection(brain, home, 1, 1)
            }).pipe(Effect.provide(withAdapter(brain, adapter, home)))

            writeFileSync(file, corruption.content(file))
            schedules.splice(1, 1, entry("c"))
            yield* Effect.gen(function* () {
              // Without a usable file: one complete snapshot, which lists no removed schedule.
              const bodies = yield* activateAndCollect(brain, 2, 1)
              expect(keysOf(bodies[0]!)).toEqual(["reports:a", "reports:c"])
              const warnings = logs.lines.filter((line) => line.startsWith("WARN") && line.includes(file))
              expect(warnings).toHaveLength(1)
              expect(warnings[0]).toContain(corruption.reason)
              // The acknowledged snapshot replaces the corrupt file.
              const { stored } = yield* storedProjection(brain, home, 2, 1)
              expect(keysOf(stored)).toEqual(["reports:a", "reports:c"])
            }).pipe(Effect.provide(withAdapter(brain, adapter, home)))
          }).pipe(Effect.provide(logs.layer))
        })
      )
    )
  }
})
