/**
 * z4j-agent: the z4j agent runtime for Node.js, as Effect services and layers.
 *
 * @since 0.1.0
 */

export * as EngineAdapter from "./engines/EngineAdapter.js"
export * as Z4j from "./layers/Z4j.js"
export { Float, float } from "./protocol/JsonValue.js"
export * as Agent from "./services/Agent.js"
export * as AgentConfig from "./services/AgentConfig.js"
export * as CommandRouter from "./services/CommandRouter.js"
export * as Connection from "./services/Connection.js"
export * as Dispatcher from "./services/Dispatcher.js"
export * as EngineRegistry from "./services/EngineRegistry.js"
export * as EventBuffer from "./services/EventBuffer.js"
export * as Heartbeat from "./services/Heartbeat.js"
export * as HelloBuilder from "./services/HelloBuilder.js"
export * as Redactor from "./services/Redactor.js"
export * as Supervisor from "./services/Supervisor.js"
export { agentVersion, protocolVersion } from "./version.js"
