// The browser build in real browsers: Debian's Chromium and Firefox ESR, headless, and WebKitGTK's MiniBrowser
// (Safari's engine) under Xvfb (the bundles are built from source by the harness, see helpers/browser.ts), every
// test in each. Node is the other side of every exchange:
// the KMS emulator's RSA key for KmsRsaKeyring, our Node build, and the official @aws-crypto/client-node.
import { constants, publicEncrypt, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createKmsPublicKeyCache,
  decrypt,
  defaultKmsClientSupplier,
  encrypt,
  EnvelopeError,
  KmsKeyring,
  KmsRsaKeyring,
  MultiKeyring,
  RawAesKeyring,
  RawRsaKeyring,
  type Keyring,
} from '../src/index.js'
import { DynamoDbItemEncryptor, type DynamoDbItemEncryptorConfig, type Item } from '../src/dynamodb/index.js'
import { loadOnce } from '../src/load-on-demand.js'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'
import {
  browserPath,
  fromBase64,
  PAGE_NONCE,
  startEngine,
  toBase64,
  type Engine,
  type EngineHarness,
} from './helpers/browser.js'
import {
  aesKey,
  KEY_NAMESPACE,
  keyNameOf,
  officialDecrypt,
  officialEncrypt,
  officialKeyring,
  rsaKeyPair,
  type KeyringSpec,
} from './helpers/official.js'
import { buildCorpus, generateInput, indexCorpus } from '../scripts/fuzz-lib.js'
import { craftedCases } from './helpers/crafted-cases.js'
import { manifest } from './helpers/vectors.js'
import { dafnyVectors, expectDafnyHeader, type HeaderSummary } from './helpers/dafny-vectors.js'
import type { SdkVectors } from './helpers/sdk-vectors.js'
import { startExampleServer } from '../examples/browser-offline/server.js'

/** A hang guard, not a speed check: with the whole suite running on 2 cores, a page test that builds a bundle and
 * starts a KMS emulator has taken over 20 s. */
const BROWSER_TEST_TIMEOUT_MS = 60_000

type Api = typeof import('../src/browser.js')
/** What a page has: the IIFE's global and the base64 helpers (page.evaluate passes JSON). */
type PageWindow = Window & { KmsEnvelope: Api; toBase64(bytes: Uint8Array): string; fromBase64(text: string): Uint8Array }

/** A keyring a page can build: key material travels as base64 and PEM. */
type WireKeyring =
  | { kind: 'aes'; keyName: string; key: string }
  | { kind: 'rsa'; keyName: string; padding: string; publicKey?: string; privateKey?: string }
  | { kind: 'multi'; generator: WireKeyring; children: WireKeyring[] }

const ALL_SUITES = [0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378, 0x0478, 0x0578]
const COMMITTING = new Set([0x0478, 0x0578])
const encryptPolicy = (suite: number) => (COMMITTING.has(suite) ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT')
const CONTEXT = { tenant: 'acme', 'ünïcode': '✓' }
const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes)
const bytes = (length: number, seed = 1) => Uint8Array.from({ length }, (_, index) => (index * 131 + seed) & 0xff)
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b))

/** Serialize a test keyring spec (test/helpers/official.ts) with its key material; `publicOnly` drops RSA private keys. */
function wire(spec: KeyringSpec, publicOnly = false): WireKeyring {
  if (spec.kind === 'aes') return { kind: 'aes', keyName: keyNameOf(spec), key: toBase64(aesKey(spec.bits)) }
  if (spec.kind === 'rsa') {
    const { publicKey, privateKey } = rsaKeyPair()
    return { kind: 'rsa', keyName: keyNameOf(spec), padding: spec.padding, publicKey, ...(publicOnly ? {} : { privateKey }) }
  }
  return { kind: 'multi', generator: wire(spec.generator, publicOnly), children: spec.children.map((child) => wire(child, publicOnly)) }
}

function ourKeyring(spec: KeyringSpec): Keyring {
  if (spec.kind === 'aes') return new RawAesKeyring({ keyNamespace: KEY_NAMESPACE, keyName: keyNameOf(spec), wrappingKey: aesKey(spec.bits) })
  if (spec.kind === 'rsa') return new RawRsaKeyring({ keyNamespace: KEY_NAMESPACE, keyName: keyNameOf(spec), ...rsaKeyPair(), padding: spec.padding })
  return new MultiKeyring({ generator: ourKeyring(spec.generator), children: spec.children.map(ourKeyring) })
}

/** Page side: build a keyring from its wire form (runs inside page.evaluate, so it is passed as source). */
const BUILD_KEYRING = `(function build(api, namespace, spec) {
  if (spec.kind === 'aes') return new api.RawAesKeyring({ keyNamespace: namespace, keyName: spec.keyName, wrappingKey: window.fromBase64(spec.key) })
  if (spec.kind === 'rsa') return new api.RawRsaKeyring({ keyNamespace: namespace, keyName: spec.keyName, publicKey: spec.publicKey, privateKey: spec.privateKey, padding: spec.padding })
  return new api.MultiKeyring({ generator: build(api, namespace, spec.generator), children: spec.children.map((child) => build(api, namespace, child)) })
})`

const ENGINES: Engine[] = ['Chromium', 'Firefox', 'WebKit']
const engines = {} as Record<Engine, EngineHarness>
let kms: KmsEmulator
let rsaKeyArn: string
let publicKeyPem: string
let publicKeyDer: Uint8Array
let clientSupplier: ReturnType<typeof defaultKmsClientSupplier>

beforeAll(async () => {
  // Each is kept as it starts, so that afterAll closes what started when another did not.
  await Promise.all([
    ...ENGINES.map(async (engine) => void (engines[engine] = await startEngine(engine))),
    startKmsEmulator({ regions: ['us-east-1'] }).then((emulator) => void (kms = emulator)),
  ])
  rsaKeyArn = kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' }).arn
  clientSupplier = defaultKmsClientSupplier({
    clientConfig: { endpoint: kms.endpoint, credentials: { accessKeyId: 'AKIDBROWSER', secretAccessKey: 'browser' }, maxAttempts: 1 },
  })
  const publicKey = await createKmsPublicKeyCache({ clientSupplier }).get(rsaKeyArn)
  publicKeyPem = publicKey.pem
  publicKeyDer = publicKey.publicKey
}, 60_000)

afterAll(async () => {
  await Promise.all([...Object.values(engines).map((harness) => harness.close()), kms?.close()])
})

describe.each(ENGINES)('KmsRsaKeyring in %s', (engine) => {
  it('encrypts offline with the public key from GetPublicKey; Node decrypts through KMS', async () => {
    const kmsCallsBefore = kms.calls.length
    const decryptsBefore = kms.callCount({ operation: 'Decrypt' })
    const cases = (['RSAES_OAEP_SHA_256', 'RSAES_OAEP_SHA_1'] as const).flatMap((algorithm) => [
      { algorithm, publicKey: publicKeyPem, binary: false },
      { algorithm, publicKey: toBase64(publicKeyDer), binary: true },
    ])
    const harness = engines[engine]
    const results = await harness.page.evaluate(
      async ({ cases, keyId, context }) => {
        const page = window as unknown as PageWindow
        const { encrypt, KmsRsaKeyring } = page.KmsEnvelope
        const payload = Uint8Array.from({ length: 300_000 }, (_, index) => (index * 7) & 0xff)
        return Promise.all(
          cases.map(async ({ algorithm, publicKey, binary }) => {
            const keyring = new KmsRsaKeyring({ keyId, encryptionAlgorithm: algorithm, publicKey: binary ? page.fromBase64(publicKey) : publicKey })
            const small = await encrypt(keyring, 'encrypted in the page', { encryptionContext: context })
            const large = await encrypt(keyring, payload, { encryptionContext: context, frameLength: 1000 })
            return { small: page.toBase64(small.ciphertext), large: page.toBase64(large.ciphertext), suite: small.header.algorithmSuiteId }
          }),
        )
      },
      { cases, keyId: rsaKeyArn, context: CONTEXT },
    )
    expect(kms.calls.length).toBe(kmsCallsBefore) // the page never called KMS
    // Nor any other origin, where the browser shows its requests (WebKit's WebDriver does not).
    if (harness.seesEveryRequest) expect(harness.requests.every((url) => url.startsWith(harness.origin))).toBe(true)
    for (const [index, result] of results.entries()) {
      const keyring = new KmsRsaKeyring({ keyId: rsaKeyArn, encryptionAlgorithm: cases[index]!.algorithm, clientSupplier })
      expect(result.suite).toBe(0x0478)
      const small = await decrypt(keyring, fromBase64(result.small), { encryptionContext: CONTEXT })
      expect(text(small.plaintext)).toBe('encrypted in the page')
      const large = await decrypt(keyring, fromBase64(result.large), { encryptionContext: CONTEXT })
      expect(same(large.plaintext, Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff))).toBe(true)
    }
    expect(kms.callCount({ operation: 'Decrypt' }) - decryptsBefore).toBe(2 * cases.length)
  }, BROWSER_TEST_TIMEOUT_MS)

  it('refuses signing suites and malformed keys with typed errors in the page, named after their classes', async () => {
    const codes = await engines[engine].page.evaluate(
      async ({ keyId, publicKey }) => {
        const { encrypt, KmsRsaKeyring } = (window as unknown as PageWindow).KmsEnvelope
        const codeOf = async (run: () => unknown) => {
          try {
            await run()
            return 'resolved'
          } catch (error) {
            // The <script> build is minified: the name shows its classes kept their names.
            return `${(error as Error).name} ${(error as { code?: string }).code}`
          }
        }
        const keyring = new KmsRsaKeyring({ keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey })
        return {
          signed: await codeOf(() => encrypt(keyring, 'x', { algorithmSuite: 0x0578 })),
          badKey: await codeOf(() => new KmsRsaKeyring({ keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey: 'nope' })),
          alias: await codeOf(() => new KmsRsaKeyring({ keyId: 'alias/x', encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey })),
          noClient: await codeOf(() => keyring.onDecrypt({ suite: undefined as never, encryptionContext: {} }, [], undefined as never)),
        }
      },
      { keyId: rsaKeyArn, publicKey: publicKeyPem },
    )
    const configuration = 'ConfigurationError INVALID_CONFIGURATION'
    expect(codes).toEqual({ signed: configuration, badKey: configuration, alias: configuration, noClient: configuration })
  })
})

describe.each(ENGINES)('KMS keyrings calling the KMS emulator from a page in %s (CORS)', (engine) => {
  /** In a fresh page: a KmsKeyring of `keyArn` through `endpoint` encrypts and decrypts; the message, or the failure. */
  const roundTripInPage = (endpoint: string, keyArn: string) =>
    engines[engine].newPage().then(async (page) => {
      try {
        return await page.evaluate(
          async ({ url, endpoint, keyArn, context }) => {
            const api = await (new Function('url', 'return import(url)') as (url: string) => Promise<Api>)(new URL(url, location.href).href)
            const clientSupplier = api.defaultKmsClientSupplier({ clientConfig: { endpoint, credentials: { accessKeyId: 'AKIDPAGE', secretAccessKey: 'page' }, maxAttempts: 1 } })
            const keyring = new api.KmsKeyring({ generatorKeyId: keyArn, clientSupplier })
            try {
              const { ciphertext } = await api.encrypt(keyring, 'through KMS from the page', { encryptionContext: context })
              const { plaintext } = await api.decrypt(keyring, ciphertext, { encryptionContext: context })
              return { ciphertext: (window as unknown as PageWindow).toBase64(ciphertext), plaintext: new TextDecoder().decode(plaintext) }
            } catch (error) {
              return { failure: `${(error as { code?: string }).code}: ${(error as Error).message}` }
            }
          },
          { url: 'esm/kms-envelope.js', endpoint, keyArn, context: CONTEXT },
        )
      } finally {
        await page.close()
      }
    })

  it('with corsOrigins naming the page, the ES module build encrypts and decrypts through it; Node decrypts the message', async () => {
    const harness = engines[engine]
    const pageKms = await startKmsEmulator({ regions: ['us-east-1'], corsOrigins: [harness.origin] })
    try {
      const keyArn = pageKms.createKey({ region: 'us-east-1' }).arn
      const result = await roundTripInPage(pageKms.endpoint, keyArn)
      expect(result).toEqual({ ciphertext: expect.any(String), plaintext: 'through KMS from the page' })
      expect([pageKms.callCount({ operation: 'GenerateDataKey' }), pageKms.callCount({ operation: 'Decrypt' })]).toEqual([1, 1])
      const nodeSupplier = defaultKmsClientSupplier({ clientConfig: { endpoint: pageKms.endpoint, credentials: { accessKeyId: 'AKIDNODE', secretAccessKey: 'node' } } })
      const { plaintext } = await decrypt(new KmsKeyring({ keyIds: [keyArn], clientSupplier: nodeSupplier }), fromBase64((result as { ciphertext: string }).ciphertext), { encryptionContext: CONTEXT })
      expect(text(plaintext)).toBe('through KMS from the page')
    } finally {
      await pageKms.close()
    }
  }, BROWSER_TEST_TIMEOUT_MS)

  it('without it, the browser refuses the call (preflight denied), which fails the encrypt with KEYRING_FAILURE', async () => {
    const keyArn = kms.createKey({ region: 'us-east-1' }).arn
    const before = kms.callCount({ operation: 'GenerateDataKey' })
    const result = await roundTripInPage(kms.endpoint, keyArn)
    expect(result).toEqual({ failure: expect.stringMatching(/^KEYRING_FAILURE: KmsKeyring could not generate a data key with arn:aws:kms:us-east-1:\d{12}:key\//) })
    expect(kms.callCount({ operation: 'GenerateDataKey' })).toBe(before) // the page's POST was never sent
  }, BROWSER_TEST_TIMEOUT_MS)
})

describe.each(ENGINES)('raw keyrings in %s against the Node build', (engine) => {
  const aes = (bits: 128 | 192 | 256): KeyringSpec => ({ kind: 'aes', bits })

  it('every suite, both ways, with AES-256 and AES-192 (on @noble: Chromium\'s WebCrypto lacks it) wrapping keys', async () => {
    const specs = [aes(256), aes(192)]
    const data = bytes(10_000)
    const fromNode: Array<{ spec: number; suite: number; ciphertext: string }> = []
    for (const [spec, keyringSpec] of specs.entries()) {
      for (const suite of ALL_SUITES) {
        const { ciphertext } = await encrypt(ourKeyring(keyringSpec), data, {
          algorithmSuite: suite,
          commitmentPolicy: encryptPolicy(suite),
          frameLength: 1024,
          encryptionContext: CONTEXT,
        })
        fromNode.push({ spec, suite, ciphertext: toBase64(ciphertext) })
      }
    }
    const results = await engines[engine].page.evaluate(
      async ({ fromNode, specs, suites, namespace, build, data, context }) => {
        const page = window as unknown as PageWindow
        const api = page.KmsEnvelope
        const keyringOf = (0, eval)(build) as (api: Api, namespace: string, spec: WireKeyring) => import('../src/index.js').Keyring
        const plaintext = page.fromBase64(data)
        const decrypted = await Promise.all(
          fromNode.map(async ({ spec, ciphertext }) => {
            const result = await api.decrypt(keyringOf(api, namespace, specs[spec]!), page.fromBase64(ciphertext), {
              commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT',
              encryptionContext: context,
            })
            return page.toBase64(result.plaintext) === data
          }),
        )
        const encrypted: Array<{ spec: number; suite: number; ciphertext: string }> = []
        for (const spec of specs.keys()) {
          for (const suite of suites) {
            const policy = suite === 0x0478 || suite === 0x0578 ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT'
            const { ciphertext } = await api.encrypt(keyringOf(api, namespace, specs[spec]!), plaintext, {
              algorithmSuite: suite,
              commitmentPolicy: policy,
              frameLength: 1024,
              encryptionContext: context,
            })
            encrypted.push({ spec, suite, ciphertext: page.toBase64(ciphertext) })
          }
        }
        return { decrypted, encrypted }
      },
      { fromNode, specs: specs.map((spec) => wire(spec)), suites: ALL_SUITES, namespace: KEY_NAMESPACE, build: BUILD_KEYRING, data: toBase64(data), context: CONTEXT },
    )
    expect(results.decrypted).toEqual(fromNode.map(() => true))
    for (const { spec, ciphertext } of results.encrypted) {
      const { plaintext } = await decrypt(ourKeyring(specs[spec]!), fromBase64(ciphertext), {
        commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT',
        encryptionContext: CONTEXT,
      })
      expect(same(plaintext, data)).toBe(true)
    }
  }, BROWSER_TEST_TIMEOUT_MS)

  it('RSA-wrapped data keys that start with zero bytes decrypt (WebKitGTK\'s RSA-OAEP drops them)', async () => {
    const rsa: KeyringSpec = { kind: 'rsa', padding: 'OAEP-SHA256' }
    const data = bytes(2000, 3)
    const messages: string[] = []
    for (const [suite, length] of [[0x0014, 16], [0x0046, 24], [0x0478, 32]] as const) {
      // Up to 7 zero bytes are put back (8 or more is a key of another suite's length, or made up).
      for (const zeros of [1, 2, 7]) {
        // The generator hands over a data key of its own, which the RSA keyring wraps.
        const dataKey = new Uint8Array(length).fill(0x5a).fill(0, 0, zeros)
        const generator: Keyring = { onEncrypt: async (materials) => ({ ...materials, plaintextDataKey: dataKey.slice() }), onDecrypt: async (materials) => materials }
        const keyring = new MultiKeyring({ generator, children: [ourKeyring(rsa)] })
        messages.push(toBase64((await encrypt(keyring, data, { algorithmSuite: suite, commitmentPolicy: encryptPolicy(suite) })).ciphertext))
      }
    }
    const decrypted = await engines[engine].page.evaluate(
      async ({ messages, spec, namespace, build }) => {
        const page = window as unknown as PageWindow
        const api = page.KmsEnvelope
        const keyring = ((0, eval)(build) as (api: Api, namespace: string, spec: WireKeyring) => import('../src/index.js').Keyring)(api, namespace, spec)
        const options = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' } as const
        return Promise.all(messages.map(async (message) => page.toBase64((await api.decrypt(keyring, page.fromBase64(message), options)).plaintext)))
      },
      { messages, spec: wire(rsa), namespace: KEY_NAMESPACE, build: BUILD_KEYRING },
    )
    expect(decrypted).toEqual(messages.map(() => toBase64(data)))
  }, BROWSER_TEST_TIMEOUT_MS)

  it("an RSA-wrapped key of another suite's length is the RSA keyring's failure, so a multi-keyring tries the next key", async () => {
    const rsa: KeyringSpec = { kind: 'rsa', padding: 'OAEP-SHA256' }
    const aes: KeyringSpec = { kind: 'aes', bits: 256 }
    const data = bytes(1000, 4)
    const messages: string[] = []
    // The data key is wrapped by AES as it should be, and beside it an RSA-wrapped key of the wrong length, as
    // another suite's message (or a made-up one) would carry.
    for (const [suite, shortLength] of [[0x0478, 16], [0x0478, 24], [0x0046, 16]] as const) {
      const wrongKey: Keyring = {
        onEncrypt: async (materials) => {
          const ciphertext = publicEncrypt({ key: rsaKeyPair().publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, randomBytes(shortLength))
          const edk = { providerId: KEY_NAMESPACE, providerInfo: new TextEncoder().encode(keyNameOf(rsa as never)), ciphertext: new Uint8Array(ciphertext) }
          return { ...materials, encryptedDataKeys: [...materials.encryptedDataKeys, edk] }
        },
        onDecrypt: async (materials) => materials,
      }
      const keyring = new MultiKeyring({ generator: ourKeyring(aes), children: [wrongKey] })
      messages.push(toBase64((await encrypt(keyring, data, { algorithmSuite: suite, commitmentPolicy: encryptPolicy(suite) })).ciphertext))
    }
    const outcomes = await engines[engine].page.evaluate(
      async ({ messages, rsaFirst, rsaAlone, namespace, build }) => {
        const page = window as unknown as PageWindow
        const api = page.KmsEnvelope
        const make = (spec: WireKeyring) => ((0, eval)(build) as (api: Api, namespace: string, spec: WireKeyring) => import('../src/index.js').Keyring)(api, namespace, spec)
        const options = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' } as const
        const outcome = (keyring: import('../src/index.js').Keyring, message: string) =>
          api.decrypt(keyring, page.fromBase64(message), options).then(
            ({ plaintext }) => page.toBase64(plaintext),
            (error) => error.code,
          )
        return Promise.all(messages.map(async (message) => [await outcome(make(rsaFirst), message), await outcome(make(rsaAlone), message)]))
      },
      { messages, rsaFirst: wire({ kind: 'multi', generator: rsa, children: [aes] }), rsaAlone: wire(rsa), namespace: KEY_NAMESPACE, build: BUILD_KEYRING },
    )
    expect(outcomes).toEqual(messages.map(() => [toBase64(data), 'NO_DECRYPTABLE_KEY']))
  }, BROWSER_TEST_TIMEOUT_MS)
})

describe.each(ENGINES)('crafted messages (test/helpers/crafted-cases.ts) in %s', (engine) => {
  it('each is accepted or refused as the Node build does, with the same code', async () => {
    const cases = craftedCases()
    const outcomes = await engines[engine].page.evaluate(
      async (messages) => {
        const page = window as unknown as PageWindow
        const api = page.KmsEnvelope
        // helpers/craft.ts's dataKeyKeyring: hands the data key over for the crafted messages' one wrapped key.
        const keyringFor = (dataKey: string): import('../src/index.js').Keyring => ({
          onEncrypt: () => Promise.reject(new Error('decrypt only')),
          onDecrypt: async (materials, keys) => (keys.some((key) => key.providerId === 'crafted') ? { ...materials, plaintextDataKey: page.fromBase64(dataKey) } : materials),
        })
        const options = { commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' } as const
        return Promise.all(
          messages.map(({ ciphertext, dataKey }) =>
            api.decrypt(keyringFor(dataKey), page.fromBase64(ciphertext), options).then(
              ({ plaintext, header }) => ({ plaintext: page.toBase64(plaintext), context: header.encryptionContext as Record<string, string> }),
              (error) => ({ code: error instanceof api.EnvelopeError ? error.code : `not an EnvelopeError: ${String(error)}` }),
            ),
          ),
        )
      },
      cases.map(({ crafted }) => ({ ciphertext: toBase64(crafted.ciphertext), dataKey: toBase64(crafted.dataKey) })),
    )
    expect(outcomes).toHaveLength(cases.length)
    for (const [index, { name, crafted, expected, context }] of cases.entries()) {
      const outcome = outcomes[index]!
      if (expected !== 'accepted') {
        expect(outcome, name).toEqual({ code: expected })
        continue
      }
      expect('plaintext' in outcome && outcome.plaintext, name).toBe(toBase64(crafted.plaintext))
      const { 'aws-crypto-public-key': _publicKey, ...stored } = 'context' in outcome ? outcome.context : {}
      expect(stored, name).toEqual(context)
    }
  }, BROWSER_TEST_TIMEOUT_MS)
})

/** The fuzzer's first 2,000 mutated messages of seed 2026, with the code the Node build refuses each with: made once, for every engine. */
const mutatedMessages = loadOnce(async () => {
  const corpus = await buildCorpus(2026)
  const { byKind, bySize } = indexCorpus(corpus.entries)
  const inputs: Array<{ message: string; keyring: number; node: string }> = []
  for (let iteration = 0; iteration < 2000; iteration++) {
    const { base, bytes } = generateInput(2026, iteration, corpus.entries, byKind, bySize)
    const node = await decrypt(base.keyring, bytes.slice(), { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }).then(
      () => 'accepted',
      (error: unknown) => (error instanceof EnvelopeError ? error.code : `not an EnvelopeError: ${String(error)}`),
    )
    inputs.push({ message: toBase64(bytes), keyring: base.index, node })
  }
  return { corpus, inputs }
}, (error) => error as Error)

describe.each(ENGINES)("the fuzzer's mutated messages (scripts/fuzz-lib.ts) in %s", (engine) => {
  it('2,000 of them: each refused as the Node build refuses it, with the same code', async () => {
    const { corpus, inputs } = await mutatedMessages()
    const outcomes = await engines[engine].page.evaluate(
      async ({ inputs, keyrings }) => {
        const page = window as unknown as PageWindow
        const api = page.KmsEnvelope
        const built = keyrings.map((spec) =>
          spec.type === 'aes'
            ? new api.RawAesKeyring({ keyNamespace: spec.keyNamespace, keyName: spec.keyName, wrappingKey: page.fromBase64(spec.key) })
            : new api.RawRsaKeyring({ keyNamespace: spec.keyNamespace, keyName: spec.keyName, privateKey: spec.key, padding: 'OAEP-SHA256' }),
        )
        const outcomes: string[] = []
        for (const { message, keyring } of inputs) {
          outcomes.push(
            await api.decrypt(built[keyring]!, page.fromBase64(message), { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }).then(
              () => 'accepted',
              (error) => (error instanceof api.EnvelopeError ? error.code : `not an EnvelopeError: ${String(error)}`),
            ),
          )
        }
        return outcomes
      },
      {
        inputs: inputs.map(({ message, keyring }) => ({ message, keyring })),
        keyrings: corpus.entries.map(({ keyringSpec: spec }) => ({
          type: spec.type,
          keyNamespace: spec.keyNamespace,
          keyName: spec.keyName,
          key: spec.type === 'aes' ? Buffer.from(spec.wrappingKeyHex, 'hex').toString('base64') : spec.privateKeyPem,
        })),
      },
    )
    expect(outcomes).toHaveLength(inputs.length)
    expect(inputs.every(({ node }) => node !== 'accepted' && !node.startsWith('not'))).toBe(true)
    for (const [index, { node }] of inputs.entries()) expect(outcomes[index], `iteration ${index}`).toBe(node)
  }, BROWSER_TEST_TIMEOUT_MS)
})

describe.each(ENGINES)('interoperability with the official @aws-crypto/client-node, in %s', (engine) => {
  const specs: KeyringSpec[] = [
    { kind: 'aes', bits: 128 },
    { kind: 'aes', bits: 192 },
    { kind: 'aes', bits: 256 },
    { kind: 'rsa', padding: 'OAEP-SHA1' },
    { kind: 'rsa', padding: 'OAEP-SHA256' },
    { kind: 'rsa', padding: 'OAEP-SHA512' },
    { kind: 'multi', generator: { kind: 'aes', bits: 256 }, children: [{ kind: 'rsa', padding: 'OAEP-SHA256' }] },
  ]
  const suites = [0x0014, 0x0178, 0x0346, 0x0478, 0x0578]

  it('the official SDK\'s messages decrypt in the browser build, and the browser build\'s decrypt with the official SDK', async () => {
    const data = bytes(5000, 9)
    const official: Array<{ spec: number; suite: number; ciphertext: string }> = []
    for (const [spec, keyringSpec] of specs.entries()) {
      for (const suite of suites) {
        const { ciphertext } = await officialEncrypt(officialKeyring(keyringSpec), data, { suiteId: suite, encryptionContext: CONTEXT, frameLength: 512 })
        official.push({ spec, suite, ciphertext: toBase64(ciphertext) })
      }
    }
    const results = await engines[engine].page.evaluate(
      async ({ official, privateSpecs, publicSpecs, suites, namespace, build, data, context }) => {
        const page = window as unknown as PageWindow
        const api = page.KmsEnvelope
        const keyringOf = (0, eval)(build) as (api: Api, namespace: string, spec: WireKeyring) => import('../src/index.js').Keyring
        const decrypted = await Promise.all(
          official.map(async ({ spec, ciphertext }) => {
            const result = await api.decrypt(keyringOf(api, namespace, privateSpecs[spec]!), page.fromBase64(ciphertext), {
              commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT',
              encryptionContext: context,
            })
            return page.toBase64(result.plaintext) === data
          }),
        )
        const encrypted: Array<{ spec: number; suite: number; ciphertext: string }> = []
        for (const spec of publicSpecs.keys()) {
          for (const suite of suites) {
            const policy = suite === 0x0478 || suite === 0x0578 ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT'
            // RSA keyrings hold only the public key here: encrypting needs nothing else.
            const { ciphertext } = await api.encrypt(keyringOf(api, namespace, publicSpecs[spec]!), page.fromBase64(data), {
              algorithmSuite: suite,
              commitmentPolicy: policy,
              frameLength: 512,
              encryptionContext: context,
            })
            encrypted.push({ spec, suite, ciphertext: page.toBase64(ciphertext) })
          }
        }
        return { decrypted, encrypted }
      },
      {
        official,
        privateSpecs: specs.map((spec) => wire(spec)),
        publicSpecs: specs.map((spec) => wire(spec, true)),
        suites,
        namespace: KEY_NAMESPACE,
        build: BUILD_KEYRING,
        data: toBase64(data),
        context: CONTEXT,
      },
    )
    expect(results.decrypted).toEqual(official.map(() => true))
    expect(results.encrypted).toHaveLength(specs.length * suites.length)
    for (const { spec, suite, ciphertext } of results.encrypted) {
      const policy = COMMITTING.has(suite) ? 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' : 'REQUIRE_ENCRYPT_ALLOW_DECRYPT'
      const { plaintext, header } = await officialDecrypt(officialKeyring(specs[spec]!), fromBase64(ciphertext), { commitmentPolicy: policy })
      expect(same(plaintext, data), `spec ${spec}, suite ${suite}`).toBe(true)
      expect(header.algorithmSuiteId).toBe(suite)
    }
  }, BROWSER_TEST_TIMEOUT_MS)
})

describe.each(ENGINES)('the official-SDK vectors of test/fixtures/official-js/ in %s', (engine) => {
  it('every vector the Node build passes; PKCS1-only keyrings refuse with UNSUPPORTED_OPERATION', async () => {
    const results = await engines[engine].page.evaluate(async () => {
      const page = window as unknown as PageWindow
      const api = page.KmsEnvelope
      const fetchJson = async (path: string) => (await fetch(path)).json()
      const fetchBytes = async (path: string) => new Uint8Array(await (await fetch(path)).arrayBuffer())
      const { vectors } = await fetchJson('/fixtures/official-js/manifest.json')
      const { keys } = await fetchJson('/fixtures/official-js/keys.json')
      type Spec = { type: 'raw-aes' | 'raw-rsa' | 'multi'; key?: string; padding?: string; generator?: Spec; children?: Spec[] }
      const build = (spec: Spec): import('../src/index.js').Keyring => {
        if (spec.type === 'multi') {
          return new api.MultiKeyring({ ...(spec.generator ? { generator: build(spec.generator) } : {}), children: (spec.children ?? []).map(build) })
        }
        const entry = keys[spec.key as string]
        if (spec.type === 'raw-aes') {
          return new api.RawAesKeyring({ keyNamespace: entry.keyNamespace, keyName: entry.keyName, wrappingKey: page.fromBase64(entry.material) })
        }
        return new api.RawRsaKeyring({
          keyNamespace: entry.keyNamespace,
          keyName: entry.keyName,
          publicKey: entry.publicKeyPem,
          privateKey: entry.privateKeyPem,
          padding: spec.padding as never,
        })
      }
      const out: Array<{ id: string; keyring: number; ok: boolean; code?: string; innerCodes?: string[]; plaintextMatches?: boolean; header?: unknown }> = []
      for (const vector of vectors) {
        const ciphertext = await fetchBytes(`/fixtures/official-js/${vector.ciphertext}`)
        const expected = vector.plaintext === undefined ? undefined : await fetchBytes(`/fixtures/official-js/${vector.plaintext}`)
        for (const [index, spec] of (vector.decryptKeyrings as Spec[]).entries()) {
          try {
            const { plaintext, header } = await api.decrypt(build(spec), ciphertext, {
              commitmentPolicy: vector.commitmentPolicy,
              ...(vector.expect === 'success' ? { encryptionContext: vector.encryptionContext ?? {} } : {}),
            })
            out.push({
              id: vector.id,
              keyring: index,
              ok: true,
              plaintextMatches: expected !== undefined && page.toBase64(plaintext) === page.toBase64(expected),
              header: {
                encryptionContext: header.encryptionContext,
                algorithmSuiteId: header.algorithmSuiteId,
                contentType: header.contentType,
                frameLength: header.frameLength,
                version: header.version,
                providerIds: header.encryptedDataKeys.map((edk) => edk.providerId),
              },
            })
          } catch (error) {
            const failures = (error as { failures?: Array<{ error: { code?: string } }> }).failures ?? []
            out.push({
              id: vector.id,
              keyring: index,
              ok: false,
              code: error instanceof api.EnvelopeError ? error.code : `not an EnvelopeError: ${String(error)}`,
              innerCodes: failures.map((failure) => failure.error?.code ?? 'none'),
            })
          }
        }
      }
      return out
    })
    const expectedRuns = manifest.vectors.reduce((total, vector) => total + vector.decryptKeyrings.length, 0)
    expect(results).toHaveLength(expectedRuns)
    let pkcs1Only = 0
    for (const result of results) {
      const vector = manifest.vectors.find((candidate) => candidate.id === result.id)!
      const spec = vector.decryptKeyrings[result.keyring]!
      const label = `${vector.id} keyring ${result.keyring}`
      if (vector.expect === 'error') {
        expect(result.ok, label).toBe(false)
        expect(result.code, label).toMatch(/^[A-Z_]+$/)
      } else if (spec.type === 'raw-rsa' && spec.padding === 'PKCS1') {
        // The documented exception: WebCrypto has no RSA PKCS1 v1.5, so that padding is Node-only.
        pkcs1Only++
        expect(result.ok, label).toBe(false)
        expect(result.code, label).toBe('NO_DECRYPTABLE_KEY')
        expect(result.innerCodes, label).toEqual(['UNSUPPORTED_OPERATION'])
      } else {
        expect(result.ok, `${label}: ${result.code} ${JSON.stringify(result.innerCodes)}`).toBe(true)
        expect(result.plaintextMatches, label).toBe(true)
        expect(result.header, label).toEqual({
          encryptionContext: vector.expectedEncryptionContext,
          algorithmSuiteId: Number(vector.suiteId),
          contentType: vector.contentType,
          frameLength: vector.contentType === 'framed' ? vector.frameLength : 0,
          version: vector.messageFormatVersion,
          providerIds: vector.encryptedDataKeys?.map((edk) => edk.providerId),
        })
      }
    }
    expect(pkcs1Only).toBe(5)
  }, BROWSER_TEST_TIMEOUT_MS)
})

describe.each(ENGINES)("the Dafny implementation's vectors of test/fixtures/dafny/ in %s", (engine) => {
  it("every one but the hierarchical keyring's decrypts; PKCS1 ones refuse with UNSUPPORTED_OPERATION", async () => {
    // The hierarchical keyring of these tests is Node's (test/support/branch-key.ts).
    const vectors = dafnyVectors.filter(([, scenario]) => scenario.decryptKeyDescription.type !== 'aws-kms-hierarchy')
    const cases = vectors.map(([id, scenario]) => ({
      id,
      ciphertext: scenario.ciphertext.replace(/^file:\/\//, ''),
      result: scenario.result.replace(/^file:\/\//, ''),
      description: scenario.decryptKeyDescription,
      reproduced: scenario['reproduced-encryption-context'],
    }))
    const results = await engines[engine].page.evaluate(async (cases) => {
      const page = window as unknown as PageWindow
      const api = page.KmsEnvelope
      const fetchBytes = async (path: string) => new Uint8Array(await (await fetch(`/fixtures/dafny/${path}`)).arrayBuffer())
      const { keys } = await (await fetch('/fixtures/dafny/keys.json')).json()
      type Description = (typeof cases)[number]['description']
      const build = (description: Description): import('../src/index.js').Keyring | import('../src/index.js').MaterialsManager => {
        if (description.type === 'required-encryption-context-cmm') {
          return new api.RequiredEncryptionContextMaterialsManager({
            requiredKeys: description.requiredEncryptionContextKeys,
            keyring: build(description.underlying) as import('../src/index.js').Keyring,
          })
        }
        if (description.type === 'multi-keyring') {
          const keyring = (child: Description) => build(child) as import('../src/index.js').Keyring
          return new api.MultiKeyring({ ...(description.generator ? { generator: keyring(description.generator) } : {}), children: description.childKeyrings.map(keyring) })
        }
        if (description.type !== 'raw') throw new Error(`no ${description.type} in the page`)
        const entry = keys[description.key]
        const names = { keyNamespace: description['provider-id'], keyName: entry['key-id'] }
        if (description['encryption-algorithm'] === 'aes') return new api.RawAesKeyring({ ...names, wrappingKey: page.fromBase64(entry.material) })
        const padding = description['padding-algorithm'] === 'pkcs1' ? 'PKCS1' : `OAEP-${description['padding-hash']!.toUpperCase()}`
        return new api.RawRsaKeyring({ ...names, privateKey: entry.material, padding: padding as never })
      }
      const out: Array<{ id: string; ok: boolean; code?: string; innerCodes?: string[]; plaintextMatches?: boolean; header?: unknown }> = []
      for (const c of cases) {
        const [ciphertext, expected] = await Promise.all([fetchBytes(c.ciphertext), fetchBytes(c.result)])
        try {
          const { plaintext, header } = await api.decrypt(build(c.description), ciphertext, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT', encryptionContext: c.reproduced })
          out.push({
            id: c.id,
            ok: true,
            plaintextMatches: page.toBase64(plaintext) === page.toBase64(expected),
            header: {
              encryptionContext: header.encryptionContext,
              algorithmSuiteId: header.algorithmSuiteId,
              version: header.version,
              contentType: header.contentType,
              frameLength: header.frameLength,
              providerIds: header.encryptedDataKeys.map((edk) => edk.providerId),
            },
          })
        } catch (error) {
          const failures = (error as { failures?: Array<{ error: { code?: string } }> }).failures ?? []
          const code = error instanceof api.EnvelopeError ? error.code : `not an EnvelopeError: ${String(error)}`
          out.push({ id: c.id, ok: false, code, innerCodes: failures.map((failure) => failure.error?.code ?? 'none') })
        }
      }
      return out
    }, cases)
    expect(results).toHaveLength(187)
    let pkcs1 = 0
    for (const [index, result] of results.entries()) {
      const [id, scenario] = vectors[index]!
      const description = scenario.decryptKeyDescription
      if (description.type === 'raw' && description['padding-algorithm'] === 'pkcs1') {
        pkcs1++
        expect({ ok: result.ok, code: result.code, innerCodes: result.innerCodes }, id).toEqual({ ok: false, code: 'NO_DECRYPTABLE_KEY', innerCodes: ['UNSUPPORTED_OPERATION'] })
        continue
      }
      expect(result.ok, `${id}: ${result.code} ${JSON.stringify(result.innerCodes)}`).toBe(true)
      expect(result.plaintextMatches, id).toBe(true)
      expectDafnyHeader(result.header as HeaderSummary, id, scenario)
    }
    expect(pkcs1).toBe(11)
  }, BROWSER_TEST_TIMEOUT_MS)
})

describe.each(ENGINES)("the official Python, Java and C SDKs' messages of test/fixtures/official-sdks/ in %s", (engine) => {
  it.each(['python', 'java', 'c'])("every one of %s.json decrypts but the PKCS1 ones, which refuse with UNSUPPORTED_OPERATION", async (file) => {
    const vectors = JSON.parse(readFileSync(new URL(`fixtures/official-sdks/${file}.json`, import.meta.url), 'utf8')) as SdkVectors
    const results = await engines[engine].page.evaluate(async (file) => {
      const page = window as unknown as PageWindow
      const api = page.KmsEnvelope
      const vectors = (await (await fetch(`/fixtures/official-sdks/${file}.json`)).json()) as SdkVectors
      const names = (keyName: string) => ({ keyNamespace: vectors.namespace, keyName })
      const raw = (name: string): import('../src/index.js').Keyring =>
        name.startsWith('aes-')
          ? new api.RawAesKeyring({ ...names(name), wrappingKey: page.fromBase64(vectors.keys[name]!) })
          : new api.RawRsaKeyring({ ...names(name), privateKey: vectors.keys['rsa-private']!, padding: name.slice(4) as never })
      const keyring = (name: string) => (name === 'multi' ? new api.MultiKeyring({ generator: raw('aes-256'), children: [raw('rsa-OAEP-SHA256')] }) : raw(name))
      const out: Array<{ ok: boolean; code?: string; innerCodes?: string[]; plaintextMatches?: boolean; header?: unknown }> = []
      // Messages under KMS keys are decrypted through the emulator by official-sdk-vectors.test.ts.
      for (const message of vectors.messages.filter(({ keyring }) => !keyring.startsWith('kms'))) {
        try {
          const options = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT', encryptionContext: vectors.context } as const
          const { plaintext, header } = await api.decrypt(keyring(message.keyring), page.fromBase64(message.ciphertext), options)
          const { 'aws-crypto-public-key': _signingKey, ...context } = header.encryptionContext
          out.push({
            ok: true,
            plaintextMatches: page.toBase64(plaintext) === vectors.plaintexts[message.shape],
            header: { context, suite: header.algorithmSuiteId, contentType: header.contentType, frameLength: header.frameLength, keys: header.encryptedDataKeys.length },
          })
        } catch (error) {
          const failures = (error as { failures?: Array<{ error: { code?: string } }> }).failures ?? []
          const code = error instanceof api.EnvelopeError ? error.code : `not an EnvelopeError: ${String(error)}`
          out.push({ ok: false, code, innerCodes: failures.map((failure) => failure.error?.code ?? 'none') })
        }
      }
      return out
    }, file)
    const rawMessages = vectors.messages.filter(({ keyring }) => !keyring.startsWith('kms'))
    expect(rawMessages.length).toBeGreaterThanOrEqual(11 * 7 * 4) // every suite, the C SDK's 7 raw keyrings (the fewest), every shape
    expect(results).toHaveLength(rawMessages.length)
    for (const [index, result] of results.entries()) {
      const message = rawMessages[index]!
      const label = `${message.suite} ${message.keyring} ${message.shape}`
      if (message.keyring === 'rsa-PKCS1') {
        const refusal = { ok: false, code: 'NO_DECRYPTABLE_KEY', innerCodes: ['UNSUPPORTED_OPERATION'] }
        expect({ ok: result.ok, code: result.code, innerCodes: result.innerCodes }, label).toEqual(refusal)
        continue
      }
      expect(result.ok, `${label}: ${result.code} ${JSON.stringify(result.innerCodes)}`).toBe(true)
      expect(result.plaintextMatches, label).toBe(true)
      const contentType = message.frameLength === 0 ? 'non-framed' : 'framed'
      const keys = message.keyring === 'multi' ? 2 : 1
      expect(result.header, label).toEqual({ context: vectors.context, suite: message.suite, contentType, frameLength: message.frameLength, keys })
    }
  }, BROWSER_TEST_TIMEOUT_MS)
})

describe.each(ENGINES)('streams and builds in %s', (engine) => {
  it('encryptStream/decryptStream with 0x0478; Node reads the stream output; signed streams are refused', async () => {
    const key = toBase64(aesKey(256))
    const result = await engines[engine].page.evaluate(
      async ({ key, namespace }) => {
        const page = window as unknown as PageWindow
        const api = page.KmsEnvelope
        const keyring = new api.RawAesKeyring({ keyNamespace: namespace, keyName: 'aes-256-ключ', wrappingKey: page.fromBase64(key) })
        const data = Uint8Array.from({ length: 200_000 }, (_, index) => (index * 13) & 0xff)
        const chunks = (bytes: Uint8Array, size: number) =>
          new ReadableStream<Uint8Array>({
            start(controller) {
              for (let offset = 0; offset < bytes.length; offset += size) controller.enqueue(bytes.slice(offset, offset + size))
              controller.close()
            },
          })
        const collect = async (stream: ReadableStream<Uint8Array>) => {
          const parts: Uint8Array[] = []
          const reader = stream.getReader()
          for (let next = await reader.read(); !next.done; next = await reader.read()) parts.push(next.value)
          const out = new Uint8Array(parts.reduce((total, part) => total + part.length, 0))
          let offset = 0
          for (const part of parts) {
            out.set(part, offset)
            offset += part.length
          }
          return out
        }
        const encrypted = await collect(chunks(data, 7000).pipeThrough(api.encryptStream(keyring, { algorithmSuite: 0x0478, frameLength: 4096 })))
        const decrypted = await collect(chunks(encrypted, 5000).pipeThrough(api.decryptStream(keyring)))
        const codeOf = async (run: () => Promise<unknown>) => run().then(() => 'resolved', (error) => error.code)
        const signed = await api.encrypt(keyring, data, { algorithmSuite: 0x0578 })
        async function* iterable() {
          yield data.subarray(0, 1000)
          yield data.subarray(1000)
        }
        const fromIterable = await api.decrypt(keyring, (await api.encrypt(keyring, iterable(), { algorithmSuite: 0x0478 })).ciphertext)
        return {
          encrypted: page.toBase64(encrypted),
          roundTrip: page.toBase64(decrypted) === page.toBase64(data),
          iterable: page.toBase64(fromIterable.plaintext) === page.toBase64(data),
          // Signed streams: SHA-384 incrementally and the signature from @noble/curves (WebCrypto signs whole messages only).
          signedStream: page.toBase64(await collect(chunks(data, 1000).pipeThrough(api.encryptStream(keyring, { algorithmSuite: 0x0578, frameLength: 4096 })))),
          signedDecryptStream: page.toBase64(await collect(chunks(signed.ciphertext, 1000).pipeThrough(api.decryptStream(keyring)))) === page.toBase64(data),
          tamperedSignedStream: await codeOf(() => {
            const altered = signed.ciphertext.slice()
            altered[altered.length - 1] = (altered[altered.length - 1] as number) ^ 1
            return collect(chunks(altered, 1000).pipeThrough(api.decryptStream(keyring)))
          }),
          signedOneShot: page.toBase64((await api.decrypt(keyring, signed.ciphertext)).plaintext) === page.toBase64(data),
        }
      },
      { key, namespace: KEY_NAMESPACE },
    )
    expect(result).toMatchObject({ roundTrip: true, iterable: true, signedDecryptStream: true, tamperedSignedStream: 'SIGNATURE_INVALID', signedOneShot: true })
    const keyring = ourKeyring({ kind: 'aes', bits: 256 })
    // The page's signed stream, checked here by node:crypto.
    const signedInPage = await decrypt(keyring, fromBase64(result.signedStream))
    expect(signedInPage.header.algorithmSuiteId).toBe(0x0578)
    expect(same(signedInPage.plaintext, Uint8Array.from({ length: 200_000 }, (_, index) => (index * 13) & 0xff))).toBe(true)
    const { plaintext } = await decrypt(keyring, fromBase64(result.encrypted))
    expect(same(plaintext, Uint8Array.from({ length: 200_000 }, (_, index) => (index * 13) & 0xff))).toBe(true)
  }, BROWSER_TEST_TIMEOUT_MS)

  it('one-shot encrypt and decrypt of a ReadableStream, async iterable or not (as in Safari); a bad chunk cancels it', async () => {
    const result = await engines[engine].page.evaluate(async () => {
      const page = window as unknown as PageWindow
      const api = page.KmsEnvelope
      const keyring = new api.RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(3) })
      let cancelled: unknown = 'not cancelled'
      const streamOf = (chunks: unknown[]) =>
        new ReadableStream<Uint8Array>({
          start(controller) {
            for (const chunk of chunks) controller.enqueue(chunk as Uint8Array)
            if (chunks.every((chunk) => chunk instanceof Uint8Array)) controller.close()
          },
          cancel(reason) {
            cancelled = reason === undefined ? 'cancelled' : String(reason)
          },
        })
      const run = async () => {
        const { ciphertext } = await api.encrypt(keyring, streamOf([Uint8Array.of(1, 2), Uint8Array.of(3)]) as never)
        const pieces = [ciphertext.subarray(0, 10), ciphertext.subarray(10)]
        const { plaintext } = await api.decrypt(keyring, streamOf(pieces) as never)
        cancelled = 'not cancelled'
        const refused = await api.encrypt(keyring, streamOf([Uint8Array.of(1), 'two']) as never).then(
          () => 'resolved',
          (error) => `${error.code}: ${error.message}`,
        )
        return { plaintext: Array.from(plaintext).join(), refused, cancelled }
      }
      const prototype = ReadableStream.prototype as unknown as Record<symbol, unknown>
      const asyncIterator = prototype[Symbol.asyncIterator]
      const native = await run()
      // The reader kms-envelope falls back on where streams are not async iterable, in every engine.
      delete prototype[Symbol.asyncIterator]
      try {
        return { iterable: typeof asyncIterator === 'function', native, throughReader: await run() }
      } finally {
        if (asyncIterator !== undefined) prototype[Symbol.asyncIterator] = asyncIterator
      }
    })
    expect(result.iterable).toBe(engine !== 'WebKit')
    const expected = { plaintext: '1,2,3', refused: expect.stringMatching(/^INVALID_CONFIGURATION: Iterable input must yield Uint8Array chunks; got a string: yield its bytes /), cancelled: 'cancelled' }
    expect(result).toEqual({ iterable: result.iterable, native: expected, throughReader: expected })
  }, BROWSER_TEST_TIMEOUT_MS)

  it('one-shot encrypt and decrypt under a signal: aborted before, while the keyring works, or while input is gathered', async () => {
    const result = await engines[engine].page.evaluate(async () => {
      const api = (window as unknown as PageWindow).KmsEnvelope
      const keyring = new api.RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(3) })
      const outcome = (promise: Promise<unknown>) =>
        promise.then(
          () => 'resolved',
          (error) => `${error.code}: ${error.message} (${error.cause?.message})`,
        )
      const live = new AbortController().signal
      const { ciphertext } = await api.encrypt(keyring, Uint8Array.of(1, 2, 3), { signal: live })
      const roundTrip = Array.from((await api.decrypt(keyring, ciphertext, { signal: live })).plaintext).join()
      const before = AbortSignal.abort(new Error('gone'))
      const abortedBefore = [await outcome(api.encrypt(keyring, 'x', { signal: before })), await outcome(api.decrypt(keyring, ciphertext, { signal: before }))]
      // A keyring that waits (on KMS, say), and input that never ends: each call is aborted 20 ms in.
      let release = () => {}
      const gate = new Promise<void>((resolve) => (release = resolve))
      const waiting = {
        onEncrypt: async (materials: never, backend: never) => (await gate, keyring.onEncrypt(materials, backend)),
        onDecrypt: async (materials: never, edks: never, backend: never) => (await gate, keyring.onDecrypt(materials, edks, backend)),
      }
      const endless = () => new ReadableStream<Uint8Array>({ start: (controller) => controller.enqueue(Uint8Array.of(1)) })
      const abortedWhile: string[] = []
      for (const call of [
        (signal: AbortSignal) => api.encrypt(waiting as never, 'x', { signal }),
        (signal: AbortSignal) => api.decrypt(waiting as never, ciphertext, { signal }),
        (signal: AbortSignal) => api.encrypt(keyring, endless() as never, { signal }),
        (signal: AbortSignal) => api.decrypt(keyring, endless() as never, { signal }),
      ]) {
        const controller = new AbortController()
        const pending = outcome(call(controller.signal))
        await new Promise((resolve) => setTimeout(resolve, 20))
        controller.abort(new Error('gone'))
        abortedWhile.push(await Promise.race([pending, new Promise((resolve) => setTimeout(() => resolve('still waiting'), 1000))]) as string)
      }
      release()
      return { roundTrip, abortedBefore, abortedWhile }
    })
    expect(result).toEqual({
      roundTrip: '1,2,3',
      abortedBefore: ['ABORTED: The encrypt call was aborted. (gone)', 'ABORTED: The decrypt call was aborted. (gone)'],
      abortedWhile: [
        'ABORTED: The encrypt call was aborted. (gone)',
        'ABORTED: The decrypt call was aborted. (gone)',
        'ABORTED: The encrypt call was aborted. (gone)',
        'ABORTED: The decrypt call was aborted. (gone)',
      ],
    })
  }, BROWSER_TEST_TIMEOUT_MS)

  it('bytes transferred away by postMessage, before or during a call, are refused as such', async () => {
    const outcomes = await engines[engine].page.evaluate(async () => {
      const page = window as unknown as PageWindow
      const api = page.KmsEnvelope
      const keyring = new api.RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(4) })
      const { port1 } = new MessageChannel()
      const transfer = (bytes: Uint8Array) => port1.postMessage(bytes, [bytes.buffer])
      const codeOf = (outcome: Promise<unknown>) => outcome.then(() => 'resolved', (error) => (error instanceof api.EnvelopeError ? error.code : String(error)))
      const plaintext = () => new Uint8Array(10_000).fill(7)
      const { ciphertext } = await api.encrypt(keyring, plaintext(), { algorithmSuite: 0x0478 })
      const transferred = (bytes: Uint8Array) => {
        transfer(bytes)
        return bytes
      }
      const during = <T>(bytes: Uint8Array, call: (bytes: Uint8Array) => Promise<T>) => {
        const outcome = call(bytes)
        transfer(bytes)
        return outcome
      }
      const stream = api.encryptStream(keyring, { algorithmSuite: 0x0478 })
      const writer = stream.writable.getWriter()
      writer.write(transferred(plaintext())).catch(() => undefined)
      return {
        encryptBefore: await codeOf(api.encrypt(keyring, transferred(plaintext()), { algorithmSuite: 0x0478 })),
        encryptDuring: await codeOf(during(plaintext(), (bytes) => api.encrypt(keyring, bytes, { algorithmSuite: 0x0478 }))),
        decryptBefore: await codeOf(api.decrypt(keyring, transferred(ciphertext.slice()))),
        decryptDuring: await codeOf(during(ciphertext.slice(), (bytes) => api.decrypt(keyring, bytes))),
        streamChunk: await codeOf(
          (async () => {
            const reader = stream.readable.getReader()
            while (!(await reader.read()).done);
          })(),
        ),
        untouched: await codeOf(api.decrypt(keyring, ciphertext)),
      }
    })
    const refused = 'INVALID_CONFIGURATION'
    expect(outcomes).toEqual({
      encryptBefore: refused,
      encryptDuring: refused,
      decryptBefore: refused,
      decryptDuring: refused,
      streamChunk: refused,
      untouched: 'resolved',
    })
  }, BROWSER_TEST_TIMEOUT_MS)

  it('bytes on a resizable ArrayBuffer, which WebCrypto refuses: stream chunks and one-shot input are copied; an empty plaintext view is refused, saying to copy it', async () => {
    const outcomes = await engines[engine].page.evaluate(async () => {
      const api = (window as unknown as PageWindow).KmsEnvelope
      const keyring = new api.RawAesKeyring({ keyNamespace: 'n', keyName: 'k', wrappingKey: new Uint8Array(32).fill(5) })
      const resizable = (bytes: Uint8Array) => {
        const view = new Uint8Array(new (ArrayBuffer as new (length: number, options: { maxByteLength: number }) => ArrayBuffer)(bytes.length, { maxByteLength: bytes.length * 2 }))
        view.set(bytes)
        return view
      }
      const outcome = (call: Promise<unknown>) => call.then(() => 'resolved', (error) => (error instanceof api.EnvelopeError ? `${error.code}: ${error.message}` : String(error)))
      const plaintext = new Uint8Array(10_000).map((_, index) => index & 0xff)
      const webCryptoRefuses = await crypto.subtle.digest('SHA-256', resizable(plaintext)).then(() => false, () => true)
      const { ciphertext } = await api.encrypt(keyring, plaintext, { algorithmSuite: 0x0478 })
      const chunks = (bytes: Uint8Array, size: number) =>
        new ReadableStream<Uint8Array>({
          start(controller) {
            for (let offset = 0; offset < bytes.length; offset += size) controller.enqueue(resizable(bytes.subarray(offset, offset + size)))
            controller.close()
          },
        })
      const read = async (stream: ReadableStream<Uint8Array>) => {
        const parts: number[] = []
        for (const reader = stream.getReader(); ; ) {
          const next = await reader.read()
          if (next.done) return parts
          parts.push(...next.value)
        }
      }
      const sealed = new Uint8Array(await read(chunks(plaintext, 3000).pipeThrough(api.encryptStream(keyring, { algorithmSuite: 0x0478 }))))
      const opened = await read(chunks(sealed, 4000).pipeThrough(api.decryptStream(keyring)))
      return {
        webCryptoRefuses,
        streams: opened.length === plaintext.length && opened.every((byte, index) => byte === plaintext[index]),
        encrypt: await api
          .encrypt(keyring, resizable(plaintext), { algorithmSuite: 0x0478 })
          .then(async ({ ciphertext: sealed }) => (await api.decrypt(keyring, sealed)).plaintext.every((byte, index) => byte === plaintext[index])),
        encryptEmpty: await outcome(api.encrypt(keyring, resizable(new Uint8Array(0)), { algorithmSuite: 0x0478 })),
        decrypt: await api.decrypt(keyring, resizable(ciphertext)).then(({ plaintext: opened }) => opened.length === plaintext.length && opened.every((byte, index) => byte === plaintext[index])),
      }
    })
    const refused = 'INVALID_CONFIGURATION: The plaintext is on a resizable ArrayBuffer, which WebCrypto refuses: pass a copy on a plain one (plaintext.slice()).'
    expect(outcomes).toEqual({ webCryptoRefuses: true, streams: true, encrypt: true, encryptEmpty: refused, decrypt: true })
  }, BROWSER_TEST_TIMEOUT_MS)

  it('in Web Workers: the script build in a classic worker, the ESM build (and its chunks) in a module worker', async () => {
    const key = toBase64(aesKey(192))
    const fromNode = await encrypt(ourKeyring({ kind: 'aes', bits: 192 }), 'from Node', { algorithmSuite: 0x0346, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' })
    const results = await engines[engine].page.evaluate(
      async ({ key, namespace, ciphertext }) => {
        // Each worker builds an AES-192 keyring (@noble), decrypts Node's signed message, and round-trips 0x0578.
        const work = `async function run(api, key, namespace, ciphertext) {
          const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0))
          const keyring = new api.RawAesKeyring({ keyNamespace: namespace, keyName: 'aes-192-ключ', wrappingKey: fromBase64(key) })
          const options = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' }
          const fromNode = new TextDecoder().decode((await api.decrypt(keyring, fromBase64(ciphertext), options)).plaintext)
          const signed = await api.encrypt(keyring, 'in a worker', { algorithmSuite: 0x0578 })
          return [fromNode, new TextDecoder().decode((await api.decrypt(keyring, signed.ciphertext)).plaintext), typeof window]
        }`
        const classic = `importScripts(${JSON.stringify(`${location.origin}/kms-envelope.iife.js`)}); ${work}
          onmessage = (event) => run(self.KmsEnvelope, ...event.data).then((result) => postMessage(result), (error) => postMessage(String(error)))`
        const module = `import * as api from ${JSON.stringify(`${location.origin}/esm/kms-envelope.js`)}; ${work}
          onmessage = (event) => run(api, ...event.data).then((result) => postMessage(result), (error) => postMessage(String(error)))`
        const inWorker = (source: string, type: WorkerType) =>
          new Promise((resolve) => {
            const worker = new Worker(URL.createObjectURL(new Blob([source], { type: 'text/javascript' })), { type })
            worker.onmessage = (event) => {
              resolve(event.data)
              worker.terminate()
            }
            worker.onerror = (event) => resolve(`worker error: ${event.message}`)
            worker.postMessage([key, namespace, ciphertext])
          })
        return { classic: await inWorker(classic, 'classic'), module: await inWorker(module, 'module') }
      },
      { key, namespace: KEY_NAMESPACE, ciphertext: toBase64(fromNode.ciphertext) },
    )
    const expected = ['from Node', 'in a worker', 'undefined']
    expect(results).toEqual({ classic: expected, module: expected })
  }, BROWSER_TEST_TIMEOUT_MS)

  it('in service workers, where import() is not allowed: the script build (importScripts) and the one-file ES module', async () => {
    const key = toBase64(aesKey(192))
    const fromNode = await encrypt(ourKeyring({ kind: 'aes', bits: 192 }), 'from Node', { algorithmSuite: 0x0346, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' })
    const results = await engines[engine].page.evaluate(
      async (job) => {
        // test/helpers/browser.ts serves the workers: each decrypts Node's message and round-trips 0x0578.
        const inServiceWorker = async (kind: 'classic' | 'module') => {
          const registration = await navigator.serviceWorker.register(`/service-worker/${kind}.js`, { type: kind, scope: `/service-worker/${kind}/` })
          try {
            const worker = (registration.installing ?? registration.waiting ?? registration.active) as ServiceWorker
            if (worker.state !== 'activated') {
              await new Promise<void>((resolve) => worker.addEventListener('statechange', () => worker.state === 'activated' && resolve()))
            }
            return await new Promise((resolve) => {
              navigator.serviceWorker.onmessage = (event) => resolve(event.data)
              worker.postMessage(job)
            })
          } finally {
            await registration.unregister()
          }
        }
        const outcome = (kind: 'classic' | 'module') => inServiceWorker(kind).catch((error: unknown) => `not registered: ${String(error)}`)
        return { classic: await outcome('classic'), module: await outcome('module'), userAgent: navigator.userAgent }
      },
      [key, KEY_NAMESPACE, toBase64(fromNode.ciphertext)],
    )
    const { userAgent, ...outcomes } = results as { userAgent: string; classic: unknown; module: unknown }
    const expected = ['from Node', 'in a service worker']
    // Firefox has module service workers from 147 (ESR 153). ESR 140 evaluates the script as a classic one, and fails.
    const firefox = /Firefox\/(\d+)/.exec(userAgent)
    const moduleWorkers = firefox !== null && Number(firefox[1]) < 147 ? expect.stringMatching(/^not registered: TypeError: /) : expected
    expect(outcomes).toEqual({ classic: expected, module: moduleWorkers })
  }, BROWSER_TEST_TIMEOUT_MS)

  it('the ESM build fetches its on-demand chunks only when needed', async () => {
    const harness = engines[engine]
    // Only this test's requests count: earlier ones (the module worker's) fetched the chunks already.
    const before = harness.requests.length
    const requested = () => harness.requests.slice(before)
    const page = await harness.newPage()
    const loaded = (chunk: string) => requested().some((url) => url.includes(`/esm/${chunk}-`))
    const key = toBase64(aesKey(192))
    const signed = await encrypt(ourKeyring({ kind: 'aes', bits: 192 }), 'signed, AES-192', { algorithmSuite: 0x0346, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' })
    const first = await page.evaluate(
      async ({ url, keyId, publicKey }) => {
        const api = (await (new Function('url', 'return import(url)') as (url: string) => Promise<Api>)(new URL(url, location.href).href))
        const keyring = new api.KmsRsaKeyring({ keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey })
        return (window as unknown as PageWindow).toBase64((await api.encrypt(keyring, 'from the ESM build')).ciphertext)
      },
      { url: 'esm/kms-envelope.js', keyId: rsaKeyArn, publicKey: publicKeyPem },
    )
    expect(requested().some((url) => url.endsWith('/esm/kms-envelope.js'))).toBe(true)
    expect([loaded('on-demand'), loaded('noble')]).toEqual([false, false])
    const rsaKeyring = new KmsRsaKeyring({ keyId: rsaKeyArn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', clientSupplier })
    expect(text((await decrypt(rsaKeyring, fromBase64(first))).plaintext)).toBe('from the ESM build')
    const second = await page.evaluate(
      async ({ url, key, namespace, ciphertext }) => {
        const page = window as unknown as PageWindow
        const api = (await (new Function('url', 'return import(url)') as (url: string) => Promise<Api>)(new URL(url, location.href).href))
        const keyring = new api.RawAesKeyring({ keyNamespace: namespace, keyName: 'aes-192-ключ', wrappingKey: page.fromBase64(key) })
        const { plaintext } = await api.decrypt(keyring, page.fromBase64(ciphertext), { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })
        return new TextDecoder().decode(plaintext)
      },
      { url: 'esm/kms-envelope.js', key, namespace: KEY_NAMESPACE, ciphertext: toBase64(signed.ciphertext) },
    )
    expect(second).toBe('signed, AES-192')
    // Decrypting (the on-demand chunk), a signature (on-demand) and AES-192 (the @noble chunk) fetched them.
    expect([loaded('on-demand'), loaded('noble')]).toEqual([true, true])
    await page.close()
  }, BROWSER_TEST_TIMEOUT_MS)

  it('without crypto.subtle, AES suites and ECDSA run on @noble, and KmsRsaKeyring encrypts in JavaScript', async () => {
    const page = await engines[engine].newPage("Object.defineProperty(globalThis.crypto, 'subtle', { value: undefined, configurable: true })")
    const data = bytes(3000, 4)
    const fromNode = await encrypt(ourKeyring({ kind: 'aes', bits: 128 }), data, { algorithmSuite: 0x0478, frameLength: 1000 })
    const result = await page.evaluate(
      async ({ key, namespace, ciphertext, publicKey, keyId }) => {
        const page = window as unknown as PageWindow
        const api = page.KmsEnvelope
        const keyring = new api.RawAesKeyring({ keyNamespace: namespace, keyName: 'aes-128-ключ', wrappingKey: page.fromBase64(key) })
        const decrypted = await api.decrypt(keyring, page.fromBase64(ciphertext))
        const encrypted = await api.encrypt(keyring, decrypted.plaintext, { algorithmSuite: 0x0178, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' })
        const signed = await api.encrypt(keyring, decrypted.plaintext) // 0x0578: ECDSA P-384
        const rsa = new api.KmsRsaKeyring({ keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey })
        const offline = await api.encrypt(rsa, decrypted.plaintext, { encryptionContext: { purpose: 'upload' } })
        return {
          subtle: typeof crypto.subtle,
          plaintext: page.toBase64(decrypted.plaintext),
          encrypted: page.toBase64(encrypted.ciphertext),
          signed: page.toBase64(signed.ciphertext),
          offline: page.toBase64(offline.ciphertext),
        }
      },
      { key: toBase64(aesKey(128)), namespace: KEY_NAMESPACE, ciphertext: toBase64(fromNode.ciphertext), publicKey: publicKeyPem, keyId: rsaKeyArn },
    )
    expect(result.subtle).toBe('undefined')
    expect(same(fromBase64(result.plaintext), data)).toBe(true)
    const { plaintext } = await decrypt(ourKeyring({ kind: 'aes', bits: 128 }), fromBase64(result.encrypted), { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })
    expect(same(plaintext, data)).toBe(true)
    const signed = await decrypt(ourKeyring({ kind: 'aes', bits: 128 }), fromBase64(result.signed))
    expect([signed.header.algorithmSuiteId, same(signed.plaintext, data)]).toEqual([0x0578, true])
    const rsaKeyring = new KmsRsaKeyring({ keyId: rsaKeyArn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', clientSupplier })
    const offline = await decrypt(rsaKeyring, fromBase64(result.offline), { encryptionContext: { purpose: 'upload' } })
    expect(same(offline.plaintext, data)).toBe(true)
    await page.close()
  }, BROWSER_TEST_TIMEOUT_MS)

  it("under a strict Content-Security-Policy (scripts by nonce only, no eval, Trusted Types): both builds, a signing suite, AES-192 on @noble, streams and KmsRsaKeyring", async () => {
    const policy = `script-src 'nonce-${PAGE_NONCE}' 'strict-dynamic'; object-src 'none'; base-uri 'none'; require-trusted-types-for 'script'; trusted-types 'none'`
    const input = { key192: toBase64(aesKey(192)), key256: toBase64(aesKey(256)), namespace: KEY_NAMESPACE, keyId: rsaKeyArn, publicKey: publicKeyPem }
    // The page's own scripts do the work, so that the policy binds it; the ES module build fetches its chunks on use.
    const body = `<script nonce="${PAGE_NONCE}" src="kms-envelope.iife.js"></script>
<script nonce="${PAGE_NONCE}" type="module">
import * as esm from './esm/kms-envelope.js'
const input = ${JSON.stringify(input)}
const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0))
const toBase64 = (bytes) => btoa(Array.from(bytes, (byte) => String.fromCharCode(byte)).join(''))
const text = (bytes) => new TextDecoder().decode(bytes)
async function work(api) {
  const aes192 = new api.RawAesKeyring({ keyNamespace: input.namespace, keyName: 'aes-192-ключ', wrappingKey: fromBase64(input.key192) })
  const aes256 = new api.RawAesKeyring({ keyNamespace: input.namespace, keyName: 'aes-256-ключ', wrappingKey: fromBase64(input.key256) })
  const legacyPolicy = { commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' }
  const signed = (await api.encrypt(aes256, 'signed under the policy')).ciphertext
  const legacy = (await api.encrypt(aes192, 'AES-192 under the policy', { algorithmSuite: 0x0346, ...legacyPolicy })).ciphertext
  const stream = api.encryptStream(aes256, { algorithmSuite: 0x0478, frameLength: 100 })
  const writer = stream.writable.getWriter()
  writer.write(new TextEncoder().encode('streamed under the policy '.repeat(20)))
  writer.close()
  const streamed = new Uint8Array(await new Response(stream.readable).arrayBuffer())
  const rsa = new api.KmsRsaKeyring({ keyId: input.keyId, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey: input.publicKey })
  const offline = (await api.encrypt(rsa, 'offline under the policy')).ciphertext
  const inPage = [
    text((await api.decrypt(aes256, signed)).plaintext),
    text((await api.decrypt(aes192, legacy, legacyPolicy)).plaintext),
    text((await api.decrypt(aes256, streamed)).plaintext).length,
  ]
  return { inPage, messages: [signed, legacy, streamed, offline].map(toBase64) }
}
let evalBlocked = false
try { new Function('return 1')() } catch { evalBlocked = true }
Promise.all([work(window.KmsEnvelope), work(esm)]).then(
  (builds) => report({ evalBlocked, builds }),
  (error) => report({ error: String((error && error.stack) || error) }),
)
</script>`
    const result = (await engines[engine].reportUnderPolicy(policy, body)) as { error?: string; evalBlocked: boolean; builds: { inPage: unknown[]; messages: string[] }[] }
    expect(result.error).toBeUndefined()
    // The policy is in force: the page may not make code from text.
    expect(result.evalBlocked).toBe(true)
    const rsaKeyring = new KmsRsaKeyring({ keyId: rsaKeyArn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', clientSupplier })
    for (const [index, build] of result.builds.entries()) {
      expect(build.inPage, `build ${index}`).toEqual(['signed under the policy', 'AES-192 under the policy', 'streamed under the policy '.repeat(20).length])
      const [signed, legacy, streamed, offline] = build.messages.map(fromBase64) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array]
      const fromPage = await decrypt(ourKeyring({ kind: 'aes', bits: 256 }), signed)
      expect([fromPage.header.algorithmSuiteId, text(fromPage.plaintext)]).toEqual([0x0578, 'signed under the policy'])
      expect(text((await decrypt(ourKeyring({ kind: 'aes', bits: 192 }), legacy, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })).plaintext)).toBe('AES-192 under the policy')
      expect(text((await decrypt(ourKeyring({ kind: 'aes', bits: 256 }), streamed)).plaintext)).toBe('streamed under the policy '.repeat(20))
      expect(text((await decrypt(rsaKeyring, offline)).plaintext)).toBe('offline under the policy')
    }
  }, BROWSER_TEST_TIMEOUT_MS)
})

/** A DynamoDB item as JSON: its top-level binary values (header, footer, encrypted attributes) in base64. */
type WireItem = Record<string, unknown>
const toWireItem = (item: Item): WireItem =>
  Object.fromEntries(Object.entries(item).map(([name, value]) => [name, 'B' in value ? { B64: toBase64(value.B) } : value]))
const fromWireItem = (item: WireItem): Item =>
  Object.fromEntries(Object.entries(item).map(([name, value]) => [name, 'B64' in (value as object) ? { B: fromBase64((value as { B64: string }).B64) } : value])) as Item

describe.each(ENGINES)('DynamoDB items (kms-envelope/dynamodb for browsers) in %s', (engine) => {
  const config = (algorithmSuite: number) => ({
    tableName: 'notes',
    partitionKeyName: 'pk',
    attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', body: 'ENCRYPT_AND_SIGN', tags: 'ENCRYPT_AND_SIGN', blob: 'ENCRYPT_AND_SIGN', n: 'SIGN_ONLY' },
    algorithmSuite,
  })
  const plain = (pk: string): Item => ({ pk: { S: pk }, body: { S: 'ünïcode ✓' }, tags: { M: { l: { L: [{ N: '1' }, { BOOL: true }, { NULL: true }] }, s: { SS: ['a', 'b'] } } }, blob: { B: bytes(300, 9) }, n: { N: '42' } })
  const aesKeyringOf = () => new RawAesKeyring({ keyNamespace: KEY_NAMESPACE, keyName: 'items', wrappingKey: aesKey(256) })
  const rsaKeyringOf = () => new RawRsaKeyring({ keyNamespace: KEY_NAMESPACE, keyName: 'items-rsa', ...rsaKeyPair(), padding: 'OAEP-SHA256' })
  const nodeEncryptor = (algorithmSuite: number, keyring: Keyring) => new DynamoDbItemEncryptor({ ...config(algorithmSuite), keyring } as DynamoDbItemEncryptorConfig)

  /** Page side (passed as source): both suites under a raw AES and a raw RSA keyring; Node's items decrypted, its own written, a changed one refused. */
  const PAGE_WORK = `async ({ core, items, wire, fromNode, aesKey, rsa, namespace, configs, changed }) => {
    const page = window
    const fromWire = (item) => Object.fromEntries(Object.entries(item).map(([name, value]) => [name, value.B64 !== undefined ? { B: page.fromBase64(value.B64) } : value]))
    const toWire = (item) => Object.fromEntries(Object.entries(item).map(([name, value]) => [name, value.B instanceof Uint8Array ? { B64: page.toBase64(value.B) } : value]))
    const keyrings = [
      new core.RawAesKeyring({ keyNamespace: namespace, keyName: 'items', wrappingKey: page.fromBase64(aesKey) }),
      new core.RawRsaKeyring({ keyNamespace: namespace, keyName: 'items-rsa', publicKey: rsa.publicKey, privateKey: rsa.privateKey, padding: 'OAEP-SHA256' }),
    ]
    const decrypted = []
    const written = []
    for (const [index, { keyring, suite }] of fromNode.entries()) {
      const encryptor = new items.DynamoDbItemEncryptor({ ...configs[suite], keyring: keyrings[keyring] })
      decrypted.push(toWire(await encryptor.decryptItem(fromWire(wire[index]))))
      written.push(toWire(await encryptor.encryptItem(fromWire(wire.plain))))
    }
    const encryptor = new items.DynamoDbItemEncryptor({ ...configs[changed.suite], keyring: keyrings[0] })
    const refusal = await encryptor.decryptItem(fromWire(changed.item)).then(() => 'decrypted', (error) => [error.code, error.name, error instanceof core.EnvelopeError])
    // An item with nothing to encrypt (no key stream at all) is signed only.
    const signedOnly = new items.DynamoDbItemEncryptor({ ...configs[changed.suite], attributeActionsOnEncrypt: { pk: 'SIGN_ONLY', n: 'SIGN_ONLY' }, keyring: keyrings[0] })
    const signed = await signedOnly.encryptItem({ pk: { S: 'signed' }, n: { N: '7' } })
    // Plain objects, through @aws-sdk/util-dynamodb, which the build imports on this first use.
    const objects = new items.DynamoDbItemEncryptor({ ...configs[changed.suite], keyring: keyrings[0] })
    const object = await objects.decryptObject(await objects.encryptObject({ pk: 'o1', body: 'a plain object', n: 3, blob: new Uint8Array([1, 2]) }))
    return { subtle: typeof crypto.subtle, decrypted, written, refusal, signedOnly: (await signedOnly.decryptItem(signed)).n.N, object: [object.body, object.n, [...object.blob]] }
  }`

  /** `keyrings`: 0 for the raw AES keyring, 1 for the raw RSA one. */
  async function exchange(page: import('./helpers/browser.js').EnginePage, keyrings: number[]): Promise<{ subtle: string }> {
    const cases = [0x6700, 0x6701].flatMap((suite) => keyrings.map((keyring) => ({ keyring, suite })))
    const keyringOf = (index: number) => (index === 0 ? aesKeyringOf() : rsaKeyringOf())
    const stored = await Promise.all(cases.map(({ keyring, suite }) => nodeEncryptor(suite, keyringOf(keyring)).encryptItem(plain(`node-${suite}-${keyring}`))))
    const wireItems = Object.assign(stored.map(toWireItem), { plain: toWireItem(plain('page')) })
    const tampered = { ...stored[keyrings.length]!, n: { N: '43' } } // 0x6701 under the AES keyring: a signed attribute changed
    const result = await page.evaluate(
      async ({ work, ...arg }) => {
        const load = new Function('url', 'return import(url)') as (url: string) => Promise<unknown>
        const [core, items] = await Promise.all([load(new URL('esm/kms-envelope.js', location.href).href), load(new URL('esm/kms-envelope-dynamodb.js', location.href).href)])
        return ((0, eval)(work) as (arg: unknown) => Promise<{ subtle: string; decrypted: WireItem[]; written: WireItem[]; refusal: unknown; signedOnly: string; object: unknown }>)({ core, items, ...arg })
      },
      {
        work: PAGE_WORK,
        wire: { ...wireItems },
        fromNode: cases,
        aesKey: toBase64(aesKey(256)),
        rsa: rsaKeyPair(),
        namespace: KEY_NAMESPACE,
        configs: { 0x6700: config(0x6700), 0x6701: config(0x6701) },
        changed: { suite: 0x6701, item: toWireItem(tampered) },
      },
    )
    for (const [index, { keyring, suite }] of cases.entries()) {
      expect(fromWireItem(result.decrypted[index]!), `Node's item, suite ${suite}, keyring ${keyring}`).toEqual(plain(`node-${suite}-${keyring}`))
      const written = fromWireItem(result.written[index]!)
      expect(written.body, 'stored encrypted').toHaveProperty('B')
      expect(await nodeEncryptor(suite, keyringOf(keyring)).decryptItem(written), `the page's item, suite ${suite}, keyring ${keyring}`).toEqual(plain('page'))
    }
    expect(result.refusal).toEqual(['ITEM_AUTHENTICATION_FAILED', 'ItemAuthenticationError', true])
    expect(result.signedOnly).toBe('7')
    expect(result.object).toEqual(['a plain object', 3, [1, 2]])
    return result
  }

  it('the page reads items Node wrote and Node reads the page\'s, both suites, raw AES and RSA keyrings; a changed item is refused', async () => {
    const page = await engines[engine].newPage()
    expect((await exchange(page, [0, 1])).subtle).toBe('object')
    await page.close()
  }, BROWSER_TEST_TIMEOUT_MS)

  it('without crypto.subtle, on @noble (raw AES keyring: RSA private keys need WebCrypto)', async () => {
    const page = await engines[engine].newPage("Object.defineProperty(globalThis.crypto, 'subtle', { value: undefined, configurable: true })")
    expect((await exchange(page, [0])).subtle).toBe('undefined')
    await page.close()
  }, BROWSER_TEST_TIMEOUT_MS)
})

/** How each engine words a module import that failed: the cause the InternalError carries. */
const IMPORT_FAILURES: Record<Engine, RegExp> = {
  Chromium: /^TypeError: Failed to fetch dynamically imported module: .*\/esm\/(on-demand|noble)-/,
  Firefox: /^TypeError: error loading dynamically imported module: .*\/esm\/(on-demand|noble)-/,
  WebKit: /^TypeError: Importing a module script failed\.$/,
}

describe.each(ENGINES)('a chunk load that fails, in %s', (engine) => {
  it('an on-demand chunk that does not arrive is an InternalError, with the browser error as its cause', async () => {
    const harness = engines[engine]
    const signed = await encrypt(ourKeyring({ kind: 'aes', bits: 192 }), 'after a failed load', { algorithmSuite: 0x0346, commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' })
    // The network drops the decrypt side (on-demand) and @noble's AES (which AES-192 needs in the browser build).
    const page = await harness.newPage(undefined, /\/esm\/(on-demand|noble)-[A-Z0-9]+\.js$/)
    const failed = await page.evaluate(
      async ({ url, key, namespace, ciphertext }) => {
        const page = window as unknown as PageWindow
        const api = await (new Function('url', 'return import(url)') as (url: string) => Promise<Api>)(new URL(url, location.href).href)
        const keyring = new api.RawAesKeyring({ keyNamespace: namespace, keyName: 'aes-192-ключ', wrappingKey: page.fromBase64(key) })
        const failure = (error: unknown) => ({
          name: (error as Error).name,
          code: (error as { code?: string }).code,
          typed: error instanceof api.EnvelopeError,
          cause: String((error as Error).cause),
        })
        const decrypted = await api
          .decrypt(keyring, page.fromBase64(ciphertext), { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })
          .then(({ plaintext }) => new TextDecoder().decode(plaintext), failure)
        const encrypted = await api
          .encrypt(keyring, 'with @noble', { algorithmSuite: 0x0478 })
          .then(({ ciphertext }) => page.toBase64(ciphertext), failure)
        return { decrypted, encrypted }
      },
      { url: 'esm/kms-envelope.js', key: toBase64(aesKey(192)), namespace: KEY_NAMESPACE, ciphertext: toBase64(signed.ciphertext) },
    )
    for (const outcome of [failed.decrypted, failed.encrypted]) {
      expect(outcome).toMatchObject({ name: 'InternalError', code: 'INTERNAL_ERROR', typed: true })
      expect((outcome as { cause: string }).cause).toMatch(IMPORT_FAILURES[engine])
    }
    // A failed module import stays failed for the page's lifetime; a page loaded after the network recovers works.
    await page.close()
    const recovered = await harness.newPage()
    const fresh = await recovered.evaluate(
      async ({ url, key, namespace, ciphertext }) => {
        const page = window as unknown as PageWindow
        const api = await (new Function('url', 'return import(url)') as (url: string) => Promise<Api>)(new URL(url, location.href).href)
        const keyring = new api.RawAesKeyring({ keyNamespace: namespace, keyName: 'aes-192-ключ', wrappingKey: page.fromBase64(key) })
        const { plaintext } = await api.decrypt(keyring, page.fromBase64(ciphertext), { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })
        return new TextDecoder().decode(plaintext)
      },
      { url: 'esm/kms-envelope.js', key: toBase64(aesKey(192)), namespace: KEY_NAMESPACE, ciphertext: toBase64(signed.ciphertext) },
    )
    expect(fresh).toBe('after a failed load')
    await recovered.close()
  }, BROWSER_TEST_TIMEOUT_MS)
})

describe.each(ENGINES)('examples/browser-offline in %s', (engine) => {
  it('the page encrypts with the served public key and the server decrypts the posted message through KMS', async () => {
    const example = await startExampleServer({ port: 0 })
    try {
      const page = await engines[engine].open(example.url)
      const status = () => page.evaluate(() => document.getElementById('status')?.textContent ?? '')
      // A wait that runs out says where the page stood (it once hung under a full suite on a busy machine).
      const statusBecomes = async (pattern: RegExp, step: string) => {
        const deadline = Date.now() + 25_000
        for (let now = await status(); !pattern.test(now); now = await status()) {
          if (Date.now() > deadline) throw new Error(`${step}: the page's status is still ${JSON.stringify(now)}`)
          await new Promise((resolve) => setTimeout(resolve, 50))
        }
      }
      await statusBecomes(/^Ready\./, 'loading the page and the public key')
      // What typing and a click do: the text area's value, then the button's click event.
      await page.evaluate((text) => {
        ;(document.getElementById('text') as HTMLTextAreaElement).value = text
        ;(document.getElementById('send') as HTMLButtonElement).click()
      }, 'posted from the example page ✓')
      await statusBecomes(/decrypted|refused|Failed/, 'encrypting and posting the message')
      const final = await status()
      expect(final).toContain('The server decrypted it through KMS:\nposted from the example page ✓')
      expect(final).toContain('suite 0x0478')
      await page.close()
    } finally {
      await example.close()
    }
  }, BROWSER_TEST_TIMEOUT_MS)
})

describe('finding the browsers', () => {
  it.each([
    ['Chromium', /Chrome\/\d+/],
    ['Firefox', /\bFirefox\/\d+/],
    ['WebKit', /^(?!.*Chrome).*\bVersion\/[\d.]+ Safari\//],
  ] as const)('the %s harness runs its pages in that engine', async (engine, userAgent) => {
    expect(await engines[engine].page.evaluate(() => navigator.userAgent)).toMatch(userAgent)
  })

  it.each([
    ['Chromium', 'CHROMIUM_PATH', 'apt-get install -y chromium (Debian; .ci/run does it), or set CHROMIUM_PATH to a Chrome or Chromium.'],
    ['Firefox', 'FIREFOX_PATH', 'apt-get install -y firefox-esr (Debian; .ci/run does it), or set FIREFOX_PATH to a Firefox.'],
    ['WebKit', 'WEBKIT_WEBDRIVER', 'apt-get install -y webkit2gtk-driver xvfb (Debian; .ci/run does it), or set WEBKIT_WEBDRIVER to a WebKitWebDriver.'],
  ] as const)('a machine without %s is told how to get it; %s wins over the search', (engine, variable, advice) => {
    const saved = { path: process.env.PATH, configured: process.env[variable] }
    // A PATH with a shell on it but no browser.
    const bin = mkdtempSync(join(tmpdir(), 'kms-envelope-no-browser-'))
    symlinkSync('/bin/sh', join(bin, 'sh'))
    try {
      process.env.PATH = bin
      delete process.env[variable]
      expect(() => browserPath(engine)).toThrow(`The browser tests need ${engine}: ${advice}`)
      process.env[variable] = '/opt/browser/bin'
      expect(browserPath(engine)).toBe('/opt/browser/bin')
    } finally {
      process.env.PATH = saved.path
      if (saved.configured === undefined) delete process.env[variable]
      else process.env[variable] = saved.configured
      rmSync(bin, { recursive: true, force: true })
    }
  })
})
