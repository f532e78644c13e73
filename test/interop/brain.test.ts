import { randomUUID } from "node:crypto"
import { afterEach, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import WebSocket from "ws"
import { brainVersion, eventually } from "../../interop/brain.js"
import type { MintedAgent } from "../../interop/rest.js"
import { type SharedBrain, sharedBrain } from "../../interop/shared.js"
import {
  decodeHelloAck,
  decodeHmacSecret,
  encodeAgentStatusPayload,
  encodeCommandAckPayload,
  encodeCommandResultPayload,
  encodeEvent,
  encodeEventBatchPayload,
  encodeHeartbeatPayload,
  encodeHello,
  FrameSigner,
  FrameVerifier,
  type HelloAckFrame,
  type HelloPayloadInput,
  type SessionBinding,
  type VerifiedFrame
} from "../../src/protocol/index.js"

interface Received {
  readonly text: string
  readonly binary: boolean
}

interface Closed {
  readonly code: number
}

/** One raw WebSocket to the brain, with its received messages queued for `next`. */
interface RawSocket {
  readonly ws: WebSocket
  readonly next: (timeoutMillis?: number) => Promise<Received>
  readonly closed: Promise<Closed>
}

/** A socket after the handshake, with the session's signer and verifier. */
interface Session extends RawSocket {
  readonly ack: HelloAckFrame
  readonly helloAckBinary: boolean
  readonly binding: SessionBinding
  readonly signer: FrameSigner
  readonly verifier: FrameVerifier
  /** Waits for the next frame of `type` and verifies it; frames of other types are verified and skipped. */
  readonly nextVerified: (type: string, timeoutMillis?: number) => Promise<VerifiedFrame>
}

let brain: SharedBrain
const sockets: Array<WebSocket> = []

const openSocket = (token: string): Promise<RawSocket> =>
  new Promise((resolve, reject) => {
    // No subprotocol and no compression: the brain selects neither.
    const ws = new WebSocket(brain.wsUrl, { headers: { Authorization: `Bearer ${token}` }, perMessageDeflate: false })
    sockets.push(ws)
    const queue: Array<Received> = []
    const waiters: Array<(message: Received) => void> = []
    ws.on("message", (data: Buffer, isBinary) => {
      const message = { text: data.toString("utf8"), binary: isBinary }
      const waiter = waiters.shift()
      if (waiter === undefined) queue.push(message)
      else waiter(message)
    })
    const closed = new Promise<Closed>((done) => ws.once("close", (code) => done({ code })))
    const next = (timeoutMillis = 10_000) =>
      new Promise<Received>((done, fail) => {
        const queued = queue.shift()
        if (queued !== undefined) return done(queued)
        const timer = setTimeout(
          () => fail(new Error(`no frame from the brain within ${timeoutMillis} ms`)),
          timeoutMillis
        )
        waiters.push((message) => {
          clearTimeout(timer)
          done(message)
        })
      })
    ws.once("open", () => resolve({ ws, next, closed }))
    ws.once("error", reject)
  })

const helloFor = (overrides: Partial<HelloPayloadInput> = {}) =>
  encodeHello({
    protocol_version: "2",
    agent_version: "0.1.0",
    framework: "ts-protocol",
    engines: ["bullmq", "effect"],
    capabilities: {
      bullmq: ["bulk_retry", "cancel_task", "restart_worker", "retry_task"],
      effect: ["cancel_task", "retry_by_reference_v1", "retry_task"]
    },
    host: { name: "ts-protocol-host" },
    worker_id: `ts-protocol-${randomUUID()}`,
    worker_role: "task",
    worker_pid: process.pid,
    worker_started_at: new Date(),
    ...overrides
  })

const openSession = async (agent: MintedAgent, hello = helloFor()): Promise<Session> => {
  const socket = await openSocket(agent.token)
  socket.ws.send(hello)
  const first = await socket.next()
  const ack = Either.getOrThrow(decodeHelloAck(JSON.parse(first.text)))
  const binding: SessionBinding = {
    agentId: ack.payload.agent_id,
    projectId: ack.payload.project_id,
    sessionId: ack.payload.session_id
  }
  const secret = decodeHmacSecret(agent.hmacSecret)
  const verifier = new FrameVerifier(secret, binding)
  const nextVerified = async (type: string, timeoutMillis = 10_000) => {
    const deadline = Date.now() + timeoutMillis
    for (;;) {
      const message = await socket.next(Math.max(1, deadline - Date.now()))
      const frame = Either.getOrThrow(verifier.verify(message.text))
      if (frame.type === type) return frame
    }
  }
  return {
    ...socket,
    ack,
    helloAckBinary: first.binary,
    binding,
    signer: new FrameSigner(secret, binding),
    verifier,
    nextVerified
  }
}

const event = (kind: string, engine: string, taskId: string, data: Record<string, unknown>) =>
  encodeEvent({ id: randomUUID(), kind, engine, task_id: taskId, occurred_at: new Date(), data })

const taskIn = (engine: string, taskId: string, state: string) =>
  eventually(`task ${engine}/${taskId} in state ${state}`, async () => {
    const response = await brain.rest.task(engine, taskId)
    return response.status === 200 && response.body.state === state ? response.body : undefined
  })

beforeAll(() => {
  brain = sharedBrain()
})

afterEach(() => {
  for (const ws of sockets.splice(0)) ws.terminate()
})

describe("real brain", () => {
  it("ready, and the session reads projects", async () => {
    const ready = await fetch(`${brain.baseUrl}/api/v1/health/ready`)
    expect(ready.status).toBe(200)
    const projects = await brain.rest.get<Array<{ slug: string }>>("/api/v1/projects")
    expect(projects.status).toBe(200)
    expect(projects.body.map((project) => project.slug)).toContain(brain.slug)
  })

  it("lists a new agent in state unknown", async () => {
    const minted = await brain.mintAgent("ts-protocol-unknown")
    const listed = await brain.rest.agent(minted.agentId)
    expect(listed.status).toBe(200)
    expect(listed.body?.state).toBe("unknown")
    expect(listed.body?.last_connect_at).toBeNull()
    expect(minted.projectId).toBe(brain.projectId)
  })
})

describe("protocol v2 against the real brain", () => {
  let agent: MintedAgent

  beforeAll(async () => {
    agent = await brain.mintAgent("ts-protocol")
  })

  it("hello_ack is binary and carries the session", async () => {
    const session = await openSession(agent)
    expect(session.helloAckBinary).toBe(true)
    expect(session.ack.id).toBe(`hack_${session.ack.payload.session_id.replaceAll("-", "").slice(0, 12)}`)
    expect(session.ack.payload.protocol_version).toBe("2")
    expect(session.ack.payload.brain_version).toBe(brainVersion)
    expect(session.ack.payload.agent_id).toBe(agent.agentId)
    expect(session.ack.payload.project_id).toBe(agent.projectId)
    expect(session.ack.payload.heartbeat_interval_seconds).toBe(10)
    expect(session.ack.payload.max_frame_size_bytes).toBe(1_048_576)
    session.ws.close(1000)
    expect((await session.closed).code).toBe(1000)
  })

  it("heartbeat, status and events stored", async () => {
    const session = await openSession(agent)
    session.ws.send(session.signer.sign("heartbeat", "hb_proto1", encodeHeartbeatPayload({ buffer_size: 0 })))
    session.ws.send(
      session.signer.sign(
        "agent_status",
        "as_proto1",
        encodeAgentStatusPayload({
          agent_version: "0.1.0",
          protocol_version: "2",
          engines: ["bullmq", "effect"],
          last_successful_connect_at: new Date(),
          current_session_age_seconds: 1
        })
      )
    )
    const bullmqId = `emails:${randomUUID()}`
    const effectId = randomUUID()
    const events = [
      event("task.received", "bullmq", bullmqId, {
        task_name: "send-welcome",
        queue: "emails",
        args: [{ to: "user-42" }],
        kwargs: {}
      }),
      event("task.started", "bullmq", bullmqId, { task_name: "send-welcome", queue: "emails" }),
      event("task.succeeded", "bullmq", bullmqId, {
        task_name: "send-welcome",
        queue: "emails",
        result: { sent: "user-42" },
        runtime_ms: 12
      }),
      event("task.received", "effect", effectId, {
        task_name: "interop.add",
        queue: "interop",
        args: [2, 3],
        kwargs: {}
      }),
      event("task.started", "effect", effectId, { task_name: "interop.add", queue: "interop" }),
      event("task.succeeded", "effect", effectId, {
        task_name: "interop.add",
        queue: "interop",
        result: 5,
        runtime_ms: 3
      })
    ]
    session.ws.send(session.signer.sign("event_batch", "ev_proto1", encodeEventBatchPayload(events)))
    const ack = await session.nextVerified("event_batch_ack")
    expect(ack.payload).toEqual({ acked_id: "ev_proto1", received: 6, accepted: 6, rejected: 0 })

    const bullmq = await taskIn("bullmq", bullmqId, "success")
    expect(bullmq.name).toBe("send-welcome")
    expect(bullmq.queue).toBe("emails")
    expect(bullmq.args).toEqual([{ to: "user-42" }])
    expect(bullmq.result).toEqual({ sent: "user-42" })
    expect(bullmq.runtime_ms).toBe(12)
    const effect = await taskIn("effect", effectId, "success")
    expect(effect.name).toBe("interop.add")
    expect(effect.queue).toBe("interop")
    expect(effect.args).toEqual([2, 3])
    expect(effect.result).toBe(5)
    expect(effect.runtime_ms).toBe(3)
    const stored = await brain.rest.events("bullmq", bullmqId)
    expect(stored.body.items.map((row) => row.kind)).toEqual(
      expect.arrayContaining(["task.received", "task.started", "task.succeeded"])
    )

    const listed = await brain.rest.agent(agent.agentId)
    expect(listed.body?.state).toBe("online")
    expect(listed.body?.framework_adapter).toBe("ts-protocol")
    expect(listed.body?.engine_adapters).toEqual(["bullmq", "effect"])
    expect(listed.body?.capabilities.effect).toContain("retry_by_reference_v1")
    expect(listed.body?.host_name).toBe("ts-protocol-host")
    const workers = await brain.rest.agentWorkers({ state: "online" })
    expect(workers.body.some((row) => row.agent_id === agent.agentId && row.pid === process.pid)).toBe(true)
  })

  it("commands signed, results recorded", async () => {
    const session = await openSession(agent)
    const workerName = `ts-protocol-worker-${randomUUID().slice(0, 8)}`
    const taskId = `emails:${randomUUID()}`
    // A worker.* event from this agent is what lets the brain route restart-worker to it.
    session.ws.send(
      session.signer.sign(
        "event_batch",
        "ev_proto2",
        encodeEventBatchPayload([
          event("worker.online", "bullmq", "", { worker: workerName }),
          event("task.received", "bullmq", taskId, { task_name: "send-later", queue: "emails" })
        ])
      )
    )
    await session.nextVerified("event_batch_ack")

    const restart = await brain.rest.issueCommand("restart-worker", {
      agent_id: agent.agentId,
      engine: "bullmq",
      worker_name: workerName
    })
    expect(restart.status, JSON.stringify(restart.body)).toBe(202)
    const command = await session.nextVerified("command")
    expect(command.id).toBe(restart.body.id)
    expect(command.payload).toMatchObject({
      action: "restart_worker",
      target: { type: "worker", id: workerName, engine: "bullmq" },
      parameters: { worker_name: workerName, engine: "bullmq" },
      timeout_seconds: 60
    })
    session.ws.send(session.signer.sign("command_ack", restart.body.id, encodeCommandAckPayload()))
    session.ws.send(
      session.signer.sign(
        "command_result",
        restart.body.id,
        encodeCommandResultPayload({ status: "success", result: { restarted: workerName } })
      )
    )
    const recorded = await eventually("the restart result to be recorded", async () => {
      const response = await brain.rest.command(restart.body.id)
      return response.body.status === "completed" ? response.body : undefined
    })
    expect(recorded.result).toEqual({ restarted: workerName })

    const cancel = await brain.rest.issueCommand("cancel-task", {
      agent_id: agent.agentId,
      engine: "bullmq",
      task_id: taskId
    })
    expect(cancel.status, JSON.stringify(cancel.body)).toBe(202)
    const cancelFrame = await session.nextVerified("command")
    expect(cancelFrame.payload).toMatchObject({
      action: "cancel_task",
      target: { type: "task", id: `bullmq:${taskId}`, engine: "bullmq" },
      parameters: { engine: "bullmq", task_id: taskId }
    })
    session.ws.send(
      session.signer.sign(
        "command_result",
        cancel.body.id,
        encodeCommandResultPayload({ status: "failed", error: "job is active" })
      )
    )
    const failed = await eventually("the cancel result to be recorded", async () => {
      const response = await brain.rest.command(cancel.body.id)
      return response.body.status === "failed" ? response.body : undefined
    })
    expect(failed.error).toBe("job is active")
  })

  it("task commands gated by capabilities", async () => {
    const session = await openSession(agent)
    const taskId = `emails:${randomUUID()}`
    session.ws.send(
      session.signer.sign(
        "event_batch",
        "ev_proto3",
        encodeEventBatchPayload([
          event("task.failed", "bullmq", taskId, { task_name: "send", queue: "emails", exception: "boom" }),
          event("task.failed", "effect", taskId, { task_name: "interop.fail", exception: "boom" })
        ])
      )
    )
    await session.nextVerified("event_batch_ack")
    const issue = (path: "retry-task" | "requeue-dead-letter" | "bulk-retry", body: Record<string, unknown>) =>
      brain.rest.issueCommand(path, { agent_id: agent.agentId, ...body })

    // bullmq advertises retry_task but not the by-reference marker.
    const bullmqRetry = await issue("retry-task", {
      engine: "bullmq",
      task_id: taskId,
      override_args: [],
      override_kwargs: {}
    })
    expect(bullmqRetry.status).toBe(422)
    expect(JSON.stringify(bullmqRetry.body)).toContain("retry_by_reference_v1")
    const bullmqBulk = await issue("bulk-retry", { filter: { engine: "bullmq", task_ids: [taskId] } })
    expect(bullmqBulk.status).toBe(422)
    expect(JSON.stringify(bullmqBulk.body)).toContain("retry_by_reference_v1")
    const requeue = await issue("requeue-dead-letter", { engine: "bullmq", task_id: taskId })
    expect(requeue.status).toBe(422)
    expect(JSON.stringify(requeue.body)).toContain("does not advertise 'requeue_dead_letter'")

    // effect has the marker, but a non-native engine retries only with both override halves.
    const bare = await issue("retry-task", { engine: "effect", task_id: taskId })
    expect(bare.status).toBe(409)
    const halfOverride = await issue("retry-task", { engine: "effect", task_id: taskId, override_args: ["x"] })
    expect(halfOverride.status).toBe(422)
    const retry = await issue("retry-task", {
      engine: "effect",
      task_id: taskId,
      override_args: ["x"],
      override_kwargs: {}
    })
    expect(retry.status, JSON.stringify(retry.body)).toBe(202)
    const frame = await session.nextVerified("command")
    expect(frame.payload).toMatchObject({
      action: "retry_task",
      target: { type: "task", id: `effect:${taskId}`, engine: "effect" },
      parameters: { engine: "effect", task_id: taskId, override_args: ["x"], override_kwargs: {} }
    })
  })
})

describe("protocol v2 failures against the real brain", () => {
  let agent: MintedAgent

  beforeAll(async () => {
    agent = await brain.mintAgent("ts-protocol-failures")
  })

  it("unknown token is closed with 4401", async () => {
    const socket = await openSocket("not-a-token")
    expect((await socket.closed).code).toBe(4401)
  })

  it("first frame other than hello is closed with 4400", async () => {
    const socket = await openSocket(agent.token)
    socket.ws.send(JSON.stringify({ v: 2, type: "heartbeat", id: "hb_first", payload: {} }))
    expect((await socket.closed).code).toBe(4400)
  })

  it("protocol version 3 in hello is closed with 4426", async () => {
    const socket = await openSocket(agent.token)
    socket.ws.send(helloFor({ protocol_version: "3" }))
    expect((await socket.closed).code).toBe(4426)
  })

  it("frame signed with a wrong secret is closed with 4403", async () => {
    const session = await openSession(agent)
    const forger = new FrameSigner(new Uint8Array(32).fill(7), session.binding)
    session.ws.send(forger.sign("heartbeat", "hb_forged", encodeHeartbeatPayload({})))
    expect((await session.closed).code).toBe(4403)
  })

  it("replayed frame is closed with 4403", async () => {
    const session = await openSession(agent)
    const frame = session.signer.sign("heartbeat", "hb_replay", encodeHeartbeatPayload({}))
    session.ws.send(frame)
    session.ws.send(frame)
    expect((await session.closed).code).toBe(4403)
  })

  it("unknown signed frame type is closed with 1011", async () => {
    const session = await openSession(agent)
    session.ws.send(session.signer.sign("goodbye", "bye_1", "{}"))
    expect((await session.closed).code).toBe(1011)
  })

  it("invalid JSON after the handshake is closed with 1011", async () => {
    const session = await openSession(agent)
    session.ws.send("{not json")
    expect((await session.closed).code).toBe(1011)
  })

  it("command_result with a brain-owned status is closed with 1011", async () => {
    const session = await openSession(agent)
    session.ws.send(
      session.signer.sign("command_result", randomUUID(), '{"error":null,"result":null,"status":"timeout"}')
    )
    expect((await session.closed).code).toBe(1011)
  })

  it("frame over 1 MiB is closed with 4400", async () => {
    const session = await openSession(agent)
    const padding = "x".repeat(session.ack.payload.max_frame_size_bytes)
    session.ws.send(session.signer.sign("heartbeat", "hb_big", `{"padding":"${padding}"}`))
    expect((await session.closed).code).toBe(4400)
  })

  it("revoked agent is closed with 4003 and then rejected with 4401", async () => {
    const revoked = await brain.mintAgent("ts-protocol-revoked")
    const session = await openSession(revoked)
    const response = await brain.rest.revokeAgent(revoked.agentId)
    expect(response.status).toBe(204)
    expect((await session.closed).code).toBe(4003)
    const again = await openSocket(revoked.token)
    expect((await again.closed).code).toBe(4401)
  })
})
