import { openBodyAsync } from './async-body.js'
import { isAsyncAead, isPromise, type CryptoBackend, type MaybePromise, type Verifier } from './backend/types.js'
import { fromBase64 } from './backend/der.js'
import { asMaterialsManager } from './cmm/default.js'
import { deriveKeys } from './derive.js'
import { positiveIntegerOption } from './encrypt.js'
import {
  CommitmentMismatchError,
  ConfigurationError,
  EncryptionContextMismatchError,
  HeaderAuthenticationError,
  InvalidEncryptionContextError,
  LimitExceededError,
  NoDecryptableKeyError,
  SignatureVerificationError,
  TrailingDataError,
} from './errors.js'
import { ByteReader, EMPTY, concatBytes } from './format/bytes.js'
import { PUBLIC_KEY_CONTEXT_KEY, RESERVED_PREFIX, checkRequiredKeys, emptyContext, isEmptyContext, serializeContext, splitContext } from './format/context.js'
import { readFooter } from './format/footer.js'
import { MAX_SEQUENCE_NUMBER, readFrame, readNonFramedBody, type FrameView } from './format/frame.js'
import { parseHeader, type ParsedHeader } from './format/header.js'
import { FrameOpener } from './frame-opener.js'
import { assertDecryptAllowed, commitmentPolicyFromOption, type CurveName } from './suites.js'
import type {
  CommitmentPolicy,
  CompleteDecryptionMaterials,
  DecryptOptions,
  DecryptResult,
  EncryptionContext,
  MaterialsManager,
} from './types.js'

/** Where the body ends and how much plaintext it holds, found without any cryptography. */
interface BodyLayout {
  readonly bodyEnd: number
  readonly plaintextLength: number
  readonly signature: Uint8Array | undefined
  /** The body's only frame (or its non-framed content), which a one-frame message decrypts without a copy. */
  readonly onlyFrame: FrameView | undefined
}

/**
 * Walk the body's structure: frame order, lengths, footer and the end of the input. Runs before any keyring,
 * so a malformed or hostile message costs no key unwrapping, and allocates nothing the message claims.
 */
function scanBody(input: Uint8Array, parsed: ParsedHeader, maxBodySize: number | undefined): BodyLayout {
  const reader = new ByteReader(input, parsed.length)
  const limit = maxBodySize ?? Number.POSITIVE_INFINITY
  const tooLarge = () =>
    new LimitExceededError(`The message body is larger than maxBodySize (${maxBodySize} bytes).`)
  let plaintextLength = 0
  let onlyFrame: FrameView | undefined
  if (parsed.header.contentType === 'non-framed') {
    onlyFrame = readNonFramedBody(reader)
    plaintextLength = onlyFrame.content.length
  } else {
    for (let sequenceNumber = 1; ; sequenceNumber++) {
      if (sequenceNumber > MAX_SEQUENCE_NUMBER) throw new LimitExceededError('The message has more frames than the format allows.')
      const frame = readFrame(reader, parsed.header.frameLength, sequenceNumber)
      plaintextLength += frame.content.length
      if (reader.offset - parsed.length > limit) throw tooLarge()
      if (frame.final) {
        if (sequenceNumber === 1) onlyFrame = frame
        break
      }
    }
  }
  if (reader.offset - parsed.length > limit) throw tooLarge()
  const bodyEnd = reader.offset
  const signature = parsed.suite.signature === undefined ? undefined : readFooter(reader)
  if (reader.remaining !== 0) {
    throw new TrailingDataError(`${reader.remaining} bytes follow the end of the message; pass exactly one message to decrypt.`)
  }
  return { bodyEnd, plaintextLength, signature, onlyFrame }
}

const hasOwn = (object: object, key: string): boolean => Object.prototype.hasOwnProperty.call(object, key)

/** The caller's reproduced encryption context as a frozen null-prototype copy, after checking its shape. */
function reproducedContextOption(expected: unknown): EncryptionContext | undefined {
  if (expected === undefined) return undefined
  if (expected === null || typeof expected !== 'object' || Array.isArray(expected)) {
    throw new ConfigurationError('decrypt encryptionContext must be an object of string pairs.')
  }
  const copy = emptyContext()
  for (const [key, value] of Object.entries(expected)) {
    if (typeof value !== 'string') throw new ConfigurationError(`decrypt encryptionContext value for "${key}" must be a string.`)
    if (key === '') throw new InvalidEncryptionContextError('decrypt encryptionContext keys must not be empty.')
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
  for (const [key, value] of Object.entries(expected)) {
    if (hasOwn(stored, key)) {
      if (stored[key] !== value) {
        throw new EncryptionContextMismatchError(`The message's encryption context has a different value for "${key}" than the caller requires.`)
      }
    } else if (key.startsWith(RESERVED_PREFIX)) {
      throw new EncryptionContextMismatchError(
        `The message's encryption context has no key "${key}", which the caller requires (reserved keys are always stored).`,
      )
    }
  }
}

/** Keys of the caller's context that the message does not store. */
function unstoredKeys(stored: EncryptionContext, expected: EncryptionContext | undefined): string[] {
  return expected === undefined ? [] : Object.keys(expected).filter((key) => !hasOwn(stored, key))
}

const quoted = (keys: readonly string[]): string => keys.map((key) => `"${key}"`).join(', ')

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
      throw new EncryptionContextMismatchError(`The materials manager's value for required key "${key}" differs from the value the message stores.`)
    }
  }
  const { authenticatedOnly } = splitContext(materials.encryptionContext, requiredKeys)
  for (const key of unstoredKeys(stored, expected)) {
    if (authenticatedOnly[key] !== (expected as EncryptionContext)[key]) {
      throw new EncryptionContextMismatchError(
        `The materials manager did not pass the caller's pair "${key}" on to be authenticated; the message does not store it.`,
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
}

export function decryptionSettings(options: DecryptOptions = {}): DecryptionSettings {
  return {
    commitmentPolicy: commitmentPolicyFromOption(options.commitmentPolicy),
    maxEncryptedDataKeys: positiveIntegerOption('maxEncryptedDataKeys', options.maxEncryptedDataKeys, 0xffff),
    maxBodySize: positiveIntegerOption('maxBodySize', options.maxBodySize, Number.MAX_SAFE_INTEGER),
    expectedContext: reproducedContextOption(options.encryptionContext),
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
        ...(expected === undefined ? {} : { reproducedEncryptionContext: expected }),
      },
      backend,
    )
  } catch (error) {
    const unstored = unstoredKeys(stored, expected)
    if (!(error instanceof NoDecryptableKeyError) || unstored.length === 0) throw error
    throw new NoDecryptableKeyError(
      `${error.message} The keyrings were also given encryption context the message does not store (${quoted(unstored)}): ` +
        'a keyring that binds the context (AWS KMS, raw AES) cannot unwrap the data key when one of those values differs from ' +
        'the one used to encrypt, so these pairs did not authenticate.',
      error.failures,
    )
  }
  const { plaintextDataKey } = materials
  let aead: ReturnType<CryptoBackend['aeadKey']> | undefined
  try {
    if (materials.suite.id !== suite.id) throw new ConfigurationError('The materials manager changed the algorithm suite.')
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
          : `The message header failed authentication with the encryption context pairs it does not store (${quoted(keys)}): ` +
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

/**
 * Signed messages of this size range have their signature checked in the background, begun before the
 * keyrings run; smaller ones too when the materials manager waits on I/O. Larger ones are verified on the
 * main thread: the background check copies the message.
 */
const BACKGROUND_VERIFY_MIN = 256 * 1024
const BACKGROUND_VERIFY_MAX = 8 * 1024 * 1024

/** A signature check begun before the keyrings run, with the public key the message's context holds. */
interface EarlySignatureCheck {
  readonly key: unknown
  readonly valid: Promise<boolean>
}

/**
 * For a signed message checked in the background: begin hashing and verifying it before the key is unwrapped,
 * so the check overlaps the key unwrap (a KMS call, say) as well as the frames. Its answer counts only
 * if the materials manager returns the very key it used (backends hand back one object per recent point);
 * otherwise the message is verified again with the manager's key. Resolves undefined for a key that does not
 * import, which the materials manager then reports; never rejects.
 */
async function beginSignatureCheck(
  backend: CryptoBackend,
  ciphertext: Uint8Array,
  parsed: ParsedHeader,
  layout: BodyLayout,
): Promise<EarlySignatureCheck | undefined> {
  const curve = parsed.suite.signature?.curve as CurveName
  try {
    const key = await backend.importVerificationKey(curve, fromBase64(parsed.header.encryptionContext[PUBLIC_KEY_CONTEXT_KEY] as string))
    const valid = backend.verifyMessage(curve, key, ciphertext.subarray(0, layout.bodyEnd), layout.signature as Uint8Array)
    // Its answer may never be asked for (the keyring fails): a backend breaking its promise never to reject
    // must not leave an unhandled rejection behind.
    return { key, valid: valid.catch(() => false) }
  } catch {
    return undefined
  }
}

/** The next turn of the event loop (a macrotask): I/O that has completed is delivered before it. */
const nextTurn: (callback: () => void) => unknown =
  typeof setImmediate === 'function' ? setImmediate : (callback) => setTimeout(callback, 0)

/**
 * Checks to begin if their materials manager is still at work when the event loop next turns. An entry
 * leaves as soon as its manager answers, and one timer serves them all, so a loop of decrypts that never
 * yields to the event loop holds neither messages nor timers.
 */
const waiting = new Set<() => void>()
let turnScheduled = false

function beginWaiting(): void {
  turnScheduled = false
  for (const start of waiting) start()
  waiting.clear()
}

/** Run `start` if `pending` has not settled by the next turn of the event loop. */
function whileWaiting(pending: Promise<unknown>, start: () => void): void {
  waiting.add(start)
  const settle = (): void => void waiting.delete(start)
  pending.then(settle, settle)
  if (!turnScheduled) {
    turnScheduled = true
    nextTurn(beginWaiting)
  }
}

/** Verify the whole message with the materials' key, or take the early check's answer when it used that key. */
function checkSignature(
  backend: CryptoBackend,
  curve: CurveName,
  key: unknown,
  signed: Uint8Array,
  signature: Uint8Array,
  early: Promise<EarlySignatureCheck | undefined> | undefined,
): Promise<boolean> {
  if (early === undefined) return backend.verifyMessage(curve, key, signed, signature)
  return early.then((check) => (check !== undefined && check.key === key ? check.valid : backend.verifyMessage(curve, key, signed, signature)))
}

/** One-shot decrypt: nothing is returned unless the header, every frame and the signature verify. */
export async function decryptWith(
  backend: CryptoBackend,
  keyringOrCmm: unknown,
  ciphertext: Uint8Array,
  options?: DecryptOptions,
): Promise<DecryptResult> {
  const cmm = asMaterialsManager(keyringOrCmm)
  if (!(ciphertext instanceof Uint8Array)) throw new ConfigurationError('ciphertext must be a Uint8Array.')
  const settings = decryptionSettings(options)
  const parsed = parseHeader(ciphertext, settings)
  checkHeader(parsed, settings)
  const layout = scanBody(ciphertext, parsed, settings.maxBodySize)
  const checkable =
    parsed.suite.signature !== undefined &&
    PUBLIC_KEY_CONTEXT_KEY in parsed.header.encryptionContext &&
    layout.bodyEnd <= BACKGROUND_VERIFY_MAX
  let early = checkable && layout.bodyEnd >= BACKGROUND_VERIFY_MIN ? beginSignatureCheck(backend, ciphertext, parsed, layout) : undefined
  const opening = openHeader(backend, cmm, parsed, undefined, settings)
  // A smaller message is checked in the background only when the materials manager is still at work when
  // the event loop turns (waiting on a KMS call, say): otherwise the thread hand-off costs more than it saves.
  if (checkable && early === undefined) whileWaiting(opening, () => (early = beginSignatureCheck(backend, ciphertext, parsed, layout)))
  const opened = await opening
  try {
    const result = opened.opener.async
      ? openBodyWithAsyncKey(backend, ciphertext, parsed, layout, opened, early)
      : openBody(backend, ciphertext, parsed, layout, opened, early)
    return isPromise(result) ? await result : result
  } finally {
    opened.opener.dispose()
  }
}

/** `openBody` for an asynchronous backend, which verifies the whole message in one call while the frames decrypt. */
async function openBodyWithAsyncKey(
  backend: CryptoBackend,
  ciphertext: Uint8Array,
  parsed: ParsedHeader,
  layout: BodyLayout,
  { opener, verificationKey, encryptionContext }: OpenedHeader,
  early: Promise<EarlySignatureCheck | undefined> | undefined,
): Promise<DecryptResult> {
  const curve = parsed.suite.signature?.curve
  const signatureCheck =
    curve === undefined
      ? undefined
      : checkSignature(backend, curve, verificationKey, ciphertext.subarray(0, layout.bodyEnd), layout.signature as Uint8Array, early)
  const opening = openBodyAsync(backend, ciphertext, parsed, layout.plaintextLength, opener)
  opening.catch(() => undefined) // observed below; a bad signature is reported first, as on the synchronous path
  if (signatureCheck !== undefined && !(await signatureCheck)) {
    await opening.then((plaintext) => plaintext.fill(0), () => undefined)
    throw signatureError()
  }
  return { plaintext: await opening, header: parsed.header, encryptionContext }
}

/**
 * Decrypt the body with a synchronous key once the header is authenticated; returns nothing unless every frame
 * and the signature verify. Synchronous unless the signature is checked in the background.
 */
function openBody(
  backend: CryptoBackend,
  ciphertext: Uint8Array,
  parsed: ParsedHeader,
  layout: BodyLayout,
  { opener, verificationKey, encryptionContext }: OpenedHeader,
  early: Promise<EarlySignatureCheck | undefined> | undefined,
): MaybePromise<DecryptResult> {
  const { header } = parsed
  const curve = parsed.suite.signature?.curve
  let signatureCheck: Promise<boolean> | undefined
  if (curve !== undefined) {
    const signed = ciphertext.subarray(0, layout.bodyEnd)
    const signature = layout.signature as Uint8Array
    if (early !== undefined) {
      // Checked off the main thread (where the backend can), begun before the keyrings ran and going on while
      // the frames decrypt; no plaintext is returned unless both succeed.
      signatureCheck = checkSignature(backend, curve, verificationKey, signed, signature, early)
    } else {
      // Verified here before decrypting: a small message would wait longer for the thread hand-off than it
      // saves, and the background check copies the message, which costs too much memory for a large one.
      const verifier = backend.createVerifier(curve, verificationKey)
      verifier.update(signed)
      if (!verifier.verify(signature)) throw signatureError()
    }
  }
  let plaintext: Uint8Array | undefined
  try {
    if (layout.onlyFrame !== undefined && opener.detachedOpen) {
      // One frame (most small messages): the cipher's own output is the plaintext, with no second buffer
      // to allocate and copy into.
      plaintext = opener.openDetached(layout.onlyFrame)
    } else {
      plaintext = backend.allocate(layout.plaintextLength)
      const reader = new ByteReader(ciphertext, parsed.length)
      if (header.contentType === 'non-framed') {
        opener.open(readNonFramedBody(reader), plaintext, 0)
      } else {
        let offset = 0
        for (let sequenceNumber = 1; ; sequenceNumber++) {
          const frame = readFrame(reader, header.frameLength, sequenceNumber)
          offset = opener.open(frame, plaintext, offset)
          if (frame.final) break
        }
      }
    }
  } catch (error) {
    plaintext?.fill(0)
    throw error
  }
  const result = { plaintext, header, encryptionContext }
  return signatureCheck === undefined ? result : afterSignature(signatureCheck, result)
}

/** The result once the background signature check succeeds; a failed check zeroes the plaintext. */
async function afterSignature(signatureCheck: Promise<boolean>, result: DecryptResult): Promise<DecryptResult> {
  if (await signatureCheck) return result
  result.plaintext.fill(0)
  throw signatureError()
}
