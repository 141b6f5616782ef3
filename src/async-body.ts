// The one-shot body loops for an asynchronous cipher (WebCrypto). The synchronous loops in sync-body.ts and
// decrypt.ts stay as they are for node:crypto, with no promise per frame; these do the same work through
// FrameSealer/FrameOpener's `…Async` methods (the same frame layout), keeping several frames in flight so
// that the browser's crypto thread is never idle waiting for the next call.
import type { CryptoBackend } from './backend/types.js'
import type { EncryptionSession } from './encrypt.js'
import { ByteReader } from './format/bytes.js'
import { writeFooter } from './format/footer.js'
import { FINAL_FRAME_OVERHEAD, readFrame, readNonFramedBody } from './format/frame.js'
import type { ParsedHeader } from './format/header.js'
import type { FrameOpener } from './frame-opener.js'
import { messageBuffer } from './frames.js'
import type { Bytes, EncryptResult } from './types.js'

/** Frames in flight at once: bounded by count and by bytes, so a huge frame length cannot balloon memory. */
const MAX_IN_FLIGHT = 64
const MAX_IN_FLIGHT_BYTES = 4 * 1024 * 1024

/** Collects pending cipher calls and waits for them once the window is full. Streams use it too. */
export class Window {
  readonly pending: Promise<unknown>[] = []
  private bytes = 0

  async add(length: number): Promise<void> {
    this.bytes += length
    if (this.pending.length >= MAX_IN_FLIGHT || this.bytes >= MAX_IN_FLIGHT_BYTES) await this.drain()
  }

  /** Wait for every call; on a failure the calls stay listed, so the caller can let them settle. */
  async drain(): Promise<void> {
    await Promise.all(this.pending)
    this.pending.length = 0
    this.bytes = 0
  }
}

/** Seal the body (and sign the whole message, for signing suites) after `beginEncryption` wrote the header. */
export async function sealBodyAsync(backend: CryptoBackend, session: EncryptionSession, input: Uint8Array): Promise<EncryptResult> {
  const { headerBytes, sealer, signing } = session
  const frameLength = sealer.frameLength
  const out = messageBuffer(backend, session, input.length)
  let offset = headerBytes.length
  let position = 0
  const window = new Window()
  try {
    while (input.length - position >= frameLength) {
      offset = sealer.sealRegularAsync(input.subarray(position, position + frameLength), out, offset, window.pending)
      position += frameLength
      await window.add(frameLength)
    }
    window.pending.push(sealer.sealFinalAsync(input.subarray(position), out, offset))
    offset += FINAL_FRAME_OVERHEAD + input.length - position
    await window.drain()
  } catch (error) {
    await Promise.allSettled(window.pending)
    throw error
  }
  if (signing !== undefined) {
    // spec: data-format/message-footer.md — the signature covers the header and the whole body.
    offset = writeFooter(await backend.signMessage(signing.curve, signing.privateKey, out.subarray(0, offset)), out, offset)
  }
  out.fill(0, offset)
  return { ciphertext: offset === out.length ? out : out.subarray(0, offset), header: session.header }
}

/**
 * The error of the first call listed that failed: the earliest frame's, whichever call failed first in time
 * (`Promise.all` rejects with the first in time). Decrypt reports that frame, as node:crypto's in-order frames do.
 */
export function earliestFailure(settled: PromiseSettledResult<unknown>[]): unknown {
  return settled.find((result): result is PromiseRejectedResult => result.status === 'rejected')?.reason
}

/**
 * Decrypt every frame of a scanned message into a fresh buffer. On any failure the buffer is zeroed before
 * the error (the first failing frame's) is thrown; the caller checks the signature.
 */
export async function openBodyAsync(
  backend: CryptoBackend,
  ciphertext: Uint8Array,
  parsed: ParsedHeader,
  plaintextLength: number,
  opener: FrameOpener,
): Promise<Bytes> {
  const plaintext = backend.allocate(plaintextLength)
  const window = new Window()
  try {
    const reader = new ByteReader(ciphertext, parsed.length)
    const { contentType, frameLength } = parsed.header
    if (contentType === 'non-framed') {
      window.pending.push(opener.openAsync(readNonFramedBody(reader), plaintext, 0))
    } else {
      let offset = 0
      for (let sequenceNumber = 1; ; sequenceNumber++) {
        const frame = readFrame(reader, frameLength, sequenceNumber)
        window.pending.push(opener.openAsync(frame, plaintext, offset))
        offset += frame.content.length
        if (frame.final) break
        await window.add(frame.content.length)
      }
    }
    await window.drain()
    return plaintext
  } catch (error) {
    // Let calls still in flight finish before zeroing, so none writes plaintext after it.
    const settled = await Promise.allSettled(window.pending)
    plaintext.fill(0)
    throw earliestFailure(settled) ?? error
  }
}
