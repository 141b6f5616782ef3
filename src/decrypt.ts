import { openBodyAsync } from './async-body.js'
import { isPromise, type CryptoBackend, type MaybePromise } from './backend/types.js'
import { fromBase64 } from './backend/der.js'
import { bytesThat } from './byte-count.js'
import { asMaterialsManager } from './cmm/default.js'
import { LimitExceededError, TrailingDataError } from './errors.js'
import { inputRefused } from './input-refusal.js'
import { onPlainBuffer } from './detached.js'
import { inputFailure, platformFailure } from './platform-failure.js'
import { ByteReader } from './format/bytes.js'
import { PUBLIC_KEY_CONTEXT_KEY } from './format/context.js'
import { readFooter } from './format/footer.js'
import { MAX_SEQUENCE_NUMBER, readFrame, readNonFramedBody, skipFrame, type FrameView } from './format/frame.js'
import { parseHeader, type ParsedHeader } from './format/header.js'
import { FRAMES_PER_TURN, nextTurn, turn } from './next-turn.js'
import { optionsObject } from './option-names.js'
import { abortedError } from './abort.js'
import { checkHeader, DECRYPT_OPTIONS, decryptionSettings, openHeader, signatureError, type OpenedHeader } from './open-header.js'
import type { CurveName } from './suites.js'
import type { Bytes, DecryptOptions, DecryptResult } from './types.js'
import { isBytes } from './is-bytes.js'

/** Where the body ends and how much plaintext it holds, found without any cryptography. */
interface BodyLayout {
  readonly bodyEnd: number
  readonly plaintextLength: number
  readonly signature: Uint8Array | undefined
  /** The body's only frame (or its non-framed content), which a one-frame message decrypts without a copy. */
  readonly onlyFrame: FrameView | undefined
}

/** `next()` at the next turn of the event loop, unless the call's signal has aborted meanwhile (its call has rejected). */
function nextTurnUnlessAborted<T>(signal: AbortSignal | undefined, next: () => MaybePromise<T>): Promise<T> {
  return turn().then(() => {
    if (signal?.aborted) throw abortedError('decrypt', signal)
    return next()
  })
}

/**
 * Frames whose structure `scanBody` reads in one turn of the event loop: about 3 ms of reading (0.1 µs a frame,
 * where decrypting one costs 3 µs). Only a message of many tiny frames has more: 33 MB of 1-byte frames has a million.
 */
const SCANNED_PER_TURN = 8 * FRAMES_PER_TURN

/**
 * Walk the body's structure: frame order, lengths, footer and the end of the input. Runs before any keyring,
 * so a malformed or hostile message costs no key unwrapping, and allocates nothing the message claims.
 * A promise when the message has more than SCANNED_PER_TURN frames: the event loop turns between batches,
 * and a call aborted meanwhile reads no further.
 */
function scanBody(input: Uint8Array, parsed: ParsedHeader, maxBodySize: number | undefined, signal: AbortSignal | undefined): MaybePromise<BodyLayout> {
  const reader = new ByteReader(input, parsed.length)
  const limit = maxBodySize ?? Number.POSITIVE_INFINITY
  const tooLarge = () =>
    new LimitExceededError(`The message body is larger than maxBodySize (${maxBodySize} bytes).`)
  let plaintextLength = 0
  let onlyFrame: FrameView | undefined
  if (parsed.header.contentType === 'non-framed') {
    onlyFrame = readNonFramedBody(reader)
    plaintextLength = onlyFrame.content.length
    return footer()
  }
  return scanFrames(1)

  function scanFrames(first: number): MaybePromise<BodyLayout> {
    const { frameLength } = parsed.header
    for (let sequenceNumber = first; ; sequenceNumber++) {
      if (sequenceNumber - first === SCANNED_PER_TURN) return nextTurnUnlessAborted(signal, () => scanFrames(sequenceNumber))
      if (sequenceNumber > MAX_SEQUENCE_NUMBER) throw new LimitExceededError('The message has more frames than the format allows.')
      const finalLength = sequenceNumber === 1 ? firstFrame() : skipFrame(reader, frameLength, sequenceNumber)
      plaintextLength += finalLength ?? frameLength
      if (reader.offset - parsed.length > limit) throw tooLarge()
      if (finalLength !== undefined) return footer()
    }
  }

  /** The first frame is read whole: when it is the only one, it is decrypted from these views. */
  function firstFrame(): number | undefined {
    const frame = readFrame(reader, parsed.header.frameLength, 1)
    if (!frame.final) return undefined
    onlyFrame = frame
    return frame.content.length
  }

  function footer(): BodyLayout {
    if (reader.offset - parsed.length > limit) throw tooLarge()
    const bodyEnd = reader.offset
    const signature = parsed.suite.signature === undefined ? undefined : readFooter(reader)
    if (reader.remaining !== 0) {
      throw new TrailingDataError(`${bytesThat(reader.remaining, 'follow')} the end of the message; pass exactly one message to decrypt.`)
    }
    return { bodyEnd, plaintextLength, signature, onlyFrame }
  }
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

/**
 * One-shot decrypt: nothing is returned unless the header, every frame and the signature verify. A `signal` option
 * reaches the materials manager, and a decrypt aborted meanwhile ends once the keyrings answer; the call's own
 * abort (`abortable`) is the caller's to add.
 */
export async function decryptWith(
  backend: CryptoBackend,
  keyringOrCmm: unknown,
  ciphertext: Uint8Array,
  options?: DecryptOptions,
): Promise<DecryptResult> {
  let early: Promise<EarlySignatureCheck | undefined> | undefined
  let length = -1
  try {
    const cmm = asMaterialsManager(keyringOrCmm)
    if (!isBytes(ciphertext)) throw inputRefused(ciphertext, 'decrypt')
    // WebCrypto refuses views of a SharedArrayBuffer or of a resizable ArrayBuffer: decrypt a copy of those.
    if (backend.name === 'webcrypto') ciphertext = onPlainBuffer(ciphertext)
    length = ciphertext.length
    const settings = decryptionSettings(optionsObject(options, 'decrypt', DECRYPT_OPTIONS))
    const parsed = parseHeader(ciphertext, settings)
    checkHeader(parsed, settings)
    const scanned = scanBody(ciphertext, parsed, settings.maxBodySize, settings.signal)
    const layout = isPromise(scanned) ? await scanned : scanned
    const checkable =
      parsed.suite.signature !== undefined &&
      PUBLIC_KEY_CONTEXT_KEY in parsed.header.encryptionContext &&
      layout.bodyEnd <= BACKGROUND_VERIFY_MAX
    if (checkable && layout.bodyEnd >= BACKGROUND_VERIFY_MIN) early = beginSignatureCheck(backend, ciphertext, parsed, layout)
    const opening = openHeader(backend, cmm, parsed, undefined, settings)
    // A smaller message is checked in the background only when the materials manager is still at work when
    // the event loop turns (waiting on a KMS call, say): otherwise the thread hand-off costs more than it saves.
    if (checkable && early === undefined) whileWaiting(opening, () => (early = beginSignatureCheck(backend, ciphertext, parsed, layout)))
    const opened = await opening
    try {
      const result = opened.opener.async
        ? openBodyWithAsyncKey(backend, ciphertext, parsed, layout, opened, early)
        : openBody(backend, ciphertext, parsed, layout, opened, early, settings.signal)
      return isPromise(result) ? await result : result
    } finally {
      opened.opener.dispose()
    }
  } catch (error) {
    // A check begun in the background holds the message (and node:crypto a copy of it) until its answer is
    // delivered, which takes a turn of the event loop: a loop of failing decrypts that never yields to the
    // event loop would pile them up. Its answer no longer matters; its end does.
    if (early !== undefined) await early.then((check) => check?.valid)
    throw length < 0 ? platformFailure(error) : inputFailure(error, ciphertext, length, 'decrypt')
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
  const failure = signatureCheck === undefined ? undefined : await signatureFailure(signatureCheck)
  if (failure !== undefined) {
    await opening.then((plaintext) => plaintext.fill(0), () => undefined)
    throw failure
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
  signal: AbortSignal | undefined,
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
      // Its answer is taken once the frames are open, which may take turns of the event loop: a rejection
      // meanwhile is not an unhandled one.
      signatureCheck.catch(() => undefined)
    } else {
      // Verified here before decrypting: a small message would wait longer for the thread hand-off than it
      // saves, and the background check copies the message, which costs too much memory for a large one.
      const verifier = backend.createVerifier(curve, verificationKey)
      verifier.update(signed)
      if (!verifier.verify(signature)) throw signatureError()
    }
  }
  let plaintext: Bytes | undefined
  let framesLeft: Promise<void> | undefined
  try {
    if (layout.onlyFrame !== undefined && opener.detachedOpen) {
      // One frame (most small messages): the cipher's own output is the plaintext, with no second buffer
      // to allocate and copy into.
      plaintext = opener.openDetached(layout.onlyFrame)
    } else {
      plaintext = backend.allocate(layout.plaintextLength)
      const reader = new ByteReader(ciphertext, parsed.length)
      if (header.contentType === 'non-framed') opener.open(readNonFramedBody(reader), plaintext, 0)
      else framesLeft = openFrames({ opener, reader, frameLength: header.frameLength, plaintext, signal }, 1, 0)
    }
  } catch (error) {
    plaintext?.fill(0)
    throw error
  }
  const result = { plaintext, header, encryptionContext }
  if (framesLeft !== undefined) return afterFrames(framesLeft, result, signatureCheck)
  return signatureCheck === undefined ? result : afterSignature(signatureCheck, result)
}

/** What `openFrames` reads the frames from and writes their plaintext into. */
interface FrameWork {
  readonly opener: OpenedHeader['opener']
  readonly reader: ByteReader
  readonly frameLength: number
  readonly plaintext: Bytes
  /** The call's: once it aborts (the call has rejected already), no more frames are opened. */
  readonly signal: AbortSignal | undefined
}

/** Decrypt the frames from `sequenceNumber` on into `plaintext`; a promise once it lets the event loop turn between frames. */
function openFrames(work: FrameWork, sequenceNumber: number, offset: number): Promise<void> | undefined {
  const { opener, reader, frameLength, plaintext, signal } = work
  for (let opened = 0; ; sequenceNumber++) {
    const frame = readFrame(reader, frameLength, sequenceNumber)
    offset = opener.open(frame, plaintext, offset)
    if (frame.final) return undefined
    if (++opened === FRAMES_PER_TURN) {
      const next = sequenceNumber + 1
      return nextTurnUnlessAborted(signal, () => openFrames(work, next, offset))
    }
  }
}

/** The result once the frames left are decrypted, and the signature checked; a failure zeroes the plaintext. */
async function afterFrames(framesLeft: Promise<void>, result: DecryptResult, signatureCheck: Promise<boolean> | undefined): Promise<DecryptResult> {
  try {
    await framesLeft
  } catch (error) {
    result.plaintext.fill(0)
    throw error
  }
  return signatureCheck === undefined ? result : afterSignature(signatureCheck, result)
}

/** The result once the background signature check succeeds; a failed check zeroes the plaintext. */
async function afterSignature(signatureCheck: Promise<boolean>, result: DecryptResult): Promise<DecryptResult> {
  const failure = await signatureFailure(signatureCheck)
  if (failure === undefined) return result
  result.plaintext.fill(0)
  throw failure
}

/**
 * What a signature check ends in: undefined when the signature verifies, else the error to throw: a
 * `SignatureVerificationError`, or the backend's own rejection (a `KeyringError` for a materials manager's
 * key it cannot verify with).
 */
function signatureFailure(signatureCheck: Promise<boolean>): Promise<unknown> {
  return signatureCheck.then(
    (valid) => (valid ? undefined : signatureError()),
    (error: unknown) => error ?? signatureError(), // never undefined: that would read as verified
  )
}
