import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import {
  decrypt,
  decryptStream,
  encrypt,
  encryptStream,
  Base64MessageError,
  CommitmentPolicyError,
  ConfigurationError,
  TruncatedMessageError,
  EncryptionContextMismatchError,
  EnvelopeError,
  InvalidEncryptionContextError,
  LimitExceededError,
  MalformedMessageError,
  NoDecryptableKeyError,
  TooManyEncryptedDataKeysError,
  KmsKeyring,
  MultiKeyring,
  RawAesKeyring,
  RawRsaKeyring,
  DefaultMaterialsManager,
  type Keyring,
  type MaterialsManager,
} from '../src/index.js'
import { decryptStream as browserDecryptStream } from '../src/browser.js'
import { decryptWith } from '../src/decrypt.js'
import { nodeBackend } from '../src/backend/node.js'
import type { AeadKey, CryptoBackend } from '../src/backend/types.js'
import { signatureLength, uint16 as u16, uint32 as u32 } from './helpers/wire.js'
import { craftV1, dataKeyKeyring } from './helpers/craft.js'
import { FakeKms } from './helpers/fake-kms.js'
import { aesKeyring, rejectionOf, rsaKeyring, rsaPem, spyKeyring, turnsDuring } from './helpers/fixtures.js'
import { chunked, readAll } from './helpers/web-streams.js'

const keyring = aesKeyring()
const allow = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' } as const
const forbid = { commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' } as const

function field(bytes: Buffer | string): Buffer {
  const value = typeof bytes === 'string' ? Buffer.from(bytes) : bytes
  return Buffer.concat([u16(value.length), value])
}

/** A hand-built v1 header body for suite 0x0178, with pieces overridable to break one check at a time. */
function v1Header(overrides: Partial<Record<'version' | 'type' | 'suite' | 'aad' | 'edks' | 'contentType' | 'reserved' | 'ivLength' | 'frameLength', Buffer>> = {}): Buffer {
  const edk = Buffer.concat([field('test'), field('key-1'), field(Buffer.alloc(48))])
  return Buffer.concat([
    overrides.version ?? Buffer.from([1]),
    overrides.type ?? Buffer.from([0x80]),
    overrides.suite ?? u16(0x0178),
    Buffer.alloc(16, 9),
    overrides.aad ?? u16(0),
    overrides.edks ?? Buffer.concat([u16(1), edk]),
    overrides.contentType ?? Buffer.from([2]),
    overrides.reserved ?? u32(0),
    overrides.ivLength ?? Buffer.from([12]),
    overrides.frameLength ?? u32(4096),
    Buffer.alloc(12 + 16),
  ])
}

async function codeOf(ciphertext: Uint8Array, options: Parameters<typeof decrypt>[2] = allow): Promise<string> {
  const error = await rejectionOf(decrypt(keyring, ciphertext, options))
  expect(error).toBeInstanceOf(EnvelopeError)
  return (error as EnvelopeError).code
}

/** The code and message of a refusal: the message tells which of the checks that share a code refused. */
async function refusalBy(promise: Promise<unknown>): Promise<string> {
  const error = await rejectionOf(promise)
  expect(error).toBeInstanceOf(EnvelopeError)
  return `${(error as EnvelopeError).code}: ${(error as Error).message}`
}

/** `refusalBy` for one-shot decrypt of `ciphertext`. */
const refusalOf = (ciphertext: Uint8Array): Promise<string> => refusalBy(decrypt(keyring, ciphertext, allow))

describe('decrypt rejects bad input with a specific error', () => {
  it('wrong wrapping key: no keyring could decrypt, carrying the keyring cause', async () => {
    const { ciphertext } = await encrypt(keyring, 'secret')
    const error = await rejectionOf(decrypt(aesKeyring(32, 'key-1', 8), ciphertext))
    expect(error).toBeInstanceOf(NoDecryptableKeyError)
    expect((error as NoDecryptableKeyError).failures).toHaveLength(1)
    expect((error as NoDecryptableKeyError).failures[0]?.keyring).toBe('RawAesKeyring')
  })

  it('a keyring with another key name: no decryptable key', async () => {
    const { ciphertext } = await encrypt(keyring, 'secret')
    expect(await refusalBy(decrypt(aesKeyring(32, 'other'), ciphertext))).toBe(
      'NO_DECRYPTABLE_KEY: No keyring could decrypt a data key: No encrypted data key is for this keyring (the message has keys from: "test" "key-1").',
    )
    // A name of one character is shown too.
    const short = await encrypt(aesKeyring(32, 'k'), 'secret')
    expect(await refusalBy(decrypt(aesKeyring(32, 'other'), short.ciphertext))).toMatch(/\(the message has keys from: "test" "k"\)\.$/)
  })

  it('data keys of other providers: the error names a few of them, quoted, however many and long they are', async () => {
    // Provider IDs come from the message, so a hostile one can hold thousands, each up to 64 KB.
    const namespaces = Array.from({ length: 40 }, (_, index) => `provider-${index}\n${'x'.repeat(2000)}`)
    const children = namespaces.map((keyNamespace) => new RawAesKeyring({ keyNamespace, keyName: 'k', wrappingKey: new Uint8Array(32).fill(1) }))
    const { ciphertext } = await encrypt(new MultiKeyring({ generator: children[0], children: children.slice(1) }), 'secret', { algorithmSuite: 0x0478 })
    const { message } = (await rejectionOf(decrypt(keyring, ciphertext))) as Error
    expect(message).toContain('the message has keys from: "provider-0\\nxxx')
    expect(message).toContain(' and 30 more).')
    expect(message).not.toContain('\n')
    expect(message.length).toBeLessThan(2000)
  })

  it('no data key is for the keyring: the error names each one the message has by provider and key (KMS key ARN, raw key name)', async () => {
    const fake = new FakeKms()
    const arn = fake.createKey('us-east-1')
    // Provider info that is neither text nor a raw AES key's name and IV fields is left out.
    const binaryInfo: Keyring = {
      onEncrypt: async (materials) => {
        const edk = { providerId: 'custom', providerInfo: new Uint8Array([0xff, 0, 1]), ciphertext: new Uint8Array([1]) }
        return Object.assign({}, materials, { encryptedDataKeys: [...materials.encryptedDataKeys, edk] })
      },
      onDecrypt: async (materials) => materials,
    }
    const children = [aesKeyring(32, 'aes-1'), rsaKeyring(), binaryInfo]
    const { ciphertext } = await encrypt(new MultiKeyring({ generator: new KmsKeyring({ generatorKeyId: arn, clientSupplier: fake.supplier }), children }), 'secret')
    const { message } = (await rejectionOf(decrypt(aesKeyring(32, 'aes-2'), ciphertext))) as Error
    expect(message).toContain(`the message has keys from: "aws-kms" "${arn}", "test" "aes-1", "test" "rsa-1", "custom").`)
  })

  it('no data key is for the keyring: provider info that is empty, has a control character, or only looks like a raw AES key\'s is not shown', async () => {
    const aesFields = Uint8Array.of(0, 0, 0, 128, 0, 0, 0, 12)
    const infos = [
      new Uint8Array(0),
      new TextEncoder().encode('a\u0001b'),
      Uint8Array.of(...new TextEncoder().encode('abc'), ...aesFields, ...new Uint8Array(12).fill(0xff)), // shown: a raw AES key's name
      Uint8Array.of(...new TextEncoder().encode('abc'), ...new Uint8Array(20).fill(0xff)), // no tag and IV lengths
      Uint8Array.of(...aesFields, ...new Uint8Array(12).fill(0xff)), // the fields, with no name before them
    ]
    const writer: Keyring = {
      onEncrypt: async (materials, backend) => {
        const edks = infos.map((providerInfo, index) => ({ providerId: `c${index}`, providerInfo, ciphertext: new Uint8Array([1]) }))
        return Object.assign({}, await keyring.onEncrypt(materials, backend), { encryptedDataKeys: edks })
      },
      onDecrypt: async (materials) => materials,
    }
    const { ciphertext } = await encrypt(writer, 'secret', { algorithmSuite: 0x0478 })
    const { message } = (await rejectionOf(decrypt(keyring, ciphertext))) as Error
    expect(message).toContain('the message has keys from: "c0", "c1", "c2" "abc", "c3", "c4").')
  })

  it('a multi-keyring reports each child failure', async () => {
    const { ciphertext } = await encrypt(keyring, 'secret')
    const multi = new MultiKeyring({ children: [aesKeyring(32, 'key-1', 3), aesKeyring(16, 'other')] })
    const error = (await rejectionOf(decrypt(multi, ciphertext))) as NoDecryptableKeyError
    expect(error).toMatchObject({ code: 'NO_DECRYPTABLE_KEY', message: 'No keyring in the MultiKeyring could decrypt a data key (1 failed).' })
    expect(error.failures.map((failure) => failure.keyring)).toEqual(['RawAesKeyring'])
  })

  it('wrong expected encryption context', async () => {
    const { ciphertext } = await encrypt(keyring, 'secret', { encryptionContext: { tenant: 'a' } })
    expect(await refusalBy(decrypt(keyring, ciphertext, { encryptionContext: { tenant: 'b' } }))).toBe(`ENCRYPTION_CONTEXT_MISMATCH: The message's encryption context has a different value for "tenant" than the caller requires.`)
    const error = await rejectionOf(decrypt(keyring, ciphertext, { encryptionContext: { tenant: 'b' } }))
    expect(error).toBeInstanceOf(EncryptionContextMismatchError)
    // A pair the message does not store is appended and authenticated (spec: framework/cmm-interface.md#decrypt-materials):
    // the raw AES keyring binds the context, so it cannot unwrap the data key, and the error names the unstored pair.
    const unstored = await rejectionOf(decrypt(keyring, ciphertext, { encryptionContext: { missing: 'x' } }))
    expect((unstored as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
    expect((unstored as Error).message).toMatch(/does not store \("missing"\).*did not authenticate/)
  })

  it('too many data keys, on decrypt before any keyring runs and on encrypt', async () => {
    const multi = new MultiKeyring({ generator: keyring, children: [aesKeyring(16, 'k2'), aesKeyring(24, 'k3')] })
    const { ciphertext } = await encrypt(multi, 'secret')
    let keyringCalls = 0
    const spy = { onEncrypt: keyring.onEncrypt.bind(keyring), onDecrypt: async (...args: Parameters<typeof keyring.onDecrypt>) => { keyringCalls++; return keyring.onDecrypt(...args) } }
    const error = await rejectionOf(decrypt(spy, ciphertext, { maxEncryptedDataKeys: 2 }))
    expect(error).toBeInstanceOf(TooManyEncryptedDataKeysError)
    expect(keyringCalls).toBe(0)
    await decrypt(spy, ciphertext, { maxEncryptedDataKeys: 3 })
    expect(keyringCalls).toBe(1)
    expect(((await rejectionOf(encrypt(multi, 'secret', { maxEncryptedDataKeys: 2 }))) as Error).message).toBe(
      'The keyrings produced 3 encrypted data keys; maxEncryptedDataKeys allows 2.',
    )
    // As many as the keyrings make is allowed, and so is the most a header holds.
    for (const maxEncryptedDataKeys of [3, 0xffff]) {
      expect((await encrypt(multi, 'secret', { maxEncryptedDataKeys })).header.encryptedDataKeys).toHaveLength(3)
    }
  })

  it('a non-committing message under REQUIRE_ENCRYPT_REQUIRE_DECRYPT, refused before the materials manager is asked, one-shot and streamed', async () => {
    const { ciphertext } = await encrypt(keyring, 'secret', { algorithmSuite: 0x0178, ...forbid })
    // A manager of the caller's own, which need not check the policy itself (the default one does).
    const inner = new DefaultMaterialsManager(keyring)
    let asked = 0
    const manager: MaterialsManager = {
      getEncryptionMaterials: (request, backend) => inner.getEncryptionMaterials(request, backend),
      getDecryptionMaterials: (request, backend) => (asked++, inner.getDecryptionMaterials(request, backend)),
    }
    const error = await rejectionOf(decrypt(manager, ciphertext))
    expect(error).toBeInstanceOf(CommitmentPolicyError)
    const streamed = await rejectionOf(readAll(chunked(ciphertext, 7).pipeThrough(decryptStream(manager))))
    expect(streamed).toBeInstanceOf(CommitmentPolicyError)
    expect(asked).toBe(0)
    expect((await decrypt(manager, ciphertext, allow)).plaintext).toEqual(new TextEncoder().encode('secret'))
  })

  it('commitment policy on encrypt', async () => {
    const requiring = await rejectionOf(encrypt(keyring, 'x', { algorithmSuite: 0x0178 }))
    expect(requiring).toBeInstanceOf(CommitmentPolicyError)
    expect((requiring as Error).message).toBe(
      'Commitment policy REQUIRE_ENCRYPT_REQUIRE_DECRYPT requires a committing suite (0x0478 or 0x0578) to encrypt; 0x0178 does not commit to its key.',
    )
    const forbidding = await rejectionOf(encrypt(keyring, 'x', { algorithmSuite: 0x0478, ...forbid }))
    expect(forbidding).toBeInstanceOf(CommitmentPolicyError)
    expect((forbidding as Error).message).toBe('Commitment policy FORBID_ENCRYPT_ALLOW_DECRYPT forbids committing suites; 0x0478 commits. Choose a non-committing suite.')
    const { header } = await encrypt(keyring, 'x', forbid)
    expect(header.algorithmSuiteId).toBe(0x0378)
  })

  it('empty input and garbage', async () => {
    expect(await refusalOf(new Uint8Array(0))).toBe('MALFORMED_MESSAGE: The ciphertext is empty.')
    expect(await refusalOf(new TextEncoder().encode('this is not a message at all'))).toBe(
      'MALFORMED_MESSAGE: Unknown message format version 0x74; expected 0x01 or 0x02.',
    )
    expect(await refusalOf(new Uint8Array([1]))).toBe('TRUNCATED_MESSAGE: The message ends inside its message type: 1 byte needed at offset 1, 0 left.')
    expect(await refusalOf(new Uint8Array([2, 5]))).toBe('TRUNCATED_MESSAGE: The message ends inside its algorithm suite ID: 2 bytes needed at offset 1, 1 left.')
  })

  it('a base64-encoded message says so', async () => {
    const { ciphertext } = await encrypt(keyring, 'secret')
    const error = await rejectionOf(decrypt(keyring, new TextEncoder().encode(Buffer.from(ciphertext).toString('base64'))))
    expect(error).toBeInstanceOf(Base64MessageError)
    expect((error as Error).message).toMatch(/base64/)
    const v1 = (await encrypt(keyring, 'secret', { algorithmSuite: 0x0014, ...forbid })).ciphertext
    expect(await codeOf(new TextEncoder().encode(Buffer.from(v1).toString('base64')))).toBe('BASE64_ENCODED_MESSAGE')
  })

  it('a hex-encoded message says so: lower or upper case, or as PostgreSQL prints bytea (after \\x)', async () => {
    const v2 = (await encrypt(keyring, 'secret')).ciphertext
    const v1 = (await encrypt(keyring, 'secret', { algorithmSuite: 0x0014, ...forbid })).ciphertext
    const hexOf = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex')
    const texts = [hexOf(v2), hexOf(v1), hexOf(v2).toUpperCase(), `\\x${hexOf(v2)}`, `\\x${hexOf(v1)}`]
    for (const text of texts) {
      const error = await rejectionOf(decrypt(keyring, new TextEncoder().encode(text), forbid))
      expect(error, text.slice(0, 20)).toMatchObject({ code: 'MALFORMED_MESSAGE', message: 'The ciphertext looks hex-encoded. Decode it to bytes before calling decrypt.' })
      const streamed = decryptStream(keyring, forbid)
      void streamed.readable.getReader().read().catch(() => undefined)
      expect(await rejectionOf(streamed.writable.getWriter().write(new TextEncoder().encode(text))), text.slice(0, 20)).toMatchObject({ message: /looks hex-encoded/ })
    }
    // Text that merely begins with those digits is an unknown version, as before.
    for (const text of ['01 January 2026: not a message', '0205 is a number', '02057800']) {
      expect(await rejectionOf(decrypt(keyring, new TextEncoder().encode(text))), text).toMatchObject({ code: 'MALFORMED_MESSAGE', message: 'Unknown message format version 0x30; expected 0x01 or 0x02.' })
    }
  })

  it('text detection reads a fixed prefix: 8 to 64 characters of base64, 16 hex digits (after \\x)', async () => {
    const v2 = Buffer.from((await encrypt(keyring, 'secret')).ciphertext)
    const text = (value: string) => new TextEncoder().encode(value)
    const base64 = v2.toString('base64')
    // Fewer than 8 characters are too few to call base64; 8 are enough.
    expect(await rejectionOf(decrypt(keyring, text(base64.slice(0, 7))))).toMatchObject({ message: /^Unknown message format version 0x41/ })
    expect(await rejectionOf(decrypt(keyring, text(base64.slice(0, 8))))).toBeInstanceOf(Base64MessageError)
    // Only the first 64 characters are read: what follows them may be anything.
    expect(await rejectionOf(decrypt(keyring, text(`${base64.slice(0, 64)}!${base64.slice(64)}`)))).toBeInstanceOf(Base64MessageError)
    expect(await rejectionOf(decrypt(keyring, text(`${base64.slice(0, 63)}!${base64.slice(63)}`)))).toMatchObject({ message: /^Unknown message format version/ })
    // A stream holds its first 63 bytes without a verdict, and gives one at the 64th.
    const streamed = decryptStream(keyring)
    void streamed.readable.getReader().read().catch(() => undefined)
    const writer = streamed.writable.getWriter()
    await writer.write(text(base64.slice(0, 63)))
    expect(await rejectionOf(writer.write(text(base64.slice(63, 64))))).toBeInstanceOf(Base64MessageError)
    // Hex: the version's two digits and 14 more, after "\\x" or not.
    const hex = v2.toString('hex')
    for (const [digits, prefix] of [[16, ''], [16, '\\x'], [15, ''], [15, '\\x']] as const) {
      const error = await rejectionOf(decrypt(keyring, text(prefix + hex.slice(0, digits))))
      expect(error, `${prefix}${digits} digits`).toMatchObject({ message: digits === 16 ? /looks hex-encoded/ : /^Unknown message format version 0x(30|5c)/ })
    }
  })

  it('a header claiming 65535 data keys fails fast without allocating', async () => {
    const header = v1Header({ edks: Buffer.concat([u16(0xffff), field('test'), field('key-1'), field(Buffer.alloc(48))]) })
    const started = performance.now()
    expect(await refusalOf(header)).toBe('TRUNCATED_MESSAGE: The message ends inside its key provider ID: 512 bytes needed at offset 89, 36 left.')
    expect(await rejectionOf(decrypt(keyring, header, { ...allow, maxEncryptedDataKeys: 10 }))).toBeInstanceOf(TooManyEncryptedDataKeysError)
    expect(performance.now() - started).toBeLessThan(1000)
  })

  it('a 4 GiB frame length fails fast without allocating', async () => {
    const { ciphertext } = await encrypt(keyring, new Uint8Array(100), { algorithmSuite: 0x0178, frameLength: 16, ...forbid })
    const mutated = Buffer.from(ciphertext)
    // frame length sits right before the 12-byte IV and 16-byte tag that close a v1 header
    const headerEnd = findV1HeaderEnd(mutated)
    mutated.writeUInt32BE(0xffffffff, headerEnd - 28 - 4)
    const before = process.memoryUsage().arrayBuffers
    // The header tag no longer matches, but the body scan runs first: the first regular frame would need 4 GiB.
    expect(await refusalOf(mutated)).toBe('TRUNCATED_MESSAGE: The message ends inside its frame content: 4294967295 bytes needed at offset 161, 316 left.')
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 1024 * 1024)
  })

  it('a final frame claiming 4 GiB of content is truncated, not allocated', async () => {
    const { ciphertext } = await encrypt(keyring, new Uint8Array(10), { algorithmSuite: 0x0178, frameLength: 0xffffffff, ...forbid })
    const mutated = Buffer.from(ciphertext)
    const contentLengthAt = findV1HeaderEnd(mutated) + 4 + 4 + 12
    expect(mutated.readUInt32BE(contentLengthAt)).toBe(10)
    mutated.writeUInt32BE(0xfffffff0, contentLengthAt)
    expect(await refusalOf(mutated)).toBe('TRUNCATED_MESSAGE: The message ends inside its final frame content: 4294967280 bytes needed at offset 169, 26 left.')
  })

  it('maxBodySize', async () => {
    const { ciphertext } = await encrypt(keyring, new Uint8Array(10000))
    const error = await rejectionOf(decrypt(keyring, ciphertext, { maxBodySize: 5000 }))
    expect(error).toBeInstanceOf(LimitExceededError)
    expect((await decrypt(keyring, ciphertext, { maxBodySize: 20000 })).plaintext).toHaveLength(10000)
  })

  it('maxBodySize takes a body of exactly its size, framed or not, and refuses one a byte larger', async () => {
    // 100 bytes in 64-byte frames: a regular frame (4 + 12 + 64 + 16) and a final one (4 + 4 + 12 + 4 + 36 + 16).
    // Non-framed: IV, content length, content and tag (12 + 8 + 100 + 16).
    for (const [contentType, bodySize] of [[2, 172], [1, 136]] as const) {
      const { ciphertext, dataKey } = craftV1({ contentType, frameLength: contentType === 2 ? 64 : 0, plaintext: Buffer.alloc(100, 1) })
      const options = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' } as const
      expect((await decrypt(dataKeyKeyring(dataKey), ciphertext, { ...options, maxBodySize: bodySize })).plaintext).toEqual(new Uint8Array(100).fill(1))
      expect(await refusalBy(decrypt(dataKeyKeyring(dataKey), ciphertext, { ...options, maxBodySize: bodySize - 1 }))).toBe(
        `LIMIT_EXCEEDED: The message body is larger than maxBodySize (${bodySize - 1} bytes).`,
      )
    }
  })

  it('maxBodySize refuses a body as soon as its frames pass it, before a later frame is read', async () => {
    // Ten regular frames of 48 bytes (sequence number, IV, 16 content bytes, tag), then an empty final frame of 40.
    const { ciphertext } = await encrypt(keyring, new Uint8Array(160), { algorithmSuite: 0x0478, frameLength: 16 })
    const bodyAt = ciphertext.length - 10 * 48 - 40
    const mutated = Buffer.from(ciphertext)
    mutated.writeUInt32BE(99, bodyAt + 7 * 48) // frame 8 is out of order
    expect(await refusalOf(mutated)).toBe('MALFORMED_MESSAGE: Frame sequence number 99 is out of order; expected 8.')
    const expected = 'LIMIT_EXCEEDED: The message body is larger than maxBodySize (100 bytes).'
    expect(await refusalBy(decrypt(keyring, mutated, { maxBodySize: 100 }))).toBe(expected)
    for (const size of [mutated.length, 7]) {
      expect(await refusalBy(readAll(chunked(mutated, size).pipeThrough(decryptStream(keyring, { maxBodySize: 100 }))))).toBe(expected)
    }
  })

  it('trailing bytes after a complete message, signed or not', async () => {
    for (const algorithmSuite of [0x0478, 0x0578]) {
      const { ciphertext } = await encrypt(keyring, 'secret', { algorithmSuite })
      expect(await refusalOf(Buffer.concat([ciphertext, Buffer.from([0])]))).toBe('TRAILING_DATA: 1 byte follows the end of the message; pass exactly one message to decrypt.')
      expect(await refusalOf(Buffer.concat([ciphertext, Buffer.from([0, 0])]))).toBe('TRAILING_DATA: 2 bytes follow the end of the message; pass exactly one message to decrypt.')
    }
  })
})

describe('header checks, one at a time', () => {
  // Each case names its message too: the code alone would still pass were the check gone and a later one to refuse
  // the same bytes (a content type of 3 read as non-framed, say, is refused for its frame length).
  const cases: [string, Buffer, string, string][] = [
    ['unknown version', v1Header({ version: Buffer.from([3]) }), 'MALFORMED_MESSAGE', 'Unknown message format version 0x03; expected 0x01 or 0x02.'],
    ['unknown type', v1Header({ type: Buffer.from([0x81]) }), 'MALFORMED_MESSAGE', 'Unknown message type 0x81; expected 0x80.'],
    ['unknown suite', v1Header({ suite: u16(0x0999) }), 'UNSUPPORTED_ALGORITHM_SUITE', 'The message uses unknown algorithm suite 0x0999.'],
    ['v2 suite in a v1 header', v1Header({ suite: u16(0x0478) }), 'MALFORMED_MESSAGE', 'Algorithm suite 0x0478 cannot appear in a version 1 message.'],
    ['zero data keys', v1Header({ edks: u16(0) }), 'MALFORMED_MESSAGE', 'The message has no encrypted data keys.'],
    ['unknown content type', v1Header({ contentType: Buffer.from([3]) }), 'MALFORMED_MESSAGE', 'Unknown content type 0x3; expected framed (2) or non-framed (1).'],
    ['unknown content type of two hex digits', v1Header({ contentType: Buffer.from([0x2a]) }), 'MALFORMED_MESSAGE', 'Unknown content type 0x2a; expected framed (2) or non-framed (1).'],
    ['reserved field set', v1Header({ reserved: u32(1) }), 'MALFORMED_MESSAGE', 'The header reserved field is not zero.'],
    ['wrong IV length', v1Header({ ivLength: Buffer.from([16]) }), 'MALFORMED_MESSAGE', 'The header IV length is 16; suite 0x0178 uses 12.'],
    ['framed with frame length 0', v1Header({ frameLength: u32(0) }), 'MALFORMED_MESSAGE', 'A framed message has frame length 0.'],
    ['non-framed with a frame length', v1Header({ contentType: Buffer.from([1]) }), 'MALFORMED_MESSAGE', 'A non-framed message has frame length 4096; it must be 0.'],
    ['context with zero pairs', v1Header({ aad: field(u16(0)) }), 'MALFORMED_MESSAGE', 'The message stores an encryption context with zero pairs but a non-zero length.'],
    ['context with a duplicate key', v1Header({ aad: field(Buffer.concat([u16(2), field('a'), field('1'), field('a'), field('2')])) }), 'MALFORMED_MESSAGE', 'The message\'s encryption context has key "a" twice.'],
    ['context whose pair runs past it', v1Header({ aad: field(Buffer.concat([u16(1), field('a'), u16(5), Buffer.from('1')])) }), 'MALFORMED_MESSAGE', "The message's encryption context is shorter than its pairs claim."],
    ['context with bytes after its pairs', v1Header({ aad: field(Buffer.concat([u16(1), field('a'), field('1'), Buffer.from([0])])) }), 'MALFORMED_MESSAGE', "The message's encryption context has bytes after its last pair."],
    ['context key not UTF-8', v1Header({ aad: field(Buffer.concat([u16(1), field(Buffer.from([0xff])), field('1')])) }), 'MALFORMED_MESSAGE', "The message's encryption context key is not valid UTF-8."],
    ['provider ID not UTF-8', v1Header({ edks: Buffer.concat([u16(1), field(Buffer.from([0xc3])), field('k'), field('x')]) }), 'MALFORMED_MESSAGE', "The message's key provider ID is not valid UTF-8."],
    ['signing suite without a public key', v1Header({ suite: u16(0x0378) }), 'MALFORMED_MESSAGE', 'Signing suite message has no "aws-crypto-public-key" in its encryption context.'],
  ]
  it.each(cases)('%s', async (_name, header, code, expected) => {
    // Pad with a body-shaped tail so only the header check can fail first.
    const message = Buffer.concat([header, u32(0xffffffff), u32(1), Buffer.alloc(12), u32(0), Buffer.alloc(16), field(Buffer.alloc(0))])
    const error = await rejectionOf(decrypt(keyring, message, allow))
    expect(error).toBeInstanceOf(MalformedMessageError)
    expect((error as EnvelopeError).code).toBe(code)
    expect((error as Error).message).toBe(expected)
  })

  it('a public key on a non-signing suite', async () => {
    const aad = field(Buffer.concat([u16(1), field('aws-crypto-public-key'), field('AAAA')]))
    const message = Buffer.concat([v1Header({ aad }), u32(0xffffffff), u32(1), Buffer.alloc(12), u32(0), Buffer.alloc(16)])
    expect(await refusalOf(message)).toBe('MALFORMED_MESSAGE: A non-signing suite message carries "aws-crypto-public-key" in its encryption context.')
  })

  it('an invalid signing public key', async () => {
    const aad = field(Buffer.concat([u16(1), field('aws-crypto-public-key'), field(Buffer.alloc(49, 2).toString('base64'))]))
    const header = v1Header({ suite: u16(0x0378), aad })
    const message = Buffer.concat([header, u32(0xffffffff), u32(1), Buffer.alloc(12), u32(0), Buffer.alloc(16), field(Buffer.alloc(0))])
    expect(await refusalBy(decrypt(keyring, message, allow))).toBe("SIGNATURE_INVALID: The message's signing public key is not a valid P-384 point.")
  })

  it('frames out of order and oversized final frames', async () => {
    const { ciphertext } = await encrypt(keyring, new Uint8Array(40), { algorithmSuite: 0x0178, frameLength: 16, ...forbid })
    const headerEnd = findV1HeaderEnd(Buffer.from(ciphertext))
    const outOfOrder = Buffer.from(ciphertext)
    outOfOrder.writeUInt32BE(2, headerEnd)
    expect(await refusalOf(outOfOrder)).toBe('MALFORMED_MESSAGE: Frame sequence number 2 is out of order; expected 1.')
    const finalAt = headerEnd + 2 * (4 + 12 + 16 + 16)
    const oversized = Buffer.from(ciphertext)
    oversized.writeUInt32BE(17, finalAt + 4 + 4 + 12)
    expect(await refusalOf(oversized)).toBe('MALFORMED_MESSAGE: The final frame claims 17 content bytes, more than the frame length 16.')
  })

  it.each([
    ['garbage DER', (length: number) => Buffer.alloc(length, 0xff)],
    ['an empty signature', () => Buffer.alloc(0)],
    ['a valid-looking DER of zeros', (length: number) => Buffer.concat([Buffer.from([0x30, length - 2]), Buffer.alloc(length - 2)])],
  ])('a footer with %s fails signature verification', async (_name, makeSignature) => {
    const { ciphertext } = await encrypt(keyring, 'x', { algorithmSuite: 0x0578 })
    const length = signatureLength(ciphertext)
    const signature = makeSignature(length)
    const mutated = Buffer.concat([ciphertext.subarray(0, ciphertext.length - 2 - length), u16(signature.length), signature])
    expect(await refusalOf(mutated)).toBe('SIGNATURE_INVALID: The message signature does not verify: the message was altered.')
  })

  // One-shot decrypt checks mid-sized messages' signatures in the background while it decrypts, and small
  // or large ones before decrypting: every path must refuse a well-formed signature made by another key.
  it.each([
    ['checked before decrypting (small)', 1000],
    ['checked in the background (1 MiB)', 1024 * 1024],
    ['checked before decrypting (over 8 MiB)', 9 * 1024 * 1024],
  ])('a valid signature of another message is refused when %s', async (_name, size) => {
    const plaintext = new Uint8Array(size)
    const { ciphertext } = await encrypt(keyring, plaintext, { algorithmSuite: 0x0578, frameLength: 65536 })
    const { ciphertext: other } = await encrypt(keyring, plaintext, { algorithmSuite: 0x0578, frameLength: 65536 })
    const otherSignature = other.subarray(other.length - 2 - signatureLength(other))
    const mutated = Buffer.concat([ciphertext.subarray(0, ciphertext.length - 2 - signatureLength(ciphertext)), otherSignature])
    expect(await refusalOf(mutated)).toBe('SIGNATURE_INVALID: The message signature does not verify: the message was altered.')
    const { plaintext: decrypted } = await decrypt(keyring, ciphertext)
    expect(Buffer.compare(decrypted, plaintext)).toBe(0)
  })

  it('a footer claiming an oversized signature', async () => {
    const { ciphertext } = await encrypt(keyring, 'x', { algorithmSuite: 0x0578 })
    const bodyEnd = ciphertext.length - 2 - signatureLength(ciphertext)
    const mutated = Buffer.concat([ciphertext.subarray(0, bodyEnd), u16(500), Buffer.alloc(500)])
    expect(await refusalOf(mutated)).toBe('MALFORMED_MESSAGE: The footer claims a 500-byte signature; ECDSA signatures here are at most 104.')
  })
})

describe('bad options', () => {
  it.each([
    ['frame length 0', { frameLength: 0 }],
    ['fractional frame length', { frameLength: 1.5 }],
    ['frame length beyond 2^32-1', { frameLength: 2 ** 32 }],
    ['unknown suite', { algorithmSuite: 0x0999 }],
    ['unknown policy', { commitmentPolicy: 'SOMETIMES' }],
    ['maxEncryptedDataKeys 0', { maxEncryptedDataKeys: 0 }],
    ['maxEncryptedDataKeys beyond 65535', { maxEncryptedDataKeys: 0x10000 }],
  ])('%s', async (_name, options) => {
    expect(await rejectionOf(encrypt(keyring, 'x', options as never))).toBeInstanceOf(ConfigurationError)
  })

  it('maxEncryptedDataKeys out of range names its range', async () => {
    for (const maxEncryptedDataKeys of [0, 0x10000]) {
      expect(((await rejectionOf(encrypt(keyring, 'x', { maxEncryptedDataKeys }))) as Error).message).toBe(
        `maxEncryptedDataKeys must be an integer from 1 to 65535; got ${maxEncryptedDataKeys}.`,
      )
    }
  })

  it('an unknown suite or policy is quoted in the refusal (a suite given as text said only "got string")', async () => {
    const refusal = async (options: object) => ((await rejectionOf(encrypt(keyring, 'x', options as never))) as Error).message
    expect(await refusal({ algorithmSuite: '0x0578' })).toMatch(/^algorithmSuite must be one of 0x0014, .*, 0x0578; got "0x0578"\.$/)
    expect(await refusal({ algorithmSuite: 0x0999 })).toMatch(/; got 0x0999\.$/)
    expect(await refusal({ commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRED_DECRYPT' })).toBe(
      'commitmentPolicy must be one of REQUIRE_ENCRYPT_REQUIRE_DECRYPT, REQUIRE_ENCRYPT_ALLOW_DECRYPT, FORBID_ENCRYPT_ALLOW_DECRYPT; got "REQUIRE_ENCRYPT_REQUIRED_DECRYPT".',
    )
    const { ciphertext } = await encrypt(keyring, 'x')
    expect(((await rejectionOf(decrypt(keyring, ciphertext, { commitmentPolicy: 7 } as never))) as Error).message).toMatch(/; got 7\.$/)
  })

  it('reserved and non-string encryption context entries', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ 'aws-crypto-public-key': 'x' }, 'encryptionContext key "aws-crypto-public-key" uses the reserved prefix "aws-crypto-"; choose another key.'],
      [{ 'aws-crypto-tenant': 'x' }, 'encryptionContext key "aws-crypto-tenant" uses the reserved prefix "aws-crypto-"; choose another key.'],
      [{ a: 1 }, 'encryptionContext value for key "a" must be a string, got number.'],
      [{ '': 'empty key' }, 'encryptionContext keys must not be empty.'],
    ]
    for (const [encryptionContext, message] of cases) {
      for (const algorithmSuite of [0x0478, 0x0578]) {
        const error = await rejectionOf(encrypt(keyring, 'x', { encryptionContext, algorithmSuite } as never))
        expect(error).toBeInstanceOf(InvalidEncryptionContextError)
        expect((error as Error).message).toBe(message)
      }
    }
  })

  it('null options are no options, for encrypt, decrypt and both kinds of stream', async () => {
    const { ciphertext } = await encrypt(keyring, 'null options', null as never)
    expect(new TextDecoder().decode((await decrypt(keyring, ciphertext, null as never)).plaintext)).toBe('null options')
    const streamed = await readAll(chunked(new TextEncoder().encode('streamed'), 3).pipeThrough(encryptStream(keyring, null as never)))
    const back = await readAll(chunked(streamed, 50).pipeThrough(decryptStream(keyring, null as never)))
    expect(new TextDecoder().decode(back)).toBe('streamed')
  })

  it('decrypt options and inputs', async () => {
    const { ciphertext } = await encrypt(keyring, 'x')
    expect(await rejectionOf(decrypt(keyring, ciphertext, { maxBodySize: -1 }))).toBeInstanceOf(ConfigurationError)
    expect(await rejectionOf(decrypt(keyring, 'text' as never))).toBeInstanceOf(ConfigurationError)
    // What the caller passed instead of bytes, and how to turn it into bytes.
    const hints = await Promise.all(
      ['text', ciphertext.slice().buffer, new DataView(ciphertext.buffer), null].map(async (input) => ((await rejectionOf(decrypt(keyring, input as never))) as Error).message),
    )
    expect(hints).toEqual([
      expect.stringMatching(/got a string: .*base64/),
      expect.stringContaining('got an ArrayBuffer: pass new Uint8Array(buffer)'),
      expect.stringContaining('got another view of bytes'),
      expect.stringContaining('got null'),
    ])
    expect(await rejectionOf(decrypt({} as never, ciphertext))).toBeInstanceOf(ConfigurationError)
  })

  it('encrypt given a plaintext that is not bytes, a string or an async iterable says what it accepts, and what it got', async () => {
    const inputs = [42, null, {}, new ArrayBuffer(4), new Uint16Array(2), [1, 2, 3]]
    const got = ['got number', 'got null', 'got object', 'got an ArrayBuffer: pass new Uint8Array(buffer)', 'got another view of bytes', 'got an array']
    // Bytes in another shape: each says how to pass them.
    const chunks = [new Uint8Array(2), new Uint8Array(3)]
    inputs.push(chunks, Promise.resolve(chunks[0]), new Blob([chunks[0]!]), new Set(chunks), (function* () {})(), new Response('hello'))
    got.push(
      'got an array: pass one Uint8Array of its bytes, or its chunks as an async iterable (Readable.from(chunks) in Node)',
      'got a Promise: await it first',
      'got a Blob: pass blob.stream()',
      'got a synchronous iterable: pass its chunks as an async iterable (Readable.from(iterable) in Node)',
      'got a synchronous iterable: pass its chunks as an async iterable (Readable.from(iterable) in Node)',
      'got a Response: pass response.body',
    )
    for (const [index, input] of inputs.entries()) {
      const error = await rejectionOf(encrypt(keyring, input as never))
      expect(error).toBeInstanceOf(ConfigurationError)
      const { message } = error as Error
      expect(message).toMatch(/^plaintext must be a Uint8Array, a string, or an async iterable or ReadableStream of Uint8Array chunks; /)
      expect(message).toContain(got[index])
    }
    const browser = await import('../src/browser.js')
    const inBrowser = await rejectionOf(browser.encrypt(new browser.RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(16).fill(1) }), 42 as never))
    expect(inBrowser).toBeInstanceOf(browser.ConfigurationError)
    expect((inBrowser as Error).message).toMatch(/^plaintext must be .* ReadableStream .*; got number\.$/)
  })

  it('a chunk that is not bytes: streams and input in pieces say what they got and how to make bytes of it', async () => {
    const streamRefusal = async (stream: ReturnType<typeof encryptStream>, chunk: unknown) => {
      const refusal = rejectionOf(readAll(stream.readable))
      stream.writable.getWriter().write(chunk as Uint8Array).catch(() => undefined)
      return ((await refusal) as Error).message
    }
    expect(await streamRefusal(encryptStream(keyring), new ArrayBuffer(4))).toBe('Stream chunks must be Uint8Array; got an ArrayBuffer: pass new Uint8Array(buffer).')
    expect(await streamRefusal(encryptStream(keyring), 'text')).toMatch(/got a string: encode it first/)
    expect(await streamRefusal(decryptStream(keyring), 'text')).toMatch(/got a string: decode it to bytes first \(a base64 message/)
    expect(await streamRefusal(decryptStream(keyring), new DataView(new ArrayBuffer(4)))).toMatch(/got another view of bytes: pass new Uint8Array\(view.buffer/)
    async function* pieces(chunk: unknown) {
      yield chunk
    }
    const stringChunk = 'got a string: yield its bytes (new TextEncoder().encode(text)); a Node Readable yields strings when it has an encoding (setEncoding) or was made from strings'
    for (const [chunk, got] of [[new ArrayBuffer(4), 'got an ArrayBuffer'], ['text', stringChunk], [7, 'got number']] as const) {
      for (const call of [() => encrypt(keyring, pieces(chunk) as never), () => decrypt(keyring, pieces(chunk) as never)]) {
        const error = await rejectionOf(call())
        expect(error).toBeInstanceOf(ConfigurationError)
        expect((error as Error).message).toContain(`Iterable input must yield Uint8Array chunks; ${got}`)
      }
    }
  })

  it("a Uint8Array of another realm (a vm context, an iframe, Vitest's jsdom) is bytes; another realm's other views are not", async () => {
    const foreign = runInNewContext('new Uint8Array([104, 105])') as Uint8Array
    expect(foreign instanceof Uint8Array).toBe(false)
    const foreignKey = new RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: runInNewContext('new Uint8Array(32).fill(7)') as Uint8Array })
    const { ciphertext } = await encrypt(foreignKey, foreign)
    const copy = runInNewContext('(bytes) => new Uint8Array(bytes)')(Array.from(ciphertext)) as Uint8Array
    expect(new TextDecoder().decode((await decrypt(foreignKey, copy)).plaintext)).toBe('hi')
    const stream = encryptStream(foreignKey)
    const sealed = readAll(stream.readable)
    const writer = stream.writable.getWriter()
    await writer.write(foreign)
    await writer.close()
    expect(new TextDecoder().decode((await decrypt(foreignKey, await sealed)).plaintext)).toBe('hi')
    const signed = runInNewContext('new Int8Array([104, 105])') as unknown
    expect(((await rejectionOf(encrypt(keyring, signed as never))) as Error).message).toContain('got another view of bytes')
  })

  it('an input whose Symbol.asyncIterator getter throws: encrypt and decrypt reject, never throw', async () => {
    const hostile = {
      get [Symbol.asyncIterator](): never {
        throw new Error('getter')
      },
    }
    for (const call of [() => encrypt(keyring, hostile as never), () => decrypt(keyring, hostile as never)]) {
      let thrown: unknown
      let promise: Promise<unknown> | undefined
      try {
        promise = call()
      } catch (error) {
        thrown = error
      }
      expect(thrown).toBeUndefined()
      expect(((await rejectionOf(promise!)) as Error).message).toBe('getter')
    }
  })

  it('a plaintext needing more frames than the format allows', async () => {
    // Checked from the length alone, before any buffer of that size exists.
    const huge = { length: 2 ** 33 } as unknown as Uint8Array
    Object.setPrototypeOf(huge, Uint8Array.prototype)
    const error = await rejectionOf(encrypt(keyring, huge, { frameLength: 1 }))
    expect(error).toBeInstanceOf(EnvelopeError)
  })

  it('an RSA keyring without a private key cannot decrypt', async () => {
    const { ciphertext } = await encrypt(rsaKeyring(), 'x')
    const { publicKey } = rsaPem()
    const encryptOnly = new RawRsaKeyring({ keyNamespace: 'test', keyName: 'rsa-1', publicKey, padding: 'OAEP-SHA256' })
    expect(((await rejectionOf(decrypt(encryptOnly, ciphertext))) as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
  })
})

/** Walk a v1 header written by encrypt to find where its body starts. */
function findV1HeaderEnd(message: Buffer): number {
  let offset = 1 + 1 + 2 + 16
  offset += 2 + message.readUInt16BE(offset)
  const count = message.readUInt16BE(offset)
  offset += 2
  for (let i = 0; i < count * 3; i++) offset += 2 + message.readUInt16BE(offset)
  return offset + 1 + 4 + 1 + 4 + 12 + 16
}


describe('error names', () => {
  it("are their classes' names; an error of a class left without a name (a bundler's anonymous class expression) or renamed by a minifier is named EnvelopeError", async () => {
    const browser = await import('../src/browser.js')
    for (const api of [{ ConfigurationError, TruncatedMessageError }, browser]) {
      expect(String(new api.TruncatedMessageError('cut'))).toBe('TruncatedMessageError: cut')
      const Anonymous = [class extends api.ConfigurationError {}][0]!
      expect(Anonymous.name).toBe('')
      expect(String(new Anonymous('made'))).toBe('EnvelopeError: made')
      // What a minifier leaves, as in a browser application's bundle: its name, not ours, would be the logs' and
      // an error tracker's (which groups by it, so differently on each build).
      const h = class extends api.TruncatedMessageError {}
      expect(h.name).toBe('h')
      expect(new h('cut').stack).toMatch(/^EnvelopeError: cut\n/)
      // A class of the application's that extends ours keeps its name where it ends in Error, as ours do.
      const TenantError = class extends api.ConfigurationError {}
      expect(String(new TenantError('no tenant'))).toBe('TenantError: no tenant')
      // A class whose static name is no string still makes its errors.
      const Odd = class extends api.ConfigurationError {}
      Object.defineProperty(Odd, 'name', { value: 42 })
      expect(String(new Odd('odd'))).toBe('EnvelopeError: odd')
    }
  })
})

describe('base64 detection never throws a foreign error', () => {
  it.each(['A===AAAAAAAA', '====AAAAAAAA', 'AQ\r\n\r\nAAAAAA', '////////////'])('%s', async (text) => {
    const error = await rejectionOf(decrypt(keyring, new TextEncoder().encode(text), allow))
    expect(error).toBeInstanceOf(MalformedMessageError)
  })
})

// Regression tests; the bug they caught: whoever writes a message chooses its frame length, and each frame costs
// about 3 µs whatever its length, so 33 MB of 1-byte frames held the thread for 3.5 seconds in one-shot decrypt, and
// for 4.6 seconds (and 433 MB of frame views) when a stream was written it as one chunk. Now the event loop turns
// between batches of 4,096 frames. These tests count turns and batches, not time.
describe('a message of many small frames lets the event loop turn while it is decrypted', () => {
  const BATCH = 4096
  const frames = 5 * BATCH + 1
  const plaintext = Uint8Array.from({ length: frames - 1 }, (_, index) => index % 251)

  it.each(['0478', '0578', '0178'])('one-shot, suite 0x%s', async (id) => {
    const suite = Number.parseInt(id, 16)
    const options = { frameLength: 1, algorithmSuite: suite, ...(suite === 0x0178 ? forbid : {}) }
    const decryptOptions = suite === 0x0178 ? forbid : {}
    const { ciphertext } = await encrypt(keyring, plaintext, options)
    const few = (await encrypt(keyring, plaintext.subarray(0, 10), options)).ciphertext
    await decrypt(keyring, few, decryptOptions) // the first decrypt loads code on first use, which takes turns
    const baseline = await turnsDuring(decrypt(keyring, few, decryptOptions))
    const many = await turnsDuring(decrypt(keyring, ciphertext, decryptOptions))
    expect(Buffer.from((many.outcome as { plaintext: Uint8Array }).plaintext)).toEqual(Buffer.from(plaintext))
    expect(many.turns - baseline.turns, 'turns beyond those of a 10-frame message').toBeGreaterThanOrEqual(4)
    // A frame that fails after the turns: its error, and no plaintext.
    const tampered = ciphertext.slice()
    const lastTag = tampered.length - (suite === 0x0578 ? 2 + signatureLength(tampered) : 0) - 1
    tampered[lastTag] = (tampered[lastTag] as number) ^ 1
    expect(await rejectionOf(decrypt(keyring, tampered, decryptOptions))).toMatchObject({ code: 'FRAME_AUTHENTICATION_FAILED' })
    if (suite === 0x0578) {
      const badSignature = ciphertext.slice()
      badSignature[badSignature.length - 1] = (badSignature[badSignature.length - 1] as number) ^ 1
      expect(await rejectionOf(decrypt(keyring, badSignature))).toMatchObject({ code: 'SIGNATURE_INVALID' })
    }
  })

  it('an aborted decrypt opens no more frames once the event loop turns (its call has rejected already)', async () => {
    const { ciphertext } = await encrypt(keyring, plaintext, { frameLength: 1, algorithmSuite: 0x0478 })
    let opened = 0
    const { adoptAeadKey: _, ...copying } = nodeBackend // every message key through aeadKey
    const counting: CryptoBackend = {
      ...copying,
      aeadKey(key) {
        const aead = nodeBackend.aeadKey(key) as AeadKey
        const open = aead.open.bind(aead)
        aead.open = (...args) => (opened++, open(...args))
        return aead
      },
    }
    const controller = new AbortController()
    const decrypting = decryptWith(counting, keyring, ciphertext, { signal: controller.signal })
    // The raw AES keyring's unwrap is one open; after it, the frames have begun.
    while (opened < 2) await new Promise((resolve) => setImmediate(resolve))
    controller.abort()
    expect(await rejectionOf(decrypting)).toMatchObject({ code: 'ABORTED', message: 'decrypt was aborted.' })
    expect(opened, 'frames opened before the abort was seen (and the data key)').toBeLessThanOrEqual(2 * BATCH + 1)
    // Unaborted, every frame is opened (and the data key).
    opened = 0
    expect((await decryptWith(counting, keyring, ciphertext)).plaintext.length).toBe(plaintext.length)
    expect(opened).toBe(frames + 1)
  })

  // Reading the structure costs about 0.1 µs a frame: a million frames (33 MB) held the thread for about 0.1 s
  // before the keyring ran. Now the event loop turns every 32,768 frames.
  it('one-shot reads the structure of a message of many small frames over several turns, before any keyring runs', async () => {
    const SCANNED = 8 * BATCH
    const options = { frameLength: 1, algorithmSuite: 0x0478 }
    const { ciphertext } = await encrypt(keyring, new Uint8Array(2 * SCANNED).fill(7), options)
    const few = (await encrypt(keyring, new Uint8Array(10), options)).ciphertext
    const turnsBeforeKeyring = async (message: Uint8Array) => {
      let turns = 0
      let atKeyring = -1
      let done = false
      const tick = (): void => {
        turns++
        if (!done) setImmediate(tick)
      }
      setImmediate(tick)
      const spied = {
        onEncrypt: keyring.onEncrypt.bind(keyring),
        onDecrypt: (...args: Parameters<typeof keyring.onDecrypt>) => ((atKeyring = turns), keyring.onDecrypt(...args)),
      }
      const { plaintext } = await decrypt(spied, message).finally(() => (done = true))
      return { atKeyring, plaintext }
    }
    await turnsBeforeKeyring(few) // code loaded on first use takes turns
    const baseline = (await turnsBeforeKeyring(few)).atKeyring
    const many = await turnsBeforeKeyring(ciphertext)
    expect(many.plaintext).toEqual(new Uint8Array(2 * SCANNED).fill(7))
    expect(many.atKeyring - baseline, 'turns before the keyring beyond those of a 10-frame message').toBeGreaterThanOrEqual(2)
    // Aborted while the structure is read: no more is read, and no keyring runs.
    const { keyring: spy, calls } = spyKeyring(keyring)
    const controller = new AbortController()
    const decrypting = decrypt(spy, ciphertext, { signal: controller.signal })
    await new Promise((resolve) => setImmediate(resolve))
    controller.abort()
    expect(await rejectionOf(decrypting)).toMatchObject({ code: 'ABORTED' })
    for (let turn = 0; turn < 4; turn++) await new Promise((resolve) => setImmediate(resolve))
    expect(calls.decrypt).toBe(0)
  })

  it('a ciphertext transferred away or changed between turns: INVALID_CONFIGURATION, or the changed frame fails', async () => {
    const { ciphertext } = await encrypt(keyring, plaintext, { frameLength: 1, algorithmSuite: 0x0478 })
    const afterTwoTurns = async (change: (bytes: Uint8Array) => void) => {
      const bytes = new Uint8Array(ciphertext)
      const decrypting = decrypt(keyring, bytes)
      await new Promise((resolve) => setImmediate(resolve))
      await new Promise((resolve) => setImmediate(resolve))
      change(bytes)
      return rejectionOf(decrypting)
    }
    expect(await afterTwoTurns((bytes) => structuredClone(bytes.buffer, { transfer: [bytes.buffer] }))).toMatchObject({
      code: 'INVALID_CONFIGURATION',
      message: expect.stringMatching(/^The ciphertext's ArrayBuffer was detached/),
    })
    // The final frame's tag, read after the turns: the change shows.
    expect(await afterTwoTurns((bytes) => void (bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1))).toMatchObject({
      code: 'FRAME_AUTHENTICATION_FAILED',
      message: `Frame ${frames} failed authentication: the message was altered or truncated.`,
    })
  })

  it.each([
    ['0478', 'Node'],
    ['0578', 'Node'],
    ['0478', 'browser'],
  ])('a stream written the whole message as one chunk, suite 0x%s, %s build: batches of 4,096 frames', async (id, build) => {
    const suite = Number.parseInt(id, 16)
    const { ciphertext } = await encrypt(keyring, plaintext, { frameLength: 1, algorithmSuite: suite })
    const pieces: Uint8Array[] = []
    const { turns, outcome } = await turnsDuring((async () => {
      const stream = (build === 'Node' ? decryptStream : browserDecryptStream)(keyring)
      const reading = (async () => {
        const reader = stream.readable.getReader()
        for (let next = await reader.read(); !next.done; next = await reader.read()) pieces.push(next.value)
      })()
      const writer = stream.writable.getWriter()
      await writer.write(ciphertext)
      await writer.close()
      await reading
    })())
    expect(outcome).toBeUndefined()
    expect(Buffer.concat(pieces)).toEqual(Buffer.from(plaintext))
    expect(pieces.length).toBeGreaterThanOrEqual(5)
    expect(Math.max(...pieces.map((piece) => piece.length)), 'plaintext bytes in one output chunk').toBeLessThanOrEqual(BATCH)
    expect(turns).toBeGreaterThanOrEqual(4)
  })
})
