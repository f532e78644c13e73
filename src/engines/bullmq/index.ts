/**
 * The BullMQ engine adapter, an optional part of the package: importing this module loads `bullmq` and
 * `ioredis`. The runtime reaches it through {@link Discovery}, which imports it only when `bullmq` is
 * installed.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as BullMQ from "./BullMQ.js"

/**
 * @since 0.1.0
 */
export * as Discovery from "./Discovery.js"

/**
 * @since 0.1.0
 */
export * as Layers from "./Layers.js"
