// Items written by the official AWS Database Encryption SDK (Java and .NET, 3.2 and 3.3) must decrypt here,
// and items written here must decrypt here under the same configurations (test/fixtures/dbe/README.md), in the
// Node build (node:crypto) and in the browser build (WebCrypto), each reading what the other wrote.
import { isDeepStrictEqual } from 'node:util'
import { describe, expect, it } from 'vitest'
import { DynamoDbItemEncryptor as BrowserItemEncryptor } from '../../src/dynamodb/browser.js'
import { DynamoDbItemEncryptor } from '../../src/dynamodb/index.js'
import { serializeAttribute } from '../../src/dynamodb/attributes/index.js'
import { EnvelopeError } from '../../src/errors.js'
import type { Item } from '../../src/dynamodb/types.js'
import { withoutSubtle } from '../helpers/fixtures.js'
import { StaticBranchKeyKeyring } from '../support/branch-key.js'
import { VECTOR_PARTITION_KEY, VECTOR_TABLE, loadVectors, vectorBranchKey, type DbeVector } from '../support/dbe-vectors.js'

const FILES = ['decrypt_java_32.json', 'decrypt_java_33.json', 'decrypt_dotnet_32.json', 'decrypt_dotnet_33.json']
const keyring = new StaticBranchKeyKeyring(vectorBranchKey())

type Build = typeof DynamoDbItemEncryptor
const OTHER: ReadonlyMap<Build, Build> = new Map([
  [DynamoDbItemEncryptor, BrowserItemEncryptor],
  [BrowserItemEncryptor, DynamoDbItemEncryptor],
])

function encryptorFor(vector: DbeVector, Encryptor: Build): DynamoDbItemEncryptor {
  return new Encryptor({
    tableName: VECTOR_TABLE,
    partitionKeyName: VECTOR_PARTITION_KEY,
    attributeActionsOnEncrypt: vector.attributeActionsOnEncrypt,
    ...(vector.allowedUnsignedAttributes === undefined ? {} : { allowedUnsignedAttributes: vector.allowedUnsignedAttributes }),
    ...(vector.allowedUnsignedAttributePrefix === undefined ? {} : { allowedUnsignedAttributePrefix: vector.allowedUnsignedAttributePrefix }),
    ...(vector.algorithmSuite === undefined ? {} : { algorithmSuite: vector.algorithmSuite }),
    keyring,
  })
}

/** Items compared in their serialized (canonical) form: numbers normalized, sets ordered. */
function canonical(item: Item): Record<string, string> {
  return Object.fromEntries(
    Object.entries(item)
      .map(([name, value]) => {
        const terminal = serializeAttribute(value)
        return [name, `${terminal.typeId.toString(16)}:${Buffer.from(terminal.value).toString('hex')}`]
      })
      .sort(([a], [b]) => String(a).localeCompare(String(b))),
  )
}

const vectors = FILES.flatMap(loadVectors)

describe.each([
  ['Node build', DynamoDbItemEncryptor],
  ['browser build', BrowserItemEncryptor],
] as const)('official DynamoDB item vectors, %s', (_build, Encryptor) => {
  it('loads every manifest', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(40)
    expect(vectors.some((vector) => vector.type === 'negative-decrypt')).toBe(true)
  })

  for (const vector of vectors) {
    const label = `${vector.file} #${vector.id} ${vector.description}`
    if (vector.type === 'positive-decrypt') {
      it(`decrypts ${label}`, async () => {
        const decrypted = await encryptorFor(vector, Encryptor).decryptItem(vector.encrypted)
        expect(canonical(decrypted)).toEqual(canonical(vector.plaintext))
      })
      it(`round-trips the plaintext of ${label}, and the other build reads it`, async () => {
        const encryptor = encryptorFor(vector, Encryptor)
        const stored = await encryptor.encryptItem(vector.plaintext)
        expect(canonical(await encryptor.decryptItem(stored))).toEqual(canonical(vector.plaintext))
        const other = encryptorFor(vector, OTHER.get(Encryptor) as Build)
        expect(canonical(await other.decryptItem(stored))).toEqual(canonical(vector.plaintext))
      })
    } else {
      it(`refuses ${label}`, async () => {
        const failure = await encryptorFor(vector, Encryptor).decryptItem(vector.encrypted).then(
          () => undefined,
          (error: unknown) => error,
        )
        expect(failure).toBeInstanceOf(EnvelopeError)
      })
    }
  }
})

describe('official DynamoDB item vectors, browser build without crypto.subtle (@noble)', () => {
  it('every positive vector decrypts; every negative one is refused', async () => {
    const outcomes = await withoutSubtle(async () => {
      expect(globalThis.crypto.subtle).toBeUndefined()
      const results: [string, string][] = []
      for (const vector of vectors) {
        const outcome = await encryptorFor(vector, BrowserItemEncryptor)
          .decryptItem(vector.encrypted)
          .then(
            (item) => (vector.type === 'positive-decrypt' && isDeepStrictEqual(canonical(item), canonical(vector.plaintext)) ? 'as expected' : 'decrypted'),
            (error: unknown) => (vector.type !== 'positive-decrypt' && error instanceof EnvelopeError ? 'as expected' : `refused: ${String(error)}`),
          )
        results.push([`${vector.file} #${vector.id}`, outcome])
      }
      return results
    })
    expect(outcomes.filter(([, outcome]) => outcome !== 'as expected')).toEqual([])
    expect(outcomes.length).toBe(vectors.length)
  })
})
