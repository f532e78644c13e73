/**
 * Random nonces and frame ids in the shapes z4j-bare uses.
 *
 * @since 0.1.0
 */
import { randomFillSync } from "node:crypto"

// One getrandom call per nonce costs more than the nonce itself, so random bytes are drawn in blocks.
const pool = Buffer.alloc(4096)
let poolOffset = pool.length

const take = (count: number): number => {
  if (poolOffset + count > pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const offset = poolOffset
  poolOffset += count
  return offset
}

/**
 * Generates a frame nonce: 16 random bytes as base64url without padding (22 characters), the form of
 * Python's `secrets.token_urlsafe(16)`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const newNonce = (): string => {
  const offset = take(16)
  return pool.toString("base64url", offset, offset + 16)
}

/**
 * `prefix` followed by `digits` random lowercase hex digits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const randomHexId = (prefix: string, digits: number): string => {
  const bytes = Math.ceil(digits / 2)
  const offset = take(bytes)
  return prefix + pool.toString("hex", offset, offset + bytes).slice(0, digits)
}

/**
 * An `event_batch` frame id: `ev_` and 12 hex digits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const newEventBatchId = (): string => randomHexId("ev_", 12)

/**
 * A `heartbeat` frame id: `hb_` and 12 hex digits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const newHeartbeatId = (): string => randomHexId("hb_", 12)

/**
 * An `agent_status` frame id: `as_` and 12 hex digits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const newAgentStatusId = (): string => randomHexId("as_", 12)

/**
 * A `hello` frame id: `hello_` and 16 hex digits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const newHelloId = (): string => randomHexId("hello_", 16)
