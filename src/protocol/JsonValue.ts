/**
 * The JSON value model shared by the codecs, the redactor and the buffer.
 *
 * The brain re-parses what the agent sends with Python's `json.loads`, where a number's type comes
 * from its lexeme: `1` is an int and `1.0` a float, and both sign differently. JavaScript has one
 * number type, so a value that must travel as a float although it is integral (a runtime of exactly
 * one second) is wrapped in {@link Float}. Integral `number`s and `bigint`s are written as ints,
 * other finite `number`s as floats.
 *
 * @since 0.1.0
 */

/**
 * A number that is written as a JSON float (`1.0`, `1e-05`) even when its value is integral.
 *
 * @since 0.1.0
 * @category models
 */
export class Float {
  readonly _tag = "Float"
  constructor(readonly value: number) {}
  toJSON(): number {
    return this.value
  }
}

/**
 * Marks `value` to be written as a JSON float.
 *
 * @since 0.1.0
 * @category constructors
 */
export const float = (value: number): Float => new Float(value)

/**
 * @since 0.1.0
 * @category refinements
 */
export const isFloat = (value: unknown): value is Float => value instanceof Float

/**
 * A JSON value as the agent builds it for the wire.
 *
 * @since 0.1.0
 * @category models
 */
export type JsonValue = null | boolean | number | bigint | string | Float | JsonArray | JsonObject

/**
 * @since 0.1.0
 * @category models
 */
export interface JsonArray extends ReadonlyArray<JsonValue> {}

/**
 * @since 0.1.0
 * @category models
 */
export interface JsonObject {
  readonly [key: string]: JsonValue
}
