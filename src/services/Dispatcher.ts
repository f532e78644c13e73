/**
 * The dispatcher takes events from engines without ever blocking them, gives each an id, redacts and
 * serializes it once, stores it in the {@link EventBuffer}, and ships `event_batch` frames to the brain,
 * tracking every batch until the brain acknowledges it.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { EventSink, TaskEvent } from "../engines/EngineAdapter.js"
import type { AgentConfig } from "./AgentConfig.js"
import type { EventBuffer } from "./EventBuffer.js"
import * as internal from "./internal/dispatcher.js"
import type { Redactor } from "./Redactor.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface DispatcherStats {
  /** Events accepted by `emit` since start. */
  readonly acceptedTotal: number
  /** Events refused at intake because the intake queue was full, since start. */
  readonly droppedAtIntakeTotal: number
  /** Events that could not be serialized even after sanitizing, since start. */
  readonly rejectedTotal: number
  /** Events acknowledged by the brain, since start. */
  readonly ackedTotal: number
  /** Batches sent and not yet acknowledged. */
  readonly inFlightBatches: number
  readonly lastFlushAtMillis: number | null
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DispatcherShape {
  /** The synchronous, non-blocking sink given to engine adapters. */
  readonly sink: EventSink
  /** Effect form of `sink.emit`; never fails and never waits for the brain. */
  readonly emit: (event: TaskEvent) => Effect.Effect<void>
  /** Moves every queued event into the buffer and, when connected, sends what fits in frames now. */
  readonly flush: Effect.Effect<void>
  readonly stats: Effect.Effect<DispatcherStats>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Dispatcher extends Context.Tag("z4j-agent/Dispatcher")<Dispatcher, DispatcherShape>() {}

/**
 * The dispatcher with the hooks the connection supervisor drives (attach a session, apply acks,
 * drain at shutdown). Not needed by adapters.
 *
 * @since 0.1.0
 * @category tags
 */
export class DispatcherRuntime extends Context.Tag("z4j-agent/DispatcherRuntime")<
  DispatcherRuntime,
  internal.DispatcherRuntime
>() {}

/**
 * Provides {@link Dispatcher} and {@link DispatcherRuntime}; its background fiber lives as long as the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Dispatcher | DispatcherRuntime, never, AgentConfig | EventBuffer | Redactor> =
  Layer.scopedContext(
    Effect.map(internal.make, (runtime) =>
      Context.make(Dispatcher, runtime).pipe(Context.add(DispatcherRuntime, runtime))
    )
  )
