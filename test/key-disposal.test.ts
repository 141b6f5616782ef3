// Message keys are zeroed when the message is done: every AES-GCM key the engine makes for a message is
// disposed on success, on every failure after it was made, and when a stream ends or is aborted.
import { generateKeyPairSync } from 'node:crypto'
import { inspect } from 'node:util'
import { describe, expect, it, vi } from 'vitest'
import { nodeBackend } from '../src/backend/node.js'
import { webCryptoBackend } from '../src/backend/webcrypto.js'
import type { AeadKey, CryptoBackend } from '../src/backend/types.js'
import { decryptWith } from '../src/decrypt.js'
import { encryptWith } from '../src/encrypt.js'
import { ConfigurationError, DefaultMaterialsManager, KmsKeyring, KmsRsaKeyring, MultiKeyring, RawAesKeyring, type EncryptionMaterials, type Keyring } from '../src/index.js'
import { addIntermediateRecipient, openIntermediate } from '../src/keyrings/intermediate.js'
import { ALGORITHM_SUITE_IDS, suiteFromOption } from '../src/suites.js'
import { dbeSuite } from '../src/suites-dbe.js'
import { decryptStreamWith } from '../src/stream-decrypt.js'
import { encryptStreamWith } from '../src/stream-encrypt.js'
import { isAllZero } from '../src/format/bytes.js'
import { aesKeyring, aroundAeadOpen, bufferKeyring, countingAeadKeys, nodeBufferPool, recordingDataKeys, rejectionOf, rsaKeyring } from './helpers/fixtures.js'
import { chunked, readAll } from './helpers/web-streams.js'

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 1)
const IV = new Uint8Array(12)
const AAD = new Uint8Array([1, 2, 3])
const PLAINTEXT = new TextEncoder().encode('sixteen byte msg')

function seal(key: AeadKey): Uint8Array {
  const out = new Uint8Array(PLAINTEXT.length + 16)
  key.seal(IV, AAD, PLAINTEXT, out, 0)
  return out
}

/** nodeBackend, counting the AES-GCM keys it makes and the ones disposed. */
const countingBackend = () => countingAeadKeys(nodeBackend)

/**
 * `backend` (node:crypto's HKDF) keeping every key it derives, to see them zeroed, and a copy of each message key as
 * derived (the first output: a second one, the commitment, is in the header for all to see).
 */
function recordingDerivedKeys(backend: CryptoBackend): { backend: CryptoBackend; derived: Uint8Array[]; messageKeys: Uint8Array[] } {
  const derived: Uint8Array[] = []
  const messageKeys: Uint8Array[] = []
  const hkdf: CryptoBackend['hkdf'] = (...args) => {
    const outputs = nodeBackend.hkdf(...args) as Uint8Array[]
    derived.push(...outputs)
    messageKeys.push(new Uint8Array(outputs[0]!))
    return outputs
  }
  return { backend: { ...backend, hkdf }, derived, messageKeys }
}

const keyring = () => new RawAesKeyring({ keyNamespace: 'ns', keyName: 'k', wrappingKey: new Uint8Array(32).fill(9) })
const data = (length: number) => Uint8Array.from({ length }, (_, i) => (i * 7) & 0xff)

describe('node AES-GCM keys', () => {
  it('own a copy of the key: zeroing the caller’s bytes changes nothing, dispose() zeroes the copy', () => {
    const bytes = KEY.slice()
    const key = nodeBackend.aeadKey(bytes) as AeadKey
    const expected = seal(nodeBackend.aeadKey(KEY) as AeadKey)
    bytes.fill(0)
    expect(seal(key)).toEqual(expected)
    key.dispose?.()
    // After dispose the key is all zeros: it seals exactly as the zero key does, and no longer as before.
    const zeroSealed = seal(nodeBackend.aeadKey(new Uint8Array(32)) as AeadKey)
    expect(seal(key)).toEqual(zeroSealed)
    expect(seal(key)).not.toEqual(expected)
  })

  it('own a copy of a Node Buffer key too, whose slice() would be a view of the same memory', () => {
    const bytes = Buffer.from(KEY)
    const key = nodeBackend.aeadKey(bytes) as AeadKey
    bytes.fill(0)
    expect(seal(key)).toEqual(seal(nodeBackend.aeadKey(KEY) as AeadKey))
  })

  it('adopted, keep the caller’s bytes themselves, which dispose() zeroes', () => {
    const bytes = KEY.slice()
    const key = nodeBackend.adoptAeadKey?.(bytes) as AeadKey
    expect(seal(key)).toEqual(seal(nodeBackend.aeadKey(KEY) as AeadKey))
    key.dispose?.()
    expect(Array.from(bytes)).toEqual(Array.from(new Uint8Array(32)))
    expect(seal(key)).toEqual(seal(nodeBackend.aeadKey(new Uint8Array(32)) as AeadKey))
  })

  it('seal alike and are zeroed by dispose() also after many uses (when node:crypto gets the key as a KeyObject)', () => {
    const key = nodeBackend.aeadKey(KEY) as AeadKey
    const expected = seal(nodeBackend.aeadKey(KEY) as AeadKey)
    for (let use = 0; use < 5; use++) expect(seal(key)).toEqual(expected)
    key.dispose?.()
    expect(seal(key)).toEqual(seal(nodeBackend.aeadKey(new Uint8Array(32)) as AeadKey))
  })

  it('never show their key bytes when inspected or serialized', () => {
    const key = nodeBackend.aeadKey(KEY)
    const shown = inspect(key, { showHidden: true, depth: 5 }) + JSON.stringify(key)
    expect(shown).not.toMatch(/\b1, 2, 3, 4\b/)
    expect(shown).not.toContain('Uint8Array')
  })
})

describe('a data key that a keyring hands over as a Node Buffer (a custom keyring on node:crypto)', () => {
  // Buffer#slice() is a view: an AES-GCM key "copied" with it was zeroed with the data key it came from, so a suite
  // without key derivation (0x0014, 0x0046, 0x0078) encrypted the message under a key of zeros.
  const { keyring: buffers, made } = bufferKeyring()
  /** Decrypts with the data key itself, as a plain Uint8Array: a message under any other key fails. */
  const madeKeyring = (dataKey: Uint8Array): Keyring => ({
    onEncrypt: async () => Promise.reject(new Error('decrypt only')),
    onDecrypt: async (materials) => ({ ...materials, plaintextDataKey: dataKey.slice() }),
  })

  // The browser build too, as it runs on Node, Bun or Deno (on @noble for AES-192).
  it.each(
    [nodeBackend, webCryptoBackend].flatMap((backend) =>
      ALGORITHM_SUITE_IDS.map((id) => [`0x${id.toString(16).padStart(4, '0')}`, backend === nodeBackend ? 'node:crypto' : 'WebCrypto', backend, id] as const),
    ),
  )(
    'the message is under that key (%s, %s), and a Buffer key decrypts it',
    async (_name, _backendName, backend, algorithmSuite) => {
      const commitmentPolicy = algorithmSuite < 0x0400 ? 'FORBID_ENCRYPT_ALLOW_DECRYPT' : 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'
      const { ciphertext } = await encryptWith(backend, buffers, 'under the right key', { algorithmSuite, commitmentPolicy })
      const options = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' } as const
      const opened = await decryptWith(nodeBackend, madeKeyring(made.at(-1)!), ciphertext, options)
      expect(new TextDecoder().decode(opened.plaintext)).toBe('under the right key')
      const again = await decryptWith(backend, buffers, ciphertext, options)
      expect(new TextDecoder().decode(again.plaintext)).toBe('under the right key')
    },
  )
})

describe('message keys are disposed', () => {
  it('after a one-shot encrypt and decrypt (framed, several frames)', async () => {
    const { backend, live, made } = countingBackend()
    const ring = keyring()
    const { ciphertext } = await encryptWith(backend, ring, data(5000), { frameLength: 1024 })
    const { plaintext } = await decryptWith(backend, ring, ciphertext)
    expect(plaintext).toEqual(data(5000))
    // The keyring's wrapping key lives with the keyring; the two message keys are gone.
    expect(made()).toBe(3)
    expect(live()).toBe(1)
  })

  it('when the header tag fails', async () => {
    const { backend, live, made } = countingBackend()
    const ring = keyring()
    const { ciphertext } = await encryptWith(nodeBackend, ring, data(100))
    const altered = ciphertext.slice()
    // The frame length's low byte (4096 becomes 4097): still a well-formed message, which only the header tag catches.
    const frameLengthEnd = headerBodyEnd(ciphertext) - 32
    altered[frameLengthEnd - 1] = (altered[frameLengthEnd - 1] as number) ^ 1
    await expect(decryptWith(backend, ring, altered)).rejects.toMatchObject({ code: 'HEADER_AUTHENTICATION_FAILED' })
    expect(made()).toBe(2)
    expect(live()).toBe(1)
  })

  it('when the key commitment does not match, the derived key is zeroed before any AES-GCM key is made from it', async () => {
    const { backend, made } = countingBackend()
    const { backend: recording, derived } = recordingDerivedKeys(backend)
    const ring = keyring()
    const { ciphertext } = await encryptWith(nodeBackend, ring, data(100), { algorithmSuite: 0x0478 })
    const altered = ciphertext.slice()
    const commitmentEnd = headerBodyEnd(ciphertext)
    altered[commitmentEnd - 1] = (altered[commitmentEnd - 1] as number) ^ 1
    await expect(decryptWith(recording, ring, altered)).rejects.toMatchObject({ code: 'COMMITMENT_MISMATCH' })
    expect(made()).toBe(1) // the keyring's wrapping key only
    const [encryptionKey] = derived
    expect(encryptionKey?.length).toBe(32)
    expect(isAllZero(encryptionKey!)).toBe(true)
  })

  it('on a backend that cannot adopt a key, the derived key is zeroed once its AES-GCM key is made from it', async () => {
    const { adoptAeadKey: _adopt, ...withoutAdopting } = nodeBackend
    const { backend: copying, derived } = recordingDerivedKeys(withoutAdopting)
    const ring = keyring()
    const { ciphertext } = await encryptWith(nodeBackend, ring, data(100), { algorithmSuite: 0x0478 })
    expect((await decryptWith(copying, ring, ciphertext)).plaintext).toEqual(data(100))
    expect(derived[0]?.length).toBe(32)
    expect(isAllZero(derived[0]!)).toBe(true)
  })

  it('encrypt zeroes the derived key once its AES-GCM key is made, with or without commitment (which the header keeps)', async () => {
    for (const [algorithmSuite, commitmentPolicy] of [[0x0478, undefined], [0x0178, 'FORBID_ENCRYPT_ALLOW_DECRYPT']] as const) {
      const { backend: recording, derived } = recordingDerivedKeys(nodeBackend)
      const { ciphertext } = await encryptWith(recording, keyring(), data(100), { algorithmSuite, commitmentPolicy })
      expect((await decryptWith(nodeBackend, keyring(), ciphertext, { commitmentPolicy })).plaintext).toEqual(data(100))
      expect(derived[0]?.length, algorithmSuite.toString(16)).toBe(32)
      expect(isAllZero(derived[0]!)).toBe(true)
      if (algorithmSuite === 0x0478) expect(derived[1]?.some((byte) => byte !== 0)).toBe(true)
    }
  })

  it('when encrypt fails after the key was derived (a keyring returned an unwritable encrypted data key)', async () => {
    const { backend, live, made } = countingBackend()
    const ring = keyring()
    const oversized = {
      async onEncrypt(...args: Parameters<RawAesKeyring['onEncrypt']>) {
        const materials = await ring.onEncrypt(...args)
        const huge = { providerId: 'ns', providerInfo: new Uint8Array(70_000), ciphertext: new Uint8Array(48) }
        return { ...materials, encryptedDataKeys: [...materials.encryptedDataKeys, huge] }
      },
      onDecrypt: ring.onDecrypt.bind(ring),
    }
    await expect(encryptWith(backend, oversized, data(100), { algorithmSuite: 0x0478 })).rejects.toMatchObject({ code: 'KEYRING_FAILURE' })
    expect(made()).toBe(2)
    expect(live()).toBe(1)
  })

  it.each([
    ['0x0478', 0x0478, 'FRAME_AUTHENTICATION_FAILED'],
    ['0x0578', 0x0578, 'SIGNATURE_INVALID'],
  ])('when the body of a %s message fails: %s', async (_, algorithmSuite, code) => {
    const { backend, live, made } = countingBackend()
    const ring = keyring()
    const { ciphertext } = await encryptWith(nodeBackend, ring, data(3000), { frameLength: 1024, algorithmSuite })
    const altered = ciphertext.slice()
    // A byte of the final frame: before the footer (about 105 bytes) of a signed message.
    const inFinalFrame = altered.length - (algorithmSuite === 0x0578 ? 120 : 10)
    altered[inFinalFrame] = (altered[inFinalFrame] as number) ^ 1
    await expect(decryptWith(backend, ring, altered)).rejects.toMatchObject({ code })
    expect(made()).toBe(2)
    expect(live()).toBe(1)
  })

  it('when a stream encrypts and decrypts to the end', async () => {
    const { backend, live, made } = countingBackend()
    const ring = keyring()
    const ciphertext = await readAll(chunked(data(10_000), 777).pipeThrough(encryptStreamWith(backend, ring, { frameLength: 1024 })))
    expect(await readAll(chunked(ciphertext, 500).pipeThrough(decryptStreamWith(backend, ring)))).toEqual(data(10_000))
    expect(made()).toBe(3)
    expect(live()).toBe(1)
  })

  it('when a stream is cancelled midway, in both directions', async () => {
    const { backend, live, made } = countingBackend()
    const ring = keyring()
    const encrypting = chunked(data(50_000), 4096).pipeThrough(encryptStreamWith(backend, ring, { frameLength: 1024 }))
    const encryptReader = encrypting.getReader()
    await encryptReader.read()
    await encryptReader.read()
    await encryptReader.cancel(new Error('enough'))
    const { ciphertext } = await encryptWith(nodeBackend, ring, data(50_000), { frameLength: 1024 })
    const decryptReader = chunked(ciphertext, 4096).pipeThrough(decryptStreamWith(backend, ring)).getReader()
    const first = await decryptReader.read()
    expect(first.done).toBe(false)
    await decryptReader.cancel(new Error('enough'))
    expect(made()).toBe(3)
    expect(live()).toBe(1)
  })
})

describe('message keys after an abort', () => {
  /** A keyring whose calls wait until `open()`, so a stream can be aborted while it works. */
  function gatedKeyring() {
    const ring = keyring()
    let open!: () => void
    const gate = new Promise<void>((resolve) => (open = resolve))
    const gated = {
      async onEncrypt(...args: Parameters<RawAesKeyring['onEncrypt']>) {
        await gate
        return ring.onEncrypt(...args)
      },
      async onDecrypt(...args: Parameters<RawAesKeyring['onDecrypt']>) {
        await gate
        return ring.onDecrypt(...args)
      },
    }
    return { ring, gated, open }
  }
  const settle = () => new Promise((resolve) => setTimeout(resolve, 20))

  it('are not made when a stream was aborted while the keyring worked, in both directions', async () => {
    const { backend, live, made } = countingBackend()
    const { ring, gated, open } = gatedKeyring()
    const { ciphertext } = await encryptWith(nodeBackend, ring, data(3000), { frameLength: 1024 })
    const encrypting = new AbortController()
    const decrypting = new AbortController()
    const results = [
      readAll(chunked(data(3000), 1000).pipeThrough(encryptStreamWith(backend, gated, { signal: encrypting.signal }))).catch((e: unknown) => e),
      readAll(chunked(ciphertext, 1000).pipeThrough(decryptStreamWith(backend, gated, { signal: decrypting.signal }))).catch((e: unknown) => e),
    ]
    await settle()
    encrypting.abort()
    decrypting.abort()
    open()
    for (const result of await Promise.all(results)) expect(result).toMatchObject({ code: 'ABORTED' })
    await settle()
    // Only the keyring's wrapping key: neither stream derives a message key from the data key the keyring gave after the abort.
    expect(made()).toBe(1)
    expect(live()).toBe(1)
  })
})

/** A gate a backend's call waits at: `wait()` marks it reached and settles once `open()` is called. */
function gate() {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  let reached = false
  return {
    open,
    reached: () => reached,
    wait: () => {
      reached = true
      return opened
    },
  }
}

/**
 * Runs `run` on `gatedBackend`, whose call waits at `at`; aborts once that call is reached, then opens the gate. The
 * run must fail with ABORTED; what is returned is how many AES-GCM keys the backend made, and how many are still live.
 */
async function abortedAtGate(gatedBackend: CryptoBackend, at: ReturnType<typeof gate>, run: (backend: CryptoBackend, signal: AbortSignal) => Promise<unknown>) {
  const { backend, live, made } = countingAeadKeys(gatedBackend)
  const aborting = new AbortController()
  const result = run(backend, aborting.signal).catch((e: unknown) => e)
  await vi.waitFor(() => expect(at.reached()).toBe(true))
  aborting.abort()
  at.open()
  expect(await result).toMatchObject({ code: 'ABORTED' })
  await new Promise((resolve) => setTimeout(resolve, 20))
  return { made: made(), live: live() }
}

describe('the message key of a stream aborted while the key is made (WebCrypto, whose calls are asynchronous)', () => {
  it('a decrypt stream aborted while its header tag is checked disposes of it once the check answers', async () => {
    const at = gate()
    // The header tag's open (the only one with no ciphertext) waits at the gate.
    const gatedHeaderTag = aroundAeadOpen(webCryptoBackend, async (open, ciphertext) => {
      if (ciphertext.length === 0) await at.wait()
      return open()
    })
    const { ciphertext } = await encryptWith(nodeBackend, keyring(), data(3000), { frameLength: 1024 })
    const keys = await abortedAtGate(gatedHeaderTag, at, (backend, signal) =>
      readAll(chunked(ciphertext, 1000).pipeThrough(decryptStreamWith(backend, keyring(), { signal }))),
    )
    // The keyring's wrapping key, and the message key made for the header, now disposed of.
    expect(keys).toEqual({ made: 2, live: 1 })
  })

  it('an encrypt stream aborted while it derives the key disposes of it once the derivation answers', async () => {
    const at = gate()
    const gatedHkdf: CryptoBackend = { ...webCryptoBackend, hkdf: async (...args) => (await at.wait(), webCryptoBackend.hkdf(...args)) }
    const keys = await abortedAtGate(gatedHkdf, at, (backend, signal) =>
      readAll(chunked(data(3000), 1000).pipeThrough(encryptStreamWith(backend, keyring(), { signal }))),
    )
    // The keyring's wrapping key, and the message key made once the derivation answered, now disposed of.
    expect(keys).toEqual({ made: 2, live: 1 })
  })
})

/** nodeBackend, keeping every key it makes: random bytes of a key's length and HKDF outputs. */
function keyRecordingBackend(overrides: Partial<CryptoBackend> = {}): { backend: CryptoBackend; keys: Uint8Array[] } {
  const keys: Uint8Array[] = []
  const backend: CryptoBackend = {
    ...nodeBackend,
    randomBytes: (length) => {
      const bytes = nodeBackend.randomBytes(length)
      if (length >= 16) keys.push(bytes) // not IVs
      return bytes
    },
    hkdf: async (...args) => {
      const outputs = await nodeBackend.hkdf(...args)
      keys.push(...outputs)
      return outputs
    },
    ...overrides,
  }
  return { backend, keys }
}

const directSuite = suiteFromOption(0x0478)
const intermediateSuite = dbeSuite(0x6700)
const KMS_RSA_ARN = 'arn:aws:kms:us-east-1:111122223333:key/22222222-3333-4444-5555-666666666666'
const KMS_RSA_PUBLIC_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string
const materialsOf = (suite: EncryptionMaterials['suite']): EncryptionMaterials => ({ suite, encryptionContext: { tenant: 'acme' }, encryptedDataKeys: [] })

describe('keys a keyring makes are zeroed when it fails', () => {
  const rsa = () => rsaKeyring('OAEP-SHA256')
  const kmsRsa = () => new KmsRsaKeyring({ keyId: KMS_RSA_ARN, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey: KMS_RSA_PUBLIC_KEY })
  const failingKms = () =>
    new KmsKeyring({
      generatorKeyId: 'arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555',
      clientSupplier: () => ({ send: () => Promise.reject(new Error('KMS is down')) }),
    })

  it.each([
    ['a raw RSA keyring whose wrapping fails', directSuite, rsa, 1],
    ['a raw RSA keyring whose wrapping of an intermediate key fails', intermediateSuite, rsa, 2],
    ['a KMS keyring whose GenerateDataKey fails for an intermediate key', intermediateSuite, failingKms, 1],
    ['a KMS RSA keyring whose wrapping fails', directSuite, kmsRsa, 1],
  ] as const)('%s: the data key (and intermediate key) it made', async (_name, suite, make, count) => {
    const { backend, keys } = keyRecordingBackend({ rsaEncrypt: () => Promise.reject(new Error('no RSA here')) })
    const error = await rejectionOf((make() as Keyring).onEncrypt(materialsOf(suite), backend))
    expect(error).toMatchObject({ code: 'KEYRING_FAILURE' })
    expect(keys).toHaveLength(count)
    expect(keys.every(isAllZero)).toBe(true)
  })

  it('a KMS RSA keyring whose wrapping fails leaves a data key it was given as it was, and says which key failed', async () => {
    const cause = new Error('no RSA here')
    const { backend } = keyRecordingBackend({ rsaEncrypt: () => Promise.reject(cause) })
    const materials = { ...materialsOf(directSuite), plaintextDataKey: new Uint8Array(32).fill(6) }
    const error = await rejectionOf(kmsRsa().onEncrypt(materials, backend))
    expect(error).toMatchObject({ code: 'KEYRING_FAILURE', message: `KmsRsaKeyring could not wrap the data key for ${KMS_RSA_ARN} with RSAES_OAEP_SHA_256.`, cause })
    expect(materials.plaintextDataKey.every((byte) => byte === 6)).toBe(true)
    // A typed error from the backend is passed on as it is.
    const refusal = new ConfigurationError('this backend has no RSA')
    expect(await rejectionOf(kmsRsa().onEncrypt(materials, keyRecordingBackend({ rsaEncrypt: () => Promise.reject(refusal) }).backend))).toBe(refusal)
  })

  it.each([directSuite, intermediateSuite])('a raw AES keyring whose wrapping fails (suite %#): the data key (and intermediate key) it made', async (suite) => {
    const { backend, keys } = keyRecordingBackend({
      aeadKey: () => {
        throw new Error('no AES-GCM here')
      },
    })
    await expect(keyring().onEncrypt(materialsOf(suite), backend)).rejects.toThrow('no AES-GCM here')
    expect(keys).toHaveLength(suite === directSuite ? 1 : 2)
    expect(keys.every(isAllZero)).toBe(true)
  })

  it('a raw AES keyring whose wrapping fails leaves a data key it was given as it was', async () => {
    const { backend } = keyRecordingBackend({
      aeadKey: () => {
        throw new Error('no AES-GCM here')
      },
    })
    const materials = { ...materialsOf(directSuite), plaintextDataKey: new Uint8Array(32).fill(6) }
    await expect(keyring().onEncrypt(materials, backend)).rejects.toThrow('no AES-GCM here')
    expect(materials.plaintextDataKey.every((byte) => byte === 6)).toBe(true)
  })

  it('intermediate wrapping whose data key sealing fails: the intermediate key and both keys derived from it', async () => {
    const derived: Uint8Array[] = []
    const { backend, keys } = keyRecordingBackend({
      hkdf: async (...args) => {
        const outputs = await nodeBackend.hkdf(...args)
        derived.push(...outputs)
        return outputs
      },
      aeadKey: (key) => {
        if (derived.includes(key)) throw new Error('no AES-GCM here')
        return nodeBackend.aeadKey(key)
      },
    })
    const intermediateKey = new Uint8Array(32).fill(5)
    const encryptedDataKey = { providerId: 'p', providerInfo: new Uint8Array([1]), ciphertext: new Uint8Array([9]) }
    const materials = { ...materialsOf(intermediateSuite), plaintextDataKey: new Uint8Array(32).fill(6) }
    await expect(addIntermediateRecipient(materials, backend, async () => ({ intermediateKey, encryptedDataKey }))).rejects.toThrow('no AES-GCM here')
    expect(derived).toHaveLength(2)
    expect([intermediateKey, ...derived, ...keys].every(isAllZero)).toBe(true)
    // The data key it was given belongs to its maker.
    expect(materials.plaintextDataKey.every((byte) => byte === 6)).toBe(true)
  })

  it('intermediate wrapping whose key derivation fails: the intermediate key, on encrypt and on decrypt', async () => {
    const { backend } = keyRecordingBackend({ hkdf: () => Promise.reject(new Error('no HKDF here')) })
    const intermediateKey = new Uint8Array(32).fill(5)
    const encryptedDataKey = { providerId: 'p', providerInfo: new Uint8Array([1]), ciphertext: new Uint8Array(60) }
    const materials = { ...materialsOf(intermediateSuite), plaintextDataKey: new Uint8Array(32).fill(6) }
    await expect(addIntermediateRecipient(materials, backend, async () => ({ intermediateKey, encryptedDataKey }))).rejects.toThrow('no HKDF here')
    expect(isAllZero(intermediateKey)).toBe(true)
    const toOpen = new Uint8Array(32).fill(5)
    await expect(openIntermediate(materialsOf(intermediateSuite), encryptedDataKey, toOpen, backend)).rejects.toThrow('no HKDF here')
    expect(isAllZero(toOpen)).toBe(true)
  })

  it('intermediate unwrapping whose data key opening fails: both keys derived from the intermediate key', async () => {
    const derived: Uint8Array[] = []
    const { backend } = keyRecordingBackend({
      hkdf: async (...args) => {
        const outputs = await nodeBackend.hkdf(...args)
        derived.push(...outputs)
        return outputs
      },
      aeadKey: () => {
        throw new Error('no AES-GCM here')
      },
    })
    const encryptedDataKey = { providerId: 'p', providerInfo: new Uint8Array([1]), ciphertext: new Uint8Array(60) }
    await expect(openIntermediate(materialsOf(intermediateSuite), encryptedDataKey, new Uint8Array(32).fill(5), backend)).rejects.toThrow('no AES-GCM here')
    expect(derived).toHaveLength(2)
    expect(derived.every(isAllZero)).toBe(true)
  })
})

describe("no copy of a key is left in Node's shared pool of small buffers", () => {
  // Memory that Buffer.allocUnsafe hands out again uncleared: a key copied there and not zeroed could turn up in
  // anything the process allocates next. Every data key, and every key derived from one, is looked for after the
  // message, in each slab of the pool used meanwhile.
  const keyrings: [string, () => Keyring][] = [
    ['raw AES-128', () => aesKeyring(16)],
    ['raw AES-256', () => aesKeyring(32)],
    ['raw RSA OAEP-SHA1', () => rsaKeyring('OAEP-SHA1')],
    ['raw RSA OAEP-SHA256', () => rsaKeyring('OAEP-SHA256')],
    ['raw RSA PKCS1', () => rsaKeyring('PKCS1')],
    ['a multi-keyring (AES generator, RSA child)', () => new MultiKeyring({ generator: aesKeyring(32), children: [rsaKeyring('OAEP-SHA256')] })],
  ]

  it.each(keyrings)('%s, every suite, one-shot and streams', async (_name, make) => {
    const pool = nodeBufferPool()
    const { backend, messageKeys } = recordingDerivedKeys(nodeBackend)
    const keyring = make()
    const { manager, dataKeys } = recordingDataKeys(new DefaultMaterialsManager(keyring))
    for (const algorithmSuite of ALGORITHM_SUITE_IDS) {
      const options = { algorithmSuite, commitmentPolicy: algorithmSuite < 0x0400 ? 'FORBID_ENCRYPT_ALLOW_DECRYPT' : 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' } as const
      const decryptOptions = { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' } as const
      const { ciphertext } = await encryptWith(backend, manager, data(300), { ...options, frameLength: 128 })
      pool.look()
      expect((await decryptWith(backend, manager, ciphertext, decryptOptions)).plaintext).toEqual(data(300))
      pool.look()
      const streamed = await readAll(chunked(data(300), 100).pipeThrough(encryptStreamWith(backend, manager, { ...options, frameLength: 128 })))
      pool.look()
      expect(await readAll(chunked(streamed, 50).pipeThrough(decryptStreamWith(backend, manager, decryptOptions)))).toEqual(data(300))
      pool.look()
    }
    expect(dataKeys).toHaveLength(4 * ALGORITHM_SUITE_IDS.length)
    expect(messageKeys).toHaveLength(4 * (ALGORITHM_SUITE_IDS.length - 3)) // all but the three suites without key derivation
    expect(pool.copiesOf([...dataKeys, ...messageKeys])).toBe(0)
  })
})

/** Offset just after a v2 header's body, found by parsing its length fields (0x0478, one EDK). */
function headerBodyEnd(message: Uint8Array): number {
  const view = new DataView(message.buffer, message.byteOffset, message.length)
  let offset = 1 + 2 + 32
  offset += 2 + view.getUint16(offset)
  const keys = view.getUint16(offset)
  offset += 2
  for (let i = 0; i < keys; i++) {
    offset += 2 + view.getUint16(offset)
    offset += 2 + view.getUint16(offset)
    offset += 2 + view.getUint16(offset)
  }
  return offset + 1 + 4 + 32 // content type, frame length, commitment
}
