/**
 * Checks, one step at a time, that an agent can reach and use the brain: its settings, its buffer
 * folder, DNS, TCP, TLS, the WebSocket upgrade and a real handshake with one signed frame. Each probe
 * returns a result whose one-line message names the cause and the fix. A probe never fails as an
 * Effect, and its result never contains a secret.
 *
 * @since 0.1.0
 */
import * as dns from "node:dns/promises"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type { AgentOptions } from "./AgentConfig.js"
import { probeBufferPath as probeBufferFolder } from "./internal/diagnosticsBuffer.js"
import { probeHandshake as probeHandshakeWith } from "./internal/diagnosticsHandshake.js"
import {
  probeDns as probeDnsWith,
  probeTcp as probeTcpWith,
  probeTls as probeTlsWith,
  targetOf
} from "./internal/diagnosticsNetwork.js"
import { skippedAfter } from "./internal/diagnosticsResult.js"
import { probeConfig as probeConfigWith, resolveSettings } from "./internal/diagnosticsSettings.js"
import { probeWebSocket as probeWebSocketWith } from "./internal/diagnosticsUpgrade.js"

/**
 * The probes, in the order {@link DiagnosticsShape.runAll} runs them.
 *
 * @since 0.1.0
 * @category models
 */
export type ProbeName = "config" | "buffer" | "dns" | "tcp" | "tls" | "websocket" | "handshake"

/**
 * A JSON value, for a probe's structured details.
 *
 * @since 0.1.0
 * @category models
 */
export type DetailValue =
  | string
  | number
  | boolean
  | null
  | ReadonlyArray<DetailValue>
  | { readonly [key: string]: DetailValue }

/**
 * Structured data about a probe: addresses, status codes, certificate fields. `skipped: true` marks a
 * probe that did not run.
 *
 * @since 0.1.0
 * @category models
 */
export type ProbeDetails = { readonly [key: string]: DetailValue }

/**
 * The outcome of one probe. `message` is one line; when `ok` is false it names the cause and the fix.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProbeResult {
  readonly name: ProbeName
  readonly ok: boolean
  readonly message: string
  readonly details: ProbeDetails
}

/**
 * The outcome of {@link DiagnosticsShape.runAll}: `ok` is true when every probe that ran passed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Report {
  readonly ok: boolean
  readonly probes: ReadonlyArray<ProbeResult>
}

/**
 * Resolves a host name to its addresses, as `dns.promises.lookup` with `all: true` does.
 *
 * @since 0.1.0
 * @category models
 */
export type LookupFunction = (
  hostname: string
) => Promise<ReadonlyArray<{ readonly address: string; readonly family: number }>>

/**
 * The resolver the DNS probe uses: the operating system's (`getaddrinfo`, the one sockets use) unless
 * replaced.
 *
 * @since 0.1.0
 * @category references
 */
export class Lookup extends Context.Reference<Lookup>()("z4j-agent/Diagnostics/Lookup", {
  defaultValue: (): LookupFunction => (hostname) => dns.lookup(hostname, { all: true })
}) {}

/**
 * The agent's settings to check, plus the probes' timeouts.
 *
 * @since 0.1.0
 * @category models
 */
export interface DiagnosticsOptions extends AgentOptions {
  /** Time limit of each network step (lookup, connect, TLS handshake, upgrade, hello_ack). Default 5000 ms. */
  readonly timeoutMillis?: number
  /** How long the WebSocket probe keeps the socket open, to see whether the brain closes it. Default 1000 ms. */
  readonly settleMillis?: number
  /** How long the handshake probe waits after its signed heartbeat, to see whether the brain rejects it. Default 2000 ms. */
  readonly observeMillis?: number
  /** A certificate that expires within this many days is mentioned in the TLS probe's message. Default 14. */
  readonly certificateWarnDays?: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RunAllOptions {
  /** Runs the WebSocket and handshake probes, which open connections the brain records. Default true. */
  readonly websocket?: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DiagnosticsShape {
  /** The four required settings, each named by its environment variable, and every tunable. */
  readonly probeConfig: Effect.Effect<ProbeResult>
  /** A real create, write, fsync and delete in the buffer folder, or in its fallback folder. */
  readonly probeBufferPath: Effect.Effect<ProbeResult>
  readonly probeDns: Effect.Effect<ProbeResult>
  readonly probeTcp: Effect.Effect<ProbeResult>
  /** The TLS handshake and certificate, for `wss://` only. */
  readonly probeTls: Effect.Effect<ProbeResult>
  /** The WebSocket upgrade with the agent's token. */
  readonly probeWebSocket: Effect.Effect<ProbeResult>
  /**
   * A hello, the hello_ack, then one signed heartbeat; passes when the brain keeps the socket open for
   * `observeMillis`, then closes it with 1000. The brain records this session as a worker of the
   * agent while it lasts.
   */
  readonly probeHandshake: Effect.Effect<ProbeResult>
  /** Runs the probes in order; a probe whose prerequisite failed is reported as skipped. */
  readonly runAll: (options?: RunAllOptions) => Effect.Effect<Report>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Diagnostics extends Context.Tag("z4j-agent/Diagnostics")<Diagnostics, DiagnosticsShape>() {}

/** The probes whose failure makes a probe meaningless: without a TCP connection there is no TLS to check. */
const prerequisites: Record<ProbeName, ReadonlyArray<ProbeName>> = {
  config: [],
  buffer: [],
  dns: [],
  tcp: ["dns"],
  tls: ["tcp"],
  websocket: ["tls"],
  handshake: ["websocket"]
}

/**
 * Resolves the settings from `options` over the `Z4J_*` environment (the current `ConfigProvider`)
 * and returns the probes for them.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: DiagnosticsOptions = {}): Effect.Effect<DiagnosticsShape> =>
  Effect.gen(function* () {
    const settings = yield* resolveSettings(options)
    const lookup = yield* Lookup
    const timeoutMillis = options.timeoutMillis ?? 5_000
    const target = Either.map(settings.brainUrl, targetOf)

    const withTarget = (name: ProbeName, probe: (target: ReturnType<typeof targetOf>) => Effect.Effect<ProbeResult>) =>
      Either.match(target, { onLeft: () => Effect.succeed(skippedAfter(name, "config")), onRight: probe })

    const probeConfig = Effect.succeed(probeConfigWith(settings))
    const probeBufferPath = probeBufferFolder({
      buffer: settings.buffer,
      home: settings.home,
      fallback: settings.fallback,
      subfolder: settings.bufferSubfolder,
      maxBytes: settings.bufferMaxBytes
    })
    const probeDns = withTarget("dns", (target) => probeDnsWith(target, lookup, timeoutMillis))
    const probeTcp = withTarget("tcp", (target) => probeTcpWith(target, timeoutMillis))
    const probeTls = withTarget("tls", (target) =>
      probeTlsWith(target, {
        timeoutMillis,
        rejectUnauthorized: settings.rejectUnauthorized,
        warnDays: options.certificateWarnDays ?? 14
      })
    )
    const probeWebSocket = withTarget("websocket", (target) =>
      Either.match(settings.token, {
        onLeft: () => Effect.succeed(skippedAfter("websocket", "config")),
        onRight: (token) =>
          probeWebSocketWith(target, {
            token,
            rejectUnauthorized: settings.rejectUnauthorized,
            timeoutMillis,
            settleMillis: options.settleMillis ?? 1_000
          })
      })
    )
    const probeHandshake = withTarget("handshake", (target) => {
      if (Either.isLeft(settings.token) || Either.isLeft(settings.hmacSecret)) {
        return Effect.succeed(skippedAfter("handshake", "config"))
      }
      return probeHandshakeWith(target, {
        token: settings.token.right,
        secret: settings.hmacSecret.right,
        agentName: settings.agentName,
        rejectUnauthorized: settings.rejectUnauthorized,
        timeoutMillis,
        observeMillis: options.observeMillis ?? 2_000
      })
    })

    const probes: Record<ProbeName, Effect.Effect<ProbeResult>> = {
      config: probeConfig,
      buffer: probeBufferPath,
      dns: probeDns,
      tcp: probeTcp,
      tls: probeTls,
      websocket: probeWebSocket,
      handshake: probeHandshake
    }

    const runAll = (runOptions: RunAllOptions = {}) =>
      Effect.gen(function* () {
        const names: ReadonlyArray<ProbeName> =
          runOptions.websocket === false
            ? ["config", "buffer", "dns", "tcp", "tls"]
            : ["config", "buffer", "dns", "tcp", "tls", "websocket", "handshake"]
        const results = new Map<ProbeName, ProbeResult>()
        for (const name of names) {
          const failed = prerequisites[name]
            .map((required) => results.get(required))
            .find((result) => result?.ok === false)
          // A probe skipped because of an earlier failure passes that failure on, so every skip names the root cause.
          const cause =
            failed === undefined ? undefined : ((failed.details.after as ProbeName | undefined) ?? failed.name)
          const result = cause === undefined ? yield* probes[name] : skippedAfter(name, cause)
          results.set(name, result)
        }
        const list = [...results.values()]
        return { ok: list.every((result) => result.ok), probes: list }
      })

    return {
      probeConfig,
      probeBufferPath,
      probeDns,
      probeTcp,
      probeTls,
      probeWebSocket,
      probeHandshake,
      runAll
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: DiagnosticsOptions = {}): Layer.Layer<Diagnostics> =>
  Layer.effect(Diagnostics, make(options))
