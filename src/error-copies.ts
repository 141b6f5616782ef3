// A Node process can load kms-envelope more than once: the ESM build, the CommonJS build that a dependency
// requires, the browser build. Each copy has its own error classes, so plain `instanceof` would not recognise
// another copy's errors. The Node entries give each error class a `Symbol.hasInstance` that also accepts an
// error from any copy whose class chain holds a class of the same name and reaches `EnvelopeError`. (Not in the
// browser build, which is loaded once per page and counts its bytes.)

/** Let `instanceof` on each error class in `classes` (other values are skipped) recognise other copies' errors. */
export function recogniseOtherCopies(classes: Iterable<unknown>): void {
  for (const value of classes) {
    if (typeof value === 'function' && value.prototype instanceof Error) {
      Object.defineProperty(value, Symbol.hasInstance, { value: isInstance, configurable: true })
    }
  }
}

function isInstance(this: abstract new (...args: never[]) => unknown, value: unknown): boolean {
  if (Function.prototype[Symbol.hasInstance].call(this, value)) return true
  if (!(value instanceof Error)) return false
  let named = false
  let envelope = false
  for (let prototype: object | null = Object.getPrototypeOf(value); prototype !== null; prototype = Object.getPrototypeOf(prototype)) {
    const name = Object.hasOwn(prototype, 'constructor') ? (prototype as { constructor: { name?: unknown } }).constructor.name : undefined
    if (name === this.name) named = true
    if (name === 'EnvelopeError') envelope = true
  }
  return named && envelope
}
