import * as Cause from "effect/Cause"
import { float } from "../../../protocol/JsonValue.js"

/**
 * Formats the `exception` text of an error: its tag (or class name) and its message. Fields of
 * tagged errors are left out, because inside a string the redactor can no longer match them by key.
 */
export const describeError = (error: unknown): string => {
  if (typeof error === "string") return error
  if (typeof error === "object" && error !== null) {
    const tag = "_tag" in error && typeof error._tag === "string" ? error._tag : undefined
    const name = tag ?? (error instanceof Error ? error.name : error.constructor?.name)
    const message = "message" in error && typeof error.message === "string" ? error.message : ""
    if (name !== undefined && name !== "" && name !== "Object") return message === "" ? name : `${name}: ${message}`
    if (message !== "") return message
  }
  try {
    return JSON.stringify(error) ?? String(error)
  } catch {
    return String(error)
  }
}

/** Builds the `exception` and `traceback` keys of `task.failed` and `task.retried`. */
export const failureData = (cause: Cause.Cause<unknown>): { exception: string; traceback: string } => ({
  exception: describeError(Cause.squash(cause)),
  traceback: Cause.pretty(cause, { renderErrorCause: true })
})

/** Builds `runtime_ms` as an integer, which the brain stores, and `runtime` in seconds as a JSON float. */
export const runtimeData = (nanos: bigint): { runtime_ms: number; runtime: ReturnType<typeof float> } => {
  const millis = Number(nanos) / 1e6
  return { runtime_ms: Math.round(millis), runtime: float(millis / 1000) }
}
