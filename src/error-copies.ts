// The Node entries' set-up of the error classes, by the names they are exported under.
//
// Names: an error's `name` is its class's, and a bundler that minifies (esbuild's and terser's defaults, as in
// most AWS Lambda builds) renames classes, so errors would read `E: ...` in logs instead of
// `ConfigurationError: ...`. Export names survive minification, so each class gets its own back. (The browser
// build cannot afford the bytes on a page's first load; its standalone builds name their classes in
// standalone.ts.)
//
// Copies: a Node process can load kms-envelope more than once: the ESM build, the CommonJS build that a dependency
// requires, the browser build. Each copy has its own error classes, so plain `instanceof` would not recognise
// another copy's errors. Each class gets a `Symbol.hasInstance` that also accepts an error from any copy whose
// class chain holds a class of the same name and reaches `EnvelopeError`.

/** Name each error class in `exported` (other values are skipped) after its key, and let `instanceof` on it recognise other copies' errors. */
export function setUpErrorClasses(exported: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(exported)) {
    if (typeof value === 'function' && value.prototype instanceof Error) {
      Object.defineProperty(value, 'name', { value: name, configurable: true })
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
    const name = Object.prototype.hasOwnProperty.call(prototype, 'constructor') ? (prototype as { constructor: { name?: unknown } }).constructor.name : undefined
    if (name === this.name) named = true
    if (name === 'EnvelopeError') envelope = true
  }
  return named && envelope
}
