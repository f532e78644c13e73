import { type Processor, Queue, Worker, type WorkerOptions } from "bullmq"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import * as BullMQ from "../../src/engines/bullmq/BullMQ.js"
import type {
  CommandRequest,
  EngineAdapter,
  EventSink,
  RegistryDelta,
  TaskEvent
} from "../../src/engines/EngineAdapter.js"
import { type RedisServer, startRedis } from "../support/redis.js"

/** Creates an EventSink that keeps what the adapter emits, for assertions. */
export const memorySink = () => {
  const events: Array<TaskEvent> = []
  const registry: Array<RegistryDelta> = []
  const sink: EventSink = {
    emit: (event) => {
      events.push(event)
    },
    registry: (delta) => {
      registry.push(delta)
    }
  }
  const of = (taskId: string, kind?: string) =>
    events.filter((event) => event.taskId === taskId && (kind === undefined || event.kind === kind))
  return { sink, events, registry, of }
}

export const waitUntil = async (
  condition: () => boolean | Promise<boolean>,
  timeoutMillis = 8_000,
  what = "condition"
) => {
  const deadline = Date.now() + timeoutMillis
  while (Date.now() < deadline) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`timed out after ${timeoutMillis} ms waiting for ${what}`)
}

export const sleep = (millis: number) => new Promise((resolve) => setTimeout(resolve, millis))

let counter = 0
/** A queue name unique in this test run, so tests sharing a Redis never see each other's jobs. */
export const queueName = (label: string) => `${label}-${process.pid}-${++counter}`

/** Creates one private Redis per test file, with helpers that close everything they open. */
export const redisFixture = () => {
  let server: RedisServer | undefined
  const closers: Array<() => Promise<unknown>> = []
  const fixture = {
    get server(): RedisServer {
      if (server === undefined) throw new Error("the Redis fixture is not started; call start() in beforeAll")
      return server
    },
    get connection() {
      return { host: "127.0.0.1", port: fixture.server.port }
    },
    start: async () => {
      server = await startRedis()
    },
    stop: async () => {
      await server?.stop()
    },
    /** Closes what the current test opened, newest first. */
    cleanup: async () => {
      while (closers.length > 0) {
        const close = closers.pop()!
        await close().catch(() => undefined)
      }
    },
    client: () => {
      const client = new Redis(fixture.server.port, "127.0.0.1", { maxRetriesPerRequest: null })
      closers.push(() => client.quit())
      return client
    },
    queue: (name: string) => {
      const queue = new Queue(name, { connection: fixture.connection })
      closers.push(() => queue.close())
      return queue
    },
    worker: <D = unknown, R = unknown>(
      name: string,
      processor: Processor<D, R>,
      options: Partial<WorkerOptions> = {}
    ) => {
      const worker = new Worker<D, R>(name, processor, { connection: fixture.connection, ...options })
      worker.on("error", () => undefined)
      closers.push(() => worker.close(true))
      return worker
    },
    /** Builds and starts an adapter in its own scope; `stop` closes the scope. */
    adapter: async (
      options: Omit<BullMQ.Options, "connection"> & { connection?: BullMQ.Options["connection"] },
      sink: EventSink
    ) => {
      const scope = Effect.runSync(Scope.make())
      const adapter = await Effect.runPromise(
        Scope.extend(BullMQ.make({ connection: fixture.connection, ...options }), scope)
      )
      await Effect.runPromise(Scope.extend(adapter.start(sink), scope))
      let stopped = false
      const stop = async () => {
        if (stopped) return
        stopped = true
        await Effect.runPromise(Scope.close(scope, Exit.void))
      }
      closers.push(stop)
      return { adapter, stop }
    }
  }
  return fixture
}

export const command = (
  action: string,
  parameters: Record<string, unknown>,
  target: { type: string; id: string | null } = { type: "task", id: null }
): CommandRequest => ({
  id: "00000000-0000-4000-8000-000000000001",
  action,
  target,
  parameters,
  timeoutSeconds: 60,
  issuedBy: null
})

export const run = (adapter: EngineAdapter, request: CommandRequest) =>
  Effect.runPromise(Effect.either(adapter.execute(request)))
