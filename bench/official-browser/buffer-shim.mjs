// The official browser SDK needs Node's Buffer as a global: esbuild injects this module into its bundles (the
// `buffer` polyfill, which the size benchmark counts).
import { Buffer } from 'buffer'
export { Buffer }
