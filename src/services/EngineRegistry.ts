/**
 * The set of engine adapters attached to this agent. Registering an adapter starts it with the
 * dispatcher's sink; the adapters' names, engines and capabilities go into the next hello.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { EngineAdapter } from "../engines/EngineAdapter.js"
import { Dispatcher } from "./Dispatcher.js"

/**
 * @since 0.1.0
 * @category errors
 */
export class EngineNameTaken extends Data.TaggedError("EngineNameTaken")<{ readonly name: string }> {
  override get message(): string {
    return `An engine adapter named "${this.name}" is already registered; give the second instance a distinct name (the "name" option of its constructor)`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface EngineRegistryShape {
  /**
   * Adds an adapter and starts it. The adapter stays registered, and running, until the scope of the
   * registration closes. A name that is already registered fails with {@link EngineNameTaken}.
   */
  readonly register: (adapter: EngineAdapter) => Effect.Effect<void, EngineNameTaken, Scope.Scope>
  /** The adapters registered now, in registration order. */
  readonly adapters: Effect.Effect<ReadonlyArray<EngineAdapter>>
  /** Changes whenever an adapter is added or removed. */
  readonly changes: SubscriptionRef.SubscriptionRef<ReadonlyArray<EngineAdapter>>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class EngineRegistry extends Context.Tag("z4j-agent/EngineRegistry")<EngineRegistry, EngineRegistryShape>() {}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<EngineRegistryShape, never, Dispatcher> = Effect.gen(function* () {
  const dispatcher = yield* Dispatcher
  const current = yield* SubscriptionRef.make<ReadonlyArray<EngineAdapter>>([])

  const register = (adapter: EngineAdapter): Effect.Effect<void, EngineNameTaken, Scope.Scope> =>
    Effect.gen(function* () {
      yield* SubscriptionRef.modifyEffect(current, (adapters) =>
        adapters.some((existing) => existing.name === adapter.name)
          ? Effect.fail(new EngineNameTaken({ name: adapter.name }))
          : Effect.succeed([undefined, [...adapters, adapter]] as const)
      )
      const scope = yield* Effect.scope
      yield* Scope.addFinalizer(
        scope,
        SubscriptionRef.update(current, (adapters) => adapters.filter((existing) => existing !== adapter))
      )
      // Finalizers run in reverse order, so the adapter's own resources are released before it leaves
      // the list.
      yield* adapter.start(dispatcher.sink)
      yield* Effect.annotateLogs(Effect.logDebug("engine adapter registered"), {
        adapter: adapter.name,
        engine: adapter.engine
      })
    })

  return {
    register,
    adapters: SubscriptionRef.get(current),
    changes: current
  }
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<EngineRegistry, never, Dispatcher> = Layer.effect(EngineRegistry, make)
