/**
 * The brain the interop suite's global setup started, as seen from inside a test file: its
 * credentials from `inject("brain")`, a REST client on the shared session, and agent minting.
 */
import { inject } from "vitest"
import type { AgentConnectionOptions, BrainCredentials } from "./brain.js"
import { type MintedAgent, mintAgent, RestClient } from "./rest.js"

declare module "vitest" {
  export interface ProvidedContext {
    brain: BrainCredentials
  }
}

/** The shared brain: credentials, REST client and helpers. It cannot be stopped or restarted from a test. */
export interface SharedBrain extends BrainCredentials {
  /** The first agent the global setup created. */
  readonly agent: MintedAgent
  readonly rest: RestClient
  readonly mintAgent: (name: string) => Promise<MintedAgent>
  readonly agentOptions: (agent?: MintedAgent) => AgentConnectionOptions
}

/** Returns the brain started by interop/globalSetup.ts. */
export const sharedBrain = (): SharedBrain => {
  const credentials = inject("brain")
  const rest = new RestClient(credentials.baseUrl, credentials.slug, credentials.session)
  const agent: MintedAgent = {
    agentId: credentials.agentId,
    projectId: credentials.projectId,
    name: "ts-interop-1",
    token: credentials.token,
    hmacSecret: credentials.hmacSecret
  }
  return {
    ...credentials,
    agent,
    rest,
    mintAgent: (name) => mintAgent(rest, name),
    agentOptions: (which = agent) => ({
      brainUrl: credentials.baseUrl,
      token: which.token,
      hmacSecret: which.hmacSecret,
      projectId: which.projectId
    })
  }
}
