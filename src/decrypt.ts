import type { CryptoBackend, Verifier } from './backend/types.js'
import { asMaterialsManager } from './cmm/default.js'
import { deriveKeys } from './derive.js'
import { positiveIntegerOption } from './encrypt.js'
import {
  CommitmentMismatchError,
  ConfigurationError,
  EncryptionContextMismatchError,
  HeaderAuthenticationError,
  LimitExceededError,
  SignatureVerificationError,
  TrailingDataError,
} from './errors.js'
import { ByteReader } from './format/bytes.js'
import { readFooter } from './format/footer.js'
import { MAX_SEQUENCE_NUMBER, readFrame, readNonFramedBody } from './format/frame.js'
import { parseHeader, type ParsedHeader } from './format/header.js'
import { FrameOpener } from './frames.js'
import { assertDecryptAllowed, commitmentPolicyFromOption } from './suites.js'
import type { CommitmentPolicy, DecryptOptions, DecryptResult, EncryptionContext, MaterialsManager } from './types.js'

/** Where the body ends and how much plaintext it holds, found without any cryptography. */
interface BodyLayout {
  readonly bodyEnd: number
  readonly plaintextLength: number
  readonly signature: Uint8Array | undefined
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
  if (parsed.header.contentType === 'non-framed') {
    plaintextLength = readNonFramedBody(reader).content.length
  } else {
    for (let sequenceNumber = 1; ; sequenceNumber++) {
      if (sequenceNumber > MAX_SEQUENCE_NUMBER) throw new LimitExceededError('The message has more frames than the format allows.')
      const frame = readFrame(reader, parsed.header.frameLength, sequenceNumber)
      plaintextLength += frame.content.length
      if (reader.offset - parsed.length > limit) throw tooLarge()
      if (frame.final) break
    }
  }
  if (reader.offset - parsed.length > limit) throw tooLarge()
  const bodyEnd = reader.offset
  const signature = parsed.suite.signature === undefined ? undefined : readFooter(reader)
  if (reader.remaining !== 0) {
    throw new TrailingDataError(`${reader.remaining} bytes follow the end of the message; pass exactly one message to decrypt.`)
  }
  return { bodyEnd, plaintextLength, signature }
}

function checkReproducedContext(stored: EncryptionContext, expected: EncryptionContext | undefined): void {
  if (expected === undefined) return
  if (expected === null || typeof expected !== 'object') {
    throw new ConfigurationError('decrypt encryptionContext must be an object of string pairs.')
  }
  for (const [key, value] of Object.entries(expected)) {
    if (typeof value !== 'string') throw new ConfigurationError(`decrypt encryptionContext value for "${key}" must be a string.`)
    if (!Object.prototype.hasOwnProperty.call(stored, key)) {
      throw new EncryptionContextMismatchError(`The message's encryption context has no key "${key}", which the caller requires.`)
    }
    if (stored[key] !== value) {
      throw new EncryptionContextMismatchError(`The message's encryption context has a different value for "${key}" than the caller requires.`)
    }
  }
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
    expectedContext: options.encryptionContext,
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
  const materials = await cmm.getDecryptionMaterials(
    {
      suite,
      encryptionContext: header.encryptionContext,
      encryptedDataKeys: header.encryptedDataKeys,
      commitmentPolicy: settings.commitmentPolicy,
      ...(settings.expectedContext === undefined ? {} : { reproducedEncryptionContext: settings.expectedContext }),
    },
    backend,
  )
  const { plaintextDataKey } = materials
  try {
    if (materials.suite.id !== suite.id) throw new ConfigurationError('The materials manager changed the algorithm suite.')
    assertDecryptAllowed(materials.suite, settings.commitmentPolicy)
    const { encryptionKey, commitment } = deriveKeys(backend, suite, plaintextDataKey, header.messageId)
    if (suite.committing && !backend.timingSafeEqual(commitment, parsed.suiteData)) {
      throw new CommitmentMismatchError('The key commitment does not match the data key: the message was altered or the wrong key was used.')
    }
    const aead = backend.aeadKey(encryptionKey)
    encryptionKey.fill(0)
    if (!aead.open(parsed.headerIv, parsed.body, EMPTY, parsed.headerTag, EMPTY, 0)) {
      throw new HeaderAuthenticationError('The message header failed authentication: it was altered or the wrong key was used.')
    }
    const { verificationKey } = materials
    let verifier: Verifier | undefined
    if (suite.signature !== undefined && headerBytes !== undefined) {
      verifier = backend.createVerifier(suite.signature.curve, verificationKey)
      verifier.update(headerBytes)
    }
    return { opener: new FrameOpener(aead, header.messageId, header.contentType), verificationKey, verifier }
  } finally {
    plaintextDataKey.fill(0)
  }
}

export function signatureError(): SignatureVerificationError {
  return new SignatureVerificationError('The message signature does not verify: the message was altered.')
}

const EMPTY = new Uint8Array(0)
/** Signed messages of this size range have their signature checked in the background during decryption. */
const BACKGROUND_VERIFY_MIN = 256 * 1024
const BACKGROUND_VERIFY_MAX = 8 * 1024 * 1024

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
  const { header } = parsed
  checkHeader(parsed, settings)
  const layout = scanBody(ciphertext, parsed, settings.maxBodySize)
  const { opener, verificationKey } = await openHeader(backend, cmm, parsed, undefined, settings)
  const curve = parsed.suite.signature?.curve
  let signatureCheck: Promise<boolean> | undefined
  if (curve !== undefined) {
    const signed = ciphertext.subarray(0, layout.bodyEnd)
    const signature = layout.signature as Uint8Array
    if (signed.length >= BACKGROUND_VERIFY_MIN && signed.length <= BACKGROUND_VERIFY_MAX) {
      // Checked off the main thread (where the backend can) while the frames decrypt; no plaintext is
      // returned unless both succeed.
      signatureCheck = backend.verifyMessage(curve, verificationKey, signed, signature)
    } else {
      // Verified here before decrypting: a small message would wait longer for the thread hand-off than it
      // saves, and the background check copies the message, which costs too much memory for a large one.
      const verifier = backend.createVerifier(curve, verificationKey)
      verifier.update(signed)
      if (!verifier.verify(signature)) throw signatureError()
    }
  }
  const plaintext = backend.allocate(layout.plaintextLength)
  try {
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
    if (signatureCheck !== undefined && !(await signatureCheck)) throw signatureError()
    return { plaintext, header }
  } catch (error) {
    plaintext.fill(0)
    throw error
  }
}
