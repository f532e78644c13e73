/**
 * The plan of `z4j-agent run`, read from its command line without loading the runtime.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import type * as Z4j from "../layers/Z4j.js"
import * as Args from "./Args.js"
import * as Commands from "./commands.js"

/**
 * The agent options, BullMQ settings and worker module that `run` starts, read from its command line.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunPlan {
  readonly options: Z4j.Options
  readonly bullmq?: {
    readonly redisUrl: string
    readonly queues?: ReadonlyArray<string>
    readonly prefix: string
    /** Seconds between two scans for new queues. With 0 the queues are scanned once, at start. Unused with `queues`. */
    readonly discoverIntervalSeconds: number
  }
  readonly module?: string
}

/** One day: longer waits between scans are more likely a unit mistake (milliseconds) than a choice. */
const maxDiscoverIntervalSeconds = 86_400

/**
 * Checks the flag combinations and returns what to start.
 *
 * @since 0.1.0
 * @category parsing
 */
export const planFrom = (
  parsed: Args.Parsed,
  environment: Readonly<Record<string, string | undefined>>
): Either.Either<RunPlan, Args.UsageError> => {
  const usage = (problem: string) => Either.left(new Args.UsageError({ command: Commands.run.name, problem }))
  const flag = (name: string) => Args.stringFlag(parsed, name)
  const engine = flag("engine")
  const module = parsed.positionals[0]

  if (engine !== undefined && engine !== "bullmq") {
    return usage(`--engine ${JSON.stringify(engine)} is not available; the engine the CLI can watch is bullmq`)
  }
  if (engine === undefined) {
    for (const name of ["redis", "queues", "prefix", "discover-interval"]) {
      if (flag(name) !== undefined) return usage(`--${name} needs --engine bullmq`)
    }
    if (module === undefined) return usage("nothing to run: give --engine bullmq, a worker MODULE, or both")
  }

  const options: Record<string, string> = {}
  for (const [name, key] of [
    ["brain-url", "brainUrl"],
    ["token", "token"],
    ["project-id", "projectId"],
    ["hmac-secret", "hmacSecret"],
    ["home", "home"]
  ] as const) {
    const value = flag(name)
    if (value !== undefined) options[key] = value
  }

  let bullmq: RunPlan["bullmq"]
  if (engine === "bullmq") {
    const redisUrl = flag("redis") ?? environment.Z4J_REDIS_URL
    if (redisUrl === undefined || redisUrl === "") {
      return usage("--engine bullmq needs --redis URL (or Z4J_REDIS_URL), such as redis://127.0.0.1:6379")
    }
    const queues = flag("queues")
      ?.split(",")
      .map((name) => name.trim())
      .filter((name) => name !== "")
    const intervalText = flag("discover-interval") ?? environment.Z4J_DISCOVER_INTERVAL_SECONDS
    const discoverIntervalSeconds = intervalText === undefined || intervalText === "" ? 30 : Number(intervalText)
    if (
      !/^\d*$/.test(intervalText ?? "") ||
      !Number.isSafeInteger(discoverIntervalSeconds) ||
      discoverIntervalSeconds > maxDiscoverIntervalSeconds
    ) {
      return usage(
        `--discover-interval (or Z4J_DISCOVER_INTERVAL_SECONDS) needs a whole number of seconds from 0 to ${maxDiscoverIntervalSeconds}, not ${JSON.stringify(intervalText)}`
      )
    }
    bullmq = {
      redisUrl,
      prefix: flag("prefix") ?? "bull",
      discoverIntervalSeconds,
      ...(queues === undefined ? {} : { queues })
    }
  }
  return Either.right({
    options: options as Z4j.Options,
    ...(bullmq === undefined ? {} : { bullmq }),
    ...(module === undefined ? {} : { module })
  })
}
