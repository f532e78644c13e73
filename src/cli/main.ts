#!/usr/bin/env node
/**
 * The `z4j-agent` executable: `doctor`, `run`, `version` and `help`.
 *
 * Exit status: 0 on success; 1 when `doctor` finds a problem or `run` stops on an error; 2 when the
 * command line or the logging settings are invalid.
 *
 * @since 0.1.0
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Logging from "../layers/Logging.js"
import * as Args from "./Args.js"
import * as Commands from "./commands.js"
import * as Help from "./help.js"
import * as RunPlan from "./runPlan.js"
import * as Version from "./version.js"

const usageExitCode = 2

/** Prints a usage error as JSON on stdout when the command line asked for JSON, else on stderr. */
const reportUsage = (error: Args.UsageError | Logging.InvalidLogSetting, json: boolean) =>
  Effect.as(
    json
      ? Console.log(JSON.stringify({ ok: false, stage: "arguments", error: { message: error.message } }))
      : Console.error(`z4j-agent: ${error.message}`),
    usageExitCode
  )

const parseOrReport = (
  spec: Args.CommandSpec,
  argv: ReadonlyArray<string>,
  use: (parsed: Args.Parsed) => Effect.Effect<number, unknown>
) =>
  Either.match(Args.parse(spec, argv), {
    onLeft: (error) => reportUsage(error, argv.includes("--json")),
    onRight: (parsed) => (parsed.help ? Effect.as(Console.log(Help.command(spec)), 0) : use(parsed))
  })

// doctor and run load the runtime, which help and version do not need, so they are imported on use.
const loadDoctor = Effect.promise(() => import("./doctor.js"))
const loadRun = Effect.promise(() => import("./run.js"))

const doctor = (argv: ReadonlyArray<string>) =>
  parseOrReport(Commands.doctor, argv, (parsed) =>
    Effect.flatMap(loadDoctor, (Doctor) =>
      Either.match(Doctor.optionsFrom(parsed), {
        onLeft: (error) => reportUsage(error, Args.booleanFlag(parsed, "json")),
        onRight: (options) =>
          Effect.gen(function* () {
            const { output, exitCode } = yield* Doctor.run(options, {
              json: Args.booleanFlag(parsed, "json"),
              websocket: !Args.booleanFlag(parsed, "no-websocket")
            })
            yield* Console.log(output)
            return exitCode
          })
      })
    )
  )

const run = (argv: ReadonlyArray<string>) =>
  parseOrReport(Commands.run, argv, (parsed) =>
    Either.match(RunPlan.planFrom(parsed, process.env), {
      onLeft: (error) => reportUsage(error, false),
      onRight: (plan) =>
        Effect.flatMap(loadRun, (Run) =>
          Run.run(plan).pipe(
            Effect.as(0),
            Effect.catchAll((error) =>
              Effect.as(
                Effect.logError(`z4j-agent stopped: ${error instanceof Error ? error.message : String(error)}`),
                1
              )
            )
          )
        )
    })
  )

const version = (argv: ReadonlyArray<string>) =>
  parseOrReport(Commands.version, argv, (parsed) =>
    Effect.as(Console.log(Version.render(Version.current(), Args.booleanFlag(parsed, "json"))), 0)
  )

const commandNames = Commands.all.map((spec) => spec.name)

const unknownCommand = (name: string) => {
  const suggestion = Args.closest(name, commandNames)
  // A mistyped command is quoted only when it cannot be a pasted secret.
  const shown = name.length <= 20 && /^[a-z-]+$/.test(name) ? ` "${name}"` : ""
  return new Args.UsageError({
    command: "",
    problem: `unknown command${shown}${suggestion === undefined ? "" : ` (did you mean "${suggestion}"?)`}`
  })
}

const help = (argv: ReadonlyArray<string>) =>
  parseOrReport(Commands.help, argv, (parsed) => {
    const name = parsed.positionals[0]
    if (name === undefined) return Effect.as(Console.log(Help.general()), 0)
    const spec = Commands.all.find((candidate) => candidate.name === name)
    return spec === undefined ? reportUsage(unknownCommand(name), false) : Effect.as(Console.log(Help.command(spec)), 0)
  })

/**
 * Runs the command line `argv` (without the node and script paths) and returns the exit status.
 *
 * @since 0.1.0
 * @category running
 */
const main = (argv: ReadonlyArray<string>): Effect.Effect<number> => {
  const [name, ...rest] = argv
  const program: Effect.Effect<number, unknown> =
    name === undefined
      ? Effect.as(Console.error(Help.general()), usageExitCode)
      : name === "-h" || name === "--help"
        ? Effect.as(Console.log(Help.general()), 0)
        : name === "-V" || name === "--version"
          ? version(rest)
          : name === "doctor"
            ? doctor(rest)
            : name === "run"
              ? run(rest)
              : name === "version"
                ? version(rest)
                : name === "help"
                  ? help(rest)
                  : reportUsage(unknownCommand(name), rest.includes("--json"))

  return Either.match(Logging.fromEnvironment(process.env, process.stderr.isTTY === true), {
    onLeft: (error) => reportUsage(error, argv.includes("--json")),
    onRight: (logger) =>
      program.pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause) ? Effect.interrupt : Effect.as(Effect.logError("z4j-agent failed", cause), 1)
        ),
        Effect.provide(logger)
      )
  })
}

NodeRuntime.runMain(main(process.argv.slice(2)), {
  disableErrorReporting: true,
  // runMain adds its own pretty logger on stdout by default; the CLI logs once, on stderr, in the
  // format Z4J_LOG_FORMAT names.
  disablePrettyLogger: true,
  teardown: (exit, onExit) => {
    // An interruption is the graceful stop that SIGTERM or SIGINT asked for.
    if (Exit.isSuccess(exit)) onExit(typeof exit.value === "number" ? exit.value : 0)
    else onExit(Cause.isInterruptedOnly(exit.cause) ? 0 : 1)
  }
})
