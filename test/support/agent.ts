import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import {
  CommandFailed,
  type CommandRequest,
  type EngineAdapter,
  type EventSink
} from "../../src/engines/EngineAdapter.js"
import * as Z4j from "../../src/layers/Z4j.js"
import type { TestBrainShape } from "../../src/testing/TestBrain.js"

/** An engine adapter for runtime tests: it records commands and runs `behaviour` for each. */
export const recordingAdapter = (
  options: {
    readonly name?: string
    readonly engine?: string
    readonly capabilities?: ReadonlyArray<string>
    readonly behaviour?: (command: CommandRequest) => Effect.Effect<Record<string, unknown> | null, CommandFailed>
    readonly handles?: (command: CommandRequest) => boolean
  } = {}
) => {
  const commands: Array<CommandRequest> = []
  let sink: EventSink | undefined
  const adapter: EngineAdapter = {
    name: options.name ?? options.engine ?? "test",
    engine: options.engine ?? "test",
    capabilities: options.capabilities ?? ["cancel_task", "retry_task"],
    start: (given) =>
      Effect.sync(() => {
        sink = given
      }),
    execute: (command) =>
      Effect.suspend(() => {
        commands.push(command)
        return options.behaviour?.(command) ?? Effect.succeed({ ok: true })
      }),
    ...(options.handles ? { handles: options.handles } : {})
  }
  return {
    adapter,
    commands,
    emit: (...args: Parameters<EventSink["emit"]>) => {
      if (sink === undefined) throw new Error("the adapter has not been started")
      sink.emit(...args)
    }
  }
}

export const failWith = (reason: string) => Effect.fail(new CommandFailed({ reason }))

/** Log lines captured from the agent, to check their content. */
export const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message, cause, annotations }) => {
    const text = Array.isArray(message) ? message.map(String).join(" ") : String(message)
    lines.push(`${logLevel.label} ${text} ${String(cause)} ${JSON.stringify([...annotations])}`)
  })
  const layer = Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(LogLevel.All))
  return { lines, layer }
}

/** An agent on a memory buffer pointed at `brain`. */
export const agentLayer = (brain: TestBrainShape, options: Z4j.Options = {}) =>
  Z4j.layer({ ...brain.agentOptions, buffer: "memory", flushIntervalMillis: 20, ...options })
