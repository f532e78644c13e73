import { closeCodeInfo } from "../../protocol/CloseCodes.js"

/** A cause an operator can act on: what happened and what to do. */
export interface Cause {
  readonly cause: string
  readonly remedy: string
}

const tokenRemedy =
  "Check Z4J_TOKEN: it must be the token shown when this agent was created, and the agent must not have been revoked or its project deleted"

/** Describes a close code from the brain in a sentence that names the code, and says what to do about it. */
export const closeCause = (code: number): Cause => {
  const info = closeCodeInfo(code)
  const meaning = info.meaning.replace(/\.$/, "")
  return {
    cause: `the brain closed the connection with ${code} (${info.name}): ${meaning.charAt(0).toLowerCase()}${meaning.slice(1)}`,
    remedy: info.remedy.replace(/\.$/, "")
  }
}

const proxyRemedy =
  "A proxy between this machine and the brain probably strips the Upgrade and Connection headers: configure it to forward WebSocket upgrades on /ws/agent (for nginx: proxy_http_version 1.1 and proxy_set_header for Upgrade and Connection)"

/** Explains an HTTP status that the server returned to the WebSocket upgrade request instead of 101. */
export const upgradeStatusCause = (status: number, location: string | undefined): Cause => {
  if (status === 401 || status === 403) {
    return {
      cause: `the server rejected the upgrade with HTTP ${status}: the token is wrong or the agent was revoked`,
      remedy: `${tokenRemedy}. A z4j brain itself answers a bad token with close code 4401, so a proxy or gateway in front of it may require its own credentials`
    }
  }
  if (status === 404) {
    return {
      cause: "the server has no WebSocket endpoint at this URL (HTTP 404)",
      remedy:
        "Check Z4J_BRAIN_URL: it is the brain's base address and the agent appends /ws/agent; a proxy in front of the brain must forward /ws/agent"
    }
  }
  if (status === 400 || status === 426 || (status >= 200 && status < 300)) {
    return {
      cause: `the server answered the upgrade with HTTP ${status} instead of 101 Switching Protocols`,
      remedy: proxyRemedy
    }
  }
  if (status >= 300 && status < 400) {
    return {
      cause: `the server redirects the upgrade (HTTP ${status}) to ${location ?? "an unknown location"}`,
      remedy: "Set Z4J_BRAIN_URL to the final address, because the agent does not follow redirects"
    }
  }
  if (status === 429) {
    return {
      cause: "the server is rate-limiting connections (HTTP 429)",
      remedy: "Wait a minute and retry; check how many agents connect from this address"
    }
  }
  if (status >= 500) {
    return {
      cause: `the brain or a proxy in front of it failed with HTTP ${status}`,
      remedy: "Check that the brain is running and that the proxy can reach it"
    }
  }
  return {
    cause: `the server answered the upgrade with HTTP ${status} instead of 101 Switching Protocols`,
    remedy: proxyRemedy
  }
}
