import { sealBodyAsync } from './async-body.js'
import { isAsyncAead, isPromise, type CryptoBackend, type Signer } from './backend/types.js'
import { asMaterialsManager, DefaultMaterialsManager } from './cmm/default.js'
import { deriveKeys } from './derive.js'
import { ConfigurationError, EnvelopeError, TooManyEncryptedDataKeysError } from './errors.js'
import { EMPTY, LONE_SURROGATE_PROBLEM, ZERO_IV, concatBytes, loneSurrogateAt, utf8 } from './format/bytes.js'
import { checkRequiredKeys, emptyContext, serializeContext, splitContext, validateCallerContext } from './format/context.js'
import { MAX_FRAME_LENGTH, messageIdLength, serializeHeaderBody } from './format/header.js'
import { FrameSealer } from './frames.js'
import { loadOnDemand, onDemandLoaded } from './load-on-demand.js'
import { optionsObject } from './option-names.js'
import { quoteValue } from './quote.js'
import { commitmentPolicyFromOption, suiteForEncrypt, type AlgorithmSuite, type CurveName } from './suites.js'
import type { CompleteEncryptionMaterials, EncryptOptions, EncryptResult, MessageHeader } from './types.js'
import { isBytes } from './is-bytes.js'

const DEFAULT_FRAME_LENGTH = 4096

/** Everything needed to write a message body after its header: shared by one-shot and streaming encrypt. */
export interface EncryptionSession {
  readonly header: MessageHeader
  /** Header body plus authentication. */
  readonly headerBytes: Uint8Array
  readonly sealer: FrameSealer
  /**
   * Incremental signer, already fed the header; undefined for unsigned suites, on backends without one, and for
   * streams, which make their own (stream-signer.ts).
   */
  readonly signer: Signer | undefined
  /** For signing suites: what a whole-message signature needs (backends without incremental signing). */
  readonly signing: { readonly curve: CurveName; readonly privateKey: unknown } | undefined
}

/** The options `encrypt` takes (`EncryptOptions`). */
export const ENCRYPT_OPTIONS = 'encryptionContext, algorithmSuite, frameLength, commitmentPolicy, maxEncryptedDataKeys, signal'

export function positiveIntegerOption(name: string, value: unknown, max: number): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigurationError(`${name} must be an integer from 1 to ${max}; got ${quoteValue(value)}.`)
  }
  return value
}

/** What encrypt knows about the plaintext's length before it starts: the exact length, or an upper bound. */
export interface PlaintextLengths {
  readonly plaintextLength?: number | undefined
  readonly maxPlaintextLength?: number | undefined
}

/** Keyrings that refuse signing suites (KmsRsaKeyring, or a MultiKeyring holding one) say so. */
function refusesSigningSuites(keyringOrCmm: unknown): boolean {
  return (keyringOrCmm as { refusesSigningSuites?: unknown } | null)?.refusesSigningSuites === true
}

/**
 * Get materials, derive keys, and write and authenticate the header. A stream passes `checkStream`, which may
 * refuse the suite before any keyring runs (a signing suite the backend cannot sign incrementally); a stream
 * session has no signer, since streams make their own.
 */
export async function beginEncryption(
  backend: CryptoBackend,
  keyringOrCmm: unknown,
  options: EncryptOptions,
  lengths: PlaintextLengths = {},
  checkStream?: (suite: AlgorithmSuite) => Promise<void>,
): Promise<EncryptionSession> {
  const { plaintextLength, maxPlaintextLength } = lengths
  const cmm = asMaterialsManager(keyringOrCmm)
  const commitmentPolicy = commitmentPolicyFromOption(options.commitmentPolicy)
  const suite = suiteForEncrypt(options.algorithmSuite, commitmentPolicy, refusesSigningSuites(keyringOrCmm))
  if (checkStream !== undefined) await checkStream(suite)
  const frameLength = positiveIntegerOption('frameLength', options.frameLength, MAX_FRAME_LENGTH) ?? DEFAULT_FRAME_LENGTH
  const maxEncryptedDataKeys = positiveIntegerOption('maxEncryptedDataKeys', options.maxEncryptedDataKeys, 0xffff)
  const encryptionContext = validateCallerContext(options.encryptionContext)
  if (plaintextLength !== undefined) FrameSealer.bodyLength(plaintextLength, frameLength)

  let materials: CompleteEncryptionMaterials
  try {
    materials = await cmm.getEncryptionMaterials(
      {
        suite,
        encryptionContext,
        commitmentPolicy,
        signal: options.signal ?? undefined,
        plaintextLength,
        maxPlaintextLength,
      },
      backend,
    )
  } catch (error) {
    // A custom manager's or keyring's own error becomes a typed one (on demand: a browser page that never sees
    // one never downloads the code).
    throw (onDemandLoaded() ?? (await loadOnDemand())).managerFailure(error)
  }
  // The default manager checks its keyring's materials; any other manager's (a subclass's too) are checked here
  // (also refusing another suite than the one asked for, which the commitment policy allowed), by code loaded on
  // demand: a browser application that encrypts through a keyring never downloads it.
  if (cmm.constructor !== DefaultMaterialsManager) (onDemandLoaded() ?? (await loadOnDemand())).checkEncryptionMaterials(materials, suite, backend)
  const { encryptedDataKeys, plaintextDataKey } = materials
  let aead: ReturnType<CryptoBackend['aeadKey']> | undefined
  try {
    // Aborted while the keyrings worked: the caller (an abortable call, a stream) has its ABORTED error already, and
    // no message key is made. (Not abort.ts's stopIfAborted, which would bring that module into the browser's first load.)
    if (options.signal?.aborted) throw options.signal.reason
    // Not through checkKeyCount: a browser application that encrypts loads 9 bytes less.
    if (maxEncryptedDataKeys !== undefined && encryptedDataKeys.length > maxEncryptedDataKeys) {
      throw new TooManyEncryptedDataKeysError(
        `The keyrings produced ${encryptedDataKeys.length} encrypted data keys; maxEncryptedDataKeys allows ${maxEncryptedDataKeys}.`,
      )
    }
    // Pairs under the required encryption context keys are authenticated but not stored.
    // spec: client-apis/encrypt.md#construct-the-header
    const requiredKeys = checkRequiredKeys(materials.requiredEncryptionContextKeys, materials.encryptionContext, 'The materials manager')
    const { stored, authenticatedOnly } = splitContext(materials.encryptionContext, requiredKeys)
    const messageId = backend.randomBytes(messageIdLength(suite.messageFormatVersion))
    const derived = deriveKeys(backend, suite, plaintextDataKey, messageId)
    const { encryptionKey, commitment } = isPromise(derived) ? await derived : derived
    aead = backend.aeadKey(encryptionKey)
    // spec: data-format/message-header.md#header-authentication (IV of zeros; v1 stores it, v2 does not).
    const storedIvLength = suite.messageFormatVersion === 1 ? suite.ivLength : 0
    const headerBytes = serializeHeaderBody(
      { suite, messageId, encryptionContext: stored, encryptedDataKeys, frameLength, suiteData: commitment },
      storedIvLength + suite.tagLength,
    )
    const headerBody = headerBytes.subarray(0, headerBytes.length - storedIvLength - suite.tagLength)
    // The AAD is the header body followed by the serialized encryption context to only authenticate
    // (zero bytes when there is none, so ordinary messages are unchanged).
    const onlyAuthenticated = serializeContext(authenticatedOnly)
    const aad = onlyAuthenticated.length === 0 ? headerBody : concatBytes([headerBody, onlyAuthenticated])
    encryptionKey.fill(0)
    if (isAsyncAead(aead)) await aead.seal(ZERO_IV, aad, EMPTY, headerBytes, headerBody.length + storedIvLength)
    else aead.seal(ZERO_IV, aad, EMPTY, headerBytes, headerBody.length + storedIvLength)

    const signing = suite.signature === undefined ? undefined : { curve: suite.signature.curve, privateKey: materials.signingKey }
    const signer =
      signing === undefined || !backend.incrementalSignatures || checkStream !== undefined ? undefined : backend.createSigner(signing.curve, signing.privateKey)
    signer?.update(headerBytes)
    const header: MessageHeader = {
      version: suite.messageFormatVersion,
      algorithmSuiteId: suite.id,
      messageId,
      // Frozen contexts are shared (the caller's validated copy is); a custom manager's is copied.
      encryptionContext: Object.isFrozen(stored) ? stored : Object.freeze(Object.assign(emptyContext(), stored)),
      encryptedDataKeys,
      contentType: 'framed',
      frameLength,
    }
    return { header, headerBytes, sealer: new FrameSealer(aead, messageId, frameLength), signer, signing }
  } catch (error) {
    aead?.dispose?.()
    throw error
  } finally {
    plaintextDataKey.fill(0)
  }
}

/** A plaintext string's UTF-8 bytes, refusing text that decrypt could not give back as it was. */
function plaintextBytes(text: string): Uint8Array {
  const at = loneSurrogateAt(text)
  if (at >= 0) throw new ConfigurationError(`The plaintext string (at index ${at}) ${LONE_SURROGATE_PROBLEM}; or pass the bytes you mean as a Uint8Array.`)
  return utf8(text)
}

/**
 * One-shot encrypt: the whole message is written into a single buffer. A `signal` option reaches the materials
 * manager; the call's own abort (`abortable`) is the caller's to add.
 */
export async function encryptWith(
  backend: CryptoBackend,
  keyringOrCmm: unknown,
  plaintext: Uint8Array | string,
  options?: EncryptOptions,
): Promise<EncryptResult> {
  const input = typeof plaintext === 'string' ? plaintextBytes(plaintext) : plaintext
  if (!isBytes(input)) throw (onDemandLoaded() ?? (await loadOnDemand())).inputRefused(plaintext, 'encrypt')
  const length = input.length
  let session: EncryptionSession | undefined
  let failure: unknown
  try {
    session = await beginEncryption(backend, keyringOrCmm, optionsObject(options, 'encrypt', ENCRYPT_OPTIONS), { plaintextLength: length })
    // The synchronous loop comes with a backend whose keys answer synchronously (node:crypto); the
    // asynchronous one also drives synchronous keys, only slower.
    const result = await (!session.sealer.async && backend.sealBody !== undefined ? backend.sealBody(session, input) : sealBodyAsync(backend, session, input))
    // A buffer resized while the keyrings worked would make a message of other bytes than the caller passed.
    if (input.length === length) return result
  } catch (error) {
    if (error instanceof EnvelopeError) throw error
    failure = error
  } finally {
    session?.sealer.dispose()
  }
  // A platform failure (WebCrypto rejecting, say) as INTERNAL_ERROR, unless the input's buffer was detached or
  // resized under the call; typed on demand, to keep it out of the first load.
  throw (onDemandLoaded() ?? (await loadOnDemand())).encryptFailure(failure, input, length)
}
