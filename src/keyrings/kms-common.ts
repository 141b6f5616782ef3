// What every AWS KMS keyring does the same way: validate options, call KMS, check its answers,
// and collect the failures of a decrypt. The keyrings differ only in which data keys they try and
// which KeyId and client they use for each.
import { anyOfThe } from '../byte-count.js'
import type { CryptoBackend } from '../backend/types.js'
import { ignoreRejection, isThenable } from '../ignore-rejection.js'
import { ConfigurationError, KeyringError, MalformedMessageError, NoDecryptableKeyError, type KeyringFailure } from '../errors.js'
import { namedErrorMessage, sentence } from '../error-text.js'
import { stopIfAborted } from '../abort.js'
import { fromUtf8, utf8 } from '../format/bytes.js'
import type { DecryptionMaterials, EncryptedDataKey, EncryptionMaterials } from '../types.js'
import { assertKmsIdentifier, isKmsArn, parseKmsArn, type KmsArn } from './kms-arn.js'
import { optionsObject, type ExactList } from '../option-names.js'
import { quoteIdentifier } from '../quote.js'
import { sharedDefaultKmsClientSupplier, type KmsClientLike, type KmsClientSupplier } from './kms-client.js'
import { sendDecrypt, sendEncrypt, sendGenerateDataKey } from './kms-commands.js'
import { wrapDataKey } from './common.js'
import { addIntermediateRecipient, openIntermediate, wrappedIntermediateKey } from './intermediate.js'
import { isBytes } from '../is-bytes.js'

/** Provider ID of every data key a KMS keyring wraps (spec: framework/aws-kms/aws-kms-keyring.md#onencrypt). */
export const KMS_PROVIDER_ID = 'aws-kms'

/** Which keys a discovery keyring may use: those of these accounts in this partition. */
export interface DiscoveryFilter {
  /** e.g. `aws`, `aws-cn`, `aws-us-gov`. */
  readonly partition: string
  /** Account IDs whose keys may decrypt. */
  readonly accountIds: readonly string[]
}

export function validateDiscoveryFilter(keyring: string, filter: unknown): DiscoveryFilter | undefined {
  if (filter === undefined) return undefined
  if (typeof filter !== 'object' || filter === null) {
    throw new ConfigurationError(`${keyring} discoveryFilter must be an object { partition, accountIds }; got ${filter === null ? 'null' : typeof filter}.`)
  }
  const { partition, accountIds } = optionsObject(filter as Partial<DiscoveryFilter> | null, `${keyring} discoveryFilter`, 'partition, accountIds')
  if (typeof partition !== 'string' || partition === '') {
    throw new ConfigurationError(`${keyring} discoveryFilter.partition must be a non-empty string such as "aws".`)
  }
  if (!Array.isArray(accountIds) || accountIds.length === 0 || !accountIds.every((id) => typeof id === 'string' && id !== '')) {
    throw new ConfigurationError(`${keyring} discoveryFilter.accountIds must be a non-empty array of account IDs.`)
  }
  // Every AWS account ID is 12 digits: any other (a typo) could match no key, and every decrypt would fail.
  const malformed = accountIds.find((id: string) => !/^\d{12}$/.test(id))
  if (malformed !== undefined) {
    throw new ConfigurationError(`${keyring} discoveryFilter.accountIds holds ${quoteIdentifier(malformed)}, which is no AWS account ID (12 digits).`)
  }
  return Object.freeze({ partition, accountIds: Object.freeze([...accountIds]) })
}

// spec: framework/aws-kms/aws-kms-discovery-keyring.md#ondecrypt (partition and account of the provider info)
export function passesDiscoveryFilter(filter: DiscoveryFilter | undefined, arn: KmsArn): boolean {
  return filter === undefined || (filter.partition === arn.partition && filter.accountIds.includes(arn.accountId))
}

/**
 * A KMS keyring's options, checked as `optionsObject` does. A `kmsClient` option (what KmsRsaKeyring takes)
 * gets its own message: ignored, the keyring would call KMS through the default credentials instead of the
 * client the caller meant.
 */
export function kmsKeyringOptions<T extends object, S extends string>(keyring: string, options: T | null | undefined, names: S & ExactList<S, T>): T {
  if ((options as { readonly kmsClient?: unknown } | null | undefined)?.kmsClient !== undefined) {
    throw new ConfigurationError(`${keyring} takes a clientSupplier, not a kmsClient: pass clientSupplier: () => kmsClient to use one client.`)
  }
  return optionsObject<T, S>(options, keyring, names)
}

/** The keyring's `clientSupplier` option, or the shared default supplier. */
export function validateClientSupplier(keyring: string, options: { readonly clientSupplier?: unknown }): KmsClientSupplier {
  const supplier = options.clientSupplier
  if (supplier === undefined) return sharedDefaultKmsClientSupplier()
  if (typeof supplier !== 'function') {
    throw new ConfigurationError(`${keyring} clientSupplier must be a function from a Region name to a KMS client.`)
  }
  return supplier as KmsClientSupplier
}

/**
 * The supplier's client for `region`: a Region name, or '' for the AWS SDK's default Region, which a key
 * identifier without a Region (`identifier`, an alias name or key id) is called in.
 */
export function clientFor(keyring: string, supplier: KmsClientSupplier, region: string, identifier?: string): KmsClientLike {
  const where = region === '' ? `the default Region (asked for ${identifier ?? 'an identifier'}, which names no Region)` : `Region ${region}`
  let client: unknown
  try {
    client = supplier(region)
  } catch (error) {
    throw new ConfigurationError(`${keyring} clientSupplier failed for ${where}: ${sentence(namedErrorMessage(error))}`, { cause: error })
  }
  if (typeof (client as KmsClientLike | undefined)?.send !== 'function') {
    if (isThenable(client)) {
      ignoreRejection(client)
      throw new ConfigurationError(
        `${keyring} clientSupplier returned a Promise for ${where}: it must return the client itself, synchronously ` +
          '(make clients up front; defaultKmsClientSupplier() loads the AWS SDK only when a client is first used).',
      )
    }
    throw new ConfigurationError(`${keyring} clientSupplier returned no KMS client (an object with send) for ${where}.`)
  }
  return client as KmsClientLike
}

/**
 * The Region whose client a configured key identifier is called through: an ARN's own, or '' (the AWS SDK's
 * default Region) for an alias name or key id, as KMS itself reads them.
 * spec: framework/aws-kms/aws-kms-multi-keyrings.md#aws-kms-multi-keyring ("or a signal for the AWS SDK to select the default region")
 */
export function configuredRegion(keyring: string, identifier: unknown, what: string): string {
  assertKmsIdentifier(identifier, `${keyring} ${what}`)
  const region = identifier.startsWith('arn:') ? parseKmsArn(identifier).region : ''
  if (region !== '' && !isRegionName(region)) {
    throw new ConfigurationError(`${keyring} ${what} ${quoteIdentifier(identifier)} names Region ${quoteIdentifier(region)}, which is no Region name (lowercase letters, digits and hyphens).`)
  }
  return region
}

/** An AWS Region name (`us-east-1`, `us-isob-east-1`): one hostname label, as the SDK puts it in the endpoint's host. */
export function isRegionName(region: unknown): region is string {
  if (typeof region !== 'string') return false
  return /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(region)
}

/**
 * A keyring configured with no key ARN can never match a data key (messages record key ARNs): say so instead
 * of "not my key".
 */
export function refuseWithoutKeyArn(keyring: string, identifiers: readonly string[]): void {
  if (identifiers.some((identifier) => isKmsArn(identifier) && parseKmsArn(identifier).resourceType === 'key')) return
  throw new ConfigurationError(
    `${keyring} cannot decrypt with ${identifiers.join(', ')}: messages record the key ARN, so decrypting needs key ARNs. ` +
      'Configure the ARN of the key that the alias or key id stands for.',
  )
}

/** An `aws-kms` data key of the message with the key ARN it was wrapped under. */
export interface RecordedKey {
  readonly edk: EncryptedDataKey
  readonly arn: string
  readonly parsed: KmsArn
}

/**
 * The message's `aws-kms` data keys. One whose provider info is not a key ARN fails the whole decrypt.
 * spec: framework/aws-kms/aws-kms-keyring.md#ondecrypt ("or OnDecrypt MUST fail")
 */
export function recordedKmsKeys(encryptedDataKeys: readonly EncryptedDataKey[]): RecordedKey[] {
  const recorded: RecordedKey[] = []
  encryptedDataKeys.forEach((edk, index) => {
    if (edk.providerId !== KMS_PROVIDER_ID) return
    const arn = fromUtf8(edk.providerInfo, `encrypted data key #${index + 1} provider info`)
    const parsed = isKmsArn(arn) ? parseKmsArn(arn) : undefined
    if (parsed?.resourceType !== 'key') {
      throw new MalformedMessageError(
        `Encrypted data key #${index + 1} is an "${KMS_PROVIDER_ID}" key, but its provider info ${quoteIdentifier(arn)} is not a KMS key ARN.`,
      )
    }
    // A discovery keyring calls KMS in the Region the message names: with an AWS SDK that does not check Region names
    // (those of mid-2024 did not), "x@evil.example#" would send the signed request, credentials' token included, there.
    if (!isRegionName(parsed.region)) {
      throw new MalformedMessageError(
        `Encrypted data key #${index + 1} is an "${KMS_PROVIDER_ID}" key whose ARN names Region ${quoteIdentifier(parsed.region)}, which is no Region name (lowercase letters, digits and hyphens).`,
      )
    }
    recorded.push({ edk, arn, parsed })
  })
  return recorded
}

/** Call GenerateDataKey and add the data key and its wrapped copy to the materials. */
export async function generateDataKey(
  keyring: string,
  client: KmsClientLike,
  keyId: string,
  materials: EncryptionMaterials,
  grantTokens: readonly string[],
  backend: CryptoBackend,
  signal: AbortSignal | undefined,
): Promise<EncryptionMaterials> {
  if (materials.suite.edkWrapping === 'intermediate') {
    return wrapDataKey(materials, backend, (withKey) => addKmsIntermediateRecipient(keyring, client, keyId, withKey, grantTokens, backend, signal))
  }
  const { plaintext, edk } = await kmsGenerate(keyring, client, keyId, materials, grantTokens, signal)
  return Object.assign({}, materials, { plaintextDataKey: plaintext, encryptedDataKeys: [...materials.encryptedDataKeys, edk] })
}

/** GenerateDataKey: a fresh key of the suite's length and its KMS ciphertext. */
async function kmsGenerate(
  keyring: string,
  client: KmsClientLike,
  keyId: string,
  materials: EncryptionMaterials,
  grantTokens: readonly string[],
  signal: AbortSignal | undefined,
): Promise<{ plaintext: Uint8Array; edk: EncryptedDataKey }> {
  const { suite, encryptionContext } = materials
  let response: unknown
  try {
    // spec: framework/aws-kms/aws-kms-keyring.md#onencrypt (GenerateDataKey request)
    response = await sendGenerateDataKey(client, {
      KeyId: keyId,
      NumberOfBytes: suite.keyLength,
      EncryptionContext: encryptionContext,
      GrantTokens: [...grantTokens],
    }, signal)
  } catch (error) {
    throw new KeyringError(`${keyring} could not generate a data key with ${keyId}: ${sentence(namedErrorMessage(error))}`, { cause: error })
  }
  const { KeyId, Plaintext, CiphertextBlob } = (response ?? {}) as Record<string, unknown>
  if (!isBytes(Plaintext) || Plaintext.length !== suite.keyLength) {
    if (isBytes(Plaintext)) Plaintext.fill(0)
    throw new KeyringError(
      `KMS GenerateDataKey with ${keyId} returned ${isBytes(Plaintext) ? `a ${Plaintext.length}-byte` : 'no'} data key; the suite needs ${suite.keyLength} bytes.`,
    )
  }
  try {
    return { plaintext: Plaintext, edk: wrappedKey('GenerateDataKey', keyId, KeyId, CiphertextBlob) }
  } catch (error) {
    Plaintext.fill(0)
    throw error
  }
}

/**
 * The DynamoDB item suites: KMS generates the recipient's intermediate key (GenerateDataKey, for the generator
 * and every other key alike, as the material providers library does), which wraps the data key.
 * spec: framework/algorithm-suites.md#intermediate-key-wrapping
 */
function addKmsIntermediateRecipient(
  keyring: string,
  client: KmsClientLike,
  keyId: string,
  materials: EncryptionMaterials,
  grantTokens: readonly string[],
  backend: CryptoBackend,
  signal: AbortSignal | undefined,
): Promise<EncryptionMaterials> {
  return addIntermediateRecipient(materials, backend, async () => {
    const { plaintext, edk } = await kmsGenerate(keyring, client, keyId, materials, grantTokens, signal)
    return { intermediateKey: plaintext, encryptedDataKey: edk }
  })
}

/** Call Encrypt on the materials' data key and add the wrapped copy. */
export async function encryptDataKey(
  keyring: string,
  client: KmsClientLike,
  keyId: string,
  materials: EncryptionMaterials,
  grantTokens: readonly string[],
  backend: CryptoBackend,
  signal: AbortSignal | undefined,
): Promise<EncryptionMaterials> {
  if (materials.suite.edkWrapping === 'intermediate') return addKmsIntermediateRecipient(keyring, client, keyId, materials, grantTokens, backend, signal)
  const plaintextDataKey = materials.plaintextDataKey
  if (plaintextDataKey === undefined) throw new KeyringError(`${keyring} has no data key to encrypt with ${keyId}.`)
  let response: unknown
  try {
    // spec: framework/aws-kms/aws-kms-keyring.md#onencrypt (Encrypt request)
    response = await sendEncrypt(client, {
      KeyId: keyId,
      Plaintext: plaintextDataKey,
      EncryptionContext: materials.encryptionContext,
      GrantTokens: [...grantTokens],
    }, signal)
  } catch (error) {
    throw new KeyringError(`${keyring} could not encrypt the data key with ${keyId}: ${sentence(namedErrorMessage(error))}`, { cause: error })
  }
  const { KeyId, CiphertextBlob } = (response ?? {}) as Record<string, unknown>
  const edk = wrappedKey('Encrypt', keyId, KeyId, CiphertextBlob)
  return { ...materials, encryptedDataKeys: [...materials.encryptedDataKeys, edk] }
}

/** The encrypted data key from a GenerateDataKey or Encrypt response, whose KeyId must be a key ARN. */
function wrappedKey(operation: string, requested: string, keyId: unknown, ciphertext: unknown): EncryptedDataKey {
  if (typeof keyId !== 'string' || !isKmsArn(keyId) || parseKmsArn(keyId).resourceType !== 'key') {
    throw new KeyringError(`KMS ${operation} with ${requested} answered with KeyId ${quoteIdentifier(keyId)}, which is not a KMS key ARN.`)
  }
  if (!isBytes(ciphertext) || ciphertext.length === 0) {
    throw new KeyringError(`KMS ${operation} with ${requested} returned no CiphertextBlob.`)
  }
  return { providerId: KMS_PROVIDER_ID, providerInfo: utf8(keyId), ciphertext }
}

/** One data key to try: the KeyId to send (and expect back) and the client of the Region to call. */
export interface DecryptAttempt {
  readonly recorded: RecordedKey
  readonly keyId: string
  readonly client: () => KmsClientLike
}

/**
 * Try each data key in order and return on the first that decrypts. Every failure is kept; when all
 * fail, the error names each key tried and why.
 * spec: framework/aws-kms/aws-kms-keyring.md#ondecrypt
 */
export async function decryptFirst(
  keyring: string,
  materials: DecryptionMaterials,
  attempts: readonly DecryptAttempt[],
  grantTokens: readonly string[],
  backend: CryptoBackend,
  signal: AbortSignal | undefined,
): Promise<DecryptionMaterials> {
  const failures: KeyringFailure[] = []
  const reasons: string[] = []
  const fail = (attempt: DecryptAttempt, error: unknown, kind: string): void => {
    failures.push({ keyring, error })
    reasons.push(`${describeAttempt(attempt)} (${kind})`)
  }
  for (const attempt of attempts) {
    const ciphertext = kmsCiphertext(materials, attempt.recorded.edk)
    if (ciphertext === undefined) {
      fail(attempt, new KeyringError('The encrypted data key is too short to hold a wrapped intermediate key.'), 'data key too short')
      continue
    }
    let opened: DecryptionMaterials | undefined
    try {
      const key = await decryptOne(materials, attempt, ciphertext, grantTokens, signal)
      if (materials.suite.edkWrapping === 'direct') return Object.assign({}, materials, { plaintextDataKey: key })
      opened = await openIntermediate(materials, attempt.recorded.edk, key, backend)
    } catch (error) {
      // Aborted: the request was cancelled, and no other key is tried.
      stopIfAborted(signal)
      fail(attempt, error, failureKind(error))
      continue
    }
    if (opened !== undefined) return opened
    // KMS checked the context, so the wrapped data key beside its ciphertext is what changed (or was written wrong).
    const error = new KeyringError(`The data key wrapped under ${describeAttempt(attempt)} does not open with its intermediate key: it was changed.`)
    fail(attempt, error, 'wrapped data key changed')
  }
  throw new NoDecryptableKeyError(
    `${keyring} could not decrypt ${anyOfThe(attempts.length, 'encrypted data key')} it may use: ${reasons.join('; ')}.`,
    failures,
  )
}

/**
 * What kind of failure an attempt's error is, in a word or two: the type of the SDK error it wraps
 * (DisabledException, TimeoutError, …), the code of a system error (ECONNREFUSED, …), else a KMS answer refused.
 */
function failureKind(error: unknown): string {
  const cause = error instanceof Error ? error.cause : undefined
  if (!(cause instanceof Error)) return 'invalid response'
  const code = (cause as Error & { code?: unknown }).code
  return cause.name === 'Error' && typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,40}$/.test(code) ? code : cause.name
}

/**
 * The KMS ciphertext of an encrypted data key: all of it, or under intermediate wrapping the part after the
 * wrapped data key (undefined when the key is too short to hold one).
 */
function kmsCiphertext(materials: DecryptionMaterials, edk: EncryptedDataKey): Uint8Array | undefined {
  return materials.suite.edkWrapping === 'direct' ? edk.ciphertext : wrappedIntermediateKey(edk, materials.suite.keyLength)
}

async function decryptOne(
  materials: DecryptionMaterials,
  attempt: DecryptAttempt,
  ciphertext: Uint8Array,
  grantTokens: readonly string[],
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  const { keyId } = attempt
  let response: unknown
  try {
    // spec: framework/aws-kms/aws-kms-keyring.md#ondecrypt (Decrypt request)
    response = await sendDecrypt(attempt.client(), {
      KeyId: keyId,
      CiphertextBlob: ciphertext,
      EncryptionContext: materials.encryptionContext,
      GrantTokens: [...grantTokens],
    }, signal)
  } catch (error) {
    throw new KeyringError(`KMS Decrypt of the data key under ${describeAttempt(attempt)} failed: ${sentence(namedErrorMessage(error))}`, {
      cause: error,
    })
  }
  const { KeyId, Plaintext } = (response ?? {}) as Record<string, unknown>
  const keyLength = materials.suite.keyLength
  // spec: the response KeyId MUST equal the requested one and the plaintext MUST have the suite's length
  if (KeyId !== keyId || !isBytes(Plaintext) || Plaintext.length !== keyLength) {
    if (isBytes(Plaintext)) Plaintext.fill(0)
    const problem =
      KeyId !== keyId
        ? `answered for KeyId ${quoteIdentifier(KeyId)}, not the requested ${keyId}`
        : `returned ${isBytes(Plaintext) ? `a ${Plaintext.length}-byte` : 'no'} data key; the suite needs ${keyLength} bytes`
    throw new KeyringError(`KMS Decrypt of the data key under ${describeAttempt(attempt)} ${problem}.`)
  }
  return Plaintext
}

function describeAttempt({ keyId, recorded }: DecryptAttempt): string {
  return keyId === recorded.arn ? keyId : `${recorded.arn} (called as ${keyId})`
}

