// Unusual messages that are nonetheless authenticated (test/helpers/craft-v1.ts), so that only the format's own
// rules can refuse them. Which to accept follows the specification and, where it is silent, what the official SDKs
// do: each case was also given to the C SDK 2.4.1, the Java SDK 2.4.1 and the Python SDK 4.0.4 (through the
// `npm run interop:*` sides, the data key wrapped by a raw AES key), and the comments say where they differ.
import { describe, expect, it } from 'vitest'
import * as browser from '../src/browser.js'
import { decrypt, decryptStream, EnvelopeError } from '../src/index.js'
import { craftV1, dataKeyKeyring, frame, sequenceIv, singleBlock, type CraftOptions } from './helpers/craft-v1.js'
import { rejectionOf } from './helpers/fixtures.js'
import { chunked, readAll } from './helpers/web-streams.js'
import { contextPairsByHand, uint16 } from './helpers/wire.js'

const allow = { commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' } as const

/** 100 bytes in two whole frames of 50, the second one final, or regular and followed by an empty final frame. */
const inTwoWholeFrames = (secondFinal: boolean): CraftOptions => ({
  frameLength: 50,
  plaintext: Buffer.alloc(100, 7),
  body: (key, id, plaintext) =>
    Buffer.concat([
      frame(key, id, 1, plaintext.subarray(0, 50), false),
      frame(key, id, 2, plaintext.subarray(50), secondFinal),
      ...(secondFinal ? [] : [frame(key, id, 3, Buffer.alloc(0), true)]),
    ]),
})

/** The 100-byte plaintext in a frame of 64 and a final frame, numbered from `first`. */
const numberedFrom = (first: number): CraftOptions => ({
  frameLength: 64,
  body: (key, id, plaintext) => Buffer.concat([frame(key, id, first, plaintext.subarray(0, 64), false), frame(key, id, first + 1, plaintext.subarray(64), true)]),
})

/** Every one of them was accepted by the three official SDKs too, but where the comment says otherwise. */
const ACCEPTED: [string, CraftOptions, Record<string, string>?][] = [
  ['a header IV that is not zero', { headerIv: Buffer.alloc(12, 0xa5) }],
  ['a message ID of zeros', { messageId: Buffer.alloc(16) }],
  ['a frame IV other than its sequence number', { frameLength: 4096, body: (key, id, plaintext) => frame(key, id, 1, plaintext, true, Buffer.alloc(12, 0x5a)) }],
  ['context keys stored out of order', { context: contextPairsByHand([['b', '2'], ['a', '1']]) }, { a: '1', b: '2' }],
  // The Java SDK refuses both: "Key length must be greater than 0", "Value length must be greater than 0".
  ['a stored context with an empty key', { context: contextPairsByHand([['', 'v'], ['a', '1']]) }, { '': 'v', a: '1' }],
  ['a stored context with an empty value', { context: contextPairsByHand([['a', ''], ['b', '2']]) }, { a: '', b: '2' }],
  ['whole frames, then an empty final frame', inTwoWholeFrames(false)],
  ['the last whole frame marked final', inTwoWholeFrames(true)],
  ['an empty message: one empty final frame', { plaintext: Buffer.alloc(0) }],
  ['a non-framed body', { contentType: 1, frameLength: 0 }],
  ['a non-framed body whose IV is that of frame 1', { contentType: 1, frameLength: 0, body: (key, id, plaintext) => singleBlock(key, id, plaintext, sequenceIv(1)) }],
]

/** Refused with MALFORMED_MESSAGE by kms-envelope, and by the three official SDKs but where the comment says otherwise. */
const REFUSED: [string, CraftOptions][] = [
  ['the reserved field set', { reserved: 1 }],
  ['an IV length of 16', { ivLength: 16 }],
  // The Java SDK accepts it.
  ['a non-framed body with a frame length', { contentType: 1, frameLength: 4096 }],
  // The Python SDK accepts it; the Java SDK fails with an ArithmeticException (division by zero).
  ['framed, with a frame length of 0', { frameLength: 0, plaintext: Buffer.alloc(0) }],
  // The Python SDK accepts it (the specification writes no bytes for an empty context).
  ['a context of zero pairs in two bytes', { context: uint16(0) }],
  ['a context key twice', { context: contextPairsByHand([['a', '1'], ['a', '1']]) }],
  ['frames from sequence number 2', numberedFrom(2)],
  ['a frame of sequence number 0', { frameLength: 4096, body: (key, id, plaintext) => frame(key, id, 0, plaintext, true) }],
  ['a final frame longer than the frame length', { frameLength: 10, body: (key, id, plaintext) => frame(key, id, 1, plaintext, true) }],
]

describe('authenticated messages with unusual fields', () => {
  it.each(ACCEPTED)('accepted: %s, one-shot, as a stream and by the browser build', async (_name, options, context = { a: '1', b: '2' }) => {
    const { ciphertext, plaintext, dataKey } = craftV1(options)
    for (const run of [decrypt, browser.decrypt]) {
      const result = await run(dataKeyKeyring(dataKey), ciphertext, allow)
      expect(Buffer.from(result.plaintext).equals(plaintext)).toBe(true)
      expect(result.header.encryptionContext).toEqual(context)
    }
    for (const size of [1, 7, ciphertext.length]) {
      const stream = decryptStream(dataKeyKeyring(dataKey), allow)
      const streamed = await readAll(chunked(ciphertext, size).pipeThrough(stream))
      expect(Buffer.from(streamed).equals(plaintext)).toBe(true)
    }
  })

  it.each(REFUSED)('refused: %s, one-shot, as a stream and by the browser build', async (_name, options) => {
    const { ciphertext, dataKey } = craftV1(options)
    const outcomes = [
      decrypt(dataKeyKeyring(dataKey), ciphertext, allow),
      browser.decrypt(dataKeyKeyring(dataKey), ciphertext, allow),
      readAll(chunked(ciphertext, 7).pipeThrough(decryptStream(dataKeyKeyring(dataKey), allow))),
    ]
    for (const outcome of outcomes) {
      const error = await rejectionOf(outcome)
      expect(error).toBeInstanceOf(EnvelopeError)
      expect((error as EnvelopeError).code).toBe('MALFORMED_MESSAGE')
    }
  })

  it('the unchanged crafted message decrypts, so each refusal above comes from its one change', async () => {
    const { ciphertext, plaintext, dataKey } = craftV1()
    expect(Buffer.from((await decrypt(dataKeyKeyring(dataKey), ciphertext, allow)).plaintext).equals(plaintext)).toBe(true)
  })
})
