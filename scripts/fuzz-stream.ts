/**
 * The fuzzer's second path: the same mutated message written to `decryptStream` in pieces of random sizes
 * (Node's, or the browser build's on WebCrypto, whose frames open asynchronously).
 * A stream may emit frames it has authenticated before it fails, so its checks differ from one-shot decrypt's:
 * it must fail (with an `EnvelopeError`, in time), and what it emitted must be the start of the original
 * message's plaintext, the only bytes that authenticate under the message's key.
 */
import { performance } from 'node:perf_hooks'

import { decryptStream as browserDecryptStream } from '../src/browser.js'
import { EnvelopeError, decryptStream } from '../src/index.js'
import type { Build, FailureKind } from './fuzz-lib.js'

type StreamKeyring = Parameters<typeof decryptStream>[0]

/** How a stream ended: what it emitted, and its error (`EnvelopeError` code) or none. */
export interface StreamOutcome {
  readonly kind: 'accepted' | 'rejected' | 'foreign' | 'hang'
  readonly code?: string
  readonly error?: unknown
  readonly emitted: Uint8Array
  readonly durationMs: number
}

/** What a fuzz input is written in. */
export interface PieceRng {
  int(n: number): number
  range(lo: number, hi: number): number
}

/**
 * Piece sizes for a message of `length` bytes: one byte each (short messages only, for time), small, mid-sized,
 * or the whole message at once. The sizes are used in turn, again and again, until the message is written.
 */
export function pieceSizes(rng: PieceRng, length: number): number[] {
  switch (rng.int(length <= 4096 ? 4 : 3)) {
    case 0:
      return [length]
    case 1:
      return Array.from({ length: 16 }, () => rng.range(1, 64))
    case 2:
      return Array.from({ length: 16 }, () => rng.range(1, 4096))
    default:
      return [1]
  }
}

/** `message` cut into pieces of `sizes`, used in turn until the message is cut. */
export function* piecesOf(message: Uint8Array, sizes: readonly number[]): Generator<Uint8Array> {
  for (let at = 0, index = 0; at < message.length; index++) {
    const size = sizes[index % sizes.length] as number
    yield message.slice(at, at + size)
    at += size
  }
}

/** Decrypt `message` through `build`'s decrypt stream written in `pieces`; abandoned after `hangMs`. */
export async function streamDecrypt(
  keyring: StreamKeyring,
  message: Uint8Array,
  pieces: readonly number[],
  hangMs: number,
  build: Build = 'node',
): Promise<StreamOutcome> {
  const started = performance.now()
  const chunks: Uint8Array[] = []
  const emitted = () => Uint8Array.from(Buffer.concat(chunks))
  let timer: ReturnType<typeof setTimeout> | undefined
  const hang = new Promise<'hang'>((resolve) => {
    timer = setTimeout(() => resolve('hang'), hangMs)
  })
  const run = async (): Promise<void> => {
    const stream = (build === 'browser' ? browserDecryptStream : decryptStream)(keyring, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })
    stream.header.catch(() => undefined) // its failure is the readable's
    const reader = stream.readable.getReader()
    const reading = (async () => {
      for (let next = await reader.read(); !next.done; next = await reader.read()) chunks.push(next.value)
    })()
    reading.catch(() => undefined)
    const writer = stream.writable.getWriter()
    try {
      for (const piece of piecesOf(message, pieces)) await writer.write(piece)
      await writer.close()
    } catch {
      // the readable reports the stream's error
    }
    await reading
  }
  let settled: unknown
  try {
    settled = await Promise.race([run().then(() => 'done' as const), hang])
  } catch (error) {
    settled = { error }
  } finally {
    clearTimeout(timer)
  }
  const durationMs = performance.now() - started
  if (settled === 'hang') return { kind: 'hang', emitted: emitted(), durationMs }
  if (settled === 'done') return { kind: 'accepted', emitted: emitted(), durationMs }
  const { error } = settled as { error: unknown }
  if (error instanceof EnvelopeError) return { kind: 'rejected', code: String(error.code), emitted: emitted(), durationMs }
  return { kind: 'foreign', error, emitted: emitted(), durationMs }
}

/**
 * Error codes that blame the library, the caller's setup or a keyring, not the message: a changed message must fail
 * with a code that says what is wrong with it (MALFORMED_MESSAGE, FRAME_AUTHENTICATION_FAILED, ...), never these.
 */
export const NOT_THE_MESSAGES_FAULT: ReadonlySet<string> = new Set(['INTERNAL_ERROR', 'INVALID_CONFIGURATION', 'KEYRING_FAILURE', 'ABORTED', 'ENVELOPE_ERROR'])

/** What is wrong with how a stream ended on a mutated message, or undefined when nothing is. */
export function streamFinding(outcome: StreamOutcome, originalPlaintext: Uint8Array, slowMs: number): { kind: FailureKind; detail: string } | undefined {
  const { emitted } = outcome
  const prefix = emitted.length <= originalPlaintext.length && emitted.every((byte, index) => byte === originalPlaintext[index])
  if (!prefix) {
    return {
      kind: 'unauthenticated-output',
      detail: `decryptStream emitted ${emitted.length} bytes that are not the start of the original ${originalPlaintext.length}-byte plaintext`,
    }
  }
  if (outcome.kind === 'accepted') return { kind: 'accepted-mutation', detail: `decryptStream ended without an error, after emitting ${emitted.length} bytes` }
  if (outcome.kind === 'hang') return { kind: 'hang', detail: 'decryptStream did not end' }
  if (outcome.kind === 'foreign') {
    const error = outcome.error
    return { kind: 'non-envelope-error', detail: `decryptStream: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}` }
  }
  if (outcome.kind === 'rejected' && NOT_THE_MESSAGES_FAULT.has(outcome.code ?? '')) {
    return { kind: 'misplaced-error', detail: `decryptStream failed with ${outcome.code}, which blames the library or the caller, not the message` }
  }
  if (outcome.durationMs > slowMs) return { kind: 'slow', detail: `decryptStream took ${outcome.durationMs.toFixed(1)} ms (limit ${slowMs} ms)` }
  return undefined
}
