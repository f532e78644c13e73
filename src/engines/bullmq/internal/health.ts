import type { Worker } from "bullmq"
import type { Redis } from "ioredis"
import { engineName, type Reporter, workerLabel } from "./events.js"

/**
 * Builds the heartbeat's `adapter_health` entries: `bullmq.queue_depths`, a JSON string of
 * `{queue: waiting + paused + delayed + prioritized}` read in one pipeline, and, when Workers run in this
 * process, `bullmq.worker_details` in the shape of Celery's inspect replies
 * (`{hostname: {stats, active, active_queues, registered, conf}}`), which the brain turns into worker rows.
 */
export const health = async (
  client: Redis,
  prefix: string,
  queues: ReadonlyArray<string>,
  workers: ReadonlyArray<Worker>,
  reporter: Reporter | undefined
): Promise<Record<string, string>> => {
  const pipeline = client.pipeline()
  for (const queue of queues) {
    pipeline.llen(`${prefix}:${queue}:wait`)
    pipeline.llen(`${prefix}:${queue}:paused`)
    pipeline.zcard(`${prefix}:${queue}:delayed`)
    pipeline.zcard(`${prefix}:${queue}:prioritized`)
  }
  const replies = (await pipeline.exec()) ?? []
  const depths: Record<string, number> = {}
  queues.forEach((queue, index) => {
    let depth = 0
    for (let offset = 0; offset < 4; offset++) {
      const reply = replies[index * 4 + offset]
      if (reply === undefined) continue
      const [error, count] = reply
      if (error !== null) throw error
      depth += Number(count)
    }
    depths[queue] = depth
  })
  const entries: Record<string, string> = { [`${engineName}.queue_depths`]: JSON.stringify(depths) }

  if (workers.length > 0) {
    const details: Record<string, unknown> = {}
    for (const worker of workers) {
      const active = reporter?.activeByWorker.get(worker) ?? new Map<string, string>()
      details[workerLabel(worker)] = {
        stats: {
          pid: process.pid,
          pool: { "max-concurrency": worker.concurrency },
          total: {}
        },
        active: [...active.entries()].slice(0, 100).map(([id, name]) => ({ id, name, hostname: workerLabel(worker) })),
        active_queues: [{ name: worker.name }],
        registered: reporter?.knownNames(worker.name) ?? [],
        conf: {}
      }
    }
    entries[`${engineName}.worker_details`] = JSON.stringify(details)
  }
  return entries
}
