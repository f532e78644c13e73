/**
 * Soak: a worker process emits a steady stream of events through an agent on the SQLite buffer, while
 * the parent runs the test brain behind a loopback proxy and, at a fixed period, either cuts every
 * connection or restarts the brain, in turn.
 * The worker reports its RSS and its longest event-loop stall; at the end the parent counts emitted,
 * received (distinct task ids), duplicates, dropped and lost events.
 *
 *   npx tsx bench/soak.ts --minutes 10 --rate 2000 [--cut-seconds 30] [--sample-seconds 30]
 *
 * The brain runs in the parent so that its own records do not count in the worker's RSS.
 */
import { fork } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import * as Z4j from "../src/layers/Z4j.js"
import * as TestBrain from "../src/testing/TestBrain.js"
import * as TcpProxy from "../test/support/proxy.js"

/** Settings of one soak run. */
export interface SoakOptions {
  readonly seconds: number
  readonly rate: number
  readonly cutEverySeconds: number
  readonly sampleEverySeconds: number
  /** Called with each progress line. */
  readonly report?: (line: string) => void
}

/** One sample the worker sends while it runs. */
export interface SoakSample {
  readonly atSeconds: number
  readonly rssBytes: number
  readonly heapUsedBytes: number
  readonly emitted: number
  readonly bufferDepth: number
  readonly droppedEvents: number
  /** Longest gap between two ticks of a 10 ms host timer since the previous sample. */
  readonly maxStallMillis: number
}

/** Figures of a finished run. */
export interface SoakResult {
  readonly samples: ReadonlyArray<SoakSample>
  readonly emitted: number
  readonly received: number
  readonly duplicates: number
  readonly dropped: number
  readonly lost: number
  readonly cuts: number
  readonly restarts: number
  readonly connects: number
  readonly maxStallMillis: number
  readonly finalDepth: number
}

type WorkerMessage =
  | { readonly type: "sample"; readonly sample: SoakSample }
  | {
      readonly type: "done"
      readonly emitted: number
      readonly dropped: number
      readonly depth: number
      readonly connects: number
    }

const workerFlag = "--soak-worker"

/** Runs the worker side: an agent, a steady emitter, a stall probe, and a sample every period. */
const runWorker = async () => {
  const settings = JSON.parse(process.env.Z4J_SOAK_SETTINGS ?? "{}") as {
    readonly agent: Z4j.Options
    readonly rate: number
    readonly sampleEverySeconds: number
  }
  const send = (message: WorkerMessage) => process.send?.(message)
  const agent = await Z4j.start({ ...settings.agent, buffer: "sqlite", flushIntervalMillis: 50 })
  const started = Date.now()
  let emitted = 0
  let lastTick = Date.now()
  let maxStall = 0
  const probe = setInterval(() => {
    const now = Date.now()
    maxStall = Math.max(maxStall, now - lastTick - 10)
    lastTick = now
  }, 10)
  const tickMillis = 10
  const emitter = setInterval(() => {
    const due = Math.floor(((Date.now() - started) * settings.rate) / 1000)
    while (emitted < due) {
      agent.emit({
        kind: "task.succeeded",
        engine: "soak",
        taskId: `soak-${emitted}`,
        data: { task_name: "soak.work", queue: "default", attempt: 1, index: emitted, result: { ok: true } }
      })
      emitted += 1
    }
  }, tickMillis)
  const sampler = setInterval(async () => {
    const status = await agent.status()
    const memory = process.memoryUsage()
    send({
      type: "sample",
      sample: {
        atSeconds: Math.round((Date.now() - started) / 1000),
        rssBytes: memory.rss,
        heapUsedBytes: memory.heapUsed,
        emitted,
        bufferDepth: status.buffer.depth,
        droppedEvents: status.droppedEvents,
        maxStallMillis: maxStall
      }
    })
    maxStall = 0
  }, settings.sampleEverySeconds * 1000)
  process.on("message", async (message) => {
    if (message !== "stop") return
    clearInterval(emitter)
    clearInterval(sampler)
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      await agent.flush()
      const status = await agent.status()
      if (status.buffer.depth === 0 && status.dispatcher.inFlightBatches === 0) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const status = await agent.status()
    await agent.stop()
    clearInterval(probe)
    send({
      type: "done",
      emitted,
      dropped: status.droppedEvents,
      depth: status.buffer.depth,
      connects: status.connection.connectsTotal
    })
    process.disconnect?.()
  })
}

/**
 * Runs one soak and returns its figures.
 *
 * @since 0.1.0
 * @category running
 */
export const runSoak = async (options: SoakOptions): Promise<SoakResult> => {
  const report = options.report ?? (() => {})
  let brain = await TestBrain.start()
  const proxy = await TcpProxy.start(brain.url)
  const home = mkdtempSync(path.join(tmpdir(), "z4j-soak-"))
  const samples: Array<SoakSample> = []
  const taskIds = new Set<string>()
  let receivedTotal = 0
  // The test brain keeps every frame it receives; move what it has into counters so that the
  // parent's memory stays bounded over a long run.
  const collect = () => {
    const events = brain.events as Array<TestBrain.ReceivedEvent>
    for (const event of events) taskIds.add(event.task_id)
    receivedTotal += events.length
    events.length = 0
    ;(brain.frames as Array<unknown>).length = 0
    ;(brain.sentFrames as Array<unknown>).length = 0
  }
  const collector = setInterval(collect, 1000)
  // Faults alternate: a cut of every connection at the proxy, then a restart of the brain at the same
  // address, which also ends its sessions and forgets the replay state it held.
  let cuts = 0
  let restarts = 0
  let restarting: Promise<void> = Promise.resolve()
  const cutter = setInterval(() => {
    if ((cuts + restarts) % 2 === 0) {
      cuts += 1
      proxy.cutAll()
      report(`cut ${cuts}: every connection to the brain cut`)
      return
    }
    restarts += 1
    restarting = restarting.then(async () => {
      collect()
      const address = TestBrain.sameAddress(brain)
      await brain.stop()
      collect()
      brain = await TestBrain.start(address)
      report(`restart ${restarts}: the brain stopped and started again`)
    })
  }, options.cutEverySeconds * 1000)

  // Under vitest the parent runs without tsx's loader, and the child needs it to load this file.
  const loader = process.execArgv.some((argument) => argument.includes("tsx")) ? [] : ["--import", "tsx"]
  const child = fork(fileURLToPath(import.meta.url), [workerFlag], {
    execArgv: [...process.execArgv, ...loader],
    env: {
      ...process.env,
      Z4J_SOAK_SETTINGS: JSON.stringify({
        agent: { ...brain.agentOptions, brainUrl: proxy.url, home },
        rate: options.rate,
        sampleEverySeconds: options.sampleEverySeconds
      })
    },
    stdio: ["ignore", "inherit", "inherit", "ipc"]
  })
  const done = new Promise<Extract<WorkerMessage, { type: "done" }>>((resolve, reject) => {
    child.on("message", (message: WorkerMessage) => {
      if (message.type === "sample") {
        samples.push(message.sample)
        const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)
        report(
          `t=${message.sample.atSeconds}s rss=${mib(message.sample.rssBytes)} MiB heap=${mib(message.sample.heapUsedBytes)} MiB emitted=${message.sample.emitted} depth=${message.sample.bufferDepth} dropped=${message.sample.droppedEvents} stall=${message.sample.maxStallMillis} ms`
        )
      } else resolve(message)
    })
    child.on("exit", (code) => reject(new Error(`the soak worker exited with code ${code} before reporting`)))
  })
  await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000))
  clearInterval(cutter)
  await restarting
  child.send("stop")
  const final = await done
  await new Promise((resolve) => child.once("exit", resolve))
  clearInterval(collector)
  collect()
  await proxy.close()
  await brain.stop()
  rmSync(home, { recursive: true, force: true })
  const received = taskIds.size
  return {
    samples,
    emitted: final.emitted,
    received,
    duplicates: receivedTotal - received,
    dropped: final.dropped,
    lost: final.emitted - received - final.dropped,
    cuts,
    restarts,
    connects: final.connects,
    maxStallMillis: Math.max(0, ...samples.map((sample) => sample.maxStallMillis)),
    finalDepth: final.depth
  }
}

const argument = (name: string, fallback: number) => {
  const index = process.argv.indexOf(`--${name}`)
  const value = index === -1 ? undefined : Number(process.argv[index + 1])
  return value === undefined || Number.isNaN(value) ? fallback : value
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)

if (process.argv.includes(workerFlag)) {
  await runWorker()
} else if (isMain) {
  const result = await runSoak({
    seconds: argument("minutes", 10) * 60,
    rate: argument("rate", 2000),
    cutEverySeconds: argument("cut-seconds", 30),
    sampleEverySeconds: argument("sample-seconds", 30),
    report: (line) => console.log(line)
  })
  const { samples: _samples, ...figures } = result
  console.log(JSON.stringify(figures, null, 2))
  process.exitCode = result.lost === 0 ? 0 : 1
}
