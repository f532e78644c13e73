/**
 * Versions the agent reports about itself. A test keeps `agentVersion` equal to package.json's.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 * @category constants
 */
export const agentVersion = "0.1.0"

/**
 * The z4j wire protocol version this agent speaks; the brain compares it as a string.
 *
 * @since 0.1.0
 * @category constants
 */
export const protocolVersion = "2"
