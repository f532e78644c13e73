/**
 * `z4j-agent version`: the versions an operator quotes in a bug report.
 *
 * @since 0.1.0
 */
import { agentVersion, protocolVersion } from "../version.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Versions {
  /** The z4j-agent package. */
  readonly agent: string
  /** The z4j wire protocol the agent speaks. */
  readonly protocol: string
  readonly node: string
  readonly platform: string
  readonly arch: string
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const current = (): Versions => ({
  agent: agentVersion,
  protocol: protocolVersion,
  node: process.versions.node,
  platform: process.platform,
  arch: process.arch
})

/**
 * The versions as a few lines for a terminal, or as one JSON document.
 *
 * @since 0.1.0
 * @category rendering
 */
export const render = (versions: Versions, json: boolean): string =>
  json
    ? JSON.stringify(versions)
    : [
        `z4j-agent ${versions.agent}`,
        `protocol  ${versions.protocol}`,
        `node      ${versions.node} (${versions.platform}-${versions.arch})`
      ].join("\n")
