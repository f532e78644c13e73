/**
 * Test helpers for applications that embed the agent: a real protocol-v2 brain on loopback.
 *
 * @since 0.1.0
 */
export * as TestBrain from "./TestBrain.js"
