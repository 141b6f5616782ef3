import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { MultiKeyring, RawAesKeyring, RawRsaKeyring, type Keyring, type RsaPadding } from '../../src/index.js'

const root = fileURLToPath(new URL('../fixtures/official-js/', import.meta.url))

export type KeyringSpec =
  | { type: 'raw-aes'; key: string; utf8Sorting?: boolean }
  | { type: 'raw-rsa'; key: string; padding: RsaPadding }
  | { type: 'multi'; generator?: KeyringSpec; children?: KeyringSpec[] }

export interface Vector {
  id: string
  expect: 'success' | 'error'
  group: string
  ciphertext: string
  plaintext?: string
  suiteId: string
  frameLength: number
  contentType: 'framed' | 'non-framed'
  messageFormatVersion?: 1 | 2
  commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' | 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' | 'FORBID_ENCRYPT_ALLOW_DECRYPT'
  expectedEncryptionContext?: Record<string, string>
  encryptionContext?: Record<string, string>
  decryptKeyrings: KeyringSpec[]
  encryptedDataKeys?: { providerId: string; providerInfoHex: string }[]
  mutation?: { kind: string; description: string; offset: number }
  aesEcOrderingSensitive?: boolean
}

interface KeyEntry {
  type: 'aes' | 'rsa'
  keyNamespace: string
  keyName: string
  material?: string
  publicKeyPem?: string
  privateKeyPem?: string
}

export const manifest = JSON.parse(readFileSync(root + 'manifest.json', 'utf8')) as { vectors: Vector[] }
export const keys = (JSON.parse(readFileSync(root + 'keys.json', 'utf8')) as { keys: Record<string, KeyEntry> }).keys

export function readFixture(path: string): Uint8Array {
  return new Uint8Array(readFileSync(root + path))
}

export function buildKeyring(spec: KeyringSpec): Keyring {
  if (spec.type === 'multi') {
    return new MultiKeyring({
      ...(spec.generator ? { generator: buildKeyring(spec.generator) } : {}),
      children: (spec.children ?? []).map(buildKeyring),
    })
  }
  const entry = keys[spec.key]
  if (entry === undefined) throw new Error(`unknown key ${spec.key}`)
  if (spec.type === 'raw-aes') {
    return new RawAesKeyring({
      keyNamespace: entry.keyNamespace,
      keyName: entry.keyName,
      wrappingKey: new Uint8Array(Buffer.from(entry.material as string, 'base64')),
    })
  }
  return new RawRsaKeyring({
    keyNamespace: entry.keyNamespace,
    keyName: entry.keyName,
    publicKey: entry.publicKeyPem,
    privateKey: entry.privateKeyPem,
    padding: spec.padding,
  })
}
