import type { IncomingMessage } from "node:http"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import WebSocket from "ws"
import type { ProbeResult } from "../Diagnostics.js"
import { closeCause, upgradeStatusCause } from "./diagnosticsCauses.js"
import type { Target } from "./diagnosticsNetwork.js"
import { errorCode, fail, pass } from "./diagnosticsResult.js"

export interface UpgradeOptions {
  readonly token: Redacted.Redacted<string>
  readonly rejectUnauthorized: boolean
  readonly timeoutMillis: number
  /** How long to keep the socket open after the upgrade, to catch a brain that closes it right away. */
  readonly settleMillis: number
}

/** How long a local close waits for the brain's close reply before cutting the socket. */
export const closeReplyMillis = 1_000

/** Response headers worth showing: they identify a proxy or a redirect, and never carry the token. */
const shownHeaders = ["location", "server", "via", "upgrade", "connection", "content-type"]

/**
 * Opens a WebSocket to the agent endpoint with the same options as the agent's transport, then waits
 * `settleMillis` for a close. A z4j brain accepts the upgrade before it checks the token, and closes a
 * socket with an unknown token (4401) or over the rate limit (4429) right after.
 */
export const probeWebSocket = (target: Target, options: UpgradeOptions): Effect.Effect<ProbeResult> =>
  Effect.async<ProbeResult>((resume) => {
    let done = false
    const finish = (result: ProbeResult) => {
      if (done) return
      done = true
      resume(Effect.succeed(result))
    }
    const socket = new WebSocket(target.url, {
      headers: { Authorization: `Bearer ${Redacted.value(options.token)}` },
      handshakeTimeout: options.timeoutMillis,
      perMessageDeflate: false,
      rejectUnauthorized: options.rejectUnauthorized,
      followRedirects: false
    })
    let settleTimer: NodeJS.Timeout | undefined

    socket.on("unexpected-response", (_request, response: IncomingMessage) => {
      const status = response.statusCode ?? 0
      const headers: Record<string, string> = {}
      for (const name of shownHeaders) {
        const value = response.headers[name]
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value
      }
      response.resume()
      socket.terminate()
      const { cause, remedy } = upgradeStatusCause(status, headers.location)
      finish(fail("websocket", `${cause}. ${remedy}`, { url: target.url, status, headers }))
    })
    socket.on("error", (error) => {
      const code = errorCode(error) ?? "unknown"
      const timedOut = /timed out/i.test(error.message)
      const message = timedOut
        ? `the server accepted the connection but sent no answer to the upgrade within ${options.timeoutMillis} ms. Check that Z4J_BRAIN_URL points at the brain and that a proxy in front of it forwards WebSocket upgrades`
        : `the WebSocket upgrade to ${target.url} failed (${code}: ${error.message}). Check the network path to the brain`
      finish(fail("websocket", message, { url: target.url, code: timedOut ? "timeout" : code }))
    })
    let closingLocally = false
    let cutTimer: NodeJS.Timeout | undefined
    socket.once("open", () => {
      settleTimer = setTimeout(() => {
        closingLocally = true
        socket.close(1000, "z4j-agent doctor")
        // Waits for the brain's close reply so the brain records a clean close, but not for ws's 30 s close timeout.
        cutTimer = setTimeout(() => socket.terminate(), closeReplyMillis)
      }, options.settleMillis)
    })
    socket.once("close", (code, reason) => {
      if (settleTimer === undefined) return
      clearTimeout(settleTimer)
      if (cutTimer !== undefined) clearTimeout(cutTimer)
      if (closingLocally) {
        finish(
          pass("websocket", `the upgrade to ${target.url} succeeded (HTTP 101) and the brain kept the socket open`, {
            url: target.url,
            status: 101
          })
        )
        return
      }
      const { cause, remedy } = closeCause(code)
      finish(
        fail("websocket", `after the upgrade, ${cause}. ${remedy}`, {
          url: target.url,
          status: 101,
          closeCode: code,
          closeReason: reason.toString("utf8")
        })
      )
    })
    return Effect.sync(() => {
      if (settleTimer !== undefined) clearTimeout(settleTimer)
      if (cutTimer !== undefined) clearTimeout(cutTimer)
      socket.terminate()
    })
  })
