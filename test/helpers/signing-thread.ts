// Shared by the signing-thread tests (one-shot and streams): the suites that sign, a keyring the official SDK
// can decrypt with too, and plaintext that differs by seed.
import { RawAesKeyring } from '../../src/index.js'
import { aesKey, KEY_NAMESPACE, keyNameOf } from './official.js'

export const MiB = 1024 * 1024
export const SIGNING_SUITES = [0x0214, 0x0346, 0x0378, 0x0578] as const
export const spec = { kind: 'aes', bits: 256 } as const
/** The official SDK's interoperability keyring, built from the same key material. */
export const keyring = new RawAesKeyring({ keyNamespace: KEY_NAMESPACE, keyName: keyNameOf(spec), wrappingKey: aesKey(256) })

export function plaintextOf(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length)
  for (let index = 0; index < length; index++) bytes[index] = (index * 31 + seed) & 0xff
  return bytes
}
