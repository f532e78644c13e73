import { randomFillSync } from "node:crypto"

const hex: ReadonlyArray<string> = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"))

// Random bytes are drawn in blocks, because one getrandom call per id costs more than the id itself.
const pool = new Uint8Array(4096)
let poolOffset = pool.length

const randomBytes = (count: number): number => {
  if (poolOffset + count > pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const offset = poolOffset
  poolOffset += count
  return offset
}

let lastMillis = 0
let sequence = 0

/**
 * A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids sort by creation
 * time. Within one millisecond a 12-bit counter in `rand_a` keeps them increasing in this process.
 */
export const uuidV7 = (nowMillis: number = Date.now()): string => {
  if (nowMillis > lastMillis) {
    lastMillis = nowMillis
    sequence = 0
  } else {
    sequence = (sequence + 1) & 0xfff
    if (sequence === 0) lastMillis += 1
  }
  const millis = lastMillis
  const offset = randomBytes(8)
  const high = Math.floor(millis / 0x1000000)
  const low = millis % 0x1000000
  const timeHex =
    hex[(high >>> 16) & 0xff]! +
    hex[(high >>> 8) & 0xff]! +
    hex[high & 0xff]! +
    hex[(low >>> 16) & 0xff]! +
    hex[(low >>> 8) & 0xff]! +
    hex[low & 0xff]!
  const versionAndSequence = (0x7000 | sequence).toString(16)
  const variant = hex[(pool[offset]! & 0x3f) | 0x80]! + hex[pool[offset + 1]!]!
  let tail = ""
  for (let index = 2; index < 8; index++) tail += hex[pool[offset + index]!]
  return `${timeHex.slice(0, 8)}-${timeHex.slice(8)}-${versionAndSequence}-${variant}-${tail}`
}
