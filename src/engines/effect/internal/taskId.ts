import { randomFillSync } from "node:crypto"

const hexByte: ReadonlyArray<string> = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"))

// Random bytes are drawn for 256 ids at a time, because a system call per id was most of the cost
// of generating one.
const pool = new Uint8Array(256 * 10)
let poolOffset = pool.length

/**
 * Generates a UUID version 7 (RFC 9562): 48 bits of Unix milliseconds followed by random bits, so
 * task ids sort by the time they were created.
 */
export const uuidV7 = (nowMillis: number = Date.now()): string => {
  if (poolOffset === pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const random = poolOffset
  poolOffset += 10

  let time = ""
  let millis = nowMillis
  for (let index = 0; index < 6; index++) {
    time = hexByte[millis % 256]! + time
    millis = Math.floor(millis / 256)
  }
  const version = hexByte[0x70 | (pool[random]! & 0x0f)]! + hexByte[pool[random + 1]!]!
  const variant = hexByte[0x80 | (pool[random + 2]! & 0x3f)]! + hexByte[pool[random + 3]!]!
  let node = ""
  for (let index = random + 4; index < random + 10; index++) node += hexByte[pool[index]!]
  return `${time.slice(0, 8)}-${time.slice(8)}-${version}-${variant}-${node}`
}
