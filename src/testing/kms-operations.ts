// The KMS operations the emulator answers, one handler per `X-Amz-Target`, with the request and response
// shapes of the KMS JSON API (blobs as base64 strings, timestamps as epoch seconds).
import { randomBytes } from 'node:crypto'
import { generateMaterialAsync, KEY_SPECS, publicKeyDer, RSA_ALGORITHMS, type EmulatedKeySpec } from './kms-crypto.js'
import { invalidKeyUsage, invalidState, KmsServiceError, unsupported, validation } from './kms-errors.js'
import type { RequestInput } from './kms-input.js'
import {
  assertNotPendingDeletion,
  checkAlgorithm,
  decryptBlob,
  encryptUnder,
  useKey,
  type OperationContext,
} from './kms-key-use.js'
import { nowInSeconds, type EmulatedKey, type KmsStore } from './kms-state.js'

type Handler = (context: OperationContext, input: RequestInput) => object | Promise<object>

const ENCRYPTION_ALGORITHMS = ['SYMMETRIC_DEFAULT', 'RSAES_OAEP_SHA_1', 'RSAES_OAEP_SHA_256', 'SM2PKE'] as const
const KEY_USAGES = ['ENCRYPT_DECRYPT', 'SIGN_VERIFY', 'GENERATE_VERIFY_MAC', 'KEY_AGREEMENT'] as const
const MAX_PLAINTEXT = 4096
const MAX_CIPHERTEXT = 6144
const DAY_IN_SECONDS = 86_400

function rejectUnsupported(input: RequestInput): void {
  if (input.has('Recipient')) throw unsupported('The KMS emulator does not support Recipient (Nitro Enclaves attestation).')
  input.grantTokens()
  input.boolean('DryRun') // its type, as KMS checks it, before any key is looked up
}

/** DryRun answers after every check passed, without doing the work: HTTP 412 as in KMS. */
function checkDryRun(input: RequestInput): void {
  if (input.boolean('DryRun') === true) {
    throw new KmsServiceError('DryRunOperationException', 'The request would have succeeded, but the DryRun parameter was set.', 412)
  }
}

/** Base64 for the response, then zero the bytes: plaintexts do not linger in the emulator's memory. */
function releaseBase64(bytes: Buffer): string {
  const text = bytes.toString('base64')
  bytes.fill(0)
  return text
}

const algorithmsOf = (keySpec: EmulatedKeySpec): string[] =>
  keySpec === 'SYMMETRIC_DEFAULT' ? ['SYMMETRIC_DEFAULT'] : [...RSA_ALGORITHMS]

function keyMetadata(store: KmsStore, key: EmulatedKey): object {
  const family = store.family(key)
  const primary = family.find((member) => member.primary)
  const symmetric = key.keySpec === 'SYMMETRIC_DEFAULT'
  return {
    AWSAccountId: store.accountId,
    KeyId: key.keyId,
    Arn: key.arn,
    CreationDate: key.creationDate,
    Enabled: key.state === 'Enabled',
    Description: key.description,
    KeyUsage: 'ENCRYPT_DECRYPT',
    KeyState: key.state,
    ...(key.deletionDate === undefined ? {} : { DeletionDate: key.deletionDate }),
    Origin: 'AWS_KMS',
    KeyManager: 'CUSTOMER',
    CustomerMasterKeySpec: key.keySpec,
    KeySpec: key.keySpec,
    EncryptionAlgorithms: algorithmsOf(key.keySpec),
    MultiRegion: key.multiRegion,
    ...(key.multiRegion
      ? {
          MultiRegionConfiguration: {
            MultiRegionKeyType: key.primary ? 'PRIMARY' : 'REPLICA',
            ...(primary === undefined ? {} : { PrimaryKey: { Arn: primary.arn, Region: primary.region } }),
            ReplicaKeys: family.filter((member) => !member.primary).map((member) => ({ Arn: member.arn, Region: member.region })),
          },
        }
      : {}),
    ...(key.pendingWindowInDays === undefined ? {} : { PendingDeletionWindowInDays: key.pendingWindowInDays }),
    ...(symmetric ? { CurrentKeyMaterialId: key.materialId } : {}),
  }
}

const materialIdOf = (key: EmulatedKey): object => (key.keySpec === 'SYMMETRIC_DEFAULT' ? { KeyMaterialId: key.materialId } : {})

/** A data key of NumberOfBytes or KeySpec (exactly one of them), sealed under a symmetric key. */
function generateDataKey(context: OperationContext, input: RequestInput): { key: EmulatedKey; plaintext: Buffer; blob: Buffer } {
  const keyIdentifier = input.string('KeyId', true)
  const encryptionContext = input.context('EncryptionContext')
  const numberOfBytes = input.integer('NumberOfBytes', 1, 1024)
  const keySpec = input.choice('KeySpec', ['AES_256', 'AES_128'] as const)
  rejectUnsupported(input)
  if (numberOfBytes !== undefined && keySpec !== undefined) throw validation('Specify either KeySpec or NumberOfBytes, not both.')
  if (numberOfBytes === undefined && keySpec === undefined) throw validation('Specify either KeySpec or NumberOfBytes.')
  const key = useKey(context, keyIdentifier)
  if (key.keySpec !== 'SYMMETRIC_DEFAULT') {
    throw invalidKeyUsage(`${context.operation} needs a symmetric encryption key; ${key.arn} has key spec ${key.keySpec}.`)
  }
  checkDryRun(input)
  const plaintext = randomBytes(numberOfBytes ?? (keySpec === 'AES_128' ? 16 : 32))
  return { key, plaintext, blob: encryptUnder(context, key, 'SYMMETRIC_DEFAULT', plaintext, encryptionContext) }
}

/** The key an alias is to point to (CreateAlias, UpdateAlias): a key, not another alias (the store refuses one pending deletion). */
function aliasTarget(context: OperationContext, input: RequestInput): EmulatedKey {
  const target = input.string('TargetKeyId', true)
  if (target.startsWith('alias/') || /^arn:[^:]*:kms:[^:]*:[^:]*:alias\//.test(target)) {
    throw validation('TargetKeyId must be a key id or key ARN, not an alias.')
  }
  return useKey(context, target, false)
}

/** One page of a List operation: `Limit` items from the index `Marker` gives (this emulator's markers are indexes). */
function pageOf<T>(items: readonly T[], input: RequestInput, maxLimit: number, defaultLimit: number): { page: T[]; Truncated: boolean; NextMarker?: string } {
  const limit = input.integer('Limit', 1, maxLimit) ?? defaultLimit
  const marker = input.string('Marker', false, 1024)
  const start = marker === undefined ? 0 : Number(marker)
  if (!Number.isSafeInteger(start) || start < 0) throw new KmsServiceError('InvalidMarkerException', 'The Marker is not one this emulator returned.')
  const truncated = start + limit < items.length
  return { page: items.slice(start, start + limit), Truncated: truncated, ...(truncated ? { NextMarker: String(start + limit) } : {}) }
}

const DEFAULT_KEY_POLICY = (store: KmsStore): string =>
  JSON.stringify({
    Version: '2012-10-17',
    Id: 'key-default-1',
    Statement: [
      {
        Sid: 'Enable IAM User Permissions',
        Effect: 'Allow',
        Principal: { AWS: `arn:${store.partition}:iam::${store.accountId}:root` },
        Action: 'kms:*',
        Resource: '*',
      },
    ],
  })

export const OPERATIONS: Readonly<Record<string, Handler>> = {
  async CreateKey(context, input) {
    const keySpec = input.string('KeySpec') ?? input.string('CustomerMasterKeySpec') ?? 'SYMMETRIC_DEFAULT'
    const keyUsage = input.choice('KeyUsage', KEY_USAGES)
    const origin = input.string('Origin')
    const description = input.string('Description', false, 8192) ?? ''
    const multiRegion = input.boolean('MultiRegion') ?? false
    if (!KEY_SPECS.includes(keySpec as EmulatedKeySpec)) throw unsupported(`The KMS emulator creates only ${KEY_SPECS.join(', ')} keys, not ${keySpec}.`)
    if (keySpec !== 'SYMMETRIC_DEFAULT' && keyUsage === undefined) throw validation(`KeyUsage is required for a ${keySpec} key.`)
    if (keyUsage !== undefined && keyUsage !== 'ENCRYPT_DECRYPT') throw unsupported(`The KMS emulator supports KeyUsage ENCRYPT_DECRYPT only, not ${keyUsage}.`)
    if (origin !== undefined && origin !== 'AWS_KMS') throw unsupported(`The KMS emulator supports Origin AWS_KMS only, not ${origin}.`)
    const material = await generateMaterialAsync(keySpec as EmulatedKeySpec)
    const key = context.store.addKey({ region: context.region, keySpec: keySpec as EmulatedKeySpec, multiRegion, description }, material)
    context.keyArn = key.arn
    context.mutated = true
    return { KeyMetadata: keyMetadata(context.store, key) }
  },

  ReplicateKey(context, input) {
    const primary = useKey(context, input.string('KeyId', true), false)
    const replicaRegion = input.string('ReplicaRegion', true, 32)
    const description = input.string('Description', false, 8192)
    assertNotPendingDeletion(primary)
    const replica = context.store.addReplica(primary, replicaRegion, description)
    context.mutated = true
    return { ReplicaKeyMetadata: keyMetadata(context.store, replica), ReplicaPolicy: DEFAULT_KEY_POLICY(context.store), ReplicaTags: [] }
  },

  DescribeKey(context, input) {
    input.grantTokens()
    const key = useKey(context, input.string('KeyId', true), false)
    return { KeyMetadata: keyMetadata(context.store, key) }
  },

  EnableKey(context, input) {
    const key = useKey(context, input.string('KeyId', true), false)
    assertNotPendingDeletion(key)
    key.state = 'Enabled'
    context.mutated = true
    return {}
  },

  DisableKey(context, input) {
    const key = useKey(context, input.string('KeyId', true), false)
    assertNotPendingDeletion(key)
    key.state = 'Disabled'
    context.mutated = true
    return {}
  },

  ScheduleKeyDeletion(context, input) {
    const key = useKey(context, input.string('KeyId', true), false)
    const days = input.integer('PendingWindowInDays', 7, 30) ?? 30
    assertNotPendingDeletion(key)
    key.state = 'PendingDeletion'
    key.deletionDate = nowInSeconds() + days * DAY_IN_SECONDS
    key.pendingWindowInDays = days
    context.mutated = true
    return { KeyId: key.arn, DeletionDate: key.deletionDate, KeyState: key.state, PendingWindowInDays: days }
  },

  CreateAlias(context, input) {
    const aliasName = input.string('AliasName', true, 256)
    context.store.addAlias(context.region, aliasName, aliasTarget(context, input))
    context.mutated = true
    return {}
  },

  UpdateAlias(context, input) {
    const alias = context.store.alias(context.region, input.string('AliasName', true, 256))
    context.store.retargetAlias(alias, aliasTarget(context, input))
    context.mutated = true
    return {}
  },

  DeleteAlias(context, input) {
    context.store.deleteAlias(context.store.alias(context.region, input.string('AliasName', true, 256)))
    context.mutated = true
    return {}
  },

  ListAliases(context, input) {
    const keyIdentifier = input.string('KeyId')
    const keyId = keyIdentifier === undefined ? undefined : useKey(context, keyIdentifier, false).keyId
    const aliases = context.store
      .aliasesIn(context.region)
      .filter((alias) => keyId === undefined || alias.targetKeyId === keyId)
      .sort((a, b) => (a.aliasName < b.aliasName ? -1 : 1))
    const { page, ...paging } = pageOf(aliases, input, 100, 50)
    return {
      Aliases: page.map((alias) => ({
        AliasName: alias.aliasName,
        AliasArn: context.store.aliasArn(alias.region, alias.aliasName),
        TargetKeyId: alias.targetKeyId,
        CreationDate: alias.creationDate,
        LastUpdatedDate: alias.lastUpdatedDate ?? alias.creationDate,
      })),
      ...paging,
    }
  },

  ListKeys(context, input) {
    const { page, ...paging } = pageOf(context.store.keysIn(context.region), input, 1000, 100)
    return { Keys: page.map((key) => ({ KeyId: key.keyId, KeyArn: key.arn })), ...paging }
  },

  CancelKeyDeletion(context, input) {
    const key = useKey(context, input.string('KeyId', true), false)
    if (key.state !== 'PendingDeletion') throw invalidState(`${key.arn} is not pending deletion.`)
    // As in KMS, a key whose deletion is cancelled comes back disabled.
    key.state = 'Disabled'
    key.deletionDate = undefined
    key.pendingWindowInDays = undefined
    context.mutated = true
    return { KeyId: key.arn }
  },

  GenerateRandom(_context, input) {
    const length = input.integer('NumberOfBytes', 1, 1024)
    if (length === undefined) throw validation('NumberOfBytes is required: the emulator makes 1 to 1024 random bytes.')
    if (input.string('CustomKeyStoreId') !== undefined) throw unsupported('The KMS emulator has no custom key stores.')
    rejectUnsupported(input)
    return { Plaintext: randomBytes(length).toString('base64') }
  },

  GenerateDataKey(context, input) {
    const { key, plaintext, blob } = generateDataKey(context, input)
    return { CiphertextBlob: blob.toString('base64'), Plaintext: releaseBase64(plaintext), KeyId: key.arn, ...materialIdOf(key) }
  },

  GenerateDataKeyWithoutPlaintext(context, input) {
    const { key, plaintext, blob } = generateDataKey(context, input)
    plaintext.fill(0)
    return { CiphertextBlob: blob.toString('base64'), KeyId: key.arn, ...materialIdOf(key) }
  },

  Encrypt(context, input) {
    const keyIdentifier = input.string('KeyId', true)
    const plaintext = input.blob('Plaintext', true, MAX_PLAINTEXT)
    const encryptionContext = input.context('EncryptionContext')
    const requested = input.choice('EncryptionAlgorithm', ENCRYPTION_ALGORITHMS) ?? 'SYMMETRIC_DEFAULT'
    rejectUnsupported(input)
    const key = useKey(context, keyIdentifier)
    const algorithm = checkAlgorithm(key, requested)
    const blob = encryptUnder(context, key, algorithm, plaintext, encryptionContext)
    plaintext.fill(0)
    checkDryRun(input)
    return { CiphertextBlob: blob.toString('base64'), KeyId: key.arn, EncryptionAlgorithm: algorithm }
  },

  Decrypt(context, input) {
    const blob = input.blob('CiphertextBlob', true, MAX_CIPHERTEXT)
    const encryptionContext = input.context('EncryptionContext')
    const keyIdentifier = input.string('KeyId')
    const algorithm = input.choice('EncryptionAlgorithm', ENCRYPTION_ALGORITHMS)
    rejectUnsupported(input)
    const decrypted = decryptBlob(context, blob, keyIdentifier, algorithm, encryptionContext)
    if (input.boolean('DryRun') === true) decrypted.plaintext.fill(0)
    checkDryRun(input)
    return {
      KeyId: decrypted.key.arn,
      Plaintext: releaseBase64(decrypted.plaintext),
      EncryptionAlgorithm: decrypted.algorithm,
      ...materialIdOf(decrypted.key),
    }
  },

  ReEncrypt(context, input) {
    const blob = input.blob('CiphertextBlob', true, MAX_CIPHERTEXT)
    const sourceContext = input.context('SourceEncryptionContext')
    const sourceKeyIdentifier = input.string('SourceKeyId')
    const destinationKeyIdentifier = input.string('DestinationKeyId', true)
    const destinationContext = input.context('DestinationEncryptionContext')
    const sourceAlgorithm = input.choice('SourceEncryptionAlgorithm', ENCRYPTION_ALGORITHMS)
    const destinationRequested = input.choice('DestinationEncryptionAlgorithm', ENCRYPTION_ALGORITHMS) ?? 'SYMMETRIC_DEFAULT'
    input.grantTokens()
    const source = decryptBlob(context, blob, sourceKeyIdentifier, sourceAlgorithm, sourceContext)
    try {
      const destination = useKey(context, destinationKeyIdentifier)
      const destinationAlgorithm = checkAlgorithm(destination, destinationRequested)
      const reencrypted = encryptUnder(context, destination, destinationAlgorithm, source.plaintext, destinationContext)
      checkDryRun(input)
      const sourceMaterial = source.key.keySpec === 'SYMMETRIC_DEFAULT' ? { SourceKeyMaterialId: source.key.materialId } : {}
      const destinationMaterial = destination.keySpec === 'SYMMETRIC_DEFAULT' ? { DestinationKeyMaterialId: destination.materialId } : {}
      return {
        CiphertextBlob: reencrypted.toString('base64'),
        SourceKeyId: source.key.arn,
        KeyId: destination.arn,
        SourceEncryptionAlgorithm: source.algorithm,
        DestinationEncryptionAlgorithm: destinationAlgorithm,
        ...sourceMaterial,
        ...destinationMaterial,
      }
    } finally {
      source.plaintext.fill(0)
    }
  },

  GetPublicKey(context, input) {
    input.grantTokens()
    const key = useKey(context, input.string('KeyId', true))
    const material = context.store.materialOf(key)
    if (material.kind !== 'rsa') throw unsupported(`${key.arn} is a symmetric key; GetPublicKey works on asymmetric keys only.`)
    return {
      KeyId: key.arn,
      PublicKey: publicKeyDer(material).toString('base64'),
      CustomerMasterKeySpec: key.keySpec,
      KeySpec: key.keySpec,
      KeyUsage: 'ENCRYPT_DECRYPT',
      EncryptionAlgorithms: algorithmsOf(key.keySpec),
    }
  },
}
