import { abortSignalOption, stopIfAborted } from './abort.js'
import { isAsyncAead, isPromise, type CryptoBackend, type Verifier } from './backend/types.js'
import { checkDecryptionMaterials, managerFailure } from './cmm/materials-check.js'
import { deriveKeys } from './derive.js'
import { positiveIntegerOption } from './encrypt.js'
import {
  CommitmentMismatchError,
  ConfigurationError,
  EncryptionContextMismatchError,
  HeaderAuthenticationError,
  InvalidEncryptionContextError,
  NoDecryptableKeyError,
  SignatureVerificationError,
} from './errors.js'
import { EMPTY, LONE_SURROGATE_PROBLEM, concatBytes, loneSurrogateAt } from './format/bytes.js'
import { RESERVED_PREFIX, checkRequiredKeys, emptyContext, isEmptyContext, objectKind, serializeContext, splitContext } from './format/context.js'
import type { ParsedHeader } from './format/header.js'
import { FrameOpener } from './frame-opener.js'
import { quoteIdentifier } from './quote.js'
import { quoteList } from './quote-list.js'
import { commitmentPolicyFromOption } from './suites.js'
import { assertDecryptAllowed } from './suites-decrypt.js'
import type { CommitmentPolicy, CompleteDecryptionMaterials, DecryptOptions, EncryptionContext, MaterialsManager } from './types.js'

// Decrypting a message's header, shared by the one-shot and streaming decrypts: the caller's options and
// reproduced encryption context, the data key from the materials manager, the key commitment and the header tag.

const hasOwn = (object: object, key: string): boolean => Object.prototype.hasOwnProperty.call(object, key)

/** The caller's reproduced encryption context as a frozen null-prototype copy, after checking its shape. */
function reproducedContextOption(expected: unknown): EncryptionContext | undefined {
  if (expected === undefined) return undefined
  const kind = objectKind(expected)
  if (kind !== 'Object') throw new ConfigurationError(`decrypt encryptionContext must be a plain object of string pairs; got ${kind}.`)
  const copy = emptyContext()
  for (const [key, value] of Object.entries(expected as Record<string, unknown>)) {
    if (typeof value !== 'string') throw new ConfigurationError(`decrypt encryptionContext value for ${quoteIdentifier(key)} must be a string.`)
    if (key === '') throw new InvalidEncryptionContextError('decrypt encryptionContext keys must not be empty.')
    // No message can store such a pair, so it could never match.
    const inKey = loneSurrogateAt(key) >= 0
    if (inKey || loneSurrogateAt(value) >= 0) {
      throw new InvalidEncryptionContextError(`decrypt encryptionContext ${inKey ? 'key' : 'value for key'} ${quoteIdentifier(key)} ${LONE_SURROGATE_PROBLEM}.`)
    }
    copy[key] = value
  }
  return Object.freeze(copy)
}

/**
 * Compare the caller's pairs with the stored context before any keyring runs. A stored key must have the
 * same value; a key the message does not store is left for the materials manager to append and for the
 * header tag to authenticate (spec: framework/cmm-interface.md#decrypt-materials), except reserved keys,
 * which a message always stores.
 */
function checkReproducedContext(stored: EncryptionContext, expected: EncryptionContext | undefined): void {
  if (expected === undefined) return
  for (const [key, value] of Object.entries(expected as Record<string, unknown>)) {
    if (hasOwn(stored, key)) {
      if (stored[key] !== value) {
        throw new EncryptionContextMismatchError(`The message's encryption context has a different value for ${quoteIdentifier(key)} than the caller requires.`)
      }
    } else if (key.startsWith(RESERVED_PREFIX)) {
      throw new EncryptionContextMismatchError(
        `The message's encryption context has no key ${quoteIdentifier(key)}, which the caller requires (reserved keys are always stored).`,
      )
    }
  }
}

/** Keys of the caller's context that the message does not store. */
function unstoredKeys(stored: EncryptionContext, expected: EncryptionContext | undefined): string[] {
  return expected === undefined ? [] : Object.keys(expected).filter((key) => !hasOwn(stored, key))
}


/**
 * The pairs the header tag must authenticate besides the stored ones: the materials' context under its
 * required encryption context keys. Every pair the caller gave that the message does not store must be
 * among them, unchanged, or it would go unauthenticated. spec: client-apis/decrypt.md#verify-the-header
 */
function authenticatedOnlyContext(
  stored: EncryptionContext,
  materials: CompleteDecryptionMaterials,
  expected: EncryptionContext | undefined,
): EncryptionContext {
  const requiredKeys = checkRequiredKeys(materials.requiredEncryptionContextKeys, materials.encryptionContext, 'The materials manager')
  for (const key of requiredKeys) {
    if (hasOwn(stored, key) && stored[key] !== materials.encryptionContext[key]) {
      throw new EncryptionContextMismatchError(`The materials manager's value for required key ${quoteIdentifier(key)} differs from the value the message stores.`)
    }
  }
  const { authenticatedOnly } = splitContext(materials.encryptionContext, requiredKeys)
  for (const key of unstoredKeys(stored, expected)) {
    if (authenticatedOnly[key] !== (expected as EncryptionContext)[key]) {
      throw new EncryptionContextMismatchError(
        `The materials manager did not pass the caller's pair ${quoteIdentifier(key)} on to be authenticated; the message does not store it.`,
      )
    }
  }
  return authenticatedOnly
}

/** Decrypt options, validated once. */
export interface DecryptionSettings {
  readonly commitmentPolicy: CommitmentPolicy
  readonly maxEncryptedDataKeys: number | undefined
  readonly maxBodySize: number | undefined
  readonly expectedContext: EncryptionContext | undefined
  readonly signal: AbortSignal | undefined
}

/** The options `decrypt` takes (`DecryptOptions`). */
export const DECRYPT_OPTIONS = 'encryptionContext, commitmentPolicy, maxEncryptedDataKeys, maxBodySize, signal'

/** `options` is an object whose option names were checked (`optionsObject`). */
export function decryptionSettings(options: DecryptOptions): DecryptionSettings {
  return {
    commitmentPolicy: commitmentPolicyFromOption(options.commitmentPolicy),
    maxEncryptedDataKeys: positiveIntegerOption('maxEncryptedDataKeys', options.maxEncryptedDataKeys, 0xffff),
    maxBodySize: positiveIntegerOption('maxBodySize', options.maxBodySize, Number.MAX_SAFE_INTEGER),
    expectedContext: reproducedContextOption(options.encryptionContext),
    signal: abortSignalOption(options.signal),
  }
}

/** Checks that need only the parsed header: run them before any keyring. */
export function checkHeader(parsed: ParsedHeader, settings: DecryptionSettings): void {
  assertDecryptAllowed(parsed.suite, settings.commitmentPolicy)
  checkReproducedContext(parsed.header.encryptionContext, settings.expectedContext)
}

/** An authenticated header: what decrypting the body needs. */
export interface OpenedHeader {
  readonly opener: FrameOpener
  /** The message's ECDSA public key; undefined for unsigned suites. */
  readonly verificationKey: unknown
  /** Already fed the header bytes; undefined for unsigned suites and when no header bytes were given. */
  readonly verifier: Verifier | undefined
  /** The stored context plus the authenticated pairs the message does not store (frozen). */
  readonly encryptionContext: EncryptionContext
}

/**
 * Get the data key from the materials manager, check the key commitment and the header tag.
 * The plaintext data key is zeroed before this returns. spec: client-apis/decrypt.md#verify-the-header
 * Given `headerBytes`, a signed message also gets an incremental verifier already fed them.
 */
export async function openHeader(
  backend: CryptoBackend,
  cmm: MaterialsManager,
  parsed: ParsedHeader,
  headerBytes: Uint8Array | undefined,
  settings: DecryptionSettings,
): Promise<OpenedHeader> {
  const { header, suite } = parsed
  const stored = header.encryptionContext
  const expected = settings.expectedContext
  let materials: CompleteDecryptionMaterials
  try {
    materials = await cmm.getDecryptionMaterials(
      {
        suite,
        encryptionContext: stored,
        encryptedDataKeys: header.encryptedDataKeys,
        commitmentPolicy: settings.commitmentPolicy,
        signal: settings.signal,
        ...(expected === undefined ? {} : { reproducedEncryptionContext: expected }),
      },
      backend,
    )
  } catch (thrown) {
    const error = managerFailure(thrown)
    const unstored = unstoredKeys(stored, expected)
    if (!(error instanceof NoDecryptableKeyError) || unstored.length === 0) throw error
    throw new NoDecryptableKeyError(
      `${error.message} The keyrings were also given encryption context the message does not store (${quoteList(unstored)}): ` +
        'a keyring that binds the context (AWS KMS, raw AES) cannot unwrap the data key when one of those values differs from ' +
        'the one used to encrypt, so these pairs did not authenticate.',
      error.failures,
    )
  }
  checkDecryptionMaterials(materials, suite, backend)
  const { plaintextDataKey } = materials
  let aead: ReturnType<CryptoBackend['aeadKey']> | undefined
  try {
    // Aborted while the keyrings worked: the caller has its error already, and nothing more is done with the key.
    stopIfAborted(settings.signal)
    assertDecryptAllowed(materials.suite, settings.commitmentPolicy)
    const authenticatedOnly = authenticatedOnlyContext(stored, materials, expected)
    const derived = deriveKeys(backend, suite, plaintextDataKey, header.messageId)
    const { encryptionKey, commitment } = isPromise(derived) ? await derived : derived
    if (suite.committing && !backend.timingSafeEqual(commitment, parsed.suiteData)) {
      encryptionKey.fill(0)
      throw new CommitmentMismatchError('The key commitment does not match the data key: the message was altered or the wrong key was used.')
    }
    if (encryptionKey !== plaintextDataKey && backend.adoptAeadKey !== undefined) {
      // Derived for this message alone: handed over, and zeroed when the message is done.
      aead = backend.adoptAeadKey(encryptionKey)
    } else {
      aead = backend.aeadKey(encryptionKey)
      if (encryptionKey !== plaintextDataKey) encryptionKey.fill(0)
    }
    // The AAD is the header body followed by the serialized encryption context to only authenticate.
    const onlyAuthenticated = serializeContext(authenticatedOnly)
    const aad = onlyAuthenticated.length === 0 ? parsed.body : concatBytes([parsed.body, onlyAuthenticated])
    const authentic = isAsyncAead(aead)
      ? await aead.open(parsed.headerIv, aad, EMPTY, parsed.headerTag, EMPTY, 0)
      : aead.open(parsed.headerIv, aad, EMPTY, parsed.headerTag, EMPTY, 0)
    if (!authentic) {
      const keys = Object.keys(authenticatedOnly)
      throw new HeaderAuthenticationError(
        keys.length === 0
          ? 'The message header failed authentication: it was altered or the wrong key was used.'
          : `The message header failed authentication with the encryption context pairs it does not store (${quoteList(keys)}): ` +
              'those pairs did not authenticate, so a value differs from the one used to encrypt (or the message was altered).',
      )
    }
    const { verificationKey } = materials
    let verifier: Verifier | undefined
    if (suite.signature !== undefined && headerBytes !== undefined) {
      verifier = backend.createVerifier(suite.signature.curve, verificationKey)
      verifier.update(headerBytes)
    }
    const encryptionContext =
      isEmptyContext(authenticatedOnly) ? stored : Object.freeze(Object.assign(emptyContext(), stored, authenticatedOnly))
    return { opener: new FrameOpener(aead, header.messageId, header.contentType), verificationKey, verifier, encryptionContext }
  } catch (error) {
    aead?.dispose?.()
    throw error
  } finally {
    plaintextDataKey.fill(0)
  }
}

export function signatureError(): SignatureVerificationError {
  return new SignatureVerificationError('The message signature does not verify: the message was altered.')
}
