/**
 * Help text, rendered from the command declarations.
 *
 * @since 0.1.0
 */
import type { CommandSpec, FlagSpec } from "./Args.js"
import * as Commands from "./commands.js"

const width = 100

const wrap = (text: string, indent: number): Array<string> => {
  const lines: Array<string> = []
  let line = ""
  for (const word of text.split(/\s+/)) {
    if (line !== "" && indent + line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === "" ? word : `${line} ${word}`
    }
  }
  if (line !== "") lines.push(line)
  return lines.map((each) => " ".repeat(indent) + each)
}

const flagLabel = (flag: FlagSpec) =>
  flag.kind === "string" ? `--${flag.name} ${flag.placeholder ?? "VALUE"}` : `--${flag.name}`

const flagText = (flag: FlagSpec) => {
  const notes = [
    ...(flag.env === undefined ? [] : [`environment: ${flag.env}`]),
    ...(flag.defaultValue === undefined ? [] : [`default: ${flag.defaultValue}`])
  ]
  return notes.length === 0 ? flag.description : `${flag.description} (${notes.join("; ")})`
}

/**
 * Renders the help of one command.
 *
 * @since 0.1.0
 * @category rendering
 */
export const command = (spec: CommandSpec): string => {
  const positionals = spec.positionals.map((positional) => ` [${positional.name}]`).join("")
  const lines = [`Usage: z4j-agent ${spec.name}${spec.flags.length > 0 ? " [flags]" : ""}${positionals}`, ""]
  lines.push(spec.summary, "")
  for (const paragraph of spec.description) lines.push(...wrap(paragraph, 0), "")
  if (spec.positionals.length > 0) {
    lines.push("Arguments:")
    for (const positional of spec.positionals) {
      lines.push(`  ${positional.name}`, ...wrap(positional.description, 6))
    }
    lines.push("")
  }
  lines.push("Flags:")
  for (const flag of spec.flags) lines.push(`  ${flagLabel(flag)}`, ...wrap(flagText(flag), 6))
  lines.push("  -h, --help", ...wrap("Show this help", 6), "")
  if (spec.examples.length > 0) {
    lines.push("Examples:")
    for (const example of spec.examples) lines.push(`  ${example}`)
    lines.push("")
  }
  return lines.join("\n")
}

/**
 * Renders the general help: the commands and the environment every command reads.
 *
 * @since 0.1.0
 * @category rendering
 */
export const general = (): string => {
  const nameWidth = Math.max(...Commands.all.map((spec) => spec.name.length)) + 2
  const lines = [
    "Usage: z4j-agent <command> [flags]",
    "",
    "The z4j agent: connects workers to the z4j brain, streams their job events and runs the brain's commands.",
    "",
    "Commands:"
  ]
  for (const spec of Commands.all) lines.push(`  ${spec.name.padEnd(nameWidth)}${spec.summary}`)
  lines.push("", "Environment read by every command:")
  for (const [name, text] of Commands.loggingVariables) lines.push(`  ${name}`, ...wrap(text, 6))
  lines.push(
    "",
    'Run "z4j-agent <command> --help" or "z4j-agent help <command>" for the flags of a command.',
    'Run "z4j-agent --version" for the version.',
    ""
  )
  return lines.join("\n")
}
