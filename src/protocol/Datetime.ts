/**
 * Timestamps in the forms the protocol uses: pydantic's JSON form for everything the agent writes, and
 * Python 3.11's `datetime.fromisoformat` for what the replay guard accepts.
 *
 * @since 0.1.0
 */

/** The last timestamp formatted, and its text. */
let lastFormatted: { readonly millis: number; readonly text: string } = { millis: Number.NaN, text: "" }

/**
 * Writes `date` the way pydantic v2 writes a UTC datetime: `YYYY-MM-DDTHH:MM:SS.ffffffZ`, with no
 * fraction when the microseconds are 0. A JavaScript `Date` has milliseconds, so the fraction is always
 * the milliseconds followed by `000`. Throws `RangeError` for an invalid date.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatPydanticDatetime = (date: Date): string => {
  const millis = date.getTime()
  // Events emitted together share their millisecond, and toISOString costs microseconds, so the last
  // result is kept. NaN never equals itself, so an invalid date still reaches toISOString and throws.
  if (millis === lastFormatted.millis) return lastFormatted.text
  const iso = date.toISOString()
  // toISOString writes a six-digit signed year outside 0000..9999; pydantic cannot write those either.
  const text = date.getUTCMilliseconds() === 0 ? `${iso.slice(0, -5)}Z` : `${iso.slice(0, -1)}000Z`
  lastFormatted = { millis, text }
  return text
}

/**
 * A parsed ISO-8601 timestamp: microseconds since the Unix epoch, UTC, and whether it had an offset.
 * A naive timestamp is read as UTC.
 *
 * @since 0.1.0
 * @category models
 */
export interface IsoTimestamp {
  readonly epochMicros: number
  readonly aware: boolean
}

const digitsAt = (text: string, start: number, count: number): number => {
  if (start + count > text.length) return -1
  let value = 0
  for (let index = start; index < start + count; index++) {
    const code = text.charCodeAt(index)
    if (code < 48 || code > 57) return -1
    value = value * 10 + code - 48
  }
  return value
}

const daysInMonth = (year: number, month: number): number => {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

/** Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
const daysFromCivil = (year: number, month: number, day: number): number => {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yearOfEra = y - era * 400
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear
  return era * 146097 + dayOfEra - 719468
}

interface TimeParts {
  readonly micros: number
  readonly end: number
}

/** Reads `HH[:MM[:SS[.f+]]]` (or the same without colons) from `start`; returns null when invalid. */
const parseTime = (text: string, start: number, end: number): TimeParts | null => {
  const hour = digitsAt(text, start, 2)
  if (hour < 0 || hour > 23) return null
  let position = start + 2
  let minute = 0
  let second = 0
  let micros = 0
  const extended = text.charCodeAt(position) === 58
  const readComponent = (): number => {
    if (extended) {
      if (text.charCodeAt(position) !== 58) return -2
      position++
    }
    const value = digitsAt(text, position, 2)
    if (value >= 0) position += 2
    return value
  }
  if (position < end) {
    minute = readComponent()
    if (minute < 0 || minute > 59) return null
  }
  if (position < end) {
    second = readComponent()
    if (second < 0 || second > 59) return null
  }
  if (position < end) {
    const separator = text.charCodeAt(position)
    if (separator !== 46 && separator !== 44) return null
    position++
    let count = 0
    while (position < end) {
      const code = text.charCodeAt(position)
      if (code < 48 || code > 57) return null
      // Python keeps six digits and drops the rest.
      if (count < 6) micros = micros * 10 + code - 48
      count++
      position++
    }
    if (count === 0) return null
    for (let pad = count; pad < 6; pad++) micros *= 10
  }
  if (position !== end) return null
  return { micros: ((hour * 60 + minute) * 60 + second) * 1_000_000 + micros, end }
}

/**
 * Parses `text` as the z4j replay guard does: `datetime.fromisoformat(text.replace("Z", "+00:00"))`
 * under Python 3.11. Accepted: `YYYY-MM-DD` or `YYYYMMDD`, then any one separator character and a time
 * `HH[:MM[:SS[.fraction]]]` (or without colons; `.` or `,` before the fraction, digits past six are
 * dropped), then an optional offset `±HH[:MM[:SS[.ffffff]]]`. Returns null when Python would raise.
 *
 * @since 0.1.0
 * @category parsing
 */
// NOTE: ISO week dates (`2026-W18-5`) and a few other forms Python 3.11 also accepts are rejected here.
export const parseIsoTimestamp = (input: string): IsoTimestamp | null => {
  const text = input.includes("Z") ? input.replaceAll("Z", "+00:00") : input
  let year: number
  let month: number
  let day: number
  let position: number
  if (text.charCodeAt(4) === 45) {
    year = digitsAt(text, 0, 4)
    month = text.charCodeAt(7) === 45 ? digitsAt(text, 5, 2) : -1
    day = digitsAt(text, 8, 2)
    position = 10
  } else {
    year = digitsAt(text, 0, 4)
    month = digitsAt(text, 4, 2)
    day = digitsAt(text, 6, 2)
    position = 8
  }
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null
  const dayMicros = daysFromCivil(year, month, day) * 86_400_000_000
  if (position === text.length) return { epochMicros: dayMicros, aware: false }
  // Python 3.11 accepts any single character between the date and the time.
  position++
  let offsetStart = position
  while (offsetStart < text.length) {
    const code = text.charCodeAt(offsetStart)
    if (code === 43 || code === 45) break
    offsetStart++
  }
  const time = parseTime(text, position, offsetStart)
  if (time === null) return null
  if (offsetStart === text.length) return { epochMicros: dayMicros + time.micros, aware: false }
  const sign = text.charCodeAt(offsetStart) === 45 ? -1 : 1
  const offset = parseTime(text, offsetStart + 1, text.length)
  if (offset === null) return null
  return { epochMicros: dayMicros + time.micros - sign * offset.micros, aware: true }
}
