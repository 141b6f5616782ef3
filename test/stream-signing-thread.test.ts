// Encrypted streams of signing suites hash their bytes on the signing thread once it runs
// (src/stream-signer.ts, startStreamDigest in src/backend/signing-thread.ts). These tests check that such
// messages verify, here and in the official SDK; that the thread's lag is bounded; that a thread which stops
// mid-stream fails the stream with a typed error; that a dropped stream neither holds the process open nor
// keeps the thread from its other work; and that only a large stream starts the thread.
import { createVerify, generateKeyPairSync } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  OFF_THREAD_SIGNING_MIN,
  offThreadSigningCounts,
  openStreamJobs,
  signingThreadReady,
  startOffThreadSignature,
  startStreamDigest,
  stopSigningThread,
} from '../src/backend/signing-thread.js'
import { nodeBackend } from '../src/backend/node.js'
import type { CryptoBackend } from '../src/backend/types.js'
import {
  decrypt,
  DefaultMaterialsManager,
  encrypt,
  encryptNodeStream,
  encryptStream,
  EnvelopeError,
  KeyringError,
  type MaterialsManager,
} from '../src/index.js'
import { encryptStreamWith } from '../src/stream-encrypt.js'
import { collectGarbageFor, policyFor, rejectionOf, runModuleScript } from './helpers/fixtures.js'
import { decryptPolicyFor, hex16, officialDecrypt, officialKeyring } from './helpers/official.js'
import { keyring, MiB, plaintextOf, SIGNING_SUITES, spec } from './helpers/signing-thread.js'
import { chunked, drain, readAll } from './helpers/web-streams.js'

const srcUrl = (path: string): string => JSON.stringify(new URL(path, import.meta.url).href)

/** Encrypt `plaintext` as a stream fed `chunkSize` bytes at a time; the message, and how many streams the thread signed. */
async function encryptStreamed(plaintext: Uint8Array, chunkSize: number, options: Parameters<typeof encryptStream>[1]) {
  const before = offThreadSigningCounts.streamsSigned
  const ciphertext = await readAll(chunked(plaintext, chunkSize).pipeThrough(encryptStream(keyring, options)))
  return { ciphertext, onThread: offThreadSigningCounts.streamsSigned - before }
}

beforeAll(async () => {
  expect(await signingThreadReady()).toBe(true)
})
afterAll(() => stopSigningThread())

describe('encrypted streams signed on the thread', () => {
  it.each(SIGNING_SUITES.map((suite) => [hex16(suite), suite] as const))('suite %s: verifies here and in the official SDK', async (_, algorithmSuite) => {
    const plaintext = plaintextOf(3 * MiB + 777, algorithmSuite)
    const { ciphertext, onThread } = await encryptStreamed(plaintext, 65_536, {
      algorithmSuite,
      frameLength: 4096,
      commitmentPolicy: policyFor(algorithmSuite),
      encryptionContext: { purpose: 'stream signing thread' },
    })
    expect(onThread).toBe(1)
    const ours = await decrypt(keyring, ciphertext, { commitmentPolicy: policyFor(algorithmSuite) })
    expect(Buffer.from(ours.plaintext).equals(Buffer.from(plaintext))).toBe(true)
    const theirs = await officialDecrypt(officialKeyring(spec), ciphertext, { commitmentPolicy: decryptPolicyFor(algorithmSuite) })
    expect(Buffer.from(theirs.plaintext).equals(Buffer.from(plaintext))).toBe(true)
  })

  it('as a Node Transform in a pipeline, faster than the thread hashes (it waits for the thread)', async () => {
    const plaintext = plaintextOf(12 * MiB + 5)
    const before = offThreadSigningCounts.streamsSigned
    const chunks: Buffer[] = []
    const source = Readable.from((function* () {
      for (let offset = 0; offset < plaintext.length; offset += 65_536) yield plaintext.subarray(offset, offset + 65_536)
    })())
    await pipeline(source, encryptNodeStream(keyring, { frameLength: 65_536 }), new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk)
        callback()
      },
    }))
    expect(offThreadSigningCounts.streamsSigned - before).toBe(1)
    expect(Buffer.from((await decrypt(keyring, Buffer.concat(chunks))).plaintext).equals(Buffer.from(plaintext))).toBe(true)
  })

  it('small and empty streams too, once the thread runs; unsigned suites never use it', async () => {
    for (const length of [0, 1, 4096, 10_000]) {
      const plaintext = plaintextOf(length)
      const { ciphertext, onThread } = await encryptStreamed(plaintext, 1000, { frameLength: 4096 })
      expect(onThread).toBe(1)
      expect(Buffer.from((await decrypt(keyring, ciphertext)).plaintext).equals(Buffer.from(plaintext))).toBe(true)
    }
    const { onThread } = await encryptStreamed(plaintextOf(2 * MiB), 65_536, { algorithmSuite: 0x0478 })
    expect(onThread).toBe(0)
  })

  it('round trip (fast-check): random lengths, chunk sizes and frame lengths', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 400_000 }),
        fc.integer({ min: 1, max: 300_000 }),
        fc.constantFrom(97, 4096, 65_536, 300_000),
        async (length, chunkSize, frameLength) => {
          const plaintext = plaintextOf(length, chunkSize)
          const { ciphertext, onThread } = await encryptStreamed(plaintext, chunkSize, { frameLength })
          expect(onThread).toBe(1)
          expect(Buffer.from((await decrypt(keyring, ciphertext)).plaintext).equals(Buffer.from(plaintext))).toBe(true)
        },
      ),
      { numRuns: 15 },
    )
  })
})

describe('the thread-side digest', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' })
  const verifies = (message: Uint8Array, signature: Uint8Array): boolean =>
    createVerify('sha384').update(message).verify({ key: publicKey, dsaEncoding: 'der' }, signature)

  it('signs exactly the bytes given, however they are split (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 600_000 }), { maxLength: 6 }), async (lengths) => {
        const parts = lengths.map((length, index) => plaintextOf(length, index))
        const digest = startStreamDigest('P-384')
        if (digest === undefined) throw new Error('the thread is not running')
        for (const part of parts) await digest.update(part)
        const signature = await digest.sign(privateKey)
        expect(signature).toBeInstanceOf(Uint8Array)
        expect(verifies(Buffer.concat(parts), signature as Uint8Array)).toBe(true)
        expect(verifies(Buffer.concat([...parts, new Uint8Array([0])]), signature as Uint8Array)).toBe(false)
      }),
      { numRuns: 20 },
    )
  })

  it('asks the caller to wait once the thread is more than 4 MiB behind, and lets it go on when it catches up', async () => {
    const digest = startStreamDigest('P-384')
    if (digest === undefined) throw new Error('the thread is not running')
    const piece = plaintextOf(256 * 1024)
    // Nothing is acknowledged within one synchronous run: the first 4 MiB go out, the next piece must wait.
    const answers = Array.from({ length: 17 }, () => digest.update(piece))
    expect(answers.slice(0, 16).every((answer) => answer === undefined)).toBe(true)
    expect(answers[16]).toBeInstanceOf(Promise)
    // A caller that updates again without waiting gets the same wait, not a second one.
    const again = digest.update(piece)
    expect(again).toBe(answers[16])
    await again
    expect(digest.update(new Uint8Array(1))).toBeUndefined()
    // Behind again: a new wait, not the one already over.
    const later = Array.from({ length: 17 }, () => digest.update(piece)).find((answer) => answer !== undefined)
    expect(later).toBeInstanceOf(Promise)
    expect(later).not.toBe(answers[16])
    await later
    const signature = (await digest.sign(privateKey)) as Uint8Array
    expect(verifies(Buffer.concat([...Array.from({ length: 18 }, () => piece), new Uint8Array(1), ...Array.from({ length: 17 }, () => piece)]), signature)).toBe(true)
  })

  it('an abandoned job is dropped: its wait ends, and the thread goes on with the next job', async () => {
    const digest = startStreamDigest('P-384')
    if (digest === undefined) throw new Error('the thread is not running')
    const waiting = Array.from({ length: 20 }, () => digest.update(plaintextOf(256 * 1024))).find((answer) => answer !== undefined)
    digest.abandon()
    await waiting
    expect(digest.update(new Uint8Array(8))).toBeUndefined()
    const next = startStreamDigest('P-384')
    await next?.update(new Uint8Array([1, 2, 3]))
    expect(verifies(new Uint8Array([1, 2, 3]), (await next?.sign(privateKey)) as Uint8Array)).toBe(true)
  })

  it('while stream pieces are queued on the thread, a large one-shot message signs inline (it would wait behind them)', async () => {
    const digest = startStreamDigest('P-384')
    if (digest === undefined) throw new Error('the thread is not running')
    for (let index = 0; index < 8; index++) void digest.update(plaintextOf(256 * 1024))
    expect(startOffThreadSignature('P-384', privateKey, OFF_THREAD_SIGNING_MIN)).toBeUndefined()
    expect(await digest.sign(privateKey)).toBeInstanceOf(Uint8Array)
    const job = startOffThreadSignature('P-384', privateKey, OFF_THREAD_SIGNING_MIN)
    expect(job).toBeDefined()
    job?.publish(new Uint8Array(OFF_THREAD_SIGNING_MIN), 0, OFF_THREAD_SIGNING_MIN)
    expect(await job?.finish()).toBeInstanceOf(Uint8Array)
  })

  it('a thread that stops with stream pieces queued: a stream waiting for it goes on, and the next thread takes large one-shot messages again', async () => {
    const digest = startStreamDigest('P-384')
    if (digest === undefined) throw new Error('the thread is not running')
    const piece = plaintextOf(256 * 1024)
    const waiting = Array.from({ length: 128 }, () => digest.update(piece)).find((answer) => answer !== undefined)
    expect(waiting).toBeInstanceOf(Promise)
    await stopSigningThread() // 32 MiB were posted at once: the thread cannot have caught up with them
    await waiting // the stream waiting for the thread to catch up goes on
    expect(await digest.sign(privateKey)).toBeUndefined() // lost with the thread
    expect(await signingThreadReady()).toBe(true)
    const job = startOffThreadSignature('P-384', privateKey, OFF_THREAD_SIGNING_MIN)
    expect(job).toBeDefined()
    job?.publish(new Uint8Array(OFF_THREAD_SIGNING_MIN), 0, OFF_THREAD_SIGNING_MIN)
    expect(await job?.finish()).toBeInstanceOf(Uint8Array)
  })

  it('is signed once: its job ends, bytes given after are not taken, and signing again is refused', async () => {
    const jobs = openStreamJobs()
    const digest = startStreamDigest('P-384')
    if (digest === undefined) throw new Error('the thread is not running')
    expect(openStreamJobs()).toBe(jobs + 1)
    await digest.update(Uint8Array.of(1, 2, 3))
    const signature = (await digest.sign(privateKey)) as Uint8Array
    expect(openStreamJobs()).toBe(jobs)
    expect(digest.update(Uint8Array.of(4))).toBeUndefined()
    await expect(digest.sign(privateKey)).rejects.toThrow('A stream digest is signed once.')
    expect(verifies(Uint8Array.of(1, 2, 3), signature)).toBe(true)
  })

  it('a key the thread cannot sign with is a KeyringError', async () => {
    const digest = startStreamDigest('P-384')
    await digest?.update(new Uint8Array(10))
    expect(await rejectionOf(digest?.sign(generateKeyPairSync('ed25519').privateKey) as Promise<unknown>)).toBeInstanceOf(KeyringError)
  })
})

describe('a thread that stops mid-stream', () => {
  it('fails the stream with INTERNAL_ERROR (never a message without its signature); the next stream starts a new thread', async () => {
    const stream = encryptStream(keyring, { frameLength: 4096 })
    const writer = stream.writable.getWriter()
    const reading = readAll(stream.readable)
    reading.catch(() => undefined)
    await writer.write(plaintextOf(MiB))
    const before = offThreadSigningCounts.streamsSigned
    await stopSigningThread()
    const closing = writer.close()
    const error = await rejectionOf(closing)
    expect(error).toBeInstanceOf(EnvelopeError)
    expect((error as EnvelopeError).code).toBe('INTERNAL_ERROR')
    expect((await rejectionOf(reading) as EnvelopeError).code).toBe('INTERNAL_ERROR')
    expect(offThreadSigningCounts.streamsSigned).toBe(before)
    expect(openStreamJobs()).toBe(0) // the lost thread's jobs are all let go of
    // Stopped by the tests rather than failed: it starts again.
    expect(await signingThreadReady()).toBe(true)
    const { onThread } = await encryptStreamed(plaintextOf(5000), 1000, {})
    expect(onThread).toBe(1)
  })
})

describe('a signing key node:crypto cannot sign with (a custom materials manager)', () => {
  // Materials as the default manager makes them, with another signing key: a string, an Ed25519 key (wrong
  // type), a P-256 key (it would sign, and make a P-384 message no one can verify), a public key, and a function
  // (which cannot even be sent to the thread).
  const withSigningKey = (signingKey: unknown): MaterialsManager => {
    const inner = new DefaultMaterialsManager(keyring)
    return {
      getEncryptionMaterials: async (request, backend) => ({ ...(await inner.getEncryptionMaterials(request, backend)), signingKey }),
      getDecryptionMaterials: (request, backend) => inner.getDecryptionMaterials(request, backend),
    }
  }
  const badKeys = [
    ['a string', 'not a key'],
    ['an Ed25519 key', generateKeyPairSync('ed25519').privateKey],
    ['a P-256 key', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey],
    ['a public key', generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey],
    ['a function', () => undefined],
  ] as const
  const streamed = (cmm: MaterialsManager, backend: CryptoBackend) =>
    readAll(chunked(plaintextOf(100_000), 30_000).pipeThrough(encryptStreamWith(backend, cmm, {})))

  it.each(badKeys)('%s: KEYRING_FAILURE from a stream, on the thread and inline, and from one-shot encrypt, small and large', async (_, signingKey) => {
    const cmm = withSigningKey(signingKey)
    const { streamDigest: _streamDigest, ...inline } = nodeBackend
    const jobs = openStreamJobs()
    for (const attempt of [
      () => streamed(cmm, nodeBackend),
      () => streamed(cmm, inline),
      () => encrypt(cmm, plaintextOf(1000)),
      () => encrypt(cmm, plaintextOf(OFF_THREAD_SIGNING_MIN)),
    ]) {
      const error = await rejectionOf(attempt())
      expect(error).toBeInstanceOf(KeyringError)
      expect((error as KeyringError).code).toBe('KEYRING_FAILURE')
    }
    expect(openStreamJobs()).toBe(jobs) // the stream's job ended with it
    // The thread is unharmed.
    expect((await encryptStreamed(plaintextOf(5000), 1000, {})).onThread).toBe(1)
  })

  it('one the thread cannot even be sent (reached on a backend without checkSignatureKey): KEYRING_FAILURE, and the job ends', async () => {
    const { checkSignatureKey: _checkSignatureKey, ...unchecked } = nodeBackend
    const jobs = openStreamJobs()
    const error = await rejectionOf(streamed(withSigningKey(() => undefined), unchecked))
    expect((error as KeyringError).code).toBe('KEYRING_FAILURE')
    expect(openStreamJobs()).toBe(jobs)
    expect((await encryptStreamed(plaintextOf(5000), 1000, {})).onThread).toBe(1)
  })
})

describe('a stream that ends unfinished', () => {
  it('gives its job up (AbortedError), and the thread signs the next stream', async () => {
    const before = openStreamJobs()
    const controller = new AbortController()
    const stream = encryptStream(keyring, { signal: controller.signal })
    const writer = stream.writable.getWriter()
    const reading = readAll(stream.readable)
    reading.catch(() => undefined)
    await writer.write(plaintextOf(6 * MiB)) // more than the thread may lag behind: a wait is under way
    expect(openStreamJobs()).toBe(before + 1)
    controller.abort()
    expect(((await rejectionOf(reading)) as EnvelopeError).code).toBe('ABORTED')
    expect(openStreamJobs()).toBe(before) // given up at once, not when the stream is collected
    const { ciphertext, onThread } = await encryptStreamed(plaintextOf(70_000), 65_536, {})
    expect(onThread).toBe(1)
    expect((await decrypt(keyring, ciphertext)).plaintext.length).toBe(70_000)
  })

  it.each(['cancelled by its reader', 'failed (longer than its plaintextLength)'])('%s: gives its job up at once', async (how) => {
    const before = openStreamJobs()
    const stream = encryptStream(keyring, { plaintextLength: 2 * MiB })
    const writer = stream.writable.getWriter()
    const reader = stream.readable.getReader()
    void drain(reader)
    await writer.write(plaintextOf(MiB))
    expect(openStreamJobs()).toBe(before + 1)
    if (how.startsWith('cancelled')) await reader.cancel(new Error('enough'))
    else expect(((await rejectionOf(writer.write(plaintextOf(MiB + 1)))) as EnvelopeError).code).toBe('POLICY_VIOLATION')
    expect(openStreamJobs()).toBe(before)
  })
})

describe('the thread and the process', () => {
  it('a stream dropped unfinished, neither closed nor aborted, ends its job once it is collected', async () => {
    await collectGarbageFor(10) // streams earlier tests dropped go first
    const before = openStreamJobs()
    // Made in a function of their own: a suspended async function may keep its last loop iteration's values.
    const startSome = async (count: number): Promise<unknown[]> => {
      const started: unknown[] = []
      for (let index = 0; index < count; index++) {
        const stream = encryptStream(keyring)
        const writer = stream.writable.getWriter()
        void readAll(stream.readable)
        await writer.write(new Uint8Array(100_000)) // less than a piece: the job holds it, 256 KiB, until it ends
        started.push(stream, writer)
      }
      return started
    }
    const held = await startSome(10)
    expect(openStreamJobs()).toBe(before + 10)
    held.length = 0 // dropped: neither closed nor aborted
    await collectGarbageFor(100, () => openStreamJobs() === before)
    expect(openStreamJobs()).toBe(before)
    const plaintext = plaintextOf(2 * MiB, 0x0578)
    expect((await encryptStreamed(plaintext, 65_536, {})).onThread).toBe(1) // the thread goes on with the next
  })

  it('a stream left unfinished does not keep the process alive', async () => {
    const script = `
      const { encryptStream, RawAesKeyring } = await import(${srcUrl('../src/index.ts')})
      const { signingThreadReady } = await import(${srcUrl('../src/backend/signing-thread.ts')})
      const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(1) })
      await signingThreadReady()
      const stream = encryptStream(keyring)
      const writer = stream.writable.getWriter()
      const reader = stream.readable.getReader()
      const writing = writer.write(new Uint8Array(3 * 1024 * 1024).fill(7))
      let out = 0
      while (out <= 3 * 1024 * 1024) out += (await reader.read()).value.length
      await writing
      console.log(JSON.stringify({ out: out > 3 * 1024 * 1024 }))
    `
    // The child exits by itself (runModuleScript waits for it): with nothing owed, the thread is unreferenced.
    expect(await runModuleScript(script)).toEqual({ out: true })
  })

  it('keeps the process alive while a stream waits for the thread (nothing else pending): to catch up, and to sign', async () => {
    const script = `
      const { generateKeyPairSync } = await import('node:crypto')
      const { signingThreadReady, startStreamDigest } = await import(${srcUrl('../src/backend/signing-thread.ts')})
      await signingThreadReady()
      const digest = startStreamDigest('P-384')
      const waiting = digest.update(new Uint8Array(8 * 1024 * 1024))
      await waiting
      digest.abandon()
      // A stream with no bytes: nothing owed back when it asks for its signature.
      const signature = await startStreamDigest('P-384').sign(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey)
      console.log(JSON.stringify({ waited: waiting instanceof Promise, signed: signature?.[0] === 0x30 }))
    `
    // Unreferenced while it owes pieces back or a signature, the thread would let the process exit with the wait unsettled.
    expect(await runModuleScript(script)).toEqual({ waited: true, signed: true })
  })

  // Small streams, one after another, until one is signed on the thread (for up to 10 s: a thread that was asked
  // for has started by then even on a loaded machine).
  const helpers = `
    const { encryptStream, RawAesKeyring } = await import(${srcUrl('../src/index.ts')})
    const { offThreadSigningCounts } = await import(${srcUrl('../src/backend/signing-thread.ts')})
    const keyring = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(1) })
    const run = async (length, options = {}) => {
      const stream = encryptStream(keyring, options)
      const writer = stream.writable.getWriter()
      const reading = (async () => { for await (const chunk of stream.readable) void chunk })()
      await writer.write(new Uint8Array(length))
      await writer.close()
      await reading
      return offThreadSigningCounts.streamsSigned
    }
    const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
    const laterOnThread = async () => {
      for (let attempt = 0; attempt < 100; attempt++, await pause(100)) if ((await run(1000)) > 0) return true
      return false
    }
  `

  it('only a stream that carries 1 MiB starts the thread; the streams after it use it', async () => {
    const script = `${helpers}
      const seen = { small: await run(512 * 1024) }
      await pause(300) // a thread asked for by mistake would be up by now
      seen.afterSmall = await run(1000)
      seen.large = await run(2 * 1024 * 1024)
      seen.laterOnThread = await laterOnThread()
      console.log(JSON.stringify(seen))
    `
    expect(await runModuleScript(script)).toEqual({ small: 0, afterSmall: 0, large: 0, laterOnThread: true })
  })

  it('a stream that declares 1 MiB starts the thread at its start (here it is aborted after 1 KiB)', async () => {
    const script = `${helpers}
      const controller = new AbortController()
      const stream = encryptStream(keyring, { plaintextLength: 1024 * 1024, signal: controller.signal })
      const writer = stream.writable.getWriter()
      const reading = (async () => { for await (const chunk of stream.readable) void chunk })().catch(() => undefined)
      await writer.write(new Uint8Array(1024))
      controller.abort()
      await reading
      console.log(JSON.stringify({ laterOnThread: await laterOnThread() }))
    `
    expect(await runModuleScript(script)).toEqual({ laterOnThread: true })
  })
})
