/**
 * The z4j protocol v2 core: canonical JSON, frame signing and verification, the replay guard, frame
 * codecs and close codes. Pure functions and classes with no I/O.
 *
 * @since 0.1.0
 */
export * from "./CanonicalJson.js"
export * from "./CloseCodes.js"
export * from "./Datetime.js"
export * from "./FrameRejected.js"
export * from "./Frames.js"
export * from "./Ids.js"
export * from "./JsonValue.js"
export * from "./ReplayGuard.js"
export * as ScheduleProjection from "./ScheduleProjection.js"
export * from "./Signing.js"
