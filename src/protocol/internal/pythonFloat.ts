/**
 * Writes a finite double the way CPython's `repr(float)` does (CPython 3.11 checked).
 *
 * Both CPython and `Number.prototype.toExponential()` without an argument use the shortest digit
 * string that reads back to the same double, so only the layout differs: Python switches to exponent
 * form when the decimal exponent is below -4 or at least 16, pads the exponent to two digits with a
 * sign, and always writes a fraction in fixed form.
 */
export const formatPythonFloat = (value: number): string => {
  if (value === 0) return Object.is(value, -0) ? "-0.0" : "0.0"
  const magnitude = value < 0 ? -value : value
  // JavaScript writes fixed notation with the same shortest digits for 1e-7 <= |x| < 1e21.
  if (magnitude >= 1e-4 && magnitude < 1e16) {
    const text = String(value)
    return text.includes(".") ? text : `${text}.0`
  }
  const exponential = value.toExponential()
  const ePosition = exponential.indexOf("e")
  const negative = exponential.charCodeAt(0) === 45
  const mantissa = exponential.slice(negative ? 1 : 0, ePosition)
  const exponent = Number(exponential.slice(ePosition + 1))
  const digits = mantissa.length > 1 ? mantissa[0] + mantissa.slice(2) : mantissa
  let body: string
  if (exponent < -4 || exponent >= 16) {
    const absolute = exponent < 0 ? -exponent : exponent
    const fraction = digits.length > 1 ? `.${digits.slice(1)}` : ""
    body = `${digits[0]}${fraction}e${exponent < 0 ? "-" : "+"}${absolute < 10 ? "0" : ""}${absolute}`
  } else if (exponent >= 0) {
    body =
      digits.length <= exponent + 1
        ? `${digits}${"0".repeat(exponent + 1 - digits.length)}.0`
        : `${digits.slice(0, exponent + 1)}.${digits.slice(exponent + 1)}`
  } else {
    body = `0.${"0".repeat(-exponent - 1)}${digits}`
  }
  return negative ? `-${body}` : body
}
