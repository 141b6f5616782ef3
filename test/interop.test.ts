/**
 * Cross-implementation tests against the official AWS Encryption SDK for JavaScript (`@aws-crypto/client-node`).
 *
 * Both directions, for every algorithm suite and every raw keyring kind:
 *   - ours → official: we encrypt, the official SDK decrypts;
 *   - official → ours: the official SDK encrypts, we decrypt.
 * Each check compares the plaintext, the caller's encryption context (the stored one minus `aws-crypto-public-key`),
 * the header fields (version, suite, content type, frame length) and that the header our library reports equals the
 * header the other side parsed (message ID, full context, encrypted data keys).
 *
 * The official raw AES keyring runs with `utf8Sorting: true` (the spec's context order, which ours writes), except in
 * the legacy-order tests. PKCS1 v1.5 RSA decryption on the official side runs in a child process, see
 * `helpers/official.ts`.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ALGORITHM_SUITE_IDS,
  decrypt,
  encrypt,
  MultiKeyring,
  RawAesKeyring,
  RawRsaKeyring,
  type MessageHeader,
} from '../src/index.js'
import {
  aesKey,
  ALL_SUITES,
  byteDifference,
  contextKeyOrders,
  decryptPolicyFor,
  describeSpec,
  encryptPolicyFor,
  hex16,
  isCommitting,
  isSigning,
  KEY_NAMESPACE,
  keyNameOf,
  officialDecrypt,
  officialDecryptSpec,
  officialEncrypt,
  officialKeyring,
  PUBLIC_KEY_CONTEXT_KEY,
  rsaKeyPair,
  toHex,
  withoutPublicKey,
  type HeaderSummary,
  type KeyringSpec,
  type Policy,
} from './helpers/official.js'

// ---------------------------------------------------------------------------------------------------------------
// Keyrings

const AES128: KeyringSpec = { kind: 'aes', bits: 128 }
const AES192: KeyringSpec = { kind: 'aes', bits: 192 }
const AES256: KeyringSpec = { kind: 'aes', bits: 256 }
const RSA_OAEP_SHA1: KeyringSpec = { kind: 'rsa', padding: 'OAEP-SHA1' }
const RSA_OAEP_SHA256: KeyringSpec = { kind: 'rsa', padding: 'OAEP-SHA256' }
const RSA_OAEP_SHA384: KeyringSpec = { kind: 'rsa', padding: 'OAEP-SHA384' }
const RSA_OAEP_SHA512: KeyringSpec = { kind: 'rsa', padding: 'OAEP-SHA512' }
const RSA_PKCS1: KeyringSpec = { kind: 'rsa', padding: 'PKCS1' }
const MULTI_AES_RSA: KeyringSpec = { kind: 'multi', generator: AES256, children: [RSA_OAEP_SHA256] }
const MULTI_RSA_AES_PKCS1: KeyringSpec = { kind: 'multi', generator: RSA_OAEP_SHA1, children: [AES128, RSA_PKCS1] }

type OurKeyring = RawAesKeyring | RawRsaKeyring | MultiKeyring

function ourKeyring(spec: KeyringSpec): OurKeyring {
  switch (spec.kind) {
    case 'aes':
      return new RawAesKeyring({ keyNamespace: KEY_NAMESPACE, keyName: keyNameOf(spec), wrappingKey: aesKey(spec.bits) })
    case 'rsa': {
      const { publicKey, privateKey } = rsaKeyPair()
      return new RawRsaKeyring({
        keyNamespace: KEY_NAMESPACE,
        keyName: keyNameOf(spec),
        publicKey,
        privateKey,
        padding: spec.padding,
      })
    }
    case 'multi':
      return new MultiKeyring({ generator: ourKeyring(spec.generator), children: spec.children.map(ourKeyring) })
  }
}

const membersOf = (spec: KeyringSpec): KeyringSpec[] =>
  spec.kind === 'multi' ? [spec.generator, ...spec.children] : [spec]

// ---------------------------------------------------------------------------------------------------------------
// Messages

/**
 * Non-ASCII caller context. The keys 'a', 'B', 'Z', 'é', '\u{1F600}' sort differently by UTF-8 bytes and by
 * localeCompare, so the raw AES keyring's AAD order matters for every message that uses it; '\uFF61' sorts
 * after '\u{1F600}' by UTF-16 code units (JavaScript's default sort) but before it by UTF-8 bytes.
 */
const CONTEXT: Readonly<Record<string, string>> = {
  purpose: 'interop',
  a: 'lower-case a',
  B: 'upper-case B',
  Z: 'upper-case Z',
  é: 'café ü ß',
  '\u{1F600}': 'emoji 日本語 \u{1F680}',
  ключ: 'значение',
  '\uFF61': 'halfwidth ideographic full stop',
}

/** Deterministic plaintext bytes, so a failure names reproducible content. */
function bytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 17 + (i >> 8)) & 0xff
  return out
}

const DEFAULT_FRAME_LENGTH = 4096

interface MessageCase {
  readonly suite: number
  readonly plaintext: Uint8Array | string
  /** Omitted: both sides use their default (4096). */
  readonly frameLength?: number
  readonly context: Readonly<Record<string, string>>
}

interface Shape {
  readonly name: string
  readonly plaintext: Uint8Array | string
  readonly frameLength?: number
  readonly context: Readonly<Record<string, string>>
}

const SHAPES: readonly Shape[] = [
  { name: 'empty plaintext, empty context', plaintext: bytes(0), frameLength: 4096, context: {} },
  { name: 'empty plaintext, frame length 1', plaintext: bytes(0), frameLength: 1, context: CONTEXT },
  { name: 'exactly one frame (64 of 64)', plaintext: bytes(64), frameLength: 64, context: CONTEXT },
  { name: 'exact multiple of the frame length (3 × 64)', plaintext: bytes(192), frameLength: 64, context: CONTEXT },
  { name: 'frame length 1 (17 one-byte frames)', plaintext: bytes(17), frameLength: 1, context: CONTEXT },
  { name: 'default frame length, short last frame (2 × 4096 + 1)', plaintext: bytes(8193), context: CONTEXT },
  // Frame length 5 splits multi-byte UTF-8 characters across frames.
  { name: 'non-ASCII string plaintext, frame length 5', plaintext: 'grüße, 世界 \u{1F600}!', frameLength: 5, context: CONTEXT },
]

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)
const plaintextBytes = (plaintext: Uint8Array | string): Uint8Array =>
  typeof plaintext === 'string' ? utf8(plaintext) : plaintext

// ---------------------------------------------------------------------------------------------------------------
// Checks

function expectBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  expect(byteDifference(actual, expected), what).toBeUndefined()
}

/** Header fields a message written for `c` must carry, whichever side parsed it. */
function expectHeaderFor(header: MessageHeader | HeaderSummary, c: MessageCase, side: string): void {
  expect(header.algorithmSuiteId, `${side}: suite id`).toBe(c.suite)
  expect(header.version, `${side}: message format version`).toBe(isCommitting(c.suite) ? 2 : 1)
  expect(header.contentType, `${side}: content type`).toBe('framed')
  expect(header.frameLength, `${side}: frame length`).toBe(c.frameLength ?? DEFAULT_FRAME_LENGTH)
  expect(withoutPublicKey(header.encryptionContext), `${side}: caller encryption context`).toEqual({ ...c.context })
  expect(PUBLIC_KEY_CONTEXT_KEY in header.encryptionContext, `${side}: ${PUBLIC_KEY_CONTEXT_KEY} present`).toBe(
    isSigning(c.suite),
  )
}

const edkView = (edks: MessageHeader['encryptedDataKeys'] | HeaderSummary['encryptedDataKeys']) =>
  edks.map((edk) => ({ providerId: edk.providerId, providerInfo: toHex(edk.providerInfo), ciphertext: toHex(edk.ciphertext) }))

/** The header our library reports equals the one the official SDK wrote or parsed for the same message. */
function expectSameHeader(ours: MessageHeader, official: HeaderSummary): void {
  expect(ours.version, 'version').toBe(official.version)
  expect(ours.algorithmSuiteId, 'suite id').toBe(official.algorithmSuiteId)
  expect(toHex(ours.messageId), 'message id').toBe(toHex(official.messageId))
  expect({ ...ours.encryptionContext }, 'full stored encryption context').toEqual(official.encryptionContext)
  expect(edkView(ours.encryptedDataKeys), 'encrypted data keys').toEqual(edkView(official.encryptedDataKeys))
  expect(ours.contentType, 'content type').toBe(official.contentType)
  expect(ours.frameLength, 'frame length').toBe(official.frameLength)
}

// ---------------------------------------------------------------------------------------------------------------
// The two directions

async function ourEncrypt(spec: KeyringSpec, c: MessageCase) {
  return encrypt(ourKeyring(spec), c.plaintext, {
    encryptionContext: { ...c.context },
    algorithmSuite: c.suite,
    commitmentPolicy: encryptPolicyFor(c.suite),
    ...(c.frameLength === undefined ? {} : { frameLength: c.frameLength }),
  })
}

async function ourDecrypt(spec: KeyringSpec, ciphertext: Uint8Array, suite: number, commitmentPolicy?: Policy) {
  return decrypt(ourKeyring(spec), ciphertext, { commitmentPolicy: commitmentPolicy ?? decryptPolicyFor(suite) })
}

async function theirEncrypt(spec: KeyringSpec, c: MessageCase, utf8Sorting = true) {
  return officialEncrypt(officialKeyring(spec, { utf8Sorting }), plaintextBytes(c.plaintext), {
    suiteId: c.suite,
    encryptionContext: { ...c.context },
    ...(c.frameLength === undefined ? {} : { frameLength: c.frameLength }),
  })
}

/** We encrypt with `encryptWith`, the official SDK decrypts with `decryptWith` (default: the same keyring). */
async function oursToOfficial(encryptWith: KeyringSpec, c: MessageCase, decryptWith: KeyringSpec = encryptWith) {
  const ours = await ourEncrypt(encryptWith, c)
  expectHeaderFor(ours.header, c, 'our encrypt result header')
  const official = await officialDecryptSpec(decryptWith, ours.ciphertext, { commitmentPolicy: decryptPolicyFor(c.suite) })
  expectBytes(official.plaintext, plaintextBytes(c.plaintext), 'plaintext the official SDK decrypted')
  expectHeaderFor(official.header, c, 'header parsed by the official SDK')
  expectSameHeader(ours.header, official.header)
}

/** The official SDK encrypts with `encryptWith`, we decrypt with `decryptWith` (default: the same keyring). */
async function officialToOurs(encryptWith: KeyringSpec, c: MessageCase, decryptWith: KeyringSpec = encryptWith) {
  const official = await theirEncrypt(encryptWith, c)
  expectHeaderFor(official.header, c, 'official encrypt result header')
  const ours = await ourDecrypt(decryptWith, official.ciphertext, c.suite)
  expectBytes(ours.plaintext, plaintextBytes(c.plaintext), 'plaintext we decrypted')
  expectHeaderFor(ours.header, c, 'header parsed by us')
  expectSameHeader(ours.header, official.header)
}

// Tables are [title, data] rows formatted with %s: vitest truncates $property values in titles to 40 characters.
const DIRECTIONS = [
  ['ours → official', oursToOfficial],
  ['official → ours', officialToOurs],
] as const
const suiteRows = (suites: readonly number[]) => suites.map((suite) => [hex16(suite), suite] as const)
const specRows = (specs: readonly KeyringSpec[]) => specs.map((spec) => [describeSpec(spec), spec] as const)

/** Spawning the PKCS1 child process takes a few hundred milliseconds; give those tests room. */
const TIMEOUT = 30_000

// ---------------------------------------------------------------------------------------------------------------

describe('interop with the official AWS Encryption SDK (@aws-crypto/client-node)', () => {
  it('both sides list the same 11 algorithm suites', () => {
    expect([...ALGORITHM_SUITE_IDS].sort((a, b) => a - b)).toEqual([...ALL_SUITES])
  })

  describe.each(suiteRows(ALL_SUITES))('suite %s, raw AES-256 keyring', (_hex, suite) => {
    describe.each(DIRECTIONS)('%s', (_direction, run) => {
      it.each(SHAPES.map((shape) => [shape.name, shape] as const))('%s', async (_name, shape) => {
        await run(AES256, { suite, ...shape })
      })
    })
  })

  const KEYRINGS: readonly KeyringSpec[] = [
    AES128,
    AES192,
    AES256,
    RSA_OAEP_SHA1,
    RSA_OAEP_SHA256,
    RSA_OAEP_SHA384,
    RSA_OAEP_SHA512,
    RSA_PKCS1,
    MULTI_AES_RSA,
    MULTI_RSA_AES_PKCS1,
  ]
  // A v1 suite without KDF, a v1 signing suite, and the v2 committing signing suite.
  const KEYRING_SUITES = [0x0014, 0x0378, 0x0578] as const

  describe.each(specRows(KEYRINGS))('keyring %s', (_name, spec) => {
    describe.each(DIRECTIONS)('%s', (_direction, run) => {
      it.each(suiteRows(KEYRING_SUITES))(
        'suite %s, 300 bytes in frames of 128, non-ASCII context',
        async (_hex, suite) => {
          await run(spec, { suite, plaintext: bytes(300, suite), frameLength: 128, context: CONTEXT })
        },
        TIMEOUT,
      )
    })
  })

  describe.each(specRows([MULTI_AES_RSA, MULTI_RSA_AES_PKCS1]))(
    'each member of %s alone decrypts a message written with the whole multi-keyring',
    (_name, spec) => {
      const cases = membersOf(spec).flatMap((member) =>
        DIRECTIONS.map(([direction, run]) => [`${direction}: ${describeSpec(member)}`, member, run] as const),
      )
      it.each(cases)(
        '%s',
        async (_label, member, run) => {
          await run(spec, { suite: 0x0478, plaintext: bytes(1000), frameLength: 256, context: CONTEXT }, member)
        },
        TIMEOUT,
      )
    },
  )

  describe('encryption context order in the raw AES keyring AAD', () => {
    const LEGACY_CONTEXT: Readonly<Record<string, string>> = { a: '1', B: '2', é: '3', '\u{1F600}': '4', Z: '5' }
    const LEGACY_SUITES = suiteRows([0x0078, 0x0214, 0x0478, 0x0578])

    it('the test contexts sort differently by UTF-8 bytes and by localeCompare', () => {
      for (const context of [LEGACY_CONTEXT, CONTEXT]) {
        const { utf8: byBytes, locale } = contextKeyOrders(context)
        expect(locale).not.toEqual(byBytes)
      }
    })

    it.each(LEGACY_SUITES)(
      'suite %s: we decrypt what the official SDK wrote with its default (localeCompare) order',
      async (_hex, suite) => {
        const c: MessageCase = { suite, plaintext: bytes(100), frameLength: 32, context: LEGACY_CONTEXT }
        const official = await theirEncrypt(AES256, c, /* utf8Sorting */ false)
        // The message really uses the legacy order: a spec-order official keyring cannot unwrap its data key.
        await expect(
          officialDecrypt(officialKeyring(AES256, { utf8Sorting: true }), official.ciphertext, {
            commitmentPolicy: decryptPolicyFor(suite),
          }),
        ).rejects.toThrow()
        const ours = await ourDecrypt(AES256, official.ciphertext, suite)
        expectBytes(ours.plaintext, plaintextBytes(c.plaintext), 'plaintext we decrypted')
        expectHeaderFor(ours.header, c, 'header parsed by us')
        expectSameHeader(ours.header, official.header)
      },
    )

    it.each(LEGACY_SUITES)(
      'suite %s: we write the spec (UTF-8 byte) order; only a utf8Sorting official keyring unwraps it',
      async (_hex, suite) => {
        const c: MessageCase = { suite, plaintext: bytes(100), frameLength: 32, context: LEGACY_CONTEXT }
        const ours = await ourEncrypt(AES256, c)
        await expect(
          officialDecrypt(officialKeyring(AES256, { utf8Sorting: false }), ours.ciphertext, {
            commitmentPolicy: decryptPolicyFor(suite),
          }),
        ).rejects.toThrow()
        const official = await officialDecrypt(officialKeyring(AES256, { utf8Sorting: true }), ours.ciphertext, {
          commitmentPolicy: decryptPolicyFor(suite),
        })
        expectBytes(official.plaintext, plaintextBytes(c.plaintext), 'plaintext the official SDK decrypted')
        expectSameHeader(ours.header, official.header)
      },
    )
  })

  describe('maxEncryptedDataKeys across implementations', () => {
    // Three encrypted data keys: AES-256 (generator), RSA OAEP-SHA256, AES-128.
    const THREE_KEYS: KeyringSpec = { kind: 'multi', generator: AES256, children: [RSA_OAEP_SHA256, AES128] }
    const c: MessageCase = { suite: 0x0578, plaintext: bytes(50), context: CONTEXT }

    it('official message with 3 keys: we accept it with maxEncryptedDataKeys 3 and reject it with 2', async () => {
      const official = await theirEncrypt(THREE_KEYS, c)
      expect(official.header.encryptedDataKeys).toHaveLength(3)
      const ours = await decrypt(ourKeyring(AES128), official.ciphertext, { maxEncryptedDataKeys: 3 })
      expectBytes(ours.plaintext, plaintextBytes(c.plaintext), 'plaintext we decrypted')
      await expect(decrypt(ourKeyring(AES128), official.ciphertext, { maxEncryptedDataKeys: 2 })).rejects.toThrow()
    })

    it('our message with 3 keys: the official SDK accepts it with maxEncryptedDataKeys 3 and rejects it with 2', async () => {
      const ours = await ourEncrypt(THREE_KEYS, c)
      expect(ours.header.encryptedDataKeys).toHaveLength(3)
      const policy = decryptPolicyFor(c.suite)
      const official = await officialDecrypt(officialKeyring(AES128), ours.ciphertext, {
        commitmentPolicy: policy,
        maxEncryptedDataKeys: 3,
      })
      expectBytes(official.plaintext, plaintextBytes(c.plaintext), 'plaintext the official SDK decrypted')
      await expect(
        officialDecrypt(officialKeyring(AES128), ours.ciphertext, { commitmentPolicy: policy, maxEncryptedDataKeys: 2 }),
      ).rejects.toThrow()
    })
  })

  describe('random messages (fast-check)', () => {
    const contextKey = fc
      .string({ unit: 'binary', minLength: 1, maxLength: 8 })
      .filter((key) => !key.startsWith('aws-crypto-') && key !== '__proto__')
    const messageCase: fc.Arbitrary<MessageCase> = fc.record({
      suite: fc.constantFrom(...ALL_SUITES),
      plaintext: fc.uint8Array({ maxLength: 600 }),
      frameLength: fc.integer({ min: 1, max: 128 }),
      context: fc.dictionary(contextKey, fc.string({ unit: 'binary', maxLength: 12 }), {
        maxKeys: 6,
        noNullPrototype: true,
      }),
    })

    it.each(DIRECTIONS)(
      '%s: any suite, plaintext length, frame length and Unicode context (raw AES-256)',
      async (_direction, run) => {
        await fc.assert(
          fc.asyncProperty(messageCase, async (c) => {
            await run(AES256, c)
          }),
          { numRuns: 40 },
        )
      },
      TIMEOUT,
    )
  })

  it('the shared wrapping keys are still intact after all of the above (no keyring zeroed them)', () => {
    for (const bits of [128, 192, 256] as const) expect(aesKey(bits).some((byte) => byte !== 0), `AES-${bits}`).toBe(true)
  })
})
