import { generateKeyPairSync } from 'node:crypto'
import { ALGORITHM_SUITE_IDS, RawAesKeyring, RawRsaKeyring, type CommitmentPolicy, type Keyring } from '../../src/index.js'

export const COMMITTING = new Set([0x0478, 0x0578])
export const SIGNING = new Set([0x0214, 0x0346, 0x0378, 0x0578])

/** The policy that lets a suite encrypt; decrypting with it then also works. */
export function policyFor(suiteId: number): CommitmentPolicy {
  return COMMITTING.has(suiteId) ? 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT'
}

export const suites = [...ALGORITHM_SUITE_IDS]

export function aesKeyring(bytes = 32, name = 'key-1', fill = 7): RawAesKeyring {
  return new RawAesKeyring({ keyNamespace: 'test', keyName: name, wrappingKey: new Uint8Array(bytes).fill(fill) })
}

let rsaPair: { publicKey: string; privateKey: string } | undefined
export function rsaPem(): { publicKey: string; privateKey: string } {
  rsaPair ??= generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  })
  return rsaPair
}

export function rsaKeyring(padding: 'OAEP-SHA256' | 'PKCS1' | 'OAEP-SHA1' = 'OAEP-SHA256'): RawRsaKeyring {
  return new RawRsaKeyring({ keyNamespace: 'test', keyName: 'rsa-1', ...rsaPem(), padding })
}

/** Resolve to the rejection reason, or fail the test when the promise resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection, but the promise resolved')
}

/** A keyring that counts how often it is asked, delegating to `inner`. */
export function spyKeyring(inner: Keyring): { keyring: Keyring; calls: { encrypt: number; decrypt: number } } {
  const calls = { encrypt: 0, decrypt: 0 }
  const keyring: Keyring = {
    onEncrypt: (materials, backend) => {
      calls.encrypt++
      return inner.onEncrypt(materials, backend)
    },
    onDecrypt: (materials, edks, backend) => {
      calls.decrypt++
      return inner.onDecrypt(materials, edks, backend)
    },
  }
  return { keyring, calls }
}
