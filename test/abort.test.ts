// The `signal` option of one-shot encrypt and decrypt, and the signal's way to the keyrings: KMS requests are
// cancelled (the real @aws-sdk/client-kms against the local emulator, which answers slowly on request).
import { getEventListeners } from 'node:events'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  AbortedError,
  CachingMaterialsManager,
  ConfigurationError,
  DefaultMaterialsManager,
  KmsKeyring,
  KmsRsaKeyring,
  MultiKeyring,
  createKmsPublicKeyCache,
  RequiredEncryptionContextMaterialsManager,
  decrypt,
  decryptNodeStream,
  decryptStream,
  defaultKmsClientSupplier,
  encrypt,
  encryptNodeStream,
  encryptStream,
  type DecryptionMaterials,
  type EncryptionMaterials,
  type EnvelopeError,
  type Keyring,
  type KmsClientSupplier,
} from '../src/index.js'
import { nodeBackend } from '../src/backend/node.js'
import { isAllZero } from '../src/format/bytes.js'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'
import { aesKeyring, heldKeyring, maxListenersWarnings, rejectionOf, spyKeyring } from './helpers/fixtures.js'

const keyring = aesKeyring()
const after = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
/** `outcome`, or 'still waiting' when it has not settled within a second. */
const withinASecond = <T>(outcome: Promise<T>) =>
  Promise.race([outcome.then((value) => value, (error: unknown) => error), after(1000).then(() => 'still waiting')])

async function readAll(readable: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = []
  for await (const chunk of readable as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk)
  return chunks
}

function bytesStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes)
      controller.close()
    },
  })
}

/** Keyrings that keep the signal each call got. */
function signalKeeping(inner: Keyring): { keyring: Keyring; seen: Array<AbortSignal | undefined> } {
  const seen: Array<AbortSignal | undefined> = []
  return {
    seen,
    keyring: {
      onEncrypt: (materials, backend, signal) => {
        seen.push(signal)
        return inner.onEncrypt(materials, backend, signal)
      },
      onDecrypt: (materials, edks, backend, signal) => {
        seen.push(signal)
        return inner.onDecrypt(materials, edks, backend, signal)
      },
    },
  }
}

describe('the signal option of one-shot encrypt and decrypt', () => {
  it('an aborted signal rejects with ABORTED, the reason as cause, before any keyring runs', async () => {
    const { ciphertext } = await encrypt(keyring, 'hello')
    const spy = spyKeyring(keyring)
    const reason = new Error('the client went away')
    const signal = AbortSignal.abort(reason)
    for (const outcome of [encrypt(spy.keyring, 'hello', { signal }), decrypt(spy.keyring, ciphertext, { signal })]) {
      const error = (await rejectionOf(outcome)) as EnvelopeError
      expect(error).toBeInstanceOf(AbortedError)
      expect(error.code).toBe('ABORTED')
      expect(error.cause).toBe(reason)
    }
    expect(spy.calls).toEqual({ encrypt: 0, decrypt: 0 })
  })

  it('a signal that is not an AbortSignal is refused as configuration, before any keyring runs', async () => {
    const { ciphertext } = await encrypt(keyring, 'hello')
    const spy = spyKeyring(keyring)
    for (const outcome of [
      encrypt(spy.keyring, 'hello', { signal: { aborted: false } as never }),
      decrypt(spy.keyring, ciphertext, { signal: 'abort' as never }),
    ]) {
      const error = (await rejectionOf(outcome)) as EnvelopeError
      expect(error).toBeInstanceOf(ConfigurationError)
      expect(error.message).toMatch(/^signal must be an AbortSignal/)
    }
    expect(spy.calls).toEqual({ encrypt: 0, decrypt: 0 })
  })

  it('a signal that never aborts changes nothing: the message round-trips, and null or undefined mean none', async () => {
    const { signal } = new AbortController()
    const { ciphertext } = await encrypt(keyring, 'hello', { signal })
    expect(new TextDecoder().decode((await decrypt(keyring, ciphertext, { signal })).plaintext)).toBe('hello')
    for (const none of [null, undefined]) {
      const { ciphertext: other } = await encrypt(keyring, 'x', { signal: none as never })
      expect((await decrypt(keyring, other, { signal: none as never })).plaintext).toEqual(new Uint8Array([120]))
    }
    expect(getEventListeners(signal, 'abort')).toHaveLength(0) // each call let go of it
  })

  it('a signal every earlier call let go of still aborts the next call that takes it', async () => {
    const controller = new AbortController()
    const { ciphertext } = await encrypt(keyring, 'hello', { signal: controller.signal })
    await decrypt(keyring, ciphertext, { signal: controller.signal })
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
    const { keyring: held, release } = heldKeyring(keyring)
    const outcome = encrypt(held, 'hello', { signal: controller.signal })
    await after(20)
    controller.abort()
    expect(((await withinASecond(outcome)) as EnvelopeError).code).toBe('ABORTED')
    release()
  })

  it.each(['encrypt', 'decrypt'] as const)('%s aborted while the keyring works rejects at once; the late data key is zeroed', async (call) => {
    const { ciphertext } = await encrypt(keyring, 'hello')
    const { keyring: held, release } = heldKeyring(keyring)
    let late: EncryptionMaterials | DecryptionMaterials | undefined
    const watched: Keyring = {
      onEncrypt: async (materials, backend) => (late = await held.onEncrypt(materials, backend)),
      onDecrypt: async (materials, edks, backend) => (late = await held.onDecrypt(materials, edks, backend)),
    }
    const controller = new AbortController()
    const outcome: Promise<unknown> =
      call === 'encrypt' ? encrypt(watched, 'hello', { signal: controller.signal }) : decrypt(watched, ciphertext, { signal: controller.signal })
    await after(20)
    const reason = new Error('the client went away')
    controller.abort(reason)
    const error = (await withinASecond(outcome)) as EnvelopeError
    expect(error.code).toBe('ABORTED')
    expect(error.message).toBe(`The ${call} call was aborted.`)
    expect(error.cause).toBe(reason)
    release()
    await after(20)
    expect(late?.plaintextDataKey?.length).toBe(32)
    expect(isAllZero(late!.plaintextDataKey!)).toBe(true)
  })

  it('input in pieces (an async iterable, which goes through a stream): the call ends as the call, and its options are still checked', async () => {
    const { ciphertext } = await encrypt(keyring, 'hello')
    const { keyring: held, release } = heldKeyring(keyring)
    async function* pieces(bytes: Uint8Array) {
      yield bytes.subarray(0, 10)
      yield bytes.subarray(10)
    }
    for (const [call, run] of [
      ['encrypt', (signal: AbortSignal) => encrypt(held, pieces(new Uint8Array(100)), { signal })],
      ['decrypt', (signal: AbortSignal) => decrypt(held, pieces(ciphertext), { signal })],
    ] as const) {
      const controller = new AbortController()
      const outcome = withinASecond<unknown>(run(controller.signal))
      await after(20)
      controller.abort()
      const error = (await outcome) as EnvelopeError
      expect(error.message).toBe(`The ${call} call was aborted.`)
      expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0)
    }
    release()
    const { signal } = new AbortController()
    const refused = (await rejectionOf(encrypt(keyring, pieces(new Uint8Array(5)), { signal, plaintextLength: 5 } as never))) as EnvelopeError
    expect(refused.message).toMatch(/^encrypt has no option "plaintextLength"/)
    expect(getEventListeners(signal, 'abort')).toHaveLength(0)
  })

  it('decrypt aborted while the signature is still being checked returns nothing, and zeroes the plaintext it had', async () => {
    const { ciphertext } = await encrypt(keyring, new Uint8Array(1024 * 1024).fill(7), { algorithmSuite: 0x0578 })
    // The signature check of a message this size begins before the keyring runs; here it waits for the gate.
    let open = () => undefined as void
    const gate = new Promise<void>((resolve) => (open = resolve))
    const verify = nodeBackend.verifyMessage.bind(nodeBackend)
    const verifying = vi.spyOn(nodeBackend, 'verifyMessage').mockImplementation(async (...args) => {
      await gate
      return verify(...args)
    })
    const allocate = nodeBackend.allocate.bind(nodeBackend)
    const allocated: Uint8Array[] = []
    const allocating = vi.spyOn(nodeBackend, 'allocate').mockImplementation((length) => {
      const buffer = allocate(length)
      allocated.push(buffer)
      return buffer
    })
    try {
      const controller = new AbortController()
      const outcome = rejectionOf(decrypt(keyring, ciphertext, { signal: controller.signal }))
      // Once the frames are decrypted, only the signature is awaited.
      for (let turn = 0; turn < 100 && allocated.length === 0; turn++) await after(10)
      const plaintext = allocated.find((buffer) => buffer.length === 1024 * 1024)
      expect(plaintext?.every((byte) => byte === 7)).toBe(true)
      controller.abort()
      expect(((await outcome) as EnvelopeError).code).toBe('ABORTED')
      open()
      await after(50)
      expect(isAllZero(plaintext!)).toBe(true)
    } finally {
      verifying.mockRestore()
      allocating.mockRestore()
      open()
    }
  })

  it('many calls at once on one signal: one listener on it, none left after, and no MaxListenersExceededWarning', async () => {
    const warnings = await maxListenersWarnings(async () => {
      const { keyring: held, release } = heldKeyring(keyring)
      const controller = new AbortController()
      const { signal } = controller
      const outcomes = Array.from({ length: 20 }, () => rejectionOf(encrypt(held, 'hello', { signal })))
      await after(20)
      expect(getEventListeners(signal, 'abort')).toHaveLength(1)
      controller.abort()
      expect(((await Promise.all(outcomes)) as EnvelopeError[]).map((error) => error.code)).toEqual(Array(20).fill('ABORTED'))
      expect(getEventListeners(signal, 'abort')).toHaveLength(0)
      release()
    })
    expect(warnings).toEqual([])
  })

  it('the signal reaches keyrings through the default, required-context and caching managers, and MultiKeyring', async () => {
    const { signal } = new AbortController()
    const child = signalKeeping(aesKeyring(32, 'key-2'))
    const generator = signalKeeping(keyring)
    const multi = new MultiKeyring({ generator: generator.keyring, children: [child.keyring] })
    const managers = [
      new DefaultMaterialsManager(multi),
      new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring: multi }),
      new CachingMaterialsManager({ keyring: multi, maxAge: 60_000 }),
    ]
    for (const manager of managers) {
      const encryptionContext = { tenant: 'acme' }
      const { ciphertext } = await encrypt(manager, 'hello', { signal, encryptionContext })
      await decrypt(manager, ciphertext, { signal, encryptionContext })
    }
    // Encrypt asks the generator and the child; decrypt, the generator, which unwraps the data key.
    expect(generator.seen).toEqual(Array(6).fill(signal))
    expect(child.seen).toEqual(Array(3).fill(signal))
    // Without a signal, keyrings get none.
    generator.seen.length = 0
    await decrypt(multi, (await encrypt(multi, 'hello')).ciphertext)
    expect(generator.seen).toEqual([undefined, undefined])
  })

  it('MultiKeyring tries no further keyring once the signal aborted', async () => {
    const controller = new AbortController()
    const { ciphertext } = await encrypt(keyring, 'hello')
    const failing: Keyring = {
      onEncrypt: () => Promise.reject(new Error('not used')),
      onDecrypt: async () => {
        controller.abort()
        throw new Error('the request was cancelled')
      },
    }
    const next = spyKeyring(keyring)
    const multi = new MultiKeyring({ children: [failing, next.keyring] })
    const manager = new DefaultMaterialsManager(multi)
    // Asked directly (not through decrypt, which has already rejected by then), the manager says why it stopped.
    const { parseHeader } = await import('../src/format/header.js')
    const { suite, header } = parseHeader(ciphertext, { maxEncryptedDataKeys: undefined })
    const { nodeBackend } = await import('../src/backend/node.js')
    const error = await rejectionOf(
      manager.getDecryptionMaterials(
        {
          suite,
          encryptionContext: header.encryptionContext,
          encryptedDataKeys: header.encryptedDataKeys,
          commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT',
          signal: controller.signal,
        },
        nodeBackend,
      ),
    )
    expect(error).toBeInstanceOf(AbortedError)
    expect((error as Error).message).toBe('The work on the data keys was aborted.')
    expect(next.calls.decrypt).toBe(0)
  })

  it("a manager of one's own that passes on a signal that is not an AbortSignal is refused by name", async () => {
    const { ciphertext } = await encrypt(keyring, 'hello')
    for (const inner of [new DefaultMaterialsManager(keyring), new CachingMaterialsManager({ keyring, maxAge: 1000 })]) {
      const own = {
        getEncryptionMaterials: (request: object, backend: never) => inner.getEncryptionMaterials({ ...request, signal: 'soon' } as never, backend),
        getDecryptionMaterials: (request: object, backend: never) => inner.getDecryptionMaterials({ ...request, signal: {} } as never, backend),
      }
      // The default manager's encrypt half passes a request that looks like encrypt's own on to its keyring
      // unchecked: the full check is loaded on demand, and a browser page's first load has no room for more.
      const outcomes = inner instanceof DefaultMaterialsManager ? [decrypt(own, ciphertext)] : [encrypt(own, 'hello'), decrypt(own, ciphertext)]
      for (const outcome of outcomes) {
        const error = (await rejectionOf(outcome)) as EnvelopeError
        expect(error).toBeInstanceOf(ConfigurationError)
        expect(error.message).toMatch(/request\.signal is (a string|an object), not an AbortSignal/)
      }
    }
  })
})

describe('aborting cancels KMS requests (real SDK over HTTP, the emulator answering after 3 s)', () => {
  let kms: KmsEmulator
  let supplier: KmsClientSupplier
  const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x' }
  /** What each KMS call was sent with, and how it ended: 'answered', or the SDK's error name. */
  let sent: Array<{ operation: string; signal: AbortSignal | undefined; outcome: Promise<string> }>
  let recording: KmsClientSupplier

  beforeAll(async () => {
    kms = await startKmsEmulator({ regions: ['us-east-1'] })
    supplier = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials, maxAttempts: 1 } })
    recording = (region) => {
      const client = supplier(region)
      return {
        send(command, options) {
          const answer = client.send(command, options)
          sent.push({
            operation: command.constructor.name,
            signal: options?.abortSignal,
            outcome: answer.then(
              () => 'answered',
              (error: Error) => error.name,
            ),
          })
          return answer
        },
      }
    }
  })
  afterAll(async () => {
    await kms?.close()
  })
  beforeEach(() => {
    kms.faults.clear()
    kms.resetCalls()
    sent = []
  })

  /** Start `run` with a signal, abort it 50 ms later, and return its outcome and the KMS calls' outcomes. */
  async function abortAfter50ms(run: (signal: AbortSignal) => Promise<unknown>) {
    const controller = new AbortController()
    const outcome = run(controller.signal)
    await after(50)
    controller.abort(new Error('the client went away'))
    return { signal: controller.signal, error: (await withinASecond(outcome)) as EnvelopeError }
  }

  it('one-shot encrypt and decrypt: the call ends at once and the SDK cancels its request', async () => {
    const { arn } = kms.createKey({ region: 'us-east-1' })
    const kmsKeyring = new KmsKeyring({ generatorKeyId: arn, clientSupplier: recording })
    const { ciphertext } = await encrypt(kmsKeyring, 'hello')
    kms.faults.latency(3000)
    sent = []
    for (const run of [
      (signal: AbortSignal) => encrypt(kmsKeyring, 'hello', { signal }),
      (signal: AbortSignal) => decrypt(kmsKeyring, ciphertext, { signal }),
    ]) {
      sent = []
      const { signal, error } = await abortAfter50ms(run)
      expect(error.code).toBe('ABORTED')
      expect(sent).toHaveLength(1)
      expect(sent[0]!.signal).toBe(signal)
      expect(await withinASecond(sent[0]!.outcome)).toBe('AbortError')
    }
    expect(sent.map((call) => call.operation)).toEqual(['DecryptCommand'])
  })

  it('streams: an abort while KMS is asked cancels the request too', async () => {
    const { arn } = kms.createKey({ region: 'us-east-1' })
    const kmsKeyring = new KmsKeyring({ generatorKeyId: arn, clientSupplier: recording })
    const { ciphertext } = await encrypt(kmsKeyring, 'hello')
    kms.faults.latency(3000)
    for (const [operation, run] of [
      ['GenerateDataKeyCommand', (signal: AbortSignal) => readAll(bytesStream(new Uint8Array(100)).pipeThrough(encryptStream(kmsKeyring, { signal })))],
      ['DecryptCommand', (signal: AbortSignal) => readAll(bytesStream(ciphertext).pipeThrough(decryptStream(kmsKeyring, { signal })))],
    ] as const) {
      sent = []
      const { error } = await abortAfter50ms(run)
      expect(error.code).toBe('ABORTED')
      expect(sent.map((call) => call.operation)).toEqual([operation])
      expect(await withinASecond(sent[0]!.outcome)).toBe('AbortError')
    }
  })

  it('streams ended another way (a destroyed Node Transform, a cancelled Web stream) cancel their KMS request too', async () => {
    const { arn } = kms.createKey({ region: 'us-east-1' })
    const kmsKeyring = new KmsKeyring({ generatorKeyId: arn, clientSupplier: recording })
    const { ciphertext } = await encrypt(kmsKeyring, 'hello')
    kms.faults.latency(3000)
    const endings: Array<[string, () => { end: () => void; ended: Promise<unknown> }]> = [
      [
        'GenerateDataKeyCommand',
        () => {
          const transform = encryptNodeStream(kmsKeyring)
          const ended = new Promise((resolve) => transform.on('close', resolve))
          transform.on('error', () => undefined)
          transform.write(new Uint8Array(10))
          return { end: () => transform.destroy(new Error('the destination failed')), ended }
        },
      ],
      [
        'DecryptCommand',
        () => {
          const transform = decryptNodeStream(kmsKeyring)
          const ended = new Promise((resolve) => transform.on('close', resolve))
          transform.on('error', () => undefined)
          transform.write(ciphertext)
          return { end: () => transform.destroy(), ended }
        },
      ],
      [
        'DecryptCommand',
        () => {
          const stream = decryptStream(kmsKeyring)
          const reader = stream.readable.getReader()
          const ended = reader.read().then(() => undefined, () => undefined)
          const writer = stream.writable.getWriter()
          writer.write(ciphertext).catch(() => undefined)
          return { end: () => void reader.cancel(new Error('the reader went away')), ended }
        },
      ],
    ]
    for (const [operation, start] of endings) {
      sent = []
      const { end, ended } = start()
      await after(50)
      end()
      expect(await withinASecond(ended)).not.toBe('still waiting')
      expect(sent.map((call) => call.operation)).toEqual([operation])
      expect(await withinASecond(sent[0]!.outcome)).toBe('AbortError')
    }
  })

  it('decrypt asks KMS for no other data key once aborted', async () => {
    const [first, second] = [kms.createKey({ region: 'us-east-1' }), kms.createKey({ region: 'us-east-1' })]
    const both = new KmsKeyring({ generatorKeyId: first.arn, keyIds: [second.arn], clientSupplier: recording })
    const { ciphertext } = await encrypt(both, 'hello')
    kms.faults.latency(3000)
    sent = []
    const { error } = await abortAfter50ms((signal) => decrypt(both, ciphertext, { signal }))
    expect(error.code).toBe('ABORTED')
    expect(await withinASecond(sent[0]!.outcome)).toBe('AbortError')
    await after(50)
    expect(sent).toHaveLength(1)
  })

  it('KmsRsaKeyring: decrypt aborted while KMS decrypts the data key cancels the request and tries no other', async () => {
    const { arn } = kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' })
    const { publicKey } = await createKmsPublicKeyCache({ clientSupplier: supplier }).get(arn)
    const rsa = new KmsRsaKeyring({ keyId: arn, encryptionAlgorithm: 'RSAES_OAEP_SHA_256', publicKey, clientSupplier: recording })
    const { ciphertext } = await encrypt(new MultiKeyring({ generator: rsa, children: [rsa] }), 'hello') // two data keys for it
    kms.faults.latency(3000)
    const { signal, error } = await abortAfter50ms((signal) => decrypt(rsa, ciphertext, { signal }))
    expect(error.code).toBe('ABORTED')
    expect(sent[0]!.signal).toBe(signal)
    expect(await withinASecond(sent[0]!.outcome)).toBe('AbortError')
    await after(50)
    expect(sent).toHaveLength(1)
  })

  it("the public-key cache: an aborted get ends at once; its GetPublicKey runs on, and the next get takes its answer", async () => {
    const { arn } = kms.createKey({ region: 'us-east-1', keySpec: 'RSA_2048' })
    const publicKeys = createKmsPublicKeyCache({ clientSupplier: recording })
    kms.faults.latency(500)
    const { error } = await abortAfter50ms((signal) => publicKeys.get(arn, { signal }))
    expect(error.code).toBe('ABORTED')
    expect(error.message).toBe('The KmsPublicKeyCache.get call was aborted.')
    expect((await publicKeys.get(arn)).keyId).toBe(arn)
    expect(await Promise.all(sent.map((call) => call.outcome))).toEqual(['answered'])
    expect(((await rejectionOf(publicKeys.get(arn, { signal: 'soon' } as never))) as EnvelopeError).code).toBe('INVALID_CONFIGURATION')
  })

  it('caching: the abort of the call that fetches for others cancels its request, and they fetch for themselves', async () => {
    const { arn } = kms.createKey({ region: 'us-east-1' })
    const cmm = new CachingMaterialsManager({ keyring: new KmsKeyring({ generatorKeyId: arn, clientSupplier: recording }), maxAge: 60_000 })
    kms.faults.latency(300)
    const first = new AbortController()
    const fetching = encrypt(cmm, 'first', { signal: first.signal })
    await after(50)
    const sharing = encrypt(cmm, 'second', { signal: new AbortController().signal }) // waits on the first call's fetch
    await after(50)
    first.abort()
    expect(((await rejectionOf(fetching)) as EnvelopeError).code).toBe('ABORTED')
    const { ciphertext } = await sharing
    expect(await Promise.all(sent.map((call) => call.outcome))).toEqual(['AbortError', 'answered'])
    // The second call's data key is the one cached: a third call uses it without asking KMS.
    kms.faults.clear()
    const third = await encrypt(cmm, 'third')
    expect(sent).toHaveLength(2)
    expect(third.header.encryptedDataKeys[0]!.ciphertext).toEqual((await decrypt(cmm, ciphertext)).header.encryptedDataKeys[0]!.ciphertext)
  })
})
