/**
 * A TestBrain in its own process, so a bench's worker process pays only for the agent, not for the
 * brain's verification and records. Prints one JSON line with the agent options, then answers
 * `{"op":"count"}` with the number of distinct events received, and stops when stdin closes.
 */
import { createInterface } from "node:readline"
import * as TestBrain from "../../src/testing/TestBrain.js"

const brain = await TestBrain.start()
process.stdout.write(`${JSON.stringify({ op: "started", agentOptions: brain.agentOptions })}\n`)
for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line) as { op: string }
  if (command.op === "count") {
    process.stdout.write(
      `${JSON.stringify({ op: "count", events: new Set(brain.events.map((event) => event.id)).size })}\n`
    )
  }
}
await brain.stop()
