import { closeCodeInfo } from "../../protocol/index.js"
import type { FailureClass } from "../AgentState.js"
import type { CloseInfo, ConnectFailed } from "../Connection.js"

/** Why a connection attempt or a session ended, with the class that picks the reconnect backoff. */
export interface Failure {
  readonly class: FailureClass | "terminal"
  readonly message: string
  readonly remedy: string
}

export const classifyClose = (close: CloseInfo, phase: "handshake" | "session"): Failure => {
  const info = closeCodeInfo(close.code)
  const reason = close.reason === "" ? "" : ` "${close.reason}"`
  const where = phase === "handshake" ? "during the handshake" : "the connection"
  const failureClass = info.failureClass === "normal" ? "network" : info.failureClass
  // 1005 and 1006 never travel in a close frame: the local socket reports them when none arrived.
  const lost = close.code === 1005 || close.code === 1006
  return {
    class: failureClass,
    message: lost
      ? `the connection to the brain was lost ${phase === "handshake" ? "during the handshake " : ""}without a close frame (code ${close.code}, ${info.name})`
      : `the brain closed ${where} with code ${close.code} (${info.name})${reason}`,
    remedy: info.remedy
  }
}

export const classifyConnectFailure = (error: ConnectFailed): Failure => {
  switch (error.reason) {
    case "http_status": {
      const status = error.status ?? 0
      if (status === 401 || status === 403) {
        return {
          class: "auth",
          message: `the brain at ${error.url} refused the connection with HTTP ${status}`,
          remedy:
            "Check Z4J_TOKEN: it must be the token shown when this agent was created, and the agent must not be revoked"
        }
      }
      if (status === 404) {
        return {
          class: "protocol",
          message: `no agent endpoint at ${error.url} (HTTP 404)`,
          remedy: "Check Z4J_BRAIN_URL: it should be the brain's base address; the agent appends /ws/agent"
        }
      }
      if (status >= 500) {
        return {
          class: "network",
          message: `the brain or a proxy in front of it failed with HTTP ${status}`,
          remedy: "Check that the brain is running and healthy"
        }
      }
      return {
        class: "protocol",
        message: `the server at ${error.url} answered the WebSocket upgrade with HTTP ${status}`,
        remedy:
          "A proxy may be stripping the Upgrade and Connection headers; configure it to pass WebSocket upgrades to the brain"
      }
    }
    case "tls":
      return {
        class: "protocol",
        message: `TLS handshake with ${error.url} failed: ${error.detail}`,
        remedy:
          "Check the brain's certificate (expiry, host name, issuing CA); set NODE_EXTRA_CA_CERTS for a private CA"
      }
    case "dns":
      return {
        class: "network",
        message: `cannot resolve the brain's host name in ${error.url}`,
        remedy: "Check Z4J_BRAIN_URL and this machine's DNS"
      }
    case "refused":
      return {
        class: "network",
        message: `connection to ${error.url} refused`,
        remedy: "Check that the brain is running and that Z4J_BRAIN_URL has the right host and port"
      }
    case "timeout":
      return {
        class: "network",
        message: `connecting to ${error.url} timed out`,
        remedy: "Check the network path to the brain (firewall, proxy) and that the brain is running"
      }
    case "network":
      return {
        class: "network",
        message: `connection to ${error.url} failed: ${error.detail}`,
        remedy: "Check the network path to the brain"
      }
  }
}
