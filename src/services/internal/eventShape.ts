import type { TaskEvent } from "../../engines/EngineAdapter.js"

/** The brain stores `engine` in a 40-character column and `task_id` in a 200-character one. */
const maxEngineLength = 40
const maxTaskIdLength = 200

/**
 * An event whose shape the brain cannot store. The message names the field and the fix but never
 * the task id or data, which may carry secrets the redactor has not seen yet.
 */
export class InvalidTaskEvent extends Error {
  override readonly name = "InvalidTaskEvent"
}

const describeValue = (value: unknown): string => {
  if (value === null) return "null"
  if (typeof value === "string") return `a ${value.length}-character string`
  return `a value of type ${typeof value}`
}

/**
 * Checks the fields of a host event before it is redacted and rendered, and throws `InvalidTaskEvent`
 * for one the brain could not store: it skips events without kind or engine, and a longer engine or
 * task id does not fit its columns.
 */
export const checkTaskEvent = (event: unknown): TaskEvent => {
  if (event === null || typeof event !== "object") {
    throw new InvalidTaskEvent(
      `invalid event: expected an object with kind, engine and taskId, got ${describeValue(event)}`
    )
  }
  const { kind, engine, taskId } = event as Record<string, unknown>
  if (typeof kind !== "string" || kind.trim() === "") {
    throw new InvalidTaskEvent(
      `invalid event kind: expected a non-empty string such as "task.succeeded", got ${describeValue(kind)}`
    )
  }
  if (typeof engine !== "string" || engine.trim() === "" || engine.length > maxEngineLength) {
    const start =
      typeof engine === "string" && engine.length > 0 ? ` starting ${JSON.stringify(engine.slice(0, 20))}` : ""
    throw new InvalidTaskEvent(
      `invalid event engine: expected 1 to ${maxEngineLength} characters, got ${describeValue(engine)}${start}; name the engine in ${maxEngineLength} characters or fewer`
    )
  }
  if (typeof taskId !== "string" || taskId.length > maxTaskIdLength) {
    throw new InvalidTaskEvent(
      `invalid taskId for engine ${JSON.stringify(engine)}: expected a string of at most ${maxTaskIdLength} characters, got ${describeValue(taskId)}; derive a shorter id (a hash of the long one, for example)`
    )
  }
  return event as TaskEvent
}
