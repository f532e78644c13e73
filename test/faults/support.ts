import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { AgentShape, AgentStatus } from "../../src/services/Agent.js"
import * as TestBrain from "../../src/testing/TestBrain.js"
import * as TcpProxy from "../support/proxy.js"

/** A test brain and a proxy in front of it, stopped when the effect ends. */
export const withBrainBehindProxy = <A, E>(
  use: (brain: TestBrain.TestBrainShape, proxy: TcpProxy.TcpProxy) => Effect.Effect<A, E>,
  options: TestBrain.TestBrainOptions = {}
) =>
  Effect.acquireUseRelease(
    Effect.promise(async () => {
      const brain = await TestBrain.start(options)
      const proxy = await TcpProxy.start(brain.url)
      return { brain, proxy }
    }),
    ({ brain, proxy }) => use(brain, proxy),
    ({ brain, proxy }) => Effect.promise(() => proxy.close().then(() => brain.stop()))
  )

/** A test brain, stopped when the effect ends. */
export const withBrain = <A, E>(
  use: (brain: TestBrain.TestBrainShape) => Effect.Effect<A, E>,
  options: TestBrain.TestBrainOptions = {}
) =>
  Effect.acquireUseRelease(
    Effect.promise(() => TestBrain.start(options)),
    use,
    (brain) => Effect.promise(() => brain.stop())
  )

export const waitFor = <A>(
  brain: TestBrain.TestBrainShape,
  probe: () => A | undefined | false,
  timeoutMillis = 10_000
) => Effect.promise(() => brain.waitFor(probe, timeoutMillis))

/** Polls the agent's status until `predicate` holds, for at most `timeoutMillis`. */
export const statusWhen = (agent: AgentShape, predicate: (status: AgentStatus) => boolean, timeoutMillis = 10_000) =>
  Effect.gen(function* () {
    let last: AgentStatus | undefined
    while (true) {
      last = yield* agent.status
      if (predicate(last)) return last
      yield* Effect.sleep(Duration.millis(10))
    }
  }).pipe(
    Effect.timeoutFail({
      duration: Duration.millis(timeoutMillis),
      onTimeout: () => new Error("the agent's status did not reach the expected state in time")
    }),
    Effect.orDie
  )

/**
 * The host's own work: a counter a 5 ms timer increments, with the longest gap between two ticks.
 * An agent that blocks the event loop shows up as a long gap.
 */
export const hostTicker = () => {
  let ticks = 0
  let last = Date.now()
  let longestGapMillis = 0
  const timer = setInterval(() => {
    const now = Date.now()
    longestGapMillis = Math.max(longestGapMillis, now - last)
    last = now
    ticks += 1
  }, 5)
  return {
    ticks: () => ticks,
    longestGapMillis: () => longestGapMillis,
    stop: () => clearInterval(timer)
  }
}

/**
 * Runs `use` while a host ticker runs, then checks that the host kept ticking and never stalled for
 * more than `maxGapMillis` (generous: the machine is shared and the suite runs in parallel).
 */
export const whileHostRuns = <A, E, R>(use: Effect.Effect<A, E, R>, maxGapMillis = 1_000) =>
  Effect.acquireUseRelease(
    Effect.sync(hostTicker),
    (ticker) =>
      Effect.gen(function* () {
        const before = ticker.ticks()
        const result = yield* use
        yield* Effect.sleep(Duration.millis(30))
        if (ticker.ticks() <= before) return yield* Effect.die(new Error("the host's timer stopped ticking"))
        if (ticker.longestGapMillis() > maxGapMillis) {
          return yield* Effect.die(new Error(`the host's event loop stalled for ${ticker.longestGapMillis()} ms`))
        }
        return result
      }),
    (ticker) => Effect.sync(ticker.stop)
  )

export const event = (index: number, data: Record<string, unknown> = {}) => ({
  kind: "task.succeeded" as const,
  engine: "test",
  taskId: `task-${index}`,
  data: { task_name: "demo.add", index, ...data }
})

/** Distinct task ids the brain received. */
export const receivedTaskIds = (brain: TestBrain.TestBrainShape) => new Set(brain.events.map((event) => event.task_id))

/** Log lines at warning level or above that contain `text`. */
export const warnings = (lines: ReadonlyArray<string>, text: string) =>
  lines.filter((line) => /^(WARN|ERROR|FATAL) /.test(line) && line.includes(text))
