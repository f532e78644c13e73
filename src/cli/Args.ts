/**
 * The command line's grammar: each command declares its flags and positional arguments once, and both
 * the parser and the help text are built from that declaration.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Either from "effect/Either"

/**
 * One `--flag`. A string flag takes a value (`--name value` or `--name=value`); a boolean flag takes none.
 *
 * @since 0.1.0
 * @category models
 */
export interface FlagSpec {
  readonly name: string
  readonly kind: "string" | "boolean"
  /** The placeholder shown in help, such as `URL` or `MILLIS`. */
  readonly placeholder?: string
  /** The environment variable the flag overrides. */
  readonly env?: string
  readonly description: string
  /** The default, as help shows it. */
  readonly defaultValue?: string
  /** A flag whose value is a secret: error messages never quote it. */
  readonly secret?: boolean
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PositionalSpec {
  readonly name: string
  readonly description: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CommandSpec {
  readonly name: string
  /** One line for the command list. */
  readonly summary: string
  /** Paragraphs shown under the usage line. */
  readonly description: ReadonlyArray<string>
  readonly flags: ReadonlyArray<FlagSpec>
  /** At most this many positional arguments; each is described in help. */
  readonly positionals: ReadonlyArray<PositionalSpec>
  readonly examples: ReadonlyArray<string>
}

/**
 * A parsed command line: flag values by flag name, and the positional arguments in order.
 *
 * @since 0.1.0
 * @category models
 */
export interface Parsed {
  readonly flags: Readonly<Record<string, string | boolean>>
  readonly positionals: ReadonlyArray<string>
  readonly help: boolean
}

/**
 * The command line does not match the command's grammar. The message names the argument, never a
 * secret's value, and points to the command's help.
 *
 * @since 0.1.0
 * @category errors
 */
export class UsageError extends Data.TaggedError("UsageError")<{
  readonly command: string
  readonly problem: string
}> {
  override get message(): string {
    const help = this.command === "" ? "z4j-agent --help" : `z4j-agent ${this.command} --help`
    return `${this.problem}. Run "${help}" for usage`
  }
}

const editDistance = (left: string, right: string): number => {
  let previous = Array.from({ length: right.length + 1 }, (_, index) => index)
  for (let row = 1; row <= left.length; row++) {
    const current = [row]
    for (let column = 1; column <= right.length; column++) {
      const substitution = previous[column - 1]! + (left[row - 1] === right[column - 1] ? 0 : 1)
      current.push(Math.min(previous[column]! + 1, current[column - 1]! + 1, substitution))
    }
    previous = current
  }
  return previous[right.length]!
}

/**
 * Finds the closest of `candidates` to `input`, when it is close enough to be a likely typo.
 *
 * @since 0.1.0
 * @category parsing
 */
export const closest = (input: string, candidates: ReadonlyArray<string>): string | undefined => {
  let best: string | undefined
  let bestDistance = 3
  for (const candidate of candidates) {
    const distance = editDistance(input, candidate)
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/**
 * Parses `argv` (the arguments after the command name) against `spec`. `-h` and `--help` anywhere
 * set `help`; `--` ends the flags.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (spec: CommandSpec, argv: ReadonlyArray<string>): Either.Either<Parsed, UsageError> => {
  const flags: Record<string, string | boolean> = {}
  const positionals: Array<string> = []
  let help = false
  const usage = (problem: string) => Either.left(new UsageError({ command: spec.name, problem }))

  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!
    if (argument === "--") {
      positionals.push(...argv.slice(index + 1))
      break
    }
    if (argument === "-h" || argument === "--help") {
      help = true
      continue
    }
    if (!argument.startsWith("-") || argument === "-") {
      positionals.push(argument)
      continue
    }
    if (!argument.startsWith("--")) {
      return usage(`unknown option ${argument} for "${spec.name}"; flags are written with two dashes`)
    }
    const equals = argument.indexOf("=")
    const name = argument.slice(2, equals === -1 ? undefined : equals)
    const flag = spec.flags.find((candidate) => candidate.name === name)
    if (flag === undefined) {
      const suggestion = closest(
        name,
        spec.flags.map((candidate) => candidate.name)
      )
      const hint = suggestion === undefined ? "" : ` (did you mean --${suggestion}?)`
      return usage(`unknown flag --${name} for "${spec.name}"${hint}`)
    }
    if (name in flags) return usage(`flag --${name} is given more than once`)
    if (flag.kind === "boolean") {
      if (equals !== -1) return usage(`flag --${name} takes no value`)
      flags[name] = true
      continue
    }
    let value: string | undefined
    if (equals !== -1) {
      value = argument.slice(equals + 1)
    } else {
      const next = argv[index + 1]
      // A value that looks like a flag is more likely a forgotten value than a value.
      if (next !== undefined && !next.startsWith("--")) {
        value = next
        index += 1
      }
    }
    if (value === undefined || value === "") {
      return usage(`flag --${name} needs a value${flag.placeholder === undefined ? "" : ` (${flag.placeholder})`}`)
    }
    flags[name] = value
  }

  if (!help && positionals.length > spec.positionals.length) {
    const extra = positionals[spec.positionals.length]!
    // A stray positional may be a secret pasted without its flag, so it is described, not quoted.
    const shown = extra.length <= 40 && /^[\w./@:-]+$/.test(extra) && spec.positionals.length > 0 ? ` "${extra}"` : ""
    return usage(
      spec.positionals.length === 0
        ? `"${spec.name}" takes no positional arguments, and one was given`
        : `unexpected argument${shown}: "${spec.name}" takes at most ${spec.positionals.length}`
    )
  }
  return Either.right({ flags, positionals, help })
}

/**
 * Returns a string flag's value, if given.
 *
 * @since 0.1.0
 * @category getters
 */
export const stringFlag = (parsed: Parsed, name: string): string | undefined => {
  const value = parsed.flags[name]
  return typeof value === "string" ? value : undefined
}

/**
 * Whether a boolean flag was given.
 *
 * @since 0.1.0
 * @category getters
 */
export const booleanFlag = (parsed: Parsed, name: string): boolean => parsed.flags[name] === true

/**
 * A flag's value as a whole number of at least `min`.
 *
 * @since 0.1.0
 * @category getters
 */
export const integerFlag = (
  parsed: Parsed,
  spec: CommandSpec,
  name: string,
  min: number
): Either.Either<number | undefined, UsageError> => {
  const text = stringFlag(parsed, name)
  if (text === undefined) return Either.right(undefined)
  const value = Number(text)
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min) {
    return Either.left(
      new UsageError({
        command: spec.name,
        problem: `flag --${name} needs a whole number of at least ${min}, not "${text}"`
      })
    )
  }
  return Either.right(value)
}
