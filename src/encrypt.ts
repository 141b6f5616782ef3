import type { AeadKey, CryptoBackend, Signer } from './backend/types.js'
import { asMaterialsManager } from './cmm/default.js'
import { deriveKeys } from './derive.js'
import { ConfigurationError, TooManyEncryptedDataKeysError } from './errors.js'
import { utf8 } from './format/bytes.js'
import { validateCallerContext } from './format/context.js'
import { MAX_SIGNATURE_LENGTH, writeFooter } from './format/footer.js'
import { MAX_FRAME_LENGTH, messageIdLength, serializeHeaderBody } from './format/header.js'
import { FrameSealer } from './frames.js'
import { commitmentPolicyFromOption, suiteForEncrypt } from './suites.js'
import type { EncryptOptions, EncryptResult, MessageHeader } from './types.js'

const DEFAULT_FRAME_LENGTH = 4096
/** Feed the signer in slices of this size: large enough to amortize calls, small enough to stay in cache. */
const SIGN_CHUNK = 256 * 1024

/** Everything needed to write a message body after its header: shared by one-shot and streaming encrypt. */
export interface EncryptionSession {
  readonly header: MessageHeader
  /** Header body plus authentication. */
  readonly headerBytes: Uint8Array
  readonly sealer: FrameSealer
  readonly signer: Signer | undefined
}

export function positiveIntegerOption(name: string, value: unknown, max: number): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ConfigurationError(`${name} must be an integer from 1 to ${max}; got ${String(value)}.`)
  }
  return value
}

/** Get materials, derive keys, and write and authenticate the header. */
export async function beginEncryption(
  backend: CryptoBackend,
  keyringOrCmm: unknown,
  options: EncryptOptions = {},
  plaintextLength?: number,
): Promise<EncryptionSession> {
  const cmm = asMaterialsManager(keyringOrCmm)
  const commitmentPolicy = commitmentPolicyFromOption(options.commitmentPolicy)
  const suite = suiteForEncrypt(options.algorithmSuite, commitmentPolicy)
  const frameLength = positiveIntegerOption('frameLength', options.frameLength, MAX_FRAME_LENGTH) ?? DEFAULT_FRAME_LENGTH
  const maxEncryptedDataKeys = positiveIntegerOption('maxEncryptedDataKeys', options.maxEncryptedDataKeys, 0xffff)
  const encryptionContext = validateCallerContext(options.encryptionContext)
  if (plaintextLength !== undefined) FrameSealer.bodyLength(plaintextLength, frameLength)

  const materials = await cmm.getEncryptionMaterials(
    { suite, encryptionContext, commitmentPolicy, ...(plaintextLength === undefined ? {} : { plaintextLength }) },
    backend,
  )
  const { encryptedDataKeys, plaintextDataKey } = materials
  try {
    // The policy is checked again after the materials manager: a custom one must not swap in another suite.
    suiteForEncrypt(materials.suite.id, commitmentPolicy)
    if (materials.suite.id !== suite.id) throw new ConfigurationError('The materials manager changed the algorithm suite.')
    if (maxEncryptedDataKeys !== undefined && encryptedDataKeys.length > maxEncryptedDataKeys) {
      throw new TooManyEncryptedDataKeysError(
        `The keyrings produced ${encryptedDataKeys.length} encrypted data keys; maxEncryptedDataKeys allows ${maxEncryptedDataKeys}.`,
      )
    }
    const messageId = backend.randomBytes(messageIdLength(suite.messageFormatVersion))
    const { encryptionKey, commitment } = deriveKeys(backend, suite, plaintextDataKey, messageId)
    const aead: AeadKey = backend.aeadKey(encryptionKey)
    const headerBody = serializeHeaderBody({
      suite,
      messageId,
      encryptionContext: materials.encryptionContext,
      encryptedDataKeys,
      frameLength,
      suiteData: commitment,
    })
    // spec: data-format/message-header.md#header-authentication (IV of zeros; v1 stores it, v2 does not)
    const iv = new Uint8Array(suite.ivLength)
    const storedIvLength = suite.messageFormatVersion === 1 ? suite.ivLength : 0
    const headerBytes = new Uint8Array(headerBody.length + storedIvLength + suite.tagLength)
    headerBytes.set(headerBody, 0)
    aead.seal(iv, headerBody, new Uint8Array(0), headerBytes, headerBody.length + storedIvLength)
    encryptionKey.fill(0)

    const signer =
      suite.signature === undefined ? undefined : backend.createSigner(suite.signature.curve, materials.signingKey)
    signer?.update(headerBytes)
    const header: MessageHeader = {
      version: suite.messageFormatVersion,
      algorithmSuiteId: suite.id,
      messageId,
      encryptionContext: { ...materials.encryptionContext },
      encryptedDataKeys,
      contentType: 'framed',
      frameLength,
    }
    return { header, headerBytes, sealer: new FrameSealer(aead, messageId, frameLength), signer }
  } finally {
    plaintextDataKey.fill(0)
  }
}

/** Bytes to reserve after the body for the footer (its signature length varies by a few bytes). */
export function footerRoom(session: EncryptionSession): number {
  return session.signer === undefined ? 0 : 2 + MAX_SIGNATURE_LENGTH
}

/**
 * Seal the final frame and, for signing suites, sign everything from `unsignedFrom` on and write the
 * footer. Returns the offset after the message. Shared by one-shot and streaming encrypt.
 */
export function finishMessage(session: EncryptionSession, finalPlaintext: Uint8Array, out: Uint8Array, offset: number, unsignedFrom: number): number {
  const end = session.sealer.sealFinal(finalPlaintext, out, offset)
  const { signer } = session
  if (signer === undefined) return end
  signer.update(out.subarray(unsignedFrom, end))
  return writeFooter(signer.sign(), out, end)
}

/** One-shot encrypt: the whole message is written into a single buffer. */
export async function encryptWith(
  backend: CryptoBackend,
  keyringOrCmm: unknown,
  plaintext: Uint8Array | string,
  options?: EncryptOptions,
): Promise<EncryptResult> {
  const input = typeof plaintext === 'string' ? utf8(plaintext) : plaintext
  if (!(input instanceof Uint8Array)) throw new ConfigurationError('plaintext must be a Uint8Array or a string.')
  const session = await beginEncryption(backend, keyringOrCmm, options, input.length)
  const { headerBytes, sealer, signer } = session
  const frameLength = sealer.frameLength
  const bodyLength = FrameSealer.bodyLength(input.length, frameLength)
  const out = backend.allocate(headerBytes.length + bodyLength + footerRoom(session))
  out.set(headerBytes, 0)
  let offset = headerBytes.length
  let signedUpTo = offset
  let position = 0
  while (input.length - position >= frameLength) {
    offset = sealer.sealRegular(input.subarray(position, position + frameLength), out, offset)
    position += frameLength
    if (signer !== undefined && offset - signedUpTo >= SIGN_CHUNK) {
      signer.update(out.subarray(signedUpTo, offset))
      signedUpTo = offset
    }
  }
  offset = finishMessage(session, input.subarray(position), out, offset, signedUpTo)
  out.fill(0, offset) // unused footer room: uninitialized memory must not ride along in ciphertext.buffer
  return { ciphertext: offset === out.length ? out : out.subarray(0, offset), header: session.header }
}
