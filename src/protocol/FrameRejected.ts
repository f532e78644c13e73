import * as Data from "effect/Data"

/**
 * The reason an inbound signed frame was rejected. The z4j brain closes with 4403 for every reason from
 * `bad_signature` on (its `SignatureError`) and with 1011 for `malformed`, `bad_version` and
 * `bad_payload` (its `ProtocolError`).
 *
 * @since 0.1.0
 * @category models
 */
export type FrameRejectedReason =
  | "malformed"
  | "bad_version"
  | "bad_payload"
  | "bad_signature"
  | "bad_seq"
  | "missing_field"
  | "bad_timestamp"
  | "naive_timestamp"
  | "stale"
  | "future"
  | "replayed_seq"
  | "replayed_nonce"

/**
 * An inbound signed frame failed parsing, its signature or the replay guard. `detail` names the field
 * and the rule, never the secret or the expected signature.
 *
 * @since 0.1.0
 * @category errors
 */
export class FrameRejected extends Data.TaggedError("FrameRejected")<{
  readonly reason: FrameRejectedReason
  readonly detail: string
  /** The frame's `id` when it could be read, else null. */
  readonly frameId: string | null
}> {
  override get message(): string {
    return `frame ${this.frameId ?? "(no id)"} rejected (${this.reason}): ${this.detail}`
  }
}

/**
 * Whether the reason comes from the signature or replay checks (the brain's `SignatureError`, close
 * 4403), as opposed to a frame that could not be read (close 1011).
 *
 * @since 0.1.0
 * @category refinements
 */
export const isSignatureFailure = (error: FrameRejected): boolean =>
  error.reason !== "malformed" && error.reason !== "bad_version" && error.reason !== "bad_payload"
