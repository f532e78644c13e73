import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import {
  closeCodeInfo,
  closeCodes,
  decodeAgentFrame,
  decodeBrainFrame,
  decodeHello,
  decodeHelloAck,
  encodeAgentStatusPayload,
  encodeCommandAckPayload,
  encodeCommandResultPayload,
  encodeErrorPayload,
  encodeEvent,
  encodeEventBatchPayload,
  encodeHeartbeatPayload,
  encodeHello,
  encodeRegistryDeltaPayload,
  type FrameDecodeError,
  float,
  formatPydanticDatetime,
  newAgentStatusId,
  newEventBatchId,
  newHeartbeatId,
  newHelloId
} from "../../src/protocol/index.js"

const signedHeader = {
  v: 2,
  id: "eba_ev_0123456789ab",
  ts: "2026-12-04T10:00:00.123456Z",
  nonce: "AAAAAAAAAAAAAAAAAAAAAA",
  seq: 1,
  hmac: "0".repeat(64)
}

const issuesOf = <A>(result: Either.Either<A, FrameDecodeError>): ReadonlyArray<string> =>
  Either.isLeft(result) ? result.left.issues.map((issue) => issue.path) : []

describe("formatPydanticDatetime", () => {
  it("milliseconds padded to micros", () => {
    expect(formatPydanticDatetime(new Date("2026-05-01T12:00:00.123Z"))).toBe("2026-05-01T12:00:00.123000Z")
    expect(formatPydanticDatetime(new Date("2026-05-01T12:00:00.001Z"))).toBe("2026-05-01T12:00:00.001000Z")
  })

  it("no fraction on whole seconds", () => {
    expect(formatPydanticDatetime(new Date("2026-05-01T12:00:00Z"))).toBe("2026-05-01T12:00:00Z")
  })
})

describe("frame ids", () => {
  it("prefixes and lengths", () => {
    expect(newEventBatchId()).toMatch(/^ev_[0-9a-f]{12}$/)
    expect(newHeartbeatId()).toMatch(/^hb_[0-9a-f]{12}$/)
    expect(newAgentStatusId()).toMatch(/^as_[0-9a-f]{12}$/)
    expect(newHelloId()).toMatch(/^hello_[0-9a-f]{16}$/)
  })
})

describe("encoders", () => {
  it("heartbeat with defaults", () => {
    expect(encodeHeartbeatPayload({})).toBe(
      '{"adapter_health":{},"buffer_size":0,"dropped_events":0,"last_flush_at":null}'
    )
    expect(
      encodeHeartbeatPayload({
        buffer_size: 3,
        last_flush_at: new Date("2026-05-01T12:00:00.5Z"),
        adapter_health: { "bullmq.queue_depths": '{"10":1,"9":2}' }
      })
    ).toBe(
      '{"adapter_health":{"bullmq.queue_depths":"{\\"10\\":1,\\"9\\":2}"},"buffer_size":3,"dropped_events":0,"last_flush_at":"2026-05-01T12:00:00.500000Z"}'
    )
  })

  it("agent_status floats", () => {
    const text = encodeAgentStatusPayload({
      current_session_age_seconds: 12,
      buffer_oldest_age_seconds: float(0),
      agent_version: "0.1.0",
      protocol_version: "2",
      engines: ["bullmq"]
    })
    expect(text).toBe(
      '{"agent_version":"0.1.0","auth_failure_streak":0,"buffer_depth":0,"buffer_oldest_age_seconds":0.0,"connection_failure_streak":0,"current_session_age_seconds":12.0,"engines":["bullmq"],"last_successful_connect_at":null,"protocol_failure_streak":0,"protocol_version":"2","schedulers":[]}'
    )
  })

  it("command payloads", () => {
    expect(encodeCommandAckPayload()).toBe("{}")
    expect(encodeCommandResultPayload({ status: "success", result: { task_id: "9", n: 1 } })).toBe(
      '{"error":null,"result":{"n":1,"task_id":"9"},"status":"success"}'
    )
    expect(encodeCommandResultPayload({ status: "failed", error: "boom" })).toBe(
      '{"error":"boom","result":null,"status":"failed"}'
    )
  })

  it("registry_delta and error", () => {
    expect(encodeRegistryDeltaPayload({ engine: "bullmq", removed: ["a"] })).toBe(
      '{"added":[],"engine":"bullmq","removed":["a"],"updated":[]}'
    )
    expect(encodeErrorPayload({ code: "x", message: "y" })).toBe('{"code":"x","fatal":false,"message":"y"}')
  })

  it("event and batch", () => {
    const event = encodeEvent({
      id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
      kind: "task.succeeded",
      engine: "bullmq",
      task_id: "emails:42",
      occurred_at: new Date("2026-05-01T12:00:00.001Z"),
      data: { runtime_ms: 5, queue: "emails" }
    })
    expect(event).toBe(
      '{"data":{"queue":"emails","runtime_ms":5},"engine":"bullmq","id":"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","kind":"task.succeeded","occurred_at":"2026-05-01T12:00:00.001000Z","task_id":"emails:42"}'
    )
    expect(encodeEventBatchPayload([event, event])).toBe(`{"events":[${event},${event}]}`)
    expect(encodeEventBatchPayload([])).toBe('{"events":[]}')
  })

  it("hello frame", () => {
    const text = encodeHello(
      { protocol_version: "2", agent_version: "0.1.0", framework: "bullmq" },
      { id: "hello_0123456789abcdef", now: new Date("2026-05-01T12:00:00Z") }
    )
    expect(text).toBe(
      '{"id":"hello_0123456789abcdef","payload":{"agent_version":"0.1.0","capabilities":{},"engines":[],"framework":"bullmq","host":{},"protocol_version":"2","schedulers":[],"worker_id":null,"worker_pid":null,"worker_role":null,"worker_started_at":null},"ts":"2026-05-01T12:00:00Z","type":"hello","v":2}'
    )
    expect(Either.isRight(decodeHello(text))).toBe(true)
    expect(Either.isRight(decodeAgentFrame(text))).toBe(true)
  })
})

describe("decoders", () => {
  const helloAck = {
    v: 2,
    type: "hello_ack",
    id: "hack_0123456789ab",
    ts: "2026-05-01T12:00:00.123456Z",
    payload: {
      protocol_version: "2",
      brain_version: "1.6.9",
      agent_id: "5f0c3a3e-8d52-4b7e-9c1a-2f4b6d8e0a11",
      project_id: "a3c1e7f2-1b2d-4e5f-8a9b-0c1d2e3f4a5b",
      session_id: "0b9d8c7e-6f5a-4b3c-a2d1-e0f9a8b7c6d5",
      heartbeat_interval_seconds: 10,
      max_frame_size_bytes: 1048576,
      future_field: true
    }
  }

  it("hello_ack from text", () => {
    const result = decodeHelloAck(JSON.stringify(helloAck))
    expect(Either.isRight(result)).toBe(true)
    const frame = Either.getOrThrow(result)
    expect(frame.payload.session_id).toBe("0b9d8c7e-6f5a-4b3c-a2d1-e0f9a8b7c6d5")
    expect("future_field" in frame.payload).toBe(false)
  })

  it("hello_ack limits name the field", () => {
    const bad = {
      ...helloAck,
      payload: { ...helloAck.payload, heartbeat_interval_seconds: 0, max_frame_size_bytes: 10 }
    }
    const result = decodeHelloAck(bad)
    expect(issuesOf(result)).toEqual(["payload.heartbeat_interval_seconds", "payload.max_frame_size_bytes"])
    expect(Either.isLeft(result)).toBe(true)
    expect(Either.isLeft(result) ? result.left.message : "").toMatch(
      /payload\.heartbeat_interval_seconds: .*between 1 and 3600/
    )
  })

  it("hello_ack wrong type", () => {
    const result = decodeHelloAck({ ...helloAck, type: "command" })
    expect(Either.isLeft(result)).toBe(true)
    expect(Either.isLeft(result) ? result.left.message : "").toContain('expected hello_ack, got type "command"')
    expect(Either.isLeft(decodeHelloAck("not json"))).toBe(true)
  })

  it("command with defaults", () => {
    const result = decodeBrainFrame({
      ...signedHeader,
      type: "command",
      payload: { action: "cancel_task", target: { type: "task", id: "bullmq:e:1", engine: "bullmq" } }
    })
    const frame = Either.getOrThrow(result)
    expect(frame.type).toBe("command")
    if (frame.type === "command") {
      expect(frame.payload.timeout_seconds).toBe(60)
      expect(frame.payload.issued_by).toBeNull()
      expect(frame.payload.parameters).toEqual({})
      expect(frame.payload.target.engine).toBe("bullmq")
    }
  })

  it("command limits", () => {
    const result = decodeBrainFrame({
      ...signedHeader,
      type: "command",
      payload: { action: "x".repeat(81), target: { type: "task", id: null }, timeout_seconds: 3601 }
    })
    expect(issuesOf(result)).toEqual(["payload.action", "payload.timeout_seconds"])
  })

  it("event_batch_ack and error", () => {
    const ack = decodeBrainFrame({
      ...signedHeader,
      type: "event_batch_ack",
      payload: { acked_id: "ev_1", received: 2 }
    })
    expect(Either.isRight(ack)).toBe(true)
    expect(
      issuesOf(decodeBrainFrame({ ...signedHeader, type: "event_batch_ack", payload: { acked_id: "x".repeat(65) } }))
    ).toEqual(["payload.acked_id"])
    const error = decodeBrainFrame({ ...signedHeader, type: "error", payload: { code: "c", message: "m" } })
    const errorFrame = Either.getOrThrow(error)
    expect(errorFrame.type).toBe("error")
    expect(errorFrame.type === "error" ? errorFrame.payload.fatal : undefined).toBe(false)
  })

  it("brain decoder rejects agent types", () => {
    expect(issuesOf(decodeBrainFrame({ ...signedHeader, type: "heartbeat", payload: {} }))).toEqual(["type"])
  })

  it("agent frames", () => {
    expect(Either.isRight(decodeAgentFrame({ ...signedHeader, type: "heartbeat", payload: {} }))).toBe(true)
    expect(
      issuesOf(decodeAgentFrame({ ...signedHeader, type: "heartbeat", payload: { buffer_size: 10_000_001 } }))
    ).toEqual(["payload.buffer_size"])
    expect(issuesOf(decodeAgentFrame({ ...signedHeader, type: "command_result", payload: { status: "ok" } }))).toEqual([
      "payload.status"
    ])
    expect(
      issuesOf(
        decodeAgentFrame({
          ...signedHeader,
          type: "agent_status",
          payload: { agent_version: "1", protocol_version: "2", engines: Array(33).fill("e") }
        })
      )
    ).toEqual(["payload.engines"])
    expect(issuesOf(decodeAgentFrame({ ...signedHeader, id: "", type: "command_ack", payload: {} }))).toEqual(["id"])
  })

  it("event_batch events", () => {
    const event = JSON.parse(
      encodeEvent({
        id: "e1",
        kind: "task.started",
        engine: "bullmq",
        task_id: "q:1",
        occurred_at: "2026-05-01T12:00:00Z",
        data: {}
      })
    )
    const good = decodeAgentFrame({ ...signedHeader, type: "event_batch", payload: { events: [event] } })
    expect(Either.isRight(good)).toBe(true)
    const bad = decodeAgentFrame({
      ...signedHeader,
      type: "event_batch",
      payload: { events: [event, { ...event, engine: "x".repeat(41), occurred_at: "soon" }] }
    })
    expect(issuesOf(bad)).toEqual(["payload.events.1.engine", "payload.events.1.occurred_at"])
  })

  it("hello limits", () => {
    const hello = JSON.parse(
      encodeHello({ protocol_version: "2", agent_version: "0.1.0", framework: "bullmq", worker_pid: 2 ** 31 })
    )
    expect(issuesOf(decodeHello(hello))).toEqual(["payload.worker_pid"])
    hello.payload.worker_pid = 1
    hello.payload.engines = Array(65).fill("e")
    expect(issuesOf(decodeHello(hello))).toEqual(["payload.engines"])
  })
})

describe("close codes", () => {
  it("covers every brain code", () => {
    for (const code of [4400, 4401, 4403, 4408, 4426, 4427, 4429, 4002, 4003, 1000, 1001, 1006, 1011]) {
      expect(closeCodes.has(code)).toBe(true)
    }
  })

  it("classes", () => {
    expect(closeCodeInfo(4426).failureClass).toBe("terminal")
    expect(closeCodeInfo(4427).failureClass).toBe("terminal")
    expect(closeCodeInfo(4401).failureClass).toBe("auth")
    expect(closeCodeInfo(1006).failureClass).toBe("network")
    expect(closeCodeInfo(1000).failureClass).toBe("normal")
  })

  it("4403 names clock and secret", () => {
    expect(closeCodeInfo(4403).remedy).toMatch(/clock/)
    expect(closeCodeInfo(4403).remedy).toMatch(/Z4J_HMAC_SECRET/)
  })

  it("unknown code falls back", () => {
    expect(closeCodeInfo(4999)).toMatchObject({ code: 4999, name: "unknown", failureClass: "network" })
  })
})
