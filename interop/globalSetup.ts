/**
 * vitest global setup of the interop suite: boots one brain for the whole run, provides its
 * credentials to the test files as `inject("brain")`, and stops it when the run ends.
 */
import type { TestProject } from "vitest/node"
import { credentialsOf, startBrain } from "./brain.js"
import type {} from "./shared.js"

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const brain = await startBrain()
  project.provide("brain", credentialsOf(brain))
  return () => brain.stop()
}
