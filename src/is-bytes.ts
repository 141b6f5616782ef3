/**
 * Whether `value` is a Uint8Array (a Buffer too): here, one of this realm. The Node build replaces this module with
 * backend/node-is-bytes.ts (tsup.config.ts), which takes one of any realm: a test environment such as Vitest's jsdom
 * one puts another realm's Uint8Array on the global, while Node's own APIs (Buffer, TextEncoder, fs, streams) go on
 * making Node's, and both are the caller's bytes.
 */
export const isBytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array
