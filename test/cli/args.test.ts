import { describe, expect, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Args from "../../src/cli/Args.js"
import * as Commands from "../../src/cli/commands.js"
import * as Help from "../../src/cli/help.js"
import * as Logging from "../../src/layers/Logging.js"

const parse = (argv: ReadonlyArray<string>, spec = Commands.doctor) => Args.parse(spec, argv)
const problem = (argv: ReadonlyArray<string>, spec = Commands.doctor) => {
  const result = parse(argv, spec)
  if (Either.isRight(result)) throw new Error(`expected a usage error for ${argv.join(" ")}`)
  return result.left.message
}

describe("Args.parse", () => {
  it("reads both value forms and booleans", () => {
    const result = Either.getOrThrow(parse(["--brain-url", "http://127.0.0.1:7700", "--token=abc", "--json"]))
    expect(result.flags["brain-url"]).toBe("http://127.0.0.1:7700")
    expect(result.flags.token).toBe("abc")
    expect(result.flags.json).toBe(true)
    expect(result.help).toBe(false)
  })

  it("keeps = inside a value", () => {
    const result = Either.getOrThrow(parse(["--hmac-secret=abc="]))
    expect(result.flags["hmac-secret"]).toBe("abc=")
  })

  it("help flag anywhere", () => {
    expect(Either.getOrThrow(parse(["--json", "-h"])).help).toBe(true)
    expect(Either.getOrThrow(parse(["--help"])).help).toBe(true)
  })

  it("unknown flag names it and suggests", () => {
    const message = problem(["--brain-ur", "x"])
    expect(message).toContain("unknown flag --brain-ur")
    expect(message).toContain("did you mean --brain-url?")
    expect(message).toContain('"z4j-agent doctor --help"')
  })

  it("unknown flag without a close match", () => {
    expect(problem(["--verbose"])).not.toContain("did you mean")
  })

  it("single dash is rejected", () => {
    expect(problem(["-t"])).toContain("two dashes")
  })

  it("missing value is reported", () => {
    expect(problem(["--token"])).toContain("flag --token needs a value")
    expect(problem(["--token", "--json"])).toContain("flag --token needs a value")
    expect(problem(["--token="])).toContain("flag --token needs a value")
  })

  it("boolean with a value is rejected", () => {
    expect(problem(["--json=yes"])).toContain("--json takes no value")
  })

  it("repeated flag is rejected", () => {
    expect(problem(["--home", "a", "--home", "b"])).toContain("--home is given more than once")
  })

  it("stray positional is not quoted", () => {
    const secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"
    const message = problem([secret])
    expect(message).toContain("takes no positional arguments")
    expect(message).not.toContain(secret)
  })

  it("secret values never appear in errors", () => {
    const secret = "tok_4f1d9a7b2c"
    for (const argv of [
      ["--token", secret, "--tokn", "x"],
      ["--token", secret, "--token", secret],
      ["--token", secret, "--timeout-ms"]
    ]) {
      expect(problem(argv)).not.toContain(secret)
    }
  })

  it("positional and -- for run", () => {
    const result = Either.getOrThrow(parse(["--engine", "bullmq", "--", "--odd-name.js"], Commands.run))
    expect(result.positionals).toEqual(["--odd-name.js"])
    expect(problem(["a.js", "b.js"], Commands.run)).toContain("takes at most 1")
  })

  it("integer flag checks its range", () => {
    const parsed = Either.getOrThrow(parse(["--timeout-ms", "0"]))
    const result = Args.integerFlag(parsed, Commands.doctor, "timeout-ms", 1)
    expect(Either.isLeft(result)).toBe(true)
    const good = Either.getOrThrow(parse(["--timeout-ms", "250"]))
    expect(Either.getOrThrow(Args.integerFlag(good, Commands.doctor, "timeout-ms", 1))).toBe(250)
  })
})

describe("Help", () => {
  it("lists every flag with env and default", () => {
    for (const spec of Commands.all) {
      const text = Help.command(spec)
      for (const flag of spec.flags) {
        expect(text).toContain(`--${flag.name}`)
        if (flag.env !== undefined) expect(text).toContain(flag.env)
        if (flag.defaultValue !== undefined) expect(text).toContain(`default: ${flag.defaultValue}`)
      }
    }
  })

  it("general help lists every command", () => {
    const text = Help.general()
    for (const spec of Commands.all) expect(text).toContain(spec.name)
    expect(text).toContain("Z4J_LOG_LEVEL")
    expect(text).toContain("Z4J_LOG_FORMAT")
  })

  it("lines fit 100 columns except examples", () => {
    for (const spec of Commands.all) {
      const examples = new Set(spec.examples.map((example) => `  ${example}`))
      for (const line of Help.command(spec).split("\n")) {
        if (!examples.has(line)) expect(line.length).toBeLessThanOrEqual(100)
      }
    }
  })
})

describe("Logging.fromEnvironment", () => {
  it("accepts the documented values", () => {
    for (const format of ["pretty", "logfmt", "json"]) {
      for (const level of ["debug", "info", "warning", "none"]) {
        const result = Logging.fromEnvironment({ Z4J_LOG_FORMAT: format, Z4J_LOG_LEVEL: level }, false)
        expect(Either.isRight(result)).toBe(true)
      }
    }
  })

  it("unknown level names the setting", () => {
    const result = Logging.fromEnvironment({ Z4J_LOG_LEVEL: "verbose" }, false)
    expect(Either.isLeft(result)).toBe(true)
    expect(Either.isLeft(result) ? result.left.message : "").toContain('Z4J_LOG_LEVEL: "verbose" is not valid')
  })

  it("unknown format names the setting", () => {
    const result = Logging.fromEnvironment({ Z4J_LOG_FORMAT: "xml" }, false)
    expect(Either.isLeft(result)).toBe(true)
    expect(Either.isLeft(result) ? result.left.message : "").toContain("Z4J_LOG_FORMAT")
  })
})
