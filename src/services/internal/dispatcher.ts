import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { EventSink, RegistryDelta, TaskEvent } from "../../engines/EngineAdapter.js"
import { newUuidV7 } from "../../protocol/Ids.js"
import { formatPydanticDatetime, newEventBatchId, renderCanonical } from "../../protocol/index.js"
import type { JsonValue } from "../../protocol/JsonValue.js"
import { AgentConfig } from "../AgentConfig.js"
import { AgentState, type LiveSession } from "../AgentState.js"
import type { DispatcherShape, DispatcherStats } from "../Dispatcher.js"
import { type BufferEntry, EventBuffer } from "../EventBuffer.js"
import { Redactor } from "../Redactor.js"
import { checkTaskEvent, InvalidTaskEvent } from "./eventShape.js"

/** Bytes of an `event_batch` frame around its events: envelope keys, ids, nonce, hmac and `{"events":[]}`. */
const frameOverheadBytes = 512

const rejectWarningIntervalMillis = 60_000

/** Shortest time between two runs of the pump while events keep arriving. */
const pumpCoalesceMillis = 20

/**
 * A batch sent and not yet acknowledged. Its bodies stay in the buffer only and are read back for the
 * rare resend or refusal. Keeping a copy here held up to `maxInFlightBatches` batches of strings for a
 * round trip each, which under load was long enough for V8 to promote them to the old generation.
 */
interface InFlightBatch {
  readonly ids: ReadonlyArray<number>
  readonly sentAtMillis: number
}

/** Writes the payload of an `event_batch` frame around event bodies that are already canonical JSON. */
const renderPayload = (bodies: ReadonlyArray<string>): string => `{"events":[${bodies.join(",")}]}`

/** The dispatcher as the supervisor uses it: the public service plus session attachment, acks and draining. */
export interface DispatcherRuntime extends DispatcherShape {
  /** Sends buffered events over `session` until the scope closes (the session ends). */
  readonly attach: (session: LiveSession) => Effect.Effect<void, never, Scope.Scope>
  /** Applies an `event_batch_ack`. */
  readonly acknowledge: (ackedId: string) => Effect.Effect<void>
  /**
   * Settles a batch the brain refused for good without acknowledging it: entries that `refused`
   * matches are discarded and counted, the rest were stored by the brain and are removed. Returns how
   * many were discarded, or undefined when the batch is not in flight.
   */
  readonly settleRefused: (
    batchId: string,
    refused: (body: string) => boolean,
    reason: string
  ) => Effect.Effect<number | undefined>
  /** Queued `registry_delta` payloads, sent by the session when it can. */
  readonly registryDeltas: Queue.Queue<RegistryDelta>
  /** Refuses new events from now on (they are counted as dropped), for shutdown. */
  readonly stopIntake: Effect.Effect<void>
  /**
   * Moves queued events into the buffer and waits until the brain has acknowledged everything
   * buffered, or until `timeoutMillis`; returns how many events were still unacknowledged.
   */
  readonly drain: (timeoutMillis: number) => Effect.Effect<number>
}

export const make: Effect.Effect<DispatcherRuntime, never, AgentConfig | EventBuffer | Redactor | Scope.Scope> =
  Effect.gen(function* () {
    const config = yield* AgentConfig
    const buffer = yield* EventBuffer
    const redactor = yield* Redactor
    const state = yield* Effect.serviceOption(AgentState)

    const intake: Array<TaskEvent> = []
    let intakeOpen = true
    let acceptedTotal = 0
    let droppedAtIntakeTotal = 0
    let rejectedTotal = 0
    let ackedTotal = 0
    let lastFlushAtMillis: number | null = null
    let intakeDropStreak = 0
    // Rejections are logged at most once a minute, with the count since the last warning, because an
    // adapter that builds every event wrong would otherwise log once per event.
    let rejectedSinceWarning = 0
    let lastRejectWarningMillis = Number.NEGATIVE_INFINITY

    // One slot is enough: a wake-up that finds one pending already has nothing to add.
    const pumpWake = yield* Queue.sliding<void>(1)
    const senderWake = yield* Queue.sliding<void>(1)
    const registryDeltas = yield* Queue.sliding<RegistryDelta>(1024)
    const inFlight = new Map<string, InFlightBatch>()
    const ackWaiters = new Set<Deferred.Deferred<void>>()

    const emitUnsafe = (event: TaskEvent): void => {
      if (!intakeOpen || intake.length >= config.intakeCapacity) {
        droppedAtIntakeTotal += 1
        intakeDropStreak += 1
        if (intakeDropStreak === 1) {
          // Logged from the pump, not here: this runs on the host's call stack.
          pumpWake.unsafeOffer(undefined)
        }
        return
      }
      if (intakeDropStreak > 0) intakeDropStreak = -intakeDropStreak
      intake.push(event)
      acceptedTotal += 1
      if (intake.length === 1 || intake.length >= config.maxBatchEvents) pumpWake.unsafeOffer(undefined)
    }

    const sink: EventSink = {
      emit: (event) => {
        try {
          emitUnsafe(event)
        } catch {
          // A host value whose property access throws must not reach the host's call stack.
          droppedAtIntakeTotal += 1
        }
      },
      registry: (delta) => {
        registryDeltas.unsafeOffer(delta)
      }
    }

    const renderEvent = (hostEvent: TaskEvent, nowMillis: number): string => {
      const event = checkTaskEvent(hostEvent)
      const occurredAt =
        event.occurredAt instanceof Date && !Number.isNaN(event.occurredAt.getTime())
          ? event.occurredAt
          : new Date(nowMillis)
      const redacted = redactor.redact({
        kind: event.kind,
        engine: event.engine,
        task_id: event.taskId,
        data: event.data
      }) as { readonly [key: string]: JsonValue }
      const data = redacted.data
      return renderCanonical({
        id: newUuidV7(nowMillis),
        kind: redacted.kind ?? null,
        engine: redacted.engine ?? null,
        task_id: redacted.task_id ?? null,
        occurred_at: formatPydanticDatetime(occurredAt),
        data: data !== null && typeof data === "object" && !Array.isArray(data) ? data : {}
      })
    }

    const logDropStreaks = Effect.gen(function* () {
      if (intakeDropStreak === 1) {
        intakeDropStreak = 2
        yield* Effect.logWarning(
          `intake queue full (${config.intakeCapacity} events): dropping new events until the agent catches up; the count is reported as dropped_events`
        )
      } else if (intakeDropStreak < 0) {
        yield* Effect.logInfo(`intake accepting events again after dropping ${-intakeDropStreak}`)
        intakeDropStreak = 0
      }
    })

    /** Renders events and stores them in one buffer transaction. */
    const storeEvents = (events: ReadonlyArray<TaskEvent>, nowMillis: number) =>
      Effect.gen(function* () {
        const bodies: Array<string> = []
        for (const event of events) {
          try {
            bodies.push(renderEvent(event, nowMillis))
          } catch (error) {
            rejectedTotal += 1
            rejectedSinceWarning += 1
            if (nowMillis - lastRejectWarningMillis >= rejectWarningIntervalMillis) {
              const count =
                rejectedSinceWarning === 1 ? "" : ` (${rejectedSinceWarning} events dropped since the last warning)`
              lastRejectWarningMillis = nowMillis
              rejectedSinceWarning = 0
              yield* error instanceof InvalidTaskEvent
                ? Effect.logWarning(`${error.message}. The event was dropped and counted in dropped_events${count}`)
                : Effect.logWarning(
                    `event could not be serialized and was dropped (counted in dropped_events)${count}`,
                    error
                  )
            }
          }
        }
        if (bodies.length > 0) {
          yield* buffer.append(bodies)
          senderWake.unsafeOffer(undefined)
        }
      })

    /**
     * Moves every queued event into the buffer, `maxBatchEvents` at a time, so at most one batch of rendered
     * bodies is alive at once and stored events are released as the pump goes. Rendering a deep queue in one
     * go kept it all alive through young-generation collections, and V8 promoted it to the old generation.
     */
    const pumpOnce = Effect.gen(function* () {
      yield* logDropStreaks
      const nowMillis = yield* Clock.currentTimeMillis
      let remaining = intake.length
      while (remaining > 0) {
        const events = intake.splice(0, Math.min(remaining, config.maxBatchEvents))
        remaining -= events.length
        yield* storeEvents(events, nowMillis)
      }
      // Events that arrived while the fiber yielded found the queue non-empty and did not wake the pump.
      if (intake.length > 0) pumpWake.unsafeOffer(undefined)
    })

    // One timer wakes the pump and the sender every flush interval. A timeout on each wait forked a fiber
    // and started a timer per batch. In one profiled steady run of bench/compare, that was about 40% of
    // the garbage V8 promoted to the old generation, whose growth sets the peak RSS.
    yield* Effect.sleep(config.flushIntervalMillis).pipe(
      Effect.zipRight(
        Effect.sync(() => {
          pumpWake.unsafeOffer(undefined)
          senderWake.unsafeOffer(undefined)
        })
      ),
      Effect.forever,
      Effect.forkScoped
    )

    // The pump wakes on the first event after an idle spell, so a lone event is buffered at once. Under
    // load it runs at most once per coalescing window, so that one buffer transaction (and later one
    // batch) carries many events instead of one or two.
    const coalesceMillis = Math.min(pumpCoalesceMillis, config.flushIntervalMillis)
    let lastPumpMillis = Number.NEGATIVE_INFINITY
    yield* Effect.gen(function* () {
      yield* Queue.take(pumpWake)
      const sinceLastPump = (yield* Clock.currentTimeMillis) - lastPumpMillis
      if (sinceLastPump < coalesceMillis && intake.length < config.maxBatchEvents) {
        // A full batch in the intake queue ends the wait early, so a burst cannot fill the queue (and
        // lose events) while the pump waits.
        yield* Queue.take(pumpWake).pipe(Effect.timeout(coalesceMillis - sinceLastPump), Effect.ignore)
      }
      lastPumpMillis = yield* Clock.currentTimeMillis
      yield* pumpOnce
    }).pipe(
      Effect.catchAllCause((cause) => Effect.logWarning("dispatcher intake failed; retrying", cause)),
      Effect.forever,
      Effect.annotateLogs("module", "Dispatcher"),
      Effect.forkScoped
    )

    const notifyAck = Effect.sync(() => {
      for (const waiter of ackWaiters) Deferred.unsafeDone(waiter, Effect.void)
    })

    const acknowledge = (ackedId: string): Effect.Effect<void> =>
      Effect.gen(function* () {
        const batch = inFlight.get(ackedId)
        if (batch === undefined) {
          yield* Effect.logDebug("event_batch_ack for a batch that is not in flight", { ackedId })
          return
        }
        inFlight.delete(ackedId)
        yield* buffer.remove(batch.ids)
        ackedTotal += batch.ids.length
        senderWake.unsafeOffer(undefined)
        yield* notifyAck
      })

    /** Reads back the stored bodies of a batch by id. Events evicted or removed since it was sent are left out. */
    const readBodies = (ids: ReadonlyArray<number>): Effect.Effect<Map<number, string>> =>
      Effect.map(buffer.read(ids[0]! - 1, ids.length, Number.POSITIVE_INFINITY), (entries) => {
        const members = new Set(ids)
        const bodies = new Map<number, string>()
        for (const entry of entries) {
          if (members.has(entry.id)) bodies.set(entry.id, entry.body)
        }
        return bodies
      })

    const settleRefused = (
      batchId: string,
      refused: (body: string) => boolean,
      reason: string
    ): Effect.Effect<number | undefined> =>
      Effect.gen(function* () {
        const batch = inFlight.get(batchId)
        if (batch === undefined) return undefined
        inFlight.delete(batchId)
        const bodies = yield* readBodies(batch.ids)
        const discarded: Array<number> = []
        const stored: Array<number> = []
        for (const id of batch.ids) {
          // An event no longer in the buffer cannot be checked, and removing it again is a no-op.
          const body = bodies.get(id)
          const target = body !== undefined && refused(body) ? discarded : stored
          target.push(id)
        }
        yield* buffer.discard(discarded, reason)
        yield* buffer.remove(stored)
        ackedTotal += stored.length
        senderWake.unsafeOffer(undefined)
        yield* notifyAck
        return discarded.length
      })

    const attach = (session: LiveSession): Effect.Effect<void, never, Scope.Scope> =>
      Effect.gen(function* () {
        // A new session re-sends everything still buffered: the acks of the old one can no longer come.
        inFlight.clear()
        let cursor = 0
        let ackSeen = false
        let legacyWarned = false
        // One warning per outage: a brain that withholds acks would otherwise get a line per batch
        // per timeout. The outage ends when every batch in flight is acknowledged.
        let resendWarned = false
        const maxBatchBytes = Math.max(1024, session.maxFrameBytes - frameOverheadBytes)

        const sendBatch = (ids: ReadonlyArray<number>, payload: string) =>
          Effect.gen(function* () {
            const batchId = newEventBatchId()
            const nowMillis = yield* Clock.currentTimeMillis
            inFlight.set(batchId, { ids, sentAtMillis: nowMillis })
            yield* session.send("event_batch", batchId, payload)
            lastFlushAtMillis = nowMillis
          })

        // Reads the events after the cursor and discards those too large for a frame. Only the ids and the
        // payload leave it, so the rows it read are garbage while the payload waits for the socket.
        const nextBatch = Effect.gen(function* () {
          const entries: ReadonlyArray<BufferEntry> = yield* buffer.read(cursor, config.maxBatchEvents, maxBatchBytes)
          if (entries.length === 0) return undefined
          const tooLarge = entries.filter((entry) => entry.bytes > maxBatchBytes)
          if (tooLarge.length > 0) {
            yield* buffer.discard(
              tooLarge.map((entry) => entry.id),
              `larger than the brain's maximum frame size (${session.maxFrameBytes} bytes)`
            )
            yield* Effect.logWarning(
              `discarded ${tooLarge.length} event(s) larger than the brain's maximum frame size of ${session.maxFrameBytes} bytes`
            )
          }
          const deliverable = entries.filter((entry) => entry.bytes <= maxBatchBytes)
          cursor = entries[entries.length - 1]!.id
          return {
            ids: deliverable.map((entry) => entry.id),
            payload: renderPayload(deliverable.map((entry) => entry.body))
          }
        })

        const fill = Effect.gen(function* () {
          while (inFlight.size < config.maxInFlightBatches) {
            const batch = yield* nextBatch
            if (batch === undefined) return
            if (batch.ids.length > 0) yield* sendBatch(batch.ids, batch.payload)
          }
        })

        // Batches the brain has not acknowledged in time. A brain that has acked before lost them (its
        // commit failed), so they go out again once. A brain that never acks predates acks, so its
        // batches count as delivered, as the reference agent does.
        const expireAcks = Effect.gen(function* () {
          const nowMillis = yield* Clock.currentTimeMillis
          for (const [batchId, batch] of [...inFlight]) {
            if (nowMillis - batch.sentAtMillis < config.ackTimeoutMillis) continue
            inFlight.delete(batchId)
            if (ackSeen) {
              const line = `no event_batch_ack for batch ${batchId} after ${config.ackTimeoutMillis} ms; sending its ${batch.ids.length} events again`
              if (resendWarned) yield* Effect.logDebug(line)
              else {
                resendWarned = true
                yield* Effect.logWarning(`${line} (further batches without an ack are logged at debug level)`)
              }
              const bodies = yield* readBodies(batch.ids)
              const ids = batch.ids.filter((id) => bodies.has(id))
              if (ids.length > 0) {
                yield* sendBatch(ids, renderPayload(ids.map((id) => bodies.get(id)!)))
              }
            } else {
              if (!legacyWarned) {
                legacyWarned = true
                yield* Effect.logWarning(
                  `the brain has sent no event_batch_ack in ${config.ackTimeoutMillis} ms; treating batches as delivered on send (brains before protocol acks)`
                )
              }
              yield* buffer.remove(batch.ids)
              ackedTotal += batch.ids.length
              yield* notifyAck
            }
          }
        })

        const acknowledgeInSession = (ackedId: string) =>
          Effect.sync(() => {
            ackSeen = true
          }).pipe(
            Effect.zipRight(acknowledge(ackedId)),
            Effect.zipRight(
              Effect.sync(() => {
                if (inFlight.size === 0) resendWarned = false
              })
            )
          )
        sessionAcknowledge = acknowledgeInSession

        yield* Effect.gen(function* () {
          yield* fill
          yield* expireAcks
          yield* Queue.take(senderWake)
        }).pipe(
          Effect.forever,
          Effect.catchAllCause((cause) =>
            Effect.logDebug("event sender stopped with the session", cause).pipe(Effect.as(undefined))
          ),
          Effect.annotateLogs({ module: "Dispatcher", session: session.sessionId }),
          Effect.forkScoped
        )
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            sessionAcknowledge = acknowledge
            inFlight.clear()
          })
        )
      })

    let sessionAcknowledge: (ackedId: string) => Effect.Effect<void> = acknowledge

    const flush = Effect.zipRight(
      pumpOnce,
      Effect.sync(() => {
        senderWake.unsafeOffer(undefined)
      })
    )

    const stats: Effect.Effect<DispatcherStats> = Effect.sync(() => ({
      acceptedTotal,
      droppedAtIntakeTotal,
      rejectedTotal,
      ackedTotal,
      inFlightBatches: inFlight.size,
      lastFlushAtMillis
    }))

    const drain = (timeoutMillis: number): Effect.Effect<number> =>
      Effect.gen(function* () {
        yield* flush
        const waitForEmpty = Effect.gen(function* () {
          while (true) {
            const { depth } = yield* buffer.stats
            if (depth === 0) return
            if (state._tag === "None") return
            const session = yield* SubscriptionRef.get(state.value.session)
            if (Option.isNone(session)) {
              // Not connected (not yet, or between sessions): the next session may still deliver what is
              // buffered before the drain's bound. A memory buffer loses whatever it does not.
              yield* state.value.session.changes.pipe(Stream.filter(Option.isSome), Stream.take(1), Stream.runDrain)
              continue
            }
            const waiter = yield* Deferred.make<void>()
            ackWaiters.add(waiter)
            senderWake.unsafeOffer(undefined)
            yield* Deferred.await(waiter).pipe(
              Effect.timeout(config.flushIntervalMillis),
              Effect.ignore,
              Effect.ensuring(Effect.sync(() => ackWaiters.delete(waiter)))
            )
          }
        })
        yield* waitForEmpty.pipe(Effect.timeout(timeoutMillis), Effect.ignore)
        const { depth } = yield* buffer.stats
        return depth
      })

    return {
      sink,
      emit: (event) => Effect.sync(() => sink.emit(event)),
      flush,
      stats,
      attach,
      acknowledge: (ackedId) => Effect.suspend(() => sessionAcknowledge(ackedId)),
      settleRefused,
      registryDeltas,
      stopIntake: Effect.sync(() => {
        intakeOpen = false
      }),
      drain
    }
  })
