// A hang detector for the benchmark's main thread. A deadlocked main thread cannot run its own
// timers, so a worker thread watches a heartbeat counter in shared memory; if the counter stops
// moving for `limitMs`, the worker prints what was running and kills the process, instead of the
// benchmark sitting idle forever.

import { Worker } from 'node:worker_threads'

const LABEL_BYTES = 256
let counter
let label
let timer

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads')
const { writeSync } = require('node:fs')
const counter = new Int32Array(workerData.counterBuffer)
const label = new Uint8Array(workerData.labelBuffer)
let last = Atomics.load(counter, 0)
let since = Date.now()
setInterval(() => {
  const now = Atomics.load(counter, 0)
  if (now !== last) { last = now; since = Date.now(); return }
  if (Date.now() - since < workerData.limitMs) return
  const end = label.indexOf(0)
  const what = Buffer.from(label.subarray(0, end < 0 ? label.length : end)).toString('utf8')
  writeSync(2, '\\nHANG: the benchmark main thread made no progress for ' + Math.round((Date.now() - since) / 1000) +
    ' s while running: ' + what + '\\n' +
    'The main thread is blocked (a deadlock, not slow code). Killing the process.\\n')
  process.kill(process.pid, 'SIGKILL')
}, 1000)
`

export function startWatchdog(limitMs) {
  const counterBuffer = new SharedArrayBuffer(4)
  const labelBuffer = new SharedArrayBuffer(LABEL_BYTES)
  counter = new Int32Array(counterBuffer)
  label = new Uint8Array(labelBuffer)
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { counterBuffer, labelBuffer, limitMs } })
  worker.unref()
  // beats whenever the event loop turns; the measuring loops also beat per operation
  timer = setInterval(beat, 1000)
  timer.unref()
}

/** Cheap enough to call per operation. */
export function beat() {
  if (counter) Atomics.add(counter, 0, 1)
}

/** Say what is running now, for the hang message. */
export function task(text) {
  beat()
  if (!label) return
  const bytes = Buffer.from(String(text), 'utf8').subarray(0, LABEL_BYTES - 1)
  label.fill(0)
  label.set(bytes)
}
