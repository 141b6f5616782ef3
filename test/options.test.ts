// An option given as `undefined` is an option not given: it keeps its default, at run time and in the types
// (each optional option is declared `?: T | undefined`, so applications compiled with exactOptionalPropertyTypes
// can pass `value ?? undefined`; test/package.test.ts compiles such an application against the packed types).
//
// An option name that a call does not take is refused (a ConfigurationError naming it and the names the call
// takes), since ignoring it would let a misspelt check silently not run.
import { Readable } from 'node:stream'
import { runInNewContext } from 'node:vm'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createEncryptedDynamoDbClient, DynamoDbItemEncryptor } from '../src/dynamodb/index.js'
import {
  buildKmsMrkDiscoveryMultiKeyring,
  buildKmsMrkMultiKeyring,
  CachingMaterialsManager,
  ConfigurationError,
  createKmsPublicKeyCache,
  decrypt,
  decryptNodeStream,
  decryptStream,
  defaultKmsClientSupplier,
  encrypt,
  encryptNodeStream,
  InvalidEncryptionContextError,
  encryptStream,
  KmsDiscoveryKeyring,
  KmsKeyring,
  KmsMrkDiscoveryKeyring,
  KmsMrkKeyring,
  KmsRsaKeyring,
  LocalMaterialsCache,
  MultiKeyring,
  RawAesKeyring,
  RawRsaKeyring,
  RequiredEncryptionContextMaterialsManager,
} from '../src/index.js'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'
import { aesKeyring, rejectionOf, rsaPem, spyKeyring, thrownBy } from './helpers/fixtures.js'
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

  it("each commitment policy's default suite: 0x0578 when it requires commitment on encrypt, else 0x0378", async () => {
    const defaults = [['REQUIRE_ENCRYPT_REQUIRE_DECRYPT', 0x0578], ['REQUIRE_ENCRYPT_ALLOW_DECRYPT', 0x0578], ['FORBID_ENCRYPT_ALLOW_DECRYPT', 0x0378]] as const
    for (const [commitmentPolicy, suite] of defaults) {
      expect((await encrypt(keyring, plaintext, { commitmentPolicy })).header.algorithmSuiteId, commitmentPolicy).toBe(suite)
    }
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

describe('an option set on Object.prototype (prototype pollution elsewhere in the application) is not read', () => {
  const polluted: string[] = []
  /** Sets `name` on Object.prototype, as a polluting bug in some other package would; undone after each test. */
  function pollute(name: string, value: unknown): void {
    Object.defineProperty(Object.prototype, name, { value, configurable: true, enumerable: true, writable: true })
    polluted.push(name)
  }
  afterEach(() => {
    for (const name of polluted.splice(0)) delete (Object.prototype as Record<string, unknown>)[name]
  })

  it('encrypt keeps its defaults: no downgrade to a suite without key commitment, signing or key derivation', async () => {
    pollute('commitmentPolicy', 'FORBID_ENCRYPT_ALLOW_DECRYPT')
    pollute('algorithmSuite', 0x0014)
    pollute('frameLength', 1)
    for (const options of [undefined, {}]) {
      expect((await encrypt(keyring, plaintext, options)).header).toMatchObject({ algorithmSuiteId: 0x0578, frameLength: 4096 })
    }
    const sealing = encryptStream(keyring, {})
    await readAll(chunked(plaintext, 999).pipeThrough(sealing))
    expect(await sealing.header).toMatchObject({ algorithmSuiteId: 0x0578, frameLength: 4096 })
  })

  it('decrypt keeps the strict commitment policy: a message without key commitment is still refused', async () => {
    const { ciphertext } = await encrypt(keyring, plaintext, { algorithmSuite: 0x0178, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' })
    pollute('commitmentPolicy', 'FORBID_ENCRYPT_ALLOW_DECRYPT')
    for (const options of [undefined, {}]) {
      expect(await rejectionOf(decrypt(keyring, ciphertext, options))).toMatchObject({ code: 'COMMITMENT_POLICY_VIOLATION' })
    }
    expect(await rejectionOf(readAll(chunked(ciphertext, 500).pipeThrough(decryptStream(keyring, {}))))).toMatchObject({ code: 'COMMITMENT_POLICY_VIOLATION' })
    expect(await rejectionOf(decrypt(keyring, Readable.from([ciphertext]), {}))).toMatchObject({ code: 'COMMITMENT_POLICY_VIOLATION' })
  })

  it('keyrings and managers: no generator slipped into a multi-keyring, no Regions into a client supplier', async () => {
    const spy = spyKeyring(aesKeyring(32, 'attacker'))
    pollute('generator', spy.keyring)
    const multi = new MultiKeyring({ children: [keyring] })
    expect(await rejectionOf(encrypt(multi, plaintext))).toMatchObject({ message: expect.stringContaining('MultiKeyring has no generator') })
    expect(spy.calls.encrypt).toBe(0)
    pollute('regions', { allow: ['eu-west-1'] })
    pollute('allow', ['eu-west-1'])
    expect(() => defaultKmsClientSupplier()('us-east-1')).not.toThrow()
    let supplied = 0
    pollute('clientSupplier', () => {
      supplied += 1
      return { send: () => Promise.reject(new Error('not this client')) }
    })
    expect(new KmsKeyring({ generatorKeyId: KEY_ARN }).generatorKeyId).toBe(KEY_ARN) // its clients are made here
    new KmsMrkKeyring({ keyId: MRK_ARN })
    expect(supplied).toBe(0)
    pollute('maxMessagesEncrypted', 0.5)
    expect(() => new CachingMaterialsManager({ keyring, maxAge: 1000 })).not.toThrow()
  })

  it('a signal set on Object.prototype (not an AbortSignal, or an aborted one) is not read by any call', async () => {
    const items = new DynamoDbItemEncryptor({ tableName: 'orders', partitionKeyName: 'pk', attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', card: 'ENCRYPT_AND_SIGN' }, keyring })
    // Node itself reads an inherited `signal` in its own option bags (a module import fails with ERR_INVALID_ARG_TYPE):
    // a first round without it loads every module these calls load on demand.
    async function* pieces(bytes: Uint8Array) {
      yield bytes.subarray(0, 7)
      yield bytes.subarray(7)
    }
    for (const signal of [undefined, 'soon', AbortSignal.abort()]) {
      if (signal !== undefined) pollute('signal', signal)
      const { ciphertext } = await encrypt(keyring, plaintext, {})
      expect((await decrypt(keyring, ciphertext)).plaintext).toEqual(plaintext)
      // Input in pieces from a generator: Node's own Readable reads an inherited signal too.
      expect((await decrypt(keyring, pieces(ciphertext), {})).plaintext).toEqual(plaintext)
      expect((await encrypt(keyring, pieces(plaintext))).ciphertext.length).toBeGreaterThan(plaintext.length)
      expect(await readAll(chunked(ciphertext, 500).pipeThrough(decryptStream(keyring, {})))).not.toHaveLength(0)
      const stored = await items.encryptItem({ pk: { S: 'u1' }, card: { S: '4111' } }, {})
      expect((await items.decryptItem(stored)).card).toEqual({ S: '4111' })
      for (const name of polluted.splice(0)) delete (Object.prototype as Record<string, unknown>)[name]
    }
    // The object calls, given options that inherit a signal (a polluted prototype's enumerable pair would also be
    // marshalled by @aws-sdk/util-dynamodb as an attribute of the object, which is that library's to refuse).
    const inheriting = Object.create({ signal: 'soon' }) as object
    const object = await items.encryptObject({ pk: 'u1', card: '4111' }, inheriting)
    expect(await items.decryptObject(object, inheriting)).toEqual({ pk: 'u1', card: '4111' })
  })

  it('the DynamoDB item encryptor still encrypts, with its default suite', async () => {
    pollute('plaintextPolicy', 'FORCE_PLAINTEXT_WRITE_ALLOW_PLAINTEXT_READ')
    pollute('algorithmSuite', 0x6700)
    const items = new DynamoDbItemEncryptor({ tableName: 'orders', partitionKeyName: 'pk', attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', card: 'ENCRYPT_AND_SIGN' }, keyring })
    const stored = await items.encryptItem({ pk: { S: 'u1' }, card: { S: '4111' } })
    expect(stored.card).toHaveProperty('B')
    expect((await items.decryptItemWithHeader(stored)).parsedHeader?.algorithmSuiteId).toBe(0x6701)
  })
})

const KEY_ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab'
const MRK_ARN = 'arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab'

/** The error a call gave for the option `name`, checked to be the one this file is about. */
function expectRefused(error: unknown, where: string, name: string, takes: string): void {
  expect(error).toBeInstanceOf(ConfigurationError)
  expect((error as Error).message).toContain(`${where} has no option ${JSON.stringify(name)}; it takes `)
  expect((error as Error).message).toContain(takes)
}

describe('an option name that a call does not take is refused', () => {
  it('decrypt: a misspelt encryptionContext fails before any keyring runs, so the context check cannot silently not run', async () => {
    const { ciphertext } = await encrypt(keyring, plaintext, { encryptionContext: { tenant: 'acme' } })
    const spy = spyKeyring(keyring)
    const error = await rejectionOf(decrypt(spy.keyring, ciphertext, { encryptionContxt: { tenant: 'other' } } as never))
    expectRefused(error, 'decrypt', 'encryptionContxt', 'encryptionContext, commitmentPolicy, maxEncryptedDataKeys, maxBodySize, signal')
    expect(spy.calls.decrypt).toBe(0)
    // A stream's own options are not one-shot decrypt's, whether the message comes as bytes or as chunks.
    expectRefused(await rejectionOf(decrypt(keyring, ciphertext, { unsignedOnly: true } as never)), 'decrypt', 'unsignedOnly', 'maxBodySize, signal.')
    expectRefused(await rejectionOf(decrypt(keyring, Readable.from([ciphertext]), { unsignedOnly: true } as never)), 'decrypt', 'unsignedOnly', 'maxBodySize, signal.')
  })

  it('encrypt: one-shot, of bytes and of chunks', async () => {
    const spy = spyKeyring(keyring)
    const takes = 'encryptionContext, algorithmSuite, frameLength, commitmentPolicy, maxEncryptedDataKeys, signal.'
    expectRefused(await rejectionOf(encrypt(spy.keyring, plaintext, { encryptionContxt: { a: 'b' } } as never)), 'encrypt', 'encryptionContxt', takes)
    expectRefused(await rejectionOf(encrypt(spy.keyring, Readable.from([plaintext]), { plaintextLength: 10_000 } as never)), 'encrypt', 'plaintextLength', takes)
    expect(spy.calls.encrypt).toBe(0)
  })

  it('streams, Web and Node, when they are made', () => {
    const encryptTakes = 'encryptionContext, algorithmSuite, frameLength, commitmentPolicy, maxEncryptedDataKeys, signal, plaintextLength, maxPlaintextLength.'
    const decryptTakes = 'encryptionContext, commitmentPolicy, maxEncryptedDataKeys, maxBodySize, signal, unsignedOnly, maxHeaderSize.'
    expectRefused(thrownBy(() => encryptStream(keyring, { plaintextLenght: 5 } as never)), 'An encrypt stream', 'plaintextLenght', encryptTakes)
    expectRefused(thrownBy(() => encryptNodeStream(keyring, { maxBodySize: 5 } as never)), 'An encrypt stream', 'maxBodySize', encryptTakes)
    expectRefused(thrownBy(() => decryptStream(keyring, { unsignedOnlly: true } as never)), 'A decrypt stream', 'unsignedOnlly', decryptTakes)
    expectRefused(thrownBy(() => decryptNodeStream(keyring, { frameLength: 5 } as never)), 'A decrypt stream', 'frameLength', decryptTakes)
  })

  it('options that are not a plain object, a Map among them (its entries are not its own properties)', async () => {
    for (const [call, run, kind] of [
      ['encrypt', () => encrypt(keyring, plaintext, 'tenant=acme' as never), 'String'],
      ['decrypt', () => decrypt(keyring, new Uint8Array(1), 42 as never), 'Number'],
      ['decrypt', () => decrypt(keyring, new Uint8Array(1), new Map([['encryptionContext', { tenant: 'acme' }]]) as never), 'Map'],
    ] as const) {
      const error = await rejectionOf(run())
      expect(error).toBeInstanceOf(ConfigurationError)
      expect((error as Error).message).toBe(`${call} options must be a plain object; got ${kind}.`)
    }
    expect(thrownBy(() => new RawAesKeyring(true as never))).toBeInstanceOf(ConfigurationError)
    // A Map of Regions to allow would have left the supplier unrestricted.
    expect(thrownBy(() => defaultKmsClientSupplier({ regions: new Map([['allow', ['us-east-1']]]) as never }))).toMatchObject({
      message: 'defaultKmsClientSupplier regions options must be a plain object; got Map.',
    })
  })

  it('the name is shown escaped and cut short', () => {
    const name = `\u001b[31m${'x'.repeat(10_000)}`
    const error = thrownBy(() => new MultiKeyring({ generator: keyring, [name]: 1 } as never)) as Error
    expect(error).toBeInstanceOf(ConfigurationError)
    expect(error.message.length).toBeLessThan(300)
    expect(error.message).not.toMatch(/[\u0000-\u001f]/)
    expect(error.message).toContain('it takes generator, children.')
  })

  it('keyrings', () => {
    const { publicKey, privateKey } = rsaPem()
    const wrappingKey = new Uint8Array(32)
    const cases: [string, () => unknown, string][] = [
      ['RawAesKeyring', () => new RawAesKeyring({ keyNamespace: 'a', keyName: 'b', wrappingKey, padding: 'x' } as never), 'padding'],
      ['RawRsaKeyring', () => new RawRsaKeyring({ keyNamespace: 'a', keyName: 'b', publicKey, privateKey, padding: 'OAEP-SHA256', hash: 'sha256' } as never), 'hash'],
      ['MultiKeyring', () => new MultiKeyring({ generator: keyring, child: [keyring] } as never), 'child'],
      ['KmsKeyring', () => new KmsKeyring({ generatorKeyId: KEY_ARN, grantToken: ['t'] } as never), 'grantToken'],
      ['KmsDiscoveryKeyring', () => new KmsDiscoveryKeyring({ discoveryFiler: { partition: 'aws', accountIds: ['111122223333'] } } as never), 'discoveryFiler'],
      ['KmsMrkKeyring', () => new KmsMrkKeyring({ keyId: MRK_ARN, region: 'us-east-1' } as never), 'region'],
      ['KmsMrkDiscoveryKeyring', () => new KmsMrkDiscoveryKeyring({ region: 'us-east-1', discoveryfilter: {} } as never), 'discoveryfilter'],
      ['buildKmsMrkMultiKeyring', () => buildKmsMrkMultiKeyring({ generator: MRK_ARN, keyId: [] } as never), 'keyId'],
      ['buildKmsMrkDiscoveryMultiKeyring', () => buildKmsMrkDiscoveryMultiKeyring({ regions: ['us-east-1'], region: 'x' } as never), 'region'],
      ['KmsRsaKeyring', () => new KmsRsaKeyring({ keyId: KEY_ARN, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey, client: {} } as never), 'client'],
      ['defaultKmsClientSupplier', () => defaultKmsClientSupplier({ config: {} } as never), 'config'],
      ['defaultKmsClientSupplier regions', () => defaultKmsClientSupplier({ regions: { allowed: ['us-east-1'] } } as never), 'allowed'],
      ['KmsDiscoveryKeyring discoveryFilter', () => new KmsDiscoveryKeyring({ discoveryFilter: { partition: 'aws', accountIds: ['1'], accountId: '2' } } as never), 'accountId'],
      ['createKmsPublicKeyCache', () => createKmsPublicKeyCache({ maxAgeMs: 5 } as never), 'maxAgeMs'],
    ]
    for (const [where, build, name] of cases) expectRefused(thrownBy(build), where, name, '.')
    // A KMS keyring given KmsRsaKeyring's kmsClient is told what to pass instead.
    expect(thrownBy(() => new KmsKeyring({ generatorKeyId: KEY_ARN, kmsClient: {} } as never))).toMatchObject({ message: expect.stringContaining('clientSupplier: () => kmsClient') })
  })

  it('materials managers and the cache', () => {
    const cases: [string, () => unknown, string][] = [
      ['CachingMaterialsManager', () => new CachingMaterialsManager({ keyring, maxAge: 1000, maxMessagesEncripted: 1 } as never), 'maxMessagesEncripted'],
      ['LocalMaterialsCache', () => new LocalMaterialsCache({ capacity: 1, onEvict: () => undefined } as never), 'onEvict'],
      ['RequiredEncryptionContextMaterialsManager', () => new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['a'], keyring, requiredKey: 'b' } as never), 'requiredKey'],
    ]
    for (const [where, build, name] of cases) expectRefused(thrownBy(build), where, name, '.')
  })

  it('the DynamoDB item encryptor and client', () => {
    const config = { tableName: 'orders', partitionKeyName: 'pk', attributeActionsOnEncrypt: { pk: 'SIGN_ONLY' as const }, keyring }
    expectRefused(thrownBy(() => new DynamoDbItemEncryptor({ ...config, allowedUnsignedAttributesPrefix: 'x:' } as never)), 'DynamoDbItemEncryptor', 'allowedUnsignedAttributesPrefix', 'allowedUnsignedAttributePrefix')
    const client = { middlewareStack: { add: () => undefined, addRelativeTo: () => undefined, remove: () => true } }
    expectRefused(thrownBy(() => createEncryptedDynamoDbClient(client as never, { table: {} } as never)), 'createEncryptedDynamoDbClient', 'table', 'it takes tables.')
    // Read as objects, a Map of tables would name none and a Map of actions would have none.
    const encryptor = new DynamoDbItemEncryptor(config)
    for (const [tables, message] of [
      [new Map([['orders', encryptor]]), 'createEncryptedDynamoDbClient tables must be a plain object of table name to DynamoDbItemEncryptor; got Map.'],
      [undefined, 'createEncryptedDynamoDbClient tables must be a plain object of table name to DynamoDbItemEncryptor; got Undefined.'],
      [{}, 'createEncryptedDynamoDbClient tables names no table, so the client would encrypt nothing.'],
      [{ orders: config }, 'createEncryptedDynamoDbClient: tables["orders"] must be a DynamoDbItemEncryptor.'],
      [{ invoices: encryptor }, 'createEncryptedDynamoDbClient: tables["invoices"] is the encryptor of table "orders".'],
    ] as const) {
      expect(thrownBy(() => createEncryptedDynamoDbClient(client as never, { tables } as never))).toMatchObject({ code: 'INVALID_CONFIGURATION', message })
    }
    expect(createEncryptedDynamoDbClient(client as never, { tables: { orders: encryptor } })).toBe(client)
    const partial = { middlewareStack: { add: () => undefined, remove: () => true } }
    expect(thrownBy(() => createEncryptedDynamoDbClient(partial as never, { tables: { orders: encryptor } }))).toMatchObject({
      message: 'createEncryptedDynamoDbClient needs an @aws-sdk/client-dynamodb client.',
    })
    // DAX's client (@amazon-dax-sdk/client-dax) has a middleware stack whose every method throws.
    const daxError = Object.assign(new Error('custom middleware and middlewareStacks are not supported for DAX. Please refer to documentation.'), { name: 'DaxClientError' })
    const refuse = () => {
      throw daxError
    }
    const dax = { middlewareStack: { add: refuse, addRelativeTo: refuse, remove: refuse } }
    const refused = thrownBy(() => createEncryptedDynamoDbClient(dax as never, { tables: { orders: encryptor } }))
    expect(refused).toBeInstanceOf(ConfigurationError)
    expect(refused).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      cause: daxError,
      message:
        'createEncryptedDynamoDbClient could not add its middleware to the client (DaxClientError: custom middleware and middlewareStacks are not supported for DAX. Please refer to documentation.): ' +
        "it needs an @aws-sdk/client-dynamodb client. DAX's client takes no middleware: encrypt and decrypt its items with the table's DynamoDbItemEncryptor.",
    })
    const actions = new Map([['pk', 'SIGN_ONLY']])
    expect(thrownBy(() => new DynamoDbItemEncryptor({ ...config, attributeActionsOnEncrypt: actions } as never))).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: 'DynamoDbItemEncryptor attributeActionsOnEncrypt must be a plain object of attribute name to crypto action; got Map.',
    })
  })

  it('option values of the wrong kind are refused, not read as their truthiness or as empty', async () => {
    // A signed message (the default suite) that unsignedOnly must refuse: a string or number is not taken as false.
    const { ciphertext } = await encrypt(keyring, plaintext, { encryptionContext: { tenant: 'acme' } })
    for (const [unsignedOnly, shown] of [['true', '"true"'], [1, '1'], [null, 'null']] as const) {
      const error = thrownBy(() => decryptStream(keyring, { unsignedOnly } as never))
      expect(error).toBeInstanceOf(ConfigurationError)
      expect((error as Error).message).toBe(`unsignedOnly must be true or false; got ${shown}.`)
    }
    // null is shown as null, not as its typeof ("object").
    expect(thrownBy(() => decryptStream(keyring, { maxBodySize: null } as never))).toMatchObject({ message: 'maxBodySize must be an integer from 1 to 9007199254740991; got null.' })
    // A Map's pairs are not its own properties: taken as an object it would be an empty context.
    const pairs = new Map([['tenant', 'other']])
    const encrypting = await rejectionOf(encrypt(keyring, plaintext, { encryptionContext: pairs as never }))
    expect(encrypting).toBeInstanceOf(InvalidEncryptionContextError)
    expect((encrypting as Error).message).toBe('encryptionContext must be a plain object of string keys and string values; got Map.')
    const decrypting = await rejectionOf(decrypt(keyring, ciphertext, { encryptionContext: pairs as never }))
    expect(decrypting).toBeInstanceOf(ConfigurationError)
    expect((decrypting as Error).message).toBe('decrypt encryptionContext must be a plain object of string pairs; got Map.')
    // Nor may a KMS client configuration be a Map: its endpoint and credentials would be lost, and the calls go
    // to AWS with the default credentials.
    expect(thrownBy(() => defaultKmsClientSupplier({ clientConfig: new Map([['endpoint', 'http://127.0.0.1:1']]) as never }))).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: 'defaultKmsClientSupplier clientConfig must be a plain object of KMSClient options; got Map.',
    })
    // Plain objects from another realm, or without a prototype, are plain objects.
    const foreign = runInNewContext('({ tenant: "acme" })') as Record<string, string>
    const bare = Object.assign(Object.create(null) as Record<string, string>, { tenant: 'acme' })
    expect((await decrypt(keyring, (await encrypt(keyring, plaintext, { encryptionContext: foreign })).ciphertext, { encryptionContext: bare })).plaintext).toEqual(plaintext)
  })

  describe('the KMS emulator', () => {
    let kms: KmsEmulator
    beforeAll(async () => {
      kms = await startKmsEmulator()
    })
    afterAll(() => kms.close())

    it('its start, createKey and fault filters', async () => {
      expectRefused(await rejectionOf(startKmsEmulator({ statepath: 'kms.json' } as never)), 'startKmsEmulator', 'statepath', 'statePath')
      expectRefused(thrownBy(() => kms.createKey({ keyspec: 'RSA_2048' } as never)), 'createKey', 'keyspec', 'keySpec')
      expect(thrownBy(() => kms.createKey({ multiRegion: 'yes' } as never))).toMatchObject({ message: 'createKey multiRegion must be true or false.' })
      expect(thrownBy(() => kms.createKey({ description: 5 } as never))).toMatchObject({ message: 'createKey description must be a string of at most 8192 characters, as in KMS; got 5.' })
      expect(thrownBy(() => kms.createKey({ description: 'x'.repeat(8193) }))).toMatchObject({ code: 'INVALID_CONFIGURATION' })
      expect(kms.createKey({ description: 'x'.repeat(8192) }).arn).toMatch(/^arn:aws:kms:/)
      expectRefused(thrownBy(() => kms.faults.throttle(1, { operations: 'Decrypt' } as never)), 'faults.throttle filter', 'operations', 'it takes operation, region.')
      expectRefused(thrownBy(() => kms.faults.latency(5, { Region: 'us-east-1' } as never)), 'faults.latency filter', 'Region', 'it takes operation, region.')
      expectRefused(thrownBy(() => kms.faults.deny(KEY_ARN, { caller: 'x' } as never)), 'faults.deny filter', 'caller', 'it takes operation, accessKeyId.')
    })

    it('a typo in a call filter or fault is refused, not a filter that silently matches nothing', () => {
      // callCount: a count of 0 from a misspelt filter would pass a test that should have failed.
      expectRefused(thrownBy(() => kms.callCount({ opration: 'Decrypt' } as never)), 'callCount filter', 'opration', 'operation')
      for (const operation of ['decrypt', 'Generate Data Key', '']) {
        expect(thrownBy(() => kms.callCount({ operation }))).toMatchObject({
          code: 'INVALID_CONFIGURATION',
          message: `callCount filter.operation must be a KMS operation name such as "Decrypt"; got ${JSON.stringify(operation)}.`,
        })
      }
      expect(thrownBy(() => kms.callCount({ region: 5 } as never))).toMatchObject({ message: 'callCount filter.region must be a string; got 5.' })
      expect(kms.callCount({ operation: 'Sign', region: 'ap-south-1' })).toBe(0) // well formed: counted, even if never served
      // Faults: only what the emulator serves can match a request.
      expect(thrownBy(() => kms.faults.throttle(1, { operation: 'GenerateDatakey' }))).toMatchObject({
        message: expect.stringMatching(/^faults\.throttle filter\.operation "GenerateDatakey" is not an operation the emulator serves: it serves CreateKey, .*GenerateDataKey/),
      })
      expect(thrownBy(() => kms.faults.latency(5, { region: 'us-east1' }))).toMatchObject({
        message: 'faults.latency filter.region "us-east1" is not a Region the emulator serves: it serves us-east-1, us-west-2, eu-west-1.',
      })
      expect(thrownBy(() => kms.faults.deny(KEY_ARN, { operation: 'decrypt' }))).toMatchObject({ code: 'INVALID_CONFIGURATION' })
      expect(thrownBy(() => kms.faults.regionDown('mars-1'))).toMatchObject({
        message: 'faults.regionDown "mars-1" is not a Region the emulator serves: it serves us-east-1, us-west-2, eu-west-1.',
      })
      kms.faults.throttle(1, { operation: 'Decrypt', region: 'eu-west-1' })
      kms.faults.clear()
    })

    it('null options and filters mean none, as everywhere', async () => {
      const other = await startKmsEmulator(null as never)
      try {
        expect(other.regions).toEqual(['us-east-1', 'us-west-2', 'eu-west-1'])
        other.faults.latency(5, null as never)
        other.faults.latency(0, null as never) // removes every latency rule
        other.faults.throttle(1, null as never)
        other.faults.deny(KEY_ARN, null as never)
      } finally {
        await other.close()
      }
    })
  })
})
