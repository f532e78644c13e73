import { getRandomValues } from "node:crypto"

const hexByte: ReadonlyArray<string> = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"))

/**
 * A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds followed by random bits, so task ids sort
 * by the time they were created, which keeps the brain's task index in insertion order.
 */
export const uuidV7 = (nowMillis: number = Date.now()): string => {
  const bytes = getRandomValues(new Uint8Array(16))
  let millis = nowMillis
  for (let index = 5; index >= 0; index--) {
    bytes[index] = millis % 256
    millis = Math.floor(millis / 256)
  }
  bytes[6] = 0x70 | (bytes[6]! & 0x0f)
  bytes[8] = 0x80 | (bytes[8]! & 0x3f)
  let text = ""
  for (let index = 0; index < 16; index++) {
    if (index === 4 || index === 6 || index === 8 || index === 10) text += "-"
    text += hexByte[bytes[index]!]
  }
  return text
}
