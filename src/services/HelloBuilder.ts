/**
 * Builds the `hello` frame's payload from the agent's settings and the engines registered at the
 * time of each connect, since the brain records capabilities only from the hello.
 *
 * @since 0.1.0
 */

import * as os from "node:os"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { EngineAdapter } from "../engines/EngineAdapter.js"
import { formatPydanticDatetime, ScheduleProjection } from "../protocol/index.js"
import { agentVersion, protocolVersion } from "../version.js"
import { AgentConfig } from "./AgentConfig.js"
import { EngineRegistry } from "./EngineRegistry.js"

/**
 * The `hello` payload, with the wire's field names.
 *
 * @since 0.1.0
 * @category models
 */
export interface HelloPayload {
  readonly protocol_version: string
  readonly agent_version: string
  readonly framework: string
  readonly engines: ReadonlyArray<string>
  readonly schedulers: ReadonlyArray<string>
  readonly capabilities: Readonly<Record<string, ReadonlyArray<string>>>
  readonly host: Readonly<Record<string, string>>
  readonly worker_id: string
  readonly worker_role: string | null
  readonly worker_pid: number
  readonly worker_started_at: string
  readonly runtime_features?: ReadonlyArray<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HelloBuilderShape {
  readonly build: Effect.Effect<HelloPayload>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class HelloBuilder extends Context.Tag("z4j-agent/HelloBuilder")<HelloBuilder, HelloBuilderShape>() {}

const sortedUnique = (values: Iterable<string>): Array<string> => [...new Set(values)].sort()

/**
 * The capability token with which an adapter attests that `retry_task` re-runs a job from the
 * engine's own copy, never from the brain's redacted arguments. z4j 1.12 and later dispatch retries
 * only to adapters that list it. Every adapter of this package that lists `retry_task` keeps that
 * contract (see `EngineAdapter.capabilities`), so the agent adds the token for them.
 *
 * @since 0.1.0
 * @category constants
 */
export const retryByReferenceCapability = "retry_by_reference_v1"

/**
 * The capability map: each engine name maps to the union of its adapters' tokens (the brain looks
 * capabilities up by engine name), each adapter registered under another name also appears under its
 * own name, and each scheduler under its scheduler name, with the token that requests a schedule
 * stream from z4j 1.13 (see `ScheduleProjection`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const capabilityMap = (adapters: ReadonlyArray<EngineAdapter>): Record<string, Array<string>> => {
  const tokens = new Map<string, Set<string>>()
  const add = (key: string, values: ReadonlyArray<string>) => {
    const set = tokens.get(key) ?? new Set<string>()
    for (const value of values) set.add(value)
    tokens.set(key, set)
  }
  for (const adapter of adapters) {
    const advertised = adapter.capabilities.includes("retry_task")
      ? [...adapter.capabilities, retryByReferenceCapability]
      : adapter.capabilities
    add(adapter.engine, advertised)
    if (adapter.name !== adapter.engine) add(adapter.name, advertised)
    if (adapter.scheduler !== undefined) {
      add(adapter.scheduler.name, [...adapter.scheduler.capabilities, ScheduleProjection.stableSnapshotCapability])
    }
  }
  return Object.fromEntries([...tokens].map(([key, set]) => [key, sortedUnique(set)]))
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<HelloBuilderShape, never, AgentConfig | EngineRegistry> = Effect.gen(function* () {
  const config = yield* AgentConfig
  const registry = yield* EngineRegistry
  const startedAtMillis = yield* Clock.currentTimeMillis
  // Stable for the life of the process: the brain keys worker slots by (agent, worker_id), and a
  // reconnect with the same id replaces the old slot instead of adding one.
  const workerId = `${config.framework}-${process.pid}-${startedAtMillis}`
  const host = {
    name: config.agentName,
    hostname: os.hostname(),
    platform: `${process.platform}-${process.arch}`,
    runtime: `node ${process.versions.node}`
  }

  const build = Effect.map(registry.adapters, (adapters) => {
    const capabilities = capabilityMap(adapters)
    const schedulers = sortedUnique(adapters.flatMap((adapter) => (adapter.scheduler ? [adapter.scheduler.name] : [])))
    const runtimeFeatures = [
      ...(Object.values(capabilities).some((tokens) => tokens.includes(retryByReferenceCapability))
        ? ["retry_by_reference"]
        : []),
      ...(schedulers.length > 0 ? [ScheduleProjection.runtimeFeature] : [])
    ]
    return {
      protocol_version: protocolVersion,
      agent_version: agentVersion,
      framework: config.framework,
      engines: sortedUnique(adapters.map((adapter) => adapter.engine)),
      schedulers,
      capabilities,
      host,
      worker_id: workerId,
      worker_role: config.workerRole,
      worker_pid: process.pid,
      worker_started_at: formatPydanticDatetime(new Date(startedAtMillis)),
      runtime_features: runtimeFeatures
    }
  })

  return { build }
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<HelloBuilder, never, AgentConfig | EngineRegistry> = Layer.effect(HelloBuilder, make)
