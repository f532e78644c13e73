/**
 * The freshness and replay checks every signed frame passes after its HMAC, per session and direction.
 * `ts` must be within ±60 s of the receiver's clock and `seq` must increase strictly. Each nonce may be
 * used once within 180 s, with at most 4096 remembered and the oldest evicted first. The rules and
 * their order follow z4j-core's `ReplayGuard`.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import { parseIsoTimestamp } from "./Datetime.js"
import { FrameRejected, type FrameRejectedReason } from "./FrameRejected.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface ReplayGuardOptions {
  /** Maximum |receiver clock - frame ts|, in milliseconds. Default 60 000. */
  readonly maxSkewMillis?: number
  /** How long a nonce is remembered, in milliseconds. Default 180 000. */
  readonly nonceTtlMillis?: number
  /** Maximum nonces remembered; the oldest is evicted first. Default 4096. */
  readonly maxNonces?: number
  /**
   * The receiver's clock in Unix milliseconds, used when `check` gets no `nowMillis`. Default
   * `Date.now`. The reference ages nonces on a monotonic clock; here one clock serves both, so a
   * backwards wall-clock step keeps nonces longer, never shorter.
   */
  readonly clock?: () => number
}

/**
 * The replay-relevant fields of a frame, as plain values: `seq` must be an integer (`number`,
 * `bigint`, or a boolean, which Python counts as an int), `nonce` a non-empty string and `ts` an
 * ISO-8601 string with an offset.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReplayFields {
  readonly seq: unknown
  readonly nonce: unknown
  readonly ts: unknown
}

const toSeq = (seq: unknown): bigint | null => {
  if (typeof seq === "bigint") return seq
  if (typeof seq === "number") return Number.isSafeInteger(seq) ? BigInt(seq) : null
  // Python's isinstance(True, int) holds, so the reference guard reads true as seq 1.
  if (typeof seq === "boolean") return seq ? 1n : 0n
  return null
}

/**
 * Per-session, per-direction replay guard. Not shared between sessions: a new session starts at seq 1.
 *
 * @since 0.1.0
 * @category constructors
 */
export class ReplayGuard {
  readonly maxSkewMicros: number
  readonly nonceTtlMillis: number
  readonly maxNonces: number
  private readonly clock: () => number
  private lastSeqValue = 0n
  /** Nonce -> receiver time it was accepted, in insertion (and so time) order. */
  private readonly nonces = new Map<string, number>()

  constructor(options: ReplayGuardOptions = {}) {
    this.maxSkewMicros = (options.maxSkewMillis ?? 60_000) * 1000
    this.nonceTtlMillis = options.nonceTtlMillis ?? 180_000
    this.maxNonces = options.maxNonces ?? 4096
    this.clock = options.clock ?? Date.now
  }

  /** The highest seq accepted so far (0 before the first frame). */
  get lastSeq(): bigint {
    return this.lastSeqValue
  }

  /** How many nonces are remembered right now. */
  get nonceCount(): number {
    return this.nonces.size
  }

  /**
   * Checks `fields` in the reference order (seq, nonce, ts, skew, seq order, nonce reuse) and records
   * seq and nonce only when every check passes.
   */
  check(fields: ReplayFields, nowMillis: number = this.clock()): Either.Either<void, FrameRejected> {
    const reject = (reason: FrameRejectedReason, detail: string) =>
      Either.left(new FrameRejected({ reason, detail, frameId: null }))

    const seq = toSeq(fields.seq)
    if (seq === null || seq < 1n) return reject("bad_seq", "seq must be an integer >= 1")
    const nonce = fields.nonce
    if (typeof nonce !== "string" || nonce.length === 0) {
      return reject("missing_field", "nonce must be a non-empty string")
    }
    if (fields.ts === null || fields.ts === undefined) return reject("missing_field", "ts is missing")
    if (typeof fields.ts !== "string") return reject("bad_timestamp", "ts must be an ISO-8601 string")
    const ts = parseIsoTimestamp(fields.ts)
    if (ts === null) return reject("bad_timestamp", `ts ${JSON.stringify(fields.ts)} is not a valid ISO-8601 time`)
    if (!ts.aware) {
      return reject("naive_timestamp", `ts ${JSON.stringify(fields.ts)} has no UTC offset; send it with Z or +00:00`)
    }

    const skewMicros = nowMillis * 1000 - ts.epochMicros
    if (skewMicros > this.maxSkewMicros) {
      return reject(
        "stale",
        `ts ${fields.ts} is ${(skewMicros / 1e6).toFixed(1)} s behind this clock (limit ${this.maxSkewMicros / 1e6} s); check NTP on both hosts`
      )
    }
    if (-skewMicros > this.maxSkewMicros) {
      return reject(
        "future",
        `ts ${fields.ts} is ${(-skewMicros / 1e6).toFixed(1)} s ahead of this clock (limit ${this.maxSkewMicros / 1e6} s); check NTP on both hosts`
      )
    }

    if (seq <= this.lastSeqValue) {
      return reject("replayed_seq", `seq ${seq} is not greater than the last accepted seq ${this.lastSeqValue}`)
    }

    this.evictExpired(nowMillis)
    if (this.nonces.has(nonce)) return reject("replayed_nonce", "the nonce was already used in this session")

    this.lastSeqValue = seq
    this.nonces.set(nonce, nowMillis)
    if (this.nonces.size > this.maxNonces) {
      const oldest = this.nonces.keys().next()
      if (oldest.done !== true) this.nonces.delete(oldest.value)
    }
    return Either.void
  }

  private evictExpired(nowMillis: number): void {
    const cutoff = nowMillis - this.nonceTtlMillis
    for (const [nonce, acceptedAt] of this.nonces) {
      if (acceptedAt >= cutoff) return
      this.nonces.delete(nonce)
    }
  }
}
