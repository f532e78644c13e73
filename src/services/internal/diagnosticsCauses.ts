/** A cause an operator can act on: what happened and what to do. */
export interface Cause {
  readonly cause: string
  readonly remedy: string
}

const tokenRemedy =
  "Check Z4J_TOKEN: it must be the token shown when this agent was created, and the agent must not have been revoked or its project deleted"

/**
 * The close codes a z4j brain (1.6.9) sends, and the causes behind them. 4429 has two causes on the
 * brain: the per-address connect rate limit and the per-agent cap on worker connections.
 */
const closeCauses: Record<number, Cause> = {
  1000: { cause: "the brain closed the connection normally", remedy: "Retry; if it repeats, read the brain's log" },
  1001: { cause: "the brain is shutting down or restarting", remedy: "Wait until the brain is back and retry" },
  1006: {
    cause: "the connection was cut without a close frame",
    remedy: "Check the network path and any proxy idle timeouts between this machine and the brain"
  },
  1008: { cause: "the brain rejected a frame as a policy violation", remedy: "Read the brain's log for the reason" },
  1011: {
    cause: "the brain failed while handling a frame",
    remedy: "Read the brain's log; upgrade z4j-agent or the brain if the frame format is not understood"
  },
  4002: {
    cause: "another connection with the same worker id replaced this one",
    remedy: "Check that two processes do not share one worker id"
  },
  4003: {
    cause: "the agent was revoked",
    remedy: "Create a new agent in the brain's dashboard and use its token and HMAC secret"
  },
  4400: {
    cause: "the brain rejected a frame as malformed or too large",
    remedy: "Upgrade z4j-agent or the brain so that both speak the same protocol"
  },
  4401: { cause: "the brain rejected the token", remedy: tokenRemedy },
  4403: {
    cause:
      "the brain rejected a signed frame, so either Z4J_HMAC_SECRET is wrong or this machine's clock is more than 60 s off",
    remedy:
      "Check Z4J_HMAC_SECRET (the hmac_secret shown when the agent was created; it changes when the brain's master secret is rotated) and keep NTP running on this machine"
  },
  4408: {
    cause: "the brain closed an idle connection",
    remedy: "A running agent sends a heartbeat every 10 s; check that nothing delays its frames"
  },
  4426: {
    cause: "the brain does not support this agent's protocol version",
    remedy: "Upgrade z4j-agent or the brain so that both speak protocol 2"
  },
  4429: {
    cause:
      "the brain refused the connection: more than 600 connects in a minute from this address, or this agent already has the maximum of worker connections (64 by default)",
    remedy:
      "Wait a minute and retry; if many workers share one agent token, lower their number or raise Z4J_WS_PER_AGENT_CONCURRENCY_CAP on the brain"
  }
}

export const closeCause = (code: number): Cause =>
  closeCauses[code] ?? {
    cause: `the brain closed the connection with code ${code}`,
    remedy: "Read the brain's log for the reason"
  }

const proxyRemedy =
  "A proxy between this machine and the brain probably strips the Upgrade and Connection headers: configure it to forward WebSocket upgrades on /ws/agent (for nginx: proxy_http_version 1.1 and proxy_set_header for Upgrade and Connection)"

/** The cause of an HTTP status given to the WebSocket upgrade request instead of 101. */
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
