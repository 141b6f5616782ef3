// The Dafny implementation's message vectors (test/fixtures/dafny/README.md), read for test/dafny-vectors.test.ts
// (Node) and test/browser.test.ts (Chromium): their manifests, keys, and what each message's header must say.
import { readFileSync } from 'node:fs'
import { expect } from 'vitest'
import type { MessageHeader, RsaPadding } from '../../src/index.js'

const root = new URL('../fixtures/dafny/', import.meta.url)
const readJson = (name: string) => JSON.parse(readFileSync(new URL(name, root), 'utf8'))

/** A file the manifests name (`file://ciphertexts/...`). */
export const readDafnyFile = (file: string) => new Uint8Array(readFileSync(new URL(file.replace(/^file:\/\//, ''), root)))

export type KeyDescription =
  | { type: 'raw'; key: string; 'provider-id': string; 'encryption-algorithm': 'aes' | 'rsa'; 'padding-algorithm'?: string; 'padding-hash'?: string }
  | { type: 'multi-keyring'; generator?: KeyDescription; childKeyrings: KeyDescription[] }
  | { type: 'required-encryption-context-cmm'; underlying: KeyDescription; requiredEncryptionContextKeys: string[] }
  | { type: 'aws-kms-hierarchy'; key: string }

export interface Scenario {
  ciphertext: string
  result: string
  algorithmSuiteId: string
  'frame-size': number
  description: string
  decryptKeyDescription: KeyDescription
  'reproduced-encryption-context': Record<string, string>
}

const decryptTests = readJson('decrypt-manifest.json').tests as Record<string, { 'decryption-scenario': Scenario }>
const encryptTests = readJson('encrypt-manifest.json').tests as Record<string, { 'encryption-scenario': { 'encryption-context': Record<string, string> } }>
export const dafnyKeys = readJson('keys.json').keys as Record<string, Record<string, string>>
/** Each test's ID and decryption scenario. */
export const dafnyVectors = Object.entries(decryptTests).map(([id, test]) => [id, test['decryption-scenario']] as const)

const SIGNING_SUITES = new Set([0x0214, 0x0346, 0x0378, 0x0578])
const COMMITTING_SUITES = new Set([0x0478, 0x0578])

export function rsaPadding(description: { 'padding-algorithm'?: string; 'padding-hash'?: string }): RsaPadding {
  if (description['padding-algorithm'] === 'pkcs1') return 'PKCS1'
  if (description['padding-algorithm'] !== 'oaep-mgf1') throw new Error(`unknown padding ${description['padding-algorithm']}`)
  return `OAEP-${description['padding-hash']!.toUpperCase()}` as RsaPadding
}

/** The provider IDs the description's keyrings write, in the order a multi-keyring writes them. */
export function providerIds(description: KeyDescription): string[] {
  switch (description.type) {
    case 'raw':
      return [description['provider-id']]
    case 'multi-keyring':
      return [...(description.generator === undefined ? [] : providerIds(description.generator)), ...description.childKeyrings.flatMap(providerIds)]
    case 'required-encryption-context-cmm':
      return providerIds(description.underlying)
    case 'aws-kms-hierarchy':
      return ['aws-kms-hierarchy']
  }
}

/** What the checks read of a header: JSON, so a page can return it. */
export type HeaderSummary = Pick<MessageHeader, 'encryptionContext' | 'algorithmSuiteId' | 'version' | 'contentType' | 'frameLength'> & { providerIds: string[] }

export const headerSummary = (header: MessageHeader): HeaderSummary => ({
  encryptionContext: header.encryptionContext,
  algorithmSuiteId: header.algorithmSuiteId,
  version: header.version,
  contentType: header.contentType,
  frameLength: header.frameLength,
  providerIds: header.encryptedDataKeys.map((edk) => edk.providerId),
})

/** The header must store the context without the required pairs (and the signing key for signing suites). */
export function expectDafnyHeader(header: HeaderSummary, id: string, scenario: Scenario): void {
  const suiteId = Number.parseInt(scenario.algorithmSuiteId, 16)
  const description = scenario.decryptKeyDescription
  const requiredKeys = description.type === 'required-encryption-context-cmm' ? description.requiredEncryptionContextKeys : []
  const context = encryptTests[id]!['encryption-scenario']['encryption-context']
  const stored = Object.fromEntries(Object.entries(context).filter(([key]) => !requiredKeys.includes(key)))
  const { 'aws-crypto-public-key': publicKey, ...rest } = header.encryptionContext
  expect(rest, id).toEqual(stored)
  if (SIGNING_SUITES.has(suiteId)) expect(Buffer.from(publicKey!, 'base64').length, id).toBe(suiteId === 0x0214 ? 33 : 49)
  else expect(publicKey, id).toBeUndefined()
  expect(header.algorithmSuiteId, id).toBe(suiteId)
  expect(header.version, id).toBe(COMMITTING_SUITES.has(suiteId) ? 2 : 1)
  expect(header.contentType, id).toBe('framed')
  // The manifests say 512, but every message has 4096-byte frames (the official JavaScript SDK reads the same).
  expect(scenario['frame-size'], id).toBe(512)
  expect(header.frameLength, id).toBe(4096)
  expect(header.providerIds, id).toEqual(providerIds(description))
}
