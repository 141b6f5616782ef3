// Off-thread message signatures for one-shot encrypt on Node. A signed message's signature covers a hash of
// the whole message, and node:crypto offers no asynchronous incremental hash: signing inline costs a SHA-384 of
// every byte after the AES-GCM that wrote them, then the ECDSA signature itself. Here one helper thread hashes
// the message as the main thread writes it (the two run side by side) and then signs, while the main thread
// returns to the event loop. The bytes pass through a small shared ring, so a message (up to 2 GiB) costs the
// ring's memory, not a second copy of the message.
//
// Everything here is an optimization with a fallback: until the thread has started, when it has failed, or when
// a message does not qualify, the caller signs inline as before (startOffThreadSignature returns undefined, or
// finish() resolves undefined and the caller hashes the message itself).
import type { KeyObject } from 'node:crypto'
import { availableParallelism } from 'node:os'
import type { Worker } from 'node:worker_threads'
import type { CurveName } from '../suites.js'
import type { OffThreadSignature } from './types.js'

/**
 * Messages smaller than this sign inline. The thread saves the smaller of the AES-GCM and hash times and costs
 * a copy into the ring and two hand-offs between threads (0.1-0.2 ms each on a small VM): measured neutral at
 * 512 KiB, a gain from 1 MiB.
 */
export const OFF_THREAD_SIGNING_MIN = 1024 * 1024
/** The shared ring each message streams through to the thread. */
const RING_LENGTH = 1024 * 1024
/** How long the main thread waits for the thread to make room in the ring before signing inline instead. */
const STALL_LIMIT_MS = 2000

// Control words at the start of each job's shared memory (Int32Array indexes).
const PUBLISHED = 0 // bytes of the message written into the ring so far (by the main thread)
const CONSUMED = 1 // bytes of the message hashed so far (by the thread)
const ABANDONED = 2 // 1 when the main thread gave up on this job
const CONTROL_BYTES = 16

/** The digest each curve's message signatures use (the suite table pairs them the same way). */
export const SIGNATURE_HASH: Record<CurveName, string> = { 'P-256': 'sha256', 'P-384': 'sha384' }

/**
 * The thread's program (CommonJS, evaluated). For each job: hash the ring's bytes as they are published until
 * the whole signed part of the message has been read, then sign, and post the DER signature back (or none on
 * any failure, and the main thread signs inline). Waits time out, so an abandoned job never holds the thread.
 */
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createSign } = require('node:crypto')
parentPort.on('message', (job) => {
  const control = new Int32Array(job.shared, 0, 4)
  const ring = new Uint8Array(job.shared, ${CONTROL_BYTES})
  let signature = null
  try {
    const signer = createSign(job.hash)
    let consumed = 0
    while (consumed < job.signedLength) {
      if (Atomics.load(control, ${ABANDONED}) === 1) throw new Error('abandoned')
      const published = Atomics.load(control, ${PUBLISHED})
      if (published === consumed) {
        if (Atomics.wait(control, ${PUBLISHED}, published, ${STALL_LIMIT_MS}) === 'timed-out') throw new Error('stalled')
        continue
      }
      for (let from = consumed % ring.length, left = published - consumed; left > 0; from = 0) {
        const take = Math.min(left, ring.length - from)
        signer.update(ring.subarray(from, from + take))
        left -= take
      }
      consumed = published
      Atomics.store(control, ${CONSUMED}, consumed)
      Atomics.notify(control, ${CONSUMED})
    }
    signature = signer.sign({ key: job.key, dsaEncoding: 'der' })
  } catch {}
  parentPort.postMessage({ id: job.id, signature })
})
parentPort.postMessage({ ready: true })
`

type Pending = (signature: Uint8Array | undefined) => void

/** How many messages were signed on the thread, and how many jobs it could not finish (signed inline). */
export const offThreadSigningCounts = { signed: 0, fellBack: 0 }

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
/** Rings of finished jobs, kept for the next ones (they hold ciphertext only, never keys). */
const spareRings: SharedArrayBuffer[] = []
const MAX_SPARE_RINGS = 2

function settleAll(): void {
  for (const resolve of pending.values()) resolve(undefined)
  pending.clear()
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
    thread = new WorkerThread(THREAD_SOURCE, { eval: true, name: 'kms-envelope signing', execArgv: [] })
  } catch {
    failed = true
    announceReadiness?.(false)
    return
  }
  worker = thread
  thread.on('message', (message: { ready?: true; id?: number; signature?: Uint8Array | null }) => {
    if (message.ready === true) {
      ready = true
      announceReadiness?.(true)
      return
    }
    const resolve = pending.get(message.id as number)
    if (resolve === undefined) return
    pending.delete(message.id as number)
    if (pending.size === 0 && awaitingReadiness === 0) thread.unref()
    resolve(message.signature ?? undefined)
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
  // Referenced only while a job is pending or someone awaits signingThreadReady, so it never holds the process
  // open otherwise. After the listeners: adding a 'message' listener references the thread again.
  if (awaitingReadiness === 0) thread.unref()
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
  if (!ready || worker === undefined) return undefined
  const thread = worker
  const shared = spareRings.pop() ?? new SharedArrayBuffer(CONTROL_BYTES + RING_LENGTH)
  const control = new Int32Array(shared, 0, 4)
  control.fill(0)
  const ring = new Uint8Array(shared, CONTROL_BYTES)
  const id = nextId++
  const signature = new Promise<Uint8Array | undefined>((resolve) => pending.set(id, resolve))
  if (pending.size === 1) thread.ref()
  try {
    thread.postMessage({ id, shared, signedLength, hash: SIGNATURE_HASH[curve], key: privateKey as KeyObject })
  } catch {
    pending.delete(id)
    if (pending.size === 0 && awaitingReadiness === 0) thread.unref()
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

/** Jobs handed to the thread whose signature has not come back yet. */
export function offThreadJobsPending(): number {
  return pending.size
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
    if (pending.size === 0 && awaitingReadiness === 0) worker?.unref()
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
