// DynamoDbItemEncryptor: configuration checks, item checks, plaintext policies and the stored form.
import { inspect, isDeepStrictEqual } from 'node:util'
import { unmarshall } from '@aws-sdk/util-dynamodb'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { EnvelopeError } from '../../src/errors.js'
import { DynamoDbItemEncryptor as BrowserItemEncryptor } from '../../src/dynamodb/browser.js'
import { DynamoDbItemEncryptor, InvalidItemError, itemFromDynamoDbJson, MalformedItemError, type AttributeValue, type DynamoDbItemEncryptorConfig, type Item } from '../../src/dynamodb/index.js'
import { aesKeyring, heldKeyring, rejectionOf, spyKeyring, withEmptyStandIn, withFailingImport } from '../helpers/fixtures.js'
import { CachingMaterialsManager, DefaultMaterialsManager, MultiKeyring, type Keyring, type MaterialsManager } from '../../src/index.js'
import { suiteFromOption } from '../../src/suites.js'
import { isAllZero } from '../../src/format/bytes.js'

const base: DynamoDbItemEncryptorConfig = {
  tableName: 'orders',
  partitionKeyName: 'pk',
  sortKeyName: 'sk',
  attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', sk: 'SIGN_ONLY', card: 'ENCRYPT_AND_SIGN', note: 'DO_NOTHING' },
  allowedUnsignedAttributes: ['note'],
  keyring: aesKeyring(),
}
const item: Item = { pk: { S: 'u1' }, sk: { N: '7' }, card: { S: '4111' }, note: { S: 'hi' } }
/** What decrypting a changed stored item may fail with (README, DynamoDB items). */
const ITEM_DECRYPT_CODES = ['ITEM_AUTHENTICATION_FAILED', 'SIGNATURE_INVALID', 'COMMITMENT_MISMATCH', 'MALFORMED_ITEM', 'NO_DECRYPTABLE_KEY']
const codeOf = async (promise: Promise<unknown>) => ((await rejectionOf(promise)) as { code?: string }).code
/** "CODE: message" of a rejection, to compare with one string. */
const refusalOf = async (promise: Promise<unknown>) => {
  const error = (await rejectionOf(promise)) as { code?: string; message?: string }
  return `${error.code}: ${error.message}`
}
const configCode = (config: Partial<DynamoDbItemEncryptorConfig>): string | undefined => {
  try {
    new DynamoDbItemEncryptor({ ...base, ...config } as DynamoDbItemEncryptorConfig)
  } catch (error) {
    return (error as { code?: string }).code
  }
  return undefined
}

describe('DynamoDbItemEncryptor configuration', () => {
  const refused: [string, Partial<DynamoDbItemEncryptorConfig>, string][] = [
    [
      'a short table name',
      { tableName: 'ab' },
      'DynamoDbItemEncryptor tableName must be a DynamoDB table name, 3 to 255 characters of A-Z a-z 0-9 _ . -; got "ab".',
    ],
    [
      'a table name with spaces',
      { tableName: 'my table' },
      'DynamoDbItemEncryptor tableName must be a DynamoDB table name, 3 to 255 characters of A-Z a-z 0-9 _ . -; got "my table".',
    ],
    [
      'a missing partition key name',
      { partitionKeyName: '' },
      'DynamoDbItemEncryptor partitionKeyName must be a non-empty string; got "".',
    ],
    [
      'an encrypted partition key',
      { attributeActionsOnEncrypt: { ...base.attributeActionsOnEncrypt, pk: 'ENCRYPT_AND_SIGN' } },
      'DynamoDbItemEncryptor: the partition key "pk" must be SIGN_ONLY (keys are signed, never encrypted). It is ENCRYPT_AND_SIGN.',
    ],
    [
      'an unsigned sort key',
      { attributeActionsOnEncrypt: { ...base.attributeActionsOnEncrypt, sk: 'DO_NOTHING' } },
      'DynamoDbItemEncryptor: the sort key "sk" must be SIGN_ONLY (keys are signed, never encrypted). It is DO_NOTHING.',
    ],
    [
      'SIGN_ONLY keys next to a context attribute',
      { attributeActionsOnEncrypt: { ...base.attributeActionsOnEncrypt, region: 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT' } },
      'DynamoDbItemEncryptor: the partition key "pk" must be SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT (some attribute is SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT, so keys are too). It is SIGN_ONLY.',
    ],
    [
      'an unknown action',
      { attributeActionsOnEncrypt: { ...base.attributeActionsOnEncrypt, card: 'ENCRYPT' as never } },
      'DynamoDbItemEncryptor: attribute "card" has action ENCRYPT; use one of ENCRYPT_AND_SIGN, SIGN_ONLY, SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT, DO_NOTHING.',
    ],
    [
      'a DO_NOTHING attribute not allowed unsigned',
      { allowedUnsignedAttributes: [] },
      'DynamoDbItemEncryptor: attribute "note" is DO_NOTHING, so it must also be in allowedUnsignedAttributes or start with allowedUnsignedAttributePrefix.',
    ],
    [
      'a signed attribute that is allowed unsigned',
      { allowedUnsignedAttributes: ['note', 'card'] },
      'DynamoDbItemEncryptor: attribute "card" is ENCRYPT_AND_SIGN but allowed unsigned; signed attributes must not be in allowedUnsignedAttributes or match allowedUnsignedAttributePrefix.',
    ],
    [
      'a prefix that makes a signed attribute unsigned',
      { allowedUnsignedAttributePrefix: 'ca' },
      'DynamoDbItemEncryptor: attribute "card" is ENCRYPT_AND_SIGN but allowed unsigned; signed attributes must not be in allowedUnsignedAttributes or match allowedUnsignedAttributePrefix.',
    ],
    [
      'a reserved attribute name',
      { attributeActionsOnEncrypt: { ...base.attributeActionsOnEncrypt, aws_dbe_x: 'SIGN_ONLY' } },
      'DynamoDbItemEncryptor attribute name "aws_dbe_x" uses the reserved prefix "aws_dbe_".',
    ],
    [
      'both a keyring and a manager',
      { materialsManager: { getEncryptionMaterials: async () => ({}) as never, getDecryptionMaterials: async () => ({}) as never } },
      'DynamoDbItemEncryptor needs exactly one of keyring or materialsManager; got both.',
    ],
    [
      'an ESDK suite',
      { algorithmSuite: 0x0478 as never },
      'DynamoDbItemEncryptor algorithmSuite must be 0x6700 or 0x6701 (the DynamoDB item suites); got 0x0478.',
    ],
    [
      'an algorithm suite given by name',
      { algorithmSuite: 'ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384' as never },
      'DynamoDbItemEncryptor algorithmSuite must be 0x6700 or 0x6701 (the DynamoDB item suites); got "ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384_SYMSIG_HMAC_SHA384".',
    ],
    [
      'an unknown plaintext policy',
      { plaintextPolicy: 'ALLOW' as never },
      'DynamoDbItemEncryptor plaintextPolicy must be one of FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ, FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ, FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ; got "ALLOW".',
    ],
    [
      'a partition key name over 255 bytes of UTF-8',
      { partitionKeyName: 'é'.repeat(128) },
      'DynamoDbItemEncryptor partitionKeyName is 256 bytes of UTF-8; at most 255 are allowed.',
    ],
    [
      'a partition key name starting with a lone surrogate',
      { partitionKeyName: '\ud800pk' },
      'DynamoDbItemEncryptor partitionKeyName "\\ud800pk" has a lone UTF-16 surrogate, which UTF-8 cannot store (it would become U+FFFD): fix or remove that character.',
    ],
    [
      'a logical table name ending with a lone surrogate',
      { logicalTableName: 'orders\udfff' },
      'DynamoDbItemEncryptor logicalTableName "orders\\udfff" has a lone UTF-16 surrogate, which UTF-8 cannot store (it would become U+FFFD): fix or remove that character.',
    ],
    [
      'a logical table name over 65535 bytes of UTF-8',
      { logicalTableName: 'x'.repeat(65_536) },
      'DynamoDbItemEncryptor logicalTableName is 65536 bytes of UTF-8; at most 65535 are allowed.',
    ],
    [
      'the sort key named as the partition key',
      { sortKeyName: 'pk' },
      'DynamoDbItemEncryptor sortKeyName must differ from partitionKeyName.',
    ],
    [
      'allowedUnsignedAttributes not an array',
      { allowedUnsignedAttributes: 'note' as never },
      'DynamoDbItemEncryptor allowedUnsignedAttributes must be an array of attribute names; got "note".',
    ],
    [
      'an empty allowedUnsignedAttributes entry',
      { allowedUnsignedAttributes: ['note', ''] },
      'DynamoDbItemEncryptor allowedUnsignedAttributes entry must be a non-empty string; got "".',
    ],
    [
      'an allowedUnsignedAttributes entry with the reserved prefix',
      { allowedUnsignedAttributes: ['note', 'aws_dbe_head'] },
      'DynamoDbItemEncryptor allowedUnsignedAttributes entry "aws_dbe_head" uses the reserved prefix "aws_dbe_".',
    ],
    [
      'an empty allowedUnsignedAttributePrefix',
      { allowedUnsignedAttributePrefix: '' },
      'DynamoDbItemEncryptor allowedUnsignedAttributePrefix must be a non-empty string; got "".',
    ],
    [
      'an allowedUnsignedAttributePrefix that is no string',
      { allowedUnsignedAttributePrefix: 5 as never },
      'DynamoDbItemEncryptor allowedUnsignedAttributePrefix must be a non-empty string; got 5.',
    ],
    [
      'a prefix the reserved prefix starts with',
      { allowedUnsignedAttributePrefix: 'aws_' },
      'DynamoDbItemEncryptor allowedUnsignedAttributePrefix must not overlap the reserved prefix "aws_dbe_".',
    ],
    [
      'a prefix starting with the reserved prefix',
      { allowedUnsignedAttributePrefix: 'aws_dbe_x' },
      'DynamoDbItemEncryptor allowedUnsignedAttributePrefix must not overlap the reserved prefix "aws_dbe_".',
    ],
    [
      'maxEncryptedDataKeys 0',
      { maxEncryptedDataKeys: 0 },
      'DynamoDbItemEncryptor maxEncryptedDataKeys must be an integer from 1 to 255; got 0.',
    ],
    [
      'maxEncryptedDataKeys over 255 (an item header counts them in one byte)',
      { maxEncryptedDataKeys: 256 },
      'DynamoDbItemEncryptor maxEncryptedDataKeys must be an integer from 1 to 255; got 256.',
    ],
    [
      'a fractional maxEncryptedDataKeys',
      { maxEncryptedDataKeys: 1.5 },
      'DynamoDbItemEncryptor maxEncryptedDataKeys must be an integer from 1 to 255; got 1.5.',
    ],
    [
      'maxEncryptedDataKeys as a string',
      { maxEncryptedDataKeys: '3' as never },
      'DynamoDbItemEncryptor maxEncryptedDataKeys must be an integer from 1 to 255; got "3".',
    ],
  ]
  for (const [what, config, message] of refused) {
    it(`refuses ${what}, saying so`, () => {
      expect(() => new DynamoDbItemEncryptor({ ...base, ...config } as DynamoDbItemEncryptorConfig)).toThrow(expect.objectContaining({ code: 'INVALID_CONFIGURATION', message }))
    })
  }

  it('a table name it refuses is named in the message', () => {
    expect(() => new DynamoDbItemEncryptor({ ...base, tableName: 'my table' })).toThrow(/tableName must be a DynamoDB table name.*; got "my table"\.$/)
  })

  it('refuses a configuration that is no object', () => {
    for (const config of [null, undefined, 'orders']) {
      expect(() => new DynamoDbItemEncryptor(config as never)).toThrow(
        expect.objectContaining({ code: 'INVALID_CONFIGURATION', message: 'DynamoDbItemEncryptor needs a configuration object.' }),
      )
    }
  })

  it('the length limits count UTF-8 bytes: 255 of them fit a key name', () => {
    const name = 'é'.repeat(127) + 'x' // 255 bytes
    const actions = { [name]: 'SIGN_ONLY', sk: 'SIGN_ONLY', card: 'ENCRYPT_AND_SIGN', note: 'DO_NOTHING' } as const
    expect(configCode({ partitionKeyName: name, attributeActionsOnEncrypt: actions })).toBeUndefined()
  })

  it('accepts SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT keys (configuration version 2)', () => {
    const actions = { pk: 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT', sk: 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT', region: 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT', note: 'DO_NOTHING' } as const
    expect(configCode({ attributeActionsOnEncrypt: actions })).toBeUndefined()
  })
})

describe('DynamoDbItemEncryptor items', () => {
  const encryptor = new DynamoDbItemEncryptor(base)

  it('stores encrypted attributes as binary and binds the table and keys', async () => {
    const { item: stored, parsedHeader } = await encryptor.encryptItemWithHeader(item)
    expect(stored.card).toHaveProperty('B')
    expect(stored.pk).toEqual({ S: 'u1' })
    expect(stored.note).toEqual({ S: 'hi' })
    expect(parsedHeader?.algorithmSuiteId).toBe(0x6701)
    expect(parsedHeader?.encryptionContext).toMatchObject({ 'aws-crypto-table-name': 'orders', 'aws-crypto-partition-name': 'pk', 'aws-crypto-sort-name': 'sk' })
    // Version 1 binds the key values too (base64 of type ID and value); the header does not store them.
    expect(parsedHeader?.encryptionContext['aws-crypto-attr.pk']).toBe(Buffer.from([0, 1, ...Buffer.from('u1')]).toString('base64'))
    expect(parsedHeader?.encryptionContext['aws-crypto-attr.sk']).toBe(Buffer.from([0, 2, ...Buffer.from('7')]).toString('base64'))
    expect(Object.keys(parsedHeader?.storedEncryptionContext ?? {})).toEqual(['aws-crypto-public-key'])
    expect(await encryptor.decryptItem(stored)).toEqual(item)
  })

  it('binds a binary key value with its type ID 0xFFFF, both bytes of it', async () => {
    const binaryKeys = { ...item, pk: { B: Uint8Array.of(0, 0xfe, 0xff) }, sk: { B: Uint8Array.of(7) } }
    const { item: stored, parsedHeader } = await encryptor.encryptItemWithHeader(binaryKeys)
    expect(parsedHeader?.encryptionContext['aws-crypto-attr.pk']).toBe(Buffer.from([0xff, 0xff, 0, 0xfe, 0xff]).toString('base64'))
    expect(parsedHeader?.encryptionContext['aws-crypto-attr.sk']).toBe(Buffer.from([0xff, 0xff, 7]).toString('base64'))
    expect(await encryptor.decryptItem(stored)).toEqual(binaryKeys)
  })

  it('leaves alone an attribute the actions do not name when it is allowed unsigned', async () => {
    const prefixed = new DynamoDbItemEncryptor({ ...base, allowedUnsignedAttributePrefix: 'tmp_' })
    const stored = await prefixed.encryptItem({ ...item, tmp_cursor: { S: 'abc' } })
    expect(stored.tmp_cursor).toEqual({ S: 'abc' })
    expect(await prefixed.decryptItem({ ...stored, tmp_cursor: { S: 'changed freely' } })).toMatchObject({ tmp_cursor: { S: 'changed freely' } })
  })

  it('refuses an item without an attribute that is SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT', async () => {
    const actions = { pk: 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT', sk: 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT', region: 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT', card: 'ENCRYPT_AND_SIGN' } as const
    const versionTwo = new DynamoDbItemEncryptor({ ...base, attributeActionsOnEncrypt: actions, allowedUnsignedAttributes: [] })
    const { note: _unsigned, ...signedOnly } = item
    expect(await versionTwo.decryptItem(await versionTwo.encryptItem({ ...signedOnly, region: { S: 'eu' } }))).toEqual({ ...signedOnly, region: { S: 'eu' } })
    expect(await refusalOf(versionTwo.encryptItem(signedOnly))).toBe(
      'INVALID_ITEM: The item has no attribute "region", which is SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT and so required.',
    )
  })

  it('refuses an unconfigured attribute, missing keys and reserved names on encrypt', async () => {
    expect(await refusalOf(encryptor.encryptItem({ ...item, extra: { S: 'x' } }))).toBe(
      'INVALID_ITEM: The item has attribute "extra", which attributeActionsOnEncrypt does not name and which is not allowed unsigned: give it an action, or list it in allowedUnsignedAttributes.',
    )
    expect(await refusalOf(encryptor.encryptItem({ sk: item.sk as never, card: item.card as never }))).toBe('INVALID_ITEM: The item has no partition key attribute "pk".')
    expect(await refusalOf(encryptor.encryptItem({ pk: item.pk as never, card: item.card as never }))).toBe('INVALID_ITEM: The item has no sort key attribute "sk".')
    expect(await refusalOf(encryptor.encryptItem({ ...item, aws_dbe_head: { B: new Uint8Array(1) } }))).toBe(
      'INVALID_ITEM: The item has attribute "aws_dbe_head": names starting with "aws_dbe_" are reserved for the encryptor.',
    )
    expect(await refusalOf(encryptor.encryptItem(null as never))).toBe(
      'INVALID_ITEM: An item must be an object of attribute name to DynamoDB attribute value ({ S: ... }, { N: ... }, ...).',
    )
  })

  it('refuses on decrypt, as a malformed item, one that is no object', async () => {
    for (const stored of [null, undefined, 'item', 5, [{ S: 'x' }]]) {
      expect(await refusalOf(encryptor.decryptItem(stored as never)), String(stored)).toBe(
        'MALFORMED_ITEM: An item must be an object of attribute name to DynamoDB attribute value ({ S: ... }, { N: ... }, ...).',
      )
    }
  })

  it('refuses on encrypt, before any keyring runs, a key value DynamoDB would refuse; the largest it takes pass', async () => {
    const { keyring, calls } = spyKeyring(aesKeyring())
    const spied = new DynamoDbItemEncryptor({ ...base, keyring })
    const refused: Array<[Partial<Item>, RegExp]> = [
      [{ pk: { BOOL: true } }, /partition key "pk" is of type BOOL/],
      [{ sk: { M: {} } }, /sort key "sk" is of type M/],
      [{ pk: { SS: ['a'] } }, /of type SS/],
      [{ pk: { NULL: true } }, /of type NULL/],
      [{ pk: { S: '' } }, /partition key "pk" is empty/],
      [{ sk: { B: new Uint8Array(0) } }, /sort key "sk" is empty/],
      [{ pk: { S: 'é'.repeat(1025) } }, /partition key "pk" is 2050 bytes; DynamoDB allows at most 2048/],
      [{ sk: { B: new Uint8Array(1025) } }, /sort key "sk" is 1025 bytes; DynamoDB allows at most 1024/],
    ]
    for (const [keys, message] of refused) {
      const error = await rejectionOf(spied.encryptItem({ ...item, ...keys } as Item))
      expect(error).toMatchObject({ code: 'INVALID_ITEM' })
      expect((error as Error).message).toMatch(message)
    }
    expect(calls).toEqual({ encrypt: 0, decrypt: 0 })
    const largest = { ...item, pk: { S: 'x'.repeat(2048) }, sk: { B: new Uint8Array(1024).fill(1) } }
    expect(await spied.decryptItem(await spied.encryptItem(largest))).toEqual(largest)
  })

  it('refuses a plaintext item, a non-binary header, an unknown header version and a header cut short on decrypt', async () => {
    const notEncrypted =
      'MALFORMED_ITEM: The item has neither aws_dbe_head nor aws_dbe_foot: it was not encrypted (set a plaintextPolicy that allows plaintext reads while migrating a table).'
    expect(await refusalOf(encryptor.decryptItem(item))).toBe(notEncrypted)
    const stored = await encryptor.encryptItem(item)
    expect(await refusalOf(encryptor.decryptItem({ ...stored, aws_dbe_head: { S: 'x' } }))).toBe("MALFORMED_ITEM: The item's aws_dbe_head attribute must be a non-empty binary value.")
    expect(await refusalOf(encryptor.decryptItem({ ...stored, aws_dbe_head: { B: new Uint8Array(0) } }))).toBe("MALFORMED_ITEM: The item's aws_dbe_head attribute must be a non-empty binary value.")
    const header = (stored.aws_dbe_head as { B: Uint8Array }).B
    const versioned = header.slice()
    versioned[0] = 3
    expect(await refusalOf(encryptor.decryptItem({ ...stored, aws_dbe_head: { B: versioned } }))).toBe("MALFORMED_ITEM: The item's header has version 3; versions 1 and 2 exist.")
    expect(await refusalOf(encryptor.decryptItem({ ...stored, aws_dbe_head: { B: header.subarray(0, 10) } }))).toBe('MALFORMED_ITEM: The item header ends inside the message ID.')
  })

  it('a stored key value DynamoDB would not hold is a malformed item, as any other stored value is (not INVALID_ITEM, the caller\'s error on encrypt)', async () => {
    const stored = await encryptor.encryptItem(item)
    for (const sk of [{ N: '1'.repeat(39) }, { N: '12abc' }, { NS: [] }]) {
      expect(await rejectionOf(encryptor.decryptItem({ ...stored, sk: sk as AttributeValue }))).toMatchObject({ code: 'MALFORMED_ITEM', message: expect.stringMatching(/^The stored item's sk\.N/) })
    }
    expect(await codeOf(encryptor.encryptItem({ ...item, sk: { N: '1'.repeat(39) } }))).toBe('INVALID_ITEM')
  })

  it('an item in DynamoDB JSON (a stream record, the AWS CLI\'s output), its binaries base64 text, is refused saying to convert it with itemFromDynamoDbJson', async () => {
    const stored = await encryptor.encryptItem(item)
    const json = JSON.parse(JSON.stringify(stored, (_key, value: unknown) => (value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value))) as Item
    const error = await rejectionOf(encryptor.decryptItem(json))
    expect(error).toMatchObject({
      code: 'MALFORMED_ITEM',
      message: expect.stringMatching(/aws_dbe_head attribute must be a non-empty binary value; it holds a string: DynamoDB JSON .*\. Convert the item with itemFromDynamoDbJson first/),
    })
    // Converted, it decrypts.
    expect(await encryptor.decryptItem(itemFromDynamoDbJson(json))).toEqual(item)
  })

  it('another table (logical name) or another key cannot decrypt the item', async () => {
    const stored = await encryptor.encryptItem(item)
    const other = new DynamoDbItemEncryptor({ ...base, tableName: 'orders-restored' })
    expect(await codeOf(other.decryptItem(stored))).toBe('NO_DECRYPTABLE_KEY')
    const restored = new DynamoDbItemEncryptor({ ...base, tableName: 'orders-restored', logicalTableName: 'orders' })
    expect(await restored.decryptItem(stored)).toEqual(item)
    expect(await codeOf(encryptor.decryptItem({ ...stored, sk: { N: '8' } }))).toBe('NO_DECRYPTABLE_KEY')
  })

  it('plaintext policies pass plaintext items through while a table migrates', async () => {
    const writer = new DynamoDbItemEncryptor({ ...base, plaintextPolicy: 'FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ' })
    expect(await writer.encryptItem(item)).toEqual(item)
    const reader = new DynamoDbItemEncryptor({ ...base, plaintextPolicy: 'FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ' })
    expect(await reader.decryptItem(item)).toEqual(item)
    expect(await reader.decryptItem(await reader.encryptItem(item))).toEqual(item)
  })

  it('an item with only one of aws_dbe_head and aws_dbe_foot is refused under every plaintext policy', async () => {
    const { aws_dbe_head, aws_dbe_foot, ...bare } = await encryptor.encryptItem(item)
    for (const plaintextPolicy of ['FORBID_PLAINTEXT_WRITE_FORBID_PLAINTEXT_READ', 'FORBID_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ', 'FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ'] as const) {
      const reader = new DynamoDbItemEncryptor({ ...base, plaintextPolicy })
      expect(await refusalOf(reader.decryptItem({ ...bare, aws_dbe_head: aws_dbe_head as AttributeValue }))).toBe(
        'MALFORMED_ITEM: The item has no aws_dbe_foot attribute: it is not an encrypted item, or it was stripped.',
      )
      expect(await refusalOf(reader.decryptItem({ ...bare, aws_dbe_foot: aws_dbe_foot as AttributeValue }))).toMatch(
        /^MALFORMED_ITEM: The item's aws_dbe_head attribute must be a non-empty binary value/,
      )
    }
    expect(await codeOf(encryptor.decryptItem(item))).toBe('MALFORMED_ITEM')
  })

  it('0x6700 items carry no signature and decrypt with the same configuration', async () => {
    const fast = new DynamoDbItemEncryptor({ ...base, algorithmSuite: 0x6700 })
    const stored = await fast.encryptItem(item)
    expect((stored.aws_dbe_foot as { B: Uint8Array }).B.length).toBe(48)
    expect(await encryptor.decryptItem(stored)).toEqual(item)
  })

  it('encrypted and signed strings keep a leading U+FEFF (byte order mark)', async () => {
    const bom: Item = { pk: { S: '\uFEFFu1' }, sk: { N: '7' }, card: { S: '\uFEFF4111' }, note: { S: 'hi' } }
    expect(await encryptor.decryptItem(await encryptor.encryptItem(bom))).toEqual(bom)
  })

  it('plain JavaScript objects round-trip through encryptObject/decryptObject', async () => {
    const plain = { pk: 'u9', sk: 12, card: { number: '4111', expires: [12, 2030] }, note: 'n' }
    const stored = await encryptor.encryptObject(plain)
    expect(stored.card).toBeInstanceOf(Uint8Array)
    expect(stored.aws_dbe_head).toBeInstanceOf(Uint8Array)
    expect(stored.pk).toBe('u9')
    expect(await encryptor.decryptObject(stored)).toEqual(plain)
  })

  it('encryptObject/decryptObject: objects @aws-sdk/util-dynamodb cannot convert are typed errors that do not quote the value', async () => {
    const born = new Date('1990-05-17T00:00:00Z')
    const reasons: [unknown, string][] = [
      [Symbol('card'), 'a value of a type it does not take'],
      [born, 'a value of a type it does not take'],
      [Number.NaN, 'NaN or an infinite number'],
      [new Set(), 'an empty Set'],
      [new (class Card { number = '4111' })(), 'a value of a type it does not take'],
      [4111_1111_1111_1111_1111, 'a number JavaScript cannot hold exactly'],
    ]
    for (const [card, reason] of reasons) {
      const error = await rejectionOf(encryptor.encryptObject({ pk: 'u9', sk: 12, card }))
      expect(error).toBeInstanceOf(EnvelopeError)
      expect((error as EnvelopeError).code).toBe('INVALID_ITEM')
      expect((error as Error).message).toContain(`encryptObject: @aws-sdk/util-dynamodb cannot convert the object to a DynamoDB item: ${reason}`)
      // Nor in its cause: @aws-sdk/util-dynamodb's own message quotes the value, and logs print causes too.
      expect(inspect(error, { depth: 5 })).not.toMatch(/1990|4111|May 17/)
    }
    // A decrypted number JavaScript cannot hold exactly: the error does not quote the plaintext it just decrypted.
    const storedNumber = await encryptor.encryptItem({ pk: { S: 'u9' }, sk: { N: '12' }, card: { N: '4111111111111111111.5' } })
    const failure = await rejectionOf(encryptor.decryptObject(unmarshall(storedNumber)))
    expect(failure).toMatchObject({ code: 'INVALID_ITEM', message: expect.stringContaining('decryptObject: @aws-sdk/util-dynamodb cannot convert the decrypted item to an object: a number') })
    expect(inspect(failure, { depth: 5 })).not.toContain('4111111111111111111')
    expect(String((await encryptor.decryptObject(unmarshall(storedNumber), { wrapNumbers: true })).card)).toBe('4111111111111111111.5')
    // A function would be left out of the item silently, wherever it sits.
    for (const [card, path] of [
      [() => '4111', 'object.card'],
      [{ number: '4111', format: () => 'x' }, 'object.card.format'],
      [['4111', () => 'x'], 'object.card.1'],
      [new Map([['number', () => 'x']]), 'object.card.number'],
    ] as const) {
      const error = await rejectionOf(encryptor.encryptObject({ pk: 'u9', sk: 12, card }))
      expect((error as EnvelopeError).code).toBe('INVALID_ITEM')
      expect((error as Error).message).toContain(`${path} is a function`)
    }
    // In a Set too, where the path names the Set.
    expect(await rejectionOf(encryptor.encryptObject({ pk: 'u9', sk: 12, card: new Set([() => 'x']) }))).toMatchObject({
      code: 'INVALID_ITEM',
      message: 'encryptObject: object.card (a Set member) is a function, which @aws-sdk/util-dynamodb would leave out of the item without a word.',
    })
    // undefined is dropped, unless the caller asks otherwise; a stored object never holds it.
    expect(await encryptor.decryptObject(await encryptor.encryptObject({ pk: 'u9', sk: 12, card: ['4111', undefined], note: undefined }))).toEqual({ pk: 'u9', sk: 12, card: ['4111'] })
    const undefinedValue = 'undefined in an object, array or Set (encryptObject drops such values unless its option removeUndefinedValues is false)'
    expect(await rejectionOf(encryptor.encryptObject({ pk: 'u9', sk: 12, card: ['4111', undefined] }, { removeUndefinedValues: false }))).toMatchObject({
      code: 'INVALID_ITEM',
      message: `encryptObject: @aws-sdk/util-dynamodb cannot convert the object to a DynamoDB item: ${undefinedValue}. (Its own message is left out: it quotes the value.)`,
    })
    const storedObject = await encryptor.encryptObject({ pk: 'u9', sk: 12, card: '4111' })
    expect(await rejectionOf(encryptor.decryptObject({ ...storedObject, note: undefined }))).toMatchObject({
      code: 'MALFORMED_ITEM',
      message: `decryptObject: @aws-sdk/util-dynamodb cannot convert the object to a DynamoDB item: ${undefinedValue}. (Its own message is left out: it quotes the value.)`,
    })
    const cyclic: Record<string, unknown> = { number: '4111' }
    cyclic.self = cyclic
    expect(await codeOf(encryptor.encryptObject({ pk: 'u9', sk: 12, card: cyclic }))).toBe('INVALID_ITEM')
    const stored = await encryptor.encryptObject({ pk: 'u9', sk: 12, card: 'c' })
    expect(await codeOf(encryptor.decryptObject({ ...stored, note: Number.NaN }))).toBe('MALFORMED_ITEM')
    expect(await codeOf(encryptor.decryptObject({ ...stored, note: born }))).toBe('MALFORMED_ITEM')
    expect(await encryptor.decryptObject(stored)).toEqual({ pk: 'u9', sk: 12, card: 'c' })
  })

  it('encryptObject/decryptObject: nesting deeper than DynamoDB takes, or an object holding itself, is refused, not a stack overflow', async () => {
    /** `levels` arrays or objects, one inside the other. */
    const nested = (levels: number, kind: 'array' | 'object' | 'Map'): unknown => {
      let value: unknown = 'x'
      for (let level = 0; level < levels; level++) value = kind === 'array' ? [value] : kind === 'object' ? { k: value } : new Map([['k', value]])
      return value
    }
    for (const kind of ['array', 'object', 'Map'] as const) {
      // DynamoDB's limit: 32 levels round trip, one more is refused (by the item serializer), and far more too.
      const deepest = { pk: 'u9', sk: 12, card: nested(32, kind) }
      const stored = await encryptor.encryptObject(deepest)
      expect(await encryptor.decryptObject(stored)).toEqual(kind === 'Map' ? { pk: 'u9', sk: 12, card: nested(32, 'object') } : deepest)
      for (const levels of [33, 5_000, 100_000]) {
        const error = await rejectionOf(encryptor.encryptObject({ pk: 'u9', sk: 12, card: nested(levels, kind) }))
        expect(error).toBeInstanceOf(InvalidItemError)
        expect((error as Error).message).toMatch(/^encryptObject: object\.card\.(k|0)\.\S* nests lists and maps more than 32 levels deep/)
        const stored = { ...(await encryptor.encryptObject({ pk: 'u9', sk: 12, card: 'c' })), note: nested(levels, kind) }
        const read = await rejectionOf(encryptor.decryptObject(stored))
        expect(read).toBeInstanceOf(MalformedItemError)
        expect((read as Error).message).toMatch(/^decryptObject: object\.note\.\S* nests lists and maps more than 32 levels deep/)
      }
    }
    const cyclic: Record<string, unknown> = { number: '4111', inner: [1] }
    ;(cyclic.inner as unknown[]).push(cyclic)
    const error = await rejectionOf(encryptor.encryptObject({ pk: 'u9', sk: 12, card: cyclic }))
    expect(error).toBeInstanceOf(InvalidItemError)
    expect((error as Error).message).toBe('encryptObject: object.card.inner.1 is object.card, which holds it: an item cannot contain itself.')
    expect((error as Error).message).not.toMatch(/4111/)
    // The same object twice, side by side, is no cycle.
    const shared = { number: '4111' }
    expect(await encryptor.decryptObject(await encryptor.encryptObject({ pk: 'u9', sk: 12, card: [shared, shared] }))).toEqual({ pk: 'u9', sk: 12, card: [shared, shared] })
  })

  it('an attribute or map key named "__proto__" survives encryptItem and decryptItem; the object conversions, which would drop it, refuse it', async () => {
    // JSON.parse makes "__proto__" an own key, as DynamoDB's wire format does.
    const actions = JSON.parse('{"pk":"SIGN_ONLY","__proto__":"ENCRYPT_AND_SIGN","m":"ENCRYPT_AND_SIGN"}') as DynamoDbItemEncryptorConfig['attributeActionsOnEncrypt']
    const items = new DynamoDbItemEncryptor({ tableName: 'orders', partitionKeyName: 'pk', attributeActionsOnEncrypt: actions, keyring: aesKeyring() })
    const given = JSON.parse('{"pk":{"S":"u"},"__proto__":{"S":"secret"},"m":{"M":{"__proto__":{"S":"inner"}}}}') as Item
    const stored = await items.encryptItem(given)
    expect(Object.getPrototypeOf(stored)).toBe(Object.prototype)
    expect(Object.keys(stored).sort()).toEqual(['__proto__', 'aws_dbe_foot', 'aws_dbe_head', 'm', 'pk'])
    const back = await items.decryptItem(stored)
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype)
    expect(Object.keys(back).sort()).toEqual(['__proto__', 'm', 'pk'])
    expect(back['__proto__']).toEqual({ S: 'secret' })
    expect(Object.keys((back.m as { M: object }).M)).toEqual(['__proto__'])
    // @aws-sdk/util-dynamodb leaves such keys out of what it converts, so the conversions refuse them.
    for (const [object, path] of [
      [JSON.parse('{"pk":"u","__proto__":"secret"}'), 'object'],
      [{ pk: 'u', m: JSON.parse('{"__proto__":"inner"}') }, 'object.m'],
      [{ pk: 'u', m: new Map([['__proto__', 'inner']]) }, 'object.m'],
    ] as const) {
      const error = await rejectionOf(items.encryptObject(object))
      expect((error as EnvelopeError).code).toBe('INVALID_ITEM')
      expect((error as Error).message).toBe(`encryptObject: ${path} has a key "__proto__", which @aws-sdk/util-dynamodb would leave out of the item without a word.`)
    }
    // Stored as an object, the map is ciphertext: the key shows only once decrypted.
    const asObject = { pk: 'u', m: (stored.m as { B: Uint8Array }).B, aws_dbe_head: (stored.aws_dbe_head as { B: Uint8Array }).B, aws_dbe_foot: (stored.aws_dbe_foot as { B: Uint8Array }).B }
    const withoutTop = new DynamoDbItemEncryptor({ tableName: 'orders', partitionKeyName: 'pk', attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', m: 'ENCRYPT_AND_SIGN' }, keyring: aesKeyring() })
    const nested = await withoutTop.encryptItem({ pk: { S: 'u' }, m: given.m as NonNullable<Item[string]> })
    const nestedObject = { pk: 'u', m: (nested.m as { B: Uint8Array }).B, aws_dbe_head: (nested.aws_dbe_head as { B: Uint8Array }).B, aws_dbe_foot: (nested.aws_dbe_foot as { B: Uint8Array }).B }
    const error = await rejectionOf(withoutTop.decryptObject(nestedObject))
    expect((error as EnvelopeError).code).toBe('INVALID_ITEM')
    expect((error as Error).message).toBe(
      'decryptObject: item.m.M has a key "__proto__", which @aws-sdk/util-dynamodb would leave out of the object without a word: read it with decryptItem.',
    )
    expect(await codeOf(items.decryptObject({ ...asObject, ...JSON.parse('{"__proto__":"x"}') }))).toBe('INVALID_ITEM')
    // Inside a list too.
    const listed = await withoutTop.encryptItem({ pk: { S: 'u' }, m: { L: [{ S: 'x' }, given.m as NonNullable<Item[string]>] } })
    const listedObject = { pk: 'u', m: (listed.m as { B: Uint8Array }).B, aws_dbe_head: (listed.aws_dbe_head as { B: Uint8Array }).B, aws_dbe_foot: (listed.aws_dbe_foot as { B: Uint8Array }).B }
    expect(((await rejectionOf(withoutTop.decryptObject(listedObject))) as Error).message).toMatch(/^decryptObject: item\.m\.L\[1\]\.M has a key "__proto__"/)
    // In an attribute after others.
    const later = new DynamoDbItemEncryptor({ tableName: 'orders', partitionKeyName: 'pk', attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', a: 'ENCRYPT_AND_SIGN', z: 'ENCRYPT_AND_SIGN' }, keyring: aesKeyring() })
    const laterItem = await later.encryptItem({ pk: { S: 'u' }, a: { M: { x: { S: 'y' } } }, z: given.m as NonNullable<Item[string]> })
    const laterObject = Object.fromEntries(Object.entries(laterItem).map(([name, value]) => [name, 'B' in value ? value.B : (value as { S: string }).S]))
    expect(((await rejectionOf(later.decryptObject(laterObject))) as Error).message).toMatch(/^decryptObject: item\.z\.M has a key "__proto__"/)
  })

  it('an @aws-sdk/util-dynamodb that does not load is an INVALID_CONFIGURATION error with the load failure as cause, tried again next time', async () => {
    // Installed but failing to load (as under a bundler that cannot load it), not missing: the message must not
    // claim it is missing, and the cause says what happened.
    const loadFailure = new Error('Dynamic require of "node:https" is not supported')
    await withFailingImport('@aws-sdk/util-dynamodb', loadFailure, async (loadable) => {
      const fresh = await import('../../src/dynamodb/index.js')
      const items = new fresh.DynamoDbItemEncryptor(base)
      const error = (await rejectionOf(items.encryptObject({ pk: 'u9', sk: 12, card: 'c' }))) as EnvelopeError
      expect(error.code).toBe('INVALID_CONFIGURATION')
      expect(error.message).toBe(
        'encryptObject/decryptObject could not load @aws-sdk/util-dynamodb (see cause), an optional peer dependency: `npm install` it if missing.',
      )
      expect((error.cause as Error).cause).toBe(loadFailure)
      loadable()
      expect(await items.decryptObject(await items.encryptObject({ pk: 'u9', sk: 12, card: 'c' }))).toEqual({ pk: 'u9', sk: 12, card: 'c' })
    })
  })

  it("an empty stand-in for @aws-sdk/util-dynamodb (webpack's resolve.fallback false, as the README says) is refused as not loaded, not as an object it cannot convert", async () => {
    await withEmptyStandIn('@aws-sdk/util-dynamodb', ['marshall', 'unmarshall'], async () => {
      const fresh = await import('../../src/dynamodb/index.js')
      const items = new fresh.DynamoDbItemEncryptor(base)
      for (const call of [items.encryptObject({ pk: 'u9', sk: 12, card: 'c' }), items.decryptObject({ pk: 'u9', sk: 12, card: new Uint8Array(4) })]) {
        const error = (await rejectionOf(call)) as EnvelopeError
        expect(error.code).toBe('INVALID_CONFIGURATION')
        expect(error.message).toContain('could not load @aws-sdk/util-dynamodb')
        expect((error.cause as Error).message).toContain('has no marshall and unmarshall: a bundler left it out')
      }
    })
  })

  it('never shows key material when inspected', async () => {
    const { inspect } = await import('node:util')
    const text = `${inspect(encryptor, { depth: 5 })} ${JSON.stringify(encryptor)}`
    // The fixture's wrapping key is 32 bytes of 7.
    expect(text).not.toMatch(/7, 7, 7|07070707|BwcHBwcH/)
    expect(text).toContain('RawAesKeyring')
  })
})

describe('DynamoDbItemEncryptor over a caching materials manager', () => {
  // An item zeroes its materials' data key and signing keys once it is done: the cache must hand out copies of both.
  // The encryption context holds the item's keys, so versions of one item (same keys) share a cache entry.
  it.each([
    ['0x6700', 0x6700],
    ['0x6701', 0x6701],
  ] as const)('suite %s: versions of an item share one cached data key, and each encrypts and decrypts', async (_name, algorithmSuite) => {
    const keyring = spyKeyring(aesKeyring())
    const materialsManager = new CachingMaterialsManager({ keyring: keyring.keyring, maxAge: 60_000 })
    const encryptor = new DynamoDbItemEncryptor({ ...base, keyring: undefined, materialsManager, algorithmSuite })
    const items = [1, 2, 3].map((n) => ({ ...item, card: { S: `4111-${n}` } }))
    const stored = []
    for (const one of items) stored.push(await encryptor.encryptItem(one))
    for (const [index, one] of stored.entries()) expect(await encryptor.decryptItem(one), `item ${index}`).toEqual(items[index])
    for (const [index, one] of stored.entries()) expect(await encryptor.decryptItem(one), `item ${index} again`).toEqual(items[index])
    // Cached on both sides: one data key made, one unwrapped.
    expect([keyring.calls.encrypt, keyring.calls.decrypt]).toEqual([1, 1])
  })
})

describe('DynamoDbItemEncryptor under an abort signal', () => {
  const calls = ['encryptItem', 'encryptItemWithHeader', 'decryptItem', 'decryptItemWithHeader', 'encryptObject', 'decryptObject'] as const
  async function callOf(encryptor: DynamoDbItemEncryptor, call: (typeof calls)[number], options: object) {
    if (call === 'encryptItem' || call === 'encryptItemWithHeader') return encryptor[call](item, options)
    const stored = await new DynamoDbItemEncryptor(base).encryptItem(item)
    if (call === 'encryptObject') return encryptor.encryptObject({ pk: 'u1', sk: 7, card: '4111', note: 'hi' }, options)
    if (call === 'decryptObject') return encryptor.decryptObject(unmarshall(stored as never), options)
    return encryptor[call](stored, options)
  }

  it.each(calls)('%s: an aborted signal rejects with ABORTED before any keyring runs; a live one changes nothing', async (call) => {
    const spy = spyKeyring(aesKeyring())
    const encryptor = new DynamoDbItemEncryptor({ ...base, keyring: spy.keyring })
    const reason = new Error('the request timed out')
    const error = (await rejectionOf(callOf(encryptor, call, { signal: AbortSignal.abort(reason) }))) as EnvelopeError
    expect(error.code).toBe('ABORTED')
    expect(error.message).toBe(`The ${call} call was aborted.`)
    expect(error.cause).toBe(reason)
    expect(spy.calls).toEqual({ encrypt: 0, decrypt: 0 })
    await expect(callOf(encryptor, call, { signal: new AbortController().signal })).resolves.toBeDefined()
  })

  it('an abort while the keyring works rejects at once; the keyring gets the signal', async () => {
    const { keyring: held, release } = heldKeyring(aesKeyring())
    let seen: AbortSignal | undefined
    const encryptor = new DynamoDbItemEncryptor({
      ...base,
      keyring: { ...held, onEncrypt: (materials, backend, signal) => ((seen = signal), held.onEncrypt(materials, backend)) },
    })
    const controller = new AbortController()
    const outcome = rejectionOf(encryptor.encryptItem(item, { signal: controller.signal }))
    await new Promise((resolve) => setTimeout(resolve, 20))
    controller.abort()
    expect(((await outcome) as EnvelopeError).code).toBe('ABORTED')
    expect(seen).toBe(controller.signal)
    release()
  })

  it('refuses a signal that is not an AbortSignal, and other option names', async () => {
    const encryptor = new DynamoDbItemEncryptor(base)
    expect(((await rejectionOf(encryptor.encryptItem(item, { signal: 'soon' } as never))) as EnvelopeError).code).toBe('INVALID_CONFIGURATION')
    const misspelt = (await rejectionOf(encryptor.decryptItem(item, { signl: undefined } as never))) as EnvelopeError
    expect(misspelt.message).toBe('decryptItem has no option "signl"; it takes signal.')
  })
})

describe('DynamoDbItemEncryptor with keyrings and managers that do not support the item suites', () => {
  const inner = aesKeyring()
  const { note: _unsigned, ...signedItem } = item
  const withManager = (materialsManager: MaterialsManager) => new DynamoDbItemEncryptor({ ...base, keyring: undefined, materialsManager })
  const defaultManager = new DefaultMaterialsManager(inner)

  it('a keyring that wraps the data key but makes no symmetric signing key fails on encrypt and on decrypt', async () => {
    // Such a keyring treats the item suites as ordinary ones: no intermediate key, no signing key.
    const returned: Uint8Array[] = []
    const plain: Keyring = {
      onEncrypt: async (materials, backend) => ({
        ...materials,
        plaintextDataKey: backend.randomBytes(32),
        encryptedDataKeys: [...materials.encryptedDataKeys, { providerId: 'plain', providerInfo: new Uint8Array(1), ciphertext: new Uint8Array(1) }],
      }),
      onDecrypt: async (materials, _keys, backend) => {
        const plaintextDataKey = backend.randomBytes(32)
        returned.push(plaintextDataKey)
        return { ...materials, plaintextDataKey }
      },
    }
    expect(await codeOf(new DynamoDbItemEncryptor({ ...base, keyring: plain }).encryptItem(item))).toBe('KEYRING_FAILURE')
    const stored = await new DynamoDbItemEncryptor(base).encryptItem(item)
    const noSigningKey = 'KEYRING_FAILURE: The keyring returned no symmetric signing key, which this suite needs: it must support intermediate key wrapping.'
    expect(await refusalOf(new DynamoDbItemEncryptor({ ...base, keyring: plain }).decryptItem(stored))).toBe(noSigningKey)
    // The data key it returned is zeroed with the refusal.
    expect(returned.map((key) => isAllZero(key))).toEqual([true])
    // A signing key of another length is the keyring's fault too, not a changed item.
    const shortKey: Keyring = {
      onEncrypt: (materials, backend) => inner.onEncrypt(materials, backend),
      onDecrypt: async (materials, keys, backend) => ({ ...(await inner.onDecrypt(materials, keys, backend)), symmetricSigningKey: new Uint8Array(16) }),
    }
    expect(await refusalOf(new DynamoDbItemEncryptor({ ...base, keyring: shortKey }).decryptItem(stored))).toBe(noSigningKey)
  })

  it('a manager whose decryption materials have no symmetric signing key, or whose encryption materials are of another suite', async () => {
    const stored = await new DynamoDbItemEncryptor(base).encryptItem(signedItem)
    const noSigningKey: MaterialsManager = {
      getEncryptionMaterials: (request, backend) => defaultManager.getEncryptionMaterials(request, backend),
      getDecryptionMaterials: async (request, backend) => {
        const { symmetricSigningKey: _dropped, ...rest } = await defaultManager.getDecryptionMaterials(request, backend)
        return rest
      },
    }
    expect(await codeOf(withManager(noSigningKey).decryptItem(stored))).toBe('KEYRING_FAILURE')
    const handedOut: Uint8Array[] = []
    const otherSuite: MaterialsManager = {
      getEncryptionMaterials: async (request, backend) => {
        const materials = await defaultManager.getEncryptionMaterials(request, backend)
        handedOut.push(materials.plaintextDataKey as Uint8Array)
        return { ...materials, suite: suiteFromOption(0x0478) }
      },
      getDecryptionMaterials: (request, backend) => defaultManager.getDecryptionMaterials(request, backend),
    }
    expect(await codeOf(withManager(otherSuite).encryptItem(signedItem))).toBe('UNSUPPORTED_ALGORITHM_SUITE')
    // Refused materials have their data key zeroed, as elsewhere.
    expect(handedOut.map((key) => [key.length, isAllZero(key)])).toEqual([[32, true]])
  })
})

describe.each([
  ['Node build', DynamoDbItemEncryptor],
  ['browser build', BrowserItemEncryptor],
] as const)('DynamoDbItemEncryptor (%s) with a manager whose symmetric signing keys are unusable', (_build, Encryptor) => {
  // An HMAC key that is empty, all zeros or anyone's to guess would let anyone write recipient tags: a 0x6700 item
  // would then be forged at will. node:crypto takes such keys (and strings) without a word; WebCrypto throws its own errors.
  const defaultManager = new DefaultMaterialsManager(aesKeyring())
  const withManager = (materialsManager: MaterialsManager) => new Encryptor({ ...base, keyring: undefined, materialsManager, algorithmSuite: 0x6700 })
  const notItsLength = 'have a symmetric signing key that is not 32 bytes (a Uint8Array)'
  const bad: [string, unknown, string][] = [
    ['empty', new Uint8Array(0), notItsLength],
    ['16 bytes', new Uint8Array(16).fill(1), notItsLength],
    ['all zeros', new Uint8Array(32), 'have a symmetric signing key of zeros'],
    ['a string', 'k'.repeat(32), notItsLength],
    ['missing', undefined, 'have no symmetric signing key (the keyrings must support the DynamoDB item suites)'],
  ]

  it.each(bad)('on encrypt: %s is KEYRING_FAILURE, and nothing is written', async (_name, key, problem) => {
    const manager: MaterialsManager = {
      getEncryptionMaterials: async (request, backend) => {
        const materials = await defaultManager.getEncryptionMaterials(request, backend)
        return { ...materials, symmetricSigningKeys: [key as Uint8Array] }
      },
      getDecryptionMaterials: (request, backend) => defaultManager.getDecryptionMaterials(request, backend),
    }
    expect(await rejectionOf(withManager(manager).encryptItem(item))).toMatchObject({ code: 'KEYRING_FAILURE', message: expect.stringContaining(problem) })
    // The second recipient's key is checked as the first's.
    const second: MaterialsManager = {
      getEncryptionMaterials: async (request, backend) => {
        const materials = await new DefaultMaterialsManager(new MultiKeyring({ generator: aesKeyring(), children: [aesKeyring(32, 'b')] })).getEncryptionMaterials(request, backend)
        return { ...materials, symmetricSigningKeys: [materials.symmetricSigningKeys![0]!, key as Uint8Array] }
      },
      getDecryptionMaterials: (request, backend) => defaultManager.getDecryptionMaterials(request, backend),
    }
    expect(await rejectionOf(withManager(second).encryptItem(item))).toMatchObject({ code: 'KEYRING_FAILURE', message: expect.stringContaining(problem) })
  })

  it('on encrypt: fewer signing keys than encrypted data keys is KEYRING_FAILURE', async () => {
    const manager: MaterialsManager = {
      getEncryptionMaterials: async (request, backend) => ({ ...(await defaultManager.getEncryptionMaterials(request, backend)), symmetricSigningKeys: [] }),
      getDecryptionMaterials: (request, backend) => defaultManager.getDecryptionMaterials(request, backend),
    }
    expect(await codeOf(withManager(manager).encryptItem(item))).toBe('KEYRING_FAILURE')
  })

  it.each(bad)('on decrypt: %s is KEYRING_FAILURE, not a changed item', async (_name, key, problem) => {
    const stored = await withManager(defaultManager).encryptItem(item)
    const manager: MaterialsManager = {
      getEncryptionMaterials: (request, backend) => defaultManager.getEncryptionMaterials(request, backend),
      getDecryptionMaterials: async (request, backend) => ({ ...(await defaultManager.getDecryptionMaterials(request, backend)), symmetricSigningKey: key as Uint8Array }),
    }
    expect(await rejectionOf(withManager(manager).decryptItem(stored))).toMatchObject({ code: 'KEYRING_FAILURE', message: expect.stringContaining(problem) })
  })
})

describe('DynamoDbItemEncryptor maxEncryptedDataKeys', () => {
  const three = () => new MultiKeyring({ generator: aesKeyring(32, 'a'), children: [aesKeyring(32, 'b'), aesKeyring(32, 'c')] })

  it('refuses an item with more wrapped data keys on decrypt, before any keyring runs; one within the limit decrypts', async () => {
    const stored = await new DynamoDbItemEncryptor({ ...base, keyring: three() }).encryptItem(item)
    const reader = spyKeyring(aesKeyring(32, 'c'))
    const limited = new DynamoDbItemEncryptor({ ...base, keyring: reader.keyring, maxEncryptedDataKeys: 2 })
    expect(await codeOf(limited.decryptItem(stored))).toBe('TOO_MANY_ENCRYPTED_DATA_KEYS')
    expect(reader.calls.decrypt).toBe(0)
    const enough = new DynamoDbItemEncryptor({ ...base, keyring: reader.keyring, maxEncryptedDataKeys: 3 })
    expect(await enough.decryptItem(stored)).toEqual(item)
  })

  it('refuses to write an item with more wrapped data keys than it may read back', async () => {
    expect(await codeOf(new DynamoDbItemEncryptor({ ...base, keyring: three(), maxEncryptedDataKeys: 2 }).encryptItem(item))).toBe('TOO_MANY_ENCRYPTED_DATA_KEYS')
    expect(await new DynamoDbItemEncryptor({ ...base, keyring: three(), maxEncryptedDataKeys: 255 }).encryptItem(item)).toHaveProperty('aws_dbe_head')
  })
})

describe('DynamoDbItemEncryptor on hostile stored items', () => {
  const encryptor = new DynamoDbItemEncryptor(base)

  it('fast-check: random headers, footers and attribute bytes fail with typed errors, never a crash', async () => {
    const stored = await encryptor.encryptItem(item)
    const header = (stored.aws_dbe_head as { B: Uint8Array }).B
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ maxLength: 400 }), fc.tuple(fc.nat(header.length), fc.uint8Array({ maxLength: 40 })).map(([cut, tail]) => Uint8Array.from([...header.subarray(0, cut), ...tail]))),
        fc.uint8Array({ maxLength: 200 }),
        fc.uint8Array({ maxLength: 60 }),
        async (head, foot, card) => {
          const failure = await rejectionOf(encryptor.decryptItem({ ...stored, aws_dbe_head: { B: head }, aws_dbe_foot: { B: foot }, card: { B: card } }))
          expect(failure).toBeInstanceOf(EnvelopeError)
        },
      ),
      { numRuns: 300 },
    )
  })

  describe('fast-check: one change to a stored item is refused with a typed error, whatever the suite and actions', () => {
    const signedActions = {
      pk: 'SIGN_ONLY',
      sk: 'SIGN_ONLY',
      card: 'ENCRYPT_AND_SIGN',
      tags: 'ENCRYPT_AND_SIGN',
      blob: 'ENCRYPT_AND_SIGN',
      region: 'SIGN_ONLY',
      note: 'DO_NOTHING',
    } as const
    const contextActions = { ...signedActions, pk: 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT', sk: 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT', region: 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT' } as const
    const rich = (n: number): Item => ({
      pk: { S: `u${n}` },
      sk: { N: String(n) },
      card: { S: `4111-${n}` },
      tags: { M: { list: { L: [{ N: '1' }, { BOOL: true }, { NULL: true }] }, set: { SS: ['a', 'b'] } } },
      blob: { B: new Uint8Array(20).fill(n) },
      region: { S: 'eu' },
      note: { S: 'free' },
    })
    type Mutation = { kind: string; apply: (stored: Record<string, AttributeValue>, other: Item) => void }
    const bytesOf = (value: AttributeValue | undefined): Uint8Array => (value !== undefined && 'B' in value ? value.B : new Uint8Array(0))
    // The binary attributes: the header, the footer and every encrypted attribute.
    const binaryNames = (stored: Item) => Object.keys(stored).filter((name) => 'B' in stored[name]!)
    const pickBinary = (stored: Item, which: number) => {
      const names = binaryNames(stored)
      return names[which % names.length]!
    }
    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      fc.tuple(fc.nat(), fc.nat(), fc.nat(7)).map(([which, at, bit]): Mutation => ({
        kind: 'bit flip',
        apply: (stored) => {
          const name = pickBinary(stored, which)
          const bytes = bytesOf(stored[name]).slice()
          bytes[at % bytes.length]! ^= 1 << bit
          stored[name] = { B: bytes }
        },
      })),
      fc.tuple(fc.nat(), fc.nat()).map(([which, cut]): Mutation => ({
        kind: 'truncation',
        apply: (stored) => {
          const name = pickBinary(stored, which)
          const bytes = bytesOf(stored[name])
          stored[name] = { B: bytes.subarray(0, cut % bytes.length) }
        },
      })),
      fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([which, tail]): Mutation => ({
        kind: 'bytes appended',
        apply: (stored) => {
          const name = pickBinary(stored, which)
          stored[name] = { B: Uint8Array.from([...bytesOf(stored[name]), ...tail]) }
        },
      })),
      fc.tuple(fc.nat(), fc.nat()).map(([which, at]): Mutation => ({
        kind: 'length inflated',
        apply: (stored) => {
          const name = pickBinary(stored, which)
          const bytes = bytesOf(stored[name]).slice()
          bytes.fill(0xff, at % (bytes.length - 1), (at % (bytes.length - 1)) + 2)
          stored[name] = { B: bytes }
        },
      })),
      fc.tuple(fc.nat(), fc.nat()).map(([which, from]): Mutation => ({
        kind: 'spliced from another item',
        apply: (stored, other) => {
          const name = pickBinary(stored, which)
          stored[name] = other[pickBinary(other, from)]!
        },
      })),
      fc.constantFrom(...Object.keys(signedActions).filter((name) => name !== 'note'), 'aws_dbe_head', 'aws_dbe_foot').map((name) => ({
        kind: `${name} dropped`,
        apply: (stored: Record<string, AttributeValue>) => void delete stored[name],
      })),
      fc.constantFrom('pk', 'sk', 'region').map((name) => ({
        kind: `${name} changed`,
        apply: (stored: Record<string, AttributeValue>) => {
          const value = stored[name]!
          stored[name] = 'S' in value ? { S: `${value.S}x` } : { N: `${(value as { N: string }).N}1` }
        },
      })),
      fc.nat().map((which): Mutation => ({
        kind: 'binary stored as a string',
        apply: (stored) => {
          const name = pickBinary(stored, which)
          stored[name] = { S: Buffer.from(bytesOf(stored[name])).toString('latin1') }
        },
      })),
    )
    // The browser build (WebCrypto) as well as the Node build.
    const cases = [DynamoDbItemEncryptor, BrowserItemEncryptor].flatMap((Encryptor) =>
      [0x6700, 0x6701].flatMap((algorithmSuite) =>
        [signedActions, contextActions].map((attributeActionsOnEncrypt) => ({
          name: `${Encryptor === DynamoDbItemEncryptor ? 'Node' : 'browser'} build, suite 0x${algorithmSuite.toString(16)}, ${attributeActionsOnEncrypt === signedActions ? 'SIGN_ONLY' : 'context'} keys`,
          itemEncryptor: new Encryptor({ ...base, algorithmSuite: algorithmSuite as 0x6700, attributeActionsOnEncrypt }),
        })),
      ),
    )

    it.each(cases)('$name', async ({ itemEncryptor }) => {
      const [stored, other] = await Promise.all([itemEncryptor.encryptItem(rich(1)), itemEncryptor.encryptItem(rich(2))])
      const { note: _unsigned, ...signed } = rich(1)
      expect(await itemEncryptor.decryptItem({ ...stored, note: { S: 'changed' } })).toEqual({ ...signed, note: { S: 'changed' } })
      await fc.assert(
        fc.asyncProperty(mutation, async ({ apply }) => {
          const mutated = { ...stored }
          apply(mutated, other)
          // Some change nothing: an encrypted binary attribute starts with its plaintext's type ID, FF FF.
          fc.pre(!isDeepStrictEqual(mutated, stored))
          const failure = await rejectionOf(itemEncryptor.decryptItem(mutated))
          expect(failure).toBeInstanceOf(EnvelopeError)
          // The codes the README lists for a stored item that was changed: none of the message format's.
          expect(ITEM_DECRYPT_CODES).toContain((failure as EnvelopeError).code)
        }),
        { numRuns: 250 },
      )
    })
  })

  it("a header whose suite was changed is refused as a malformed item: the signing suite's public key must be in the context, and only its", async () => {
    for (const [from, to] of [[0x6700, 0x6701], [0x6701, 0x6700]] as const) {
      const stored = await new DynamoDbItemEncryptor({ ...base, algorithmSuite: from as 0x6700 }).encryptItem(item)
      const header = (stored.aws_dbe_head as { B: Uint8Array }).B.slice()
      header[1] = to & 0xff // the flavor byte
      const failure = await rejectionOf(encryptor.decryptItem({ ...stored, aws_dbe_head: { B: header } }))
      expect(failure).toMatchObject({ code: 'MALFORMED_ITEM', message: expect.stringContaining(`suite 0x${to.toString(16)}`) })
    }
  })

  it("checks the header bytes it parsed, not the caller's item as it is after the materials manager ran", async () => {
    const aes = aesKeyring()
    const stored = await new DynamoDbItemEncryptor({ ...base, keyring: aes }).encryptItem(item)
    const header = (stored.aws_dbe_head as { B: Uint8Array }).B
    const original = header.slice()
    header.fill(0, header.length - 32) // the commitment, put back while the keyring works
    const restoring: Keyring = {
      onEncrypt: (materials, backend) => aes.onEncrypt(materials, backend),
      onDecrypt: async (materials, keys, backend) => {
        header.set(original)
        return aes.onDecrypt(materials, keys, backend)
      },
    }
    expect(await codeOf(new DynamoDbItemEncryptor({ ...base, keyring: restoring }).decryptItem(stored))).toBe('COMMITMENT_MISMATCH')
  })

  it('a header claiming many data keys or a long legend is refused without large allocations', async () => {
    const stored = await encryptor.encryptItem(item)
    const header = (stored.aws_dbe_head as { B: Uint8Array }).B.slice()
    // Legend length (bytes 34-35) set to 65535 with far fewer bytes behind it.
    header[34] = 0xff
    header[35] = 0xff
    expect(await codeOf(encryptor.decryptItem({ ...stored, aws_dbe_head: { B: header } }))).toBe('MALFORMED_ITEM')
  })
})
