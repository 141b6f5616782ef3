// The AWS KMS RSA keyring: a known answer built from the specification (test/helpers/kms-rsa-kat.ts), round
// trips through the local KMS emulator's RSA keys, the public key cache, and every refusal.
import { constants, createPublicKey, privateDecrypt } from 'node:crypto'
import { inspect } from 'node:util'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { element, fromPem, readElement } from '../src/backend/der.js'
import { nodeBackend } from '../src/backend/node.js'
import type { CryptoBackend, RsaPadding } from '../src/backend/types.js'
import { serializeContext } from '../src/format/context.js'
import { parseHeader } from '../src/format/header.js'
import {
  ConfigurationError,
  createKmsPublicKeyCache,
  decrypt,
  defaultKmsClientSupplier,
  encrypt,
  KeyringError,
  KmsRsaKeyring,
  MalformedMessageError,
  MultiKeyring,
  NoDecryptableKeyError,
  RawAesKeyring,
  RequiredEncryptionContextMaterialsManager,
  type CommitmentPolicy,
  type DecryptionMaterials,
  type EncryptedDataKey,
  type KmsClientLike,
  type KmsRsaEncryptionAlgorithm,
} from '../src/index.js'
import { encryptWith } from '../src/encrypt.js'
import { suiteFromOption } from '../src/suites.js'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'
import { isAllZero } from '../src/format/bytes.js'
import { buildKmsRsaKatMessage, katKms, KMS_RSA_KAT, OAEP_HASH, serializeByHand, sha384, type RecordedDecrypt } from './helpers/kms-rsa-kat.js'
import { bufferAnswering, rejectionOf } from './helpers/fixtures.js'

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)
const utf8 = (value: string): Uint8Array => new TextEncoder().encode(value)
const ALGORITHMS: readonly KmsRsaEncryptionAlgorithm[] = ['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1']
const UNSIGNED_SUITES = [0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0478] as const
const SIGNING_SUITES = [0x0214, 0x0346, 0x0378, 0x0578] as const
const policyFor = (suite: number): CommitmentPolicy => (suite === 0x0478 ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT')
const decryptPolicyFor = (suite: number): CommitmentPolicy => (suite === 0x0478 ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'REQUIRE_ENCRYPT_ALLOW_DECRYPT')
const hex16 = (suite: number): string => `0x${suite.toString(16).padStart(4, '0')}`

function katKeyring(algorithm: KmsRsaEncryptionAlgorithm = 'RSAES_OAEP_SHA_256', kmsClient?: KmsClientLike): KmsRsaKeyring {
  return new KmsRsaKeyring({
    keyId: KMS_RSA_KAT.keyArn,
    encryptionAlgorithm: algorithm,
    publicKey: KMS_RSA_KAT.publicKeyPem,
    ...(kmsClient === undefined ? {} : { kmsClient }),
  })
}

/** The single EDK of a message. */
function onlyEdk(message: Uint8Array): EncryptedDataKey {
  const { header } = parseHeader(message)
  expect(header.encryptedDataKeys).toHaveLength(1)
  return header.encryptedDataKeys[0] as EncryptedDataKey
}

const suite0478 = suiteFromOption(0x0478)
const decryptionMaterials = (encryptionContext: Record<string, string>): DecryptionMaterials => ({ suite: suite0478, encryptionContext })

describe('aws-kms-rsa known answer (derivation in test/helpers/kms-rsa-kat.ts)', () => {
  it('the fixture is self-consistent: serialization by hand, SHA-384, and openssl OAEP of digest ‖ data key', () => {
    expect(serializeByHand(KMS_RSA_KAT.encryptionContext).equals(KMS_RSA_KAT.serializedContext)).toBe(true)
    expect(sha384(KMS_RSA_KAT.serializedContext).equals(KMS_RSA_KAT.contextDigest)).toBe(true)
    expect(Buffer.concat([KMS_RSA_KAT.contextDigest, KMS_RSA_KAT.dataKey]).equals(KMS_RSA_KAT.edkPlaintext)).toBe(true)
    for (const algorithm of ALGORITHMS) {
      const opened = privateDecrypt(
        { key: KMS_RSA_KAT.privateKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[algorithm] },
        KMS_RSA_KAT.edkCiphertext[algorithm],
      )
      expect(opened.equals(KMS_RSA_KAT.edkPlaintext)).toBe(true)
    }
  })

  it('the library serializes and digests the context exactly as derived', () => {
    expect(Buffer.from(serializeContext(KMS_RSA_KAT.encryptionContext)).equals(KMS_RSA_KAT.serializedContext)).toBe(true)
    expect(Buffer.from(nodeBackend.digest('sha384', KMS_RSA_KAT.serializedContext) as Uint8Array).equals(KMS_RSA_KAT.contextDigest)).toBe(true)
  })

  it.each(ALGORITHMS)('decrypts the independently built message (%s) through KMS Decrypt with the configured algorithm', async (algorithm) => {
    const kms = katKms()
    const { plaintext, header } = await decrypt(katKeyring(algorithm, kms.client), buildKmsRsaKatMessage(algorithm), {
      encryptionContext: KMS_RSA_KAT.encryptionContext,
    })
    expect(Buffer.from(plaintext).equals(KMS_RSA_KAT.plaintext)).toBe(true)
    expect(header.algorithmSuiteId).toBe(0x0478)
    // spec: #ondecrypt — KeyId, CiphertextBlob, GrantTokens and EncryptionAlgorithm; RSA keys take no context.
    expect(kms.calls).toHaveLength(1)
    const call = kms.calls[0] as RecordedDecrypt
    expect(call.operation).toBe('DecryptCommand')
    expect(call.input.KeyId).toBe(KMS_RSA_KAT.keyArn)
    expect(call.input.EncryptionAlgorithm).toBe(algorithm)
    expect(Buffer.from(call.input.CiphertextBlob as Uint8Array).equals(KMS_RSA_KAT.edkCiphertext[algorithm])).toBe(true)
    expect(call.input.GrantTokens).toEqual([])
    expect(call.input.EncryptionContext).toBeUndefined()
  })

  it('our encrypt writes exactly the independently built message, given the same randomness and OAEP output', async () => {
    const queue = [KMS_RSA_KAT.dataKey, KMS_RSA_KAT.messageId].map((bytes) => new Uint8Array(bytes))
    const rsaInputs: Array<{ padding: RsaPadding; plaintext: Buffer }> = []
    const deterministic: CryptoBackend = {
      ...nodeBackend,
      randomBytes: (length: number) => {
        const next = queue.shift()
        if (next?.length !== length) throw new Error(`unexpected randomBytes(${length})`)
        return next
      },
      rsaEncrypt: (_publicKey: unknown, padding: RsaPadding, plaintext: Uint8Array) => {
        rsaInputs.push({ padding, plaintext: Buffer.from(plaintext) })
        return new Uint8Array(KMS_RSA_KAT.edkCiphertext.RSAES_OAEP_SHA_256)
      },
    }
    const { ciphertext } = await encryptWith(deterministic, katKeyring(), KMS_RSA_KAT.plaintext, {
      encryptionContext: KMS_RSA_KAT.encryptionContext,
      algorithmSuite: 0x0478,
      frameLength: KMS_RSA_KAT.frameLength,
    })
    expect(rsaInputs).toHaveLength(1)
    expect(rsaInputs[0]?.padding).toBe('OAEP-SHA256')
    expect(rsaInputs[0]?.plaintext.equals(KMS_RSA_KAT.edkPlaintext)).toBe(true)
    expect(Buffer.from(ciphertext).equals(Buffer.from(buildKmsRsaKatMessage()))).toBe(true)
  })

  it('zeroes what it handed RSA (the digest and the data key), and the data key it made when the wrap fails', async () => {
    const made: Uint8Array[] = []
    const rsaInputs: Uint8Array[] = []
    const recording = (fails: boolean): CryptoBackend => ({
      ...nodeBackend,
      randomBytes: (length: number) => {
        const bytes = nodeBackend.randomBytes(length)
        if (length === 32) made.push(bytes)
        return bytes
      },
      rsaEncrypt: async (publicKey: unknown, padding: RsaPadding, plaintext: Uint8Array) => {
        rsaInputs.push(plaintext)
        if (fails) throw new Error('no RSA here')
        return nodeBackend.rsaEncrypt(publicKey, padding, plaintext)
      },
    })
    await encryptWith(recording(false), katKeyring(), 'x', { algorithmSuite: 0x0478 })
    made.length = 0
    expect(await rejectionOf(encryptWith(recording(true), katKeyring(), 'x', { algorithmSuite: 0x0478 }))).toMatchObject({
      code: 'KEYRING_FAILURE',
      message: `KmsRsaKeyring could not wrap the data key for ${KMS_RSA_KAT.keyArn} with RSAES_OAEP_SHA_256.`,
    })
    expect(rsaInputs).toHaveLength(2)
    expect(rsaInputs.map((input) => input.length === 48 + 32 && isAllZero(input))).toEqual([true, true])
    // The failed encrypt made one data key (no message ID: it stops before the header).
    expect(made.map((key) => isAllZero(key))).toEqual([true])
  })

  it.each(ALGORITHMS)('a fresh %s EDK decrypts (with the private key alone) to SHA-384(context) ‖ data key', async (algorithm) => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string({ minLength: 1 }).filter((key) => !key.startsWith('aws-crypto-')), fc.string(), { maxKeys: 4 }), async (context) => {
        const { ciphertext } = await encrypt(katKeyring(algorithm), 'x', { encryptionContext: context, algorithmSuite: 0x0478 })
        const edk = onlyEdk(ciphertext)
        expect(edk.providerId).toBe('aws-kms-rsa')
        expect(text(edk.providerInfo)).toBe(KMS_RSA_KAT.keyArn)
        expect(edk.ciphertext).toHaveLength(256)
        const opened = privateDecrypt(
          { key: KMS_RSA_KAT.privateKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[algorithm] },
          edk.ciphertext,
        )
        expect(opened).toHaveLength(80)
        expect(opened.subarray(0, 48).equals(sha384(serializeByHand(context)))).toBe(true)
      }),
      { numRuns: 15 },
    )
  })

  it('a digest of another context fails, and leaves the materials as they were', async () => {
    const kms = katKms()
    const materials = decryptionMaterials({ ...KMS_RSA_KAT.encryptionContext, tenant: 'someone-else' })
    const edk: EncryptedDataKey = {
      providerId: 'aws-kms-rsa',
      providerInfo: utf8(KMS_RSA_KAT.keyArn),
      ciphertext: new Uint8Array(KMS_RSA_KAT.edkCiphertext.RSAES_OAEP_SHA_256),
    }
    const error = await rejectionOf(katKeyring('RSAES_OAEP_SHA_256', kms.client).onDecrypt(materials, [edk], nodeBackend))
    expect(error).toBeInstanceOf(NoDecryptableKeyError)
    const [failure] = (error as NoDecryptableKeyError).failures
    expect(failure?.error).toBeInstanceOf(KeyringError)
    expect(String((failure?.error as Error).message)).toMatch(/different encryption context/)
    expect(materials.plaintextDataKey).toBeUndefined()
    // The same EDK under the right context gives the fixed data key.
    const right = await katKeyring('RSAES_OAEP_SHA_256', kms.client).onDecrypt(decryptionMaterials(KMS_RSA_KAT.encryptionContext), [edk], nodeBackend)
    expect(Buffer.from(right.plaintextDataKey as Uint8Array).equals(KMS_RSA_KAT.dataKey)).toBe(true)
  })
})

describe('KmsRsaKeyring against the KMS emulator', () => {
  let kms: KmsEmulator
  let keyArn: string
  let otherKeyArn: string
  let symmetricArn: string
  let clientSupplier: ReturnType<typeof defaultKmsClientSupplier>
  let publicKeyPem: string
  let publicKeyDer: Uint8Array

  beforeAll(async () => {
    kms = await startKmsEmulator({ regions: ['us-east-1', 'eu-west-1'] })
    keyArn = kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' }).arn
    otherKeyArn = kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' }).arn
    symmetricArn = kms.createKey({ region: 'us-east-1' }).arn
    clientSupplier = defaultKmsClientSupplier({
      clientConfig: { endpoint: kms.endpoint, credentials: { accessKeyId: 'AKIDRSA', secretAccessKey: 'rsa' }, maxAttempts: 1 },
    })
    const publicKey = await createKmsPublicKeyCache({ clientSupplier }).get(keyArn)
    publicKeyPem = publicKey.pem
    publicKeyDer = publicKey.publicKey
  })
  afterAll(async () => {
    await kms.close()
  })

  const encryptingKeyring = (algorithm: KmsRsaEncryptionAlgorithm, publicKey: string | Uint8Array = publicKeyPem) =>
    new KmsRsaKeyring({ keyId: keyArn, encryptionAlgorithm: algorithm, publicKey })
  const decryptingKeyring = (algorithm: KmsRsaEncryptionAlgorithm, keyId = keyArn) =>
    new KmsRsaKeyring({ keyId, encryptionAlgorithm: algorithm, clientSupplier })

  it.each(ALGORITHMS.flatMap((algorithm) => UNSIGNED_SUITES.map((suite) => [algorithm, hex16(suite), suite] as const)))(
    '%s, suite %s: encrypts offline with the GetPublicKey key and decrypts through KMS',
    async (algorithm, _name, suite) => {
      const before = kms.calls.length
      const context = { tenant: 'acme', 'ünïcode': '✓' }
      const { ciphertext } = await encrypt(encryptingKeyring(algorithm, suite % 2 === 0 ? publicKeyPem : publicKeyDer), 'offline', {
        algorithmSuite: suite,
        commitmentPolicy: policyFor(suite),
        encryptionContext: context,
      })
      expect(kms.calls.length).toBe(before) // no AWS call to encrypt
      const { plaintext } = await decrypt(decryptingKeyring(algorithm), ciphertext, {
        commitmentPolicy: decryptPolicyFor(suite),
        encryptionContext: context,
      })
      expect(text(plaintext)).toBe('offline')
      const decrypts = kms.calls.slice(before).filter((call) => call.operation === 'Decrypt')
      expect(decrypts).toHaveLength(1)
      expect(decrypts[0]?.keyId).toBe(keyArn)
    },
  )

  it('an empty context and a 1 MiB plaintext round-trip too', async () => {
    const data = new Uint8Array(1 << 20).map((_, index) => index % 251)
    const { ciphertext } = await encrypt(encryptingKeyring('RSAES_OAEP_SHA_256'), data, { algorithmSuite: 0x0478 })
    const { plaintext } = await decrypt(decryptingKeyring('RSAES_OAEP_SHA_256'), ciphertext)
    expect(Buffer.from(plaintext).equals(Buffer.from(data))).toBe(true)
  })

  it('decrypts through a client that answers with Node Buffers (whose slice() is a view of the same memory)', async () => {
    const { ciphertext } = await encrypt(encryptingKeyring('RSAES_OAEP_SHA_256'), 'buffers', { encryptionContext: { purpose: 'buffers' } })
    const keyring = new KmsRsaKeyring({ keyId: keyArn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', clientSupplier: bufferAnswering(clientSupplier) })
    expect(text((await decrypt(keyring, ciphertext)).plaintext)).toBe('buffers')
  })

  it('a context the data key was not bound to fails: required-context pair reproduced with another value', async () => {
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring: encryptingKeyring('RSAES_OAEP_SHA_256') })
    const { ciphertext } = await encrypt(cmm, 'bound', { encryptionContext: { tenant: 'acme', purpose: 'x' }, algorithmSuite: 0x0478 })
    const reader = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring: decryptingKeyring('RSAES_OAEP_SHA_256') })
    expect(text((await decrypt(reader, ciphertext, { encryptionContext: { tenant: 'acme' } })).plaintext)).toBe('bound')
    const error = await rejectionOf(decrypt(reader, ciphertext, { encryptionContext: { tenant: 'evil' } }))
    expect((error as NoDecryptableKeyError).code).toBe('NO_DECRYPTABLE_KEY')
    expect((error as Error).message).toMatch(/^KmsRsaKeyring could not decrypt the data key for arn:aws:kms:\S+: /)
    const reasons = JSON.stringify((error as NoDecryptableKeyError).failures.map((failure) => (failure.error as Error).message))
    expect(reasons).toMatch(/different encryption context/)
  })

  it('the other algorithm, another key, or a symmetric key cannot decrypt', async () => {
    const { ciphertext } = await encrypt(encryptingKeyring('RSAES_OAEP_SHA_256'), 'x', { algorithmSuite: 0x0478 })
    for (const keyring of [decryptingKeyring('RSAES_OAEP_SHA_1'), decryptingKeyring('RSAES_OAEP_SHA_256', otherKeyArn)]) {
      expect(((await rejectionOf(decrypt(keyring, ciphertext))) as NoDecryptableKeyError).code).toBe('NO_DECRYPTABLE_KEY')
    }
    // Another key's keyring sees "not my key" and asks KMS nothing.
    const before = kms.callCount({ operation: 'Decrypt', keyArn: otherKeyArn })
    await rejectionOf(decrypt(decryptingKeyring('RSAES_OAEP_SHA_256', otherKeyArn), ciphertext))
    expect(kms.callCount({ operation: 'Decrypt', keyArn: otherKeyArn })).toBe(before)
    // The wrong algorithm reaches KMS, which refuses: the failure names the KMS error.
    const error = (await rejectionOf(decrypt(decryptingKeyring('RSAES_OAEP_SHA_1'), ciphertext))) as NoDecryptableKeyError
    expect(JSON.stringify(error.failures.map((failure) => (failure.error as Error).message))).toMatch(/InvalidCiphertextException/)
    const symmetric = new KmsRsaKeyring({ keyId: symmetricArn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', clientSupplier })
    expect(((await rejectionOf(decrypt(symmetric, ciphertext))) as NoDecryptableKeyError).code).toBe('NO_DECRYPTABLE_KEY')
  })

  it('a MultiKeyring with a KmsRsaKeyring child decrypts through either keyring', async () => {
    const aes = new RawAesKeyring({ keyNamespace: 'app', keyName: 'k', wrappingKey: new Uint8Array(32).fill(9) })
    const multi = new MultiKeyring({ generator: aes, children: [encryptingKeyring('RSAES_OAEP_SHA_256')] })
    const { ciphertext } = await encrypt(multi, 'both', { algorithmSuite: 0x0478 })
    expect(text((await decrypt(decryptingKeyring('RSAES_OAEP_SHA_256'), ciphertext)).plaintext)).toBe('both')
    expect(text((await decrypt(aes, ciphertext)).plaintext)).toBe('both')
  })

  it('KMS failures and refused answers are collected per data key', async () => {
    const { ciphertext } = await encrypt(encryptingKeyring('RSAES_OAEP_SHA_256'), 'x', { algorithmSuite: 0x0478 })
    kms.faults.deny(keyArn, { operation: 'Decrypt' })
    try {
      const error = (await rejectionOf(decrypt(decryptingKeyring('RSAES_OAEP_SHA_256'), ciphertext))) as NoDecryptableKeyError
      expect(error.code).toBe('NO_DECRYPTABLE_KEY')
      expect(JSON.stringify(error.failures.map((failure) => (failure.error as Error).message))).toMatch(/AccessDeniedException/)
    } finally {
      kms.faults.clear()
    }
  })
})

describe('KmsRsaKeyring refusals', () => {
  const publicKeyPem = KMS_RSA_KAT.publicKeyPem
  const arn = KMS_RSA_KAT.keyArn
  const codeOf = async (promise: Promise<unknown>) => ((await rejectionOf(promise)) as { code?: string }).code
  const construct = (options: object) => () => new KmsRsaKeyring(options as never)

  it('checks its options', async () => {
    const { generateKeyPairSync } = await import('node:crypto')
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string
    // The same RSA key in PKCS#1 form, which KMS never returns: refused for its block, not for the DER inside.
    const pkcs1 = createPublicKey(publicKeyPem).export({ type: 'pkcs1', format: 'pem' }) as string
    const notAnArn = (keyId: string, separators: number) =>
      `KmsRsaKeyring keyId "${keyId}" is not a valid AWS KMS ARN: it has ${separators} ":" separators; a KMS ARN has 5 (arn:partition:kms:region:account:key/id).`
    const algorithm = (got: string) => `KmsRsaKeyring encryptionAlgorithm must be RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1; got ${got}.`
    const withKey = (publicKey: unknown) => ({ keyId: arn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey })
    const bad: Array<[object, string]> = [
      [{}, 'KmsRsaKeyring keyId must be a string; got undefined.'],
      [{ keyId: '', encryptionAlgorithm: 'RSAES_OAEP_SHA_256' }, notAnArn('', 0)],
      [{ keyId: 'b3537ef1-d8dc-4780-9f5a-55776cbb2f7f', encryptionAlgorithm: 'RSAES_OAEP_SHA_256' }, notAnArn('b3537ef1-d8dc-4780-9f5a-55776cbb2f7f', 0)],
      [{ keyId: 'alias/rsa', encryptionAlgorithm: 'RSAES_OAEP_SHA_256' }, notAnArn('alias/rsa', 0)],
      [
        { keyId: 'arn:aws:kms:us-east-1:111122223333:alias/rsa', encryptionAlgorithm: 'RSAES_OAEP_SHA_256' },
        'KmsRsaKeyring keyId must name a key, but "arn:aws:kms:us-east-1:111122223333:alias/rsa" is an alias ARN. Give the key ARN (arn:…:key/…) the alias points to.',
      ],
      [{ keyId: 'arn:aws:kms:us-east-1:111122223333', encryptionAlgorithm: 'RSAES_OAEP_SHA_256' }, notAnArn('arn:aws:kms:us-east-1:111122223333', 4)],
      [{ keyId: arn }, algorithm('undefined')],
      [{ keyId: arn, encryptionAlgorithm: 'SYMMETRIC_DEFAULT' }, algorithm('"SYMMETRIC_DEFAULT"')],
      [{ keyId: arn, encryptionAlgorithm: 'RSAES_PKCS1_V1_5' }, algorithm('"RSAES_PKCS1_V1_5"')],
      [withKey('not a pem'), 'KmsRsaKeyring publicKey is not a PEM public key (-----BEGIN PUBLIC KEY-----).'],
      [withKey(KMS_RSA_KAT.privateKeyPem), 'KmsRsaKeyring publicKey must be an SPKI public key ("PUBLIC KEY" PEM); got a "PRIVATE KEY" block.'],
      [withKey(pkcs1), 'KmsRsaKeyring publicKey must be an SPKI public key ("PUBLIC KEY" PEM); got a "RSA PUBLIC KEY" block.'],
      [withKey(small), 'KmsRsaKeyring publicKey has a 1024-bit modulus; encrypting needs at least 2048 bits.'],
      [withKey(ec), 'KmsRsaKeyring publicKey is not an RSA SubjectPublicKeyInfo: not an RSA public key (algorithm is not rsaEncryption).'],
      [withKey(new Uint8Array([0x30, 0x03, 1, 2, 3])), 'KmsRsaKeyring publicKey is not an RSA SubjectPublicKeyInfo: algorithm: expected DER tag 0x30.'],
      [withKey(42), 'KmsRsaKeyring publicKey must be DER bytes or a PEM string (as KMS GetPublicKey returns it); got Number.'],
      [{ ...withKey(undefined), kmsClient: {} }, 'KmsRsaKeyring kmsClient must be a KMSClient (an object with send).'],
      [{ ...withKey(undefined), clientSupplier: 'x' }, 'KmsRsaKeyring clientSupplier must be a function from a Region name to a KMS client.'],
      [{ ...withKey(undefined), kmsClient: katKms().client, clientSupplier: () => katKms().client }, 'KmsRsaKeyring takes a kmsClient or a clientSupplier, not both.'],
      [{ ...withKey(undefined), grantTokens: [''] }, 'KmsRsaKeyring grantTokens must be an array of non-empty strings.'],
    ]
    for (const [options, message] of bad) expect(construct(options), JSON.stringify(options)).toThrow(new ConfigurationError(message))
    expect(construct({ keyId: arn, encryptionAlgorithm: 'RSAES_OAEP_SHA_1', publicKey: publicKeyPem })).not.toThrow()
  })

  it('without a publicKey it only decrypts: encrypt is refused saying what to pass', async () => {
    const decryptOnly = new KmsRsaKeyring({ keyId: arn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', kmsClient: katKms().client })
    expect(await rejectionOf(encrypt(decryptOnly, 'x', { algorithmSuite: 0x0478 }))).toEqual(
      new ConfigurationError(`KmsRsaKeyring ${arn} has no publicKey, so it cannot encrypt: pass the key's public half (KMS GetPublicKey).`),
    )
  })

  it('keeps its own copy of a DER public key given as a Buffer (whose slice() shares its memory), in both builds', async () => {
    const browser = await import('../src/browser.js')
    const { createPublicKey } = await import('node:crypto')
    const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' })
    for (const [Keyring, encrypting] of [[KmsRsaKeyring, encrypt], [browser.KmsRsaKeyring, browser.encrypt]] as const) {
      const given = Buffer.from(der)
      const keyring = new Keyring({ keyId: arn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey: given })
      given.fill(0) // the caller reuses its buffer
      const { ciphertext } = await encrypting(keyring, 'x', { encryptionContext: { purpose: 'copy' } })
      expect(ciphertext.length).toBeGreaterThan(0)
    }
  })

  it('a public key that is no well-formed DER SubjectPublicKeyInfo is refused when the keyring is made', async () => {
    const { createPublicKey } = await import('node:crypto')
    const der = new Uint8Array(createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' }))
    expect(Array.from(der.subarray(0, 4))).toEqual([0x30, 0x82, 0x01, 0x22]) // SEQUENCE, two length bytes, 290
    const withKey = (publicKey: unknown) => construct({ keyId: arn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey })
    expect(withKey(der)).not.toThrow()
    const body = der.subarray(4)
    const malformed: [string, Uint8Array | string][] = [
      ...Array.from({ length: der.length }, (_, cut) => [`cut to ${cut} bytes`, der.subarray(0, cut)] as [string, Uint8Array]),
      ['a byte after the key', Uint8Array.of(...der, 0)],
      ['indefinite length', Uint8Array.of(0x30, 0x80, ...body)],
      ['four length bytes', Uint8Array.of(0x30, 0x84, 0, 0, 0x01, 0x22, ...body)],
      ['a long-form length under 128', Uint8Array.of(0x30, 0x81, 0x05, 1, 2, 3, 4, 5)],
      ['another outer tag', Uint8Array.of(0x31, ...der.subarray(1))],
      ['unused bits in the key bit string', (() => { const changed = der.slice(); changed[4 + 15 + 4] = 1; return changed })()],
      ['a PEM block that is not base64', '-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n'],
    ]
    // The byte changed for "unused bits" is the bit string's first content byte: check the offset is right.
    expect(der[4 + 15]).toBe(0x03)
    for (const [what, key] of malformed) expect(withKey(key), what).toThrow(ConfigurationError)
    // Well-formed, but of another algorithm: refused for that, not for a later element that does not fit.
    const { generateKeyPairSync } = await import('node:crypto')
    const ecKey = new Uint8Array(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }))
    expect(withKey(ecKey)).toThrow(/not an RSA public key \(algorithm is not rsaEncryption\)/)
  })

  it('the DER reader: each malformed element is a TypeError of its own, whatever a later check would catch', () => {
    expect(readElement(Uint8Array.of(0x04, 0x81, 0x80, ...new Uint8Array(128)), 0, 0x04, 'x').content.length).toBe(128)
    expect(readElement(Uint8Array.of(0x04, 0x02, 7, 8, 9), 0, 0x04, 'x')).toMatchObject({ end: 4 })
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70_000 }), (content) => {
        const encoded = element(0x04, content)
        expect(readElement(encoded, 0, 0x04, 'x').content).toEqual(content)
        expect(() => readElement(encoded.subarray(0, encoded.length - 1), 0, 0x04, 'x')).toThrow(TypeError)
      }),
      { numRuns: 30 },
    )
    for (const [what, bytes] of [
      ['no length byte', Uint8Array.of(0x04)],
      ['indefinite length', Uint8Array.of(0x04, 0x80, 0, 0)],
      ['four length bytes', Uint8Array.of(0x04, 0x84, 0, 0, 0, 1, 7)],
      ['length bytes cut short', Uint8Array.of(0x04, 0x82, 0x01)],
      ['a long form for a short length', Uint8Array.of(0x04, 0x81, 0x01, 7)],
      ['content cut short', Uint8Array.of(0x04, 0x03, 7, 8)],
      ['another tag', Uint8Array.of(0x05, 0x00)],
    ] as const) {
      expect(() => readElement(bytes, 0, 0x04, 'x'), what).toThrow(TypeError)
    }
    expect(() => fromPem('-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n')).toThrow(TypeError)
    expect(fromPem('-----BEGIN PUBLIC KEY-----\nAAEC\n-----END PUBLIC KEY-----\n').der).toEqual(Uint8Array.of(0, 1, 2))
  })

  it('a publicKey that is neither bytes nor PEM text is refused naming what it is (a KeyObject, a CryptoKey, an ArrayBuffer)', async () => {
    const keyObject = createPublicKey(KMS_RSA_KAT.publicKeyPem)
    const cryptoKey = await crypto.subtle.importKey('spki', keyObject.export({ type: 'spki', format: 'der' }), { name: 'RSA-OAEP', hash: 'SHA-256' }, true, ['encrypt'])
    for (const [publicKey, kind] of [[keyObject, 'KeyObject'], [cryptoKey, 'CryptoKey'], [new ArrayBuffer(8), 'ArrayBuffer'], [42, 'Number'], [null, 'Null']] as const) {
      const make = () => new KmsRsaKeyring({ keyId: KMS_RSA_KAT.keyArn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey: publicKey as never })
      expect(make, kind).toThrow(new ConfigurationError(`KmsRsaKeyring publicKey must be DER bytes or a PEM string (as KMS GetPublicKey returns it); got ${kind}.`))
    }
  })

  it('reads a PEM block after a megabyte of BEGIN lines, and refuses one with no END line, in linear time', () => {
    // Matching any character up to the END line read the body from the first BEGIN line, across the others (not
    // base64), and with no END line took time quadratic in the BEGIN lines: about 25 s for these.
    const begins = '-----BEGIN PUBLIC KEY-----\n'.repeat(40_000)
    expect(fromPem(`${begins}-----BEGIN PUBLIC KEY-----\nAAEC\n-----END PUBLIC KEY-----\n`).der).toEqual(Uint8Array.of(0, 1, 2))
    expect(() => fromPem(`${begins}AAEC\n-----END PRIVATE KEY-----\n`)).toThrow(TypeError)
    expect(() => new KmsRsaKeyring({ keyId: KMS_RSA_KAT.keyArn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey: begins })).toThrow(ConfigurationError)
  })

  it.each(SIGNING_SUITES.map((suite) => [hex16(suite), suite] as const))('refuses signing suite %s on encrypt and on decrypt', async (_name, suiteId) => {
    const keyring = katKeyring()
    const policy = suiteId === 0x0578 ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT'
    const error = await rejectionOf(encrypt(keyring, 'x', { algorithmSuite: suiteId, commitmentPolicy: policy }))
    expect(error).toBeInstanceOf(ConfigurationError)
    expect((error as Error).message).toBe(
      `KmsRsaKeyring cannot be used with signing suite ${hex16(suiteId)}: anyone holding the public key can write a message, so a ` +
        'signature would prove nothing. Use algorithmSuite 0x0478 (or 0x0178 under FORBID_ENCRYPT_ALLOW_DECRYPT).',
    )
    const materials: DecryptionMaterials = { suite: suiteFromOption(suiteId), encryptionContext: {} }
    expect(await codeOf(keyring.onDecrypt(materials, [], nodeBackend))).toBe('INVALID_CONFIGURATION')
    const withClient = katKeyring('RSAES_OAEP_SHA_256', katKms().client)
    expect(await codeOf(withClient.onDecrypt(materials, [], nodeBackend))).toBe('INVALID_CONFIGURATION')
  })

  it('encrypt picks the unsigned suite of the policy when given this keyring (or a MultiKeyring holding it) and no suite', async () => {
    const keyring = katKeyring()
    const decryptingKeyring = katKeyring('RSAES_OAEP_SHA_256', katKms().client)
    expect((await encrypt(keyring, 'x')).header.algorithmSuiteId).toBe(0x0478)
    expect((await encrypt(keyring, 'x', { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })).header.algorithmSuiteId).toBe(0x0478)
    const legacy = await encrypt(keyring, 'x', { commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' })
    expect(legacy.header.algorithmSuiteId).toBe(0x0178)
    expect(text((await decrypt(decryptingKeyring, legacy.ciphertext, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })).plaintext)).toBe('x')
    const aes = new RawAesKeyring({ keyNamespace: 'app', keyName: 'k', wrappingKey: new Uint8Array(32).fill(3) })
    expect((await encrypt(new MultiKeyring({ generator: aes, children: [keyring] }), 'x')).header.algorithmSuiteId).toBe(0x0478)
    expect((await encrypt(new MultiKeyring({ generator: keyring, children: [aes] }), 'x')).header.algorithmSuiteId).toBe(0x0478)
    // Without it, the default stays 0x0578.
    expect((await encrypt(new MultiKeyring({ generator: aes }), 'x')).header.algorithmSuiteId).toBe(0x0578)
    expect(await rejectionOf(encrypt(keyring, 'x', { algorithmSuite: 0x0578 }))).toBeInstanceOf(ConfigurationError)
  })

  it('cannot encrypt without a public key, and refuses materials that already hold a data key on decrypt', async () => {
    const decryptOnly = new KmsRsaKeyring({ keyId: arn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', kmsClient: katKms().client })
    expect(await codeOf(encrypt(decryptOnly, 'x', { algorithmSuite: 0x0478 }))).toBe('INVALID_CONFIGURATION')
    const withKey: DecryptionMaterials = { ...decryptionMaterials({}), plaintextDataKey: new Uint8Array(32) }
    expect(await codeOf(katKeyring('RSAES_OAEP_SHA_256', katKms().client).onDecrypt(withKey, [], nodeBackend))).toBe('KEYRING_FAILURE')
  })

  it('cannot decrypt without a KMS client (spec: OnDecrypt MUST fail), and says what to pass', async () => {
    const encryptOnly = katKeyring()
    const error = await rejectionOf(encryptOnly.onDecrypt(decryptionMaterials({}), [], nodeBackend))
    expect(error).toBeInstanceOf(ConfigurationError)
    expect((error as Error).message).toMatch(/kmsClient|clientSupplier/)
    const { ciphertext } = await encrypt(encryptOnly, 'x')
    const failed = (await rejectionOf(decrypt(encryptOnly, ciphertext))) as NoDecryptableKeyError
    expect(failed.code).toBe('NO_DECRYPTABLE_KEY')
    expect(failed.failures[0]?.error).toBeInstanceOf(ConfigurationError)
  })

  it("zeroes KMS's answer (the context digest and the data key) once the data key is taken, or refused for another context", async () => {
    const answers: Uint8Array[] = []
    const kms = katKms((response) => {
      answers.push(response.Plaintext as Uint8Array)
      return response
    })
    const keyring = katKeyring('RSAES_OAEP_SHA_256', kms.client)
    const edk: EncryptedDataKey = { providerId: 'aws-kms-rsa', providerInfo: utf8(arn), ciphertext: KMS_RSA_KAT.edkCiphertext.RSAES_OAEP_SHA_256 }
    const { plaintextDataKey } = await keyring.onDecrypt(decryptionMaterials(KMS_RSA_KAT.encryptionContext), [edk], nodeBackend)
    expect(plaintextDataKey?.some((byte) => byte !== 0)).toBe(true)
    expect(await codeOf(keyring.onDecrypt(decryptionMaterials({ other: 'context' }), [edk], nodeBackend))).toBe('NO_DECRYPTABLE_KEY')
    expect(answers).toHaveLength(2)
    expect(answers.map((answer) => answer.length > 0 && isAllZero(answer))).toEqual([true, true])
  })

  it('malformed EDKs: provider info that is not a key ARN fails the decrypt; not-my-key is left alone', async () => {
    const kms = katKms()
    const keyring = katKeyring('RSAES_OAEP_SHA_256', kms.client)
    const materials = decryptionMaterials(KMS_RSA_KAT.encryptionContext)
    const edk = (providerInfo: Uint8Array, ciphertext: Uint8Array = KMS_RSA_KAT.edkCiphertext.RSAES_OAEP_SHA_256): EncryptedDataKey => ({
      providerId: 'aws-kms-rsa',
      providerInfo,
      ciphertext,
    })
    // Named by their place among all the message's data keys (here second, after another provider's).
    const foreign = { providerId: 'other', providerInfo: utf8('x'), ciphertext: new Uint8Array(1) }
    for (const [providerInfo, message] of [
      [utf8('not-an-arn'), 'Encrypted data key #2 is an "aws-kms-rsa" key, but its provider info "not-an-arn" is not a KMS key ARN.'],
      [utf8('arn:aws:kms:us-west-2:111122223333:alias/x'), 'Encrypted data key #2 is an "aws-kms-rsa" key, but its provider info "arn:aws:kms:us-west-2:111122223333:alias/x" is not a KMS key ARN.'],
      [Uint8Array.of(0xff, 0xfe), "The message's encrypted data key #2 provider info is not valid UTF-8."],
    ] as const) {
      const error = await rejectionOf(keyring.onDecrypt(materials, [foreign, edk(providerInfo)], nodeBackend))
      expect(error).toBeInstanceOf(MalformedMessageError)
      expect((error as Error).message).toBe(message)
    }
    // Another key, another provider ID: not this keyring's, so nothing happens and KMS is not called.
    const others = [edk(utf8(arn.replace('b3537ef1', 'c3537ef1'))), { ...edk(utf8(arn)), providerId: 'aws-kms' }]
    expect(await keyring.onDecrypt(materials, others, nodeBackend)).toBe(materials)
    expect(kms.calls).toHaveLength(0)
    // Garbage ciphertext: KMS refuses it; the failure is collected.
    const garbage = await rejectionOf(keyring.onDecrypt(materials, [edk(utf8(arn), new Uint8Array(256).fill(1))], nodeBackend))
    expect(garbage).toBeInstanceOf(NoDecryptableKeyError)
    expect(String(((garbage as NoDecryptableKeyError).failures[0]?.error as Error).message)).toMatch(/InvalidCiphertextException/)
    // A later good EDK still succeeds after a bad one.
    const recovered = await keyring.onDecrypt(materials, [edk(utf8(arn), new Uint8Array(256).fill(1)), edk(utf8(arn))], nodeBackend)
    expect(Buffer.from(recovered.plaintextDataKey as Uint8Array).equals(KMS_RSA_KAT.dataKey)).toBe(true)
  })

  it('a multi-Region key matches its replicas, and KMS is called with the configured ARN', async () => {
    const kms = katKms()
    const configured = 'arn:aws:kms:us-west-2:111122223333:key/mrk-1234abcd'
    const replica = 'arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd'
    const keyring = new KmsRsaKeyring({ keyId: configured, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', kmsClient: kms.client })
    const edk: EncryptedDataKey = { providerId: 'aws-kms-rsa', providerInfo: utf8(replica), ciphertext: KMS_RSA_KAT.edkCiphertext.RSAES_OAEP_SHA_256 }
    const result = await keyring.onDecrypt(decryptionMaterials(KMS_RSA_KAT.encryptionContext), [edk], nodeBackend)
    expect(Buffer.from(result.plaintextDataKey as Uint8Array).equals(KMS_RSA_KAT.dataKey)).toBe(true)
    expect(kms.calls[0]?.input.KeyId).toBe(configured)
  })

  it('refuses what KMS answers when it is not the requested key or not digest ‖ data key', async () => {
    const edk: EncryptedDataKey = { providerId: 'aws-kms-rsa', providerInfo: utf8(arn), ciphertext: KMS_RSA_KAT.edkCiphertext.RSAES_OAEP_SHA_256 }
    const materials = decryptionMaterials(KMS_RSA_KAT.encryptionContext)
    const handedOut: Uint8Array[] = []
    const other = arn.replace('b3537ef1', 'c3537ef1')
    const wrongLength = (count: string) => `KMS Decrypt with ${arn} returned ${count}; an aws-kms-rsa data key for this suite is 80 bytes (48-byte context digest and 32-byte key).`
    const answers: Array<[(response: { KeyId: unknown; Plaintext: unknown }) => unknown, string]> = [
      [(response) => ({ ...response, KeyId: other }), `KMS Decrypt answered for KeyId "${other}", not the requested ${arn}.`],
      [(response) => ({ ...response, KeyId: undefined }), `KMS Decrypt answered for KeyId undefined, not the requested ${arn}.`],
      [(response) => ({ ...response, Plaintext: (response.Plaintext as Uint8Array).subarray(0, 79) }), wrongLength('79 bytes')],
      [(response) => ({ ...response, Plaintext: (response.Plaintext as Uint8Array).subarray(48) }), wrongLength('32 bytes')],
      [(response) => ({ ...response, Plaintext: 'not bytes' }), wrongLength('no plaintext')],
      [(response) => ({ KeyId: response.KeyId }), wrongLength('no plaintext')],
      [() => undefined, `KMS Decrypt answered for KeyId undefined, not the requested ${arn}.`],
    ]
    for (const [answer, message] of answers) {
      const kms = katKms((response) => {
        const answered = answer(response) as { Plaintext?: unknown } | undefined
        if (answered?.Plaintext instanceof Uint8Array) handedOut.push(answered.Plaintext)
        return answered
      })
      const error = await rejectionOf(katKeyring('RSAES_OAEP_SHA_256', kms.client).onDecrypt(materials, [edk], nodeBackend))
      expect(error).toBeInstanceOf(NoDecryptableKeyError)
      const failure = (error as NoDecryptableKeyError).failures[0]?.error
      expect(failure).toBeInstanceOf(KeyringError)
      expect((failure as Error).message).toBe(message)
    }
    // Every plaintext KMS handed back for a refused answer was zeroed.
    expect(handedOut).toHaveLength(4)
    for (const plaintext of handedOut) expect(isAllZero(plaintext)).toBe(true)
  })

  it('shows no key material in JSON or inspect output', () => {
    const keyring = katKeyring()
    expect(JSON.stringify(keyring)).toBe(JSON.stringify({ type: 'KmsRsaKeyring', keyId: arn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))
    expect(inspect(keyring)).toBe(`KmsRsaKeyring ${arn} RSAES_OAEP_SHA_256`)
  })
})

describe('createKmsPublicKeyCache', () => {
  let kms: KmsEmulator
  let clientSupplier: ReturnType<typeof defaultKmsClientSupplier>
  beforeAll(async () => {
    kms = await startKmsEmulator({ regions: ['us-east-1'] })
    clientSupplier = defaultKmsClientSupplier({
      clientConfig: { endpoint: kms.endpoint, credentials: { accessKeyId: 'AKIDCACHE', secretAccessKey: 'cache' }, maxAttempts: 1 },
    })
  })
  afterAll(async () => {
    await kms.close()
  })

  it('fetches once, shares concurrent requests, hands out copies, and refetches after maxAge', async () => {
    const key = kms.createKey({ region: 'us-east-1', keySpec: 'RSA_3072' })
    const cache = createKmsPublicKeyCache({ clientSupplier })
    const [first, second] = await Promise.all([cache.get(key.arn), cache.get(key.arn)])
    expect(kms.callCount({ operation: 'GetPublicKey', keyArn: key.arn })).toBe(1)
    expect(first?.keyId).toBe(key.arn)
    expect(first?.keySpec).toBe('RSA_3072')
    expect(first?.encryptionAlgorithms).toEqual(['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'])
    expect(first?.pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n/)
    first?.publicKey.fill(0)
    expect(second?.publicKey.some((byte) => byte !== 0)).toBe(true)
    expect((await cache.get(key.arn)).publicKey.some((byte) => byte !== 0)).toBe(true)
    expect(kms.callCount({ operation: 'GetPublicKey', keyArn: key.arn })).toBe(1)
    cache.clear(key.arn)
    await cache.get(key.arn)
    expect(kms.callCount({ operation: 'GetPublicKey', keyArn: key.arn })).toBe(2)
    const uncached = createKmsPublicKeyCache({ clientSupplier, maxAge: 0 })
    await uncached.get(key.arn)
    await uncached.get(key.arn)
    expect(kms.callCount({ operation: 'GetPublicKey', keyArn: key.arn })).toBe(4)
    // A client answering with a Node Buffer (whose slice() is a view): still a copy for each caller.
    const buffered = createKmsPublicKeyCache({ clientSupplier: bufferAnswering(clientSupplier) })
    const [mine, theirs] = [await buffered.get(key.arn), await buffered.get(key.arn)]
    mine.publicKey.fill(0)
    expect(theirs.publicKey.some((byte) => byte !== 0)).toBe(true)
    expect((await buffered.get(key.arn)).publicKey.some((byte) => byte !== 0)).toBe(true)
    // The PEM and the DER are the same key, and a keyring takes either.
    const keyring = new KmsRsaKeyring({ keyId: key.arn, encryptionAlgorithm: 'RSAES_OAEP_SHA_1', publicKey: (await cache.get(key.arn)).pem })
    const { ciphertext } = await encrypt(keyring, 'cached', { algorithmSuite: 0x0478 })
    const reader = new KmsRsaKeyring({ keyId: key.arn, encryptionAlgorithm: 'RSAES_OAEP_SHA_1', clientSupplier })
    expect(text((await decrypt(reader, ciphertext)).plaintext)).toBe('cached')
  })

  it('maxAge is measured on a monotonic clock: a wall clock set back (an NTP step) does not keep a key longer', async () => {
    const key = kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' })
    const cache = createKmsPublicKeyCache({ clientSupplier, maxAge: 50 })
    await cache.get(key.arn)
    const setBack = Date.now() - 3_600_000
    const wallClock = vi.spyOn(Date, 'now').mockImplementation(() => setBack)
    try {
      await new Promise((resolve) => setTimeout(resolve, 80))
      await cache.get(key.arn)
    } finally {
      wallClock.mockRestore()
    }
    expect(kms.callCount({ operation: 'GetPublicKey', keyArn: key.arn })).toBe(2)
    // clear() takes an ARN or nothing.
    expect(() => cache.clear(5 as never)).toThrow(ConfigurationError)
  })

  it('keeps the maxEntries keys asked for last (a hit counts), and clear() without an ARN forgets them all', async () => {
    const [a, b, c] = [0, 1, 2].map(() => kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' }).arn) as [string, string, string]
    const fetches = (arn: string) => kms.callCount({ operation: 'GetPublicKey', keyArn: arn })
    const cache = createKmsPublicKeyCache({ clientSupplier, maxEntries: 2 })
    for (const arn of [a, b, a, c]) await cache.get(arn) // the second a is a hit, so c pushes out b, the one asked for least recently
    expect([fetches(a), fetches(b), fetches(c)]).toEqual([1, 1, 1])
    await cache.get(a)
    await cache.get(c)
    expect([fetches(a), fetches(c)]).toEqual([1, 1])
    await cache.get(b)
    expect(fetches(b)).toBe(2)
    cache.clear()
    for (const arn of [a, b, c]) await cache.get(arn)
    expect([fetches(a), fetches(b), fetches(c)]).toEqual([2, 3, 2])
  })

  it('a key fetched again once expired counts as asked for last', async () => {
    const [a, b, c] = [0, 1, 2].map(() => kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' }).arn) as [string, string, string]
    const fetches = (arn: string) => kms.callCount({ operation: 'GetPublicKey', keyArn: arn })
    const cache = createKmsPublicKeyCache({ clientSupplier, maxEntries: 2, maxAge: 300 })
    await cache.get(a)
    await cache.get(b)
    await new Promise((resolve) => setTimeout(resolve, 350)) // both expired
    await cache.get(a) // fetched again: now the one asked for last
    await cache.get(c) // pushes out b, not a
    await cache.get(a)
    expect([fetches(a), fetches(b), fetches(c)]).toEqual([2, 1, 1])
  })

  it('by default keeps 100 keys, each for an hour, as the README says', async () => {
    const { publicKey } = await createKmsPublicKeyCache({ clientSupplier }).get(kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' }).arn)
    // A client that answers for any key with that key's material, so that 101 keys cost no key generation.
    const asked: string[] = []
    const anyKey = {
      send: async (command: { input: { KeyId: string } }) => {
        asked.push(command.input.KeyId)
        return { KeyId: command.input.KeyId, PublicKey: publicKey, KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT', EncryptionAlgorithms: ['RSAES_OAEP_SHA_256'] }
      },
    }
    const arns = Array.from({ length: 101 }, (_, index) => `arn:aws:kms:us-east-1:${'1'.repeat(12)}:key/${String(index).padStart(8, '0')}-0000-4000-8000-000000000000`)
    const cache = createKmsPublicKeyCache({ clientSupplier: () => anyKey as never })
    // arns[0] is fetched between these two readings of the clock the cache reads.
    const before = performance.now()
    await cache.get(arns[0]!)
    const after = performance.now()
    for (const arn of arns.slice(1, 100)) await cache.get(arn)
    await cache.get(arns[0]!) // all 100 are held
    expect(asked).toHaveLength(100)
    await cache.get(arns[100]!) // the 101st pushes out the one asked for least recently: arns[1]
    await cache.get(arns[0]!)
    expect(asked).toHaveLength(101)
    await cache.get(arns[1]!)
    expect(asked).toHaveLength(102)
    const clock = vi.spyOn(performance, 'now')
    try {
      clock.mockReturnValue(before + 3_600_000 - 1)
      await cache.get(arns[0]!)
      expect(asked).toHaveLength(102)
      clock.mockReturnValue(after + 3_600_000 + 1)
      await cache.get(arns[0]!)
      expect(asked).toHaveLength(103)
    } finally {
      clock.mockRestore()
    }
  })

  it('resolves an alias to its key ARN', async () => {
    const key = kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' })
    kms.createAlias('alias/browser-uploads', key.arn)
    const cache = createKmsPublicKeyCache({ clientSupplier })
    expect((await cache.get(key.arn.replace(/key\/.*/, 'alias/browser-uploads'))).keyId).toBe(key.arn)
  })

  it('looks up an alias name or key id in the default Region, as KMS reads them', async () => {
    const key = kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' })
    kms.createAlias('alias/default-region-uploads', key.arn)
    const inDefaultRegion = defaultKmsClientSupplier({
      clientConfig: { endpoint: kms.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'AKIDCACHE', secretAccessKey: 'cache' }, maxAttempts: 1 },
    })
    const asked: string[] = []
    const cache = createKmsPublicKeyCache({ clientSupplier: (region) => (asked.push(region), inDefaultRegion(region)) })
    expect((await cache.get('alias/default-region-uploads')).keyId).toBe(key.arn)
    expect((await cache.get(key.keyId)).keyId).toBe(key.arn)
    expect(asked).toEqual(['', ''])
  })

  it('does not cache failures, and refuses symmetric keys, bad ARNs and bad options', async () => {
    const key = kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' })
    const cache = createKmsPublicKeyCache({ clientSupplier })
    kms.faults.deny(key.arn, { operation: 'GetPublicKey' })
    const denied = await rejectionOf(cache.get(key.arn))
    expect(denied).toBeInstanceOf(KeyringError)
    expect((denied as Error).message).toMatch(/AccessDeniedException/)
    kms.faults.clear()
    expect((await cache.get(key.arn)).keyId).toBe(key.arn)
    const symmetric = kms.createKey({ region: 'us-east-1' })
    expect(await rejectionOf(cache.get(symmetric.arn))).toBeInstanceOf(KeyringError)
    for (const bad of ['', 'alias/', 'arn:aws:kms:us-east-1:key/x', 'my key', 42]) expect(await rejectionOf(cache.get(bad as string))).toBeInstanceOf(ConfigurationError)
    const refusals: Array<[object, string]> = [
      [{ maxAge: -1 }, 'createKmsPublicKeyCache maxAge must be a non-negative number of milliseconds; got -1.'],
      [{ maxAge: Number.NaN }, 'createKmsPublicKeyCache maxAge must be a non-negative number of milliseconds; got NaN.'],
      [{ maxAge: Number.POSITIVE_INFINITY }, 'createKmsPublicKeyCache maxAge must be a non-negative number of milliseconds; got Infinity.'],
      [{ maxAge: '60000' }, 'createKmsPublicKeyCache maxAge must be a non-negative number of milliseconds; got "60000".'],
      [{ maxEntries: 0 }, 'createKmsPublicKeyCache maxEntries must be a positive integer; got 0.'],
      [{ maxEntries: 1.5 }, 'createKmsPublicKeyCache maxEntries must be a positive integer; got 1.5.'],
      [{ clientSupplier: 'x' }, 'createKmsPublicKeyCache clientSupplier must be a function from a Region name to a KMS client.'],
    ]
    for (const [options, message] of refusals) expect(() => createKmsPublicKeyCache(options as never)).toThrow(new ConfigurationError(message))
    expect(() => createKmsPublicKeyCache({ grantTokens: 'x' } as never)).toThrow(ConfigurationError)
  })

  it('maxEntries 1 keeps one key; maxAge 0 keeps none, even within one tick of the clock', async () => {
    const [a, b] = [0, 1].map(() => kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' }).arn) as [string, string]
    const fetches = (arn: string) => kms.callCount({ operation: 'GetPublicKey', keyArn: arn })
    const single = createKmsPublicKeyCache({ clientSupplier, maxEntries: 1 })
    for (const arn of [a, a, b, b, a]) await single.get(arn)
    expect([fetches(a), fetches(b)]).toEqual([2, 1])
    const now = performance.now()
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => now)
    try {
      const uncached = createKmsPublicKeyCache({ clientSupplier, maxAge: 0 })
      await uncached.get(b)
      await uncached.get(b)
    } finally {
      clock.mockRestore()
    }
    expect(fetches(b)).toBe(3)
  })

  it('a failed fetch does not take out the fetch that replaced it', async () => {
    const key = 'arn:aws:kms:us-east-1:111122223333:key/abc'
    const { generateKeyPairSync } = await import('node:crypto')
    const der = new Uint8Array(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' }))
    const answer = { KeyId: key, PublicKey: der, KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT', EncryptionAlgorithms: ['RSAES_OAEP_SHA_256'] }
    const pending: Array<{ resolve: (value: unknown) => void; reject: (error: Error) => void }> = []
    const cache = createKmsPublicKeyCache({ clientSupplier: () => ({ send: () => new Promise((resolve, reject) => pending.push({ resolve, reject })) }) })
    const first = cache.get(key)
    cache.clear(key)
    const second = cache.get(key)
    await vi.waitFor(() => expect(pending).toHaveLength(2))
    pending[0]!.reject(new Error('throttled'))
    expect(await rejectionOf(first)).toMatchObject({ message: `KMS GetPublicKey of ${key} failed: Error: throttled.` })
    pending[1]!.resolve(answer)
    expect((await second).keyId).toBe(key)
    expect((await cache.get(key)).keyId).toBe(key)
    expect(pending).toHaveLength(2)
  })

  it('refuses answers that are not an RSA encryption key of at least 2048 bits', async () => {
    const { generateKeyPairSync } = await import('node:crypto')
    const good = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'der' })
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'der' })
    const arnOf = 'arn:aws:kms:us-east-1:111122223333:key/abc'
    const base = { KeyId: arnOf, PublicKey: new Uint8Array(good), KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT', EncryptionAlgorithms: ['RSAES_OAEP_SHA_256'] }
    const cacheAnswering = (response: object) => createKmsPublicKeyCache({ clientSupplier: () => ({ send: async () => response }) })
    expect((await cacheAnswering(base).get(arnOf)).encryptionAlgorithms).toEqual(['RSAES_OAEP_SHA_256'])
    // Asked by key id: the answer must be for that key; by alias, for any key.
    expect((await cacheAnswering(base).get('abc')).keyId).toBe(arnOf)
    expect((await cacheAnswering(base).get('alias/any')).keyId).toBe(arnOf)
    expect(await rejectionOf(cacheAnswering(base).get('other'))).toMatchObject({ code: 'KEYRING_FAILURE', message: `KMS GetPublicKey of other answered for another key, ${arnOf}.` })
    const noAlgorithm = 'lists no RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1 encryption algorithm'
    const bad: Array<[object | undefined, string]> = [
      [{ ...base, KeyId: 'arn:aws:kms:us-east-1:111122223333:key/other' }, 'answered for another key, arn:aws:kms:us-east-1:111122223333:key/other'],
      [{ ...base, KeyId: 'arn:aws:kms:us-east-1:111122223333:alias/x' }, 'answered with KeyId "arn:aws:kms:us-east-1:111122223333:alias/x", which is not a key ARN'],
      [{ ...base, KeyId: 'abc' }, 'answered with KeyId "abc", which is not a key ARN'],
      [{ ...base, KeyId: undefined }, 'answered with KeyId undefined, which is not a key ARN'],
      [undefined, 'answered with KeyId undefined, which is not a key ARN'],
      [{ ...base, KeyUsage: 'SIGN_VERIFY' }, 'says the key\'s usage is "SIGN_VERIFY"; encrypting needs ENCRYPT_DECRYPT'],
      [{ ...base, KeySpec: 'ECC_NIST_P256' }, 'says the key spec is "ECC_NIST_P256", not an RSA key'],
      [{ ...base, KeySpec: undefined }, 'says the key spec is undefined, not an RSA key'],
      [{ ...base, EncryptionAlgorithms: ['RSAES_PKCS1_V1_5'] }, noAlgorithm],
      // A string is no list, even one that names an algorithm.
      [{ ...base, EncryptionAlgorithms: 'RSAES_OAEP_SHA_256' }, noAlgorithm],
      [{ ...base, EncryptionAlgorithms: undefined }, noAlgorithm],
      [{ ...base, PublicKey: undefined }, 'returned no public key'],
      [{ ...base, PublicKey: Buffer.from(good).toString('base64') }, 'returned no public key'],
      [{ ...base, PublicKey: new Uint8Array([1, 2, 3]) }, 'returned a public key that is not RSA SPKI: SubjectPublicKeyInfo: expected DER tag 0x30'],
      [{ ...base, PublicKey: new Uint8Array(small) }, 'returned a 1024-bit key; KmsRsaKeyring needs at least 2048 bits'],
    ]
    for (const [response, problem] of bad) {
      const error = await rejectionOf(cacheAnswering(response as object).get(arnOf))
      expect(error, JSON.stringify(response)).toBeInstanceOf(KeyringError)
      expect((error as Error).message, JSON.stringify(response)).toBe(`KMS GetPublicKey of ${arnOf} ${problem}.`)
    }
  })
})
