import * as os from "node:os"
import * as path from "node:path"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { agentKey } from "../../layers/Z4j.js"
import { decodeHmacSecret, InvalidSecret } from "../../protocol/index.js"
import type { AgentConfigShape } from "../AgentConfig.js"
import * as AgentConfig from "../AgentConfig.js"
import type { DiagnosticsOptions, ProbeResult } from "../Diagnostics.js"
import { fallbackFolder } from "./diagnosticsBuffer.js"
import { fail, pass } from "./diagnosticsResult.js"

/** One missing or malformed setting. It never contains a secret's value. */
export interface Problem {
  readonly setting: string
  readonly problem: string
  readonly fix: string
}

/** Each setting resolved on its own, so that one bad value does not hide what the others allow to probe. */
export interface Settings {
  readonly brainUrl: Either.Either<string, Problem>
  readonly token: Either.Either<Redacted.Redacted<string>, Problem>
  readonly projectId: Either.Either<string, Problem>
  readonly hmacSecret: Either.Either<Redacted.Redacted<Uint8Array>, Problem>
  readonly home: string
  readonly fallback: string
  readonly buffer: "sqlite" | "memory"
  /** The buffer's folder inside a home, as the SQLite buffer names it for this agent. */
  readonly bufferSubfolder: string
  readonly bufferMaxBytes: number
  readonly agentName: string
  readonly rejectUnauthorized: boolean
  /** A problem in another setting, found by resolving the whole configuration as the agent does. */
  readonly otherProblems: ReadonlyArray<Problem>
}

const placeholderSecretBytes = 32

const missing = (setting: string): Problem => ({
  setting,
  problem: "missing",
  fix: `Set ${setting}`
})

const read = (explicit: string | Redacted.Redacted<string> | undefined, config: Config.Config<string>) =>
  explicit !== undefined
    ? Effect.succeed(Option.some(typeof explicit === "string" ? explicit : Redacted.value(explicit)))
    : Effect.orElseSucceed(Config.option(config), () => Option.none<string>())

const resolveUrl = (raw: Option.Option<string>, allowInsecure: boolean): Either.Either<string, Problem> => {
  if (Option.isNone(raw)) return Either.left(missing("Z4J_BRAIN_URL"))
  try {
    const parsed = new URL(raw.value.trim())
    if (parsed.username !== "" || parsed.password !== "") {
      // The agent authenticates with its token. Credentials in the URL would be sent as well, and
      // would appear in every message that names the URL.
      return Either.left({
        setting: "Z4J_BRAIN_URL",
        problem: "contains a user name or password",
        fix: "Remove them from the URL; the agent authenticates with Z4J_TOKEN"
      })
    }
  } catch {
    // resolveBrainUrl reports the malformed URL.
  }
  return Either.mapLeft(AgentConfig.resolveBrainUrl(raw.value, allowInsecure), (error) => ({
    setting: error.setting,
    problem: error.problem,
    fix: error.fix
  }))
}

const resolveSecret = (raw: Option.Option<string>): Either.Either<Redacted.Redacted<Uint8Array>, Problem> => {
  if (Option.isNone(raw)) return Either.left(missing("Z4J_HMAC_SECRET"))
  try {
    return Either.right(Redacted.make(decodeHmacSecret(raw.value)))
  } catch (error) {
    // InvalidSecret's message describes the text without quoting it; any other error might quote it.
    const problem = error instanceof InvalidSecret ? error.message : "not valid base64url"
    return Either.left({
      setting: "Z4J_HMAC_SECRET",
      problem,
      fix: "Copy the hmac_secret the brain returned when the agent was created (44 base64url characters)"
    })
  }
}

export const resolveSettings = (options: DiagnosticsOptions): Effect.Effect<Settings> =>
  Effect.gen(function* () {
    const brainUrl = resolveUrl(
      yield* read(options.brainUrl, Config.string("Z4J_BRAIN_URL")),
      options.allowInsecureTransport ?? false
    )
    const tokenText = yield* read(options.token, Config.string("Z4J_TOKEN"))
    const token = Option.match(tokenText, {
      onNone: () => Either.left(missing("Z4J_TOKEN")),
      onSome: (value): Either.Either<Redacted.Redacted<string>, Problem> =>
        value.trim() === ""
          ? Either.left({
              setting: "Z4J_TOKEN",
              problem: "empty",
              fix: "Set it to the token the brain showed when the agent was created"
            })
          : Either.right(Redacted.make(value))
    })
    const projectId = Either.fromOption(yield* read(options.projectId, Config.string("Z4J_PROJECT_ID")), () =>
      missing("Z4J_PROJECT_ID")
    )
    const hmacSecret = resolveSecret(yield* read(options.hmacSecret, Config.string("Z4J_HMAC_SECRET")))

    // The agent's own resolution covers every tunable. The four settings checked above are replaced by
    // valid placeholders, so that a problem it reports is one of the others.
    const full = yield* Effect.either(
      AgentConfig.make({
        ...options,
        brainUrl: "ws://127.0.0.1",
        token: "placeholder",
        projectId: "placeholder",
        hmacSecret: Buffer.alloc(placeholderSecretBytes).toString("base64url")
      })
    )
    const otherProblems: Array<Problem> = []
    if (Either.isLeft(full)) {
      const error = full.left
      otherProblems.push(
        error._tag === "InvalidAgentConfig"
          ? { setting: error.setting, problem: error.problem, fix: error.fix }
          : { setting: "configuration", problem: error.message, fix: "Correct the value it names" }
      )
    }

    const homeText = yield* read(options.home, Config.string("Z4J_HOME"))
    const bufferText = yield* read(options.buffer, Config.string("Z4J_BUFFER"))
    const config = Either.getRight(full)
    // The buffer folder is named after a hash of the brain URL, project and token, so it is known only
    // when all three are valid.
    const bufferSubfolder =
      Either.isRight(brainUrl) && Either.isRight(token) && Either.isRight(projectId)
        ? path.join(
            "buffers",
            agentKey({ brainUrl: brainUrl.right, token: token.right, projectId: projectId.right } as AgentConfigShape)
          )
        : "buffers"
    return {
      bufferSubfolder,
      brainUrl,
      token,
      projectId,
      hmacSecret,
      home: Option.getOrElse(homeText, () => path.join(os.homedir(), ".z4j")),
      fallback: fallbackFolder(),
      buffer: Option.getOrUndefined(bufferText) === "memory" ? "memory" : "sqlite",
      bufferMaxBytes: Option.match(config, {
        onNone: () => AgentConfig.defaults.bufferMaxBytes,
        onSome: (value) => value.bufferMaxBytes
      }),
      agentName: Option.match(config, { onNone: () => os.hostname(), onSome: (value) => value.agentName }),
      rejectUnauthorized: options.rejectUnauthorized ?? true,
      otherProblems
    }
  })

export const problemsOf = (settings: Settings): ReadonlyArray<Problem> => {
  const problems: Array<Problem> = []
  const required: ReadonlyArray<Either.Either<unknown, Problem>> = [
    settings.brainUrl,
    settings.token,
    settings.projectId,
    settings.hmacSecret
  ]
  for (const setting of required) {
    if (Either.isLeft(setting)) problems.push(setting.left)
  }
  return [...problems, ...settings.otherProblems]
}

export const describeProblem = (problem: Problem): string => `${problem.setting}: ${problem.problem}. ${problem.fix}`

/** Says whether a secret is usable without showing it: "missing", "invalid", or `usable`. */
const secretState = (setting: Either.Either<unknown, Problem>, usable: string): string =>
  Either.isRight(setting) ? usable : setting.left.problem === "missing" ? "missing" : "invalid"

export const probeConfig = (settings: Settings): ProbeResult => {
  const problems = problemsOf(settings)
  const details = {
    brainUrl: Either.getOrNull(settings.brainUrl),
    projectId: Either.getOrNull(settings.projectId),
    token: secretState(settings.token, "set"),
    hmacSecret: secretState(settings.hmacSecret, "valid"),
    home: settings.home,
    buffer: settings.buffer,
    problems: problems.map((problem) => ({ ...problem }))
  }
  if (problems.length > 0) {
    return fail("config", problems.map(describeProblem).join("; "), details)
  }
  return pass(
    "config",
    `Z4J_BRAIN_URL, Z4J_TOKEN, Z4J_PROJECT_ID and Z4J_HMAC_SECRET are valid; the agent connects to ${details.brainUrl}`,
    details
  )
}
