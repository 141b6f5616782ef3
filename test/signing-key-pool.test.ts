// Ephemeral signing keys come from a small pool per curve (src/backend/node-signing.ts). These tests check where the
// pool is topped up: on libuv's thread pool beside a message signed inline, on the main thread while a message
// alone on the helper thread is hashed and signed there, and on the next turn of the event loop for a key taken
// outside a one-shot encrypt. node:crypto's generateKeyPairSync can be made to fail, to check the fallback, and its
// generateKeyPair (the thread pool's), to check that a failed spare fails its message at once and is made again.
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'

const failing = vi.hoisted(() => ({ generateKeyPairSync: false, generateKeyPair: false }))
vi.mock('node:crypto', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:crypto')>()
  return {
    ...original,
    generateKeyPair: ((...args: unknown[]) => {
      const callback = args.at(-1) as (error: Error | null) => void
      // Later than a real key: a message can take the spare while it is still being made.
      if (failing.generateKeyPair) return void setTimeout(() => callback(new Error('key generation failed on the thread pool')), 30)
      return (original.generateKeyPair as (...a: unknown[]) => void)(...args)
    }) as typeof original.generateKeyPair,
    generateKeyPairSync: ((...args: Parameters<typeof original.generateKeyPairSync>) => {
      if (failing.generateKeyPairSync) throw new Error('key generation failed')
      return original.generateKeyPairSync(...args)
    }) as typeof original.generateKeyPairSync,
  }
})

const { nodeBackend } = await import('../src/backend/node.js')
const { signingKeysMade, signingKeysSettled } = await import('../src/backend/node-signing.js')
const { OFF_THREAD_SIGNING_MIN, offThreadJobsPending, offThreadSigningCounts, signingThreadReady, stopSigningThread } = await import('../src/backend/signing-thread.js')
const { decrypt, encrypt, encryptStream, RawAesKeyring } = await import('../src/index.js')

const keyring = new RawAesKeyring({ keyNamespace: 'pool', keyName: 'aes-256', wrappingKey: new Uint8Array(32).fill(7) })
const large = new Uint8Array(OFF_THREAD_SIGNING_MIN).fill(0x5a)
const small = new Uint8Array(1024).fill(0xa5)

function madeSince(before: typeof signingKeysMade): { inBackground: number; inline: number } {
  return { inBackground: signingKeysMade.inBackground - before.inBackground, inline: signingKeysMade.inline - before.inline }
}

/** True when `ciphertext` decrypts to `plaintext` (compared as Buffers: a deep equality is slow on 1 MiB). */
async function decryptsTo(ciphertext: Uint8Array, plaintext: Uint8Array): Promise<boolean> {
  return Buffer.from((await decrypt(keyring, ciphertext)).plaintext).equals(plaintext)
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

beforeAll(async () => {
  expect(await signingThreadReady()).toBe(true)
})
afterAll(() => stopSigningThread())

beforeEach(async () => {
  failing.generateKeyPairSync = false
  failing.generateKeyPair = false
  // Full pools of finished keys: the messages below take them without waiting for the event loop to turn.
  await encrypt(keyring, small, { algorithmSuite: 0x0578 })
  await nextTurn()
  await signingKeysSettled()
})

describe('signing key pools', () => {
  it('a message signed inline: the key it took is replaced on the thread pool as the message is sealed', async () => {
    const before = { ...signingKeysMade }
    const encrypting = encrypt(keyring, small, { algorithmSuite: 0x0578 })
    const { ciphertext } = await encrypting
    expect(madeSince(before)).toEqual({ inBackground: 1, inline: 0 })
    expect(await decryptsTo(ciphertext, small)).toBe(true)
  })

  it('a message alone on the helper thread: the main thread makes the replacement key while it waits', async () => {
    const before = { ...signingKeysMade }
    const signedBefore = offThreadSigningCounts.signed
    const { ciphertext } = await encrypt(keyring, large, { algorithmSuite: 0x0578, frameLength: 65536 })
    expect(offThreadSigningCounts.signed - signedBefore).toBe(1)
    expect(madeSince(before)).toEqual({ inBackground: 0, inline: 1 })
    expect(await decryptsTo(ciphertext, large)).toBe(true)
    // The key made inline serves the next message, which verifies.
    const next = await encrypt(keyring, small, { algorithmSuite: 0x0578 })
    expect(await decryptsTo(next.ciphertext, small)).toBe(true)
  })

  it('two messages on the helper thread at once: only the first makes a key inline, the second has its key made on the thread pool', async () => {
    const before = { ...signingKeysMade }
    const first = encrypt(keyring, large, { algorithmSuite: 0x0578, frameLength: 65536 })
    const second = (async () => {
      // Once the first message's job is on the thread, its frames are sealed and its pool topped up: take a key
      // (another message's, say), so that the second message finds its pool short while the first is signed.
      for (let turns = 0; offThreadJobsPending() === 0; turns++) {
        if (turns > 100_000) throw new Error('the first message never reached the helper thread')
        await Promise.resolve()
      }
      void nodeBackend.generateSigningKey('P-384')
      return encrypt(keyring, large, { algorithmSuite: 0x0578, frameLength: 65536 })
    })()
    const results = await Promise.all([first, second])
    expect(madeSince(before)).toEqual({ inBackground: 2, inline: 1 })
    for (const { ciphertext } of results) expect(await decryptsTo(ciphertext, large)).toBe(true)
  })

  it('a key that cannot be made inline is made on the thread pool instead, and the message is unaffected', async () => {
    failing.generateKeyPairSync = true
    const before = { ...signingKeysMade }
    const { ciphertext } = await encrypt(keyring, large, { algorithmSuite: 0x0578, frameLength: 65536 })
    expect(madeSince(before)).toEqual({ inBackground: 1, inline: 0 })
    failing.generateKeyPairSync = false
    expect(await decryptsTo(ciphertext, large)).toBe(true)
  })

  it('keys the thread pool fails to make: the message gets a typed error, never waits for ever; once generation works again, messages are signed', async () => {
    failing.generateKeyPair = true
    const codes: string[] = []
    // The pool's two finished keys go first; its top-ups, made after each message, fail, and so does the key made
    // again for the message that took one.
    for (let message = 0; message < 4; message++) {
      codes.push(await encrypt(keyring, small, { algorithmSuite: 0x0578 }).then(() => 'signed', (error: { code: string }) => error.code))
      await nextTurn()
    }
    expect(codes).toEqual(['signed', 'signed', 'KEYRING_FAILURE', 'KEYRING_FAILURE']) // the materials manager makes the key
    await signingKeysSettled()
    failing.generateKeyPair = false
    // The failed spares still in the pool are made again for the messages that take them: these are signed.
    for (let message = 0; message < 3; message++) expect(await decryptsTo((await encrypt(keyring, small, { algorithmSuite: 0x0578 })).ciphertext, small)).toBe(true)
  })

  it('a spare that fails while the message that took it waits is made again for that message', async () => {
    await encrypt(keyring, small, { algorithmSuite: 0x0578 }) // takes a finished key: the pool's top-up comes next turn
    failing.generateKeyPair = true
    await nextTurn() // the top-up starts, and will fail
    failing.generateKeyPair = false
    await encrypt(keyring, small, { algorithmSuite: 0x0578 }) // the pool's other finished key
    const { ciphertext } = await encrypt(keyring, small, { algorithmSuite: 0x0578 }) // the failing spare, made again
    expect(await decryptsTo(ciphertext, small)).toBe(true)
  })

  it('a key taken outside a one-shot encrypt is replaced on the next turn of the event loop', async () => {
    const before = { ...signingKeysMade }
    const taken = [nodeBackend.generateSigningKey('P-256'), nodeBackend.generateSigningKey('P-384')]
    expect(madeSince(before)).toEqual({ inBackground: 0, inline: 0 })
    await nextTurn()
    // The P-256 pool, new, is filled to two (its first key was made on demand); the P-384 pool gets one.
    expect(madeSince(before)).toEqual({ inBackground: 3, inline: 0 })
    await Promise.all(taken)
    // A signed stream takes its key the same way.
    const streamed = { ...signingKeysMade }
    const stream = encryptStream(keyring, { algorithmSuite: 0x0578 })
    const writer = stream.writable.getWriter()
    const reading = new Response(stream.readable).arrayBuffer()
    await writer.write(small)
    await writer.close()
    const ciphertext = new Uint8Array(await reading)
    await nextTurn()
    expect(madeSince(streamed)).toEqual({ inBackground: 1, inline: 0 })
    expect(await decryptsTo(ciphertext, small)).toBe(true)
  })
})
