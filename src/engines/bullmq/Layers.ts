/**
 * Layers that build a BullMQ adapter and register it with the agent. They live apart from the adapter
 * so that the adapter and discovery modules load without the agent runtime.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { type EngineNameTaken, EngineRegistry } from "../../services/EngineRegistry.js"
import * as BullMQ from "./BullMQ.js"
import * as Discovery from "./Discovery.js"

/**
 * Builds the adapter for the given queues and registers it with the agent for the lifetime of the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: BullMQ.Options
): Layer.Layer<never, BullMQ.InvalidOptions | EngineNameTaken, EngineRegistry> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const registry = yield* EngineRegistry
      const adapter = yield* BullMQ.make(options)
      yield* registry.register(adapter)
    })
  )

/**
 * Discovers the queues of a Redis, builds a sidecar adapter for them ({@link Discovery.makeSidecar}) and
 * registers it with the agent for the lifetime of the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSidecar = (
  options: Discovery.SidecarOptions
): Layer.Layer<never, Discovery.DiscoveryFailed | BullMQ.InvalidOptions | EngineNameTaken, EngineRegistry> =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const registry = yield* EngineRegistry
      const adapter = yield* Discovery.makeSidecar(options)
      yield* registry.register(adapter)
    })
  )
