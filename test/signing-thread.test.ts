// One-shot encrypt of a signed message of 1 MiB or more hashes and signs it on a helper thread while the
// message is written (src/backend/signing-thread.ts). These tests check that such messages verify, here and in
// the official SDK, on every signing suite and curve; that a job the thread cannot finish is signed inline;
// that a thread that cannot start, or stops on its own, is not tried again; and that the thread never holds a
// process open.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Worker } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { generateKeyPairSync } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { nodeBackend } from '../src/backend/node.js'
import {
  OFF_THREAD_SIGNING_MIN,
  offThreadJobsPending,
  offThreadSigningCounts,
  signingThreadReady,
  startOffThreadSignature,
  stopSigningThread,
} from '../src/backend/signing-thread.js'
import type { AeadKey, CryptoBackend, OffThreadSignature, StreamDigest } from '../src/backend/types.js'
import { encryptWith } from '../src/encrypt.js'
import { decrypt, encrypt } from '../src/index.js'
import { sealBody, type StartSignature } from '../src/sync-body.js'
import { CHILD_TIMEOUT, collectGarbageFor, policyFor, rejectionOf, runModuleScript } from './helpers/fixtures.js'
import { decryptPolicyFor, hex16, officialDecrypt, officialKeyring } from './helpers/official.js'
import { keyring, MiB, plaintextOf, SIGNING_SUITES, spec } from './helpers/signing-thread.js'
import { signatureLength } from './helpers/wire.js'


/** Counts of jobs signed on the thread and signed inline after it failed, since `before`. */
function countsSince(before: typeof offThreadSigningCounts): { signed: number; fellBack: number } {
  return { signed: offThreadSigningCounts.signed - before.signed, fellBack: offThreadSigningCounts.fellBack - before.fellBack }
}

beforeAll(async () => {
  expect(await signingThreadReady()).toBe(true)
})
afterAll(() => stopSigningThread())

describe('messages signed on the helper thread', () => {
  it.each(SIGNING_SUITES.map((suite) => [hex16(suite), suite] as const))('suite %s: verifies here and in the official SDK', async (_, algorithmSuite) => {
    const plaintext = plaintextOf(OFF_THREAD_SIGNING_MIN + 12_345, algorithmSuite)
    const before = { ...offThreadSigningCounts }
    const { ciphertext, header } = await encrypt(keyring, plaintext, {
      algorithmSuite,
      frameLength: 4096,
      commitmentPolicy: policyFor(algorithmSuite),
      encryptionContext: { purpose: 'signing thread' },
    })
    expect(countsSince(before)).toEqual({ signed: 1, fellBack: 0 })
    const ours = await decrypt(keyring, ciphertext, { commitmentPolicy: policyFor(algorithmSuite) })
    expect(Buffer.from(ours.plaintext).equals(Buffer.from(plaintext))).toBe(true)
    const theirs = await officialDecrypt(officialKeyring(spec), ciphertext, { commitmentPolicy: decryptPolicyFor(algorithmSuite) })
    expect(Buffer.from(theirs.plaintext).equals(Buffer.from(plaintext))).toBe(true)
    expect(theirs.header.encryptionContext).toEqual(header.encryptionContext)
  })

  it('messages larger than the ring, frames larger than the ring, and many at once', async () => {
    const cases = [
      { length: 3 * MiB + 17, frameLength: 4096 },
      { length: 3 * MiB, frameLength: 1536 * 1024 }, // one frame is larger than the 1 MiB ring
      { length: 2 * MiB - 1, frameLength: 65536 },
    ]
    const before = { ...offThreadSigningCounts }
    const results = await Promise.all(
      [...cases, ...cases].map(async ({ length, frameLength }, index) => {
        const plaintext = plaintextOf(length, index)
        const { ciphertext } = await encrypt(keyring, plaintext, { algorithmSuite: 0x0578, frameLength })
        const { plaintext: decrypted } = await decrypt(keyring, ciphertext)
        return Buffer.from(decrypted).equals(Buffer.from(plaintext))
      }),
    )
    expect(results).toEqual(results.map(() => true))
    expect(countsSince(before)).toEqual({ signed: 6, fellBack: 0 })
  })

  it('smaller messages (the threshold is on the whole signed message) and unsigned suites stay on the main thread', async () => {
    const before = { ...offThreadSigningCounts }
    await encrypt(keyring, plaintextOf(OFF_THREAD_SIGNING_MIN - 65536), { algorithmSuite: 0x0578 })
    await encrypt(keyring, plaintextOf(2 * MiB), { algorithmSuite: 0x0478 })
    expect(countsSince(before)).toEqual({ signed: 0, fellBack: 0 })
  })

  it('round trip (fast-check): random lengths around the threshold, frame lengths and suites', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: OFF_THREAD_SIGNING_MIN - 2048, max: OFF_THREAD_SIGNING_MIN + 300_000 }),
        fc.constantFrom(1000, 4096, 65536, 300_001),
        fc.constantFrom(...SIGNING_SUITES),
        fc.integer({ min: 0, max: 255 }),
        async (length, frameLength, algorithmSuite, seed) => {
          const plaintext = plaintextOf(length, seed)
          const commitmentPolicy = policyFor(algorithmSuite)
          const { ciphertext } = await encrypt(keyring, plaintext, { algorithmSuite, frameLength, commitmentPolicy })
          const { plaintext: decrypted } = await decrypt(keyring, ciphertext, { commitmentPolicy })
          expect(Buffer.from(decrypted).equals(Buffer.from(plaintext))).toBe(true)
          // A flipped byte in the final frame's tag is caught by the signature or the tag, as for inline signatures.
          // (A fixed distance from the end could land in a frame's header, which is MALFORMED_MESSAGE.)
          const altered = new Uint8Array(ciphertext)
          const at = altered.length - 2 - signatureLength(altered) - 1
          altered[at] = (altered[at] as number) ^ 1
          expect((await rejectionOf(decrypt(keyring, altered, { commitmentPolicy })) as { code?: string }).code).toMatch(
            /SIGNATURE_INVALID|FRAME_AUTHENTICATION_FAILED/,
          )
        },
      ),
      { numRuns: 12 },
    )
  })
})

describe('jobs the thread cannot finish', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' })

  /** A backend whose one-shot body loop uses `startSignature`. */
  const backendWith = (startSignature: StartSignature): CryptoBackend => ({
    ...nodeBackend,
    sealBody(session, input) {
      return sealBody(this, session, input, startSignature)
    },
  })

  async function roundTrip(startSignature: StartSignature): Promise<boolean> {
    const plaintext = plaintextOf(OFF_THREAD_SIGNING_MIN + 1)
    const { ciphertext } = await encryptWith(backendWith(startSignature), keyring, plaintext, { algorithmSuite: 0x0578 })
    return Buffer.from((await decrypt(keyring, ciphertext)).plaintext).equals(Buffer.from(plaintext))
  }

  beforeEach(async () => {
    expect(await signingThreadReady()).toBe(true)
  })

  it('a job that stops taking bytes part-way is abandoned and the message signed inline', async () => {
    // As the real job does on a stall: abandon itself, and answer false from then on.
    const handed = { bytes: 0, total: 0 }
    const stalling: StartSignature = (curve, key, length) => {
      const job = startOffThreadSignature(curve, key, length) as OffThreadSignature
      handed.total = length
      let calls = 0
      return {
        publish(message, from, to) {
          if (++calls >= 5) {
            job.abandon()
            return false
          }
          handed.bytes += to - from
          return job.publish(message, from, to)
        },
        finish: () => job.finish(),
        abandon: () => job.abandon(),
      }
    }
    const before = { ...offThreadSigningCounts }
    expect(await roundTrip(stalling)).toBe(true)
    expect(handed.bytes).toBeGreaterThan(0)
    expect(handed.bytes).toBeLessThan(handed.total)
    expect(countsSince(before)).toEqual({ signed: 0, fellBack: 1 })
  })

  it('on a backend without an incremental signer, a job that fails is signed whole by signMessage', async () => {
    const refusing: StartSignature = (curve, key, length) => {
      const job = startOffThreadSignature(curve, key, length) as OffThreadSignature
      return { publish: () => false, finish: () => job.finish(), abandon: () => job.abandon() }
    }
    const backend: CryptoBackend = { ...backendWith(refusing), incrementalSignatures: false }
    const signMessage = vi.spyOn(backend, 'signMessage')
    const plaintext = plaintextOf(OFF_THREAD_SIGNING_MIN + 1)
    const { ciphertext } = await encryptWith(backend, keyring, plaintext, { algorithmSuite: 0x0578 })
    expect(signMessage).toHaveBeenCalledTimes(1)
    expect(Buffer.from((await decrypt(keyring, ciphertext)).plaintext).equals(Buffer.from(plaintext))).toBe(true)
  })

  it('sealing that fails part-way abandons the job at once, and the thread goes on with the next message', async () => {
    let abandoned = 0
    const recording: StartSignature = (curve, key, length) => {
      const job = startOffThreadSignature(curve, key, length) as OffThreadSignature
      return { publish: job.publish, finish: () => job.finish(), abandon: () => (abandoned++, job.abandon()) }
    }
    // The cipher fails on the tenth frame; derived keys go through aeadKey too.
    const { adoptAeadKey: _derivedKeysGoThroughAeadKey, ...rest } = backendWith(recording)
    let seals = 0
    const failing: CryptoBackend = {
      ...rest,
      aeadKey(key) {
        const inner = nodeBackend.aeadKey(key) as AeadKey
        return {
          seal(iv, aad, plaintext, out, offset) {
            if (plaintext.length > 0 && ++seals === 10) throw new Error('cipher failure on frame 10')
            inner.seal(iv, aad, plaintext, out, offset)
          },
          open: (...args) => inner.open(...args),
        }
      },
    }
    const before = { ...offThreadSigningCounts }
    const error = await rejectionOf(encryptWith(failing, keyring, plaintextOf(OFF_THREAD_SIGNING_MIN + 1), { algorithmSuite: 0x0578 }))
    expect(error).toMatchObject({ code: 'INTERNAL_ERROR', cause: { message: 'cipher failure on frame 10' } })
    expect(abandoned).toBe(1)
    // The thread drops the job once it sees the abandonment.
    await vi.waitFor(() => expect(offThreadJobsPending()).toBe(0))
    expect(await roundTrip(startOffThreadSignature)).toBe(true)
    expect(countsSince(before)).toEqual({ signed: 1, fellBack: 0 })
  })

  it('a thread that stops mid-job: the message is signed inline, and the next one starts a new thread', async () => {
    const stoppingMidway: StartSignature = (curve, key, length) => {
      const job = startOffThreadSignature(curve, key, length) as OffThreadSignature
      let stopped: Promise<void> | undefined
      return {
        publish(message, from, to) {
          stopped ??= stopSigningThread()
          return job.publish(message, from, to)
        },
        finish: async () => (await stopped, job.finish()),
        abandon: () => job.abandon(),
      }
    }
    const before = { ...offThreadSigningCounts }
    expect(await roundTrip(stoppingMidway)).toBe(true)
    expect(countsSince(before)).toEqual({ signed: 0, fellBack: 1 })
    expect(offThreadJobsPending()).toBe(0) // the lost thread's job is not kept waiting for an answer
    expect(await signingThreadReady()).toBe(true)
    expect(await roundTrip(startOffThreadSignature)).toBe(true)
    expect(countsSince(before)).toEqual({ signed: 1, fellBack: 1 })
  })

  it('a thread that stops once a job has all its bytes: the job comes back empty (signed inline), not waited for', async () => {
    const bytes = new Uint8Array(OFF_THREAD_SIGNING_MIN)
    const job = startOffThreadSignature('P-384', privateKey, bytes.length) as OffThreadSignature
    // All but the last byte: the thread cannot sign before it stops. The last fits in the ring without the thread.
    expect(job.publish(bytes, 0, bytes.length - 1)).toBe(true)
    await stopSigningThread()
    expect(job.publish(bytes, bytes.length - 1, bytes.length)).toBe(true)
    const before = { ...offThreadSigningCounts }
    expect(await job.finish()).toBeUndefined()
    expect(countsSince(before)).toEqual({ signed: 0, fellBack: 1 })
    expect(await signingThreadReady()).toBe(true) // for the tests after
  })

  it('a job for a key the thread cannot sign with comes back empty and is signed inline (and fails there)', async () => {
    const job = startOffThreadSignature('P-384', 'not a key', OFF_THREAD_SIGNING_MIN) as OffThreadSignature
    expect(job).toBeDefined()
    expect(job.publish(new Uint8Array(OFF_THREAD_SIGNING_MIN), 0, OFF_THREAD_SIGNING_MIN)).toBe(true)
    expect(await job.finish()).toBeUndefined()
    // The real key signs.
    const good = startOffThreadSignature('P-384', privateKey, OFF_THREAD_SIGNING_MIN) as OffThreadSignature
    good.publish(new Uint8Array(OFF_THREAD_SIGNING_MIN), 0, OFF_THREAD_SIGNING_MIN)
    expect((await good.finish())?.[0]).toBe(0x30) // a DER SEQUENCE
  })

  it('a job whose caller gives up before the end is abandoned, and the thread goes on with the next', async () => {
    const job = startOffThreadSignature('P-384', privateKey, OFF_THREAD_SIGNING_MIN) as OffThreadSignature
    job.publish(new Uint8Array(1000), 0, 1000)
    job.abandon()
    expect(job.publish(new Uint8Array(1000), 0, 1000)).toBe(false)
    expect(await job.finish()).toBeUndefined()
    const next = startOffThreadSignature('P-384', privateKey, OFF_THREAD_SIGNING_MIN) as OffThreadSignature
    next.publish(new Uint8Array(OFF_THREAD_SIGNING_MIN), 0, OFF_THREAD_SIGNING_MIN)
    expect(await next.finish()).toBeInstanceOf(Uint8Array)
  })

  it('small jobs, and messages past the 2 GiB a control word can count, are refused (undefined: sign inline)', () => {
    expect(startOffThreadSignature('P-384', privateKey, OFF_THREAD_SIGNING_MIN - 1)).toBeUndefined()
    expect(startOffThreadSignature('P-384', privateKey, 2 ** 31)).toBeUndefined()
    const largest = startOffThreadSignature('P-384', privateKey, 2 ** 31 - 1)
    expect(largest).toBeDefined()
    largest?.abandon() // it would otherwise hold the thread until its wait for bytes times out
  })

  it('where the main thread may not block (Atomics.wait throws), a full ring abandons the job at once', async () => {
    // The thread waits for the first job's bytes, so the second job's ring fills and its caller must wait.
    const first = startOffThreadSignature('P-384', privateKey, OFF_THREAD_SIGNING_MIN) as OffThreadSignature
    const second = startOffThreadSignature('P-384', privateKey, 2 * OFF_THREAD_SIGNING_MIN) as OffThreadSignature
    const wait = vi.spyOn(Atomics, 'wait').mockImplementation(() => {
      throw new TypeError('Atomics.wait cannot be called in this context')
    })
    try {
      expect(second.publish(new Uint8Array(2 * OFF_THREAD_SIGNING_MIN), 0, 2 * OFF_THREAD_SIGNING_MIN)).toBe(false)
      expect(wait).toHaveBeenCalledTimes(1)
      expect(second.publish(new Uint8Array(10), 0, 10)).toBe(false) // abandoned: no more waiting
      expect(wait).toHaveBeenCalledTimes(1)
    } finally {
      wait.mockRestore()
    }
    expect(first.publish(new Uint8Array(OFF_THREAD_SIGNING_MIN), 0, OFF_THREAD_SIGNING_MIN)).toBe(true)
    expect((await first.finish())?.[0]).toBe(0x30) // a DER SEQUENCE
    expect(await second.finish()).toBeUndefined()
  })

  it('a key that cannot be sent to the thread is refused (undefined: sign inline), and the thread stays usable', async () => {
    const pending = offThreadJobsPending() // jobs of the tests before may still wait for the thread
    expect(startOffThreadSignature('P-384', () => privateKey, OFF_THREAD_SIGNING_MIN)).toBeUndefined()
    expect(offThreadJobsPending()).toBe(pending)
    const next = startOffThreadSignature('P-384', privateKey, OFF_THREAD_SIGNING_MIN) as OffThreadSignature
    next.publish(new Uint8Array(OFF_THREAD_SIGNING_MIN), 0, OFF_THREAD_SIGNING_MIN)
    expect(await next.finish()).toBeInstanceOf(Uint8Array)
  })
})

describe('the helper thread and the process', () => {
  it('does not keep a process alive once its messages are signed', async () => {
    const script = `
      const { encrypt, decrypt, RawAesKeyring } = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)})
      const { offThreadSigningCounts, signingThreadReady } = await import(${JSON.stringify(new URL('../src/backend/signing-thread.ts', import.meta.url).href)})
      const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(1) })
      await signingThreadReady()
      const { ciphertext } = await encrypt(keyring, new Uint8Array(2 * 1024 * 1024).fill(3))
      const { plaintext } = await decrypt(keyring, ciphertext)
      console.log(JSON.stringify({ signed: offThreadSigningCounts.signed, length: plaintext.length }))
    `
    // The child exits by itself (runModuleScript waits for it): the idle thread is unreferenced.
    expect(await runModuleScript(script)).toEqual({ signed: 1, length: 2 * MiB })
  })

  it('does not keep a process alive after a job it could not take (a key that cannot be sent to it)', async () => {
    const script = `
      const { OFF_THREAD_SIGNING_MIN, signingThreadReady, startOffThreadSignature } = await import(${JSON.stringify(new URL('../src/backend/signing-thread.ts', import.meta.url).href)})
      const ready = await signingThreadReady()
      const job = startOffThreadSignature('P-384', () => 'a function cannot be posted', OFF_THREAD_SIGNING_MIN)
      console.log(JSON.stringify({ ready, refused: job === undefined }))
    `
    // The child exits by itself: the thread, referenced for the job while it was posted, is unreferenced again.
    expect(await runModuleScript(script)).toEqual({ ready: true, refused: true })
  })

  it('keeps a process alive while it awaits signingThreadReady for a thread started (and let go of) before', async () => {
    const script = `
      const { prepareSigningThread, signingThreadReady } = await import(${JSON.stringify(new URL('../src/backend/signing-thread.ts', import.meta.url).href)})
      prepareSigningThread()
      // The thread is made once node:worker_threads has loaded, and not referenced: no one waits for it yet.
      await import('node:worker_threads')
      await new Promise((resolve) => setImmediate(resolve))
      console.log(JSON.stringify({ ready: await signingThreadReady() }))
    `
    expect(await runModuleScript(script)).toEqual({ ready: true })
  })

  it('is not started on a single CPU: messages are signed inline', async () => {
    const script = `
      const { encrypt, decrypt, RawAesKeyring } = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)})
      const { offThreadSigningCounts, signingThreadReady } = await import(${JSON.stringify(new URL('../src/backend/signing-thread.ts', import.meta.url).href)})
      const { availableParallelism } = await import('node:os')
      const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(1) })
      const ready = await signingThreadReady()
      const { ciphertext } = await encrypt(keyring, new Uint8Array(2 * 1024 * 1024).fill(3))
      const { plaintext } = await decrypt(keyring, ciphertext)
      console.log(JSON.stringify({ cpus: availableParallelism(), ready, signed: offThreadSigningCounts.signed, length: plaintext.length }))
    `
    // taskset (util-linux) pins the child to one CPU, which availableParallelism() reports.
    const child = spawnSync('taskset', ['-c', '0', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], {
      env: { ...process.env, NODE_OPTIONS: '' },
      encoding: 'utf8',
      ...CHILD_TIMEOUT,
    })
    expect(child.error).toBeUndefined()
    expect(child.status, child.stderr).toBe(0)
    expect(JSON.parse(child.stdout.trim().split('\n').at(-1) as string)).toEqual({ cpus: 1, ready: false, signed: 0, length: 2 * MiB })
  })

  it('does not keep a process alive when it was started and never used', async () => {
    // One large signed message: it starts the thread and, the thread not being ready yet, is signed inline.
    const script = `
      const { encrypt, decrypt, RawAesKeyring } = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)})
      const { offThreadSigningCounts } = await import(${JSON.stringify(new URL('../src/backend/signing-thread.ts', import.meta.url).href)})
      const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(1) })
      const { ciphertext } = await encrypt(keyring, new Uint8Array(2 * 1024 * 1024).fill(3))
      const { plaintext } = await decrypt(keyring, ciphertext)
      await new Promise((resolve) => setTimeout(resolve, 500)) // the thread is up by now
      console.log(JSON.stringify({ signed: offThreadSigningCounts.signed, length: plaintext.length }))
    `
    expect(await runModuleScript(script)).toEqual({ signed: 0, length: 2 * MiB })
  })
  it('node:worker_threads is loaded only when the first large signed message starts the thread', async () => {
    const script = (bundle: string) => `
      const { encrypt, RawAesKeyring, signingThreadReady } = await import(${JSON.stringify(bundle)})
      const loaded = () => process.moduleLoadList.includes('NativeModule worker_threads')
      const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(1) })
      const seen = { imported: loaded() }
      await encrypt(keyring, new Uint8Array(1024))
      seen.smallSigned = loaded()
      await encrypt(keyring, new Uint8Array(2 * 1024 * 1024), { algorithmSuite: 0x0478 })
      seen.largeUnsigned = loaded()
      await encrypt(keyring, new Uint8Array(2 * 1024 * 1024))
      seen.ready = await signingThreadReady()
      seen.largeSigned = loaded()
      console.log(JSON.stringify(seen))
    `
    expect(await onBundle(script)).toEqual({
      imported: false,
      smallSigned: false,
      largeUnsigned: false,
      ready: true,
      largeSigned: true,
    })
  })

  it("under Node's permission model without --allow-worker: the thread cannot start, and everything is signed inline", async () => {
    // Node 20 and early 22 name the flag --experimental-permission.
    const flag = process.allowedNodeEnvironmentFlags.has('--permission') ? '--permission' : '--experimental-permission'
    const script = (bundle: string) => `
      const { decrypt, decryptStream, encrypt, encryptStream, RawAesKeyring, offThreadSigningCounts, signingThreadReady } = await import(${JSON.stringify(bundle)})
      const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(1) })
      const plaintext = new Uint8Array(4 * 1024 * 1024).map((_, index) => index % 251)
      const through = async (stream, bytes) => {
        const output = new Response(stream.readable).arrayBuffer()
        const writer = stream.writable.getWriter()
        for (let offset = 0; offset < bytes.length; offset += 65536) await writer.write(bytes.subarray(offset, offset + 65536))
        await writer.close()
        return new Uint8Array(await output)
      }
      const same = (bytes) => bytes.length === plaintext.length && bytes.every((byte, index) => byte === plaintext[index])
      const seen = { workersAllowed: process.permission.has('worker') }
      const { ciphertext } = await encrypt(keyring, plaintext)
      seen.oneShot = same((await decrypt(keyring, ciphertext)).plaintext)
      const streamed = await through(encryptStream(keyring, { plaintextLength: plaintext.length }), plaintext)
      seen.stream = same(await through(decryptStream(keyring), streamed)) && same((await decrypt(keyring, streamed)).plaintext)
      seen.ready = await signingThreadReady()
      seen.offThread = offThreadSigningCounts.signed + offThreadSigningCounts.streamsSigned
      console.log(JSON.stringify(seen))
    `
    expect(await onBundle(script, [flag, '--allow-fs-read=*'])).toEqual({ workersAllowed: false, oneShot: true, stream: true, ready: false, offThread: 0 })
  })
})

describe('a thread that cannot start, or stops on its own (node:worker_threads mocked, the module loaded afresh)', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' })
  let attempts = 0
  const refusals: Array<[string, () => object]> = [
    [
      'node:worker_threads cannot be loaded',
      () => {
        attempts++
        throw new Error('no worker_threads here')
      },
    ],
    [
      'the Worker constructor throws (as under the permission model without --allow-worker)',
      () => ({
        Worker: class {
          constructor() {
            attempts++
            throw Object.assign(new Error('Access to this API has been restricted'), { code: 'ERR_ACCESS_DENIED' })
          }
        },
      }),
    ],
  ]
  afterEach(() => {
    vi.doUnmock('node:worker_threads')
    vi.resetModules()
  })

  it.each(refusals)('%s: a caller already waiting for the thread hears false, and it is not tried again', async (_, refusal) => {
    attempts = 0
    vi.doMock('node:worker_threads', refusal)
    vi.resetModules()
    const fresh = await import('../src/backend/signing-thread.js')
    expect(await fresh.signingThreadReady()).toBe(false)
    expect(fresh.startOffThreadSignature('P-384', privateKey, OFF_THREAD_SIGNING_MIN)).toBeUndefined()
    expect(fresh.startStreamDigest('P-384')).toBeUndefined()
    expect(await fresh.signingThreadReady()).toBe(false)
    fresh.prepareSigningThread()
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(attempts).toBe(1)
  })

  /** The module loaded afresh over real threads, `onStart` run on each thread it makes; and those threads. */
  async function withThreads(onStart: (thread: Worker) => void) {
    const threads: Worker[] = []
    vi.doMock('node:worker_threads', async (original: () => Promise<typeof import('node:worker_threads')>) => {
      const real = await original()
      class Observed extends real.Worker {
        constructor(...args: ConstructorParameters<typeof real.Worker>) {
          super(...args)
          threads.push(this)
          onStart(this)
        }
      }
      return { ...real, Worker: Observed }
    })
    vi.resetModules()
    return { fresh: await import('../src/backend/signing-thread.js'), threads }
  }

  it('the first message large enough starts the thread, and is signed inline (the thread is not ready yet)', async () => {
    const { fresh, threads } = await withThreads(() => undefined)
    expect(fresh.startOffThreadSignature('P-384', privateKey, OFF_THREAD_SIGNING_MIN - 1)).toBeUndefined()
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(threads).toHaveLength(0)
    expect(fresh.startOffThreadSignature('P-384', privateKey, OFF_THREAD_SIGNING_MIN)).toBeUndefined()
    await vi.waitFor(() => expect(threads).toHaveLength(1))
    expect(await fresh.signingThreadReady()).toBe(true)
    await fresh.stopSigningThread()
  })

  it('a stream job given up, whose key cannot be sent, or collected unfinished is dropped on the thread too (which lets its hash go)', async () => {
    const posted: Array<{ kind?: string; id?: number }> = []
    const { fresh } = await withThreads((thread) => {
      const post = thread.postMessage.bind(thread)
      thread.postMessage = ((message: { kind?: string; id?: number }, transfer) => {
        posted.push(message)
        post(message, transfer)
      }) as Worker['postMessage']
    })
    expect(await fresh.signingThreadReady()).toBe(true)
    const abandoned = fresh.startStreamDigest('P-384') as StreamDigest
    await abandoned.update(Uint8Array.of(1))
    abandoned.abandon()
    const unsendable = fresh.startStreamDigest('P-384') as StreamDigest
    await expect(unsendable.sign(() => undefined)).rejects.toMatchObject({ code: 'KEYRING_FAILURE' })
    // One left unfinished and unreferenced (made in a function: an async function may keep its locals).
    const leaveOne = () => void fresh.startStreamDigest('P-384')?.update(Uint8Array.of(2))
    leaveOne()
    const idsOf = (kind: string) => posted.filter((message) => message.kind === kind).map((message) => message.id)
    await collectGarbageFor(100, () => idsOf('drop').length === 3)
    expect(idsOf('stream')).toHaveLength(3)
    expect(idsOf('drop')).toEqual(idsOf('stream'))
    await fresh.stopSigningThread()
  })

  it('stopped before it is ready: a caller waiting for it hears false', async () => {
    const { fresh, threads } = await withThreads((thread) => void thread.terminate())
    expect(await fresh.signingThreadReady()).toBe(false)
    expect(threads).toHaveLength(1)
  })

  it('stopped on its own mid-job (not by stopSigningThread): the job is signed inline, and the thread is not started again', async () => {
    const { fresh, threads } = await withThreads(() => undefined)
    expect(await fresh.signingThreadReady()).toBe(true)
    const bytes = new Uint8Array(OFF_THREAD_SIGNING_MIN)
    const job = fresh.startOffThreadSignature('P-384', privateKey, bytes.length) as OffThreadSignature
    expect(job.publish(bytes, 0, bytes.length - 1)).toBe(true)
    const thread = threads[0] as Worker
    await new Promise((resolve) => {
      thread.once('exit', resolve)
      void thread.terminate()
    })
    expect(job.publish(bytes, bytes.length - 1, bytes.length)).toBe(true)
    expect(await job.finish()).toBeUndefined()
    expect(await fresh.signingThreadReady()).toBe(false)
    expect(fresh.startOffThreadSignature('P-384', privateKey, bytes.length)).toBeUndefined()
    fresh.prepareSigningThread()
    expect(threads).toHaveLength(1)
  })
})

/**
 * Run `script(bundle)` in plain node, with `flags`, on a bundle of the sources (tsx, which runs the other children,
 * loads worker_threads itself and needs a thread for its hooks) and parse the last line it prints as JSON. The
 * bundle sits inside node_modules, so that its package imports resolve as the sources' do.
 */
async function onBundle(script: (bundle: string) => string, flags: string[] = []): Promise<unknown> {
  const dir = mkdtempSync(fileURLToPath(new URL('../node_modules/.kms-envelope-lazy-', import.meta.url)))
  try {
    const source = (path: string): string => JSON.stringify(fileURLToPath(new URL(path, import.meta.url)))
    await build({
      stdin: {
        contents: `export * from ${source('../src/index.ts')}\nexport { offThreadSigningCounts, signingThreadReady } from ${source('../src/backend/signing-thread.ts')}`,
        resolveDir: fileURLToPath(new URL('..', import.meta.url)),
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      packages: 'external',
      outfile: join(dir, 'bundle.mjs'),
      logLevel: 'silent',
    })
    const child = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script(join(dir, 'bundle.mjs'))], {
      env: { ...process.env, NODE_OPTIONS: '' },
      encoding: 'utf8',
      ...CHILD_TIMEOUT,
    })
    expect(child.status, child.stderr).toBe(0)
    return JSON.parse(child.stdout.trim().split('\n').at(-1) as string)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
