// Intermediate key wrapping (the DynamoDB item suites 0x6700/0x6701) in the keyrings and materials managers.
// spec: framework/algorithm-suites.md#intermediate-key-wrapping
import { createCipheriv, hkdfSync } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { nodeBackend } from '../src/backend/node.js'
import type { AeadKey, CryptoBackend } from '../src/backend/types.js'
import { isAllZero } from '../src/format/bytes.js'
import { serializeContext } from '../src/format/context.js'
import {
  CachingMaterialsManager,
  DefaultMaterialsManager,
  decrypt,
  defaultKmsClientSupplier,
  encrypt,
  KmsKeyring,
  KmsRsaKeyring,
  LocalMaterialsCache,
  MultiKeyring,
  type CacheEntry,
  type CompleteDecryptionMaterials,
  type CompleteEncryptionMaterials,
  type EncryptionMaterials,
  type Keyring,
  type KmsClientSupplier,
  type MaterialsManager,
  type NoDecryptableKeyError,
} from '../src/index.js'
import { addIntermediateRecipient, openIntermediate } from '../src/keyrings/intermediate.js'
import { dbeSuite } from '../src/suites-dbe.js'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'
import { aesKeyring, rejectionOf, rsaKeyring } from './helpers/fixtures.js'

const suite = dbeSuite(0x6700)
const signedSuite = dbeSuite(0x6701)
const context = { 'aws-crypto-table-name': 'orders', tenant: 'acme' }
const POLICY = 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' as const

async function encryptionMaterials(manager: MaterialsManager, dbe = suite, encryptionContext = context): Promise<CompleteEncryptionMaterials> {
  return manager.getEncryptionMaterials({ suite: dbe, encryptionContext, commitmentPolicy: POLICY, maxPlaintextLength: 100 }, nodeBackend)
}

async function decryptionMaterials(
  manager: MaterialsManager,
  from: CompleteEncryptionMaterials,
  edks = from.encryptedDataKeys,
  encryptionContext = from.encryptionContext,
): Promise<CompleteDecryptionMaterials> {
  return manager.getDecryptionMaterials({ suite: from.suite, encryptionContext, encryptedDataKeys: edks, commitmentPolicy: POLICY }, nodeBackend)
}

describe('intermediate key wrapping: known answer', () => {
  it('wraps the data key under HKDF-SHA512(intermediate key, "AWS_MPL_INTERMEDIATE_KEYWRAP_ENC") with a zero IV', async () => {
    // Derived independently with node:crypto: HKDF-SHA512 with an empty salt, 32-byte outputs, info strings from
    // the spec; AES-256-GCM with 12 zero bytes as IV and the serialized context as AAD.
    const intermediateKey = Uint8Array.from({ length: 32 }, (_, i) => i)
    const dataKey = Uint8Array.from({ length: 32 }, (_, i) => 0xa0 + i)
    const inner = { providerId: 'p', providerInfo: new Uint8Array([1]), ciphertext: new Uint8Array([9, 9, 9]) }
    const macKey = new Uint8Array(hkdfSync('sha512', intermediateKey, new Uint8Array(0), 'AWS_MPL_INTERMEDIATE_KEYWRAP_MAC', 32))
    const encKey = new Uint8Array(hkdfSync('sha512', intermediateKey, new Uint8Array(0), 'AWS_MPL_INTERMEDIATE_KEYWRAP_ENC', 32))
    const cipher = createCipheriv('aes-256-gcm', encKey, new Uint8Array(12))
    cipher.setAAD(serializeContext(context))
    const expected = Buffer.concat([cipher.update(dataKey), cipher.final(), cipher.getAuthTag(), inner.ciphertext])

    const materials: EncryptionMaterials = { suite, encryptionContext: context, plaintextDataKey: dataKey, encryptedDataKeys: [] }
    const out = await addIntermediateRecipient(materials, nodeBackend, async () => ({ intermediateKey: intermediateKey.slice(), encryptedDataKey: inner }))
    expect(Buffer.from(out.encryptedDataKeys[0]?.ciphertext as Uint8Array).toString('hex')).toBe(expected.toString('hex'))
    expect(out.encryptedDataKeys[0]?.providerId).toBe('p')
    expect(Buffer.from(out.symmetricSigningKeys?.[0] as Uint8Array)).toEqual(Buffer.from(macKey))

    const opened = await openIntermediate({ suite, encryptionContext: context }, out.encryptedDataKeys[0]!, intermediateKey.slice(), nodeBackend)
    expect(opened?.plaintextDataKey).toEqual(dataKey)
    expect(opened?.symmetricSigningKey).toEqual(macKey)
    // A different context is a different AAD: the data key does not open.
    expect(await openIntermediate({ suite, encryptionContext: { tenant: 'other' } }, out.encryptedDataKeys[0]!, intermediateKey.slice(), nodeBackend)).toBe(
      undefined,
    )
  })

  it('a data key that does not open leaves nothing behind: what node:crypto deciphered before the tag failed is zeroed', async () => {
    const intermediateKey = Uint8Array.from({ length: 32 }, (_, i) => i)
    const materials: EncryptionMaterials = { suite, encryptionContext: context, plaintextDataKey: new Uint8Array(32).fill(7), encryptedDataKeys: [] }
    const inner = { providerId: 'p', providerInfo: new Uint8Array([1]), ciphertext: new Uint8Array([9]) }
    const out = await addIntermediateRecipient(materials, nodeBackend, async () => ({ intermediateKey: intermediateKey.slice(), encryptedDataKey: inner }))
    const outputs: Uint8Array[] = []
    const capturing: CryptoBackend = {
      ...nodeBackend,
      aeadKey(key) {
        const aead = nodeBackend.aeadKey(key) as AeadKey
        return { ...aead, open: (iv, aad, ciphertext, tag, output, offset) => (outputs.push(output), aead.open(iv, aad, ciphertext, tag, output, offset)) }
      },
    }
    const other = { suite, encryptionContext: { tenant: 'other' } }
    expect(await openIntermediate(other, out.encryptedDataKeys[0]!, intermediateKey.slice(), capturing)).toBeUndefined()
    expect(outputs).toHaveLength(1)
    expect(outputs[0]).toHaveLength(32)
    expect(isAllZero(outputs[0]!)).toBe(true)
  })

  it('refuses materials without a data key, or with a signing key count other than their data key count', async () => {
    const wrap = async () => ({ intermediateKey: new Uint8Array(32).fill(1), encryptedDataKey: { providerId: 'p', providerInfo: new Uint8Array(0), ciphertext: new Uint8Array([9]) } })
    const base: EncryptionMaterials = { suite, encryptionContext: context, encryptedDataKeys: [] }
    expect(await rejectionOf(addIntermediateRecipient(base, nodeBackend, wrap))).toMatchObject({
      code: 'KEYRING_FAILURE',
      message: 'Intermediate key wrapping needs the data key first.',
    })
    const uneven = { ...base, plaintextDataKey: new Uint8Array(32).fill(7), symmetricSigningKeys: [new Uint8Array(32).fill(2)] }
    expect(await rejectionOf(addIntermediateRecipient(uneven, nodeBackend, wrap))).toMatchObject({
      code: 'KEYRING_FAILURE',
      message: 'The materials have a different number of symmetric signing keys and encrypted data keys.',
    })
  })
})

describe('intermediate key wrapping: keyrings', () => {
  let kms: KmsEmulator
  let kmsKeyring: (generator: string, keyIds?: string[]) => KmsKeyring
  let keyArns: string[]
  let supplier: KmsClientSupplier
  beforeAll(async () => {
    kms = await startKmsEmulator({ regions: ['us-east-1'] })
    const clientSupplier = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials: { accessKeyId: 'AKID', secretAccessKey: 'x' } } })
    supplier = clientSupplier
    keyArns = [kms.createKey({ region: 'us-east-1' }).arn, kms.createKey({ region: 'us-east-1' }).arn]
    kmsKeyring = (generator, keyIds = []) => new KmsKeyring({ generatorKeyId: generator, keyIds, clientSupplier })
  })
  afterAll(() => kms.close())

  const keyrings: [string, () => Keyring][] = [
    ['RawAesKeyring', () => aesKeyring()],
    ['RawRsaKeyring OAEP-SHA256', () => rsaKeyring('OAEP-SHA256')],
    ['RawRsaKeyring PKCS1', () => rsaKeyring('PKCS1')],
    ['KmsKeyring', () => kmsKeyring(keyArns[0] as string)],
  ]
  for (const [name, make] of keyrings) {
    for (const dbe of [suite, signedSuite]) {
      it(`${name} round-trips suite 0x${dbe.id.toString(16)} with a signing key per data key`, async () => {
        const manager = new DefaultMaterialsManager(make())
        const encrypted = await encryptionMaterials(manager, dbe)
        expect(encrypted.encryptedDataKeys).toHaveLength(1)
        expect(encrypted.symmetricSigningKeys).toHaveLength(1)
        expect(encrypted.signingKey !== undefined).toBe(dbe.signature !== undefined)
        const decrypted = await decryptionMaterials(manager, encrypted)
        expect(decrypted.plaintextDataKey).toEqual(encrypted.plaintextDataKey)
        expect(decrypted.symmetricSigningKey).toEqual(encrypted.symmetricSigningKeys?.[0])
        expect(decrypted.verificationKey !== undefined).toBe(dbe.signature !== undefined)
      })
    }
  }

  it('a KmsKeyring with more keys than its generator gives each its own signing key, which only that key recovers', async () => {
    const [generator, other] = keyArns as [string, string]
    const encrypted = await encryptionMaterials(new DefaultMaterialsManager(kmsKeyring(generator, [other])))
    expect(encrypted.encryptedDataKeys).toHaveLength(2)
    expect(encrypted.symmetricSigningKeys).toHaveLength(2)
    expect(new Set(encrypted.symmetricSigningKeys?.map((key) => Buffer.from(key).toString('hex'))).size).toBe(2)
    for (const [index, key] of [generator, other].entries()) {
      const decrypted = await decryptionMaterials(new DefaultMaterialsManager(new KmsKeyring({ keyIds: [key], clientSupplier: supplier })), encrypted)
      expect(decrypted.plaintextDataKey).toEqual(encrypted.plaintextDataKey)
      expect(decrypted.symmetricSigningKey).toEqual(encrypted.symmetricSigningKeys?.[index])
    }
  })

  it('a multi-keyring gives every recipient its own signing key, which only its own key recovers', async () => {
    const children = [aesKeyring(32, 'child'), rsaKeyring('OAEP-SHA256')]
    const encrypted = await encryptionMaterials(new DefaultMaterialsManager(new MultiKeyring({ generator: kmsKeyring(keyArns[1] as string), children })))
    expect(encrypted.encryptedDataKeys).toHaveLength(3)
    expect(encrypted.symmetricSigningKeys).toHaveLength(3)
    expect(new Set(encrypted.symmetricSigningKeys?.map((key) => Buffer.from(key).toString('hex'))).size).toBe(3)
    const alone: Keyring[] = [kmsKeyring(keyArns[1] as string), ...children]
    for (const [index, keyring] of alone.entries()) {
      const decrypted = await decryptionMaterials(new DefaultMaterialsManager(keyring), encrypted)
      expect(decrypted.plaintextDataKey).toEqual(encrypted.plaintextDataKey)
      expect(decrypted.symmetricSigningKey).toEqual(encrypted.symmetricSigningKeys?.[index])
    }
  })

  it('the caching manager hands out copies of the signing keys: zeroing one leaves the cache intact', async () => {
    const cache = new LocalMaterialsCache({ capacity: 10 })
    const manager = new CachingMaterialsManager({ keyring: aesKeyring(), cache, maxAge: 60_000 })
    const first = await encryptionMaterials(manager)
    const expected = Buffer.from(first.symmetricSigningKeys?.[0] as Uint8Array)
    first.symmetricSigningKeys?.[0]?.fill(0)
    first.plaintextDataKey.fill(0)
    const second = await encryptionMaterials(manager)
    expect(Buffer.from(second.symmetricSigningKeys?.[0] as Uint8Array)).toEqual(expected)
    const decrypted = await decryptionMaterials(manager, second)
    decrypted.symmetricSigningKey?.fill(0)
    expect(Buffer.from((await decryptionMaterials(manager, second)).symmetricSigningKey as Uint8Array)).toEqual(expected)
    expect(cache.stats().hits).toBeGreaterThanOrEqual(2)
  })

  it('the cache zeroes the signing keys of the entries it evicts, with the data key', async () => {
    const kept: CacheEntry[] = []
    class KeepingCache extends LocalMaterialsCache {
      override put(id: string, entry: CacheEntry): void {
        kept.push(entry)
        super.put(id, entry)
      }
    }
    const cache = new KeepingCache({ capacity: 10 })
    const manager = new CachingMaterialsManager({ keyring: aesKeyring(), cache, maxAge: 60_000 })
    await decryptionMaterials(manager, await encryptionMaterials(manager))
    expect(kept.map((entry) => entry.operation).sort()).toEqual(['decrypt', 'encrypt'])
    const secrets = kept.flatMap(({ materials }) => [
      materials.plaintextDataKey,
      ...('symmetricSigningKeys' in materials ? (materials.symmetricSigningKeys ?? []) : []),
      ...('symmetricSigningKey' in materials && materials.symmetricSigningKey !== undefined ? [materials.symmetricSigningKey] : []),
    ])
    expect(secrets).toHaveLength(4)
    expect(secrets.every((key) => key.some((byte) => byte !== 0))).toBe(true)
    cache.clear()
    expect(secrets.every(isAllZero)).toBe(true)
  })

  it('refuses a tampered wrapped data key, a tampered wrapped intermediate key, a wrong context and truncation', async () => {
    for (const make of [() => aesKeyring(), () => rsaKeyring('OAEP-SHA256'), () => kmsKeyring(keyArns[0] as string)]) {
      const manager = new DefaultMaterialsManager(make())
      const encrypted = await encryptionMaterials(manager)
      const edk = encrypted.encryptedDataKeys[0]!
      const flip = (index: number) => {
        const ciphertext = edk.ciphertext.slice()
        ciphertext[index] = (ciphertext[index] as number) ^ 1
        return [{ ...edk, ciphertext }]
      }
      for (const edks of [flip(0), flip(47), flip(edk.ciphertext.length - 1), [{ ...edk, ciphertext: edk.ciphertext.subarray(0, 48) }]]) {
        expect((await rejectionOf(decryptionMaterials(manager, encrypted, edks)) as { code: string }).code).toBe('NO_DECRYPTABLE_KEY')
      }
      const wrongContext = { ...encrypted.encryptionContext, tenant: 'someone-else' }
      expect((await rejectionOf(decryptionMaterials(manager, encrypted, encrypted.encryptedDataKeys, wrongContext)) as { code: string }).code).toBe(
        'NO_DECRYPTABLE_KEY',
      )
    }
  })

  it('a raw AES keyring passes over keys that are not its own: another name, the same length', async () => {
    const encrypted = await encryptionMaterials(new DefaultMaterialsManager(aesKeyring(32, 'key-2', 9)))
    const materials = { suite, encryptionContext: encrypted.encryptionContext }
    for (const edks of [encrypted.encryptedDataKeys, []]) {
      // Not tried: a key tried and failed would be "found 1 encrypted data key for its key name, but none unwrapped".
      expect(await aesKeyring().onDecrypt(materials, edks, nodeBackend)).toBe(materials)
    }
    const mine = await encryptionMaterials(new DefaultMaterialsManager(aesKeyring()))
    expect((await aesKeyring().onDecrypt(materials, [...encrypted.encryptedDataKeys, ...mine.encryptedDataKeys], nodeBackend)).plaintextDataKey).toEqual(mine.plaintextDataKey)
  })

  it('fast-check: any single-byte change of an intermediate-wrapped raw AES key fails', async () => {
    const manager = new DefaultMaterialsManager(aesKeyring())
    const encrypted = await encryptionMaterials(manager)
    const edk = encrypted.encryptedDataKeys[0]!
    await fc.assert(
      fc.asyncProperty(fc.nat(edk.ciphertext.length - 1), fc.integer({ min: 1, max: 255 }), async (index, delta) => {
        const ciphertext = edk.ciphertext.slice()
        ciphertext[index] = ((ciphertext[index] as number) + delta) & 0xff
        const failure = await rejectionOf(decryptionMaterials(manager, encrypted, [{ ...edk, ciphertext }]))
        expect((failure as { code: string }).code).toBe('NO_DECRYPTABLE_KEY')
      }),
      { numRuns: 60 },
    )
  })

  it('a KMS keyring names why each intermediate-wrapped data key failed: changed, too short, or refused by KMS', async () => {
    const manager = new DefaultMaterialsManager(kmsKeyring(keyArns[0] as string))
    const encrypted = await encryptionMaterials(manager)
    const edk = encrypted.encryptedDataKeys[0]!
    const changed = edk.ciphertext.slice()
    changed[0] = (changed[0] as number) ^ 1
    const cases: [Uint8Array, string][] = [
      [changed, 'wrapped data key changed'],
      [edk.ciphertext.subarray(0, 48), 'data key too short'],
      [edk.ciphertext.slice(0, 60), 'InvalidCiphertextException'],
    ]
    for (const [ciphertext, kind] of cases) {
      const error = await rejectionOf(decryptionMaterials(manager, encrypted, [{ ...edk, ciphertext }]))
      expect((error as { code: string }).code).toBe('NO_DECRYPTABLE_KEY')
      expect((error as Error).message).toContain(`${keyArns[0]} (${kind}).`)
    }
  })

  it('a raw RSA keyring names its key and the padding, and why an intermediate-wrapped data key failed: too short, or the context', async () => {
    const manager = new DefaultMaterialsManager(rsaKeyring('OAEP-SHA256'))
    const encrypted = await encryptionMaterials(manager)
    const edk = encrypted.encryptedDataKeys[0]!
    const cases: [readonly (typeof edk)[], Record<string, string>, string, string][] = [
      [[{ ...edk, ciphertext: edk.ciphertext.subarray(0, 48) }], context, '1 encrypted data key', 'The encrypted data key is too short to hold a wrapped intermediate key.'],
      [[edk, edk], { ...context, tenant: 'someone-else' }, '2 encrypted data keys', 'The data key does not open with its intermediate key: the encryption context differs.'],
    ]
    for (const [edks, encryptionContext, found, cause] of cases) {
      const error = (await rejectionOf(decryptionMaterials(manager, encrypted, edks, encryptionContext))) as NoDecryptableKeyError
      expect(error.code).toBe('NO_DECRYPTABLE_KEY')
      expect(error.failures[0]?.error).toMatchObject({
        code: 'KEYRING_FAILURE',
        message: `RawRsaKeyring "test/rsa-1" found ${found} for its key name, but none decrypted with OAEP-SHA256.`,
        cause: { message: cause },
      })
    }
  })
})

describe('the DynamoDB item suites stay out of the message format', () => {
  it('encrypt refuses them and KmsRsaKeyring refuses them', async () => {
    for (const id of [0x6700, 0x6701]) {
      expect((await rejectionOf(encrypt(aesKeyring(), 'x', { algorithmSuite: id })) as { code: string }).code).toBe('INVALID_CONFIGURATION')
    }
    const { publicKey } = await import('./helpers/fixtures.js').then((m) => m.rsaPem())
    const rsa = new KmsRsaKeyring({ keyId: 'arn:aws:kms:us-east-1:111122223333:key/k', encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey })
    expect(await rejectionOf(encryptionMaterials(new DefaultMaterialsManager(rsa)))).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: 'KmsRsaKeyring cannot be used with DynamoDB item suite 0x6700.',
    })
  })

  it('decrypt refuses a message naming suite 0x6700', async () => {
    const { ciphertext } = await encrypt(aesKeyring(), 'x', { algorithmSuite: 0x0478 })
    const forged = ciphertext.slice()
    forged[1] = 0x67
    forged[2] = 0x00
    expect((await rejectionOf(decrypt(aesKeyring(), forged)) as { code: string }).code).toBe('UNSUPPORTED_ALGORITHM_SUITE')
  })
})
