// Off-thread message signatures on Node. A signed message's signature covers a hash of the whole message, and
// node:crypto offers no asynchronous incremental hash: signing inline costs a SHA-384 of every byte after the
// AES-GCM that wrote them, then the ECDSA signature itself. Here one helper thread hashes the message as the main
// thread writes it (the two run side by side) and then signs, while the main thread goes on.
// - One-shot encrypt: the bytes pass through a small shared ring, so a message (up to 2 GiB) costs the ring's
//   memory, not a second copy. Everything is an optimization with a fallback: until the thread has started, when
//   it has failed, or when a message does not qualify, the caller signs inline (startOffThreadSignature returns
//   undefined, or finish() resolves undefined and the caller hashes the message itself).
// - Encrypted streams: copies of the bytes are posted in pieces, and the thread hands each piece back once
//   hashed. A stream cannot fall back (its earlier bytes are gone), so it uses the thread only if it runs when the
//   stream begins (startStreamDigest).
import type { KeyObject } from 'node:crypto'
import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import type { CurveName } from '../suites.js'
import { SIGNATURE_HASH, unusableSigningKey } from './node-ec-keys.js'
import { ABANDONED, CONSUMED, CONTROL_BYTES, PUBLISHED, STALL_LIMIT_MS, THREAD_PROGRAM } from './signing-thread-program.js'
import type { OffThreadSignature, StreamDigest } from './types.js'
import { whenCollected } from '../when-collected.js'

/**
 * Messages smaller than this sign inline. The thread saves the smaller of the AES-GCM and hash times and costs
 * a copy into the ring and two hand-offs between threads (0.1-0.2 ms each on a small VM): measured neutral at
 * 512 KiB, a gain from 1 MiB.
 */
export const OFF_THREAD_SIGNING_MIN = 1024 * 1024
/** The shared ring each message streams through to the thread. */
const RING_LENGTH = 1024 * 1024
/** Awaits a job's DER signature, or undefined when the thread could not make it. */
type Pending = (signature: Uint8Array | undefined) => void

/**
 * How many one-shot messages were signed on the thread, how many such jobs it could not finish (signed inline),
 * and how many streams it signed (tests).
 */
export const offThreadSigningCounts = { signed: 0, fellBack: 0, streamsSigned: 0 }

let worker: Worker | undefined
let ready = false
let failed = false
let stopping: Worker | undefined
let launching = false
let readiness: Promise<boolean> | undefined
/** Callers of signingThreadReady still waiting for its answer: the thread holds the process open for them. */
let awaitingReadiness = 0
let announceReadiness: ((isReady: boolean) => void) | undefined
let nextId = 1
const pending = new Map<number, Pending>()
/** Stream byte copies posted to the thread and not yet acknowledged: the thread holds the process open for them. */
let unacknowledged = 0
/** Open stream jobs, told when the thread acknowledges bytes or stops. */
const streamJobs = new Map<number, StreamJobEvents>()
/** Rings of finished jobs, kept for the next ones (they hold ciphertext only, never keys). */
const spareRings: SharedArrayBuffer[] = []
const MAX_SPARE_RINGS = 2

interface StreamJobEvents {
  /** The thread hashed this piece and hands it back. */
  acknowledged(hashed: Uint8Array): void
  lost(): void
}

function settleAll(): void {
  for (const resolve of pending.values()) resolve(undefined)
  pending.clear()
  for (const job of streamJobs.values()) job.lost()
  streamJobs.clear()
  sparePieces.length = 0
  unacknowledged = 0
}

/**
 * Reference the thread only while it owes an answer (a signature, or a stream's piece back) or someone
 * awaits signingThreadReady: an idle thread, or a stream waiting for its next chunk, never holds the process open.
 */
function holdOpenWhileBusy(thread: Worker | undefined): void {
  if (pending.size > 0 || unacknowledged > 0 || awaitingReadiness > 0) thread?.ref()
  else thread?.unref()
}

/**
 * Start the thread. node:worker_threads is loaded here, on first use: loading it adds about 0.5 MB of memory to
 * a process, which one that never signs a large message should not pay. Until it has loaded, `launching`.
 */
function startThread(): void {
  launching = true
  readiness = new Promise((resolve) => (announceReadiness = resolve))
  import('node:worker_threads').then(
    ({ Worker: WorkerThread }) => {
      launching = false
      launch(WorkerThread)
    },
    () => {
      launching = false
      failed = true
      announceReadiness?.(false)
    },
  )
}

function launch(WorkerThread: typeof Worker): void {
  let thread: Worker
  try {
    // No inherited execArgv: the program is CommonJS whatever the process runs with (--input-type=module,
    // loaders such as --import tsx), and needs none of it. OpenSSL's configuration is the process's own.
    thread = new WorkerThread(THREAD_PROGRAM, { eval: true, name: 'kms-envelope signing', execArgv: [] })
  } catch {
    failed = true
    announceReadiness?.(false)
    return
  }
  worker = thread
  thread.on('message', (message: { ready?: true; hashed?: Uint8Array; id?: number; result?: Uint8Array | null }) => {
    if (message.ready === true) {
      ready = true
      announceReadiness?.(true)
      return
    }
    if (message.hashed !== undefined) {
      unacknowledged--
      if (unacknowledged === 0) holdOpenWhileBusy(thread)
      streamJobs.get(message.id as number)?.acknowledged(message.hashed)
      return
    }
    const resolve = pending.get(message.id as number)
    if (resolve === undefined) return
    pending.delete(message.id as number)
    holdOpenWhileBusy(thread)
    resolve(message.result ?? undefined)
  })
  const fail = (): void => {
    if (worker !== thread) return // already stopped
    // A thread that stopped on its own will not be started again: every message signs inline from now on.
    if (thread !== stopping) failed = true
    ready = false
    worker = undefined
    readiness = undefined
    announceReadiness?.(false)
    settleAll()
  }
  thread.on('error', fail)
  thread.on('exit', fail)
  // After the listeners: adding a 'message' listener references the thread again.
  holdOpenWhileBusy(thread)
}

/** Block until the thread has hashed past `consumed`; 'timed-out' or 'refused' (no blocking on this thread). */
function waitForRoom(control: Int32Array, consumed: number): 'ok' | 'timed-out' | 'refused' {
  try {
    const outcome = Atomics.wait(control, CONSUMED, consumed, STALL_LIMIT_MS)
    return outcome === 'timed-out' ? outcome : 'ok'
  } catch {
    return 'refused' // some embedders forbid Atomics.wait on their main thread
  }
}

/** True when the thread is worth starting: more than one CPU to run it on. */
const useful = availableParallelism() > 1

/**
 * Begin signing a message of `signedLength` bytes (header and body) on the helper thread, or undefined when
 * the caller should sign inline: a small message, one CPU, or the thread not (yet) running. The first
 * qualifying message starts the thread and signs inline; later ones use it once it has started.
 */
export function startOffThreadSignature(curve: CurveName, privateKey: unknown, signedLength: number): OffThreadSignature | undefined {
  if (!useful || failed || signedLength < OFF_THREAD_SIGNING_MIN || signedLength > 0x7fffffff) return undefined
  if (worker === undefined && !launching) startThread()
  // With streams' pieces queued ahead of it, the job would wait for them, and a message larger than the ring
  // would block this thread meanwhile: the thread is busy, so sign inline.
  if (!ready || worker === undefined || unacknowledged > 0) return undefined
  const thread = worker
  const shared = spareRings.pop() ?? new SharedArrayBuffer(CONTROL_BYTES + RING_LENGTH)
  const control = new Int32Array(shared, 0, 4)
  control.fill(0)
  const ring = new Uint8Array(shared, CONTROL_BYTES)
  const id = nextId++
  const signature = new Promise<Uint8Array | undefined>((resolve) => pending.set(id, resolve))
  holdOpenWhileBusy(thread)
  try {
    thread.postMessage({ id, shared, signedLength, hash: SIGNATURE_HASH[curve], key: privateKey as KeyObject })
  } catch {
    pending.delete(id)
    holdOpenWhileBusy(thread)
    return undefined
  }
  let published = 0
  let abandoned = false
  const abandon = (): void => {
    if (abandoned) return
    abandoned = true
    Atomics.store(control, ABANDONED, 1)
    Atomics.notify(control, PUBLISHED)
  }
  return {
    publish(message, from, to) {
      if (abandoned) return false
      while (from < to) {
        const consumed = Atomics.load(control, CONSUMED)
        const free = RING_LENGTH - (published - consumed)
        if (free === 0) {
          // The thread is behind (hashing, or still signing an earlier message): wait for room.
          if (waitForRoom(control, consumed) !== 'ok') {
            abandon()
            return false
          }
          continue
        }
        const at = published % RING_LENGTH
        const length = Math.min(free, to - from, RING_LENGTH - at)
        ring.set(message.subarray(from, from + length), at)
        published += length
        from += length
        Atomics.store(control, PUBLISHED, published)
        Atomics.notify(control, PUBLISHED)
      }
      return true
    },
    async finish() {
      const result = abandoned || published !== signedLength ? (abandon(), undefined) : await signature
      // The ring can serve again once the thread is done with it (it posts only after its last read).
      if (!abandoned && spareRings.length < MAX_SPARE_RINGS) spareRings.push(shared)
      if (result === undefined) offThreadSigningCounts.fellBack++
      else offThreadSigningCounts.signed++
      return result
    },
    abandon,
  }
}

/**
 * A stream's bytes are copied into pieces of this size before they go to the thread: one message (and one
 * acknowledgement) per piece rather than per chunk, with a copy the thread may keep (transferred, not cloned).
 */
const STREAM_PIECE_LENGTH = 256 * 1024
/**
 * Pieces the thread has hashed come back to be filled again (allocating each anew costs more than copying into
 * it), up to one stream's lag of them; they are let go when no stream job is open.
 */
const sparePieces: Uint8Array[] = []
/**
 * How far the thread may fall behind a stream: past this many bytes posted and not yet hashed, `update` asks the
 * stream to wait, and it may go on once the thread is within half of it. Bounds the memory a fast producer holds.
 */
const STREAM_MAX_BEHIND = 4 * 1024 * 1024
const MAX_SPARE_PIECES = STREAM_MAX_BEHIND / STREAM_PIECE_LENGTH

/** A stream job is over: with none left open, the spare pieces go. */
function endStreamJob(id: number): void {
  streamJobs.delete(id)
  if (streamJobs.size === 0) sparePieces.length = 0
}

/**
 * A stream dropped unfinished (neither signed nor abandoned: its writer let go after an error, say) would keep its
 * job open for good, and with it a piece of up to 256 KiB here and a hash on the thread: once the stream's digest
 * is collected, its job ends. Jobs that ended before are no longer in `streamJobs`, and ids are never reused.
 * Made apart from `startStreamDigest`, whose closures would share the digest's state (see `whenCollected`).
 */
function dropJob(id: number, thread: Worker): () => void {
  return () => {
    if (!streamJobs.has(id)) return
    endStreamJob(id)
    if (thread === worker) thread.postMessage({ kind: 'drop', id })
  }
}

/**
 * Begin hashing an encrypted stream's signed bytes on the helper thread, to sign them at the end; or undefined
 * when the thread is not running (one CPU, not started yet, or failed), and the stream hashes its bytes itself.
 * Unlike a one-shot message, a stream cannot fall back once it has begun (its earlier bytes are gone): when the
 * thread stops meanwhile, `sign` resolves undefined.
 */
export function startStreamDigest(curve: CurveName): StreamDigest | undefined {
  if (!useful || failed || !ready || worker === undefined) return undefined
  const thread = worker
  const id = nextId++
  try {
    thread.postMessage({ kind: 'stream', id, hash: SIGNATURE_HASH[curve] })
  } catch {
    return undefined
  }
  let piece: Uint8Array | undefined
  let pieceLength = 0
  let behind = 0
  let lost = false
  let ended = false
  /** While the thread is too far behind: settles once it has caught up (or stopped, or the job ended). */
  let caughtUp: { promise: Promise<void>; resolve: () => void } | undefined
  const wake = (): void => {
    const waiting = caughtUp
    caughtUp = undefined
    waiting?.resolve()
  }
  streamJobs.set(id, {
    acknowledged(hashed) {
      behind -= hashed.length
      spare(hashed)
      if (behind <= STREAM_MAX_BEHIND / 2) wake()
    },
    lost() {
      lost = true
      wake()
    },
  })
  const post = (bytes: Uint8Array): void => {
    if (lost) return
    behind += bytes.length // before the transfer, which empties `bytes`
    thread.postMessage({ kind: 'data', id, bytes }, [bytes.buffer as ArrayBuffer])
    if (unacknowledged++ === 0) holdOpenWhileBusy(thread)
  }
  const spare = (unused: Uint8Array | undefined): void => {
    if (unused?.length === STREAM_PIECE_LENGTH && sparePieces.length < MAX_SPARE_PIECES) sparePieces.push(unused)
  }
  const flushPiece = (): void => {
    if (piece === undefined || pieceLength === 0) return
    if (pieceLength === STREAM_PIECE_LENGTH) post(piece)
    else {
      post(piece.slice(0, pieceLength))
      spare(piece)
    }
    piece = undefined
    pieceLength = 0
  }
  // Nothing the job keeps (its events above, the closures below) may refer to this object, or it is never collected.
  const digest: StreamDigest = {
    update(bytes) {
      if (ended || lost) return undefined
      if (pieceLength === 0 && bytes.length >= STREAM_PIECE_LENGTH) post(new Uint8Array(bytes))
      else {
        for (let from = 0; from < bytes.length; ) {
          piece ??= sparePieces.pop() ?? new Uint8Array(STREAM_PIECE_LENGTH)
          const take = Math.min(STREAM_PIECE_LENGTH - pieceLength, bytes.length - from)
          piece.set(bytes.subarray(from, from + take), pieceLength)
          pieceLength += take
          from += take
          if (pieceLength === STREAM_PIECE_LENGTH) flushPiece()
        }
      }
      if (behind <= STREAM_MAX_BEHIND || lost) return undefined
      if (caughtUp === undefined) {
        let resolve = (): void => undefined
        const promise = new Promise<void>((settle) => (resolve = settle))
        caughtUp = { promise, resolve }
      }
      return caughtUp.promise
    },
    async sign(privateKey) {
      if (ended) throw new Error('A stream digest is signed once.')
      ended = true
      flushPiece()
      if (lost) return undefined
      try {
        thread.postMessage({ kind: 'end', id, key: privateKey as KeyObject })
      } catch (error) {
        thread.postMessage({ kind: 'drop', id })
        endStreamJob(id)
        throw unusableSigningKey(error) // a key that cannot be sent to the thread
      }
      const signature = await new Promise<Uint8Array | undefined>((resolve) => {
        pending.set(id, resolve)
        holdOpenWhileBusy(thread)
      })
      endStreamJob(id)
      if (lost) return undefined // the thread stopped (its jobs were settled empty)
      if (signature === undefined) throw unusableSigningKey()
      offThreadSigningCounts.streamsSigned++
      return signature
    },
    abandon() {
      if (ended) return
      ended = true
      piece = undefined
      endStreamJob(id)
      wake()
      if (!lost) thread.postMessage({ kind: 'drop', id })
    },
  }
  whenCollected(digest, dropJob(id, thread))
  return digest
}

/** Start the thread when it can run here and is not running, without waiting for it. */
export function prepareSigningThread(): void {
  if (useful && !failed && worker === undefined && !launching) startThread()
}

/** Jobs handed to the thread whose signature has not come back yet. */
export function offThreadJobsPending(): number {
  return pending.size
}

/** Stream jobs open on the thread (tests). */
export function openStreamJobs(): number {
  return streamJobs.size
}

/** Start the thread if it is not running; true once it can take messages, false when it cannot run here. */
export function signingThreadReady(): Promise<boolean> {
  if (!useful || failed) return Promise.resolve(false)
  if (ready) return Promise.resolve(true)
  if (worker === undefined && !launching) startThread()
  if (readiness === undefined) return Promise.resolve(false)
  // Someone waits for the answer: hold the process open until it comes (an idle thread does not).
  awaitingReadiness++
  worker?.ref()
  return readiness.finally(() => {
    awaitingReadiness--
    holdOpenWhileBusy(worker)
  })
}

/** Stop the thread (tests); jobs in progress are signed inline, and the next qualifying message starts it again. */
export async function stopSigningThread(): Promise<void> {
  if (launching) await readiness
  const thread = worker
  failed = false
  if (thread === undefined) return
  stopping = thread
  await new Promise((resolve) => {
    thread.once('exit', resolve)
    void thread.terminate()
  })
  stopping = undefined
}
