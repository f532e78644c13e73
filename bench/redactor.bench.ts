/**
 * Throughput of the default redactor on a realistic task event (about 20 leaves, three of them secrets),
 * next to a plain deep copy of the same event with `structuredClone`, in one run. Also times a batch of
 * 8 KiB strings, the largest a string gets before truncation, to show the cost of the value-shape search
 * on long text.
 *
 * Run with `npx tsx bench/redactor.bench.ts`.
 */
import * as Effect from "effect/Effect"
import * as Redactor from "../src/services/Redactor.js"
import { median } from "./stats.js"

const eventsPerRound = 20_000
const rounds = 7

const makeEvents = () =>
  Array.from({ length: eventsPerRound }, (_, index) => ({
    task_name: "app.tasks.send_welcome_email",
    queue: "emails",
    args: [100_000 + index, "fr", { template: "bienvenue", locale: "fr_FR", retries: index % 4 }],
    kwargs: {
      user_id: `usr_${index}`,
      email: `user${index}@example.com`,
      password: "correct horse battery staple",
      options: { track_opens: true, priority: "normal", send_at: null }
    },
    result: {
      sent: index % 3 !== 0,
      provider: "smtp",
      message_id: `<${index}.1733300000@mail.example.net>`,
      duration_ms: 12.5 + (index % 100),
      headers: { authorization: "Basic dXNlcjpwYXNz", "x-request-id": `req-${index}` }
    },
    worker: "worker-1@host-a"
  }))

const perSecond = (items: ReadonlyArray<unknown>, run: (item: unknown) => unknown): number => {
  const samples: Array<number> = []
  let sink = 0
  for (let round = 0; round < rounds; round++) {
    const start = process.hrtime.bigint()
    for (const item of items) {
      if (run(item) !== undefined) sink++
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    samples.push(items.length / seconds)
  }
  if (sink === 0) throw new Error("the benchmark body returned nothing")
  return median(samples)
}

const format = (rate: number): string => `${Math.round(rate).toLocaleString("en-US")}/s`

const { redact } = Effect.runSync(Redactor.make())
const events = makeEvents()

const sample = redact(events[0]) as Record<string, unknown>
if (JSON.stringify(sample).includes("correct horse")) throw new Error("the redactor left a secret in the sample event")

// Warm up both paths so the JIT has compiled them before the timed rounds.
for (const event of events.slice(0, 2000)) {
  redact(event)
  structuredClone(event)
}

const redactRate = perSecond(events, redact)
const cloneRate = perSecond(events, (event) => structuredClone(event))

const longText = Array.from({ length: 500 }, (_, index) => `${"lorem ipsum dolor sit amet ".repeat(303)}${index}`)
const longRate = perSecond(longText, redact)

console.log(`node ${process.version}, ${eventsPerRound} events per round, median of ${rounds} rounds`)
console.log(`redact event          ${format(redactRate)}`)
console.log(`structuredClone event ${format(cloneRate)}`)
console.log(`ratio                 ${(redactRate / cloneRate).toFixed(2)}x`)
console.log(`redact 8 KiB string   ${format(longRate)}`)
