// The Node build's src/is-bytes.ts (swapped in by tsup.config.ts): a Uint8Array of any realm is bytes. Node's
// isUint8Array reads the value's internal type, which a Uint8Array has whatever global it was made from.
import { isUint8Array } from 'node:util/types'

/** Whether `value` is a Uint8Array (a Buffer too) of any realm. */
export const isBytes = (value: unknown): value is Uint8Array => isUint8Array(value)
