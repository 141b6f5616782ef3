/**
 * Whether `value` is a Uint8Array (a Buffer too), of any realm: a test environment such as Vitest's jsdom one puts
 * another realm's Uint8Array on the global while the platform's own APIs (TextEncoder, say) go on making their own,
 * and a page may hand over an iframe's. %TypedArray%.prototype's toStringTag getter reads the value's internal type,
 * which a Uint8Array has whatever realm made it (and which no object can fake), as Node's util.types.isUint8Array does.
 * Every check of caller's bytes goes through here, in both builds.
 */
const typedArrayName = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag)?.get

export const isBytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array || typedArrayName?.call(value) === 'Uint8Array'
