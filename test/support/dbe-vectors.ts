// Test support: reading the official Database Encryption SDK's decrypt vectors (test/fixtures/dbe/).
// Their items are JSON: plain strings and numbers stand for S and N, every other value is a one-member
// object in DynamoDB's shape ({"L": [...]}, {"M": {...}}, {"NS": [...]}, {"B": "<base64>"}, ...), and map
// members and list entries follow the same rules (the vector runner's JsonItem conversion).
import { readFileSync } from 'node:fs'
import type { AttributeValue, CryptoAction, Item } from '../../src/dynamodb/types.js'
import type { StaticBranchKey } from './branch-key.js'

const FIXTURES = new URL('../fixtures/dbe/', import.meta.url)

export interface DbeVector {
  readonly file: string
  readonly id: string
  readonly type: 'positive-decrypt' | 'negative-decrypt'
  readonly description: string
  readonly attributeActionsOnEncrypt: Record<string, CryptoAction>
  readonly allowedUnsignedAttributes?: string[]
  readonly allowedUnsignedAttributePrefix?: string
  readonly algorithmSuite?: 0x6700 | 0x6701
  readonly plaintext: Item
  readonly encrypted: Item
}

/** The vector runner's defaults (TestVectors JsonConfig): one table, partition key RecNum, no sort key. */
export const VECTOR_TABLE = 'GazelleVectorTable'
export const VECTOR_PARTITION_KEY = 'RecNum'

const SUITES: Record<string, 0x6700 | 0x6701> = {
  ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_SYMSIG_HMAC_SHA384: 0x6700,
  ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384: 0x6701,
}

function numberText(value: number): string {
  if (!Number.isSafeInteger(value)) throw new Error(`vector number ${value} is not an integer`)
  return String(value)
}

export function vectorValue(json: unknown): AttributeValue {
  if (typeof json === 'string') return { S: json }
  if (typeof json === 'number') return { N: numberText(json) }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`unexpected vector value ${JSON.stringify(json)}`)
  const entries = Object.entries(json)
  if (entries.length !== 1) throw new Error(`a vector attribute value has one member: ${JSON.stringify(json)}`)
  const [type, value] = entries[0] as [string, any]
  switch (type) {
    case 'S':
    case 'N':
      return { [type]: value } as AttributeValue
    case 'B':
      return { B: new Uint8Array(Buffer.from(value, 'base64')) }
    case 'SS':
      return { SS: [...value] }
    case 'NS':
      return { NS: value.map((entry: string | number) => (typeof entry === 'number' ? numberText(entry) : entry)) }
    case 'BS':
      return { BS: value.map((entry: string) => new Uint8Array(Buffer.from(entry, 'base64'))) }
    case 'L':
      return { L: value.map(vectorValue) }
    case 'M':
      return { M: vectorItem(value) }
    case 'BOOL':
      return { BOOL: value }
    case 'NULL':
      return { NULL: true }
    default:
      throw new Error(`unknown attribute type ${type}`)
  }
}

export function vectorItem(json: Record<string, unknown>): Item {
  return Object.fromEntries(Object.entries(json).map(([name, value]) => [name, vectorValue(value)]))
}

export function loadVectors(file: string): DbeVector[] {
  const manifest = JSON.parse(readFileSync(new URL(file, FIXTURES), 'utf8'))
  if (manifest.manifest?.type !== 'aws-dbesdk-decrypt') throw new Error(`${file} is not a DBE decrypt manifest`)
  return Object.entries(manifest.tests as Record<string, any>).map(([id, test]) => {
    const config = test.config
    const suite = config.algorithmSuiteId === undefined ? undefined : SUITES[config.algorithmSuiteId]
    if (config.algorithmSuiteId !== undefined && suite === undefined) throw new Error(`unknown suite ${config.algorithmSuiteId}`)
    return {
      file,
      id,
      type: test.type,
      description: test.description,
      attributeActionsOnEncrypt: config.attributeActionsOnEncrypt,
      ...(config.allowedUnsignedAttributes === undefined ? {} : { allowedUnsignedAttributes: config.allowedUnsignedAttributes }),
      ...(config.allowedUnsignedAttributePrefix === undefined ? {} : { allowedUnsignedAttributePrefix: config.allowedUnsignedAttributePrefix }),
      ...(suite === undefined ? {} : { algorithmSuite: suite }),
      plaintext: vectorItem(test.plaintext),
      encrypted: vectorItem(test.encrypted),
    }
  })
}

/** The static branch key all the decrypt vectors were written under. */
export function vectorBranchKey(): StaticBranchKey {
  const keys = JSON.parse(readFileSync(new URL('keys.json', FIXTURES), 'utf8'))
  const key = keys['static-branch-key-1']
  return { branchKeyId: key['key-id'], version: key.branchKeyVersion, key: new Uint8Array(Buffer.from(key.branchKey, 'base64')) }
}
