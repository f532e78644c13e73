/**
 * Frame signatures for protocol v2: the project secret, the HMAC-SHA256 over the canonical envelope,
 * and the per-session signer and verifier. Both classes are direction-agnostic: the agent signs
 * agent->brain frames and verifies brain->agent ones, and a test brain does the reverse.
 *
 * The signed envelope is the frame object as sent, without its top-level `hmac`, plus the string keys
 * `agent_id`, `project_id` and `session_id` from the session (overwriting any the frame had), written
 * as canonical JSON. The signature is 64 lowercase hex digits.
 *
 * @since 0.1.0
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import {
  CanonicalJsonError,
  LosslessNumber,
  type LosslessValue,
  parseLossless,
  quoteString,
  renderLossless,
  toPlain
} from "./CanonicalJson.js"
import { formatPydanticDatetime } from "./Datetime.js"
import { FrameRejected, type FrameRejectedReason } from "./FrameRejected.js"
import { newNonce } from "./Ids.js"
import { ReplayGuard, type ReplayGuardOptions } from "./ReplayGuard.js"

/**
 * The session values mixed into every signed envelope. Over WebSocket all three come from the
 * `hello_ack` payload, exactly as strings; over long-poll `sessionId` is the `X-Z4J-Session-Nonce`
 * header or `""`.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionBinding {
  readonly agentId: string
  readonly projectId: string
  readonly sessionId: string
}

/**
 * A secret or project id that cannot be used. The message never contains the secret.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSecret extends Data.TaggedError("InvalidSecret")<{
  readonly reason: "invalid_base64" | "too_short" | "invalid_uuid"
  readonly detail: string
}> {
  override get message(): string {
    return this.detail
  }
}

/** z4j-core refuses HMAC keys shorter than this many bytes. */
const minSecretBytes = 32

const requireSecret = (secret: Uint8Array, what: string): void => {
  if (secret.length < minSecretBytes) {
    throw new InvalidSecret({
      reason: "too_short",
      detail: `${what} is ${secret.length} bytes; at least ${minSecretBytes} are required`
    })
  }
}

/**
 * Decodes the `hmac_secret` the brain returns when an agent is minted (Z4J_HMAC_SECRET): surrounding
 * whitespace is ignored, and URL-safe or standard base64 with or without `=` padding is accepted.
 * Throws {@link InvalidSecret} for text that is not base64 or decodes to fewer than 32 bytes.
 *
 * @since 0.1.0
 * @category secrets
 */
export const decodeHmacSecret = (text: string): Uint8Array => {
  const trimmed = text.trim()
  const body = trimmed.replace(/={1,2}$/, "")
  const padded = body.length !== trimmed.length
  if (!/^[A-Za-z0-9+/_-]*$/.test(body) || body.length % 4 === 1 || (padded && trimmed.length % 4 !== 0)) {
    throw new InvalidSecret({
      reason: "invalid_base64",
      detail: `the HMAC secret (${trimmed.length} characters) is not valid base64; expected the 44-character hmac_secret the brain returned when the agent was created`
    })
  }
  const bytes = Buffer.from(body.replaceAll("-", "+").replaceAll("_", "/"), "base64")
  if (bytes.length < minSecretBytes) {
    throw new InvalidSecret({
      reason: "too_short",
      detail: `the HMAC secret decodes to ${bytes.length} bytes; expected at least ${minSecretBytes} (the hmac_secret the brain returned when the agent was created)`
    })
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length)
}

const uuidLabel = Buffer.from("z4j-project-secret-v1:", "ascii")

/**
 * Reads a UUID the way Python's `uuid.UUID(text)` does, case-insensitively and with optional hyphens,
 * braces and `urn:uuid:` prefix. Returns its 16 bytes in `bytes_le` order, which reverses the bytes of
 * the first three groups and keeps the last two as written.
 *
 * @since 0.1.0
 * @category secrets
 */
export const uuidBytesLe = (uuid: string): Uint8Array => {
  const hex = uuid
    .replace(/^urn:uuid:/i, "")
    .replace(/^\{|\}$/g, "")
    .replaceAll("-", "")
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) {
    throw new InvalidSecret({
      reason: "invalid_uuid",
      detail: `project id ${JSON.stringify(uuid)} is not a UUID; use the project's UUID (for example 11223344-5566-7788-99aa-bbccddeeff00), not its slug`
    })
  }
  const bytes = Buffer.from(hex, "hex")
  const order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15]
  return Uint8Array.from(order, (index) => bytes[index]!)
}

/**
 * Derives a project's 32-byte HMAC secret from the brain's master secret (Z4J_SECRET): HMAC-SHA256
 * keyed with the master bytes (a string is taken as UTF-8) over `z4j-project-secret-v1:` followed by
 * the project UUID's 16 bytes in `bytes_le` order. Throws {@link InvalidSecret} for an invalid UUID or
 * a master shorter than 32 bytes.
 *
 * @since 0.1.0
 * @category secrets
 */
export const deriveProjectSecret = (masterSecret: Uint8Array | string, projectId: string): Uint8Array => {
  const master = typeof masterSecret === "string" ? Buffer.from(masterSecret, "utf8") : masterSecret
  requireSecret(master, "the master secret")
  const message = Buffer.concat([uuidLabel, uuidBytesLe(projectId)])
  const digest = createHmac("sha256", master).update(message).digest()
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.length)
}

const bindEnvelope = (frame: Map<string, LosslessValue>, binding: SessionBinding): void => {
  frame.delete("hmac")
  frame.set("agent_id", binding.agentId)
  frame.set("project_id", binding.projectId)
  frame.set("session_id", binding.sessionId)
}

/**
 * Returns the canonical envelope of `frameJson` for `binding`: the bytes the HMAC covers.
 * Throws `CanonicalJsonError` for invalid JSON and {@link FrameRejected} for a frame that is not an
 * object.
 *
 * @since 0.1.0
 * @category signing
 */
export const canonicalEnvelope = (frameJson: string, binding: SessionBinding): string => {
  const frame = parseLossless(frameJson)
  if (!(frame instanceof Map)) {
    throw new FrameRejected({ reason: "malformed", detail: "the frame is not a JSON object", frameId: null })
  }
  bindEnvelope(frame, binding)
  return renderLossless(frame)
}

/**
 * Computes the `hmac` of a frame as the brain does: lowercase hex HMAC-SHA256 with `secret` over the
 * canonical envelope of the frame text for `binding`. Throws `CanonicalJsonError` for invalid JSON,
 * {@link FrameRejected} for a frame that is not an object and {@link InvalidSecret} for a secret under
 * 32 bytes.
 *
 * @since 0.1.0
 * @category signing
 */
export const computeFrameHmac = (secret: Uint8Array, frameJson: string, binding: SessionBinding): string => {
  requireSecret(secret, "the HMAC secret")
  return createHmac("sha256", secret).update(canonicalEnvelope(frameJson, binding)).digest("hex")
}

/** Compares a received signature with the expected one in time independent of where they differ. */
const signatureMatches = (expectedHex: string, received: string): boolean => {
  const receivedBytes = Buffer.from(received, "utf8")
  if (receivedBytes.length !== expectedHex.length) return false
  return timingSafeEqual(Buffer.from(expectedHex, "latin1"), receivedBytes)
}

/**
 * Checks whether the frame's `hmac` matches its envelope under `secret` and `binding` (constant-time
 * comparison). Returns false for invalid JSON, a non-object frame or a missing `hmac`; throws only
 * {@link InvalidSecret} for a secret under 32 bytes.
 *
 * @since 0.1.0
 * @category signing
 */
export const verifyFrameHmac = (secret: Uint8Array, frameJson: string, binding: SessionBinding): boolean => {
  requireSecret(secret, "the HMAC secret")
  let frame: LosslessValue
  try {
    frame = parseLossless(frameJson)
  } catch {
    return false
  }
  if (!(frame instanceof Map)) return false
  const received = frame.get("hmac")
  if (typeof received !== "string") return false
  bindEnvelope(frame, binding)
  return signatureMatches(createHmac("sha256", secret).update(renderLossless(frame)).digest("hex"), received)
}

/**
 * The header fields of one signed frame, for {@link signFrame}.
 *
 * @since 0.1.0
 * @category models
 */
export interface SignedFrameFields {
  readonly type: string
  readonly id: string
  /** The payload object, already written as canonical JSON. */
  readonly payload: string
  readonly ts: string
  readonly nonce: string
  readonly seq: number
}

/**
 * Signs one frame with explicit `ts`, `nonce` and `seq` and returns its wire text, which is itself
 * canonical JSON. `payload` must be canonical JSON of an object (as the `encode*Payload` functions
 * return): it is spliced in unparsed. Prefer {@link FrameSigner}, which stamps the fields.
 *
 * @since 0.1.0
 * @category signing
 */
export const signFrame = (secret: Uint8Array, binding: SessionBinding, fields: SignedFrameFields): string =>
  signWith(secret, quoteBinding(binding), fields)

interface QuotedBinding {
  readonly agentId: string
  readonly projectId: string
  readonly sessionId: string
}

const quoteBinding = (binding: SessionBinding): QuotedBinding => ({
  agentId: quoteString(binding.agentId),
  projectId: quoteString(binding.projectId),
  sessionId: quoteString(binding.sessionId)
})

const signWith = (secret: Uint8Array, binding: QuotedBinding, fields: SignedFrameFields): string => {
  const id = quoteString(fields.id)
  const nonce = quoteString(fields.nonce)
  const ts = quoteString(fields.ts)
  const type = quoteString(fields.type)
  const seq = String(fields.seq)
  // Keys in code point order, so both texts are canonical without a parse. The envelope is fed to the
  // HMAC in three parts, because concatenating it first would copy the whole payload once more.
  const hmac = createHmac("sha256", secret)
    .update(`{"agent_id":${binding.agentId},"id":${id},"nonce":${nonce},"payload":`)
    .update(fields.payload)
    .update(
      `,"project_id":${binding.projectId},"seq":${seq},"session_id":${binding.sessionId},"ts":${ts},"type":${type},"v":2}`
    )
    .digest("hex")
  return `{"hmac":"${hmac}","id":${id},"nonce":${nonce},"payload":${fields.payload},"seq":${seq},"ts":${ts},"type":${type},"v":2}`
}

/**
 * @since 0.1.0
 * @category models
 */
export interface FrameSignerOptions {
  /** Source of nonces. Default {@link newNonce} (16 random bytes, base64url). */
  readonly nonce?: () => string
}

/**
 * Signs outbound frames for one session and direction: seq starts at 1 and grows by one per frame,
 * each frame gets a fresh nonce, and `ts` is stamped at signing time in pydantic form. Sign right
 * before sending, because the receiver rejects frames whose `ts` is more than 60 s off.
 *
 * @since 0.1.0
 * @category constructors
 */
export class FrameSigner {
  private readonly secret: Uint8Array
  private readonly binding: QuotedBinding
  private readonly nextNonce: () => string
  private seq = 0

  constructor(secret: Uint8Array, binding: SessionBinding, options: FrameSignerOptions = {}) {
    requireSecret(secret, "the HMAC secret")
    this.secret = secret
    this.binding = quoteBinding(binding)
    this.nextNonce = options.nonce ?? newNonce
  }

  /** The seq of the last signed frame (0 before the first). */
  get lastSeq(): number {
    return this.seq
  }

  /**
   * Signs a frame and returns its wire text. `payloadCanonical` must be canonical JSON of an object,
   * as the `encode*Payload` functions return; it is not parsed again.
   */
  sign(type: string, id: string, payloadCanonical: string, now: Date = new Date()): string {
    this.seq += 1
    return signWith(this.secret, this.binding, {
      type,
      id,
      payload: payloadCanonical,
      ts: formatPydanticDatetime(now),
      nonce: this.nextNonce(),
      seq: this.seq
    })
  }
}

/**
 * A frame that passed {@link FrameVerifier}, as plain values (integers beyond 2^53 as `bigint`), with
 * every key it had on the wire, `hmac` included.
 *
 * @since 0.1.0
 * @category models
 */
export type VerifiedFrame = { readonly [key: string]: unknown }

/**
 * @since 0.1.0
 * @category models
 */
export interface FrameVerifierOptions extends ReplayGuardOptions {
  /** A guard to use instead of a new one built from the other options. */
  readonly guard?: ReplayGuard
}

const bindingKeys = ["agent_id", "project_id", "session_id"] as const

/**
 * Verifies inbound signed frames for one session and direction, in z4j-core's order: `v` is 2, a
 * present `payload` is an object, the HMAC matches (constant time), then the {@link ReplayGuard}
 * checks. Seq and nonce are recorded only for frames that pass every check.
 *
 * @since 0.1.0
 * @category constructors
 */
export class FrameVerifier {
  readonly guard: ReplayGuard
  private readonly secret: Uint8Array
  private readonly binding: SessionBinding

  constructor(secret: Uint8Array, binding: SessionBinding, options: FrameVerifierOptions = {}) {
    requireSecret(secret, "the HMAC secret")
    this.secret = secret
    this.binding = binding
    this.guard = options.guard ?? new ReplayGuard(options)
  }

  /** Verifies `frameText` against the clock `now` (default: the guard's clock). */
  verify(frameText: string, now?: Date): Either.Either<VerifiedFrame, FrameRejected> {
    let frameId: string | null = null
    const reject = (reason: FrameRejectedReason, detail: string) =>
      Either.left(new FrameRejected({ reason, detail, frameId }))

    let frame: LosslessValue
    try {
      frame = parseLossless(frameText)
    } catch (error) {
      return reject("malformed", error instanceof CanonicalJsonError ? error.message : String(error))
    }
    if (!(frame instanceof Map)) return reject("malformed", "the frame is not a JSON object")
    const id = frame.get("id")
    if (typeof id === "string") frameId = id

    const version = frame.get("v")
    if (!(version instanceof LosslessNumber) || Number(version.lexeme) !== 2) {
      return reject("bad_version", "v must be 2 (protocol v2)")
    }
    if (frame.has("payload") && !(frame.get("payload") instanceof Map)) {
      return reject("bad_payload", "payload must be a JSON object")
    }

    const received = frame.get("hmac")
    if (typeof received !== "string") return reject("bad_signature", "hmac is missing or not a string")
    const saved = bindingKeys.map((key) => frame.get(key))
    bindEnvelope(frame, this.binding)
    const expected = createHmac("sha256", this.secret).update(renderLossless(frame)).digest("hex")
    if (!signatureMatches(expected, received)) {
      return reject(
        "bad_signature",
        "the HMAC does not match; check that both sides use the same project secret and session ids"
      )
    }

    let seq: unknown = frame.get("seq")
    if (seq instanceof LosslessNumber) {
      // A float lexeme such as 1.0 is not an int for Python, so it is passed on as a string and fails.
      seq = seq.isFloat ? seq.lexeme : seq.toValue()
    }
    const checked = this.guard.check(
      {
        seq,
        nonce: frame.get("nonce"),
        ts: frame.get("ts")
      },
      now === undefined ? undefined : now.getTime()
    )
    if (Either.isLeft(checked)) return reject(checked.left.reason, checked.left.detail)

    frame.set("hmac", received)
    bindingKeys.forEach((key, index) => {
      const original = saved[index]
      if (original === undefined) frame.delete(key)
      else frame.set(key, original)
    })
    return Either.right(toPlain(frame) as VerifiedFrame)
  }

  /** {@link verify} against the Effect `Clock`, so `TestClock` drives the freshness check. */
  verifyEffect(frameText: string): Effect.Effect<VerifiedFrame, FrameRejected> {
    return Effect.flatMap(Clock.currentTimeMillis, (nowMillis) => this.verify(frameText, new Date(nowMillis)))
  }
}
