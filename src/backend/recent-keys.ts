// Verification keys of recent signers, shared by the Node and WebCrypto backends.
import { byteChars } from '../format/bytes.js'
import type { CurveName } from '../suites.js'

/** The longest compressed point of the supported curves (P-384); anything longer is not one. */
const MAX_COMPRESSED_POINT = 49

/**
 * `load` (an `importVerificationKey`) remembering the keys of recent signers by curve and point. Messages made
 * under one cached data key share their signing key, and decrypt asks for a message's key twice at once (its
 * early signature check and the materials manager), so a key being imported is handed out too: every caller
 * for a point gets the same key object. A point that fails to import is forgotten. Points are public values.
 */
export function recentKeys<Key>(load: (curve: CurveName, point: Uint8Array) => Promise<Key>, capacity = 64): typeof load {
  const keys = new Map<string, Promise<Key>>()
  return (curve, point) => {
    if (point.length > MAX_COMPRESSED_POINT) return load(curve, point) // refused there, and never a long map key
    const id = curve + byteChars(point)
    const known = keys.get(id)
    if (known !== undefined) {
      keys.delete(id) // most recently used goes last
      keys.set(id, known)
      return known
    }
    const key = load(curve, point)
    keys.set(id, key)
    key.catch(() => {
      if (keys.get(id) === key) keys.delete(id)
    })
    if (keys.size > capacity) keys.delete(keys.keys().next().value as string)
    return key
  }
}
