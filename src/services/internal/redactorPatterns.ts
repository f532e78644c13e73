/**
 * The default key names and value shapes the redactor scrubs, and the checks applied to extra
 * patterns from configuration.
 *
 * @since 0.1.0
 */

/**
 * Key names, lower-cased, whose whole value is replaced. Only a whole-key match counts, so
 * `last_password_reset` keeps its value.
 *
 * @since 0.1.0
 * @category constants
 */
export const secretKeyNames: ReadonlySet<string> = new Set([
  "password",
  "password_confirmation",
  "password_hash",
  "passwd",
  "pwd",
  "old_password",
  "new_password",
  "secret",
  "secrets",
  "client_secret",
  "webhook_secret",
  "token",
  "access_token",
  "refresh_token",
  "id_token",
  "api_token",
  "bearer_token",
  "session_token",
  "api_key",
  "apikey",
  "api-key",
  "x-api-key",
  "x_api_key",
  "authorization",
  "auth",
  "credentials",
  "cookie",
  "set-cookie",
  "set_cookie",
  "ssn",
  "social_security",
  "social_security_number",
  "credit_card",
  "credit_card_number",
  "card_number",
  "cvv",
  "cvc"
])

// Short prefixes such as `SK` or `AKIA` also occur inside ordinary words once matching ignores case,
// so those shapes must not start or end inside a longer run of letters and digits.
const notAfterAlnum = "(?<![a-z0-9])"
const notBeforeAlnum = "(?![a-z0-9])"

/**
 * The value shapes searched anywhere in a string, by name. All of them are compiled with the `i` flag.
 *
 * Every shape starts with a literal prefix or is held to a boundary by a lookbehind, so the regex
 * engine tries each start position once and the combined search stays linear in the string length.
 * `requires` is a character that every match contains. A shape with one is only searched in strings
 * that contain that character, which spares most strings the costly e-mail search.
 *
 * @since 0.1.0
 * @category constants
 */
export const valueShapes: ReadonlyArray<{ readonly name: string; readonly source: string; readonly requires?: "@" }> = [
  { name: "jwt", source: `${notAfterAlnum}eyJ[a-z0-9_-]+\\.[a-z0-9_-]+\\.[a-z0-9_-]*` },
  { name: "bearer", source: "bearer\\s+[a-z0-9._~+/-]{16,}" },
  { name: "stripe", source: `${notAfterAlnum}(?:(?:sk|pk|rk)_(?:live|test)|whsec)_[a-z0-9]{24,}` },
  { name: "slack-token", source: "xox[bpa]-[a-z0-9-]{10,}" },
  { name: "slack-webhook", source: "hooks\\.slack\\.com/services/T[a-z0-9_]+/B[a-z0-9_]+/[a-z0-9_]+" },
  { name: "github-token", source: `${notAfterAlnum}gh[pousr]_[a-z0-9]{36}` },
  { name: "github-pat", source: "github_pat_[a-z0-9_]{82,}" },
  { name: "aws-access-key-id", source: `${notAfterAlnum}(?:AKIA|ASIA)[a-z0-9]{16}` },
  { name: "google-api-key", source: `${notAfterAlnum}AIza[a-z0-9_-]{35}` },
  { name: "twilio-key", source: `${notAfterAlnum}SK[0-9a-f]{32}${notBeforeAlnum}` },
  { name: "sendgrid-key", source: "SG\\.[a-z0-9_-]{22}\\.[a-z0-9_-]{43}" },
  {
    name: "url-with-password",
    // Starting at the literal "://" and checking the scheme behind it means only the positions of "://"
    // start a search, not every letter of a long text.
    source:
      "://(?<=(?:postgres(?:ql)?|mysql|mariadb|mongodb|rediss?|amqps?)(?:\\+[a-z0-9]+)?://)[^\\s/?#@:]*:[^\\s@]+@",
    requires: "@"
  },
  { name: "pem-private-key", source: "-----BEGIN[ a-z0-9]*PRIVATE KEY(?: BLOCK)?-----" },
  {
    name: "email",
    // Starting at the "@" and looking back one character finds the same strings as a full local part,
    // without trying every position of a long word as the start of one.
    source: "@(?<=[a-z0-9._%+-]@)[a-z0-9-]+(?:\\.[a-z0-9-]+)*\\.[a-z]{2,}",
    requires: "@"
  },
  { name: "us-ssn", source: "(?<![0-9])[0-9]{3}-[0-9]{2}-[0-9]{4}(?![0-9])" }
]

const combine = (shapes: typeof valueShapes): RegExp =>
  new RegExp(shapes.map((shape) => `(?:${shape.source})`).join("|"), "i")

/**
 * The value shapes without a `requires` character, as one alternation so a string is scanned once.
 *
 * @since 0.1.0
 * @category constants
 */
export const valueShapesPattern: RegExp = combine(valueShapes.filter((shape) => shape.requires === undefined))

/**
 * The value shapes that require an `@`, as one alternation.
 *
 * @since 0.1.0
 * @category constants
 */
export const atValueShapesPattern: RegExp = combine(valueShapes.filter((shape) => shape.requires === "@"))

/**
 * The length of the shortest string any value shape can match (`a@b.co`); shorter strings skip the search.
 *
 * @since 0.1.0
 * @category constants
 */
export const minValueShapeLength = 6

/**
 * The reason an extra pattern was rejected, with the compile error or the offending fragment.
 *
 * @since 0.1.0
 * @category models
 */
export type PatternProblem =
  | { readonly reason: "syntax"; readonly cause: unknown }
  | { readonly reason: "backtracking"; readonly cause: string }

/**
 * Compiles an extra pattern with the `i` flag, or returns why it cannot be used. Key patterns are
 * anchored so they match whole keys only.
 *
 * @since 0.1.0
 * @category constructors
 */
export const compileExtraPattern = (source: string, wholeKey: boolean): RegExp | PatternProblem => {
  try {
    // Compiling the bare source first rejects fragments such as `a)|(b` that only parse once wrapped.
    new RegExp(source, "i")
  } catch (cause) {
    return { reason: "syntax", cause }
  }
  const nested = findNestedQuantifier(source)
  if (nested !== undefined) {
    return { reason: "backtracking", cause: nested }
  }
  return new RegExp(wholeKey ? `^(?:${source})$` : source, "i")
}

interface GroupFrame {
  readonly start: number
  varies: boolean
}

/**
 * Finds a repeated group that contains a quantifier with a variable count, such as `(a+)+` or
 * `(?:a|b*){2,}`. Such a group backtracks exponentially on a near-miss, because the text can be split
 * between the inner and outer repeats in exponentially many ways. Returns the offending fragment, or
 * `undefined`. Fixed inner counts (`(a{2})+`) and optional atoms (`(-?\d)+`) are allowed.
 *
 * The source must already compile as a RegExp without the `u` flag. Overlapping alternatives such as
 * `(a|aa)+` are not detected.
 *
 * @since 0.1.0
 * @category utils
 */
export const findNestedQuantifier = (source: string): string | undefined => {
  const stack: Array<GroupFrame> = [{ start: 0, varies: false }]
  let index = 0
  while (index < source.length) {
    const char = source[index]
    let atomEnd: number
    let closed: GroupFrame | undefined
    if (char === "\\") {
      atomEnd = skipEscape(source, index)
    } else if (char === "[") {
      atomEnd = skipClass(source, index)
    } else if (char === "(") {
      stack.push({ start: index, varies: false })
      index = skipGroupPrefix(source, index + 1)
      continue
    } else if (char === ")") {
      closed = stack.pop()
      atomEnd = index + 1
    } else if (char === "|" || char === "^" || char === "$") {
      index += 1
      continue
    } else {
      atomEnd = index + 1
    }

    const quantifier = readQuantifier(source, atomEnd)
    if (closed?.varies && quantifier.max > 1) {
      return source.slice(closed.start, quantifier.end)
    }
    const current = stack[stack.length - 1]
    const varies = quantifier.max > 1 && quantifier.max !== quantifier.min
    if (current !== undefined && (varies || closed?.varies === true)) {
      current.varies = true
    }
    index = quantifier.end
  }
  return undefined
}

const skipEscape = (source: string, index: number): number => {
  const next = source[index + 1]
  // `\p{...}`, `\u{...}` and `\k<name>` carry braces or brackets that are not quantifiers.
  if ((next === "p" || next === "P" || next === "u") && source[index + 2] === "{") {
    const close = source.indexOf("}", index + 3)
    return close < 0 ? index + 2 : close + 1
  }
  if (next === "k" && source[index + 2] === "<") {
    const close = source.indexOf(">", index + 3)
    return close < 0 ? index + 2 : close + 1
  }
  return index + 2
}

const skipClass = (source: string, index: number): number => {
  let position = index + 1
  while (position < source.length && source[position] !== "]") {
    position += source[position] === "\\" ? 2 : 1
  }
  return position + 1
}

const skipGroupPrefix = (source: string, index: number): number => {
  if (source[index] !== "?") {
    return index
  }
  const kind = source[index + 1]
  if (kind === "<" && source[index + 2] !== "=" && source[index + 2] !== "!") {
    const close = source.indexOf(">", index + 2)
    return close < 0 ? index + 2 : close + 1
  }
  return kind === "<" ? index + 3 : index + 2
}

const countQuantifier = /^\{(\d+)(,(\d*))?\}/

interface Quantifier {
  readonly min: number
  readonly max: number
  readonly end: number
}

// Reads the quantifier after the atom ending at `index`; an atom without one counts as `{1}`.
const readQuantifier = (source: string, index: number): Quantifier => {
  const char = source[index]
  let min = 1
  let max = 1
  let end = index
  if (char === "*" || char === "+") {
    min = char === "*" ? 0 : 1
    max = Number.POSITIVE_INFINITY
    end = index + 1
  } else if (char === "?") {
    min = 0
    end = index + 1
  } else if (char === "{") {
    const match = countQuantifier.exec(source.slice(index, index + 24))
    if (match === null) {
      return { min, max, end }
    }
    min = Number(match[1])
    if (match[2] === undefined) {
      max = min
    } else if (match[3] === "") {
      max = Number.POSITIVE_INFINITY
    } else {
      max = Number(match[3])
    }
    end = index + match[0].length
  } else {
    return { min, max, end }
  }
  // A lazy marker after the quantifier does not change how often the atom repeats.
  return { min, max, end: source[end] === "?" ? end + 1 : end }
}
