import { readFileSync } from 'node:fs'
import { Agent as HttpAgent } from 'node:http'
import { createServer, Socket as NetSocket } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { inspect } from 'node:util'
import { KMSClient, UpdateAliasCommand } from '@aws-sdk/client-kms'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { nodeBackend } from '../src/backend/node.js'
import {
  buildKmsMrkDiscoveryMultiKeyring,
  buildKmsMrkMultiKeyring,
  ConfigurationError,
  decrypt,
  DefaultMaterialsManager,
  defaultKmsClientSupplier,
  encrypt,
  KeyringError,
  KmsDiscoveryKeyring,
  KmsKeyring,
  KmsMrkDiscoveryKeyring,
  KmsMrkKeyring,
  MalformedMessageError,
  MultiKeyring,
  NoDecryptableKeyError,
  type CommitmentPolicy,
  type DecryptionMaterials,
  type EncryptedDataKey,
  type EnvelopeError,
  type Keyring,
  type KmsClientSupplier,
} from '../src/index.js'
import { DEFAULT_CONNECTION_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, LIBRARY_VERSION } from '../src/keyrings/kms-client.js'
import { suiteFromOption } from '../src/suites.js'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'
import { isAllZero } from '../src/format/bytes.js'
import { ACCOUNT, FakeKms } from './helpers/fake-kms.js'
import { aesKeyring, bufferAnswering, nodeBufferPool, recordingDataKeys, rejectionOf, thrownBy, unhandledRejectionsDuring, withEmptyStandIn, withFailingImport } from './helpers/fixtures.js'

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)
const utf8 = (value: string): Uint8Array => new TextEncoder().encode(value)
const suite = suiteFromOption(0x0478)
const context = { tenant: 'a' }

function decryptionMaterials(encryptionContext: Record<string, string> = context): DecryptionMaterials {
  return { suite, encryptionContext }
}

function kmsEdk(providerInfo: string | Uint8Array, ciphertext = new Uint8Array([1, 2, 3])): EncryptedDataKey {
  return { providerId: 'aws-kms', providerInfo: typeof providerInfo === 'string' ? utf8(providerInfo) : providerInfo, ciphertext }
}

/** The failures of a NoDecryptableKeyError, checking its type on the way. */
function failuresOf(error: unknown): ReadonlyArray<{ keyring: string; error: unknown }> {
  expect(error).toBeInstanceOf(NoDecryptableKeyError)
  return (error as NoDecryptableKeyError).failures
}

describe('KMS keyring configuration', () => {
  const fake = new FakeKms()
  const key = fake.createKey('us-east-1')
  const supplier = fake.supplier
  it.each([
    [
      'KmsKeyring without keys',
      () => new KmsKeyring({ clientSupplier: supplier }),
      'KmsKeyring needs a generatorKeyId or at least one of keyIds; to decrypt with any key, use KmsDiscoveryKeyring.',
    ],
    [
      'KmsKeyring without options',
      () => new KmsKeyring(undefined as never),
      'KmsKeyring needs a generatorKeyId or at least one of keyIds; to decrypt with any key, use KmsDiscoveryKeyring.',
    ],
    [
      'an empty alias name',
      () => new KmsKeyring({ generatorKeyId: 'alias/' }),
      'KmsKeyring generatorKeyId "alias/" names no alias.',
    ],
    [
      'an invalid ARN',
      () => new KmsKeyring({ generatorKeyId: 'arn:aws:kms:us-east-1:key/abc' }),
      'KmsKeyring generatorKeyId "arn:aws:kms:us-east-1:key/abc" is not a valid AWS KMS ARN: it has 4 ":" separators; a KMS ARN has 5 (arn:partition:kms:region:account:key/id).',
    ],
    [
      'an empty key id',
      () => new KmsKeyring({ generatorKeyId: '' }),
      'KmsKeyring generatorKeyId must be a non-empty string; got an empty string.',
    ],
    [
      'a key id with spaces',
      () => new KmsKeyring({ generatorKeyId: 'my key' }),
      'KmsKeyring generatorKeyId "my key" is neither a KMS ARN, an alias (alias/…) nor a key id.',
    ],
    [
      'keyIds not an array',
      () => new KmsKeyring({ keyIds: key as never }),
      'KmsKeyring keyIds must be an array of key identifiers (key ARNs).',
    ],
    [
      'keyIds with a number',
      () => new KmsKeyring({ keyIds: [42 as never] }),
      'KmsKeyring keyIds[0] must be a non-empty string; got number.',
    ],
    [
      'grantTokens not an array',
      () => new KmsKeyring({ generatorKeyId: key, grantTokens: 'token' as never, clientSupplier: supplier }),
      'KmsKeyring grantTokens must be an array of non-empty strings.',
    ],
    [
      'an empty grant token',
      () => new KmsKeyring({ generatorKeyId: key, grantTokens: [''], clientSupplier: supplier }),
      'KmsKeyring grantTokens must be an array of non-empty strings.',
    ],
    [
      'clientSupplier not a function',
      () => new KmsKeyring({ generatorKeyId: key, clientSupplier: {} as never }),
      'KmsKeyring clientSupplier must be a function from a Region name to a KMS client.',
    ],
    [
      'clientSupplier returning no client',
      () => new KmsKeyring({ generatorKeyId: key, clientSupplier: () => ({}) as never }),
      'KmsKeyring clientSupplier returned no KMS client (an object with send) for Region us-east-1.',
    ],
    [
      'discovery filter with an empty partition',
      () => new KmsDiscoveryKeyring({ discoveryFilter: { partition: '', accountIds: [ACCOUNT] } }),
      'KmsDiscoveryKeyring discoveryFilter.partition must be a non-empty string such as "aws".',
    ],
    [
      'discovery filter without accounts',
      () => new KmsDiscoveryKeyring({ discoveryFilter: { partition: 'aws', accountIds: [] } }),
      'KmsDiscoveryKeyring discoveryFilter.accountIds must be a non-empty array of account IDs.',
    ],
    [
      'discovery filter with a numeric account',
      () => new KmsDiscoveryKeyring({ discoveryFilter: { partition: 'aws', accountIds: [1 as never] } }),
      'KmsDiscoveryKeyring discoveryFilter.accountIds must be a non-empty array of account IDs.',
    ],
    [
      'discovery filter with an account ID that is not 12 digits (a typo: it could match no key)',
      () => new KmsDiscoveryKeyring({ discoveryFilter: { partition: 'aws', accountIds: [ACCOUNT.slice(1)] } }),
      'KmsDiscoveryKeyring discoveryFilter.accountIds holds "11122223333", which is no AWS account ID (12 digits).',
    ],
    [
      'MRK discovery filter with an account ID holding a space',
      () => new KmsMrkDiscoveryKeyring({ region: 'us-east-1', discoveryFilter: { partition: 'aws', accountIds: [`${ACCOUNT} `] } }),
      'KmsMrkDiscoveryKeyring discoveryFilter.accountIds holds "111122223333 ", which is no AWS account ID (12 digits).',
    ],
    [
      'discovery filter that is no object',
      () => new KmsDiscoveryKeyring({ discoveryFilter: 'aws' as never }),
      'KmsDiscoveryKeyring discoveryFilter must be an object { partition, accountIds }; got string.',
    ],
    [
      'discovery filter with an empty account ID',
      () => new KmsDiscoveryKeyring({ discoveryFilter: { partition: 'aws', accountIds: [''] } }),
      'KmsDiscoveryKeyring discoveryFilter.accountIds must be a non-empty array of account IDs.',
    ],
    [
      'discovery filter that is null',
      () => new KmsDiscoveryKeyring({ discoveryFilter: null as never }),
      'KmsDiscoveryKeyring discoveryFilter must be an object { partition, accountIds }; got null.',
    ],
    [
      'discovery keyring with an empty Region',
      () => new KmsDiscoveryKeyring({ region: '' }),
      'KmsDiscoveryKeyring region must be a Region name (lowercase letters, digits and hyphens) when given; got "".',
    ],
    [
      'KmsMrkKeyring without keyId',
      () => new KmsMrkKeyring({} as never),
      'KmsMrkKeyring keyId must be a non-empty string; got undefined.',
    ],
    [
      'KmsMrkDiscoveryKeyring without region',
      () => new KmsMrkDiscoveryKeyring({} as never),
      'KmsMrkDiscoveryKeyring needs region: the Region whose KMS it calls, a Region name (lowercase letters, digits and hyphens); got undefined.',
    ],
    [
      'MRK multi-keyring without keys',
      () => buildKmsMrkMultiKeyring({}),
      'buildKmsMrkMultiKeyring needs a generator or at least one of keyIds.',
    ],
    [
      'MRK multi-keyring with an invalid child',
      () => buildKmsMrkMultiKeyring({ generator: key, keyIds: ['arn:aws:kms:x'], clientSupplier: supplier }),
      'buildKmsMrkMultiKeyring keyIds[0] "arn:aws:kms:x" is not a valid AWS KMS ARN: it has 3 ":" separators; a KMS ARN has 5 (arn:partition:kms:region:account:key/id).',
    ],
    [
      'MRK multi-keyring with an invalid generator',
      () => buildKmsMrkMultiKeyring({ generator: 'arn:aws:kms:x', keyIds: [key], clientSupplier: supplier }),
      'buildKmsMrkMultiKeyring generator "arn:aws:kms:x" is not a valid AWS KMS ARN: it has 3 ":" separators; a KMS ARN has 5 (arn:partition:kms:region:account:key/id).',
    ],
    [
      'MRK multi-keyring with keyIds not an array',
      () => buildKmsMrkMultiKeyring({ generator: key, keyIds: key as never, clientSupplier: supplier }),
      'buildKmsMrkMultiKeyring keyIds must be an array of key ARNs.',
    ],
    [
      'MRK discovery multi-keyring without Regions',
      () => buildKmsMrkDiscoveryMultiKeyring({ regions: [] }),
      'buildKmsMrkDiscoveryMultiKeyring regions must be a non-empty array of Region names.',
    ],
    [
      'MRK discovery multi-keyring with an empty Region',
      () => buildKmsMrkDiscoveryMultiKeyring({ regions: ['us-east-1', ''] }),
      'buildKmsMrkDiscoveryMultiKeyring regions must be a non-empty array of Region names.',
    ],
    [
      'MRK discovery multi-keyring with Regions as a string',
      () => buildKmsMrkDiscoveryMultiKeyring({ regions: 'us-east-1' as never }),
      'buildKmsMrkDiscoveryMultiKeyring regions must be a non-empty array of Region names.',
    ],
    [
      'default supplier with allow not an array',
      () => defaultKmsClientSupplier({ regions: { allow: 'us-east-1' as never } }),
      'defaultKmsClientSupplier regions.allow must be an array of Region names.',
    ],
    [
      'default supplier with an empty denied Region',
      () => defaultKmsClientSupplier({ regions: { deny: [''] } }),
      'defaultKmsClientSupplier regions.deny must be an array of Region names.',
    ],
    [
      'default supplier with an empty allow list (no Region could be called)',
      () => defaultKmsClientSupplier({ regions: { allow: [] } }),
      'defaultKmsClientSupplier regions allow no Region: regions.allow is empty.',
    ],
    [
      'default supplier whose deny list takes out every allowed Region',
      () => defaultKmsClientSupplier({ regions: { allow: ['us-east-1'], deny: ['us-east-1'] } }),
      'defaultKmsClientSupplier regions allow no Region: regions.deny takes out every Region regions.allow names.',
    ],
    [
      'default supplier with regions null',
      () => defaultKmsClientSupplier({ regions: null as never }),
      'defaultKmsClientSupplier regions must be an object with allow and/or deny lists.',
    ],
    [
      'default supplier with clientConfig not an object',
      () => defaultKmsClientSupplier({ clientConfig: 'x' as never }),
      'defaultKmsClientSupplier clientConfig must be a plain object of KMSClient options; got String.',
    ],
    [
      'default supplier with a numeric user agent',
      () => defaultKmsClientSupplier({ clientConfig: { customUserAgent: 5 } }),
      'defaultKmsClientSupplier clientConfig.customUserAgent must be a string or an array of [name, version] pairs.',
    ],
  ])('%s is a ConfigurationError that says what is wrong', (_name, build, message) => {
    expect(build).toThrow(ConfigurationError)
    expect(build).toThrow(expect.objectContaining({ code: 'INVALID_CONFIGURATION', message }))
  })

  it('a kmsClient option (KmsRsaKeyring\'s) is refused by the keyrings that take a clientSupplier, never silently ignored', () => {
    const kmsClient = supplier('us-east-1')
    const builds = [
      () => new KmsKeyring({ generatorKeyId: key, kmsClient } as never),
      () => new KmsDiscoveryKeyring({ kmsClient } as never),
      () => new KmsMrkKeyring({ keyId: key, kmsClient } as never),
      () => new KmsMrkDiscoveryKeyring({ region: 'us-east-1', kmsClient } as never),
      () => buildKmsMrkMultiKeyring({ generator: key, kmsClient } as never),
      () => buildKmsMrkDiscoveryMultiKeyring({ regions: ['us-east-1'], kmsClient } as never),
    ]
    for (const build of builds) {
      expect(build).toThrow(ConfigurationError)
      expect(build).toThrow(/clientSupplier: \(\) => kmsClient/)
    }
    // What the message suggests works.
    expect(new KmsKeyring({ generatorKeyId: key, clientSupplier: () => kmsClient })).toBeInstanceOf(KmsKeyring)
  })

  it.each([
    ['an Error', new Error('no credentials for this Region')],
    ['a string', 'no credentials'],
  ])('a clientSupplier that throws %s: ConfigurationError naming the Region, with the throw as cause', (_, thrown) => {
    const throwing = () => {
      throw thrown
    }
    for (const build of [
      () => new KmsKeyring({ generatorKeyId: key, clientSupplier: throwing }),
      () => new KmsMrkKeyring({ keyId: key, clientSupplier: throwing }),
      () => new KmsMrkDiscoveryKeyring({ region: 'us-east-1', clientSupplier: throwing }),
    ]) {
      const error = thrownBy(build)
      expect(error).toBeInstanceOf(ConfigurationError)
      expect((error as Error).message).toMatch(/clientSupplier failed for Region us-east-1/)
      expect((error as Error).cause).toBe(thrown)
    }
  })

  it('an async clientSupplier is refused, saying it must return the client itself; its rejection is not left unhandled', async () => {
    const unhandled = await unhandledRejectionsDuring(async () => {
      for (const supplier of [async () => new KMSClient({ region: 'us-east-1' }), async () => Promise.reject(new Error('no credentials'))]) {
        for (const build of [
          () => new KmsKeyring({ generatorKeyId: key, clientSupplier: supplier as never }),
          () => new KmsMrkKeyring({ keyId: key, clientSupplier: supplier as never }),
          () => new KmsMrkDiscoveryKeyring({ region: 'us-east-1', clientSupplier: supplier as never }),
        ]) {
          expect(thrownBy(build)).toMatchObject({
            code: 'INVALID_CONFIGURATION',
            message: expect.stringMatching(/clientSupplier returned a Promise for Region us-east-1: it must return the client itself, synchronously/),
          })
        }
      }
    })
    expect(unhandled).toEqual([])
  })

  it('an alias name or a bare key id takes the client the supplier gives for the default Region (called with "")', () => {
    const asked: string[] = []
    const recording: KmsClientSupplier = (region) => {
      asked.push(region)
      return supplier('us-east-1')
    }
    new KmsKeyring({ generatorKeyId: 'alias/app', keyIds: ['1234abcd-12ab-34cd-56ef-1234567890ab', key], clientSupplier: recording })
    new KmsMrkKeyring({ keyId: 'mrk-1234abcd12ab34cd56ef1234567890ab', clientSupplier: recording })
    buildKmsMrkMultiKeyring({ generator: 'alias/app', keyIds: [key], clientSupplier: recording })
    expect(asked).toEqual(['', '', 'us-east-1', '', '', 'us-east-1'])
    // A supplier with no client for it is told what was asked for.
    expect(() => new KmsKeyring({ generatorKeyId: 'alias/app', clientSupplier: (region) => ({ 'us-east-1': supplier('us-east-1') })[region] as never })).toThrow(
      /returned no KMS client .*for the default Region \(asked for alias\/app, which names no Region\)/,
    )
  })

  it('a bare multi-Region key id and an ARN of the same key are refused together', () => {
    const primary = fake.createKey('us-east-1', { multiRegion: true })
    const bare = primary.slice(primary.lastIndexOf('/') + 1)
    const build = () => buildKmsMrkMultiKeyring({ generator: bare, keyIds: [primary], clientSupplier: supplier })
    expect(build).toThrow(ConfigurationError)
    expect(build).toThrow(`same multi-Region key more than once, so which Region to call is ambiguous: ${bare}, ${primary}.`)
  })

  it('duplicate multi-Region keys are refused, naming every one', () => {
    const primary = fake.createKey('us-east-1', { multiRegion: true })
    const replica = fake.replicate(primary, 'eu-west-1')
    const build = () => buildKmsMrkMultiKeyring({ generator: primary, keyIds: [key, replica], clientSupplier: supplier })
    expect(build).toThrow(ConfigurationError)
    expect(build).toThrow(primary)
    expect(build).toThrow(replica)
    // The same keys without the repeat are fine.
    expect(buildKmsMrkMultiKeyring({ generator: primary, keyIds: [key], clientSupplier: supplier })).toBeInstanceOf(MultiKeyring)
  })

  it('the user agent version is the package version', () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    expect(LIBRARY_VERSION).toBe(version)
  })
})

describe('KmsKeyring against a fake KMS', () => {
  it.each([
    [0x0478, 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'],
    [0x0578, 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'],
    [0x0178, 'FORBID_ENCRYPT_ALLOW_DECRYPT'],
  ] as const)('suite %i: one GenerateDataKey per encrypt, one Decrypt per decrypt, requests as the spec builds them', async (algorithmSuite, commitmentPolicy: CommitmentPolicy) => {
    const fake = new FakeKms()
    const key = fake.createKey('us-east-1')
    const keyring = new KmsKeyring({ generatorKeyId: key, clientSupplier: fake.supplier, grantTokens: ['grant-1', 'grant-2'] })
    const { ciphertext, header } = await encrypt(keyring, 'hello', { algorithmSuite, commitmentPolicy, encryptionContext: context })
    expect(fake.calls.map((call) => `${call.operation}@${call.region}`)).toEqual(['GenerateDataKeyCommand@us-east-1'])
    const generate = fake.calls[0]!.input
    expect(generate.KeyId).toBe(key)
    expect(generate.NumberOfBytes).toBe(32)
    expect(generate.GrantTokens).toEqual(['grant-1', 'grant-2'])
    // The whole stored context, including the signing key for signing suites, is bound by KMS.
    expect(generate.EncryptionContext).toEqual(header.encryptionContext)
    expect('aws-crypto-public-key' in generate.EncryptionContext).toBe(algorithmSuite === 0x0578)
    expect(header.encryptedDataKeys).toHaveLength(1)
    expect(header.encryptedDataKeys[0]!.providerId).toBe('aws-kms')
    expect(text(header.encryptedDataKeys[0]!.providerInfo)).toBe(key)

    fake.calls.length = 0
    const { plaintext } = await decrypt(keyring, ciphertext, { commitmentPolicy })
    expect(text(plaintext)).toBe('hello')
    expect(fake.calls.map((call) => `${call.operation}@${call.region}`)).toEqual(['DecryptCommand@us-east-1'])
    const decryptInput = fake.calls[0]!.input
    expect(decryptInput.KeyId).toBe(key)
    expect(decryptInput.GrantTokens).toEqual(['grant-1', 'grant-2'])
    expect(decryptInput.EncryptionContext).toEqual(header.encryptionContext)
  })

  it('the generator makes the data key, each of keyIds wraps it in its own Region, and each key alone decrypts', async () => {
    const fake = new FakeKms()
    const generator = fake.createKey('us-east-1')
    const others = [fake.createKey('eu-west-1'), fake.createKey('us-west-2')]
    const keyring = new KmsKeyring({ generatorKeyId: generator, keyIds: others, clientSupplier: fake.supplier, grantTokens: ['g'] })
    const { ciphertext, header } = await encrypt(keyring, 'wrapped thrice', { encryptionContext: context })
    expect(fake.calls.map((call) => `${call.operation}@${call.region}`)).toEqual([
      'GenerateDataKeyCommand@us-east-1',
      'EncryptCommand@eu-west-1',
      'EncryptCommand@us-west-2',
    ])
    for (const call of fake.calls.slice(1)) {
      expect(call.input.GrantTokens).toEqual(['g'])
      expect(call.input.EncryptionContext).toEqual(header.encryptionContext)
    }
    expect(header.encryptedDataKeys.map((edk) => text(edk.providerInfo))).toEqual([generator, ...others])
    for (const key of [generator, ...others]) {
      fake.calls.length = 0
      const single = new KmsKeyring({ keyIds: [key], clientSupplier: fake.supplier })
      expect(text((await decrypt(single, ciphertext)).plaintext)).toBe('wrapped thrice')
      expect(fake.calls).toHaveLength(1)
      expect(fake.calls[0]!.input.KeyId).toBe(key)
    }
  })

  it('a data key made by an earlier keyring is only wrapped: Encrypt with the generator key, no GenerateDataKey', async () => {
    const fake = new FakeKms()
    const key = fake.createKey('us-east-1')
    const kms = new KmsKeyring({ generatorKeyId: key, clientSupplier: fake.supplier })
    const { ciphertext } = await encrypt(new MultiKeyring({ generator: aesKeyring(), children: [kms] }), 'x')
    expect(fake.calls.map((call) => call.operation)).toEqual(['EncryptCommand'])
    expect(text((await decrypt(kms, ciphertext)).plaintext)).toBe('x')
  })

  it('without a generator and without a data key, encrypt is a KEYRING_FAILURE and KMS is not called', async () => {
    const fake = new FakeKms()
    const keyring = new KmsKeyring({ keyIds: [fake.createKey('us-east-1')], clientSupplier: fake.supplier })
    const error = await rejectionOf(encrypt(keyring, 'x'))
    expect(error).toMatchObject({ code: 'KEYRING_FAILURE', message: 'KmsKeyring has no generatorKeyId and no data key was supplied: give it a generatorKeyId.' })
    expect(fake.calls).toHaveLength(0)
  })

  it('an alias ARN may encrypt (the message records the key ARN) but is refused for decrypt', async () => {
    const fake = new FakeKms()
    const key = fake.createKey('us-east-1')
    const alias = fake.createAlias('app', key)
    const byAlias = new KmsKeyring({ generatorKeyId: alias, clientSupplier: fake.supplier })
    const { ciphertext, header } = await encrypt(byAlias, 'x')
    expect(fake.calls[0]!.input.KeyId).toBe(alias)
    expect(text(header.encryptedDataKeys[0]!.providerInfo)).toBe(key)

    fake.calls.length = 0
    const failures = failuresOf(await rejectionOf(decrypt(byAlias, ciphertext)))
    expect(failures).toHaveLength(1)
    expect(failures[0]!.error).toBeInstanceOf(ConfigurationError)
    expect((failures[0]!.error as Error).message).toContain(alias)
    expect((failures[0]!.error as Error).message).toMatch(/key ARN/)
    expect(fake.calls).toHaveLength(0)
    // The same keyring with the key ARN next to the alias decrypts.
    const both = new KmsKeyring({ generatorKeyId: alias, keyIds: [key], clientSupplier: fake.supplier })
    expect(text((await decrypt(both, ciphertext)).plaintext)).toBe('x')
  })

  it('tries the message data keys in order until one decrypts', async () => {
    const fake = new FakeKms()
    const [first, second] = [fake.createKey('us-east-1'), fake.createKey('us-west-2')]
    const keyring = new KmsKeyring({ generatorKeyId: first, keyIds: [second], clientSupplier: fake.supplier })
    const { ciphertext } = await encrypt(keyring, 'x')
    fake.setState(first, 'Disabled')
    fake.calls.length = 0
    // The keyring lists the keys the other way round: the message order decides.
    const reversed = new KmsKeyring({ generatorKeyId: second, keyIds: [first], clientSupplier: fake.supplier })
    expect(text((await decrypt(reversed, ciphertext)).plaintext)).toBe('x')
    expect(fake.calls.map((call) => call.input.KeyId)).toEqual([first, second])
  })

  it('when every key fails, the error carries each failure and names each key and KMS error', async () => {
    const fake = new FakeKms()
    const [first, second] = [fake.createKey('us-east-1'), fake.createKey('us-west-2')]
    const keyring = new KmsKeyring({ generatorKeyId: first, keyIds: [second], clientSupplier: fake.supplier })
    const { ciphertext } = await encrypt(keyring, 'x')
    fake.setState(first, 'Disabled')
    fake.deny(second)
    const error = await rejectionOf(decrypt(keyring, ciphertext))
    const failures = failuresOf(error)
    expect((error as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
    expect(failures.map((failure) => failure.keyring)).toEqual(['KmsKeyring', 'KmsKeyring'])
    expect(failures.map((failure) => ((failure.error as Error).cause as Error).name)).toEqual(['DisabledException', 'AccessDeniedException'])
    for (const failure of failures) expect(failure.error).toBeInstanceOf(KeyringError)
    const message = (error as Error).message
    expect(message).toMatch(/^KmsKeyring could not decrypt any of the 2 encrypted data keys it may use: /)
    for (const expected of [first, second, 'DisabledException', 'AccessDeniedException']) expect(message).toContain(expected)
    // A keyring that may use one of them names that one.
    const alone = await rejectionOf(decrypt(new KmsKeyring({ generatorKeyId: second, clientSupplier: fake.supplier }), ciphertext))
    expect((alone as Error).message).toMatch(/^KmsKeyring could not decrypt the encrypted data key it may use: .*AccessDeniedException/)
  })

  it.each([
    ['disabled', (fake: FakeKms, key: string) => fake.setState(key, 'Disabled'), 'DisabledException'],
    ['pending deletion', (fake: FakeKms, key: string) => fake.setState(key, 'PendingDeletion'), 'KMSInvalidStateException'],
    ['access denied', (fake: FakeKms, key: string) => fake.deny(key), 'AccessDeniedException'],
  ])('a %s key: encrypt is a KEYRING_FAILURE and decrypt NO_DECRYPTABLE_KEY, both naming the key and KMS error', async (_name, breakKey, errorName) => {
    const fake = new FakeKms()
    const key = fake.createKey('us-east-1')
    const keyring = new KmsKeyring({ generatorKeyId: key, clientSupplier: fake.supplier })
    const { ciphertext } = await encrypt(keyring, 'x')
    breakKey(fake, key)

    const encryptError = await rejectionOf(encrypt(keyring, 'x'))
    expect(encryptError).toBeInstanceOf(KeyringError)
    expect((encryptError as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect((encryptError as Error).message).toContain(key)
    expect((encryptError as Error).message).toContain(errorName)
    expect(((encryptError as Error).cause as Error).name).toBe(errorName)

    const decryptError = await rejectionOf(decrypt(keyring, ciphertext))
    const [failure] = failuresOf(decryptError)
    expect((failure!.error as Error).message).toContain(key)
    expect(((failure!.error as Error).cause as Error).name).toBe(errorName)
    expect((decryptError as Error).message).toContain(key)
  })

  it('a failed Encrypt after GenerateDataKey zeroes the data key it made', async () => {
    const fake = new FakeKms()
    const [generator, other] = [fake.createKey('us-east-1'), fake.createKey('eu-west-1')]
    fake.deny(other)
    const keyring = new KmsKeyring({ generatorKeyId: generator, keyIds: [other], clientSupplier: fake.supplier })
    const error = await rejectionOf(encrypt(keyring, 'x'))
    expect((error as Error).message).toContain(other)
    expect(fake.handedOut).toHaveLength(1)
    expect(isAllZero(fake.handedOut[0]!)).toBe(true)
    // The data key KMS made appears nowhere in the error, in any common encoding.
    const shown = `${(error as Error).message} ${inspect(error, { depth: 8 })} ${JSON.stringify(error)}`
    const dataKey = Buffer.from(fake.handedOutCopies[0]!)
    for (const encoded of [dataKey.toString('hex'), dataKey.toString('base64'), [...dataKey].join(',')]) {
      expect(shown).not.toContain(encoded)
    }
  })

  it('KMS binds the encryption context: a different one does not decrypt', async () => {
    const fake = new FakeKms()
    const key = fake.createKey('us-east-1')
    const keyring = new KmsKeyring({ generatorKeyId: key, clientSupplier: fake.supplier })
    const { ciphertext, header } = await encrypt(keyring, 'x', { encryptionContext: context })
    const error = await rejectionOf(keyring.onDecrypt(decryptionMaterials({ tenant: 'b' }), header.encryptedDataKeys, nodeBackend))
    const [failure] = failuresOf(error)
    expect(((failure!.error as Error).cause as Error).name).toBe('InvalidCiphertextException')
    // At the API, a caller's expected context that the message lacks is refused.
    const mismatch = await rejectionOf(decrypt(keyring, ciphertext, { encryptionContext: { tenant: 'b' } }))
    expect(mismatch).toMatchObject({
      code: 'ENCRYPTION_CONTEXT_MISMATCH',
      message: 'The message\'s encryption context has a different value for "tenant" than the caller requires.',
    })
  })

  it('a Region outage on decrypt falls through to the next keyring of a MultiKeyring', async () => {
    const fake = new FakeKms()
    const [east, west] = [fake.createKey('us-east-1'), fake.createKey('us-west-2')]
    const keyring = new MultiKeyring({
      generator: new KmsKeyring({ generatorKeyId: east, clientSupplier: fake.supplier }),
      children: [new KmsKeyring({ keyIds: [west], clientSupplier: fake.supplier })],
    })
    const { ciphertext } = await encrypt(keyring, 'x')
    fake.regionDown('us-east-1')
    fake.calls.length = 0
    expect(text((await decrypt(keyring, ciphertext)).plaintext)).toBe('x')
    expect(fake.calls.map((call) => call.region)).toEqual(['us-east-1', 'us-west-2'])
  })

  it('materials that already hold a data key are returned unchanged, without calling KMS', async () => {
    const fake = new FakeKms()
    const key = fake.createKey('us-east-1')
    const materials = { ...decryptionMaterials(), plaintextDataKey: new Uint8Array(32) }
    const keyrings: Keyring[] = [
      new KmsKeyring({ generatorKeyId: key, clientSupplier: fake.supplier }),
      new KmsDiscoveryKeyring({ clientSupplier: fake.supplier }),
      new KmsMrkKeyring({ keyId: key, clientSupplier: fake.supplier }),
      new KmsMrkDiscoveryKeyring({ region: 'us-east-1', clientSupplier: fake.supplier }),
    ]
    for (const keyring of keyrings) expect(await keyring.onDecrypt(materials, [kmsEdk(key)], nodeBackend)).toBe(materials)
    expect(fake.calls).toHaveLength(0)
  })

  it('data keys of other providers and other KMS keys are not its keys: materials unchanged, no KMS call', async () => {
    const fake = new FakeKms()
    const key = fake.createKey('us-east-1')
    const keyring = new KmsKeyring({ generatorKeyId: key, clientSupplier: fake.supplier })
    const materials = decryptionMaterials()
    const edks = [
      { providerId: 'raw', providerInfo: utf8(key), ciphertext: new Uint8Array(3) },
      { providerId: 'aws-kms-other', providerInfo: utf8(key), ciphertext: new Uint8Array(3) },
      kmsEdk(fake.createKey('us-east-1')),
    ]
    expect(await keyring.onDecrypt(materials, edks, nodeBackend)).toBe(materials)
    expect(fake.calls).toHaveLength(0)
    const error = await rejectionOf(decrypt(keyring, (await encrypt(aesKeyring(), 'x')).ciphertext))
    expect((error as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
  })
})

describe('KMS responses are checked', () => {
  const fake = new FakeKms()
  const key = fake.createKey('us-east-1')
  const otherKey = fake.createKey('us-east-1')
  const alias = 'arn:aws:kms:us-east-1:111122223333:alias/app'
  const blob = new Uint8Array([9, 9, 9])
  const encryptionMaterials = { suite, encryptionContext: context, encryptedDataKeys: [] }

  /** A KMS answer; `Plaintext` is the length of a data key filled with 7s. */
  type Answer = { KeyId?: string; Plaintext?: number; CiphertextBlob?: Uint8Array }
  it.each<[string, Answer, RegExp]>([
    ['a 16-byte data key', { KeyId: key, Plaintext: 16, CiphertextBlob: blob }, /16-byte/],
    ['no data key', { KeyId: key, CiphertextBlob: blob }, /no data key/],
    ['an alias as KeyId', { KeyId: alias, Plaintext: 32, CiphertextBlob: blob }, /not a KMS key ARN/],
    ['a KeyId that is no ARN', { KeyId: 'key/abc', Plaintext: 32, CiphertextBlob: blob }, /not a KMS key ARN/],
    ['no KeyId', { Plaintext: 32, CiphertextBlob: blob }, /not a KMS key ARN/],
    ['no CiphertextBlob', { KeyId: key, Plaintext: 32 }, /no CiphertextBlob/],
    ['an empty CiphertextBlob', { KeyId: key, Plaintext: 32, CiphertextBlob: new Uint8Array(0) }, /no CiphertextBlob/],
  ])('GenerateDataKey returning %s is a KEYRING_FAILURE and its plaintext is zeroed', async (_name, answer, message) => {
    const plaintext = typeof answer.Plaintext === 'number' ? new Uint8Array(answer.Plaintext).fill(7) : undefined
    fake.overrides.set('GenerateDataKeyCommand', () => ({ ...answer, Plaintext: plaintext }))
    try {
      const keyring = new KmsKeyring({ generatorKeyId: key, clientSupplier: fake.supplier })
      const error = await rejectionOf(keyring.onEncrypt(encryptionMaterials, nodeBackend))
      expect(error).toBeInstanceOf(KeyringError)
      expect((error as Error).message).toMatch(message)
      if (plaintext !== undefined) expect(isAllZero(plaintext)).toBe(true)
    } finally {
      fake.overrides.clear()
    }
  })

  it('GenerateDataKey returning nothing at all is a KEYRING_FAILURE', async () => {
    fake.overrides.set('GenerateDataKeyCommand', () => undefined)
    try {
      const keyring = new KmsMrkKeyring({ keyId: key, clientSupplier: fake.supplier })
      expect(await rejectionOf(keyring.onEncrypt(encryptionMaterials, nodeBackend))).toBeInstanceOf(KeyringError)
    } finally {
      fake.overrides.clear()
    }
  })

  it.each([
    ['an alias as KeyId', { KeyId: alias, CiphertextBlob: blob }, /not a KMS key ARN/],
    ['no CiphertextBlob', { KeyId: key }, /no CiphertextBlob/],
  ])('Encrypt returning %s is a KEYRING_FAILURE', async (_name, answer, message) => {
    fake.overrides.set('EncryptCommand', () => answer)
    try {
      const keyring = new KmsKeyring({ keyIds: [key], clientSupplier: fake.supplier })
      const error = await rejectionOf(keyring.onEncrypt({ ...encryptionMaterials, plaintextDataKey: new Uint8Array(32) }, nodeBackend))
      expect(error).toBeInstanceOf(KeyringError)
      expect((error as Error).message).toMatch(message)
    } finally {
      fake.overrides.clear()
    }
  })

  it.each<[string, Answer, RegExp]>([
    ['another key as KeyId', { KeyId: otherKey, Plaintext: 32 }, /answered for KeyId/],
    ['no KeyId', { Plaintext: 32 }, /answered for KeyId/],
    ['a 24-byte data key', { KeyId: key, Plaintext: 24 }, /24-byte/],
    ['no data key', { KeyId: key }, /no data key/],
  ])('Decrypt returning %s is a failure, and its plaintext is zeroed', async (_name, answer, message) => {
    const plaintext = typeof answer.Plaintext === 'number' ? new Uint8Array(answer.Plaintext).fill(7) : undefined
    fake.overrides.set('DecryptCommand', () => ({ ...answer, Plaintext: plaintext }))
    try {
      const keyring = new KmsKeyring({ generatorKeyId: key, clientSupplier: fake.supplier })
      const error = await rejectionOf(keyring.onDecrypt(decryptionMaterials(), [kmsEdk(key)], nodeBackend))
      const [failure] = failuresOf(error)
      expect(failure!.error).toBeInstanceOf(KeyringError)
      expect((failure!.error as Error).message).toMatch(message)
      expect((error as Error).message).toContain('invalid response')
      if (plaintext !== undefined) expect(isAllZero(plaintext)).toBe(true)
    } finally {
      fake.overrides.clear()
    }
  })

  const mrkPrimary = fake.createKey('us-east-1', { multiRegion: true })
  const keyrings: Array<[string, () => Keyring]> = [
    ['KmsKeyring', () => new KmsKeyring({ generatorKeyId: key, clientSupplier: fake.supplier })],
    ['KmsDiscoveryKeyring', () => new KmsDiscoveryKeyring({ clientSupplier: fake.supplier })],
    ['KmsMrkKeyring', () => new KmsMrkKeyring({ keyId: mrkPrimary, clientSupplier: fake.supplier })],
    ['KmsMrkDiscoveryKeyring', () => new KmsMrkDiscoveryKeyring({ region: 'us-east-1', clientSupplier: fake.supplier })],
  ]
  const badProviderInfo: Array<[string, string | Uint8Array]> = [
    ['not an ARN', 'my-key'],
    ['an alias ARN', alias],
    ['an invalid ARN', 'arn:aws:kms:us-east-1:key/abc'],
    ['not UTF-8', new Uint8Array([0xff, 0xfe])],
  ]
  describe.each(keyrings)('%s', (_name, build) => {
    it.each(badProviderInfo)('an aws-kms data key whose provider info is %s fails the decrypt before any KMS call', async (_kind, info) => {
      fake.calls.length = 0
      const error = await rejectionOf(build().onDecrypt(decryptionMaterials(), [kmsEdk(info), kmsEdk(key)], nodeBackend))
      expect(error).toBeInstanceOf(MalformedMessageError)
      expect(fake.calls).toHaveLength(0)
    })
  })

  it('a malformed aws-kms data key fails the KMS keyring, while a MultiKeyring still decrypts with another keyring', async () => {
    const aes = aesKeyring()
    const planted: Keyring = {
      onEncrypt: async (materials) => ({ ...materials, encryptedDataKeys: [...materials.encryptedDataKeys, kmsEdk('not-an-arn')] }),
      onDecrypt: async (materials) => materials,
    }
    const { ciphertext } = await encrypt(new MultiKeyring({ generator: aes, children: [planted] }), 'x')
    const kms = new KmsKeyring({ generatorKeyId: key, clientSupplier: fake.supplier })
    const failures = failuresOf(await rejectionOf(decrypt(kms, ciphertext)))
    expect(failures[0]!.error).toBeInstanceOf(MalformedMessageError)
    expect(text((await decrypt(new MultiKeyring({ children: [kms, aes] }), ciphertext)).plaintext)).toBe('x')
  })
})

describe('KmsDiscoveryKeyring against a fake KMS', () => {
  const fake = new FakeKms()
  const east = fake.createKey('us-east-1')
  const west = fake.createKey('eu-west-1')
  const otherAccount = fake.createKey('us-east-1', { account: '444455556666' })
  const otherPartition = fake.createKey('us-east-1', { partition: 'aws-cn' })
  const encryptUnder = async (key: string) => (await encrypt(new KmsKeyring({ generatorKeyId: key, clientSupplier: fake.supplier }), 'found')).ciphertext

  it('decrypts under any key, calling the Region in its ARN with the ARN as KeyId', async () => {
    const keyring = new KmsDiscoveryKeyring({ clientSupplier: fake.supplier, grantTokens: ['g'] })
    for (const [key, region] of [[east, 'us-east-1'], [west, 'eu-west-1'], [otherAccount, 'us-east-1']] as const) {
      const ciphertext = await encryptUnder(key)
      fake.calls.length = 0
      expect(text((await decrypt(keyring, ciphertext)).plaintext)).toBe('found')
      expect(fake.calls).toEqual([expect.objectContaining({ operation: 'DecryptCommand', region, input: expect.objectContaining({ KeyId: key, GrantTokens: ['g'] }) })])
    }
  })

  it('data keys its filter or Region excludes, and others than KMS ones, are not its keys: materials unchanged, no KMS call (MRK discovery too)', async () => {
    const filtered = new KmsDiscoveryKeyring({ clientSupplier: fake.supplier, discoveryFilter: { partition: 'aws', accountIds: ['444455556666'] } })
    const regional = new KmsDiscoveryKeyring({ clientSupplier: fake.supplier, region: 'ap-south-1' })
    const mrkDiscovery = new KmsMrkDiscoveryKeyring({ clientSupplier: fake.supplier, region: 'ap-south-1', discoveryFilter: { partition: 'aws', accountIds: ['444455556666'] } })
    const edks = [kmsEdk(east), kmsEdk(otherPartition), { providerId: 'raw', providerInfo: utf8(east), ciphertext: new Uint8Array(3) }]
    fake.calls.length = 0
    for (const keyring of [filtered, regional, mrkDiscovery]) {
      const materials = decryptionMaterials()
      expect(await keyring.onDecrypt(materials, edks, nodeBackend)).toBe(materials)
    }
    expect(fake.calls).toHaveLength(0)
  })

  it('cannot encrypt', async () => {
    const error = await rejectionOf(encrypt(new KmsDiscoveryKeyring({ clientSupplier: fake.supplier }), 'x'))
    expect(error).toBeInstanceOf(ConfigurationError)
  })

  it.each([
    ['another account', otherAccount],
    ['another partition', otherPartition],
  ])('the discovery filter rejects a key of %s without calling KMS', async (_name, key) => {
    const keyring = new KmsDiscoveryKeyring({ clientSupplier: fake.supplier, discoveryFilter: { partition: 'aws', accountIds: [ACCOUNT] } })
    const ciphertext = await encryptUnder(key)
    fake.calls.length = 0
    const error = await rejectionOf(decrypt(keyring, ciphertext))
    expect((error as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
    expect(fake.calls).toHaveLength(0)
    // …while a key that passes it decrypts.
    expect(text((await decrypt(keyring, await encryptUnder(east))).plaintext)).toBe('found')
  })

  it('with region set, only keys in that Region are tried', async () => {
    const keyring = new KmsDiscoveryKeyring({ clientSupplier: fake.supplier, region: 'eu-west-1' })
    const eastCiphertext = await encryptUnder(east)
    fake.calls.length = 0
    expect((await rejectionOf(decrypt(keyring, eastCiphertext)) as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
    expect(fake.calls).toHaveLength(0)
    expect(text((await decrypt(keyring, await encryptUnder(west))).plaintext)).toBe('found')
  })

  // Regression test; the bug it caught: the discovery keyring asked the client supplier for the Region a message's
  // ARN names, whatever it was. An AWS SDK of mid-2024 (which the peer range allows) does not check Region names and
  // put "x@evil.example#" in the endpoint's URL, sending the signed KMS request (and the session token) to evil.example.
  /** A raw AES keyring that also writes, as the message's first data key, an "aws-kms" key of the given provider info. */
  const withForeignKey = (providerInfo: Uint8Array): Keyring => {
    const aes = aesKeyring()
    return {
      onEncrypt: async (materials, backend) => {
        const wrapped = await aes.onEncrypt(materials, backend)
        return { ...wrapped, encryptedDataKeys: [{ providerId: 'aws-kms', providerInfo, ciphertext: new Uint8Array(40) }, ...wrapped.encryptedDataKeys] }
      },
      onDecrypt: (materials, keys, backend) => aes.onDecrypt(materials, keys, backend),
    }
  }

  it('an "aws-kms" data key whose provider info is no key ARN, or no UTF-8, is refused and named by its place in the message', async () => {
    for (const [info, problem] of [
      [new TextEncoder().encode('not-an-arn'), 'Encrypted data key #1 is an "aws-kms" key, but its provider info "not-an-arn" is not a KMS key ARN.'],
      [new TextEncoder().encode(`arn:aws:kms:us-east-1:${ACCOUNT}:alias/orders`), /^Encrypted data key #1 is an "aws-kms" key, but its provider info ".*alias\/orders" is not a KMS key ARN\.$/],
      [Uint8Array.of(0xff, 0xfe), "The message's encrypted data key #1 provider info is not valid UTF-8."],
    ] as const) {
      const { ciphertext } = await encrypt(withForeignKey(info), 'x')
      const error = await rejectionOf(decrypt(new KmsDiscoveryKeyring({ clientSupplier: fake.supplier }), ciphertext))
      expect((error as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
      const { message } = (error as Error).cause as Error
      if (typeof problem === 'string') expect(message).toBe(problem)
      else expect(message).toMatch(problem)
    }
  })

  it('a data key whose ARN names no Region name is refused before any client is asked for; configured ones are refused too', async () => {
    for (const region of ['x@evil.example#', 'evil.example', 'us-east-1/x', 'US-EAST-1']) {
      const arn = `arn:aws:kms:${region}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`
      const { ciphertext } = await encrypt(withForeignKey(new TextEncoder().encode(arn)), 'x')
      const asked: string[] = []
      const supplier: KmsClientSupplier = (asking) => {
        asked.push(asking)
        return fake.client(asking)
      }
      const error = await rejectionOf(decrypt(new KmsDiscoveryKeyring({ clientSupplier: supplier }), ciphertext))
      expect((error as EnvelopeError).code, region).toBe('NO_DECRYPTABLE_KEY')
      expect(String(((error as Error).cause as Error).message), region).toMatch(/^Encrypted data key #1 is an "aws-kms" key whose ARN names Region .* which is no Region name/)
      expect(asked, region).toEqual([])
      expect((thrownBy(() => new KmsKeyring({ generatorKeyId: arn, clientSupplier: supplier })) as EnvelopeError).code, region).toBe('INVALID_CONFIGURATION')
      expect((thrownBy(() => new KmsDiscoveryKeyring({ clientSupplier: supplier, region })) as EnvelopeError).code, region).toBe('INVALID_CONFIGURATION')
      expect((thrownBy(() => new KmsMrkDiscoveryKeyring({ clientSupplier: supplier, region })) as EnvelopeError).code, region).toBe('INVALID_CONFIGURATION')
      expect((thrownBy(() => buildKmsMrkDiscoveryMultiKeyring({ clientSupplier: supplier, regions: ['us-east-1', region] })) as EnvelopeError).code, region).toBe('INVALID_CONFIGURATION')
    }
  })

  it('a Region the supplier refuses is a recorded failure; the next data key still decrypts', async () => {
    const { ciphertext } = await encrypt(new KmsKeyring({ generatorKeyId: east, keyIds: [west], clientSupplier: fake.supplier }), 'found')
    const refusing: KmsClientSupplier = (region) => {
      if (region === 'us-east-1') throw new ConfigurationError('us-east-1 is not for this test')
      return fake.client(region)
    }
    fake.calls.length = 0
    expect(text((await decrypt(new KmsDiscoveryKeyring({ clientSupplier: refusing }), ciphertext)).plaintext)).toBe('found')
    expect(fake.calls.map((call) => call.region)).toEqual(['eu-west-1'])
    fake.deny(west)
    const failures = failuresOf(await rejectionOf(decrypt(new KmsDiscoveryKeyring({ clientSupplier: refusing }), ciphertext)))
    expect(failures.map((failure) => ((failure.error as Error).cause as Error).name)).toEqual(['ConfigurationError', 'AccessDeniedException'])
  })
})

describe('multi-Region keys against a fake KMS', () => {
  const fake = new FakeKms()
  const primary = fake.createKey('us-east-1', { multiRegion: true })
  const replica = fake.replicate(primary, 'eu-west-1')
  const single = fake.createKey('us-east-1')
  const singleElsewhere = single.replace('us-east-1', 'eu-west-1')
  const under = async (keyring: Keyring) => (await encrypt(keyring, 'mrk', { encryptionContext: context })).ciphertext

  it('KmsMrkKeyring with the local replica decrypts what the primary encrypted, calling only its own Region', async () => {
    const ciphertext = await under(new KmsMrkKeyring({ keyId: primary, clientSupplier: fake.supplier }))
    fake.calls.length = 0
    const local = new KmsMrkKeyring({ keyId: replica, clientSupplier: fake.supplier, grantTokens: ['g'] })
    expect(text((await decrypt(local, ciphertext)).plaintext)).toBe('mrk')
    expect(fake.calls).toEqual([
      expect.objectContaining({ operation: 'DecryptCommand', region: 'eu-west-1', input: expect.objectContaining({ KeyId: replica, GrantTokens: ['g'] }) }),
    ])
    // The strict, non-MRK-aware keyring does not treat the replica as the same key.
    fake.calls.length = 0
    expect(await rejectionOf(decrypt(new KmsKeyring({ keyIds: [replica], clientSupplier: fake.supplier }), ciphertext))).toBeInstanceOf(NoDecryptableKeyError)
    expect(fake.calls).toHaveLength(0)
  })

  it('KmsMrkKeyring does not match a single-Region key of the same id in another Region', async () => {
    const ciphertext = await under(new KmsMrkKeyring({ keyId: single, clientSupplier: fake.supplier }))
    fake.calls.length = 0
    const elsewhere = new KmsMrkKeyring({ keyId: singleElsewhere, clientSupplier: fake.supplier })
    expect(await rejectionOf(decrypt(elsewhere, ciphertext))).toBeInstanceOf(NoDecryptableKeyError)
    expect(fake.calls).toHaveLength(0)
    expect(text((await decrypt(new KmsMrkKeyring({ keyId: single, clientSupplier: fake.supplier }), ciphertext)).plaintext)).toBe('mrk')
  })

  it('KmsMrkKeyring wraps a data key made before it with Encrypt, and an alias keyId cannot decrypt', async () => {
    const alias = fake.createAlias('mrk-app', primary)
    const keyring = new KmsMrkKeyring({ keyId: alias, clientSupplier: fake.supplier })
    fake.calls.length = 0
    const ciphertext = await under(new MultiKeyring({ generator: aesKeyring(), children: [keyring] }))
    expect(fake.calls.map((call) => call.operation)).toEqual(['EncryptCommand'])
    const failures = failuresOf(await rejectionOf(decrypt(keyring, ciphertext)))
    expect(failures[0]!.error).toBeInstanceOf(ConfigurationError)
    expect(text((await decrypt(new KmsMrkKeyring({ keyId: replica, clientSupplier: fake.supplier }), ciphertext)).plaintext)).toBe('mrk')
  })

  it('KmsMrkDiscoveryKeyring decrypts a multi-Region key through its own Region, with the ARN rewritten to it', async () => {
    const ciphertext = await under(new KmsMrkKeyring({ keyId: primary, clientSupplier: fake.supplier }))
    fake.calls.length = 0
    const keyring = new KmsMrkDiscoveryKeyring({ region: 'eu-west-1', clientSupplier: fake.supplier, discoveryFilter: { partition: 'aws', accountIds: [ACCOUNT] } })
    expect(text((await decrypt(keyring, ciphertext)).plaintext)).toBe('mrk')
    expect(fake.calls.map((call) => [call.region, call.input.KeyId])).toEqual([['eu-west-1', replica]])
    expect(await rejectionOf(encrypt(keyring, 'x'))).toBeInstanceOf(ConfigurationError)
  })

  it('KmsMrkDiscoveryKeyring skips single-Region keys of other Regions and decrypts those of its own', async () => {
    const ciphertext = await under(new KmsKeyring({ generatorKeyId: single, clientSupplier: fake.supplier }))
    fake.calls.length = 0
    const away = new KmsMrkDiscoveryKeyring({ region: 'eu-west-1', clientSupplier: fake.supplier })
    expect(await away.onDecrypt(decryptionMaterials(), [kmsEdk(single)], nodeBackend)).toEqual(decryptionMaterials())
    expect(fake.calls).toHaveLength(0)
    const home = new KmsMrkDiscoveryKeyring({ region: 'us-east-1', clientSupplier: fake.supplier })
    expect(text((await decrypt(home, ciphertext)).plaintext)).toBe('mrk')
    expect(fake.calls.map((call) => [call.region, call.input.KeyId])).toEqual([['us-east-1', single]])
  })

  it.each([
    ['another account', { partition: 'aws', accountIds: ['444455556666'] }],
    ['another partition', { partition: 'aws-cn', accountIds: [ACCOUNT] }],
  ])('KmsMrkDiscoveryKeyring with a filter for %s does not call KMS', async (_name, discoveryFilter) => {
    const ciphertext = await under(new KmsMrkKeyring({ keyId: primary, clientSupplier: fake.supplier }))
    fake.calls.length = 0
    const keyring = new KmsMrkDiscoveryKeyring({ region: 'eu-west-1', clientSupplier: fake.supplier, discoveryFilter })
    expect((await rejectionOf(decrypt(keyring, ciphertext)) as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
    expect(fake.calls).toHaveLength(0)
  })

  it('buildKmsMrkMultiKeyring: generator and children round trip, and any replica decrypts', async () => {
    fake.calls.length = 0
    const keyring = buildKmsMrkMultiKeyring({ generator: primary, keyIds: [single], clientSupplier: fake.supplier, grantTokens: ['g'] })
    const ciphertext = await under(keyring)
    expect(fake.calls.map((call) => `${call.operation}@${call.region}`)).toEqual(['GenerateDataKeyCommand@us-east-1', 'EncryptCommand@us-east-1'])
    expect(fake.calls.every((call) => call.input.GrantTokens[0] === 'g')).toBe(true)
    fake.calls.length = 0
    expect(text((await decrypt(buildKmsMrkMultiKeyring({ keyIds: [replica], clientSupplier: fake.supplier }), ciphertext)).plaintext)).toBe('mrk')
    expect(fake.calls.map((call) => call.region)).toEqual(['eu-west-1'])
  })

  it('buildKmsMrkDiscoveryMultiKeyring tries its Regions in order, once each', async () => {
    const ciphertext = await under(new KmsMrkKeyring({ keyId: primary, clientSupplier: fake.supplier }))
    fake.calls.length = 0
    fake.suppliedRegions.length = 0
    const keyring = buildKmsMrkDiscoveryMultiKeyring({ regions: ['ap-south-1', 'eu-west-1', 'ap-south-1'], clientSupplier: fake.supplier })
    expect(fake.suppliedRegions).toEqual(['ap-south-1', 'eu-west-1'])
    expect(text((await decrypt(keyring, ciphertext)).plaintext)).toBe('mrk')
    // No replica in ap-south-1: KMS says so, and the next Region decrypts.
    expect(fake.calls.map((call) => [call.region, call.input.KeyId])).toEqual([
      ['ap-south-1', primary.replace('us-east-1', 'ap-south-1')],
      ['eu-west-1', replica],
    ])
  })

  it('buildKmsMrkDiscoveryMultiKeyring gives each Region its discovery filter and grant tokens', async () => {
    const ciphertext = await under(new KmsMrkKeyring({ keyId: primary, clientSupplier: fake.supplier }))
    fake.calls.length = 0
    const elsewhere = { partition: 'aws', accountIds: ['444455556666'] }
    const filtered = buildKmsMrkDiscoveryMultiKeyring({ regions: ['eu-west-1', 'us-east-1'], clientSupplier: fake.supplier, discoveryFilter: elsewhere })
    expect((await rejectionOf(decrypt(filtered, ciphertext)) as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
    expect(fake.calls).toHaveLength(0)
    const keyring = buildKmsMrkDiscoveryMultiKeyring({
      regions: ['eu-west-1'],
      clientSupplier: fake.supplier,
      discoveryFilter: { partition: 'aws', accountIds: [ACCOUNT] },
      grantTokens: ['g'],
    })
    expect(text((await decrypt(keyring, ciphertext)).plaintext)).toBe('mrk')
    expect(fake.calls.map((call) => [call.region, call.input.GrantTokens])).toEqual([['eu-west-1', ['g']]])
  })
})

describe('defaultKmsClientSupplier', () => {
  it('makes one client per Region and refuses Regions outside its lists', () => {
    const supplier = defaultKmsClientSupplier({ regions: { allow: ['us-east-1', 'eu-west-1'], deny: ['eu-west-1'] } })
    expect(supplier('us-east-1')).toBe(supplier('us-east-1'))
    expect(() => supplier('eu-west-1')).toThrow(ConfigurationError)
    expect(() => supplier('us-west-2')).toThrow(ConfigurationError)
    // The default Region (''), when clientConfig names it, is checked at once.
    expect(() => defaultKmsClientSupplier({ clientConfig: { region: 'eu-west-1' }, regions: { allow: ['us-east-1'] } })('')).toThrow(ConfigurationError)
    expect(() => supplier(undefined as never)).toThrow(ConfigurationError)
    const open = defaultKmsClientSupplier()
    expect(open('us-east-1')).not.toBe(open('us-west-2'))
  })

  it('keeps the clients of the 64 Regions used last, so made-up Regions in messages cannot pile clients up', async () => {
    const supplier = defaultKmsClientSupplier({ clientConfig: { ...fakeHttp([]), maxAttempts: 1, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' } } })
    const supplied = new Map<string, unknown>()
    const clientSupplier: KmsClientSupplier = (region) => {
      const client = supplier(region)
      supplied.set(region, client)
      return client
    }
    // A message's wrapped keys can each name a Region of their own: every one is tried, through its own client.
    const regions = Array.from({ length: 100 }, (_, index) => `made-up-${index}`)
    const wrapped = regions.map((region) => kmsEdk(`arn:aws:kms:${region}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`))
    const keyring = new KmsDiscoveryKeyring({ clientSupplier })
    expect(failuresOf(await rejectionOf(keyring.onDecrypt(decryptionMaterials(), wrapped, nodeBackend)))).toHaveLength(100)
    expect(supplied.size).toBe(100)
    // Kept: the last 64 Regions tried, made-up-36 to made-up-99.
    expect(supplier('made-up-99')).toBe(supplied.get('made-up-99'))
    expect(supplier('made-up-36')).toBe(supplied.get('made-up-36'))
    expect(supplier('made-up-35')).not.toBe(supplied.get('made-up-35'))
    // Using a client keeps it: after 62 more Regions, made-up-36 (used after made-up-99) is kept, made-up-99 is not.
    for (let index = 0; index < 62; index++) supplier(`other-${index}`)
    expect(supplier('made-up-36')).toBe(supplied.get('made-up-36'))
    expect(supplier('made-up-99')).not.toBe(supplied.get('made-up-99'))
  })

  /** An HTTP handler in place of the network: answers KMS JSON and records each request. */
  function fakeHttp(answers: Array<{ status: number; body: object }>) {
    const requests: Array<{ hostname: string; headers: Record<string, string>; body: string }> = []
    const requestHandler = {
      handle: async (request: { hostname: string; headers: Record<string, string>; body: Uint8Array | string }) => {
        const body = typeof request.body === 'string' ? request.body : new TextDecoder().decode(request.body)
        requests.push({ hostname: request.hostname, headers: request.headers, body })
        const answer = answers.shift() ?? { status: 500, body: { __type: 'InternalFailure' } }
        return {
          response: {
            statusCode: answer.status,
            headers: { 'content-type': 'application/x-amz-json-1.1' },
            body: Buffer.from(JSON.stringify(answer.body)),
          },
        }
      },
    }
    return { requests, requestHandler }
  }

  /** A retry strategy passed through clientConfig: retries throttling twice without waiting. */
  const quickRetries = {
    mode: 'quick',
    retried: 0,
    async acquireInitialRetryToken() {
      return { attempt: 0, getRetryCount: () => 0 }
    },
    async refreshRetryTokenForRetry(token: { attempt: number }, error: { errorType?: string }) {
      if (token.attempt >= 2 || error.errorType !== 'THROTTLING') throw error
      this.retried++
      return { attempt: token.attempt + 1, getRetryCount: () => token.attempt + 1, getRetryDelay: () => 1 }
    },
    recordSuccess() {},
  }

  it('gives its clients timeouts, which the AWS SDK does not: a KMS endpoint that stops answering fails the call, not hangs it', async () => {
    // Accepts connections and never answers, as a dead keep-alive connection or a black-holing firewall does.
    const sockets = new Set<Socket>()
    const silent = createServer((socket) => void sockets.add(socket.on('error', () => undefined)))
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`
    const key = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
    const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' }
    try {
      const started = performance.now()
      const clientSupplier = defaultKmsClientSupplier({ clientConfig: { endpoint, credentials, maxAttempts: 1 } })
      const error = await rejectionOf(encrypt(new KmsKeyring({ generatorKeyId: key, clientSupplier }), 'x'))
      expect(error).toMatchObject({ code: 'KEYRING_FAILURE', message: expect.stringMatching(/TimeoutError/) })
      expect(performance.now() - started).toBeGreaterThanOrEqual(DEFAULT_REQUEST_TIMEOUT_MS - 50)
      // A requestHandler of the caller's own replaces these defaults.
      const own = defaultKmsClientSupplier({ clientConfig: { endpoint, credentials, maxAttempts: 1, requestHandler: { requestTimeout: 200, throwOnRequestTimeout: true } } })
      const quick = performance.now()
      expect(await rejectionOf(encrypt(new KmsKeyring({ generatorKeyId: key, clientSupplier: own }), 'x'))).toMatchObject({ code: 'KEYRING_FAILURE' })
      expect(performance.now() - quick).toBeLessThan(DEFAULT_REQUEST_TIMEOUT_MS)
    } finally {
      for (const socket of sockets) socket.destroy()
      silent.close()
    }
  }, 40_000)

  it('gives its clients a connection timeout: an endpoint whose connections never complete fails the call after 5 s, not after the 10 s of a whole call', async () => {
    // What a firewall that drops connection attempts does to a socket: it stays connecting. Node's HTTP agent is
    // given such a socket in place of a real connection, as no loopback address drops connection attempts.
    const pending: Socket[] = []
    const connect = vi.spyOn(HttpAgent.prototype, 'createConnection').mockImplementation(() => {
      const socket = Object.assign(new NetSocket(), { connecting: true })
      pending.push(socket)
      return socket
    })
    const key = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
    const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' }
    try {
      const clientSupplier = defaultKmsClientSupplier({ clientConfig: { endpoint: 'http://127.0.0.1:9', credentials, maxAttempts: 1 } })
      const started = performance.now()
      const error = await rejectionOf(encrypt(new KmsKeyring({ generatorKeyId: key, clientSupplier }), 'x'))
      const elapsed = performance.now() - started
      expect(error).toMatchObject({ code: 'KEYRING_FAILURE', message: expect.stringMatching(/did not establish a connection with the server within the configured timeout of 5000 ms/) })
      expect(pending).toHaveLength(1)
      expect(elapsed).toBeGreaterThanOrEqual(DEFAULT_CONNECTION_TIMEOUT_MS - 50)
      expect(elapsed).toBeLessThan(DEFAULT_REQUEST_TIMEOUT_MS - 1000)
    } finally {
      connect.mockRestore()
      for (const socket of pending) socket.destroy()
    }
  }, 30_000)

  it('creates a real KMSClient on first use with the caller config, our user agent, and its retries', async () => {
    const key = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
    const dataKey = Buffer.alloc(32, 5).toString('base64')
    const { requests, requestHandler } = fakeHttp([
      { status: 400, body: { __type: 'ThrottlingException', message: 'Rate exceeded' } },
      { status: 200, body: { KeyId: key, Plaintext: dataKey, CiphertextBlob: Buffer.from('blob').toString('base64') } },
      { status: 200, body: { KeyId: key, Plaintext: dataKey } },
    ])
    const clientSupplier = defaultKmsClientSupplier({
      clientConfig: {
        requestHandler,
        retryStrategy: quickRetries,
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' },
        customUserAgent: 'my-app/2',
      },
    })
    const keyring = new KmsKeyring({ generatorKeyId: key, clientSupplier, grantTokens: ['g'] })
    const { ciphertext } = await encrypt(keyring, 'over http', { encryptionContext: context })
    expect(text((await decrypt(keyring, ciphertext)).plaintext)).toBe('over http')
    expect(quickRetries.retried).toBe(1)
    expect(requests).toHaveLength(3)
    expect(requests.map((request) => request.hostname)).toEqual(Array(3).fill('kms.eu-west-1.amazonaws.com'))
    expect(requests.map((request) => request.headers['x-amz-target'])).toEqual([
      'TrentService.GenerateDataKey',
      'TrentService.GenerateDataKey',
      'TrentService.Decrypt',
    ])
    const userAgent = requests[0]!.headers['x-amz-user-agent'] ?? requests[0]!.headers['user-agent'] ?? ''
    expect(userAgent).toContain(`kms-envelope/${LIBRARY_VERSION}`)
    expect(userAgent).toContain('my-app/2')
    const generate = JSON.parse(requests[0]!.body)
    expect(generate).toMatchObject({ KeyId: key, NumberOfBytes: 32, GrantTokens: ['g'], EncryptionContext: context })
  })

  it('adds its user agent to a customUserAgent given as [name, version] pairs, leaving the caller\'s array as it was', async () => {
    const key = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
    const { requests, requestHandler } = fakeHttp([
      { status: 200, body: { KeyId: key, Plaintext: Buffer.alloc(32, 5).toString('base64'), CiphertextBlob: Buffer.from('blob').toString('base64') } },
    ])
    const customUserAgent = [['my-app', '2']]
    const clientSupplier = defaultKmsClientSupplier({ clientConfig: { requestHandler, customUserAgent, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' } } })
    await encrypt(new KmsKeyring({ generatorKeyId: key, clientSupplier }), 'agent')
    const userAgent = requests[0]!.headers['x-amz-user-agent'] ?? requests[0]!.headers['user-agent'] ?? ''
    expect(userAgent).toContain(`kms-envelope/${LIBRARY_VERSION}`)
    expect(userAgent).toContain('my-app/2')
    expect(customUserAgent).toEqual([['my-app', '2']])
  })

  it('a response the SDK cannot parse leaves no data key reachable from the error (its hidden raw response)', async () => {
    const key = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
    const dataKey = Buffer.alloc(32, 0x5c).toString('base64')
    /** Whether `text` is in any string or byte array reachable from `root`, hidden properties included. */
    const reachable = (root: unknown, text: string): boolean => {
      const seen = new Set<unknown>()
      const walk = (value: unknown, depth: number): boolean => {
        if (typeof value === 'string') return value.includes(text)
        if (depth > 8 || typeof value !== 'object' || value === null || seen.has(value)) return false
        seen.add(value)
        if (value instanceof Uint8Array) return Buffer.from(value).toString('latin1').includes(text)
        return Object.getOwnPropertyNames(value).some((name) => walk((value as Record<string, unknown>)[name], depth + 1))
      }
      return walk(root, 0)
    }
    // A body cut short (by a proxy, say) after the plaintext data key: a 200 the SDK fails to parse.
    const cutShort = `{"KeyId":"${key}","Plaintext":"${dataKey}","CiphertextBlob":"AAAA`
    const answers = [cutShort]
    const bodies: Buffer[] = []
    const requestHandler = {
      handle: async () => {
        const body = Buffer.from(answers.shift() ?? cutShort)
        bodies.push(body)
        return { response: { statusCode: 200, headers: { 'content-type': 'application/x-amz-json-1.1' }, body } }
      },
    }
    const clientSupplier = defaultKmsClientSupplier({ clientConfig: { requestHandler, maxAttempts: 1, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' } } })
    const keyring = new KmsKeyring({ generatorKeyId: key, clientSupplier })
    const encrypting = await rejectionOf(encrypt(keyring, 'x'))
    expect((encrypting as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect(reachable(encrypting, dataKey)).toBe(false)
    const fake = new FakeKms()
    const { ciphertext } = await encrypt(new KmsKeyring({ generatorKeyId: fake.createKey('eu-west-1'), clientSupplier: fake.supplier }), 'x')
    const decrypting = await rejectionOf(decrypt(new KmsDiscoveryKeyring({ clientSupplier }), ciphertext))
    expect((decrypting as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
    expect(reachable(decrypting, dataKey)).toBe(false)
    // The bytes the SDK kept are zeroed, not only dropped: whoever else holds them (here, the handler) sees zeros.
    expect(bodies.length).toBeGreaterThanOrEqual(2)
    expect(bodies.map((body) => isAllZero(body))).toEqual(bodies.map(() => true))
    // A client of one's own whose error holds the body as text that cannot be removed: the error is replaced.
    const sdkLike = Object.defineProperty(new Error('Unexpected end of JSON input'), '$responseBodyText', { value: cutShort })
    sdkLike.name = 'SyntaxError'
    const throwing = new KmsKeyring({ generatorKeyId: key, clientSupplier: () => ({ send: () => Promise.reject(sdkLike) }) })
    const replaced = await rejectionOf(encrypt(throwing, 'x'))
    expect(reachable(replaced, dataKey)).toBe(false)
    expect(((replaced as Error).cause as Error).name).toBe('SyntaxError')
    // One whose kept response holds the body as text, not bytes: the text cannot be zeroed, so it is dropped.
    const withTextBody = Object.assign(new Error('Unexpected end of JSON input'), { $response: { statusCode: 200, body: cutShort } })
    const textBody = new KmsKeyring({ generatorKeyId: key, clientSupplier: () => ({ send: () => Promise.reject(withTextBody) }) })
    const dropped = await rejectionOf(encrypt(textBody, 'x'))
    expect((dropped as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect(reachable(dropped, dataKey)).toBe(false)
    // An error that cannot even be looked at (a Proxy whose every read throws) is replaced too, never passed on.
    const hostile = new Proxy(new Error('x'), {
      get() {
        throw new Error('no reads')
      },
    })
    const unreadable = new KmsKeyring({ generatorKeyId: key, clientSupplier: () => ({ send: () => Promise.reject(hostile) }) })
    const cause = ((await rejectionOf(encrypt(unreadable, 'x'))) as Error).cause as Error
    expect(cause === hostile).toBe(false) // not through expect(hostile): its reads throw
    expect(cause.message).toBe('The KMS client failed with an error that could not be inspected.')
  })

  it('a client of your own whose error cannot be read (a throwing message getter): still a KEYRING_FAILURE that says so', async () => {
    const key = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
    const unreadable = Object.defineProperty(new Error('hidden'), 'message', {
      get() {
        throw new Error('the getter failed')
      },
    })
    const keyring = new KmsKeyring({ generatorKeyId: key, clientSupplier: () => ({ send: () => Promise.reject(unreadable) }) })
    const error = await rejectionOf(encrypt(keyring, 'x'))
    expect((error as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect((error as Error).message).toContain(`${key}: Error: a thrown value that could not be read`)
    expect((error as Error).cause).toBe(unreadable)
  })

  it("a client's error is described as the materials manager's errors are: type and message, cut short, never a thrown object's contents", async () => {
    const key = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
    const throttled = Object.assign(new Error(''), { name: 'ThrottlingException' })
    const cases: [unknown, string][] = [
      [throttled, `${key}: ThrottlingException.`],
      [new Error('y'.repeat(10_000)), `${key}: Error: ${'y'.repeat(500)}… (10000 characters).`],
      [new Uint8Array(32).fill(0xab), `${key}: a thrown object, not an Error.`],
      ['refused by policy', `${key}: refused by policy.`],
      // KMS ends some messages with a full stop ("… is disabled."); ours does not add a second one.
      [Object.assign(new Error(`${key} is disabled.`), { name: 'DisabledException' }), `${key}: DisabledException: ${key} is disabled.`],
      [new Error('Are you sure?'), `${key}: Error: Are you sure?`],
    ]
    for (const [thrown, ending] of cases) {
      const keyring = new KmsKeyring({ generatorKeyId: key, clientSupplier: () => ({ send: () => Promise.reject(thrown) }) })
      const error = await rejectionOf(encrypt(keyring, 'x'))
      expect((error as EnvelopeError).code).toBe('KEYRING_FAILURE')
      expect((error as Error).message.endsWith(ending), (error as Error).message).toBe(true)
      expect((error as Error).message).not.toMatch(/171|ab,ab/)
    }
  })

  it('a KMS error over HTTP becomes a KEYRING_FAILURE naming the key and the error type', async () => {
    const key = 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
    const { requestHandler } = fakeHttp([{ status: 400, body: { __type: 'DisabledException', message: `${key} is disabled.` } }])
    const clientSupplier = defaultKmsClientSupplier({ clientConfig: { requestHandler, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' } } })
    const error = await rejectionOf(encrypt(new KmsKeyring({ generatorKeyId: key, clientSupplier }), 'x'))
    expect((error as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect((error as Error).message).toContain(key)
    expect((error as Error).message).toContain('DisabledException')
    expect(((error as Error).cause as Error).name).toBe('DisabledException')
    expect((error as Error).message).not.toContain('..')
  })

  it("when every key fails, the summary names each failure's kind: the SDK error's type, a system error's code", async () => {
    const fake = new FakeKms()
    const { ciphertext } = await encrypt(new KmsKeyring({ generatorKeyId: fake.createKey('eu-west-1'), clientSupplier: fake.supplier }), 'x')
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
    const keyring = new KmsDiscoveryKeyring({ clientSupplier: () => ({ send: () => Promise.reject(refused) }) })
    const error = await rejectionOf(decrypt(keyring, ciphertext))
    expect((error as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
    expect((error as Error).message).toMatch(/ \(ECONNREFUSED\)\.$/)
    expect((error as Error).message).not.toContain('..')
    expect(((failuresOf(error)[0]!.error as Error).cause as Error)).toBe(refused)
  })
})

describe('KMS keyrings against the local KMS emulator (real SDK over HTTP)', () => {
  let kms: KmsEmulator
  const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' }
  /** The library's default supplier, pointed at the emulator. */
  let supplier: KmsClientSupplier
  /** The caller's own KMSClient instances, handed over through a supplier. */
  let ownClients: KmsClientSupplier

  beforeAll(async () => {
    kms = await startKmsEmulator({ regions: ['us-east-1', 'eu-west-1', 'us-west-2'] })
    supplier = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials } })
    const clients = new Map<string, KMSClient>()
    ownClients = (region) => {
      let client = clients.get(region)
      if (client === undefined) clients.set(region, (client = new KMSClient({ region, endpoint: kms.endpoint, credentials })))
      return client
    }
  })
  afterAll(async () => {
    await kms?.close()
  })
  beforeEach(() => {
    kms?.faults.clear()
    kms?.resetCalls()
  })

  it.each([
    [0x0478, 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'],
    [0x0578, 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'],
    [0x0178, 'FORBID_ENCRYPT_ALLOW_DECRYPT'],
  ] as const)('suite %i round trip: exactly one GenerateDataKey per encrypt and one Decrypt per decrypt', async (algorithmSuite, commitmentPolicy: CommitmentPolicy) => {
    const key = kms.createKey({ region: 'us-west-2' })
    for (const clientSupplier of [supplier, ownClients]) {
      const keyring = new KmsKeyring({ generatorKeyId: key.arn, clientSupplier })
      kms.resetCalls()
      const { ciphertext, header } = await encrypt(keyring, 'through the emulator', { algorithmSuite, commitmentPolicy, encryptionContext: context })
      expect(kms.calls.map((call) => `${call.operation}@${call.region}`)).toEqual(['GenerateDataKey@us-west-2'])
      expect(text(header.encryptedDataKeys[0]!.providerInfo)).toBe(key.arn)
      kms.resetCalls()
      expect(text((await decrypt(keyring, ciphertext, { commitmentPolicy })).plaintext)).toBe('through the emulator')
      expect(kms.calls.map((call) => `${call.operation}@${call.region}`)).toEqual(['Decrypt@us-west-2'])
    }
  })

  it("leaves no copy of a data key in Node's shared pool of small buffers, where the SDK decodes KMS's answers", async () => {
    // The SDK decodes a response's base64 Plaintext into a view of the pool, which Buffer.allocUnsafe hands out again
    // uncleared: the keyring must zero that very view, not a copy of it.
    const pool = nodeBufferPool()
    const primary = kms.createKey({ region: 'us-east-1', multiRegion: true })
    const keyrings = [
      new KmsKeyring({ generatorKeyId: kms.createKey({ region: 'us-east-1' }).arn, clientSupplier: supplier }),
      new KmsMrkKeyring({ keyId: primary.arn, clientSupplier: ownClients }),
    ]
    const recorded = keyrings.map((keyring) => recordingDataKeys(new DefaultMaterialsManager(keyring)))
    for (const { manager } of recorded) {
      for (const algorithmSuite of [0x0478, 0x0578, 0x0178] as const) {
        const commitmentPolicy = algorithmSuite === 0x0178 ? 'FORBID_ENCRYPT_ALLOW_DECRYPT' : 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'
        const { ciphertext } = await encrypt(manager, 'pooled', { algorithmSuite, commitmentPolicy, encryptionContext: context })
        pool.look()
        expect(text((await decrypt(manager, ciphertext, { commitmentPolicy })).plaintext)).toBe('pooled')
        pool.look()
      }
    }
    const dataKeys = recorded.flatMap(({ dataKeys }) => dataKeys)
    expect(dataKeys).toHaveLength(12)
    expect(pool.copiesOf(dataKeys)).toBe(0)
  })

  it('every keyring decrypts what KmsKeyring wrote under a generator and a second key', async () => {
    const [east, west] = [kms.createKey({ region: 'us-east-1' }), kms.createKey({ region: 'eu-west-1' })]
    const { ciphertext } = await encrypt(new KmsKeyring({ generatorKeyId: east.arn, keyIds: [west.arn], clientSupplier: supplier }), 'all', {
      encryptionContext: context,
    })
    expect(kms.callCount({ operation: 'GenerateDataKey', region: 'us-east-1' })).toBe(1)
    expect(kms.callCount({ operation: 'Encrypt', region: 'eu-west-1' })).toBe(1)
    const keyrings: Keyring[] = [
      new KmsKeyring({ keyIds: [west.arn], clientSupplier: supplier }),
      new KmsDiscoveryKeyring({ clientSupplier: supplier, discoveryFilter: { partition: 'aws', accountIds: [kms.accountId] } }),
      new KmsMrkKeyring({ keyId: west.arn, clientSupplier: ownClients }),
      new KmsMrkDiscoveryKeyring({ region: 'eu-west-1', clientSupplier: supplier }),
      buildKmsMrkDiscoveryMultiKeyring({ regions: ['eu-west-1'], clientSupplier: supplier }),
    ]
    for (const keyring of keyrings) expect(text((await decrypt(keyring, ciphertext)).plaintext)).toBe('all')
  })

  it('every keyring works through a client that answers with Node Buffers (whose slice() is a view of the same memory)', async () => {
    const buffers = bufferAnswering(supplier)
    const [east, west] = [kms.createKey({ region: 'us-east-1', multiRegion: true }), kms.createKey({ region: 'eu-west-1' })]
    const replica = kms.replicateKey(east.arn, 'eu-west-1')
    const { ciphertext } = await encrypt(new KmsKeyring({ generatorKeyId: east.arn, keyIds: [west.arn], clientSupplier: buffers }), 'buffers', {
      encryptionContext: context,
    })
    const keyrings: Keyring[] = [
      new KmsKeyring({ keyIds: [west.arn], clientSupplier: buffers }),
      new KmsDiscoveryKeyring({ clientSupplier: buffers, discoveryFilter: { partition: 'aws', accountIds: [kms.accountId] } }),
      new KmsMrkKeyring({ keyId: replica.arn, clientSupplier: buffers }),
      new KmsMrkDiscoveryKeyring({ region: 'eu-west-1', clientSupplier: buffers }),
    ]
    for (const keyring of keyrings) expect(text((await decrypt(keyring, ciphertext)).plaintext)).toBe('buffers')
    expect(kms.callCount({ operation: 'Decrypt' })).toBe(keyrings.length)
  })

  it('a multi-Region key encrypted in us-east-1 decrypts in eu-west-1, calling only eu-west-1', async () => {
    const primary = kms.createKey({ region: 'us-east-1', multiRegion: true })
    const replica = kms.replicateKey(primary.arn, 'eu-west-1')
    const { ciphertext } = await encrypt(new KmsMrkKeyring({ keyId: primary.arn, clientSupplier: supplier }), 'across Regions', {
      encryptionContext: context,
    })
    for (const keyring of [
      new KmsMrkKeyring({ keyId: replica.arn, clientSupplier: supplier }),
      new KmsMrkDiscoveryKeyring({ region: 'eu-west-1', clientSupplier: ownClients }),
      buildKmsMrkMultiKeyring({ keyIds: [replica.arn], clientSupplier: supplier }),
    ]) {
      kms.resetCalls()
      expect(text((await decrypt(keyring, ciphertext)).plaintext)).toBe('across Regions')
      expect(kms.calls.map((call) => `${call.operation}@${call.region}`)).toEqual(['Decrypt@eu-west-1'])
      expect(kms.callCount({ keyArn: replica.arn })).toBe(1)
    }
  })

  it('the discovery filter rejects other accounts and partitions without calling KMS', async () => {
    const key = kms.createKey({ region: 'us-east-1' })
    const { ciphertext } = await encrypt(new KmsKeyring({ generatorKeyId: key.arn, clientSupplier: supplier }), 'x')
    kms.resetCalls()
    for (const discoveryFilter of [
      { partition: 'aws', accountIds: ['999999999999'] },
      { partition: 'aws-cn', accountIds: [kms.accountId] },
    ]) {
      for (const keyring of [
        new KmsDiscoveryKeyring({ clientSupplier: supplier, discoveryFilter }),
        new KmsMrkDiscoveryKeyring({ region: 'us-east-1', clientSupplier: supplier, discoveryFilter }),
      ]) {
        expect((await rejectionOf(decrypt(keyring, ciphertext)) as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
      }
    }
    expect(kms.calls).toHaveLength(0)
  })

  it('a different encryption context does not decrypt', async () => {
    const key = kms.createKey({ region: 'us-east-1' })
    const keyring = new KmsKeyring({ generatorKeyId: key.arn, clientSupplier: supplier })
    const { header } = await encrypt(keyring, 'x', { encryptionContext: context })
    const error = await rejectionOf(keyring.onDecrypt(decryptionMaterials({ tenant: 'b' }), header.encryptedDataKeys, nodeBackend))
    const [failure] = failuresOf(error)
    expect(((failure!.error as Error).cause as Error).name).toBe('InvalidCiphertextException')
  })

  it.each([
    ['disabled', (arn: string) => kms.setKeyEnabled(arn, false), 'DisabledException'],
    ['pending deletion', (arn: string) => kms.scheduleKeyDeletion(arn), 'KMSInvalidStateException'],
    ['access denied', (arn: string) => kms.faults.deny(arn), 'AccessDeniedException'],
  ])('a %s key: typed errors on encrypt and decrypt that name the key ARN', async (_name, breakKey, errorName) => {
    const key = kms.createKey({ region: 'us-east-1' })
    const keyring = new KmsKeyring({ generatorKeyId: key.arn, clientSupplier: supplier })
    const { ciphertext } = await encrypt(keyring, 'x')
    breakKey(key.arn)
    const encryptError = await rejectionOf(encrypt(keyring, 'x'))
    expect((encryptError as EnvelopeError).code).toBe('KEYRING_FAILURE')
    expect((encryptError as Error).message).toContain(key.arn)
    expect(((encryptError as Error).cause as Error).name).toBe(errorName)
    const decryptError = await rejectionOf(decrypt(keyring, ciphertext))
    const [failure] = failuresOf(decryptError)
    expect((decryptError as Error).message).toContain(key.arn)
    expect((failure!.error as Error).message).toContain(key.arn)
    expect(((failure!.error as Error).cause as Error).name).toBe(errorName)
  })

  it('a Region outage on decrypt falls through to the next keyring of a MultiKeyring', async () => {
    const [east, west] = [kms.createKey({ region: 'us-east-1' }), kms.createKey({ region: 'us-west-2' })]
    const keyring = new MultiKeyring({
      generator: new KmsKeyring({ generatorKeyId: east.arn, clientSupplier: supplier }),
      children: [new KmsKeyring({ keyIds: [west.arn], clientSupplier: supplier })],
    })
    const { ciphertext } = await encrypt(keyring, 'still here')
    kms.faults.regionDown('us-east-1')
    kms.resetCalls()
    expect(text((await decrypt(keyring, ciphertext)).plaintext)).toBe('still here')
    expect(kms.callCount({ operation: 'Decrypt', region: 'us-east-1' })).toBeGreaterThanOrEqual(1)
    expect(kms.calls.filter((call) => call.region === 'us-east-1').every((call) => !call.ok)).toBe(true)
    expect(kms.callCount({ operation: 'Decrypt', region: 'us-west-2' })).toBe(1)
    // With that Region down and no other keyring, the failure names the key and the error KMS sent.
    const alone = await rejectionOf(decrypt(new KmsKeyring({ generatorKeyId: east.arn, clientSupplier: supplier }), ciphertext))
    expect((alone as Error).message).toContain(east.arn)
    expect((alone as Error).message).toContain('KMSInternalException')
  })

  it('throttling is retried by the client, then the operation succeeds', async () => {
    const key = kms.createKey({ region: 'eu-west-1' })
    const keyring = new KmsKeyring({ generatorKeyId: key.arn, clientSupplier: ownClients })
    kms.faults.throttle(1, { operation: 'GenerateDataKey' })
    const { ciphertext } = await encrypt(keyring, 'patience')
    expect(kms.callCount({ operation: 'GenerateDataKey' })).toBe(2)
    kms.faults.throttle(2, { operation: 'Decrypt' })
    expect(text((await decrypt(keyring, ciphertext)).plaintext)).toBe('patience')
    expect(kms.calls.filter((call) => call.operation === 'Decrypt').map((call) => call.errorType ?? 'ok')).toEqual([
      'ThrottlingException',
      'ThrottlingException',
      'ok',
    ])
  })

  it('an alias ARN encrypts; decrypting with it is refused as a configuration error, without a KMS call', async () => {
    const key = kms.createKey({ region: 'us-east-1' })
    kms.createAlias('alias/kms-envelope-test', key.arn)
    const alias = `arn:aws:kms:us-east-1:${kms.accountId}:alias/kms-envelope-test`
    const keyring = new KmsKeyring({ generatorKeyId: alias, clientSupplier: supplier })
    const { ciphertext, header } = await encrypt(keyring, 'x')
    expect(text(header.encryptedDataKeys[0]!.providerInfo)).toBe(key.arn)
    kms.resetCalls()
    const [failure] = failuresOf(await rejectionOf(decrypt(keyring, ciphertext)))
    expect(failure!.error).toBeInstanceOf(ConfigurationError)
    expect(kms.calls).toHaveLength(0)
  })

  describe('identifiers without a Region (alias names, key ids) use the AWS SDK\'s default Region', () => {
    const saved: Record<string, string | undefined> = {}
    beforeEach(() => {
      // The SDK's default Region comes from AWS_REGION, then the shared config file: neither from this machine.
      for (const name of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE', 'AWS_CONFIG_FILE']) saved[name] = process.env[name]
      for (const name of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_PROFILE']) delete process.env[name]
      process.env.AWS_CONFIG_FILE = new URL('./fixtures/no-such-aws-config', import.meta.url).pathname
    })
    afterEach(() => {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name]
        else process.env[name] = value
      }
    })

    it('a bare alias generator with the key ARN in keyIds encrypts and decrypts, as AWS\'s Cognito sender samples configure it', async () => {
      const key = kms.createKey({ region: 'eu-west-1' })
      kms.createAlias('alias/cognito-sender', key.arn)
      const clientSupplier = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials, region: 'eu-west-1' } })
      const keyring = new KmsKeyring({ generatorKeyId: 'alias/cognito-sender', keyIds: [key.arn], clientSupplier })
      const { ciphertext, header } = await encrypt(keyring, 'code 123456', { encryptionContext: context })
      expect(kms.calls.map((call) => `${call.operation}@${call.region}`)).toEqual(['GenerateDataKey@eu-west-1', 'Encrypt@eu-west-1'])
      expect(header.encryptedDataKeys.map((edk) => text(edk.providerInfo))).toEqual([key.arn, key.arn])
      kms.resetCalls()
      expect(text((await decrypt(keyring, ciphertext)).plaintext)).toBe('code 123456')
      expect(kms.calls.map((call) => `${call.operation}@${call.region}`)).toEqual(['Decrypt@eu-west-1'])
    })

    it('the default Region is the SDK\'s own (AWS_REGION here); a bare key id, alias and multi-Region key id all encrypt there', async () => {
      process.env.AWS_REGION = 'us-west-2'
      const key = kms.createKey({ region: 'us-west-2' })
      const mrk = kms.createKey({ region: 'us-west-2', multiRegion: true })
      kms.createAlias('alias/default-region', key.arn)
      const clientSupplier = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials } })
      for (const [keyring, arn] of [
        [new KmsKeyring({ generatorKeyId: key.keyId, clientSupplier }), key.arn],
        [new KmsKeyring({ generatorKeyId: 'alias/default-region', clientSupplier }), key.arn],
        [new KmsMrkKeyring({ keyId: mrk.keyId, clientSupplier }), mrk.arn],
        [buildKmsMrkMultiKeyring({ generator: 'alias/default-region', keyIds: [mrk.keyId], clientSupplier }), key.arn],
      ] as const) {
        kms.resetCalls()
        const { ciphertext, header } = await encrypt(keyring, 'default Region')
        expect(text(header.encryptedDataKeys[0]!.providerInfo)).toBe(arn)
        expect(kms.calls.every((call) => call.region === 'us-west-2' && call.ok)).toBe(true)
        // The message records key ARNs, so the ARN decrypts it.
        expect(text((await decrypt(new KmsKeyring({ keyIds: [arn], clientSupplier }), ciphertext)).plaintext)).toBe('default Region')
      }
    })

    it('decrypting with only Region-less identifiers is refused, naming them: messages record key ARNs', async () => {
      const key = kms.createKey({ region: 'us-east-1' })
      kms.createAlias('alias/only-alias', key.arn)
      const clientSupplier = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials, region: 'us-east-1' } })
      const { ciphertext } = await encrypt(new KmsKeyring({ generatorKeyId: key.arn, clientSupplier }), 'x')
      kms.resetCalls()
      for (const keyring of [
        new KmsKeyring({ generatorKeyId: 'alias/only-alias', keyIds: [key.keyId], clientSupplier }),
        new KmsMrkKeyring({ keyId: key.keyId, clientSupplier }),
      ]) {
        const [failure] = failuresOf(await rejectionOf(decrypt(keyring, ciphertext)))
        expect(failure!.error).toBeInstanceOf(ConfigurationError)
        expect((failure!.error as Error).message).toContain(key.keyId)
        expect((failure!.error as Error).message).toMatch(/messages record the key ARN/)
      }
      // One key ARN among them: a message under another key is simply not this keyring's.
      const other = kms.createKey({ region: 'us-east-1' })
      const mixed = new KmsKeyring({ generatorKeyId: 'alias/only-alias', keyIds: [other.arn], clientSupplier })
      const [failure] = failuresOf(await rejectionOf(decrypt(mixed, ciphertext)))
      expect(failure!.error).not.toBeInstanceOf(ConfigurationError)
      expect((failure!.error as Error).message).toMatch(/No encrypted data key is for/)
      expect(kms.calls).toHaveLength(0)
    })

    it('an alias moved to another key (UpdateAlias, a rotation): the same keyring encrypts under the new key; both decrypt', async () => {
      const [before, after] = [kms.createKey({ region: 'us-east-1' }), kms.createKey({ region: 'us-east-1' })]
      kms.createAlias('alias/rotated', before.arn)
      const clientConfig = { endpoint: kms.endpoint, credentials, region: 'us-east-1' }
      const keyring = new KmsKeyring({ generatorKeyId: 'alias/rotated', clientSupplier: defaultKmsClientSupplier({ clientConfig }) })
      const old = await encrypt(keyring, 'before the rotation')
      const admin = new KMSClient(clientConfig)
      try {
        await admin.send(new UpdateAliasCommand({ AliasName: 'alias/rotated', TargetKeyId: after.keyId }))
      } finally {
        admin.destroy()
      }
      const fresh = await encrypt(keyring, 'after the rotation')
      expect([old, fresh].map(({ header }) => text(header.encryptedDataKeys[0]!.providerInfo))).toEqual([before.arn, after.arn])
      const reader = new KmsKeyring({ keyIds: [before.arn, after.arn], clientSupplier: supplier })
      expect(text((await decrypt(reader, old.ciphertext)).plaintext)).toBe('before the rotation')
      expect(text((await decrypt(reader, fresh.ciphertext)).plaintext)).toBe('after the rotation')
    })

    it('with no default Region anywhere, encrypt fails saying how to give one', async () => {
      const clientSupplier = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials } })
      const error = await rejectionOf(encrypt(new KmsKeyring({ generatorKeyId: 'alias/nowhere', clientSupplier }), 'x'))
      expect(error).toBeInstanceOf(KeyringError)
      expect((error as Error).message).toMatch(/alias\/nowhere.*no default Region.*AWS_REGION.*clientConfig\.region.*ARN/)
      // The SDK's own failure to find one stays reachable, as the cause of the refusal.
      const refusal = (error as Error).cause
      expect(refusal).toBeInstanceOf(ConfigurationError)
      expect((refusal as Error).cause).toBeInstanceOf(Error) // the SDK's, whose words are the SDK's to change
      expect(kms.calls).toHaveLength(0)
    })

    it('the supplier\'s Region lists hold for the default Region too: at once for clientConfig.region, at the first call for the SDK\'s', async () => {
      const key = kms.createKey({ region: 'us-west-2' })
      const limited = (clientConfig: object) => defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials, ...clientConfig }, regions: { allow: ['us-east-1'] } })
      expect(() => new KmsKeyring({ generatorKeyId: key.keyId, clientSupplier: limited({ region: 'us-west-2' }) })).toThrow(
        /Region us-west-2 is not in this client supplier's allowed Regions/,
      )
      process.env.AWS_REGION = 'us-west-2'
      const keyring = new KmsKeyring({ generatorKeyId: key.keyId, clientSupplier: limited({}) })
      const error = await rejectionOf(encrypt(keyring, 'x'))
      expect(error).toBeInstanceOf(KeyringError)
      expect((error as Error).cause).toBeInstanceOf(ConfigurationError)
      expect((error as Error).message).toMatch(/Region us-west-2 is not in this client supplier's allowed Regions/)
      expect(kms.calls).toHaveLength(0)
      const denied = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials }, regions: { deny: ['us-west-2'] } })
      expect(await rejectionOf(encrypt(new KmsKeyring({ generatorKeyId: key.keyId, clientSupplier: denied }), 'x'))).toMatchObject({
        message: expect.stringMatching(/Region us-west-2 is in this client supplier's denied Regions/),
      })
      // Allowed, it calls KMS there.
      process.env.AWS_REGION = 'us-east-1'
      const east = kms.createKey({ region: 'us-east-1' })
      await encrypt(new KmsKeyring({ generatorKeyId: east.keyId, clientSupplier: limited({}) }), 'x')
      expect(kms.calls.map((call) => `${call.operation}@${call.region}`)).toEqual(['GenerateDataKey@us-east-1'])
    })
  })

  it('duplicate multi-Region keys are refused before any call', () => {
    const primary = kms.createKey({ region: 'us-east-1', multiRegion: true })
    const replica = kms.replicateKey(primary.arn, 'us-west-2')
    expect(() => buildKmsMrkMultiKeyring({ generator: primary.arn, keyIds: [replica.arn], clientSupplier: supplier })).toThrow(ConfigurationError)
    expect(kms.calls).toHaveLength(0)
  })
})

describe('@aws-sdk/client-kms that does not load', () => {
  it("is an INVALID_CONFIGURATION error, as the keyring failure's cause, with the load failure as its cause, tried again next time", async () => {
    // Installed but failing to load (as under a bundler that cannot load it), not missing: the message must not
    // claim it is missing, and the cause says what happened.
    const loadFailure = new Error('Dynamic require of "node:https" is not supported')
    await withFailingImport('@aws-sdk/client-kms', loadFailure, async (loadable) => {
      const fresh = await import('../src/index.js')
      const sent: unknown[] = []
      const keyring = new fresh.KmsKeyring({
        generatorKeyId: `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
        clientSupplier: () => ({ send: async (command: unknown) => (sent.push(command), Promise.reject(new Error('KMS unreachable'))) }),
      })
      const error = (await rejectionOf(fresh.encrypt(keyring, 'x'))) as EnvelopeError
      expect(error.code).toBe('KEYRING_FAILURE')
      const loading = error.cause as EnvelopeError
      expect(loading.code).toBe('INVALID_CONFIGURATION')
      expect(loading.message).toBe(
        'The KMS keyrings could not load @aws-sdk/client-kms (see cause), an optional peer dependency: `npm install` it if missing.',
      )
      expect((loading.cause as Error).cause).toBe(loadFailure)
      expect(sent).toEqual([])
      loadable()
      // Loaded now: the command reaches the client.
      expect(((await rejectionOf(fresh.encrypt(keyring, 'x'))) as EnvelopeError).code).toBe('KEYRING_FAILURE')
      expect(sent.length).toBe(1)
    })
  })

  it('an empty stand-in for it (a bundler told it is absent, as webpack\'s resolve.fallback false does) is refused as not loaded', async () => {
    await withEmptyStandIn('@aws-sdk/client-kms', ['KMSClient'], async () => {
      const fresh = await import('../src/index.js')
      const keyring = new fresh.KmsKeyring({
        generatorKeyId: `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
        clientSupplier: () => ({ send: async () => Promise.reject(new Error('KMS called')) }),
      })
      const loading = ((await rejectionOf(fresh.encrypt(keyring, 'x'))) as EnvelopeError).cause as EnvelopeError
      expect(loading.code).toBe('INVALID_CONFIGURATION')
      expect(loading.message).toContain('could not load @aws-sdk/client-kms')
      expect((loading.cause as Error).message).toContain('has no KMSClient: a bundler left it out')
    })
  })

  it('through the default client supplier, KmsRsaKeyring and the public key cache: INVALID_CONFIGURATION until it loads, then KMS is called', async () => {
    const loadFailure = new Error('Cannot find package @aws-sdk/client-kms')
    await withFailingImport('@aws-sdk/client-kms', loadFailure, async (loadable) => {
      const fresh = await import('../src/index.js')
      let requests = 0
      const requestHandler = {
        handle: async () => (
          requests++,
          { response: { statusCode: 500, headers: { 'content-type': 'application/x-amz-json-1.1' }, body: Buffer.from('{"__type":"KMSInternalException"}') } }
        ),
      }
      const clientSupplier = fresh.defaultKmsClientSupplier({ clientConfig: { requestHandler, maxAttempts: 1, credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' } } })
      const keyArn = `arn:aws:kms:us-east-1:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`
      const publicKeys = fresh.createKmsPublicKeyCache({ clientSupplier })
      const rsa = new fresh.KmsRsaKeyring({ keyId: keyArn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', clientSupplier })
      const edk = { providerId: 'aws-kms-rsa', providerInfo: new TextEncoder().encode(keyArn), ciphertext: new Uint8Array(256 + 48) }
      // The keyring's failure for the data key it tried (NO_DECRYPTABLE_KEY gathers them).
      const decryptFailure = async () => ((await rejectionOf(rsa.onDecrypt({ suite, encryptionContext: {} }, [edk], nodeBackend))) as NoDecryptableKeyError).failures[0]?.error
      expect(await rejectionOf(publicKeys.get(keyArn))).toMatchObject({ code: 'INVALID_CONFIGURATION' })
      expect(await decryptFailure()).toMatchObject({ code: 'INVALID_CONFIGURATION' })
      // A supplier's client used directly (with a command of one's own) fails alike, and does not keep failing.
      const direct = clientSupplier('eu-west-1')
      expect(await rejectionOf(direct.send({ input: {} }))).toMatchObject({ code: 'INVALID_CONFIGURATION' })
      expect(requests).toBe(0)
      loadable()
      const { GetPublicKeyCommand } = await import('@aws-sdk/client-kms')
      expect(await rejectionOf(direct.send(new GetPublicKeyCommand({ KeyId: keyArn })))).toMatchObject({ name: 'KMSInternalException' })
      expect(requests).toBe(1)
      // Tried again: the SDK loads and its request reaches KMS, whose failure is a KMS failure now.
      expect(await rejectionOf(publicKeys.get(keyArn))).toMatchObject({ code: 'KEYRING_FAILURE' })
      expect(await decryptFailure()).toMatchObject({ code: 'KEYRING_FAILURE' })
      expect(requests).toBe(3)
    })
  })
})
