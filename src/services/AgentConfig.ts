/**
 * The agent's settings: read from `Z4J_*` environment variables through Effect `Config` (so a
 * `ConfigProvider` can supply them too), with explicit options taking precedence over the
 * environment. Every default lives in this module, with its unit in its name.
 *
 * @since 0.1.0
 */

import * as os from "node:os"
import * as path from "node:path"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { decodeHmacSecret } from "../protocol/index.js"

/**
 * Defaults for every tunable.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  /** The brain trims each `event_batch` to 1000 events, so a batch never holds more. */
  maxBatchEvents: 500,
  flushIntervalMillis: 100,
  maxInFlightBatches: 16,
  /** Per-string cap applied by the redactor (the brain applies the same 8192-byte cap again). */
  maxPayloadBytes: 8192,
  bufferMaxEvents: 100_000,
  bufferMaxBytes: 256 * 1024 * 1024,
  intakeCapacity: 10_000,
  drainTimeoutMillis: 5_000,
  handshakeTimeoutMillis: 10_000,
  ackTimeoutMillis: 90_000,
  healthTimeoutMillis: 5_000,
  scheduleResyncIntervalMillis: 15 * 60 * 1000,
  /** The brain answers pings itself; this only detects a dead peer sooner than TCP would. */
  pingIntervalMillis: 30_000,
  /** Largest frame accepted from the brain. */
  maxInboundFrameBytes: 16 * 1024 * 1024
} as const

/**
 * @since 0.1.0
 * @category models
 */
export type BufferKind = "sqlite" | "memory"

/**
 * @since 0.1.0
 * @category models
 */
export type LogFormat = "pretty" | "logfmt" | "json" | "structured"

/**
 * Explicit settings. Each one overrides its environment variable.
 *
 * @since 0.1.0
 * @category models
 */
export interface AgentOptions {
  /** `Z4J_BRAIN_URL`: http(s) or ws(s) URL of the brain; `/ws/agent` is appended when missing. */
  readonly brainUrl?: string
  /** `Z4J_TOKEN`: the agent's bearer token. */
  readonly token?: string | Redacted.Redacted<string>
  /** `Z4J_PROJECT_ID`: the project the agent belongs to (logged only; the token decides the project). */
  readonly projectId?: string
  /** `Z4J_HMAC_SECRET`: the base64url `hmac_secret` the brain returned when the agent was created. */
  readonly hmacSecret?: string | Redacted.Redacted<string>
  /** `Z4J_AGENT_NAME`: shown as the host name in the dashboard. Default: the machine's host name. */
  readonly agentName?: string
  /** `Z4J_WORKER_ROLE`: web, task, scheduler, beat or other. */
  readonly workerRole?: string
  /** `Z4J_HOME`: state folder for the durable buffer. Default `~/.z4j`. */
  readonly home?: string
  /** `Z4J_BUFFER`: `sqlite` (durable, the default) or `memory`. */
  readonly buffer?: BufferKind
  /** Allows `ws://` to a host that is not loopback. Development only: frames travel unencrypted. */
  readonly allowInsecureTransport?: boolean
  /** TLS certificate verification for `wss://`; on unless turned off here. */
  readonly rejectUnauthorized?: boolean
  /** `framework` sent in the hello. Default `node`. */
  readonly framework?: string
  readonly maxBatchEvents?: number
  readonly flushIntervalMillis?: number
  readonly maxInFlightBatches?: number
  readonly maxPayloadBytes?: number
  readonly bufferMaxEvents?: number
  readonly bufferMaxBytes?: number
  readonly intakeCapacity?: number
  readonly drainTimeoutMillis?: number
  readonly handshakeTimeoutMillis?: number
  readonly ackTimeoutMillis?: number
  readonly healthTimeoutMillis?: number
  readonly scheduleResyncIntervalMillis?: number
  readonly agentStatusEnabled?: boolean
}

/**
 * The resolved settings.
 *
 * @since 0.1.0
 * @category models
 */
export interface AgentConfigShape {
  /** The WebSocket URL of the brain's agent endpoint. */
  readonly brainUrl: string
  readonly token: Redacted.Redacted<string>
  readonly projectId: string
  readonly hmacSecret: Redacted.Redacted<Uint8Array>
  readonly agentName: string
  readonly workerRole: string | null
  readonly home: string
  readonly buffer: BufferKind
  readonly rejectUnauthorized: boolean
  readonly framework: string
  readonly maxBatchEvents: number
  readonly flushIntervalMillis: number
  readonly maxInFlightBatches: number
  readonly maxPayloadBytes: number
  readonly bufferMaxEvents: number
  readonly bufferMaxBytes: number
  readonly intakeCapacity: number
  readonly drainTimeoutMillis: number
  readonly handshakeTimeoutMillis: number
  readonly ackTimeoutMillis: number
  readonly healthTimeoutMillis: number
  readonly scheduleResyncIntervalMillis: number
  readonly agentStatusEnabled: boolean
}

/**
 * @since 0.1.0
 * @category tags
 */
export class AgentConfig extends Context.Tag("z4j-agent/AgentConfig")<AgentConfig, AgentConfigShape>() {}

/**
 * A setting is missing or malformed. `setting` names the environment variable, `fix` says what to do.
 * The message never contains a secret's value.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidAgentConfig extends Data.TaggedError("InvalidAgentConfig")<{
  readonly setting: string
  readonly problem: string
  readonly fix: string
}> {
  override get message(): string {
    return `${this.setting}: ${this.problem}. ${this.fix}`
  }
}

const loopbackHosts = new Set(["localhost", "127.0.0.1", "::1", "[::1]"])

/**
 * Turns a brain URL as users write it (`https://z4j.example.com`, `ws://127.0.0.1:7700/ws/agent`)
 * into the agent endpoint's WebSocket URL.
 *
 * @since 0.1.0
 * @category parsing
 */
export const resolveBrainUrl = (
  input: string,
  allowInsecureTransport: boolean
): Either.Either<string, InvalidAgentConfig> => {
  const invalid = (problem: string, fix: string) =>
    Either.left(new InvalidAgentConfig({ setting: "Z4J_BRAIN_URL", problem, fix }))
  let url: URL
  try {
    url = new URL(input.trim())
  } catch {
    return invalid(`"${input}" is not a URL`, "Set it to the brain's address, such as https://z4j.example.com")
  }
  const schemes: Record<string, string> = { "http:": "ws:", "https:": "wss:", "ws:": "ws:", "wss:": "wss:" }
  const scheme = schemes[url.protocol]
  if (scheme === undefined) {
    return invalid(`scheme "${url.protocol}" in "${input}" is not supported`, "Use http(s):// or ws(s)://")
  }
  url.protocol = scheme
  if (scheme === "ws:" && !loopbackHosts.has(url.hostname) && !allowInsecureTransport) {
    return invalid(
      `"${input}" would send the agent's token unencrypted to ${url.hostname}`,
      "Use https:// or wss://; plain ws:// is accepted only for localhost, 127.0.0.1 and ::1 unless allowInsecureTransport is set"
    )
  }
  if (url.search !== "" || url.hash !== "") {
    return invalid(`"${input}" has a query or fragment`, "Remove it; the agent endpoint takes no parameters")
  }
  const basePath = url.pathname.replace(/\/+$/, "")
  url.pathname = basePath.endsWith("/ws/agent") ? basePath : `${basePath}/ws/agent`
  return Either.right(url.toString())
}

const optional = <A>(explicit: A | undefined, config: Config.Config<A>, fallback: A) =>
  explicit !== undefined
    ? Effect.succeed(explicit)
    : Effect.map(
        Config.option(config),
        Option.getOrElse(() => fallback)
      )

const required = <A>(explicit: A | undefined, config: Config.Config<A>, setting: string, optionName: string) =>
  explicit !== undefined
    ? Effect.succeed(explicit)
    : Effect.flatMap(Config.option(config), (value) =>
        Option.match(value, {
          onSome: Effect.succeed,
          onNone: () =>
            Effect.fail(
              new InvalidAgentConfig({
                setting,
                problem: "missing",
                fix: `Set the ${setting} environment variable or pass the "${optionName}" option`
              })
            )
        })
      )

const positive = (setting: string, value: number, max = Number.MAX_SAFE_INTEGER) =>
  Number.isInteger(value) && value >= 1 && value <= max
    ? Effect.succeed(value)
    : Effect.fail(
        new InvalidAgentConfig({
          setting,
          problem: `${value} is not a whole number between 1 and ${max}`,
          fix: `Set ${setting} to a whole number between 1 and ${max}`
        })
      )

const toRedacted = (value: string | Redacted.Redacted<string>): Redacted.Redacted<string> =>
  typeof value === "string" ? Redacted.make(value) : value

/**
 * Resolves the settings from `options` and the current `ConfigProvider` (the environment by default).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: AgentOptions = {}
): Effect.Effect<AgentConfigShape, InvalidAgentConfig | ConfigError.ConfigError> =>
  Effect.gen(function* () {
    const allowInsecure = options.allowInsecureTransport ?? false
    const rawUrl = yield* required(options.brainUrl, Config.string("Z4J_BRAIN_URL"), "Z4J_BRAIN_URL", "brainUrl")
    const brainUrl = yield* resolveBrainUrl(rawUrl, allowInsecure)
    const token = toRedacted(yield* required(options.token, Config.redacted("Z4J_TOKEN"), "Z4J_TOKEN", "token"))
    if (Redacted.value(token).trim() === "") {
      return yield* new InvalidAgentConfig({
        setting: "Z4J_TOKEN",
        problem: "empty",
        fix: "Set it to the token the brain showed when the agent was created"
      })
    }
    const projectId = yield* required(options.projectId, Config.string("Z4J_PROJECT_ID"), "Z4J_PROJECT_ID", "projectId")
    const secretText = toRedacted(
      yield* required(options.hmacSecret, Config.redacted("Z4J_HMAC_SECRET"), "Z4J_HMAC_SECRET", "hmacSecret")
    )
    const hmacSecret = yield* Effect.try({
      try: () => Redacted.make(decodeHmacSecret(Redacted.value(secretText))),
      catch: (error) =>
        new InvalidAgentConfig({
          setting: "Z4J_HMAC_SECRET",
          problem: error instanceof Error ? error.message : "not a valid secret",
          fix: "Copy the hmac_secret the brain returned when the agent was created (44 base64url characters)"
        })
    })

    const agentName = yield* optional(options.agentName, Config.string("Z4J_AGENT_NAME"), os.hostname())
    const workerRole = yield* optional<string | null>(options.workerRole, Config.string("Z4J_WORKER_ROLE"), null)
    const home = yield* optional(options.home, Config.string("Z4J_HOME"), path.join(os.homedir(), ".z4j"))
    const buffer = yield* optional<BufferKind>(
      options.buffer,
      Config.literal("sqlite", "memory")("Z4J_BUFFER"),
      "sqlite"
    )
    const statusDisabled = yield* optional(
      options.agentStatusEnabled === undefined ? undefined : !options.agentStatusEnabled,
      Config.boolean("Z4J_AGENT_STATUS_DISABLED"),
      false
    )

    const tunable = (explicit: number | undefined, setting: string, fallback: number, max?: number) =>
      Effect.flatMap(optional(explicit, Config.integer(setting), fallback), (value) => positive(setting, value, max))

    return {
      brainUrl,
      token,
      projectId,
      hmacSecret,
      agentName,
      workerRole,
      home,
      buffer,
      rejectUnauthorized: options.rejectUnauthorized ?? true,
      framework: options.framework ?? "node",
      maxBatchEvents: yield* tunable(options.maxBatchEvents, "Z4J_MAX_BATCH_EVENTS", defaults.maxBatchEvents, 1000),
      flushIntervalMillis: yield* tunable(
        options.flushIntervalMillis,
        "Z4J_FLUSH_INTERVAL_MILLIS",
        defaults.flushIntervalMillis,
        60_000
      ),
      maxInFlightBatches: yield* tunable(
        options.maxInFlightBatches,
        "Z4J_MAX_IN_FLIGHT_BATCHES",
        defaults.maxInFlightBatches,
        1000
      ),
      maxPayloadBytes: yield* tunable(options.maxPayloadBytes, "Z4J_MAX_PAYLOAD_BYTES", defaults.maxPayloadBytes),
      bufferMaxEvents: yield* tunable(options.bufferMaxEvents, "Z4J_BUFFER_MAX_EVENTS", defaults.bufferMaxEvents),
      bufferMaxBytes: yield* tunable(options.bufferMaxBytes, "Z4J_BUFFER_MAX_BYTES", defaults.bufferMaxBytes),
      intakeCapacity: yield* tunable(options.intakeCapacity, "Z4J_INTAKE_CAPACITY", defaults.intakeCapacity),
      drainTimeoutMillis: yield* tunable(
        options.drainTimeoutMillis,
        "Z4J_DRAIN_TIMEOUT_MILLIS",
        defaults.drainTimeoutMillis
      ),
      handshakeTimeoutMillis: yield* tunable(
        options.handshakeTimeoutMillis,
        "Z4J_HANDSHAKE_TIMEOUT_MILLIS",
        defaults.handshakeTimeoutMillis
      ),
      ackTimeoutMillis: yield* tunable(options.ackTimeoutMillis, "Z4J_ACK_TIMEOUT_MILLIS", defaults.ackTimeoutMillis),
      healthTimeoutMillis: yield* tunable(
        options.healthTimeoutMillis,
        "Z4J_HEALTH_TIMEOUT_MILLIS",
        defaults.healthTimeoutMillis
      ),
      scheduleResyncIntervalMillis: yield* tunable(
        options.scheduleResyncIntervalMillis,
        "Z4J_SCHEDULE_RESYNC_MILLIS",
        defaults.scheduleResyncIntervalMillis
      ),
      agentStatusEnabled: !statusDisabled
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: AgentOptions = {}
): Layer.Layer<AgentConfig, InvalidAgentConfig | ConfigError.ConfigError> => Layer.effect(AgentConfig, make(options))
