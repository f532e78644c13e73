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

const hexByte: ReadonlyArray<string> = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"))

let lastMillis = 0
let sequence = 0

/**
 * Generates a UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids sort
 * by creation time (the brain accepts versions 4 and 7 as event ids). Within one millisecond a 12-bit
 * counter in `rand_a` keeps the ids of this process increasing.
 *
 * @since 0.1.0
 * @category constructors
 */
export const newUuidV7 = (nowMillis: number = Date.now()): string => {
  if (nowMillis > lastMillis) {
    lastMillis = nowMillis
    sequence = 0
  } else {
    sequence = (sequence + 1) & 0xfff
    if (sequence === 0) lastMillis += 1
  }
  let time = ""
  let millis = lastMillis
  for (let index = 0; index < 6; index++) {
    time = hexByte[millis % 256]! + time
    millis = Math.floor(millis / 256)
  }
  const offset = take(8)
  const versionAndSequence = (0x7000 | sequence).toString(16)
  const variant = hexByte[(pool[offset]! & 0x3f) | 0x80]! + hexByte[pool[offset + 1]!]!
  let node = ""
  for (let index = offset + 2; index < offset + 8; index++) node += hexByte[pool[index]!]
  return `${time.slice(0, 8)}-${time.slice(8)}-${versionAndSequence}-${variant}-${node}`
}
