// Text the library stores as UTF-8 must survive the trip unchanged. A JavaScript string can hold a lone UTF-16
// surrogate, which UTF-8 cannot encode: TextEncoder writes U+FFFD in its place. Stored as is, such text made
// messages that decrypt to another context, that their own keyring could not open, or that no one could
// decrypt at all (two keys serialized alike). It is now refused where it enters, with a typed error.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DynamoDbItemEncryptor, type DynamoDbItemEncryptorConfig, type Item } from '../src/dynamodb/index.js'
import {
  CachingMaterialsManager,
  ConfigurationError,
  DefaultMaterialsManager,
  decrypt,
  encrypt,
  encryptStream,
  InvalidEncryptionContextError,
  type Keyring,
  KeyringError,
  LocalMaterialsCache,
  type MaterialsManager,
  RawAesKeyring,
  RawRsaKeyring,
} from '../src/index.js'
import { aesKeyring, rejectionOf, rsaPem, thrownBy } from './helpers/fixtures.js'
import { readAll } from './helpers/web-streams.js'

const keyring = aesKeyring()
const HIGH = '\uD83D' // the first half of 😀 (U+1F600) alone
const LOW = '\uDE00' // its second half alone
const SMILE = HIGH + LOW

/** Whether every surrogate in `text` is half of a high-low pair, checked unit by unit. */
function wellFormed(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index)
    if (unit < 0xd800 || unit > 0xdfff) continue
    const next = text.charCodeAt(index + 1)
    if (unit > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return false
    index++
  }
  return true
}

/** The error, checked to be of `type`, and its message: it names the problem and shows the text escaped. */
function refusal(error: unknown, type: new (...args: never[]) => Error): string {
  expect(error).toBeInstanceOf(type)
  const { message } = error as Error
  expect(message).toContain('lone UTF-16 surrogate')
  expect(message).not.toMatch(/\p{Cs}/u)
  return message
}

describe('encryption context', () => {
  it.each([
    ['a key', { [`a${HIGH}`]: 'x' }, 'key "a\\ud83d"'],
    ['a value', { purpose: `v${LOW}` }, 'value for key "purpose"'],
    ['two keys that would serialize alike', { [HIGH]: '1', [LOW]: '2' }, 'key "\\ud'],
  ])('%s with a lone surrogate is refused before any keyring runs', async (_what, encryptionContext, named) => {
    let keyringCalls = 0
    const counting = { onEncrypt: (...args: Parameters<typeof keyring.onEncrypt>) => (keyringCalls++, keyring.onEncrypt(...args)), onDecrypt: keyring.onDecrypt.bind(keyring) }
    for (const algorithmSuite of [0x0478, 0x0578]) {
      const message = refusal(await rejectionOf(encrypt(counting, 'data', { encryptionContext, algorithmSuite })), InvalidEncryptionContextError)
      expect(message).toContain(named)
      refusal(await rejectionOf(readAll(new Blob(['data']).stream().pipeThrough(encryptStream(counting, { encryptionContext, algorithmSuite })))), InvalidEncryptionContextError)
    }
    expect(keyringCalls).toBe(0)
  })

  it('pairs a materials manager adds are checked too', async () => {
    const inner = new DefaultMaterialsManager(keyring)
    const adding: MaterialsManager = {
      async getEncryptionMaterials(request, backend) {
        const materials = await inner.getEncryptionMaterials(request, backend)
        return { ...materials, encryptionContext: { ...materials.encryptionContext, [`added${LOW}`]: 'x' } }
      },
      getDecryptionMaterials: (request, backend) => inner.getDecryptionMaterials(request, backend),
    }
    expect(refusal(await rejectionOf(encrypt(adding, 'data', { algorithmSuite: 0x0478 })), InvalidEncryptionContextError)).toContain('key "added\\ude00"')
  })

  it('a decrypt expecting such a pair is refused: no message can hold it', async () => {
    const { ciphertext } = await encrypt(keyring, 'data', { encryptionContext: { purpose: 'p' } })
    const cases: [Record<string, string>, string][] = [
      [{ purpose: `p${HIGH}` }, 'value for key "purpose"'],
      [{ purpose: `${LOW}p` }, 'value for key "purpose"'],
      [{ [`p${LOW}`]: 'p' }, 'key "p\\ude00"'],
      [{ [`${HIGH}p`]: `p${HIGH}` }, 'key "\\ud83dp"'],
    ]
    for (const [encryptionContext, named] of cases) {
      const message = refusal(await rejectionOf(decrypt(keyring, ciphertext, { encryptionContext })), InvalidEncryptionContextError)
      expect(message).toBe(`decrypt encryptionContext ${named} has a lone UTF-16 surrogate, which UTF-8 cannot store (it would become U+FFFD): fix or remove that character.`)
    }
  })

  it('well-formed text outside the BMP round-trips exactly', async () => {
    const encryptionContext = { [`key ${SMILE}`]: `value ${SMILE} é`, 'Ω': SMILE }
    const { ciphertext } = await encrypt(keyring, 'data', { encryptionContext })
    const { header } = await decrypt(keyring, ciphertext, { encryptionContext })
    expect({ ...header.encryptionContext }).toMatchObject(encryptionContext)
  })

  it('property: a context encrypts exactly when its text is well-formed, and then comes back unchanged', async () => {
    // Strings of arbitrary UTF-16 code units, surrogates (paired or not) made likely.
    const unit = fc.oneof(fc.integer({ min: 0xd800, max: 0xdfff }), fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0, max: 0xffff })).map((code) => String.fromCharCode(code))
    const text = fc.string({ unit, minLength: 1, maxLength: 6 })
    await fc.assert(
      fc.asyncProperty(fc.dictionary(text, fc.string({ unit, maxLength: 6 }), { minKeys: 1, maxKeys: 4 }), async (raw) => {
        const encryptionContext = Object.fromEntries(Object.entries(raw).filter(([key]) => !key.startsWith('aws-crypto-')))
        const encodable = Object.entries(encryptionContext).every(([key, value]) => wellFormed(key) && wellFormed(value))
        const outcome = await encrypt(keyring, 'data', { encryptionContext, algorithmSuite: 0x0478 }).catch((error: unknown) => error)
        if (!encodable) {
          refusal(outcome, InvalidEncryptionContextError)
          return
        }
        const { ciphertext } = outcome as { ciphertext: Uint8Array }
        const { header } = await decrypt(keyring, ciphertext, { encryptionContext })
        expect({ ...header.encryptionContext }).toEqual(encryptionContext)
      }),
      { numRuns: 200 },
    )
  })
})

describe('plaintext strings', () => {
  it('a lone surrogate is refused, with its index and not the text', async () => {
    const message = refusal(await rejectionOf(encrypt(keyring, `secret ${HIGH}`)), ConfigurationError)
    expect(message).toContain('index 7')
    expect(message).not.toContain('secret')
    // At the first character too, high or low.
    for (const lone of [HIGH, LOW]) expect(refusal(await rejectionOf(encrypt(keyring, `${lone}secret`)), ConfigurationError)).toContain('(at index 0)')
  })

  it('well-formed text round-trips exactly', async () => {
    const text = `emoji ${SMILE}, accents é, CJK 漢字`
    const { ciphertext } = await encrypt(keyring, text)
    expect(new TextDecoder().decode((await decrypt(keyring, ciphertext)).plaintext)).toBe(text)
  })
})

describe('raw keyring names', () => {
  const wrappingKey = new Uint8Array(32).fill(1)
  it.each([
    ['RawAesKeyring keyNamespace', () => new RawAesKeyring({ keyNamespace: `ns${HIGH}`, keyName: 'k', wrappingKey })],
    ['RawAesKeyring keyName', () => new RawAesKeyring({ keyNamespace: 'ns', keyName: `k${LOW}`, wrappingKey })],
    ['RawRsaKeyring keyNamespace', () => new RawRsaKeyring({ keyNamespace: LOW, keyName: 'k', publicKey: rsaPem().publicKey, padding: 'OAEP-SHA256' })],
  ])('%s with a lone surrogate is refused', (option, build) => {
    expect(refusal(thrownBy(build), ConfigurationError)).toContain(option)
  })

  it('names outside the BMP decrypt their own messages', async () => {
    const named = new RawAesKeyring({ keyNamespace: `ns ${SMILE}`, keyName: `key ${SMILE}`, wrappingKey })
    const { ciphertext } = await encrypt(named, 'data')
    expect(new TextDecoder().decode((await decrypt(named, ciphertext)).plaintext)).toBe('data')
  })
})

describe('a custom keyring\'s provider ID', () => {
  /** A keyring wrapping with the raw AES keyring but naming its data keys with another provider ID. */
  const renaming = (providerId: string): Keyring => ({
    async onEncrypt(materials, backend) {
      const wrapped = await keyring.onEncrypt(materials, backend)
      return { ...wrapped, encryptedDataKeys: wrapped.encryptedDataKeys.map((key) => ({ ...key, providerId })) }
    },
    onDecrypt: (materials, keys, backend) => keyring.onDecrypt(materials, keys, backend),
  })

  it('with a lone surrogate is refused: no keyring could match the stored ID again', async () => {
    for (const manager of [renaming(`custom${HIGH}`), new CachingMaterialsManager({ keyring: renaming(`custom${HIGH}`), maxAge: 1000 })]) {
      const error = await rejectionOf(encrypt(manager, 'data', { algorithmSuite: 0x0478 }))
      expect(refusal(error, KeyringError)).toContain('provider ID "custom\\ud83d"')
    }
    const items = new DynamoDbItemEncryptor({ tableName: 'orders', partitionKeyName: 'pk', attributeActionsOnEncrypt: { pk: 'SIGN_ONLY' }, keyring: renaming(`custom${LOW}`) })
    refusal(await rejectionOf(items.encryptItem({ pk: { S: 'u1' } })), KeyringError)
  })

  it('outside the BMP is stored as it is', async () => {
    const { ciphertext, header } = await encrypt(renaming(`custom ${SMILE}`), 'data', { algorithmSuite: 0x0478 })
    expect(header.encryptedDataKeys[0]?.providerId).toBe(`custom ${SMILE}`)
    // Read back from the message: the error names the providers it holds.
    expect(((await rejectionOf(decrypt(keyring, ciphertext))) as Error).message).toContain(`"custom ${SMILE}"`)
  })
})

describe('caching manager partition', () => {
  it('a partition with a lone surrogate is refused: two such names would share cache entries', () => {
    const error = thrownBy(() => new CachingMaterialsManager({ keyring, maxAge: 1000, partition: `tenant-${HIGH}` }))
    expect(refusal(error, ConfigurationError)).toContain('partition "tenant-\\ud83d"')
  })

  it('partitions outside the BMP stay apart', async () => {
    const cache = new LocalMaterialsCache({ capacity: 10 })
    const managers = [SMILE, `${SMILE}!`].map((partition) => new CachingMaterialsManager({ keyring, maxAge: 60_000, cache, partition }))
    for (const manager of managers) await encrypt(manager, 'data', { algorithmSuite: 0x0478 })
    expect(cache.stats()).toMatchObject({ hits: 0, misses: 2 })
  })
})

describe('DynamoDB items', () => {
  const config: DynamoDbItemEncryptorConfig = {
    tableName: 'orders',
    partitionKeyName: 'pk',
    attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', card: 'ENCRYPT_AND_SIGN', tags: 'SIGN_ONLY', doc: 'ENCRYPT_AND_SIGN' },
    keyring,
  }
  const encryptor = new DynamoDbItemEncryptor(config)

  it.each([
    ['an encrypted string', { card: { S: `4111${HIGH}` } }, 'card.S'],
    ['a signed string set member', { tags: { SS: ['a', `b${LOW}`] } }, 'tags.SS[1]'],
    ['a map key', { doc: { M: { [`k${HIGH}`]: { S: 'v' } } } }, 'doc.M key "k\\ud83d"'],
    ['a nested map value', { doc: { M: { k: { L: [{ S: LOW }] } } } }, 'doc.M.k.L[0].S'],
  ])('%s with a lone surrogate is refused', async (_what, attributes, path) => {
    const item: Item = { pk: { S: 'u1' }, ...attributes }
    expect(refusal(await rejectionOf(encryptor.encryptItem(item)), Error)).toContain(path)
    expect(await rejectionOf(encryptor.encryptItem(item))).toMatchObject({ code: 'INVALID_ITEM' })
  })

  it('an attribute name with a lone surrogate is refused in the configuration', () => {
    const error = thrownBy(() => new DynamoDbItemEncryptor({ ...config, attributeActionsOnEncrypt: { ...config.attributeActionsOnEncrypt, [`x${HIGH}`]: 'SIGN_ONLY' } }))
    refusal(error, ConfigurationError)
  })

  it('well-formed text outside the BMP round-trips', async () => {
    const item: Item = { pk: { S: `u ${SMILE}` }, card: { S: `4111 ${SMILE}` }, tags: { SS: [SMILE, 'a'] }, doc: { M: { [SMILE]: { S: SMILE } } } }
    expect(await encryptor.decryptItem(await encryptor.encryptItem(item))).toEqual(item)
  })
})
