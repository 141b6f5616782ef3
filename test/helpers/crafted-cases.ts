// The cases of test/crafted-messages.test.ts (also decrypted in each browser by test/browser.test.ts): unusual
// messages that are nonetheless authenticated (helpers/craft.ts), so that only the format's own rules can refuse
// them. Which to accept follows the specification and, where it is silent, what the official SDKs do: each case was
// also given to the C SDK 2.4.1, the Java SDK 2.4.1 and the Python SDK 4.0.4 (through the `npm run interop:*`
// sides, the data key wrapped by a raw AES key), the version 2 and signature cases to the official JavaScript SDK
// too, and the comments say where they differ.
import { sign } from 'node:crypto'
import {
  craftV1,
  craftV2,
  derIntegers,
  derSignature,
  frame,
  otherSForm,
  p1363Of,
  sequenceIv,
  shortSignature,
  singleBlock,
  type CraftOptions,
  type CraftV2Options,
} from './craft.js'
import { contextPairsByHand, uint16 } from './wire.js'

export type Crafted = ReturnType<typeof craftV1>

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
export const ACCEPTED: [string, CraftOptions, Record<string, string>?][] = [
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
export const REFUSED: [string, CraftOptions][] = [
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

/** Two of the refused version 1 cases, in version 2. */
const V2_REFUSED_TOO: [string, CraftV2Options][] = [
  // The Java SDK and the official JavaScript SDK accept it.
  ['a non-framed body with a frame length', { contentType: 1, frameLength: 4096 }],
  // The Python SDK and the official JavaScript SDK accept it; the Java SDK fails with an ArithmeticException.
  ['framed, with a frame length of 0', { frameLength: 0, plaintext: Buffer.alloc(0) }],
]

/** Version 2 and signatures; every one was accepted by the four official SDKs too, but where the comment says otherwise. */
export const V2_ACCEPTED: [string, CraftV2Options][] = [
  ['version 2: a message ID of zeros', { messageId: Buffer.alloc(32) }],
  ['version 2: a frame IV other than its sequence number', { frameLength: 4096, body: (key, id, plaintext) => frame(key, id, 1, plaintext, true, Buffer.alloc(12, 0x5a)) }],
  ['version 2: a non-framed body', { contentType: 1, frameLength: 0 }],
  ['0x0578: a non-framed body', { suite: 0x0578, contentType: 1, frameLength: 0 }],
  ['0x0578: a signature in its other valid form (high S)', { suite: 0x0578, signature: otherSForm }],
  // The public key is decoded as atob does (forgiving base64, as in browsers). The Python and Java SDKs refuse it.
  ['0x0578: a public key without base64 padding', { suite: 0x0578, publicKey: (point) => point.toString('base64').replace(/=+$/, '') }],
  // The C SDK refuses it.
  ['0x0578: a public key followed by a line break', { suite: 0x0578, publicKey: (point) => `${point.toString('base64')}\n` }],
]

/** The DER signature with a zero byte before r, which DER's minimal encoding forbids. */
const needlessZero = (der: Buffer) => {
  const [r, s] = derIntegers(der)
  return derSignature(Buffer.concat([Buffer.alloc(1), r]), s)
}

/** A 0x0578 message whose public key is in base64url, made again until the key has a `-` or `_` (else it is base64 without padding). */
function inBase64Url(): ReturnType<typeof craftV2> {
  for (;;) {
    let urlOnly = false
    const crafted = craftV2({
      suite: 0x0578,
      publicKey: (point) => {
        const text = point.toString('base64url')
        urlOnly = /[-_]/.test(text)
        return text
      },
    })
    if (urlOnly) return crafted
  }
}

const flipped = (bytes: Buffer, at: number) => Buffer.from(bytes.map((byte, index) => (index === at ? byte ^ 1 : byte)))

/** Refused by kms-envelope with that code, and by the four official SDKs but where the comment says otherwise. */
export const V2_REFUSED: [string, () => ReturnType<typeof craftV2>, string][] = [
  ['a commitment that does not match', () => craftV2({ commitment: (right) => flipped(right, 0) }), 'COMMITMENT_MISMATCH'],
  ['suite 0x0078 in version 2', () => craftV2({ suite: 0x0078 }), 'MALFORMED_MESSAGE'],
  ['suite 0x0478 in version 1', () => craftV1({ suite: 0x0478 }), 'MALFORMED_MESSAGE'],
  ['0x0478 with a public key in its context', () => craftV2({ pairs: [['a', '1'], ['aws-crypto-public-key', 'AAAA']] }), 'MALFORMED_MESSAGE'],
  ['0x0578 with no public key in its context', () => craftV2({ suite: 0x0578, publicKey: () => undefined }), 'MALFORMED_MESSAGE'],
  ['0x0578: an uncompressed public key', () => craftV2({ suite: 0x0578, publicKey: (_, uncompressed) => uncompressed.toString('base64') }), 'SIGNATURE_INVALID'],
  // The official JavaScript SDK (Buffer's decoder) and the C SDK accept it.
  ['0x0578: a public key in base64url', inBase64Url, 'SIGNATURE_INVALID'],
  ['0x0578: a public key of the other parity', () => craftV2({ suite: 0x0578, publicKey: (point) => flipped(point, 0).toString('base64') }), 'SIGNATURE_INVALID'],
  ['0x0578: a public key with one bit of x changed', () => craftV2({ suite: 0x0578, publicKey: (point) => flipped(point, 48).toString('base64') }), 'SIGNATURE_INVALID'],
  ['0x0578: a public key of 49 bytes starting 0x04', () => craftV2({ suite: 0x0578, publicKey: (point) => Buffer.concat([Buffer.of(4), point.subarray(1)]).toString('base64') }), 'SIGNATURE_INVALID'],
  // DER as it should not be written, signatures a byte longer than they were signed (so shortSignature: the format's
  // footer holds at most 104 bytes, the longest DER signature of P-384, and refuses longer ones as malformed).
  ['0x0578: a signature with a needless zero byte in r', () => craftV2({ suite: 0x0578, signature: (_, signed, key) => needlessZero(shortSignature(signed, key)) }), 'SIGNATURE_INVALID'],
  ['0x0578: a signature with a long-form length', () => craftV2({ suite: 0x0578, signature: (_, signed, key) => derSignature(...derIntegers(shortSignature(signed, key)), 2) }), 'SIGNATURE_INVALID'],
  ['0x0578: a signature followed by a byte', () => craftV2({ suite: 0x0578, signature: (_, signed, key) => Buffer.concat([shortSignature(signed, key), Buffer.alloc(1)]) }), 'SIGNATURE_INVALID'],
  ['0x0578: a signature as r and s (IEEE P1363)', () => craftV2({ suite: 0x0578, signature: p1363Of }), 'SIGNATURE_INVALID'],
  ['0x0578: a signature of the header alone', () => craftV2({ suite: 0x0578, signature: (_, signed, key) => sign('sha384', signed.subarray(0, 200), key) }), 'SIGNATURE_INVALID'],
  ['0x0578: a signature made with SHA-256', () => craftV2({ suite: 0x0578, signature: (_, signed, key) => sign('sha256', signed, key) }), 'SIGNATURE_INVALID'],
  ...V2_REFUSED_TOO.map(([name, options]): [string, () => ReturnType<typeof craftV2>, string] => [`version 2: ${name}`, () => craftV2(options), 'MALFORMED_MESSAGE']),
]

/** Every case, made: `expected` is 'accepted' (with the context a=1, b=2 unless the case gives another), or the code of its refusal. */
export function craftedCases(): Array<{ name: string; crafted: Crafted; expected: 'accepted' | string; context: Record<string, string> }> {
  const context = { a: '1', b: '2' }
  return [
    ...ACCEPTED.map(([name, options, stored = context]) => ({ name, crafted: craftV1(options), expected: 'accepted', context: stored })),
    ...REFUSED.map(([name, options]) => ({ name, crafted: craftV1(options), expected: 'MALFORMED_MESSAGE', context })),
    ...V2_ACCEPTED.map(([name, options]) => ({ name, crafted: craftV2(options), expected: 'accepted', context })),
    ...V2_REFUSED.map(([name, craft, code]) => ({ name, crafted: craft(), expected: code, context })),
  ]
}
