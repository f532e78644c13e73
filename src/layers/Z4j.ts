/**
 * The agent's layers, composed. `layer(options)` builds a complete agent from explicit options over
 * the `Z4J_*` environment; `Z4jLive` is the same from the environment alone.
 *
 * @since 0.1.0
 */

import { createHash } from "node:crypto"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import type { EngineAdapter, TaskEvent } from "../engines/EngineAdapter.js"
import * as Agent from "../services/Agent.js"
import * as AgentConfig from "../services/AgentConfig.js"
import * as AgentState from "../services/AgentState.js"
import * as CommandRouter from "../services/CommandRouter.js"
import * as Connection from "../services/Connection.js"
import * as Dispatcher from "../services/Dispatcher.js"
import * as EngineRegistry from "../services/EngineRegistry.js"
import * as MemoryBuffer from "../services/EventBuffer/Memory.js"
import * as SqliteBuffer from "../services/EventBuffer/Sqlite.js"
import { EventBuffer } from "../services/EventBuffer.js"
import * as Heartbeat from "../services/Heartbeat.js"
import * as HelloBuilder from "../services/HelloBuilder.js"
import * as ProjectionStore from "../services/ProjectionStore.js"
import * as Redactor from "../services/Redactor.js"
import * as Supervisor from "../services/Supervisor.js"
import * as Logging from "./Logging.js"

/**
 * Everything the agent's layer provides.
 *
 * @since 0.1.0
 * @category models
 */
export type Services =
  | Agent.Agent
  | AgentConfig.AgentConfig
  | AgentState.AgentState
  | Dispatcher.Dispatcher
  | Dispatcher.DispatcherRuntime
  | EngineRegistry.EngineRegistry
  | EventBuffer
  | HelloBuilder.HelloBuilder
  | ProjectionStore.ProjectionStore
  | Redactor.Redactor
  | CommandRouter.CommandRouter

/**
 * Options of {@link layer}: the agent's settings, plus redaction patterns.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends AgentConfig.AgentOptions {
  /** Settings of the default redactor: extra patterns and depth. */
  readonly redaction?: Omit<Redactor.RedactorOptions, "maxStringBytes">
  /**
   * A redactor that replaces the default one entirely, for rules the default cannot express. It must
   * return JSON-safe values and never throw; `redaction` is ignored when it is given.
   */
  readonly redactor?: Redactor.RedactorShape
}

/**
 * A folder name for this agent's buffers: the same brain, project and token always give the same
 * name, so a restarted worker finds what the last one left, and the token itself never reaches disk.
 *
 * @since 0.1.0
 * @category constructors
 */
export const agentKey = (config: AgentConfig.AgentConfigShape): string =>
  createHash("sha256")
    .update(`${config.brainUrl}\n${config.projectId}\n${Redacted.value(config.token)}`)
    .digest("hex")
    .slice(0, 24)

const bufferLayer = Layer.unwrapEffect(
  Effect.map(AgentConfig.AgentConfig, (config) =>
    config.buffer === "memory"
      ? MemoryBuffer.layer({ maxEvents: config.bufferMaxEvents, maxBytes: config.bufferMaxBytes })
      : SqliteBuffer.layer({
          home: config.home,
          agentKey: agentKey(config),
          maxEvents: config.bufferMaxEvents,
          maxBytes: config.bufferMaxBytes
        })
  )
)

// The memory buffer writes nothing to disk, so the projection store writes no files either. That setting
// runs the agent without a writable state folder (read-only containers, tests), and a restart of such an
// agent already loses its unacknowledged events. After a restart it sends one complete snapshot, with no
// removed schedules listed again.
const projectionStoreLayer = Layer.unwrapEffect(
  Effect.map(AgentConfig.AgentConfig, (config) =>
    config.buffer === "memory"
      ? ProjectionStore.layerNone
      : ProjectionStore.layerFile({ home: config.home, agentKey: agentKey(config) })
  )
)

// The projection store learns from the buffer which projections the brain acknowledged.
const observedBufferLayer = Layer.effect(
  EventBuffer,
  Effect.zipWith(EventBuffer, ProjectionStore.ProjectionStore, (buffer, store) => store.observe(buffer))
).pipe(Layer.provide(bufferLayer))

const redactorLayer = (options: Options) =>
  options.redactor === undefined
    ? Layer.effect(
        Redactor.Redactor,
        Effect.flatMap(AgentConfig.AgentConfig, (config) =>
          Redactor.makeFromConfig({ ...options.redaction, maxStringBytes: config.maxPayloadBytes })
        )
      )
    : Layer.succeed(Redactor.Redactor, options.redactor)

/**
 * A complete agent. Building it starts connecting; releasing it flushes and says goodbye.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}) => layerWith(options, Connection.layerWs)

/**
 * {@link layer} with another transport, such as one that injects faults in tests.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options: Options, connection: Layer.Layer<Connection.Connection>) => {
  const config = AgentConfig.layer(options)
  const stored = projectionStoreLayer.pipe(Layer.provideMerge(config))
  const base = Layer.mergeAll(observedBufferLayer, redactorLayer(options), AgentState.layer, connection).pipe(
    Layer.provideMerge(stored)
  )
  const dispatcher = Dispatcher.layer.pipe(Layer.provideMerge(base))
  const registry = EngineRegistry.layer.pipe(Layer.provideMerge(dispatcher))
  const services = Layer.mergeAll(HelloBuilder.layer, CommandRouter.layer, Heartbeat.layer).pipe(
    Layer.provideMerge(registry)
  )
  const supervisor = Supervisor.layer.pipe(Layer.provideMerge(services))
  return Layer.scoped(Agent.Agent, Agent.make).pipe(Layer.provideMerge(supervisor))
}

/**
 * The agent configured from the environment alone.
 *
 * @since 0.1.0
 * @category layers
 */
export const Z4jLive = layer()

/**
 * Runs an agent until interrupted (with `NodeRuntime.runMain`, SIGINT and SIGTERM interrupt it and
 * the agent says goodbye before the process exits).
 *
 * @since 0.1.0
 * @category running
 */
export const runForever = (options: Options = {}) => Layer.launch(layer(options))

/**
 * A running agent, for code outside Effect.
 *
 * @since 0.1.0
 * @category models
 */
export interface AgentHandle {
  /** Reports an event. Synchronous, never throws and never blocks: a full intake queue drops and counts it. */
  readonly emit: (event: TaskEvent) => void
  /**
   * Registers an engine adapter for the rest of the agent's life. An adapter constructor that needs a
   * scope (such as the BullMQ one) runs in the agent's scope and is released by `stop`.
   */
  readonly registerEngine: <E>(adapter: EngineAdapter | Effect.Effect<EngineAdapter, E, Scope.Scope>) => Promise<void>
  readonly status: () => Promise<Agent.AgentStatus>
  readonly flush: () => Promise<void>
  /** Skips the current reconnect wait (what SIGHUP does under the CLI). */
  readonly reconnectNow: () => Promise<void>
  /**
   * Stops the agent: stops intake, flushes, waits for acknowledgements up to `drainTimeoutMillis`, says
   * goodbye and releases the buffer. Calling it again returns the same promise.
   */
  readonly stop: () => Promise<void>
}

/**
 * Starts an agent for a plain Node worker and resolves once it is built (connecting continues in the
 * background). Nothing here installs signal handlers: call `stop()` from the worker's own shutdown code.
 * The agent logs to stderr at `Z4J_LOG_LEVEL` (default info) in `Z4J_LOG_FORMAT` (default pretty on a
 * terminal, logfmt otherwise). An invalid value rejects with an error that names it.
 *
 * @since 0.1.0
 * @category running
 */
export const start = async (options: Options = {}): Promise<AgentHandle> => {
  // A worker outside Effect has no logger of its own to give the agent, so it gets the CLI's.
  const logging = Logging.fromEnvironment(process.env, process.stderr.isTTY === true)
  if (Either.isLeft(logging)) throw logging.left
  const runtime = ManagedRuntime.make(layer(options).pipe(Layer.provide(logging.right)))
  const agent = await runtime.runPromise(Agent.Agent)
  const engines = Effect.runSync(Scope.make())
  let stopping: Promise<void> | undefined
  return {
    emit: agent.sink.emit,
    registerEngine: (adapter) =>
      runtime.runPromise(
        Effect.isEffect(adapter)
          ? Effect.flatMap(Scope.extend(adapter, engines), (built) =>
              Scope.extend(agent.registerEngine(built), engines)
            )
          : agent.attachEngine(adapter)
      ),
    status: () => runtime.runPromise(agent.status),
    flush: () => runtime.runPromise(agent.flush),
    reconnectNow: () => runtime.runPromise(agent.reconnectNow),
    stop: () => {
      stopping ??= runtime.runPromise(Scope.close(engines, Exit.void)).then(() => runtime.dispose())
      return stopping
    }
  }
}

export type { ConfigError }
