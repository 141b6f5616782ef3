import type { CryptoBackend } from './backend/types.js'
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
import type { DecryptOptions, DecryptResult, EncryptionContext } from './types.js'

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

/** One-shot decrypt: nothing is returned unless the header, every frame and the signature verify. */
export async function decryptWith(
  backend: CryptoBackend,
  keyringOrCmm: unknown,
  ciphertext: Uint8Array,
  options: DecryptOptions = {},
): Promise<DecryptResult> {
  const cmm = asMaterialsManager(keyringOrCmm)
  if (!(ciphertext instanceof Uint8Array)) throw new ConfigurationError('ciphertext must be a Uint8Array.')
  const commitmentPolicy = commitmentPolicyFromOption(options.commitmentPolicy)
  const maxEncryptedDataKeys = positiveIntegerOption('maxEncryptedDataKeys', options.maxEncryptedDataKeys, 0xffff)
  const maxBodySize = positiveIntegerOption('maxBodySize', options.maxBodySize, Number.MAX_SAFE_INTEGER)

  const parsed = parseHeader(ciphertext, maxEncryptedDataKeys === undefined ? {} : { maxEncryptedDataKeys })
  const { header, suite } = parsed
  assertDecryptAllowed(suite, commitmentPolicy)
  checkReproducedContext(header.encryptionContext, options.encryptionContext)
  const layout = scanBody(ciphertext, parsed, maxBodySize)

  const materials = await cmm.getDecryptionMaterials(
    {
      suite,
      encryptionContext: header.encryptionContext,
      encryptedDataKeys: header.encryptedDataKeys,
      commitmentPolicy,
      ...(options.encryptionContext === undefined ? {} : { reproducedEncryptionContext: options.encryptionContext }),
    },
    backend,
  )
  const { plaintextDataKey } = materials
  let plaintext: Uint8Array | undefined
  try {
    if (materials.suite.id !== suite.id) throw new ConfigurationError('The materials manager changed the algorithm suite.')
    assertDecryptAllowed(materials.suite, commitmentPolicy)
    const { encryptionKey, commitment } = deriveKeys(backend, suite, plaintextDataKey, header.messageId)
    if (suite.committing && !backend.timingSafeEqual(commitment, parsed.suiteData)) {
      throw new CommitmentMismatchError('The key commitment does not match the data key: the message was altered or the wrong key was used.')
    }
    const aead = backend.aeadKey(encryptionKey)
    encryptionKey.fill(0)
    // spec: client-apis/decrypt.md#verify-the-header
    if (!aead.open(parsed.headerIv, parsed.body, new Uint8Array(0), parsed.headerTag, new Uint8Array(0), 0)) {
      throw new HeaderAuthenticationError('The message header failed authentication: it was altered or the wrong key was used.')
    }
    if (suite.signature !== undefined) {
      // The whole message is here, so verify it before decrypting anything.
      const verifier = backend.createVerifier(suite.signature.curve, materials.verificationKey)
      verifier.update(ciphertext.subarray(0, layout.bodyEnd))
      if (!verifier.verify(layout.signature as Uint8Array)) {
        throw new SignatureVerificationError('The message signature does not verify: the message was altered.')
      }
    }
    plaintext = new Uint8Array(layout.plaintextLength)
    const opener = new FrameOpener(aead, header.messageId, header.contentType)
    const reader = new ByteReader(ciphertext, parsed.length)
    let offset = 0
    if (header.contentType === 'non-framed') {
      opener.open(readNonFramedBody(reader), plaintext, 0)
    } else {
      for (let sequenceNumber = 1; ; sequenceNumber++) {
        const frame = readFrame(reader, header.frameLength, sequenceNumber)
        offset = opener.open(frame, plaintext, offset)
        if (frame.final) break
      }
    }
    return { plaintext, header }
  } catch (error) {
    plaintext?.fill(0)
    throw error
  } finally {
    plaintextDataKey.fill(0)
  }
}
