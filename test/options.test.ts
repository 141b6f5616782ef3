// An option given as `undefined` is an option not given: it keeps its default, at run time and in the types
// (each optional option is declared `?: T | undefined`, so applications compiled with exactOptionalPropertyTypes
// can pass `value ?? undefined`; test/package.test.ts compiles such an application against the packed types).
import { describe, expect, it } from 'vitest'
import { DynamoDbItemEncryptor } from '../src/dynamodb/index.js'
import {
  CachingMaterialsManager,
  decrypt,
  decryptStream,
  encrypt,
  encryptStream,
  LocalMaterialsCache,
  MultiKeyring,
  RequiredEncryptionContextMaterialsManager,
} from '../src/index.js'
import { aesKeyring } from './helpers/fixtures.js'
import { chunked, readAll } from './helpers/web-streams.js'

const keyring = aesKeyring()
const plaintext = new Uint8Array(10_000).fill(3)

describe('options given as undefined keep their defaults', () => {
  it('encrypt and decrypt: suite 0x0578, frame length 4096, the strict commitment policy', async () => {
    const { ciphertext, header } = await encrypt(keyring, plaintext, {
      encryptionContext: undefined,
      algorithmSuite: undefined,
      frameLength: undefined,
      commitmentPolicy: undefined,
      maxEncryptedDataKeys: undefined,
    })
    expect(header).toMatchObject({ algorithmSuiteId: 0x0578, frameLength: 4096 })
    const opened = await decrypt(keyring, ciphertext, { encryptionContext: undefined, commitmentPolicy: undefined, maxEncryptedDataKeys: undefined, maxBodySize: undefined })
    expect(opened.plaintext).toEqual(plaintext)
  })

  it('streams', async () => {
    const sealing = encryptStream(keyring, { plaintextLength: undefined, signal: undefined, frameLength: undefined, algorithmSuite: undefined })
    const ciphertext = await readAll(chunked(plaintext, 999).pipeThrough(sealing))
    expect(await sealing.header).toMatchObject({ algorithmSuiteId: 0x0578, frameLength: 4096 })
    const opening = decryptStream(keyring, { signal: undefined, encryptionContext: undefined, maxBodySize: undefined })
    expect(await readAll(chunked(ciphertext, 777).pipeThrough(opening))).toEqual(plaintext)
  })

  it('materials managers, caches and the multi-keyring', async () => {
    const cache = new LocalMaterialsCache({ capacity: 4, onEvent: undefined })
    const caching = new CachingMaterialsManager({
      keyring: new MultiKeyring({ generator: keyring, children: undefined }),
      materialsManager: undefined,
      cache,
      maxAge: 60_000,
      maxMessagesEncrypted: undefined,
      maxBytesEncrypted: undefined,
      partition: undefined,
      clock: undefined,
    })
    const required = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], materialsManager: caching, keyring: undefined })
    const context = { tenant: 'acme' }
    for (let message = 0; message < 3; message++) {
      const { ciphertext } = await encrypt(required, plaintext, { encryptionContext: context })
      expect((await decrypt(required, ciphertext, { encryptionContext: context })).plaintext).toEqual(plaintext)
    }
    expect(cache.stats()).toMatchObject({ hits: 4, misses: 2 })
  })

  it('the DynamoDB item encryptor and its object conversions (undefined attribute values still left out)', async () => {
    const items = new DynamoDbItemEncryptor({
      tableName: 'orders',
      partitionKeyName: 'pk',
      sortKeyName: undefined,
      logicalTableName: undefined,
      attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', card: 'ENCRYPT_AND_SIGN' },
      allowedUnsignedAttributes: undefined,
      allowedUnsignedAttributePrefix: undefined,
      keyring,
      materialsManager: undefined,
      algorithmSuite: undefined,
      plaintextPolicy: undefined,
    })
    const stored = await items.encryptObject({ pk: 'u1', card: '4111', gone: undefined }, { removeUndefinedValues: undefined, convertEmptyValues: undefined })
    expect(stored.card).toBeInstanceOf(Uint8Array)
    expect(await items.decryptObject(stored, { wrapNumbers: undefined })).toEqual({ pk: 'u1', card: '4111' })
    // The default suite signs: 0x6701's footer holds a recipient tag and an ECDSA signature.
    const { parsedHeader } = await items.decryptItemWithHeader(await items.encryptItem({ pk: { S: 'u2' }, card: { S: '5500' } }))
    expect(parsedHeader?.algorithmSuiteId).toBe(0x6701)
  })
})
