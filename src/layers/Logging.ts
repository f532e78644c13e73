/**
 * The logger of the CLI and of `Z4j.start`: Effect's logger, configured by `Z4J_LOG_LEVEL` and
 * `Z4J_LOG_FORMAT`, writing to stderr so that stdout carries only a command's output (the JSON document
 * of `doctor --json`) or the worker's own. An Effect application configures its own logger instead.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"

/**
 * @since 0.1.0
 * @category models
 */
export type LogFormat = "pretty" | "logfmt" | "json"

/**
 * `Z4J_LOG_LEVEL` or `Z4J_LOG_FORMAT` has a value the agent does not know.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidLogSetting extends Data.TaggedError("InvalidLogSetting")<{
  readonly setting: string
  readonly value: string
  readonly allowed: ReadonlyArray<string>
}> {
  override get message(): string {
    return `${this.setting}: "${this.value}" is not valid. Set it to one of ${this.allowed.join(", ")}`
  }
}

const levels: Record<string, LogLevel.LogLevel> = {
  all: LogLevel.All,
  trace: LogLevel.Trace,
  debug: LogLevel.Debug,
  info: LogLevel.Info,
  warning: LogLevel.Warning,
  warn: LogLevel.Warning,
  error: LogLevel.Error,
  fatal: LogLevel.Fatal,
  none: LogLevel.None
}

const formats: ReadonlyArray<LogFormat> = ["pretty", "logfmt", "json"]

/**
 * Builds the logger layer from the environment. `isTerminal` picks the default format: pretty on a
 * terminal, logfmt otherwise.
 *
 * @since 0.1.0
 * @category layers
 */
export const fromEnvironment = (
  environment: Readonly<Record<string, string | undefined>>,
  isTerminal: boolean
): Either.Either<Layer.Layer<never>, InvalidLogSetting> => {
  const levelText = (environment.Z4J_LOG_LEVEL ?? "info").trim().toLowerCase()
  const level = levels[levelText]
  if (level === undefined) {
    return Either.left(
      new InvalidLogSetting({
        setting: "Z4J_LOG_LEVEL",
        value: environment.Z4J_LOG_LEVEL ?? "",
        allowed: ["trace", "debug", "info", "warning", "error", "fatal", "none"]
      })
    )
  }
  const formatText = (environment.Z4J_LOG_FORMAT ?? (isTerminal ? "pretty" : "logfmt")).trim().toLowerCase()
  if (!formats.includes(formatText as LogFormat)) {
    return Either.left(
      new InvalidLogSetting({ setting: "Z4J_LOG_FORMAT", value: environment.Z4J_LOG_FORMAT ?? "", allowed: formats })
    )
  }
  const format = formatText as LogFormat
  const logger =
    format === "pretty"
      ? Logger.prettyLogger({ stderr: true, colors: isTerminal })
      : format === "logfmt"
        ? Logger.withConsoleError(Logger.logfmtLogger)
        : Logger.withConsoleError(Logger.jsonLogger)
  return Either.right(Layer.merge(Logger.replace(Logger.defaultLogger, logger), Logger.minimumLogLevel(level)))
}
