/**
 * WebSocket close codes the z4j brain sends (brain 1.6.9, plus 4427 reserved by newer releases), as
 * data: what each means, which failure class it belongs to (the supervisor picks its reconnect policy
 * from the class) and what a user can do about it.
 *
 * @since 0.1.0
 */

/**
 * The failure class of a close. `network` and `normal` reconnect with the short backoff, `protocol`
 * and `auth` with longer ones, and `terminal` stops reconnecting because retrying cannot succeed.
 *
 * @since 0.1.0
 * @category models
 */
export type CloseFailureClass = "network" | "protocol" | "auth" | "terminal" | "normal"

/**
 * @since 0.1.0
 * @category models
 */
export interface CloseCodeInfo {
  readonly code: number
  readonly name: string
  readonly failureClass: CloseFailureClass
  /** The condition under which the brain sends the code. */
  readonly meaning: string
  /** A sentence telling the user how to fix the cause. */
  readonly remedy: string
}

const entries: ReadonlyArray<CloseCodeInfo> = [
  {
    code: 1000,
    name: "normal_closure",
    failureClass: "normal",
    meaning: "The brain ended the connection normally after cleaning up the session.",
    remedy: "Nothing to do: the agent reconnects."
  },
  {
    code: 1001,
    name: "going_away",
    failureClass: "normal",
    meaning: "The brain is shutting down or restarting.",
    remedy: "Nothing to do: the agent reconnects once the brain is back; check the brain if this repeats."
  },
  {
    code: 1006,
    name: "abnormal_closure",
    failureClass: "network",
    meaning: "The connection dropped without a close frame (network failure, proxy timeout or a killed brain).",
    remedy: "Check the network path to the brain and any proxy's idle timeout; the agent reconnects with backoff."
  },
  {
    code: 1011,
    name: "internal_error",
    failureClass: "protocol",
    meaning:
      "The brain failed while handling a frame; with z4j-core 1.6.7 this includes invalid JSON, an unknown frame type, v other than 2 and a payload that is not an object.",
    remedy:
      "Check the brain's log for the exception; if it names a frame from this agent, upgrade z4j-agent or report the frame."
  },
  {
    code: 4002,
    name: "superseded",
    failureClass: "protocol",
    meaning: "A newer connection with the same agent and worker_id took this connection's slot.",
    remedy:
      "Make sure only one process connects with this worker_id; two processes that share it keep replacing each other."
  },
  {
    code: 4003,
    name: "agent_revoked",
    // Not terminal: only a version refusal stops the agent. A revoked token is refused with 4401 on the
    // next connect, and the long auth backoff keeps that from becoming a hot loop.
    failureClass: "auth",
    meaning: "The agent was revoked in the brain, which closed all its connections.",
    remedy: "Create a new agent in the brain's dashboard and configure its token (Z4J_TOKEN) and hmac_secret."
  },
  {
    code: 4400,
    name: "bad_frame",
    failureClass: "protocol",
    meaning:
      "A frame was not valid: the first message was not a valid hello, a frame was over the size limit, or a frame failed the brain's schema validation.",
    remedy:
      "Check that z4j-agent matches the brain's protocol version and that no frame exceeds the brain's Z4J_WS_MAX_FRAME_BYTES (default 1 MiB)."
  },
  {
    code: 4401,
    name: "unauthorized",
    failureClass: "auth",
    meaning: "The bearer token is missing, malformed or unknown (also after the agent's project was deleted).",
    remedy:
      "Check Z4J_TOKEN: it must be the token shown when this agent was created, and the agent must still exist in the brain."
  },
  {
    code: 4403,
    name: "signature_rejected",
    failureClass: "auth",
    meaning:
      "A signed frame failed the HMAC check or the replay guard (timestamp more than 60 s off, seq or nonce reused).",
    remedy:
      "Either this machine's clock is more than 60 s off the brain's (run NTP on both hosts), or Z4J_HMAC_SECRET is wrong (use the hmac_secret returned for this project, current since the brain's last Z4J_SECRET rotation)."
  },
  {
    code: 4408,
    name: "idle_timeout",
    failureClass: "network",
    meaning: "The brain received no application frame within its idle timeout (default 90 s).",
    remedy: "Check that heartbeats are sent (every 10 s) and that nothing stalls the agent's event loop."
  },
  {
    code: 4426,
    name: "unsupported_protocol_version",
    failureClass: "terminal",
    meaning: "The brain does not speak the protocol version in the hello.",
    remedy: "Upgrade z4j-agent or the brain so that both speak protocol version 2."
  },
  {
    code: 4427,
    name: "version_skew",
    failureClass: "terminal",
    meaning:
      "The brain refused this agent version (reserved by newer brains for agents too far from the brain's version).",
    remedy: "Install a z4j-agent release no newer than the brain and at most one minor version behind it."
  },
  {
    code: 4429,
    name: "rate_limited",
    failureClass: "network",
    meaning:
      "Too many connections: more than 600 connects per minute from this IP, or this agent already has the maximum number of worker connections (default 64).",
    remedy:
      "Reduce the number of processes using this agent's token or give them separate agents; the agent retries with backoff."
  }
]

/**
 * Every close code the brain is known to send, keyed by code.
 *
 * @since 0.1.0
 * @category constants
 */
export const closeCodes: ReadonlyMap<number, CloseCodeInfo> = new Map(entries.map((entry) => [entry.code, entry]))

/**
 * Returns the entry for `code`; codes not in {@link closeCodes} get a generic `network` entry, so an
 * unknown close is retried with backoff.
 *
 * @since 0.1.0
 * @category lookups
 */
export const closeCodeInfo = (code: number): CloseCodeInfo =>
  closeCodes.get(code) ?? {
    code,
    name: "unknown",
    failureClass: "network",
    meaning: `Close code ${code} is not one the z4j brain is known to send.`,
    remedy: "Check the brain's log and any proxy between the agent and the brain; the agent reconnects with backoff."
  }
