// The KMS emulator driven by the real, unmodified @aws-sdk/client-kms over loopback HTTP, plus raw `fetch`
// for requests the SDK would never send.
import { constants, createPublicKey, generateKeyPairSync, publicEncrypt, randomBytes, type KeyObject } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DeleteAliasCommand,
  DescribeKeyCommand,
  DisabledException,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  GenerateRandomCommand,
  GetPublicKeyCommand,
  IncorrectKeyException,
  InvalidCiphertextException,
  InvalidKeyUsageException,
  KMSClient,
  KMSInternalException,
  KMSInvalidStateException,
  KMSServiceException,
  ListAliasesCommand,
  ListKeysCommand,
  NotFoundException,
  ReEncryptCommand,
  ReplicateKeyCommand,
  ScheduleKeyDeletionCommand,
  UnsupportedOperationException,
  UpdateAliasCommand,
} from '@aws-sdk/client-kms'
import fc from 'fast-check'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'
import { KmsFaults } from '../src/testing/kms-faults.js'
import { OPERATIONS } from '../src/testing/kms-operations.js'
import { systemProblem } from '../src/testing/kms-state.js'
import { rejectionOf } from './helpers/fixtures.js'

const started: KmsEmulator[] = []
const clients: KMSClient[] = []
let kms: KmsEmulator

async function start(options?: Parameters<typeof startKmsEmulator>[0]): Promise<KmsEmulator> {
  const emulator = await startKmsEmulator(options)
  started.push(emulator)
  return emulator
}

/** A real SDK client pointed at an emulator. `maxAttempts: 1` unless a test is about retries. */
function client(region: string, options: { emulator?: KmsEmulator; accessKeyId?: string; maxAttempts?: number } = {}): KMSClient {
  const created = new KMSClient({
    region,
    endpoint: (options.emulator ?? kms).endpoint,
    credentials: { accessKeyId: options.accessKeyId ?? 'AKIDEXAMPLE', secretAccessKey: 'x' },
    maxAttempts: options.maxAttempts ?? 1,
  })
  clients.push(created)
  return created
}

/** The SDK error a request failed with (the test fails when it succeeds). */
async function kmsFailure(promise: Promise<unknown>): Promise<KMSServiceException> {
  const error = await rejectionOf(promise)
  expect(error).toBeInstanceOf(KMSServiceException)
  return error as KMSServiceException
}

const text = (bytes: Uint8Array | undefined): string => Buffer.from(bytes ?? new Uint8Array()).toString('utf8')
const utf8 = (value: string): Uint8Array => new TextEncoder().encode(value)
const ARN = /^arn:aws:kms:([a-z0-9-]+):111122223333:key\/(.+)$/
const SERVED = 'us-east-1, us-west-2, eu-west-1'
const OPERATION_NAMES = Object.keys(OPERATIONS).join(', ')

let east: KMSClient
let west: KMSClient
let europe: KMSClient
let symmetricArn: string
let otherArn: string
let rsaArn: string

/** A deletion date `days` days after `scheduledAt` (KMS gives whole seconds, so up to one second either way). */
function expectDeletionIn(date: Date | undefined, scheduledAt: number, days: number): void {
  const after = date!.getTime() - scheduledAt - days * 86_400_000
  expect(after).toBeGreaterThan(-1000)
  expect(after).toBeLessThan(2000)
}

beforeAll(async () => {
  kms = await start()
  east = client('us-east-1')
  west = client('us-west-2')
  europe = client('eu-west-1')
  symmetricArn = kms.createKey({ region: 'us-east-1', description: 'main' }).arn
  otherArn = kms.createKey({ region: 'us-east-1' }).arn
  rsaArn = kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' }).arn
  kms.createAlias('alias/main', symmetricArn)
})

afterEach(() => kms.faults.clear())

afterAll(async () => {
  for (const created of clients) created.destroy()
  await Promise.all(started.map((emulator) => emulator.close()))
})

describe('KMS operations through the real SDK', () => {
  it('CreateKey and DescribeKey give full key metadata', async () => {
    const created = await east.send(new CreateKeyCommand({ Description: 'made by the SDK' }))
    const metadata = created.KeyMetadata!
    expect(metadata.KeyId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    expect(metadata.Arn).toBe(`arn:aws:kms:us-east-1:111122223333:key/${metadata.KeyId}`)
    const described = (await east.send(new DescribeKeyCommand({ KeyId: metadata.KeyId }))).KeyMetadata!
    expect(described).toMatchObject({
      AWSAccountId: '111122223333',
      KeyId: metadata.KeyId,
      Enabled: true,
      Description: 'made by the SDK',
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: 'Enabled',
      KeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      MultiRegion: false,
    })
    expect(described.CreationDate).toBeInstanceOf(Date)
    expect(Math.abs(described.CreationDate!.getTime() - Date.now())).toBeLessThan(60_000)
    // A single-Region symmetric key: its key material id, and nothing about Regions or deletion.
    expect(described.CurrentKeyMaterialId).toMatch(/^[0-9a-f]{64}$/)
    expect([described.MultiRegionConfiguration, described.DeletionDate, described.PendingDeletionWindowInDays]).toEqual([undefined, undefined, undefined])
    const rsa = (await east.send(new DescribeKeyCommand({ KeyId: rsaArn }))).KeyMetadata!
    expect(rsa).toMatchObject({ KeySpec: 'RSA_2048', EncryptionAlgorithms: ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'], MultiRegion: false })
    expect(rsa.CurrentKeyMaterialId).toBeUndefined()
  })

  it('CreateKey MultiRegion and ReplicateKey: same mrk id, shared family metadata', async () => {
    const primary = (await east.send(new CreateKeyCommand({ MultiRegion: true, Description: 'the family' }))).KeyMetadata!
    expect(primary.KeyId).toMatch(/^mrk-[0-9a-f]{32}$/)
    const replicated = await east.send(new ReplicateKeyCommand({ KeyId: primary.Arn, ReplicaRegion: 'eu-west-1' }))
    const replica = replicated.ReplicaKeyMetadata!
    expect(replica.KeyId).toBe(primary.KeyId)
    expect(replica.Description).toBe(primary.Description)
    expect(replica.Arn).toBe(`arn:aws:kms:eu-west-1:111122223333:key/${primary.KeyId}`)
    expect(replica.MultiRegionConfiguration).toEqual({
      MultiRegionKeyType: 'REPLICA',
      PrimaryKey: { Arn: primary.Arn, Region: 'us-east-1' },
      ReplicaKeys: [{ Arn: replica.Arn, Region: 'eu-west-1' }],
    })
    expect(JSON.parse(replicated.ReplicaPolicy!).Statement).toHaveLength(1)
    const again = (await east.send(new DescribeKeyCommand({ KeyId: primary.Arn }))).KeyMetadata!
    expect(again.MultiRegionConfiguration?.MultiRegionKeyType).toBe('PRIMARY')
    expect(again.MultiRegionConfiguration?.ReplicaKeys).toEqual([{ Arn: replica.Arn, Region: 'eu-west-1' }])
    const described = await east.send(new ReplicateKeyCommand({ KeyId: primary.Arn, ReplicaRegion: 'us-west-2', Description: 'its own' }))
    expect(described.ReplicaKeyMetadata!.Description).toBe('its own')
    expect((await kmsFailure(east.send(new ReplicateKeyCommand({ KeyId: primary.Arn, ReplicaRegion: 'eu-west-1' })))).name).toBe('AlreadyExistsException')
    expect(await kmsFailure(east.send(new ReplicateKeyCommand({ KeyId: symmetricArn, ReplicaRegion: 'eu-west-1' })))).toBeInstanceOf(
      UnsupportedOperationException,
    )
  })

  it.each([
    ['key id', () => ARN.exec(symmetricArn)![2]!],
    ['key ARN', () => symmetricArn],
    ['alias name', () => 'alias/main'],
    ['alias ARN', () => 'arn:aws:kms:us-east-1:111122223333:alias/main'],
  ])('Encrypt and Decrypt by %s, with the context bound', async (_kind, keyId) => {
    const encryptionContext = { tenant: 'a', purpose: 'test' }
    const encrypted = await east.send(new EncryptCommand({ KeyId: keyId(), Plaintext: utf8('hello'), EncryptionContext: encryptionContext }))
    expect(encrypted.KeyId).toBe(symmetricArn)
    expect(encrypted.EncryptionAlgorithm).toBe('SYMMETRIC_DEFAULT')
    const decrypted = await east.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, EncryptionContext: { purpose: 'test', tenant: 'a' } }))
    expect(text(decrypted.Plaintext)).toBe('hello')
    expect(decrypted.KeyId).toBe(symmetricArn)
    const withKeyId = await east.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, EncryptionContext: encryptionContext, KeyId: keyId() }))
    expect(text(withKeyId.Plaintext)).toBe('hello')
  })

  it('GenerateDataKey (NumberOfBytes and KeySpec) and GenerateDataKeyWithoutPlaintext give decryptable keys', async () => {
    const context = { file: 'x' }
    const bySize = await east.send(new GenerateDataKeyCommand({ KeyId: 'alias/main', NumberOfBytes: 32, EncryptionContext: context }))
    expect(bySize.Plaintext).toHaveLength(32)
    expect(bySize.KeyId).toBe(symmetricArn)
    expect(bySize.KeyMaterialId).toMatch(/^[0-9a-f]{64}$/)
    const reopened = await east.send(new DecryptCommand({ CiphertextBlob: bySize.CiphertextBlob, EncryptionContext: context }))
    expect(Buffer.from(reopened.Plaintext!).equals(Buffer.from(bySize.Plaintext!))).toBe(true)
    expect(reopened.KeyMaterialId).toBe(bySize.KeyMaterialId)
    const bySpec = await east.send(new GenerateDataKeyCommand({ KeyId: symmetricArn, KeySpec: 'AES_128' }))
    expect(bySpec.Plaintext).toHaveLength(16)
    const hidden = await east.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: symmetricArn, KeySpec: 'AES_256', EncryptionContext: context }))
    expect(Object.keys(hidden)).not.toContain('Plaintext')
    expect((await east.send(new DecryptCommand({ CiphertextBlob: hidden.CiphertextBlob, EncryptionContext: context }))).Plaintext).toHaveLength(32)
  })

  it('ReEncrypt moves a ciphertext to another key and context', async () => {
    const first = await east.send(new EncryptCommand({ KeyId: symmetricArn, Plaintext: utf8('move me'), EncryptionContext: { a: '1' } }))
    const moved = await east.send(
      new ReEncryptCommand({
        CiphertextBlob: first.CiphertextBlob,
        SourceEncryptionContext: { a: '1' },
        DestinationKeyId: otherArn,
        DestinationEncryptionContext: { b: '2' },
      }),
    )
    expect(moved).toMatchObject({ SourceKeyId: symmetricArn, KeyId: otherArn, SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT', DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT' })
    const materialId = async (KeyId: string) => (await east.send(new DescribeKeyCommand({ KeyId }))).KeyMetadata!.CurrentKeyMaterialId
    expect([moved.SourceKeyMaterialId, moved.DestinationKeyMaterialId]).toEqual([await materialId(symmetricArn), await materialId(otherArn)])
    const decrypted = await east.send(new DecryptCommand({ CiphertextBlob: moved.CiphertextBlob, EncryptionContext: { b: '2' } }))
    expect([text(decrypted.Plaintext), decrypted.KeyId]).toEqual(['move me', otherArn])
  })

  it('DisableKey, EnableKey and ScheduleKeyDeletion change what the key can do', async () => {
    const { KeyMetadata } = await east.send(new CreateKeyCommand({}))
    const keyId = KeyMetadata!.Arn!
    await east.send(new DisableKeyCommand({ KeyId: keyId }))
    expect(await kmsFailure(east.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('x') })))).toBeInstanceOf(DisabledException)
    expect((await east.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).toMatchObject({ Enabled: false, KeyState: 'Disabled' })
    await east.send(new EnableKeyCommand({ KeyId: keyId }))
    await east.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('x') }))
    const scheduledAt = Date.now()
    const scheduled = await east.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }))
    expect(scheduled).toMatchObject({ KeyId: keyId, KeyState: 'PendingDeletion', PendingWindowInDays: 7 })
    expectDeletionIn(scheduled.DeletionDate, scheduledAt, 7)
    // Without a window, KMS waits 30 days.
    const other = (await east.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!
    const byDefault = await east.send(new ScheduleKeyDeletionCommand({ KeyId: other }))
    expect(byDefault.PendingWindowInDays).toBe(30)
    expectDeletionIn(byDefault.DeletionDate, scheduledAt, 30)
    expect(await kmsFailure(east.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('x') })))).toBeInstanceOf(KMSInvalidStateException)
    expect(await kmsFailure(east.send(new EnableKeyCommand({ KeyId: keyId })))).toBeInstanceOf(KMSInvalidStateException)
    expect(await kmsFailure(east.send(new DisableKeyCommand({ KeyId: keyId })))).toBeInstanceOf(KMSInvalidStateException)
    expect(await kmsFailure(east.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 20 })))).toBeInstanceOf(KMSInvalidStateException)
    // A multi-Region key pending deletion gets no replica.
    const multiRegion = (await east.send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!.Arn!
    await east.send(new ScheduleKeyDeletionCommand({ KeyId: multiRegion }))
    expect(await kmsFailure(east.send(new ReplicateKeyCommand({ KeyId: multiRegion, ReplicaRegion: 'eu-west-1' })))).toBeInstanceOf(KMSInvalidStateException)
    expect((await east.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata).toMatchObject({
      KeyState: 'PendingDeletion',
      PendingDeletionWindowInDays: 7,
      DeletionDate: scheduled.DeletionDate,
    })
  })

  it('CreateAlias and ListAliases, filtered by key and paged', async () => {
    const { KeyMetadata } = await west.send(new CreateKeyCommand({}))
    await west.send(new CreateAliasCommand({ AliasName: 'alias/list-b', TargetKeyId: KeyMetadata!.KeyId }))
    await west.send(new CreateAliasCommand({ AliasName: 'alias/list-a', TargetKeyId: KeyMetadata!.Arn }))
    const all = await west.send(new ListAliasesCommand({ KeyId: KeyMetadata!.Arn }))
    expect(all.Aliases!.map((alias) => alias.AliasName)).toEqual(['alias/list-a', 'alias/list-b'])
    expect(all.Aliases![0]).toMatchObject({ AliasArn: 'arn:aws:kms:us-west-2:111122223333:alias/list-a', TargetKeyId: KeyMetadata!.KeyId })
    // An alias never moved was last updated when it was made.
    expect(all.Aliases![0]!.LastUpdatedDate).toEqual(all.Aliases![0]!.CreationDate)
    const first = await west.send(new ListAliasesCommand({ Limit: 1 }))
    expect(first.Truncated).toBe(true)
    const second = await west.send(new ListAliasesCommand({ Limit: 1, Marker: first.NextMarker }))
    expect(second.Aliases![0]!.AliasName).not.toBe(first.Aliases![0]!.AliasName)
    expect((await kmsFailure(west.send(new CreateAliasCommand({ AliasName: 'alias/list-a', TargetKeyId: KeyMetadata!.KeyId })))).name).toBe('AlreadyExistsException')
    expect((await kmsFailure(west.send(new CreateAliasCommand({ AliasName: 'alias/aws/x', TargetKeyId: KeyMetadata!.KeyId })))).name).toBe('InvalidAliasNameException')
  })

  it('UpdateAlias moves an alias to another key (a rotation): new blobs are under it, old ones still decrypt; DeleteAlias removes it', async () => {
    const [first, second] = [await west.send(new CreateKeyCommand({})), await west.send(new CreateKeyCommand({}))].map((created) => created.KeyMetadata!)
    await west.send(new CreateAliasCommand({ AliasName: 'alias/rotating', TargetKeyId: first!.KeyId }))
    const before = await west.send(new EncryptCommand({ KeyId: 'alias/rotating', Plaintext: utf8('before') }))
    expect(before.KeyId).toBe(first!.Arn)
    await west.send(new UpdateAliasCommand({ AliasName: 'alias/rotating', TargetKeyId: second!.Arn }))
    const after = await west.send(new EncryptCommand({ KeyId: 'arn:aws:kms:us-west-2:111122223333:alias/rotating', Plaintext: utf8('after') }))
    expect(after.KeyId).toBe(second!.Arn)
    expect(text((await west.send(new DecryptCommand({ CiphertextBlob: before.CiphertextBlob }))).Plaintext)).toBe('before')
    const [listed] = (await west.send(new ListAliasesCommand({ KeyId: second!.KeyId }))).Aliases!
    expect(listed).toMatchObject({ AliasName: 'alias/rotating', TargetKeyId: second!.KeyId })
    expect(listed!.LastUpdatedDate!.getTime()).toBeGreaterThanOrEqual(listed!.CreationDate!.getTime())
    expect((await west.send(new ListAliasesCommand({ KeyId: first!.KeyId }))).Aliases).toEqual([])

    const rsa = (await west.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT' }))).KeyMetadata!
    const pending = (await west.send(new CreateKeyCommand({}))).KeyMetadata!
    await west.send(new ScheduleKeyDeletionCommand({ KeyId: pending.KeyId, PendingWindowInDays: 7 }))
    const refusals = [
      [{ AliasName: 'alias/no-such-alias', TargetKeyId: first!.KeyId }, NotFoundException],
      [{ AliasName: 'alias/rotating', TargetKeyId: 'alias/main' }, 'ValidationException'],
      // A symmetric key's alias cannot move to an asymmetric key, or back.
      [{ AliasName: 'alias/rotating', TargetKeyId: rsa.KeyId }, 'ValidationException'],
      [{ AliasName: 'alias/rotating', TargetKeyId: pending.KeyId }, KMSInvalidStateException],
    ] as const
    for (const [input, expected] of refusals) {
      const failure = await kmsFailure(west.send(new UpdateAliasCommand(input)))
      if (typeof expected === 'string') expect(failure.name).toBe(expected)
      else expect(failure).toBeInstanceOf(expected)
    }
    expect((await west.send(new EncryptCommand({ KeyId: 'alias/rotating', Plaintext: utf8('x') }))).KeyId).toBe(second!.Arn)

    await west.send(new DeleteAliasCommand({ AliasName: 'alias/rotating' }))
    expect(await kmsFailure(west.send(new EncryptCommand({ KeyId: 'alias/rotating', Plaintext: utf8('x') })))).toBeInstanceOf(NotFoundException)
    expect(await kmsFailure(west.send(new DeleteAliasCommand({ AliasName: 'alias/rotating' })))).toBeInstanceOf(NotFoundException)
    // The keys stay; the name can be used again.
    await west.send(new CreateAliasCommand({ AliasName: 'alias/rotating', TargetKeyId: first!.KeyId }))
  })

  it('ListKeys gives 100 keys a page unless told otherwise, ListAliases 50', async () => {
    const emulator = await start({ regions: ['ap-south-1'] })
    const region = client('ap-south-1', { emulator })
    const keys = Array.from({ length: 101 }, () => emulator.createKey({}).arn)
    for (const [index, key] of keys.slice(0, 51).entries()) emulator.createAlias(`alias/page-${String(index).padStart(2, '0')}`, key)
    const keyPage = await region.send(new ListKeysCommand({}))
    expect([keyPage.Keys!.map((key) => key.KeyArn), keyPage.Truncated, keyPage.NextMarker]).toEqual([keys.slice(0, 100), true, '100'])
    const aliasPage = await region.send(new ListAliasesCommand({}))
    expect([aliasPage.Aliases!.map((alias) => alias.AliasName), aliasPage.Truncated, aliasPage.NextMarker]).toEqual([
      Array.from({ length: 50 }, (_, index) => `alias/page-${String(index).padStart(2, '0')}`),
      true,
      '50',
    ])
  })

  it('CancelKeyDeletion brings a key back disabled; ListKeys pages through the Region\'s keys; GenerateRandom', async () => {
    const region = client('eu-central-1', { emulator: await start({ regions: ['eu-central-1', 'us-east-1'] }) })
    const keys = [] as string[]
    for (let index = 0; index < 3; index++) keys.push((await region.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!)
    await region.send(new ScheduleKeyDeletionCommand({ KeyId: keys[0], PendingWindowInDays: 7 }))
    expect(await region.send(new CancelKeyDeletionCommand({ KeyId: keys[0] }))).toMatchObject({ KeyId: keys[0] })
    const metadata = (await region.send(new DescribeKeyCommand({ KeyId: keys[0] }))).KeyMetadata!
    expect(metadata).toMatchObject({ KeyState: 'Disabled', Enabled: false })
    expect([metadata.DeletionDate, metadata.PendingDeletionWindowInDays]).toEqual([undefined, undefined])
    expect(await kmsFailure(region.send(new CancelKeyDeletionCommand({ KeyId: keys[0] })))).toBeInstanceOf(KMSInvalidStateException)

    const listed: string[] = []
    let marker: string | undefined
    do {
      const page = await region.send(new ListKeysCommand({ Limit: 2, Marker: marker }))
      expect(page.Keys!.length).toBeLessThanOrEqual(2)
      for (const key of page.Keys!) {
        expect(key.KeyArn).toBe(`arn:aws:kms:eu-central-1:111122223333:key/${key.KeyId}`)
        listed.push(key.KeyArn!)
      }
      marker = page.Truncated ? page.NextMarker : undefined
    } while (marker !== undefined)
    expect(listed).toEqual(keys)
    // A page that holds exactly the rest is the last one.
    const exact = await region.send(new ListKeysCommand({ Limit: 3 }))
    expect([exact.Keys!.length, exact.Truncated, exact.NextMarker]).toEqual([3, false, undefined])
    const rest = await region.send(new ListKeysCommand({ Limit: 2, Marker: '1' }))
    expect([rest.Keys!.map((key) => key.KeyArn), rest.Truncated, rest.NextMarker]).toEqual([keys.slice(1), false, undefined])

    const [a, b] = [await region.send(new GenerateRandomCommand({ NumberOfBytes: 32 })), await region.send(new GenerateRandomCommand({ NumberOfBytes: 1024 }))]
    expect([a.Plaintext!.length, b.Plaintext!.length]).toEqual([32, 1024])
    expect((await region.send(new GenerateRandomCommand({ NumberOfBytes: 1 }))).Plaintext).toHaveLength(1)
    expect(Buffer.from(a.Plaintext!).equals(Buffer.from(b.Plaintext!.subarray(0, 32)))).toBe(false)
    const keyStore = await kmsFailure(region.send(new GenerateRandomCommand({ NumberOfBytes: 8, CustomKeyStoreId: 'cks-1234567890abcdef0' })))
    expect([keyStore.name, keyStore.message]).toEqual(['UnsupportedOperationException', 'The KMS emulator has no custom key stores.'])
    for (const NumberOfBytes of [0, 1025, undefined]) {
      expect((await kmsFailure(region.send(new GenerateRandomCommand({ NumberOfBytes })))).name).toBe('ValidationException')
    }
  })

  it('RSA: GetPublicKey gives a DER SPKI that encrypts for KMS Decrypt; KMS Encrypt round trips with both OAEP hashes', async () => {
    const publicKey = await east.send(new GetPublicKeyCommand({ KeyId: rsaArn }))
    expect(publicKey).toMatchObject({ KeyId: rsaArn, KeySpec: 'RSA_2048', KeyUsage: 'ENCRYPT_DECRYPT', EncryptionAlgorithms: ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] })
    const spki = createPublicKey({ key: Buffer.from(publicKey.PublicKey!), format: 'der', type: 'spki' })
    expect(spki.asymmetricKeyDetails?.modulusLength).toBe(2048)
    const local = publicEncrypt({ key: spki, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, utf8('from outside'))
    const opened = await east.send(new DecryptCommand({ CiphertextBlob: local, KeyId: rsaArn, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))
    expect(text(opened.Plaintext)).toBe('from outside')
    for (const algorithm of ['RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256'] as const) {
      const encrypted = await east.send(new EncryptCommand({ KeyId: rsaArn, Plaintext: utf8('inside'), EncryptionAlgorithm: algorithm }))
      expect([encrypted.CiphertextBlob!.length, encrypted.EncryptionAlgorithm]).toEqual([256, algorithm])
      const decrypted = await east.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, KeyId: rsaArn, EncryptionAlgorithm: algorithm }))
      expect([text(decrypted.Plaintext), decrypted.EncryptionAlgorithm]).toEqual(['inside', algorithm])
      // Key material ids belong to symmetric keys only.
      expect(decrypted.KeyMaterialId).toBeUndefined()
    }
    const wrongHash = await east.send(new EncryptCommand({ KeyId: rsaArn, Plaintext: utf8('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_1' }))
    expect(
      await kmsFailure(east.send(new DecryptCommand({ CiphertextBlob: wrongHash.CiphertextBlob, KeyId: rsaArn, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))),
    ).toBeInstanceOf(InvalidCiphertextException)
    const moved = await east.send(
      new ReEncryptCommand({ CiphertextBlob: local, SourceKeyId: rsaArn, SourceEncryptionAlgorithm: 'RSAES_OAEP_SHA_256', DestinationKeyId: symmetricArn }),
    )
    expect(text((await east.send(new DecryptCommand({ CiphertextBlob: moved.CiphertextBlob }))).Plaintext)).toBe('from outside')
    // An RSA source has no key material id; the symmetric destination has one.
    expect([moved.SourceKeyMaterialId, moved.DestinationKeyMaterialId]).toEqual([undefined, expect.stringMatching(/^[0-9a-f]{64}$/)])
    const toRsa = await east.send(new ReEncryptCommand({ CiphertextBlob: moved.CiphertextBlob, DestinationKeyId: rsaArn, DestinationEncryptionAlgorithm: 'RSAES_OAEP_SHA_1' }))
    expect([toRsa.SourceKeyMaterialId, toRsa.DestinationKeyMaterialId]).toEqual([moved.DestinationKeyMaterialId, undefined])
  })

  it('CreateKey RSA_4096 (KeySpec) and RSA_3072 (emulator API)', async () => {
    const created = await east.send(new CreateKeyCommand({ KeySpec: 'RSA_4096', KeyUsage: 'ENCRYPT_DECRYPT' }))
    expect(created.KeyMetadata).toMatchObject({ KeySpec: 'RSA_4096', CustomerMasterKeySpec: 'RSA_4096' })
    const rsa3072 = kms.createKey({ region: 'us-east-1', keySpec: 'RSA_3072' })
    expect((await east.send(new GetPublicKeyCommand({ KeyId: rsa3072.arn }))).KeySpec).toBe('RSA_3072')
  })
})

describe('Region routing from the SigV4 credential scope', () => {
  it('a us-east-1 key is NotFound from eu-west-1, by ARN and by id, and its blobs do not decrypt there', async () => {
    const [, , keyId] = ARN.exec(symmetricArn)!
    expect(await kmsFailure(europe.send(new DescribeKeyCommand({ KeyId: symmetricArn })))).toBeInstanceOf(NotFoundException)
    expect(await kmsFailure(europe.send(new DescribeKeyCommand({ KeyId: keyId })))).toBeInstanceOf(NotFoundException)
    expect(await kmsFailure(europe.send(new DescribeKeyCommand({ KeyId: 'alias/main' })))).toBeInstanceOf(NotFoundException)
    const { CiphertextBlob } = await east.send(new EncryptCommand({ KeyId: symmetricArn, Plaintext: utf8('x') }))
    expect(await kmsFailure(europe.send(new DecryptCommand({ CiphertextBlob })))).toBeInstanceOf(InvalidCiphertextException)
    expect(kms.calls.at(-1)).toMatchObject({ operation: 'Decrypt', region: 'eu-west-1', ok: false, errorType: 'InvalidCiphertextException' })
  })

  it('a replicated multi-Region key decrypts in eu-west-1 what its primary encrypted in us-east-1', async () => {
    const primary = kms.createKey({ region: 'us-east-1', multiRegion: true })
    const replica = kms.replicateKey(primary.arn, 'eu-west-1')
    expect([replica.keyId, replica.region]).toEqual([primary.keyId, 'eu-west-1'])
    const { CiphertextBlob } = await east.send(new EncryptCommand({ KeyId: primary.arn, Plaintext: utf8('across'), EncryptionContext: { r: '1' } }))
    const withoutKeyId = await europe.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { r: '1' } }))
    expect([text(withoutKeyId.Plaintext), withoutKeyId.KeyId]).toEqual(['across', replica.arn])
    const withKeyId = await europe.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { r: '1' }, KeyId: replica.arn }))
    expect(text(withKeyId.Plaintext)).toBe('across')
    expect(await kmsFailure(west.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { r: '1' } })))).toBeInstanceOf(InvalidCiphertextException)
    expect(kms.callCount({ operation: 'Decrypt', region: 'eu-west-1', keyArn: replica.arn })).toBe(2)
    // The primary's ARN names us-east-1: eu-west-1 does not answer for it, though it holds a key with that id.
    const elsewhere = await kmsFailure(europe.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { r: '1' }, KeyId: primary.arn })))
    expect([elsewhere.name, elsewhere.message]).toEqual([
      'NotFoundException',
      `Key '${primary.arn}' does not exist: it names Region us-east-1, and this request was sent to eu-west-1.`,
    ])
  })

  it('an ARN of another partition, service or account, or of the wrong shape, is NotFoundException "Invalid arn"', async () => {
    const [, , keyId] = ARN.exec(symmetricArn)!
    for (const arn of [
      `arn:aws-cn:kms:us-east-1:111122223333:key/${keyId}`,
      `arn:aws:sqs:us-east-1:111122223333:key/${keyId}`,
      `arn:aws:kms:us-east-1:444455556666:key/${keyId}`,
      `arn:aws:kms:us-east-1:111122223333:key/${keyId}:extra`,
      `arn:aws:kms:us-east-1:111122223333`,
    ]) {
      const failure = await kmsFailure(east.send(new DescribeKeyCommand({ KeyId: arn })))
      expect([failure.name, failure.message], arn).toEqual(['NotFoundException', `Invalid arn ${arn}.`])
    }
  })

  it('a Region the emulator does not serve gets UnrecognizedClientException', async () => {
    const failure = await kmsFailure(client('ap-south-1').send(new DescribeKeyCommand({ KeyId: symmetricArn })))
    expect([failure.name, failure.$metadata.httpStatusCode]).toEqual(['UnrecognizedClientException', 400])
    expect(failure.message).toContain('ap-south-1')
  })
})

describe('errors arrive as the SDK typed exceptions with the real status codes', () => {
  let disabledArn: string
  let pendingArn: string
  beforeAll(() => {
    disabledArn = kms.createKey({ region: 'us-east-1' }).arn
    kms.setKeyEnabled(disabledArn, false)
    pendingArn = kms.createKey({ region: 'us-east-1' }).arn
    kms.scheduleKeyDeletion(pendingArn)
  })

  const blobFor = async (keyId: string, context: Record<string, string> = {}): Promise<Uint8Array> =>
    (await east.send(new EncryptCommand({ KeyId: keyId, Plaintext: utf8('x'), EncryptionContext: context }))).CiphertextBlob!

  it.each<[string, number, (() => Promise<unknown>), (new (...args: never[]) => Error)?]>([
    ['NotFoundException', 400, () => east.send(new EncryptCommand({ KeyId: 'alias/missing', Plaintext: utf8('x') })), NotFoundException],
    ['DisabledException', 400, () => east.send(new GenerateDataKeyCommand({ KeyId: disabledArn, NumberOfBytes: 32 })), DisabledException],
    ['KMSInvalidStateException', 400, () => east.send(new EncryptCommand({ KeyId: pendingArn, Plaintext: utf8('x') })), KMSInvalidStateException],
    ['InvalidCiphertextException', 400, async () => east.send(new DecryptCommand({ CiphertextBlob: await blobFor(symmetricArn, { a: 'b' }), EncryptionContext: { a: 'c' } })), InvalidCiphertextException],
    ['InvalidCiphertextException', 400, () => east.send(new DecryptCommand({ CiphertextBlob: randomBytes(80) })), InvalidCiphertextException],
    ['IncorrectKeyException', 400, async () => east.send(new DecryptCommand({ CiphertextBlob: await blobFor(symmetricArn), KeyId: otherArn })), IncorrectKeyException],
    ['InvalidKeyUsageException', 400, () => east.send(new GenerateDataKeyCommand({ KeyId: rsaArn, NumberOfBytes: 32 })), InvalidKeyUsageException],
    ['InvalidKeyUsageException', 400, () => east.send(new EncryptCommand({ KeyId: rsaArn, Plaintext: utf8('x') })), InvalidKeyUsageException],
    ['InvalidKeyUsageException', 400, () => east.send(new EncryptCommand({ KeyId: symmetricArn, Plaintext: utf8('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' })), InvalidKeyUsageException],
    ['ValidationException', 400, () => east.send(new EncryptCommand({ KeyId: rsaArn, Plaintext: utf8('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_1', EncryptionContext: { a: 'b' } }))],
    ['ValidationException', 400, () => east.send(new EncryptCommand({ KeyId: rsaArn, Plaintext: new Uint8Array(215), EncryptionAlgorithm: 'RSAES_OAEP_SHA_1' }))],
    ['ValidationException', 400, () => east.send(new DecryptCommand({ CiphertextBlob: randomBytes(256), EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))],
    ['ValidationException', 400, () => east.send(new GenerateDataKeyCommand({ KeyId: symmetricArn, NumberOfBytes: 32, KeySpec: 'AES_256' }))],
    ['ValidationException', 400, () => east.send(new GenerateDataKeyCommand({ KeyId: symmetricArn }))],
    ['ValidationException', 400, () => east.send(new EncryptCommand({ KeyId: symmetricArn, Plaintext: new Uint8Array(4097) }))],
    ['UnsupportedOperationException', 400, () => east.send(new GetPublicKeyCommand({ KeyId: symmetricArn })), UnsupportedOperationException],
    ['UnsupportedOperationException', 400, () => east.send(new CreateKeyCommand({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' })), UnsupportedOperationException],
    ['DryRunOperationException', 412, () => east.send(new EncryptCommand({ KeyId: symmetricArn, Plaintext: utf8('x'), DryRun: true }))],
    ['DryRunOperationException', 412, () => east.send(new GenerateDataKeyCommand({ KeyId: symmetricArn, KeySpec: 'AES_256', DryRun: true }))],
    ['DryRunOperationException', 412, () => east.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: symmetricArn, NumberOfBytes: 16, DryRun: true }))],
    ['DryRunOperationException', 412, async () => east.send(new DecryptCommand({ CiphertextBlob: await blobFor(symmetricArn), DryRun: true }))],
    ['DryRunOperationException', 412, async () => east.send(new ReEncryptCommand({ CiphertextBlob: await blobFor(symmetricArn), DestinationKeyId: symmetricArn, DryRun: true }))],
  ])('%s (HTTP %i) #%#', async (name, status, request, ErrorClass) => {
    const failure = await kmsFailure(request())
    expect([failure.name, failure.$metadata.httpStatusCode]).toEqual([name, status])
    expect(failure.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/)
    if (ErrorClass) expect(failure).toBeInstanceOf(ErrorClass)
  })

  it('RSA: the longest plaintext a key takes is encrypted; an encryption context on decrypt is refused as on encrypt', async () => {
    // RSA_2048 with OAEP: 256 - 2 * 20 - 2 = 214 bytes with SHA-1, 256 - 2 * 32 - 2 = 190 with SHA-256.
    for (const [EncryptionAlgorithm, longest] of [['RSAES_OAEP_SHA_256', 190], ['RSAES_OAEP_SHA_1', 214]] as const) {
      const sealed = await east.send(new EncryptCommand({ KeyId: rsaArn, Plaintext: new Uint8Array(longest).fill(7), EncryptionAlgorithm }))
      const opened = await east.send(new DecryptCommand({ CiphertextBlob: sealed.CiphertextBlob, KeyId: rsaArn, EncryptionAlgorithm }))
      expect(opened.Plaintext).toEqual(new Uint8Array(longest).fill(7))
      const tooLong = await kmsFailure(east.send(new EncryptCommand({ KeyId: rsaArn, Plaintext: new Uint8Array(longest + 1), EncryptionAlgorithm })))
      expect([tooLong.name, tooLong.message]).toEqual(['ValidationException', `Plaintext is ${longest + 1} bytes; RSA_2048 with ${EncryptionAlgorithm} takes at most ${longest}.`])
    }
    const { CiphertextBlob } = await east.send(new EncryptCommand({ KeyId: rsaArn, Plaintext: utf8('x'), EncryptionAlgorithm: 'RSAES_OAEP_SHA_1' }))
    const withContext = await kmsFailure(east.send(new DecryptCommand({ CiphertextBlob, KeyId: rsaArn, EncryptionAlgorithm: 'RSAES_OAEP_SHA_1', EncryptionContext: { a: 'b' } })))
    expect([withContext.name, withContext.message]).toEqual(['ValidationException', 'EncryptionContext is not supported with asymmetric KMS keys.'])
  })

  it('a blob in the symmetric format that names an RSA key does not decrypt, with or without a KeyId', async () => {
    // Version 1, the key id, then an IV, one byte of ciphertext and a tag: well formed, but the key is not symmetric.
    const [, , rsaKeyId] = ARN.exec(rsaArn)!
    const id = Buffer.from(rsaKeyId!, 'ascii')
    const forged = Buffer.concat([Buffer.of(1, id.length), id, randomBytes(12 + 1 + 16)])
    const named = await kmsFailure(east.send(new DecryptCommand({ CiphertextBlob: forged })))
    expect(named).toBeInstanceOf(InvalidCiphertextException)
    const withKeyId = await kmsFailure(east.send(new DecryptCommand({ CiphertextBlob: forged, KeyId: rsaArn })))
    expect([withKeyId.name, withKeyId.message]).toEqual(['InvalidKeyUsageException', 'Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.'])
  })

  it('a symmetric blob is version 1, the key id, a 12-byte IV, the ciphertext and a 16-byte tag; another version or a cut blob names no key', async () => {
    const [, , otherKeyId] = ARN.exec(otherArn)!
    const plaintext = utf8('eleven byte')
    const blob = Buffer.from((await east.send(new EncryptCommand({ KeyId: otherArn, Plaintext: plaintext }))).CiphertextBlob!)
    const id = Buffer.from(otherKeyId!, 'ascii')
    expect([blob[0], blob[1], blob.subarray(2, 2 + id.length).equals(id), blob.length]).toEqual([1, id.length, true, 2 + id.length + 12 + plaintext.length + 16])
    // Asked to decrypt under another key, a blob that names otherArn is IncorrectKeyException; one that names no key
    // (unknown version, or too short to hold an IV, a byte and a tag) is InvalidCiphertextException.
    const under = (CiphertextBlob: Uint8Array) => kmsFailure(east.send(new DecryptCommand({ CiphertextBlob, KeyId: symmetricArn })))
    expect(await under(blob)).toBeInstanceOf(IncorrectKeyException)
    const version2 = Buffer.from(blob)
    version2[0] = 2
    const header = blob.subarray(0, 2 + id.length)
    for (const [what, altered] of [['version 2', version2], ['cut to 28 bytes after the id', Buffer.concat([header, randomBytes(12 + 16)])]] as const) {
      expect((await under(altered)).name, what).toBe('InvalidCiphertextException')
    }
    // One byte more than that is long enough to name its key.
    expect((await under(Buffer.concat([header, randomBytes(12 + 1 + 16)]))).name).toBe('IncorrectKeyException')
  })

  it('AccessDeniedException, ThrottlingException and KMSInternalException come from faults (below), with their status', async () => {
    kms.faults.deny(symmetricArn)
    const denied = await kmsFailure(east.send(new DescribeKeyCommand({ KeyId: symmetricArn })))
    expect([denied.name, denied.$metadata.httpStatusCode]).toEqual(['AccessDeniedException', 400])
    kms.faults.throttle(1)
    const throttled = await kmsFailure(east.send(new DescribeKeyCommand({ KeyId: otherArn })))
    expect([throttled.name, throttled.$metadata.httpStatusCode]).toEqual(['ThrottlingException', 400])
    kms.faults.regionDown('us-east-1')
    const down = await kmsFailure(east.send(new DescribeKeyCommand({ KeyId: otherArn })))
    expect([down.name, down.$metadata.httpStatusCode, down]).toEqual(['KMSInternalException', 500, expect.any(KMSInternalException)])
  })
})

describe('fault injection', () => {
  it('throttle(2): the default client retries through both and succeeds on the third attempt', async () => {
    const retrying = client('us-east-1', { maxAttempts: 3 })
    kms.resetCalls()
    kms.faults.throttle(2, { operation: 'DescribeKey' })
    const described = await retrying.send(new DescribeKeyCommand({ KeyId: symmetricArn }))
    expect(described.$metadata.attempts).toBe(3)
    expect(kms.callCount({ operation: 'DescribeKey' })).toBe(3)
    expect(kms.calls.map((call) => call.errorType ?? 'ok')).toEqual(['ThrottlingException', 'ThrottlingException', 'ok'])
    await retrying.send(new DescribeKeyCommand({ KeyId: symmetricArn }))
    expect(kms.callCount({ operation: 'DescribeKey' })).toBe(4)
  })

  it('a throttle filtered by operation and Region leaves other calls alone', async () => {
    kms.faults.throttle(1, { operation: 'Encrypt', region: 'us-east-1' })
    await west.send(new CreateKeyCommand({}))
    await east.send(new DescribeKeyCommand({ KeyId: symmetricArn }))
    expect((await kmsFailure(east.send(new EncryptCommand({ KeyId: symmetricArn, Plaintext: utf8('x') })))).name).toBe('ThrottlingException')
    await east.send(new EncryptCommand({ KeyId: symmetricArn, Plaintext: utf8('x') }))
  })

  it('regionDown fails that Region after the SDK retries, fast, and leaves others up', async () => {
    const retrying = client('us-east-1', { maxAttempts: 3 })
    kms.faults.regionDown('us-east-1')
    const began = Date.now()
    const failure = await kmsFailure(retrying.send(new DescribeKeyCommand({ KeyId: symmetricArn })))
    expect(failure).toBeInstanceOf(KMSInternalException)
    expect(failure.$metadata.attempts).toBe(3)
    expect(Date.now() - began).toBeLessThan(5_000)
    await west.send(new ListAliasesCommand({}))
    kms.faults.regionDown('us-east-1', false)
    await retrying.send(new DescribeKeyCommand({ KeyId: symmetricArn }))
  })

  it('deny by key (optionally one operation) gives AccessDeniedException for that key only', async () => {
    kms.faults.deny(symmetricArn, { operation: 'Decrypt' })
    const { CiphertextBlob } = await east.send(new EncryptCommand({ KeyId: 'alias/main', Plaintext: utf8('x') }))
    const denied = await kmsFailure(east.send(new DecryptCommand({ CiphertextBlob })))
    expect(denied.name).toBe('AccessDeniedException')
    expect(denied.message).toContain(symmetricArn)
    expect(kms.calls.at(-1)).toMatchObject({ operation: 'Decrypt', keyId: symmetricArn, ok: false, errorType: 'AccessDeniedException' })
    const other = await east.send(new EncryptCommand({ KeyId: otherArn, Plaintext: utf8('x') }))
    await east.send(new DecryptCommand({ CiphertextBlob: other.CiphertextBlob }))
  })

  it('deny by access key id refuses one caller and lets another through', async () => {
    kms.faults.deny(symmetricArn, { accessKeyId: 'AKIDALICE' })
    const alice = client('us-east-1', { accessKeyId: 'AKIDALICE' })
    const bob = client('us-east-1', { accessKeyId: 'AKIDBOB' })
    expect((await kmsFailure(alice.send(new GenerateDataKeyCommand({ KeyId: symmetricArn, NumberOfBytes: 16 })))).name).toBe('AccessDeniedException')
    await bob.send(new GenerateDataKeyCommand({ KeyId: symmetricArn, NumberOfBytes: 16 }))
    expect(kms.calls.slice(-2).map((call) => [call.accessKeyId, call.ok])).toEqual([
      ['AKIDALICE', false],
      ['AKIDBOB', true],
    ])
  })

  it('logs the key a CreateKey made, as it logs the key of every call that names one', async () => {
    const { KeyMetadata } = await east.send(new CreateKeyCommand({}))
    expect(kms.calls.at(-1)).toMatchObject({ operation: 'CreateKey', keyId: KeyMetadata!.Arn, ok: true })
  })

  it('latency delays matching calls by at least the given time; 0 clears it', async () => {
    kms.faults.latency(150, { region: 'us-west-2' })
    let began = Date.now()
    await west.send(new ListAliasesCommand({}))
    expect(Date.now() - began).toBeGreaterThanOrEqual(145)
    kms.faults.latency(0, { region: 'us-west-2' })
    kms.faults.latency(120)
    began = Date.now()
    await east.send(new ListAliasesCommand({}))
    expect(Date.now() - began).toBeGreaterThanOrEqual(115)
    kms.faults.latency(0)
    kms.faults.regionDown('us-west-2')
    kms.faults.clear()
    await west.send(new ListAliasesCommand({}))
  })

  it('latency rules: one per filter, the delays of every matching rule add up, 0 removes one filter\'s rule or all', () => {
    // The delays as the server computes them, so no test here waits on a clock.
    const faults = kms.faults as KmsFaults
    faults.latency(100, { region: 'us-west-2' })
    faults.latency(40, { operation: 'Decrypt' })
    faults.latency(7, { operation: 'Decrypt', region: 'us-west-2' })
    faults.latency(1)
    expect([
      faults.delayFor('Decrypt', 'us-west-2'),
      faults.delayFor('Encrypt', 'us-west-2'),
      faults.delayFor('Decrypt', 'us-east-1'),
      faults.delayFor('Encrypt', 'us-east-1'),
    ]).toEqual([148, 101, 41, 1])
    faults.latency(60, { operation: 'Decrypt' }) // replaces that filter's rule
    faults.latency(0, { region: 'us-west-2' })
    expect([faults.delayFor('Decrypt', 'us-west-2'), faults.delayFor('Encrypt', 'us-west-2')]).toEqual([68, 1])
    faults.latency(0, null as never)
    expect(faults.delayFor('Decrypt', 'us-west-2')).toBe(0)
    // clear() takes every latency rule away too, and every throttle left.
    faults.latency(30, { operation: 'Decrypt' })
    faults.latency(5)
    faults.throttle(3)
    faults.clear()
    expect([faults.delayFor('Decrypt', 'us-west-2'), faults.delayFor('Encrypt', 'us-east-1')]).toEqual([0, 0])
    expect(faults.takeThrottle('Decrypt', 'us-east-1')).toBe(false)
  })

  it('throttle(0) sets nothing; a throttle counts down only on calls its filter matches', () => {
    const faults = kms.faults as KmsFaults
    faults.throttle(0)
    expect(faults.takeThrottle('Encrypt', 'us-east-1')).toBe(false)
    faults.throttle(1, { region: 'eu-west-1' })
    expect(faults.takeThrottle('Encrypt', 'us-east-1')).toBe(false)
    expect([faults.takeThrottle('Encrypt', 'eu-west-1'), faults.takeThrottle('Encrypt', 'eu-west-1')]).toEqual([true, false])
  })

  it('bad fault settings are configuration errors', () => {
    const cases: [() => unknown, string][] = [
      [() => kms.faults.throttle(-1), 'faults.throttle count must be a whole number >= 0; got -1.'],
      [() => kms.faults.latency(Number.NaN), 'faults.latency ms must be a number >= 0; got NaN.'],
      [() => kms.faults.deny('not-an-arn'), 'faults.deny needs a key ARN; got "not-an-arn".'],
      [() => kms.faults.throttle(1, { operation: 5 as never }), 'faults.throttle filter.operation must be a string; got 5.'],
      [() => kms.faults.regionDown(''), 'faults.regionDown needs a Region name; got "".'],
      [() => kms.faults.regionDown(5 as never), 'faults.regionDown needs a Region name; got 5.'],
      // A rule that could match no request (a typo) would let a test pass without its fault.
      [() => kms.faults.regionDown('us-east-3'), `faults.regionDown "us-east-3" is not a Region the emulator serves: it serves ${SERVED}.`],
      [() => kms.faults.throttle(1, { operation: 'Decrypts' }), `faults.throttle filter.operation "Decrypts" is not an operation the emulator serves: it serves ${OPERATION_NAMES}.`],
      [() => kms.faults.latency(5, { region: 'eu-west-9' }), `faults.latency filter.region "eu-west-9" is not a Region the emulator serves: it serves ${SERVED}.`],
      [() => kms.faults.deny(symmetricArn, { operation: 'decrypt' }), `faults.deny filter.operation "decrypt" is not an operation the emulator serves: it serves ${OPERATION_NAMES}.`],
    ]
    for (const [run, message] of cases) expect(run, message).toThrow(expect.objectContaining({ code: 'INVALID_CONFIGURATION', message }))
  })
})

describe('state file', () => {
  let directory: string
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'kms-emulator-'))
  })
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true })
  })

  it('keys, replicas, aliases and key states survive a restart; the file is private and never shown', async () => {
    const statePath = join(directory, 'state.json')
    const first = await start({ statePath, regions: ['us-east-1', 'eu-west-1'] })
    const firstEast = client('us-east-1', { emulator: first })
    const created = (await firstEast.send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!
    await firstEast.send(new ReplicateKeyCommand({ KeyId: created.Arn, ReplicaRegion: 'eu-west-1' }))
    await firstEast.send(new CreateAliasCommand({ AliasName: 'alias/kept', TargetKeyId: created.KeyId }))
    const disabled = first.createKey({ region: 'us-east-1' })
    first.setKeyEnabled(disabled.arn, false)
    const rsa = first.createKey({ region: 'us-east-1', keySpec: 'RSA_3072' })
    const rsaPublicKey = (await firstEast.send(new GetPublicKeyCommand({ KeyId: rsa.arn }))).PublicKey!
    const spki = createPublicKey({ key: Buffer.from(rsaPublicKey), format: 'der', type: 'spki' })
    const rsaCiphertext = publicEncrypt({ key: spki, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, utf8('persisted for RSA'))
    const { CiphertextBlob } = await firstEast.send(new EncryptCommand({ KeyId: 'alias/kept', Plaintext: utf8('persisted'), EncryptionContext: { v: '1' } }))
    // An alias moved and one deleted stay so.
    const moved = first.createKey({ region: 'us-east-1' })
    await firstEast.send(new CreateAliasCommand({ AliasName: 'alias/moved', TargetKeyId: created.KeyId }))
    await firstEast.send(new UpdateAliasCommand({ AliasName: 'alias/moved', TargetKeyId: moved.arn }))
    await firstEast.send(new CreateAliasCommand({ AliasName: 'alias/deleted', TargetKeyId: created.KeyId }))
    await firstEast.send(new DeleteAliasCommand({ AliasName: 'alias/deleted' }))
    const pending = (await firstEast.send(new CreateKeyCommand({ Description: 'going' }))).KeyMetadata!
    await firstEast.send(new ScheduleKeyDeletionCommand({ KeyId: pending.Arn, PendingWindowInDays: 9 }))
    const everything = async (emulator: KmsEmulator) => {
      const seen: unknown[] = []
      for (const region of ['us-east-1', 'eu-west-1']) {
        const regional = client(region, { emulator })
        for (const { KeyArn } of (await regional.send(new ListKeysCommand({}))).Keys!) {
          seen.push((await regional.send(new DescribeKeyCommand({ KeyId: KeyArn }))).KeyMetadata)
        }
        seen.push((await regional.send(new ListAliasesCommand({}))).Aliases)
      }
      return seen
    }
    const before = await everything(first)
    await first.close()

    const saved = JSON.parse(await readFile(statePath, 'utf8'))
    expect(saved.keys).toHaveLength(6)
    expect((await stat(statePath)).mode & 0o777).toBe(0o600)

    const second = await start({ statePath, regions: ['us-east-1', 'eu-west-1'] })
    expect(second.endpoint).not.toBe(first.endpoint)
    // Every key's metadata (description, Region family, state, deletion date) and every alias come back as they were.
    const after = await everything(second)
    expect(after).toEqual(before)
    expect(after).toContainEqual(expect.objectContaining({ Arn: pending.Arn, Description: 'going', KeyState: 'PendingDeletion', PendingDeletionWindowInDays: 9 }))
    expect(after).toContainEqual(expect.objectContaining({ Arn: created.Arn, MultiRegionConfiguration: expect.objectContaining({ MultiRegionKeyType: 'PRIMARY' }) }))
    const decrypted = await client('eu-west-1', { emulator: second }).send(new DecryptCommand({ CiphertextBlob, EncryptionContext: { v: '1' } }))
    expect(text(decrypted.Plaintext)).toBe('persisted')
    const secondEast = client('us-east-1', { emulator: second })
    expect((await secondEast.send(new DescribeKeyCommand({ KeyId: 'alias/kept' }))).KeyMetadata!.Arn).toBe(created.Arn)
    const aliases = (await secondEast.send(new ListAliasesCommand({}))).Aliases!
    expect(aliases.map((alias) => [alias.AliasName, alias.TargetKeyId])).toEqual([
      ['alias/kept', created.KeyId],
      ['alias/moved', moved.keyId],
    ])
    expect(aliases[1]!.LastUpdatedDate!.getTime()).toBeGreaterThanOrEqual(aliases[1]!.CreationDate!.getTime())
    expect(await kmsFailure(secondEast.send(new EncryptCommand({ KeyId: disabled.arn, Plaintext: utf8('x') })))).toBeInstanceOf(DisabledException)
    // The RSA key keeps its private key: the same public key, and what was encrypted for it before still opens.
    const reloaded = await secondEast.send(new GetPublicKeyCommand({ KeyId: rsa.arn }))
    expect([reloaded.KeySpec, Buffer.from(reloaded.PublicKey!).equals(Buffer.from(rsaPublicKey))]).toEqual(['RSA_3072', true])
    const rsaOpened = await secondEast.send(new DecryptCommand({ CiphertextBlob: rsaCiphertext, KeyId: rsa.arn, EncryptionAlgorithm: 'RSAES_OAEP_SHA_256' }))
    expect(text(rsaOpened.Plaintext)).toBe('persisted for RSA')

    const secrets = (saved.keys as { material: string }[]).flatMap(({ material }) => [material, Buffer.from(material, 'base64').toString('hex')])
    const shown = [inspect(second, { showHidden: true, depth: 10 }), JSON.stringify(second), String(second), JSON.stringify(second.calls), inspect(second.faults, { showHidden: true })]
    for (const secret of secrets) for (const output of shown) expect(output).not.toContain(secret)
  })

  it('close() ends the requests in flight at once: one held by a fault latency is not carried out, one still sending its body is cut off', async () => {
    const statePath = join(directory, 'closing.json')
    const emulator = await start({ statePath })
    const east = client('us-east-1', { emulator })
    await east.send(new CreateKeyCommand({}))
    const saved = await readFile(statePath, 'utf8')
    emulator.faults.latency(400, { operation: 'CreateKey' })
    const held = east.send(new CreateKeyCommand({}))
    held.catch(() => undefined)
    // A client that sent its headers and part of its body, and holds the connection open.
    const { hostname, port } = new URL(emulator.endpoint)
    const slow = httpRequest({ hostname, port, method: 'POST', headers: { 'Content-Type': 'application/x-amz-json-1.1', 'Content-Length': '1000' } })
    slow.on('error', () => undefined) // cut off by the close
    slow.write('{ ')
    await new Promise((resolve) => setTimeout(resolve, 100))
    await emulator.close() // waits neither for the latency's end nor for the slow client's body (which never comes)
    await new Promise((resolve) => setTimeout(resolve, 500)) // past the latency
    expect(await readFile(statePath, 'utf8')).toBe(saved) // the held CreateKey did not run after the close
    slow.destroy()
  })

  it('each request that changes keys or aliases saves the file at once (not only when a later one does)', async () => {
    const statePath = join(directory, 'each.json')
    const emulator = await start({ statePath, regions: ['us-east-1', 'eu-west-1'] })
    const east = client('us-east-1', { emulator })
    const created = (await east.send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!
    const other = (await east.send(new CreateKeyCommand({}))).KeyMetadata!
    const steps: Array<[string, () => Promise<unknown>]> = [
      ['ReplicateKey', () => east.send(new ReplicateKeyCommand({ KeyId: created.Arn, ReplicaRegion: 'eu-west-1' }))],
      ['DisableKey', () => east.send(new DisableKeyCommand({ KeyId: other.Arn }))],
      ['EnableKey', () => east.send(new EnableKeyCommand({ KeyId: other.Arn }))],
      ['CreateAlias', () => east.send(new CreateAliasCommand({ AliasName: 'alias/saved', TargetKeyId: created.KeyId }))],
      ['UpdateAlias', () => east.send(new UpdateAliasCommand({ AliasName: 'alias/saved', TargetKeyId: other.KeyId }))],
      ['DeleteAlias', () => east.send(new DeleteAliasCommand({ AliasName: 'alias/saved' }))],
      ['ScheduleKeyDeletion', () => east.send(new ScheduleKeyDeletionCommand({ KeyId: other.Arn }))],
      ['CancelKeyDeletion', () => east.send(new CancelKeyDeletionCommand({ KeyId: other.Arn }))],
    ]
    try {
      for (const [operation, step] of steps) {
        const before = await readFile(statePath, 'utf8')
        await step()
        expect(await readFile(statePath, 'utf8'), operation).not.toBe(before)
      }
    } finally {
      await emulator.close()
    }
  })

  it('a state file that cannot be used stops the start with a typed error that names the file and the problem', async () => {
    const valid = JSON.parse(await readFile(join(directory, 'state.json'), 'utf8'))
    const cases: [string, (statePath: string) => Promise<unknown>, RegExp][] = [
      ['not JSON', (statePath) => writeFile(statePath, '{nope'), /is not JSON/],
      ['another format', (statePath) => writeFile(statePath, '{"format": "something else"}'), /is not a version 1 KMS emulator state file/],
      ['another version', (statePath) => writeFile(statePath, JSON.stringify({ ...valid, version: 2 })), /is not a version 1 KMS emulator state file/],
      ['keys that are no list', (statePath) => writeFile(statePath, JSON.stringify({ ...valid, keys: {} })), /is not a version 1 KMS emulator state file/],
      ['aliases that are no list', (statePath) => writeFile(statePath, JSON.stringify({ ...valid, aliases: null })), /is not a version 1 KMS emulator state file/],
      ['a malformed key entry', (statePath) => writeFile(statePath, JSON.stringify({ ...valid, keys: [null] })), /key entry 0 is malformed/],
      ['a key entry with no key id', (statePath) => writeFile(statePath, JSON.stringify({ ...valid, keys: [{ ...valid.keys[0], keyId: 7 }] })), /key entry 0 is malformed/],
      ['a key entry with no Region', (statePath) => writeFile(statePath, JSON.stringify({ ...valid, keys: [{ ...valid.keys[0], region: 7 }] })), /key entry 0 is malformed/],
      ['a key entry of another key spec', (statePath) => writeFile(statePath, JSON.stringify({ ...valid, keys: [{ ...valid.keys[0], keySpec: 'ECC_NIST_P256' }] })), /key entry 0 is malformed/],
      ['an alias entry with no Region', (statePath) => writeFile(statePath, JSON.stringify({ ...valid, aliases: [{ ...valid.aliases[0], region: undefined }] })), /alias entry 0 is malformed/],
      ['an alias entry with no target', (statePath) => writeFile(statePath, JSON.stringify({ ...valid, aliases: [{ ...valid.aliases[0], targetKeyId: null }] })), /alias entry 0 is malformed/],
      ['a malformed alias entry', (statePath) => writeFile(statePath, JSON.stringify({ ...valid, aliases: [...valid.aliases, { aliasName: 7 }] })), new RegExp(`alias entry ${valid.aliases.length} is malformed`)],
      ['a folder', (statePath) => mkdir(statePath), /cannot be read \(EISDIR: illegal operation on a directory, read\)\.$/],
      ['in a folder that does not exist', async () => {}, /cannot be written \(ENOENT.*its folder must exist/],
    ]
    for (const [what, prepare, problem] of cases) {
      const statePath = what.startsWith('in a folder') ? join(directory, 'missing', 'state.json') : join(directory, `${what.replaceAll(' ', '-')}.json`)
      await prepare(statePath)
      const error = await rejectionOf(startKmsEmulator({ statePath }))
      expect(error, what).toMatchObject({ code: 'INVALID_CONFIGURATION' })
      expect((error as Error).message, what).toContain(statePath)
      expect((error as Error).message, what).toMatch(problem)
    }
    expect(await readdir(directory)).not.toContainEqual(expect.stringMatching(/\.tmp$/))
  })

  it('key material that does not fit its key spec stops the start; the cause names the check, never the material', async () => {
    const valid = JSON.parse(await readFile(join(directory, 'state.json'), 'utf8'))
    const symmetric = valid.keys.find((key: { keySpec: string }) => key.keySpec === 'SYMMETRIC_DEFAULT')
    const rsa = valid.keys.find((key: { keySpec: string }) => key.keySpec === 'RSA_3072')
    const pkcs8 = (privateKey: KeyObject): string => privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64')
    const cases: [string, object, string | RegExp][] = [
      ['16 bytes for a symmetric key', { ...symmetric, material: randomBytes(16).toString('base64') }, 'a SYMMETRIC_DEFAULT key holds 32 bytes, not 16'],
      ['33 bytes for a symmetric key', { ...symmetric, material: randomBytes(33).toString('base64') }, 'a SYMMETRIC_DEFAULT key holds 32 bytes, not 33'],
      ['an RSA_3072 key stored as RSA_2048', { ...rsa, keySpec: 'RSA_2048' }, 'the stored private key is not an RSA_2048 key'],
      ['an RSA-PSS key of the right size', { ...rsa, material: pkcs8(generateKeyPairSync('rsa-pss', { modulusLength: 3072 }).privateKey) }, 'the stored private key is not an RSA_3072 key'],
      ['an EC key', { ...rsa, material: pkcs8(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey) }, 'the stored private key is not an RSA_3072 key'],
      // 32 random bytes are no DER: Node's OpenSSL error, whose wording varies by version.
      ['a symmetric key stored as RSA', { ...symmetric, keySpec: 'RSA_3072' }, /^ERR_OSSL_/],
    ]
    for (const [what, entry, problem] of cases) {
      const statePath = join(directory, `material-${what.replaceAll(' ', '-')}.json`)
      await writeFile(statePath, JSON.stringify({ ...valid, keys: [symmetric, entry] }))
      const error = await rejectionOf(startKmsEmulator({ statePath }))
      expect(error, what).toMatchObject({ code: 'INVALID_CONFIGURATION', message: `KMS emulator state file ${statePath}: the material of key entry 1 does not load.` })
      const cause = (error as Error).cause as Error
      if (typeof problem === 'string') expect(cause.message, what).toBe(problem)
      else expect((cause as Error & { code?: string }).code, what).toMatch(problem)
      const material = (entry as { material: string }).material
      for (const shown of [(error as Error).message, cause.message, inspect(error, { depth: 5 })]) {
        expect(shown, what).not.toContain(material)
        expect(shown, what).not.toContain(Buffer.from(material, 'base64').toString('hex'))
      }
    }
  })

  it('a hand-written key entry may leave out what has a default: no description, an enabled single-Region key', async () => {
    const valid = JSON.parse(await readFile(join(directory, 'state.json'), 'utf8'))
    const symmetric = valid.keys.find((key: { keySpec: string; multiRegion: boolean }) => key.keySpec === 'SYMMETRIC_DEFAULT' && !key.multiRegion)
    const { description, multiRegion, primary, ...bare } = symmetric
    const statePath = join(directory, 'hand-written.json')
    // Values of the wrong type count as left out.
    await writeFile(statePath, JSON.stringify({ ...valid, keys: [{ ...bare, state: 'Unknown', deletionDate: 'soon', pendingWindowInDays: '7' }], aliases: [] }))
    const emulator = await start({ statePath })
    const described = (await client(bare.region, { emulator }).send(new DescribeKeyCommand({ KeyId: bare.keyId }))).KeyMetadata!
    expect(described).toMatchObject({ Description: '', KeyState: 'Enabled', Enabled: true, MultiRegion: false })
    expect([described.DeletionDate, described.PendingDeletionWindowInDays]).toEqual([undefined, undefined])
    await emulator.close()
  })

  it('a system error is described by its code and message, the code given once', () => {
    expect(systemProblem(Object.assign(new Error('EACCES: permission denied, open \'x\''), { code: 'EACCES' }))).toBe("EACCES: permission denied, open 'x'")
    expect(systemProblem(Object.assign(new Error('permission denied'), { code: 'EACCES' }))).toBe('EACCES: permission denied')
    expect(systemProblem(Object.assign(new Error('no code'), { code: 7 }))).toBe('no code')
    expect(systemProblem('thrown text')).toBe('string')
  })

  it('a new state file is written at the start, so a start that could not save fails at once', async () => {
    const statePath = join(directory, 'fresh.json')
    const emulator = await start({ statePath })
    expect(JSON.parse(await readFile(statePath, 'utf8'))).toMatchObject({ keys: [], aliases: [] })
    // A call that changes nothing does not save: a mark added to the file by hand stays, until a change saves.
    const mark = async () => writeFile(statePath, `${await readFile(statePath, 'utf8')}\n\n`)
    const marked = async () => (await readFile(statePath, 'utf8')).endsWith('\n\n')
    const regional = client('us-east-1', { emulator })
    const { KeyMetadata } = await regional.send(new CreateKeyCommand({}))
    await mark()
    await regional.send(new EncryptCommand({ KeyId: KeyMetadata!.Arn, Plaintext: utf8('x') }))
    await regional.send(new DescribeKeyCommand({ KeyId: KeyMetadata!.Arn }))
    expect(await marked()).toBe(true)
    await regional.send(new DisableKeyCommand({ KeyId: KeyMetadata!.Arn }))
    expect(await marked()).toBe(false)
    expect(JSON.parse(await readFile(statePath, 'utf8')).keys).toMatchObject([{ keyId: KeyMetadata!.KeyId, state: 'Disabled' }])
    await emulator.close()
  })

  it('a save that fails after the start is a ConfigurationError and leaves no temporary file behind', async () => {
    const folder = join(directory, 'later')
    await mkdir(folder)
    const statePath = join(folder, 'state.json')
    const emulator = await start({ statePath })
    // The state file becomes a folder that is not empty: the temporary file is written, the rename fails.
    await rm(statePath)
    await mkdir(join(statePath, 'inside'), { recursive: true })
    expect(() => emulator.createKey({ region: 'us-east-1' })).toThrow(expect.objectContaining({ code: 'INVALID_CONFIGURATION', message: expect.stringContaining('cannot be written') }))
    // Through the SDK, the same failure is the 500 of a KMS that broke, naming the cause.
    const failure = await kmsFailure(client('us-east-1', { emulator }).send(new CreateKeyCommand({})))
    expect([failure.name, failure.$metadata.httpStatusCode]).toEqual(['KMSInternalException', 500])
    expect(failure.message).toMatch(/^The KMS emulator failed: ConfigurationError: KMS emulator state file /)
    expect((await readdir(folder)).sort()).toEqual(['state.json'])
    await emulator.close()
  })
})

describe('properties', () => {
  it('random plaintexts and contexts round trip through Encrypt and Decrypt; one more context pair fails', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.string({ maxLength: 24 }), { maxKeys: 5 }),
        fc.string({ minLength: 1, maxLength: 12 }),
        async (plaintext, encryptionContext, extraKey) => {
          const { CiphertextBlob } = await east.send(new EncryptCommand({ KeyId: symmetricArn, Plaintext: plaintext, EncryptionContext: encryptionContext }))
          const decrypted = await east.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: encryptionContext }))
          expect(Buffer.from(decrypted.Plaintext!).equals(Buffer.from(plaintext))).toBe(true)
          const widened = { ...encryptionContext, [extraKey]: `${encryptionContext[extraKey] ?? ''}+` }
          expect(await kmsFailure(east.send(new DecryptCommand({ CiphertextBlob, EncryptionContext: widened })))).toBeInstanceOf(InvalidCiphertextException)
        },
      ),
      { numRuns: 40 },
    )
  })

  it('any single flipped bit in a blob gives InvalidCiphertextException', async () => {
    const { CiphertextBlob } = await east.send(new EncryptCommand({ KeyId: symmetricArn, Plaintext: utf8('flip'), EncryptionContext: { k: 'v' } }))
    const blob = CiphertextBlob!
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: blob.length * 8 - 1 }), fc.boolean(), async (bit, withKeyId) => {
        const altered = Uint8Array.from(blob)
        altered[bit >> 3]! ^= 1 << (bit & 7)
        const request = new DecryptCommand({ CiphertextBlob: altered, EncryptionContext: { k: 'v' }, ...(withKeyId ? { KeyId: symmetricArn } : {}) })
        expect(await kmsFailure(east.send(request))).toBeInstanceOf(InvalidCiphertextException)
      }),
      { numRuns: 60 },
    )
  })
})

describe('malformed requests (plain fetch)', () => {
  const signed = {
    'Content-Type': 'application/x-amz-json-1.1',
    Authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261123/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd',
  }
  const post = (headers: Record<string, string>, body: string, method = 'POST'): Promise<Response> =>
    fetch(kms.endpoint, { method, headers, ...(method === 'POST' ? { body } : {}) })

  it.each<[string, Record<string, string>, string, number, string]>([
    ['bad JSON', { ...signed, 'X-Amz-Target': 'TrentService.DescribeKey' }, '{"KeyId": ', 400, 'SerializationException'],
    ['a JSON array', { ...signed, 'X-Amz-Target': 'TrentService.DescribeKey' }, '[]', 400, 'SerializationException'],
    ['a field of the wrong type', { ...signed, 'X-Amz-Target': 'TrentService.DescribeKey' }, '{"KeyId": 5}', 400, 'SerializationException'],
    ['a blob that is not base64', { ...signed, 'X-Amz-Target': 'TrentService.Decrypt' }, '{"CiphertextBlob": "!!!!"}', 400, 'SerializationException'],
    ['a missing required field', { ...signed, 'X-Amz-Target': 'TrentService.DescribeKey' }, '{}', 400, 'ValidationException'],
    ['no target', signed, '{}', 400, 'UnsupportedOperationException'],
    ['an unknown target', { ...signed, 'X-Amz-Target': 'TrentService.MakeCoffee' }, '{}', 400, 'UnsupportedOperationException'],
    ['a target without the service prefix', { ...signed, 'X-Amz-Target': 'ListAliases' }, '{}', 400, 'UnsupportedOperationException'],
    ['a target naming an Object method', { ...signed, 'X-Amz-Target': 'TrentService.toString' }, '{}', 400, 'UnsupportedOperationException'],
    ['a target naming __proto__', { ...signed, 'X-Amz-Target': 'TrentService.__proto__' }, '{}', 400, 'UnsupportedOperationException'],
    ['no Authorization', { 'X-Amz-Target': 'TrentService.ListAliases' }, '{}', 400, 'MissingAuthenticationTokenException'],
    ['a garbled Authorization', { 'X-Amz-Target': 'TrentService.ListAliases', Authorization: 'Bearer abc' }, '{}', 400, 'IncompleteSignatureException'],
    ...(
      [
        ['another signing scheme', signed.Authorization.replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA512')],
        ['no credential scope', signed.Authorization.replace('/aws4_request', '')],
        ['no SignedHeaders', signed.Authorization.replace('SignedHeaders=', 'Headers=')],
        ['no Signature', signed.Authorization.replace('Signature=', 'Sig=')],
      ] as const
    ).map(([what, Authorization]): [string, Record<string, string>, string, number, string] => [
      `an Authorization with ${what}`,
      { ...signed, Authorization, 'X-Amz-Target': 'TrentService.ListAliases' },
      '{}',
      400,
      'IncompleteSignatureException',
    ]),
    ['JSON null', { ...signed, 'X-Amz-Target': 'TrentService.ListAliases' }, 'null', 400, 'SerializationException'],
    ['a JSON number', { ...signed, 'X-Amz-Target': 'TrentService.ListAliases' }, '5', 400, 'SerializationException'],
    ['a JSON string', { ...signed, 'X-Amz-Target': 'TrentService.ListAliases' }, '"{}"', 400, 'SerializationException'],
    ['a body over 1 MiB', { ...signed, 'X-Amz-Target': 'TrentService.Encrypt' }, ' '.repeat(1536 * 1024), 413, 'ValidationException'],
    ...(
      [
        ['an empty KeyId', 'DescribeKey', { KeyId: '' }, 'ValidationException'],
        ['a KeyId over 2048 characters', 'DescribeKey', { KeyId: 'k'.repeat(2049) }, 'ValidationException'],
        ['an unknown EncryptionAlgorithm', 'Encrypt', { KeyId: 'alias/x', Plaintext: 'eA==', EncryptionAlgorithm: 'ROT13' }, 'ValidationException'],
        ['a fractional NumberOfBytes', 'GenerateDataKey', { KeyId: 'alias/x', NumberOfBytes: 1.5 }, 'SerializationException'],
        ['NumberOfBytes 0', 'GenerateDataKey', { KeyId: 'alias/x', NumberOfBytes: 0 }, 'ValidationException'],
        ['NumberOfBytes 1025', 'GenerateDataKey', { KeyId: 'alias/x', NumberOfBytes: 1025 }, 'ValidationException'],
        ['DryRun as a string', 'Encrypt', { KeyId: 'alias/x', Plaintext: 'eA==', DryRun: 'yes' }, 'SerializationException'],
        ['an EncryptionContext that is a list', 'Encrypt', { KeyId: 'alias/x', Plaintext: 'eA==', EncryptionContext: ['a'] }, 'SerializationException'],
        ['an EncryptionContext with a number', 'Encrypt', { KeyId: 'alias/x', Plaintext: 'eA==', EncryptionContext: { a: 1 } }, 'SerializationException'],
        ['an EncryptionContext with an empty key', 'Encrypt', { KeyId: 'alias/x', Plaintext: 'eA==', EncryptionContext: { '': 'x' } }, 'ValidationException'],
        ['GrantTokens as a string', 'Encrypt', { KeyId: 'alias/x', Plaintext: 'eA==', GrantTokens: 't' }, 'SerializationException'],
        ['GrantTokens with a number', 'Encrypt', { KeyId: 'alias/x', Plaintext: 'eA==', GrantTokens: [1] }, 'SerializationException'],
        ['a Recipient (Nitro Enclaves)', 'Decrypt', { CiphertextBlob: 'eA==', Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' } }, 'UnsupportedOperationException'],
        // Each operation that takes GrantTokens or a Recipient checks them before it looks up a key (alias/x does not
        // exist): without the check, these would be answered otherwise (NotFoundException, or GenerateRandom's bytes).
        ['GrantTokens as a string on DescribeKey', 'DescribeKey', { KeyId: 'alias/x', GrantTokens: 't' }, 'SerializationException'],
        ['GrantTokens as a string on GetPublicKey', 'GetPublicKey', { KeyId: 'alias/x', GrantTokens: 't' }, 'SerializationException'],
        ['GrantTokens as a string on ReEncrypt', 'ReEncrypt', { CiphertextBlob: 'eA==', DestinationKeyId: 'alias/x', GrantTokens: 't' }, 'SerializationException'],
        ['a Recipient on GenerateDataKey', 'GenerateDataKey', { KeyId: 'alias/x', KeySpec: 'AES_256', Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' } }, 'UnsupportedOperationException'],
        ['a Recipient on GenerateRandom', 'GenerateRandom', { NumberOfBytes: 8, Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' } }, 'UnsupportedOperationException'],
        ['a Recipient on Encrypt', 'Encrypt', { KeyId: 'alias/x', Plaintext: 'eA==', Recipient: { KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256' } }, 'UnsupportedOperationException'],
        ['an RSA key without KeyUsage', 'CreateKey', { KeySpec: 'RSA_2048' }, 'ValidationException'],
        ['an RSA key for signing', 'CreateKey', { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' }, 'UnsupportedOperationException'],
        ['an ECC key for encryption', 'CreateKey', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'ENCRYPT_DECRYPT' }, 'UnsupportedOperationException'],
        ['a key of external origin', 'CreateKey', { Origin: 'EXTERNAL' }, 'UnsupportedOperationException'],
        ['an alias as alias target', 'CreateAlias', { AliasName: 'alias/a', TargetKeyId: 'alias/b' }, 'ValidationException'],
        ['an alias ARN as alias target', 'CreateAlias', { AliasName: 'alias/a', TargetKeyId: 'arn:aws:kms:us-east-1:111122223333:alias/b' }, 'ValidationException'],
        ['a Marker it never returned', 'ListAliases', { Marker: 'next-page' }, 'InvalidMarkerException'],
      ] as const
    ).map(([what, operation, input, type]): [string, Record<string, string>, string, number, string] => [
      what,
      { ...signed, 'X-Amz-Target': `TrentService.${operation}` },
      JSON.stringify(input),
      400,
      type,
    ]),
    [
      'a credential scoped to another service',
      { ...signed, Authorization: signed.Authorization.replace('/kms/', '/s3/'), 'X-Amz-Target': 'TrentService.ListAliases' },
      '{}',
      400,
      'InvalidSignatureException',
    ],
  ])('%s', async (_name, headers, body, status, type) => {
    const response = await post(headers, body)
    expect(response.status).toBe(status)
    expect(response.headers.get('x-amzn-errortype')).toBe(type)
    expect(response.headers.get('x-amzn-requestid')).toMatch(/^[0-9a-f-]{36}$/)
    expect(response.headers.get('content-type')).toBe('application/x-amz-json-1.1')
    const answer = (await response.json()) as { __type: string; message: string }
    expect(answer.__type).toBe(type)
    expect(answer.message.length).toBeGreaterThan(0)
    // The server is still up after each of these.
    expect((await post({ ...signed, 'X-Amz-Target': 'TrentService.ListAliases' }, '{}')).status).toBe(200)
  })

  it('an empty body is an empty request; a body of 1 MiB is read, one byte more is 413; a declared length over 16 MiB is refused unread', async () => {
    const listAliases = { ...signed, 'X-Amz-Target': 'TrentService.ListAliases' }
    expect((await post(listAliases, '')).status).toBe(200)
    // Spaces first, so a body that lost its last chunk would not parse.
    const padded = (length: number) => '{}'.padStart(length, ' ')
    expect((await post(listAliases, padded(1024 * 1024))).status).toBe(200)
    const over = await post(listAliases, padded(1024 * 1024 + 1))
    expect([over.status, ((await over.json()) as { message: string }).message]).toEqual([413, 'The request body exceeds 1048576 bytes.'])
    // The server answers on the header alone: this request sends 2 bytes of the 17 MiB it declares.
    const { hostname, port } = new URL(kms.endpoint)
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const request = httpRequest({ hostname, port, method: 'POST', headers: { ...listAliases, 'Content-Length': String(17 * 1024 * 1024) } }, (response) => {
        response.resume()
        resolve(response.statusCode)
        request.destroy()
      })
      request.on('error', reject)
      request.write('{}')
    })
    expect(status).toBe(413)
    // Nor does it wait for the rest: it closes the connection after its answer, while the body is still coming.
    const agent = new HttpAgent({ keepAlive: true })
    try {
      const closed = await new Promise<[number | undefined, boolean]>((resolve) => {
        const request = httpRequest({ hostname, port, method: 'POST', agent, headers: { ...listAliases, 'Content-Length': String(17 * 1024 * 1024) } }, (response) => {
          response.resume()
          const kept = setTimeout(() => resolve([response.statusCode, false]), 2000)
          response.socket.once('close', () => (clearTimeout(kept), resolve([response.statusCode, true])))
        })
        request.on('error', () => undefined) // the connection closed under the rest of the body
        request.write('{}')
      })
      expect(closed).toEqual([413, true])
    } finally {
      agent.destroy()
    }
  })

  it('a chunked body (no declared length) is answered 413 once it passes 16 MiB, without waiting for its end', async () => {
    const { hostname, port } = new URL(kms.endpoint)
    const status = await new Promise<number | undefined>((resolve, reject) => {
      const request = httpRequest({ hostname, port, method: 'POST', headers: { ...signed, 'X-Amz-Target': 'TrentService.ListAliases' } }, (response) => {
        response.resume()
        resolve(response.statusCode)
        request.destroy()
      })
      request.on('error', (error) => (request.destroyed ? undefined : reject(error)))
      const chunk = Buffer.alloc(1024 * 1024, 0x20)
      for (let sent = 0; sent < 17; sent++) request.write(chunk)
      // No end(): the body never finishes.
    })
    expect(status).toBe(413)
  })

  it('a request whose client goes away before the end of its body is logged as cut short', async () => {
    const emulator = await start()
    try {
      const { hostname, port } = new URL(emulator.endpoint)
      await new Promise<void>((resolve) => {
        const request = httpRequest({ hostname, port, method: 'POST', headers: { ...signed, 'X-Amz-Target': 'TrentService.ListAliases', 'Content-Length': '1000' } })
        request.on('error', () => undefined) // destroyed below
        request.write('{ ', () => setTimeout(() => (request.destroy(), resolve()), 50))
      })
      await vi.waitFor(() => expect(emulator.calls.at(-1)).toMatchObject({ ok: false, errorType: 'ValidationException' }))
    } finally {
      await emulator.close()
    }
  })

  it("takes a value at each limit, and refuses one past it in KMS's words", async () => {
    const answer = async (operation: string, input: object) => {
      const response = await post({ ...signed, 'X-Amz-Target': `TrentService.${operation}` }, JSON.stringify(input))
      return (await response.json()) as { __type: string; message: string }
    }
    const base64 = (length: number) => Buffer.alloc(length, 1).toString('base64')
    const primary = (await east.send(new CreateKeyCommand({ MultiRegion: true }))).KeyMetadata!.Arn!
    const doomed = kms.createKey({ region: 'us-east-1' }).arn
    // A value at the limit is taken ('OK', or a later check's refusal); one past it is refused in KMS's words.
    const cases: [string, object, string][] = [
      ['DescribeKey', { KeyId: 'k'.repeat(2048) }, 'NotFoundException'],
      ['DescribeKey', { KeyId: 'k'.repeat(2049) }, "1 validation error detected: Value at 'keyId' failed to satisfy constraint: Member must have length between 1 and 2048"],
      ['Encrypt', { KeyId: 'alias/none', Plaintext: base64(4096) }, 'NotFoundException'],
      ['Encrypt', { KeyId: 'alias/none', Plaintext: base64(4097) }, "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length between 1 and 4096"],
      ['GenerateDataKey', { KeyId: 'alias/none', NumberOfBytes: 1024 }, 'NotFoundException'],
      ['GenerateDataKey', { KeyId: 'alias/none', NumberOfBytes: 1025 }, "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"],
      ['GenerateDataKey', { KeyId: 'alias/none', NumberOfBytes: 0 }, "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"],
      ['Decrypt', { CiphertextBlob: base64(6144) }, 'InvalidCiphertextException'],
      ['Decrypt', { CiphertextBlob: base64(6145) }, "1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length between 1 and 6144"],
      ['ReEncrypt', { CiphertextBlob: base64(6144), DestinationKeyId: 'alias/none' }, 'InvalidCiphertextException'],
      ['ReEncrypt', { CiphertextBlob: base64(6145), DestinationKeyId: 'alias/none' }, "1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length between 1 and 6144"],
      ['ListAliases', { Marker: '1'.repeat(1024) }, 'InvalidMarkerException'],
      ['ListAliases', { Marker: '1'.repeat(1025) }, "1 validation error detected: Value at 'marker' failed to satisfy constraint: Member must have length between 1 and 1024"],
      ['ListAliases', { Limit: 100, Marker: 'x' }, 'InvalidMarkerException'],
      ['ListAliases', { Limit: 101 }, "1 validation error detected: Value '101' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100"],
      ['ListKeys', { Limit: 1000, Marker: 'x' }, 'InvalidMarkerException'],
      ['ListKeys', { Limit: 1001 }, "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000"],
      ['CreateKey', { Description: 'd'.repeat(8193) }, "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length between 1 and 8192"],
      ['CreateKey', { Description: 'd'.repeat(8192) }, 'OK'],
      ['ReplicateKey', { KeyId: primary, ReplicaRegion: 'r'.repeat(32) }, "Region \"rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr\" is not served by this emulator (it serves us-east-1, us-west-2, eu-west-1)."],
      ['ReplicateKey', { KeyId: primary, ReplicaRegion: 'r'.repeat(33) }, "1 validation error detected: Value at 'replicaRegion' failed to satisfy constraint: Member must have length between 1 and 32"],
      ['ReplicateKey', { KeyId: primary, ReplicaRegion: 'eu-west-1', Description: 'd'.repeat(8192) }, 'OK'],
      ['ReplicateKey', { KeyId: primary, ReplicaRegion: 'us-west-2', Description: 'd'.repeat(8193) }, "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length between 1 and 8192"],
      ['ScheduleKeyDeletion', { KeyId: doomed, PendingWindowInDays: 31 }, "1 validation error detected: Value '31' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value less than or equal to 30"],
      ['ScheduleKeyDeletion', { KeyId: doomed, PendingWindowInDays: 30 }, 'OK'],
      ['CreateAlias', { AliasName: `alias/${'a'.repeat(251)}`, TargetKeyId: symmetricArn }, "1 validation error detected: Value at 'aliasName' failed to satisfy constraint: Member must have length between 1 and 256"],
      ['CreateAlias', { AliasName: `alias/${'a'.repeat(250)}`, TargetKeyId: symmetricArn }, 'OK'],
      ['UpdateAlias', { AliasName: `alias/${'a'.repeat(251)}`, TargetKeyId: symmetricArn }, "1 validation error detected: Value at 'aliasName' failed to satisfy constraint: Member must have length between 1 and 256"],
      ['UpdateAlias', { AliasName: `alias/${'a'.repeat(250)}`, TargetKeyId: symmetricArn }, 'OK'],
      ['DeleteAlias', { AliasName: `alias/${'a'.repeat(251)}` }, "1 validation error detected: Value at 'aliasName' failed to satisfy constraint: Member must have length between 1 and 256"],
      ['DeleteAlias', { AliasName: `alias/${'a'.repeat(250)}` }, 'OK'],
    ]
    for (const [operation, input, expected] of cases) {
      const { __type, message } = await answer(operation, input)
      if (expected === 'OK') expect(__type, `${operation} ${JSON.stringify(input).slice(0, 60)}: ${message}`).toBeUndefined()
      else if (expected.endsWith('Exception')) expect(__type, `${operation} ${JSON.stringify(input).length}`).toBe(expected)
      else expect([__type, message], `${operation} ${JSON.stringify(input).slice(0, 60)}`).toEqual(['ValidationException', expected])
    }
  })

  it('GET is refused; the call log records malformed requests too', async () => {
    kms.resetCalls()
    expect((await post({}, '', 'GET')).status).toBe(405)
    expect(kms.calls).toEqual([{ operation: '', region: undefined, keyId: undefined, accessKeyId: undefined, ok: false, errorType: 'ValidationException' }])
    // A target of another service is logged as sent; a call that succeeds has no errorType at all.
    await post({ ...signed, 'X-Amz-Target': 'DynamoDB_20120810.ListTables' }, '{}')
    await post({ ...signed, 'X-Amz-Target': 'TrentService.ListAliases' }, '{}')
    expect(kms.calls.slice(1)).toStrictEqual([
      { operation: 'DynamoDB_20120810.ListTables', region: 'us-east-1', keyId: undefined, accessKeyId: 'AKIDEXAMPLE', ok: false, errorType: 'UnsupportedOperationException' },
      { operation: 'ListAliases', region: 'us-east-1', keyId: undefined, accessKeyId: 'AKIDEXAMPLE', ok: true },
    ])
  })
})

describe('calls from web pages (CORS)', () => {
  const page = 'http://localhost:5173'
  const kmsHeaders = 'authorization,content-type,x-amz-date,x-amz-target,x-amz-user-agent,amz-sdk-invocation-id,amz-sdk-request'
  const preflight = (endpoint: string, origin: string, extra: Record<string, string> = {}): Promise<Response> =>
    fetch(endpoint, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': kmsHeaders, ...extra } })
  /** A KMS call as a page's fetch makes it (with its Origin), or as a program does (without one). */
  const call = (endpoint: string, origin: string | undefined, operation = 'ListAliases'): Promise<Response> =>
    fetch(endpoint, {
      method: 'POST',
      headers: {
        ...(origin === undefined ? {} : { Origin: origin }),
        'Content-Type': 'application/x-amz-json-1.1',
        'X-Amz-Target': `TrentService.${operation}`,
        Authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261205/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=abcd',
      },
      body: '{}',
    })

  it('by default, a page may not call it: a preflight is refused (403, no CORS headers), and a call is refused before it does anything', async () => {
    const refusal = `Origin ${page} may not call this KMS emulator: start it with corsOrigins (--cors-origin) listing the origin.`
    const refused = await preflight(kms.endpoint, page)
    expect(refused.status).toBe(403)
    expect(refused.headers.get('access-control-allow-origin')).toBeNull()
    expect(await refused.text()).toBe(refusal)
    // A page that reaches the emulator under a host name of its own (DNS rebinding) sends no preflight, and the
    // browser shows it the answer: the call itself is refused, and creates no key.
    const keyCount = async () => ((await (await call(kms.endpoint, undefined, 'ListKeys')).json()) as { Keys: unknown[] }).Keys.length
    const keys = await keyCount()
    for (const operation of ['ListAliases', 'CreateKey']) {
      const answered = await call(kms.endpoint, page, operation)
      expect([answered.status, answered.headers.get('x-amzn-errortype'), answered.headers.get('access-control-allow-origin')], operation).toEqual([403, 'AccessDeniedException', null])
      expect(((await answered.json()) as { message: string }).message, operation).toBe(refusal)
    }
    expect(await keyCount()).toBe(keys)
    expect(kms.calls.slice(-3).map(({ operation, errorType }) => [operation, errorType])).toEqual([
      ['ListAliases', 'AccessDeniedException'],
      ['CreateKey', 'AccessDeniedException'],
      ['ListKeys', undefined],
    ])
  })

  it('corsOrigins lets the pages of those origins call it: preflight, then answers and errors a page can read', async () => {
    const emulator = await startKmsEmulator({ corsOrigins: [page, 'https://app.example'] })
    try {
      emulator.resetCalls()
      const allowed = await preflight(emulator.endpoint, page)
      expect(allowed.status).toBe(204)
      expect(Object.fromEntries(['access-control-allow-origin', 'access-control-allow-methods', 'access-control-allow-headers', 'access-control-max-age'].map((name) => [name, allowed.headers.get(name)]))).toEqual({
        'access-control-allow-origin': page,
        'access-control-allow-methods': 'POST',
        'access-control-allow-headers': kmsHeaders,
        'access-control-max-age': '600',
      })
      expect(allowed.headers.get('access-control-allow-private-network')).toBeNull()
      // A preflight that asks for no headers is allowed none.
      const bare = await fetch(emulator.endpoint, { method: 'OPTIONS', headers: { Origin: page, 'Access-Control-Request-Method': 'POST' } })
      expect([bare.status, bare.headers.get('access-control-allow-headers')]).toEqual([204, null])
      // Chrome's question for a page on a public address calling a loopback one.
      const privateNetwork = await preflight(emulator.endpoint, 'https://app.example', { 'Access-Control-Request-Private-Network': 'true' })
      expect(privateNetwork.headers.get('access-control-allow-private-network')).toBe('true')
      // The SDK reads the request id and an error's type from headers, which the page may read only when exposed.
      const answers = [await call(emulator.endpoint, page), await fetch(emulator.endpoint, { method: 'POST', headers: { Origin: page }, body: '{}' })]
      expect(answers.map((answer) => [answer.status, answer.headers.get('x-amzn-errortype')])).toEqual([
        [200, null],
        [400, 'UnsupportedOperationException'],
      ])
      for (const answer of answers) {
        expect(answer.headers.get('access-control-allow-origin')).toBe(page)
        expect(answer.headers.get('access-control-expose-headers')).toBe('x-amzn-RequestId, x-amzn-ErrorType')
        expect(answer.headers.get('vary')).toBe('Origin')
      }
      // Another origin is refused; a preflight is not a KMS call, so the log holds the two POSTs only.
      const other = await preflight(emulator.endpoint, 'http://localhost:3000')
      expect([other.status, other.headers.get('access-control-allow-origin')]).toEqual([403, null])
      const otherCall = await call(emulator.endpoint, 'http://localhost:3000')
      expect([otherCall.status, otherCall.headers.get('access-control-allow-origin')]).toEqual([403, null])
      expect(emulator.calls.map(({ operation }) => operation)).toEqual(['ListAliases', '', 'ListAliases'])
    } finally {
      await emulator.close()
    }
  })

  it("'*' lets any page call it; an answer that depends on the origin says so (Vary), one that does not, does not", async () => {
    const emulator = await startKmsEmulator({ corsOrigins: ['*'] })
    try {
      const allowed = await preflight(emulator.endpoint, 'https://anywhere.example')
      expect([allowed.status, allowed.headers.get('access-control-allow-origin')]).toEqual([204, 'https://anywhere.example'])
      const answer = await call(emulator.endpoint, 'https://anywhere.example')
      expect([answer.status, answer.headers.get('access-control-allow-origin'), answer.headers.get('vary')]).toEqual([200, 'https://anywhere.example', 'Origin'])
      // Without corsOrigins no page may call it, whatever its origin: the answer does not vary with it.
      const unconfigured = await call(kms.endpoint, 'https://anywhere.example')
      expect([unconfigured.status, unconfigured.headers.get('access-control-allow-origin'), unconfigured.headers.get('vary')]).toEqual([403, null, null])
    } finally {
      await emulator.close()
    }
  })

  it('refuses a corsOrigins entry that is not an origin a browser sends, saying which', async () => {
    const expected = 'corsOrigins must be a list of origins such as "http://localhost:5173", or "*" for any; got'
    const cases: [unknown, string][] = [
      ['http://localhost:5173/', `${expected} "http://localhost:5173/" (the origin of that URL is "http://localhost:5173").`],
      ['http://LOCALHOST:5173/app', `${expected} "http://LOCALHOST:5173/app" (the origin of that URL is "http://localhost:5173").`],
      ['localhost:5173', `${expected} "localhost:5173".`],
      ['', `${expected} "".`],
      [5173, `${expected} 5173.`],
    ]
    for (const [origin, message] of cases) {
      expect(await rejectionOf(startKmsEmulator({ corsOrigins: [origin as string] })), String(origin)).toMatchObject({ code: 'INVALID_CONFIGURATION', message })
    }
    expect(await rejectionOf(startKmsEmulator({ corsOrigins: 'http://localhost:5173' as never }))).toMatchObject({ message: `${expected} "http://localhost:5173".` })
  })
})

describe('emulator API', () => {
  it('refuses bad options and bad calls with configuration errors', async () => {
    const refusals: [object, string][] = [
      [{ regions: [] }, 'regions must be a non-empty list of Region names such as "us-east-1".'],
      [{ accountId: '12' }, 'accountId must be a string of 12 digits; got "12".'],
      [{ port: -1 }, 'port must be an integer from 0 to 65535; got -1.'],
      [{ port: 65_536 }, 'port must be an integer from 0 to 65535; got 65536.'],
      [{ port: 1.5 }, 'port must be an integer from 0 to 65535; got 1.5.'],
      [{ port: '80' }, 'port must be an integer from 0 to 65535; got "80".'],
      [{ host: '' }, 'host must be a non-empty string; got "".'],
      [{ partition: 'AWS 1' }, 'partition must be a partition name such as "aws"; got "AWS 1".'],
      [{ statePath: '' }, 'statePath must be a file path; got "".'],
      [{ statePath: 5 }, 'statePath must be a file path; got 5.'],
    ]
    for (const [options, message] of refusals) {
      expect(await rejectionOf(startKmsEmulator(options as never)), JSON.stringify(options)).toMatchObject({ code: 'INVALID_CONFIGURATION', message })
    }
    // The ends of the port range are taken (65535 may be in use here: then listening fails, not the option).
    await (await startKmsEmulator({ port: 0 })).close()
    const highest = await startKmsEmulator({ port: 65_535 }).then(
      async (emulator) => emulator.close(),
      (error: Error) => error.message,
    )
    expect(highest ?? 'started').not.toMatch(/^port must be/)
    // Each of these used to start: a number or a list passed the text checks, and a Region listed twice or named "-"
    // made an emulator whose ARNs KMS would never write.
    expect(await rejectionOf(startKmsEmulator({ accountId: 111122223333 as never }))).toMatchObject({ message: 'accountId must be a string of 12 digits; got 111122223333.' })
    expect(await rejectionOf(startKmsEmulator({ partition: ['aws'] as never }))).toMatchObject({ message: 'partition must be a partition name such as "aws"; got object.' })
    expect(await rejectionOf(startKmsEmulator({ regions: ['us-east-1', 'eu-west-1', 'us-east-1'] }))).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: 'regions lists "us-east-1" twice.',
    })
    for (const region of ['-', 'us-east-', '-us-east-1', 'us--east-1', 'US-EAST-1', '']) {
      expect(await rejectionOf(startKmsEmulator({ regions: [region] })), region).toMatchObject({ message: `regions must be a non-empty list of Region names such as "us-east-1"; got ${JSON.stringify(region)}.` })
    }
    const configurationError = (message: string | RegExp) => expect.objectContaining({ code: 'INVALID_CONFIGURATION', message: typeof message === 'string' ? message : expect.stringMatching(message) })
    const notServed = 'ValidationException: Region "ap-south-1" is not served by this emulator (it serves us-east-1, us-west-2, eu-west-1).'
    expect(() => kms.createKey({ region: 'ap-south-1' })).toThrow(configurationError(notServed))
    expect(() => kms.createKey({ keySpec: 'ECC_NIST_P256' as never })).toThrow(configurationError('createKey keySpec must be one of SYMMETRIC_DEFAULT, RSA_2048, RSA_3072, RSA_4096.'))
    expect(() => kms.replicateKey(symmetricArn, 'eu-west-1')).toThrow(
      configurationError(`UnsupportedOperationException: ${symmetricArn} is not a multi-Region key; only multi-Region keys can be replicated.`),
    )
    const primary = kms.createKey({ region: 'us-east-1', multiRegion: true })
    // Each says what to do instead (a later check would refuse them too, as already existing).
    expect(() => kms.replicateKey(primary.arn, 'us-east-1')).toThrow(/must differ from the primary key's Region/)
    const replica = kms.replicateKey(primary.arn, 'eu-west-1')
    expect(() => kms.replicateKey(replica.arn, 'us-east-1')).toThrow(/replicate its primary key instead/)
    const elsewhere = symmetricArn.replace(/:\d{12}:/, ':999999999999:') // another account
    expect(() => kms.setKeyEnabled(elsewhere, true)).toThrow(configurationError(`NotFoundException: Invalid arn ${elsewhere}.`))
    expect(() => kms.createAlias('alias/main', otherArn)).toThrow(configurationError(/^AlreadyExistsException: An alias with the name arn:aws:kms:us-east-1:\d{12}:alias\/main already exists\.$/))
    expect(() => kms.createAlias('main', otherArn)).toThrow(configurationError(/^InvalidAliasNameException: Alias name "main" is invalid: use "alias\/" then /))
    expect(() => kms.createKey({ multiRegion: 'yes' as never })).toThrow(configurationError('createKey multiRegion must be true or false.'))
    const description = 'createKey description must be a string of at most 8192 characters, as in KMS; got'
    expect(() => kms.createKey({ description: 5 as never })).toThrow(configurationError(`${description} 5.`))
    expect(() => kms.createKey({ description: 'd'.repeat(8193) })).toThrow(configurationError(new RegExp(`^${description} "d+…"\\.$`)))
    expect(() => kms.callCount({ operation: 'decrypt' })).toThrow(configurationError('callCount filter.operation must be a KMS operation name such as "Decrypt"; got "decrypt".'))
    expect(() => kms.setKeyEnabled(5 as never, true)).toThrow(configurationError('setKeyEnabled needs a key ARN, as createKey returns it; got 5.'))
    const notArn = symmetricArn.replace(/^arn:/, 'urn:')
    expect(() => kms.setKeyEnabled(notArn, true)).toThrow(configurationError(`setKeyEnabled needs a key ARN, as createKey returns it; got "${notArn}".`))
    for (const method of ['setKeyEnabled', 'scheduleKeyDeletion', 'createAlias', 'updateAlias', 'replicateKey'] as const) {
      const call = {
        setKeyEnabled: () => kms.setKeyEnabled('key/nope', true),
        scheduleKeyDeletion: () => kms.scheduleKeyDeletion('key/nope'),
        createAlias: () => kms.createAlias('alias/nope', 'key/nope'),
        updateAlias: () => kms.updateAlias('alias/main', 'key/nope'),
        replicateKey: () => kms.replicateKey('key/nope', 'eu-west-1'),
      }[method]
      expect(call, method).toThrow(configurationError(`${method} needs a key ARN, as createKey returns it; got "key/nope".`))
    }
  })

  it('createKey: a description of up to 8192 characters, none by default; setKeyEnabled turns a key off and on, not one pending deletion', async () => {
    const described = async (arn: string) => (await east.send(new DescribeKeyCommand({ KeyId: arn }))).KeyMetadata!
    const longest = kms.createKey({ region: 'us-east-1', description: 'd'.repeat(8192) })
    expect((await described(longest.arn)).Description).toHaveLength(8192)
    const key = kms.createKey({ region: 'us-east-1' })
    expect((await described(key.arn)).Description).toBe('')
    kms.setKeyEnabled(key.arn, false)
    expect(await kmsFailure(east.send(new EncryptCommand({ KeyId: key.arn, Plaintext: utf8('x') })))).toBeInstanceOf(DisabledException)
    kms.setKeyEnabled(key.arn, true)
    expect((await east.send(new EncryptCommand({ KeyId: key.arn, Plaintext: utf8('x') }))).KeyId).toBe(key.arn)
    const scheduledAt = Date.now()
    kms.scheduleKeyDeletion(key.arn)
    expect(() => kms.setKeyEnabled(key.arn, true)).toThrow(
      expect.objectContaining({ code: 'INVALID_CONFIGURATION', message: `KMSInvalidStateException: ${key.arn} is pending deletion.` }),
    )
    const pending = await described(key.arn)
    expect(pending).toMatchObject({ KeyState: 'PendingDeletion', PendingDeletionWindowInDays: 30 })
    expectDeletionIn(pending.DeletionDate, scheduledAt, 30)
    // A key made with no Region is in the emulator's first.
    expect(kms.createKey({}).arn).toMatch(/^arn:aws:kms:us-east-1:/)
  })

  it('updateAlias moves an alias to another key of its Region and kind; deleteAlias removes it', async () => {
    const east = client('us-east-1')
    const [from, to] = [kms.createKey({ region: 'us-east-1' }), kms.createKey({ region: 'us-east-1' })]
    kms.createAlias('alias/api-moved', from.arn)
    kms.updateAlias('alias/api-moved', to.arn)
    expect((await east.send(new DescribeKeyCommand({ KeyId: 'alias/api-moved' }))).KeyMetadata!.Arn).toBe(to.arn)
    const configurationError = (message: RegExp) => expect.objectContaining({ code: 'INVALID_CONFIGURATION', message: expect.stringMatching(message) })
    expect(() => kms.updateAlias('alias/api-none', to.arn)).toThrow(configurationError(/^NotFoundException: Alias arn:aws:kms:us-east-1:\d{12}:alias\/api-none is not found\.$/))
    expect(() => kms.updateAlias('alias/api-moved', rsaArn)).toThrow(/cannot move to .* RSA_2048 key/)
    const pending = kms.createKey({ region: 'us-east-1' })
    kms.scheduleKeyDeletion(pending.arn)
    expect(() => kms.updateAlias('alias/api-moved', pending.arn)).toThrow(/pending deletion/)
    // As CreateAlias does: no new alias for a key pending deletion.
    expect(() => kms.createAlias('alias/api-pending', pending.arn)).toThrow(/pending deletion/)
    kms.deleteAlias('alias/api-moved', 'us-east-1')
    expect(await kmsFailure(east.send(new DescribeKeyCommand({ KeyId: 'alias/api-moved' })))).toBeInstanceOf(NotFoundException)
    expect(() => kms.deleteAlias('alias/api-moved', 'us-east-1')).toThrow(configurationError(/^NotFoundException: Alias arn:aws:kms:us-east-1:\d{12}:alias\/api-moved is not found\.$/))
    expect(() => kms.deleteAlias('alias/main', 'ap-south-1')).toThrow(configurationError(/^ValidationException: Region "ap-south-1" is not served by this emulator/))
  })

  it('a port or host it cannot listen on is a configuration error that says why', async () => {
    const port = Number(new URL(kms.endpoint).port)
    const inUse = await rejectionOf(startKmsEmulator({ port }))
    expect(inUse).toMatchObject({ code: 'INVALID_CONFIGURATION', cause: expect.objectContaining({ code: 'EADDRINUSE' }) })
    expect((inUse as Error).message).toContain(`127.0.0.1 port ${port} (`)
    expect((inUse as Error).message).toContain('Another process uses that port')
    // 192.0.2.1 (TEST-NET-1) is no address of this machine.
    const notHere = await rejectionOf(startKmsEmulator({ host: '192.0.2.1' }))
    expect(notHere).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: expect.stringMatching(/^The KMS emulator cannot listen on 192\.0\.2\.1 port 0 \(.*EADDRNOTAVAIL.*\)\. The host must be an address of this machine/),
    })
    const badHost = await rejectionOf(startKmsEmulator({ host: 'no-such-host.invalid' }))
    expect(badHost).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: expect.stringMatching(/^The KMS emulator cannot listen on no-such-host\.invalid port 0 \(.+\)\. The host must be an address of this machine, such as 127\.0\.0\.1 or ::1\.$/),
    })
  })

  it('listens on an IPv6 loopback address, with the address in brackets in its endpoint', async () => {
    // A machine with IPv6 turned off cannot listen on ::1: then the start fails as any host not of this machine.
    const emulator = await start({ host: '::1' }).catch((error: unknown) => error as Error)
    if (emulator instanceof Error) {
      expect(emulator).toMatchObject({ code: 'INVALID_CONFIGURATION', message: expect.stringContaining('The host must be an address of this machine') })
      return
    }
    expect(emulator.endpoint).toMatch(/^http:\/\/\[::1\]:\d+$/)
    const { KeyMetadata } = await client('us-east-1', { emulator }).send(new CreateKeyCommand({}))
    expect(KeyMetadata!.KeyState).toBe('Enabled')
  })

  it('the call log keeps only the latest maxLoggedCalls calls', async () => {
    expect(await rejectionOf(startKmsEmulator({ maxLoggedCalls: 0 }))).toMatchObject({ code: 'INVALID_CONFIGURATION', message: 'maxLoggedCalls must be a positive integer; got 0.' })
    expect(await rejectionOf(startKmsEmulator({ maxLoggedCalls: 2.5 }))).toMatchObject({ code: 'INVALID_CONFIGURATION', message: 'maxLoggedCalls must be a positive integer; got 2.5.' })
    const single = await start({ maxLoggedCalls: 1 })
    const singleClient = client('us-east-1', { emulator: single })
    await singleClient.send(new ListKeysCommand({}))
    await singleClient.send(new ListAliasesCommand({}))
    expect(single.calls.map(({ operation }) => operation)).toEqual(['ListAliases'])
    const small = await start({ maxLoggedCalls: 10 })
    const key = small.createKey({ region: 'us-east-1' })
    const east = client('us-east-1', { emulator: small })
    for (let i = 0; i < 25; i++) await east.send(new EncryptCommand({ KeyId: key.arn, Plaintext: utf8(`message ${i}`) }))
    await east.send(new DescribeKeyCommand({ KeyId: key.arn }))
    const calls = small.calls
    expect(calls.length).toBeGreaterThan(0)
    expect(calls.length).toBeLessThanOrEqual(10)
    expect(calls.at(-1)).toMatchObject({ operation: 'DescribeKey', ok: true })
    expect(small.callCount({ operation: 'Encrypt' })).toBe(calls.length - 1)
  })

  it('describes itself without keys', () => {
    expect(inspect(kms)).toBe(`KmsEmulator ${kms.endpoint} (us-east-1, us-west-2, eu-west-1)`)
    expect(kms.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect([kms.accountId, kms.regions]).toEqual(['111122223333', ['us-east-1', 'us-west-2', 'eu-west-1']])
  })
})
