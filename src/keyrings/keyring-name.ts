// Apart from common.ts, which an application's first load holds: only decrypt failures name keyrings, and
// those modules load on demand.
import type { Keyring } from '../types.js'

/**
 * A keyring's class name, for errors. kms-envelope's keyrings say it in `toJSON()`, which survives an application's
 * minifier (class names do not: they become `e`); another keyring's is its constructor's name.
 */
export function keyringName(keyring: Keyring): string {
  let type: unknown
  try {
    type = (keyring as { toJSON?: () => { type?: unknown } | undefined }).toJSON?.()?.type
  } catch {
    // A keyring of the application's whose toJSON fails: its class name will do.
  }
  return typeof type === 'string' ? type : ((keyring as object).constructor?.name ?? 'Keyring')
}
