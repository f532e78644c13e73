/**
 * Drives this agent for the side-by-side benchmarks, in its own process: the same stdin/stdout line
 * protocol as bench/py/bare_agent.py (one JSON command per line in, one JSON answer per line out).
 * Connection settings come from the environment: Z4J_BRAIN_URL, Z4J_TOKEN, Z4J_PROJECT_ID,
 * Z4J_HMAC_SECRET, Z4J_HOME, and Z4J_BUFFER ("sqlite" or "memory").
 */
import { readFileSync } from "node:fs"
import { createInterface } from "node:readline"
import { setTimeout as sleep } from "node:timers/promises"
import { start } from "../../src/layers/Z4j.js"

const agent = await start({
  brainUrl: process.env.Z4J_BRAIN_URL ?? "",
  token: process.env.Z4J_TOKEN ?? "",
  projectId: process.env.Z4J_PROJECT_ID ?? "",
  hmacSecret: process.env.Z4J_HMAC_SECRET ?? "",
  home: process.env.Z4J_HOME ?? "",
  buffer: process.env.Z4J_BUFFER === "memory" ? "memory" : "sqlite",
  agentName: "bench-ours"
})

const answer = (message: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(message)}\n`)

let sequence = 0
const emit = () => {
  sequence++
  agent.emit({
    kind: "task.succeeded",
    engine: "bench",
    taskId: `job-${sequence}`,
    occurredAt: new Date(),
    data: {
      queue: "emails",
      name: "send-welcome-email",
      attempt: 1,
      args: [sequence, "user@example.com"],
      kwargs: { locale: "fr-FR", template: "welcome" },
      worker: "worker-1",
      runtime_ms: 12,
      result: { ok: true, message_id: `m-${sequence}` },
      note: "déjà envoyé",
      seq: sequence,
      emitted_us: Math.round((performance.timeOrigin + performance.now()) * 1000)
    }
  })
}

// Waits until every event emitted so far is acknowledged and the buffer is empty.
const waitAcked = async (target: number, timeoutSeconds: number): Promise<boolean> => {
  const deadline = performance.now() + timeoutSeconds * 1000
  while (performance.now() < deadline) {
    const status = await agent.status()
    const lost = status.dispatcher.droppedAtIntakeTotal + status.dispatcher.rejectedTotal
    if (status.dispatcher.ackedTotal + lost >= target && status.buffer.depth === 0) return true
    await sleep(2)
  }
  return false
}

const memory = () => {
  const fields = new Map<string, number>()
  for (const line of readFileSync("/proc/self/status", "ascii").split("\n")) {
    const [name, value] = line.split(":")
    if (name === "VmHWM" || name === "VmRSS") fields.set(name, Number.parseInt(value?.trim() ?? "0", 10) * 1024)
  }
  const heap = process.memoryUsage()
  return {
    peakRssBytes: fields.get("VmHWM") ?? 0,
    rssBytes: fields.get("VmRSS") ?? 0,
    heapUsedBytes: heap.heapUsed,
    heapTotalBytes: heap.heapTotal,
    externalBytes: heap.external
  }
}

answer({ op: "started", pid: process.pid })
for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line) as {
    op: string
    count?: number
    rate?: number
    seconds?: number
    timeoutSeconds?: number
  }
  const timeoutSeconds = command.timeoutSeconds ?? 600
  if (command.op === "burst") {
    const count = command.count ?? 0
    const started = performance.now()
    // emit never blocks: past the intake queue's capacity it drops. Yielding every 500 events lets the
    // dispatcher drain the queue, as a host's event loop would between jobs.
    for (let index = 0; index < count; index++) {
      emit()
      if (index % 500 === 499) await new Promise((resolve) => setImmediate(resolve))
    }
    const emitted = performance.now()
    const drained = await waitAcked(sequence, timeoutSeconds)
    const status = await agent.status()
    answer({
      op: command.op,
      emitSeconds: (emitted - started) / 1000,
      totalSeconds: (performance.now() - started) / 1000,
      drained,
      dropped: status.dispatcher.droppedAtIntakeTotal
    })
  } else if (command.op === "steady") {
    const rate = command.rate ?? 1000
    const count = Math.floor(rate * (command.seconds ?? 1))
    const started = performance.now()
    let index = 0
    while (index < count) {
      const due = Math.min(count, Math.floor(((performance.now() - started) / 1000) * rate) + 1)
      while (index < due) {
        emit()
        index++
      }
      await sleep(1)
    }
    const emitted = performance.now()
    const drained = await waitAcked(sequence, timeoutSeconds)
    answer({
      op: command.op,
      emitSeconds: (emitted - started) / 1000,
      drainSeconds: (performance.now() - emitted) / 1000,
      drained
    })
  } else if (command.op === "depth") {
    answer({ op: command.op, depth: (await agent.status()).buffer.depth })
  } else if (command.op === "memory") {
    answer({ op: command.op, ...memory() })
  } else if (command.op === "stop") {
    await agent.stop()
    answer({ op: command.op })
    break
  }
}
process.exit(0)
