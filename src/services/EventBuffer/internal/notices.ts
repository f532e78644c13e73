import * as Effect from "effect/Effect"

/**
 * A log line decided inside synchronous buffer code and written afterwards by the Effect wrapper, so the
 * storage paths stay plain function calls.
 */
export interface Notice {
  readonly level: "debug" | "info" | "warning" | "error"
  readonly message: string
}

/** Writes and clears the pending notices. */
export const flushNotices = (notices: Array<Notice>): Effect.Effect<void> => {
  if (notices.length === 0) return Effect.void
  const pending = notices.splice(0, notices.length)
  return Effect.forEach(
    pending,
    (notice) => {
      switch (notice.level) {
        case "debug":
          return Effect.logDebug(notice.message)
        case "info":
          return Effect.logInfo(notice.message)
        case "warning":
          return Effect.logWarning(notice.message)
        case "error":
          return Effect.logError(notice.message)
      }
    },
    { discard: true }
  ).pipe(Effect.annotateLogs("service", "z4j-agent/EventBuffer"))
}

/** Caps of one buffer. */
export interface Caps {
  readonly maxEvents: number
  readonly maxBytes: number
}

/** Default caps, the same as the reference agent's: 100,000 entries and 256 MiB of bodies. */
export const defaultCaps: Caps = { maxEvents: 100_000, maxBytes: 256 * 1024 * 1024 }

/**
 * Tracks a run of appends that evicted entries, so eviction logs one warning when it starts and one
 * info line when an append fits again, instead of a line per event.
 */
export class DropStreak {
  private streak = 0

  constructor(
    private readonly caps: Caps,
    private readonly notices: Array<Notice>
  ) {}

  /** Records how many entries one append evicted. */
  record(evicted: number): void {
    if (evicted > 0) {
      if (this.streak === 0) {
        this.notices.push({
          level: "warning",
          message:
            `event buffer full (maxEvents=${this.caps.maxEvents}, maxBytes=${this.caps.maxBytes}): dropping the ` +
            "oldest events until the brain catches up; raise Z4J_BUFFER_MAX_EVENTS or Z4J_BUFFER_MAX_BYTES to keep more"
        })
      }
      this.streak += evicted
      return
    }
    if (this.streak > 0) {
      this.notices.push({
        level: "info",
        message: `event buffer stopped dropping events: ${this.streak} oldest events were dropped while it was full`
      })
      this.streak = 0
    }
  }
}
