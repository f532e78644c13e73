/**
 * The in-process engine for Effect applications.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Tasks from "./Tasks.js"
