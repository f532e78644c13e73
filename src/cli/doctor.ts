/**
 * `z4j-agent doctor`: runs the Diagnostics probes and prints their results.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Diagnostics from "../services/Diagnostics.js"
import * as Args from "./Args.js"
import * as Commands from "./commands.js"

/**
 * The JSON document `doctor --json` prints. An invalid configuration adds `stage: "config"` and the
 * problems, each named by its environment variable.
 *
 * @since 0.1.0
 * @category models
 */
export interface DoctorDocument {
  readonly ok: boolean
  readonly stage?: "config"
  readonly error?: { readonly message: string; readonly problems: Diagnostics.DetailValue }
  readonly probes: ReadonlyArray<Diagnostics.ProbeResult>
}

/**
 * The Diagnostics options that the command line sets.
 *
 * @since 0.1.0
 * @category parsing
 */
export const optionsFrom = (parsed: Args.Parsed): Either.Either<Diagnostics.DiagnosticsOptions, Args.UsageError> =>
  Either.map(Args.integerFlag(parsed, Commands.doctor, "timeout-ms", 1), (timeoutMillis) => {
    const brainUrl = Args.stringFlag(parsed, "brain-url")
    const token = Args.stringFlag(parsed, "token")
    const projectId = Args.stringFlag(parsed, "project-id")
    const hmacSecret = Args.stringFlag(parsed, "hmac-secret")
    const home = Args.stringFlag(parsed, "home")
    return {
      ...(brainUrl === undefined ? {} : { brainUrl }),
      ...(token === undefined ? {} : { token }),
      ...(projectId === undefined ? {} : { projectId }),
      ...(hmacSecret === undefined ? {} : { hmacSecret }),
      ...(home === undefined ? {} : { home }),
      ...(timeoutMillis === undefined ? {} : { timeoutMillis })
    }
  })

/**
 * @since 0.1.0
 * @category rendering
 */
export const toDocument = (report: Diagnostics.Report): DoctorDocument => {
  const config = report.probes.find((probe) => probe.name === "config")
  if (config === undefined || config.ok) return { ok: report.ok, probes: report.probes }
  return {
    ok: false,
    stage: "config",
    error: { message: config.message, problems: config.details.problems ?? [] },
    probes: report.probes
  }
}

const labelWidth = Math.max(
  ...["config", "buffer", "dns", "tcp", "tls", "websocket", "handshake"].map((name) => name.length)
)

/**
 * Renders one line per probe (`pass`, `FAIL` or `skip`), then a summary line.
 *
 * @since 0.1.0
 * @category rendering
 */
export const renderText = (report: Diagnostics.Report): string => {
  const lines = report.probes.map((probe) => {
    let status = probe.ok ? "pass" : "FAIL"
    if (probe.details.skipped === true) status = "skip"
    return `${status}  ${probe.name.padEnd(labelWidth)}  ${probe.message}`
  })
  const failed = report.probes.filter((probe) => !probe.ok && probe.details.skipped !== true)
  lines.push(
    failed.length === 0
      ? `All ${report.probes.length} probes passed.`
      : `${failed.length} of ${report.probes.length} probes failed: ${failed.map((probe) => probe.name).join(", ")}.`
  )
  return lines.join("\n")
}

/**
 * Runs the probes and returns the text to print and the exit status: 0 when every probe passed, 1
 * otherwise.
 *
 * @since 0.1.0
 * @category commands
 */
export const run = (
  options: Diagnostics.DiagnosticsOptions,
  flags: { readonly json: boolean; readonly websocket: boolean }
): Effect.Effect<{ readonly output: string; readonly exitCode: number }> =>
  Effect.gen(function* () {
    const diagnostics = yield* Diagnostics.make(options)
    const report = yield* diagnostics.runAll({ websocket: flags.websocket })
    const output = flags.json ? JSON.stringify(toDocument(report)) : renderText(report)
    return { output, exitCode: report.ok ? 0 : 1 }
  })
