import type { ProbeDetails, ProbeName, ProbeResult } from "../Diagnostics.js"

export const pass = (name: ProbeName, message: string, details: ProbeDetails = {}): ProbeResult => ({
  name,
  ok: true,
  message,
  details
})

export const fail = (name: ProbeName, message: string, details: ProbeDetails = {}): ProbeResult => ({
  name,
  ok: false,
  message,
  details
})

/** A probe that did not run because it does not apply to this configuration, such as TLS for `ws://`. */
export const notApplicable = (name: ProbeName, message: string): ProbeResult => ({
  name,
  ok: true,
  message,
  details: { skipped: true }
})

/** A probe that did not run because an earlier probe failed, so its answer would mean nothing. */
export const skippedAfter = (name: ProbeName, failed: ProbeName): ProbeResult => ({
  name,
  ok: false,
  message: `not run because the ${failed} probe failed`,
  details: { skipped: true, after: failed }
})

export const isSkipped = (result: ProbeResult): boolean => result.details.skipped === true

/** The error code Node attaches to system errors (`ECONNREFUSED`, `CERT_HAS_EXPIRED`...), if any. */
export const errorCode = (error: unknown): string | undefined => {
  if (typeof error !== "object" || error === null) return undefined
  const code = (error as { code?: unknown }).code
  return typeof code === "string" ? code : undefined
}

export const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error))
