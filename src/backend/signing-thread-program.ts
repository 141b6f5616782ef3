// The signing thread's own program (see signing-thread.ts, which starts it and talks to it), and the layout of
// the shared memory a one-shot job's bytes pass through.

/** How long the main thread waits for the thread to make room in the ring before signing inline instead. */
export const STALL_LIMIT_MS = 2000

// Control words at the start of each job's shared memory (Int32Array indexes).
export const PUBLISHED = 0 // bytes of the message written into the ring so far (by the main thread)
export const CONSUMED = 1 // bytes of the message hashed so far (by the thread)
export const ABANDONED = 2 // 1 when the main thread gave up on this job
export const CONTROL_BYTES = 16

/**
 * The thread's program (CommonJS, evaluated). Two kinds of work, taken in the order they are posted:
 * - A one-shot job: hash the ring's bytes as they are published until the whole signed part of the message has
 *   been read, then sign, and post the DER signature back (or none on any failure, and the main thread signs
 *   inline). Waits time out, so an abandoned job never holds the thread.
 * - A stream job ('stream', then 'data' messages, then 'end' or 'drop'): hash each posted copy of the stream's
 *   bytes and hand it back (the stream fills it again), which tells the stream how far behind the thread is; at
 *   the end, sign and post the signature (or none on failure). Nothing blocks: many streams interleave.
 */
export const THREAD_PROGRAM = `
const { parentPort } = require('node:worker_threads')
const { createSign } = require('node:crypto')
const streams = new Map()
function signRing(job) {
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
  parentPort.postMessage({ id: job.id, result: signature })
}
function endStream(job) {
  const signer = streams.get(job.id)
  streams.delete(job.id)
  let signature = null
  try {
    signature = signer.sign({ key: job.key, dsaEncoding: 'der' })
  } catch {}
  parentPort.postMessage({ id: job.id, result: signature })
}
parentPort.on('message', (job) => {
  switch (job.kind) {
    case 'stream':
      streams.set(job.id, createSign(job.hash))
      break
    case 'data':
      streams.get(job.id)?.update(job.bytes)
      parentPort.postMessage({ id: job.id, hashed: job.bytes }, [job.bytes.buffer])
      break
    case 'end':
      endStream(job)
      break
    case 'drop':
      streams.delete(job.id)
      break
    default:
      signRing(job)
  }
})
parentPort.postMessage({ ready: true })
`
