import { Buffer } from 'node:buffer'
import { spawn } from 'node:child_process'
import { createCipheriv, createDecipheriv, generateKeyPairSync, randomBytes } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { expect, vi } from 'vitest'
import type { AeadKey, AsyncAeadKey, CryptoBackend } from '../../src/backend/types.js'
import {
  ALGORITHM_SUITE_IDS,
  RawAesKeyring,
  RawRsaKeyring,
  type CommitmentPolicy,
  type EnvelopeError,
  type Keyring,
  type KmsClientSupplier,
  type MaterialsManager,
  type NoDecryptableKeyError,
} from '../../src/index.js'

export const COMMITTING = new Set([0x0478, 0x0578])
export const SIGNING = new Set([0x0214, 0x0346, 0x0378, 0x0578])

/** The policy that lets a suite encrypt; decrypting with it then also works. */
export function policyFor(suiteId: number): CommitmentPolicy {
  return COMMITTING.has(suiteId) ? 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' : 'FORBID_ENCRYPT_ALLOW_DECRYPT'
}

export const suites = [...ALGORITHM_SUITE_IDS]

/** `base` counting the AES-GCM keys it makes and the ones disposed of (`live`: made and not yet disposed of). */
export function countingAeadKeys<B extends CryptoBackend>(base: B): { backend: B; live: () => number; made: () => number } {
  let made = 0
  let disposed = 0
  const counted = (aead: AeadKey | AsyncAeadKey): AeadKey | AsyncAeadKey => {
    made++
    const dispose = aead.dispose?.bind(aead)
    aead.dispose = () => {
      disposed++
      dispose?.()
    }
    return aead
  }
  const backend: B = {
    ...base,
    aeadKey: (key: Uint8Array) => counted(base.aeadKey(key)),
    ...(base.adoptAeadKey === undefined ? {} : { adoptAeadKey: (key: Uint8Array) => counted((base.adoptAeadKey as NonNullable<B['adoptAeadKey']>)(key)) }),
  }
  return { backend, live: () => made - disposed, made: () => made }
}

/**
 * The reasons of the rejections left unhandled while `body` runs, and in the 20 ms after it (Node reports one only
 * once the microtasks after it have run).
 */
export async function unhandledRejectionsDuring(body: () => Promise<void>): Promise<unknown[]> {
  const unhandled: unknown[] = []
  const record = (reason: unknown): void => void unhandled.push(reason)
  process.on('unhandledRejection', record)
  try {
    await body()
    await new Promise((resolve) => setTimeout(resolve, 20))
  } finally {
    process.off('unhandledRejection', record)
  }
  return unhandled
}

/**
 * Collect garbage `rounds` times, 10 ms apart (finalizers and WeakRefs run between), or until `until()` holds.
 * Turns on --expose-gc for the process on first use.
 */
export async function collectGarbageFor(rounds: number, until = (): boolean => false): Promise<void> {
  setFlagsFromString('--expose-gc')
  const collectGarbage = runInNewContext('gc') as () => void
  for (let round = 0; round < rounds && !until(); round++) {
    collectGarbage()
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/**
 * Spies on globalThis.crypto.subtle.decrypt (the WebCrypto backend's, and the node:crypto backend's for a CryptoKey),
 * keeping what each call returned, to see it zeroed. `restore` (or vi.restoreAllMocks) puts decrypt back.
 */
export function recordingSubtleDecrypt(): { outputs: ArrayBuffer[]; restore: () => void } {
  const { subtle } = globalThis.crypto
  const decrypt = subtle.decrypt.bind(subtle)
  const outputs: ArrayBuffer[] = []
  const spy = vi.spyOn(subtle, 'decrypt').mockImplementation(async (...args) => {
    const output = await decrypt(...args)
    outputs.push(output)
    return output
  })
  return { outputs, restore: () => spy.mockRestore() }
}

/** `base` (an asynchronous backend: WebCrypto) whose AES-GCM keys open through `around`, given the key's own open and the ciphertext. */
export function aroundAeadOpen(base: CryptoBackend, around: (open: () => Promise<boolean>, ciphertext: Uint8Array) => Promise<boolean>): CryptoBackend {
  return {
    ...base,
    aeadKey(key) {
      const aead = base.aeadKey(key) as AsyncAeadKey
      const open = aead.open.bind(aead)
      aead.open = (iv, aad, ciphertext, tag, out, offset) => around(() => open(iv, aad, ciphertext, tag, out, offset), ciphertext)
      return aead
    },
  }
}

/** Randomness that replays a seed, for a backend whose two runs must write the same message. */
export function seededRandom(seed: number): CryptoBackend['randomBytes'] {
  let state = seed
  return (length) => Uint8Array.from({ length }, () => (state = (state * 1103515245 + 12345) >>> 0) >>> 24)
}

/** `base` keeping every buffer it allocates (a one-shot decrypt's plaintext is one), to see what is left in them. */
export function recordingAllocations<B extends CryptoBackend>(base: B): { backend: B; allocated: Uint8Array[] } {
  const allocated: Uint8Array[] = []
  const backend: B = {
    ...base,
    allocate(length: number) {
      const buffer = base.allocate(length)
      allocated.push(buffer)
      return buffer
    },
  }
  return { backend, allocated }
}

/**
 * Node's shared pool of small buffers: Buffer.allocUnsafe, Buffer.from and Buffer.concat carve buffers under 4 KiB
 * out of one 8 KiB slab and hand its memory out again uncleared. `look()` notes the slab in use (call it after each
 * operation: a full slab is replaced); `copiesOf(secrets)` counts the secrets found in the slabs noted.
 */
export function nodeBufferPool(): { look: () => void; copiesOf: (secrets: readonly Uint8Array[]) => number } {
  const slabs = new Set<ArrayBufferLike>()
  const look = (): void => void slabs.add(Buffer.allocUnsafe(1).buffer)
  const copiesOf = (secrets: readonly Uint8Array[]): number => {
    look()
    let copies = 0
    for (const slab of slabs) for (const secret of secrets) if (Buffer.from(slab).indexOf(secret) >= 0) copies++
    return copies
  }
  return { look, copiesOf }
}

/** `inner` keeping a copy (outside Node's buffer pool) of every data key it hands out, on encrypt and on decrypt. */
export function recordingDataKeys(inner: MaterialsManager): { manager: MaterialsManager; dataKeys: Uint8Array[] } {
  const dataKeys: Uint8Array[] = []
  const manager: MaterialsManager = {
    async getEncryptionMaterials(request, backend) {
      const materials = await inner.getEncryptionMaterials(request, backend)
      dataKeys.push(new Uint8Array(materials.plaintextDataKey))
      return materials
    },
    async getDecryptionMaterials(request, backend) {
      const materials = await inner.getDecryptionMaterials(request, backend)
      dataKeys.push(new Uint8Array(materials.plaintextDataKey))
      return materials
    },
  }
  return { manager, dataKeys }
}

/**
 * `supplier`'s clients, answering with Node Buffers where the AWS SDK v3 gives plain Uint8Arrays (as a client of one's
 * own may: the AWS SDK v2 did). A Buffer's slice() is a view of the same memory, not a copy.
 */
export function bufferAnswering(supplier: KmsClientSupplier): KmsClientSupplier {
  return (region) => {
    const client = supplier(region)
    return {
      async send(command, options) {
        const answer = (await client.send(command, options)) as Record<string, unknown>
        const bytesAsBuffers = Object.entries(answer).map(([name, value]) => [name, value instanceof Uint8Array ? Buffer.from(value) : value])
        return Object.fromEntries(bytesAsBuffers)
      },
    }
  }
}

export function aesKeyring(bytes = 32, name = 'key-1', fill = 7): RawAesKeyring {
  return new RawAesKeyring({ keyNamespace: 'test', keyName: name, wrappingKey: new Uint8Array(bytes).fill(fill) })
}

/**
 * A custom keyring on node:crypto, as users write them: its data keys and wrapped keys are Buffers (whose slice() is
 * a view, not a copy). `made` holds a true copy of each data key it generated, to decrypt with independently.
 */
export function bufferKeyring(): { keyring: Keyring; made: Uint8Array[] } {
  const kek = randomBytes(32)
  const made: Uint8Array[] = []
  const keyring: Keyring = {
    async onEncrypt(materials) {
      let dataKey: Buffer
      if (materials.plaintextDataKey === undefined) {
        dataKey = randomBytes(materials.suite.keyLength)
        made.push(new Uint8Array(dataKey))
      } else dataKey = Buffer.from(materials.plaintextDataKey)
      const iv = randomBytes(12)
      const cipher = createCipheriv('aes-256-gcm', kek, iv)
      const wrapped = Buffer.concat([cipher.update(dataKey), cipher.final(), cipher.getAuthTag()])
      return { ...materials, plaintextDataKey: dataKey, encryptedDataKeys: [...materials.encryptedDataKeys, { providerId: 'buffers', providerInfo: iv, ciphertext: wrapped }] }
    },
    async onDecrypt(materials, encryptedDataKeys) {
      const key = encryptedDataKeys.find(({ providerId }) => providerId === 'buffers')
      if (materials.plaintextDataKey !== undefined || key === undefined) return materials
      const decipher = createDecipheriv('aes-256-gcm', kek, key.providerInfo)
      decipher.setAuthTag(key.ciphertext.subarray(-16))
      return { ...materials, plaintextDataKey: Buffer.concat([decipher.update(key.ciphertext.subarray(0, -16)), decipher.final()]) }
    },
  }
  return { keyring, made }
}

let rsaPair: { publicKey: string; privateKey: string } | undefined
export function rsaPem(): { publicKey: string; privateKey: string } {
  rsaPair ??= generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  })
  return rsaPair
}

export function rsaKeyring(padding: 'OAEP-SHA256' | 'PKCS1' | 'OAEP-SHA1' = 'OAEP-SHA256'): RawRsaKeyring {
  return new RawRsaKeyring({ keyNamespace: 'test', keyName: 'rsa-1', ...rsaPem(), padding })
}

/**
 * Runs `body` in a fresh module registry where importing `specifier` fails with `failure` (vitest wraps it: the
 * error an import rejects with has `failure` as its cause). `body` imports the modules under test itself, and
 * calls `loadable()` to let the import succeed from then on.
 */
export async function withFailingImport(specifier: string, failure: Error, body: (loadable: () => void) => Promise<void>): Promise<void> {
  vi.resetModules()
  vi.doMock(specifier, () => {
    throw failure
  })
  try {
    await body(() => vi.doUnmock(specifier))
  } finally {
    vi.doUnmock(specifier)
    vi.resetModules()
  }
}

/**
 * Runs `body` in a fresh module registry where `specifier` loads as an empty stand-in, as a bundler told the package
 * is absent loads it (webpack's `resolve.fallback: { [specifier]: false }`). vitest's mock throws on a name it does
 * not define, so `names` are there, undefined. `body` imports the modules under test itself.
 */
export async function withEmptyStandIn(specifier: string, names: string[], body: () => Promise<void>): Promise<void> {
  vi.resetModules()
  vi.doMock(specifier, () => Object.fromEntries(names.map((name) => [name, undefined])))
  try {
    await body()
  } finally {
    vi.doUnmock(specifier)
    vi.resetModules()
  }
}

/** Turns of the event loop while `work` runs, and what it settled with (its value, or its rejection reason). */
export async function turnsDuring(work: Promise<unknown>): Promise<{ turns: number; outcome: unknown }> {
  let turns = 0
  let done = false
  const turn = (): void => {
    turns++
    if (!done) setImmediate(turn)
  }
  setImmediate(turn)
  const outcome = await work.catch((error: unknown) => error)
  done = true
  return { turns, outcome }
}

/** Resolve to the rejection reason, or fail the test when the promise resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection, but the promise resolved')
}

/** Asserts the browser build's refusal of a raw RSA PKCS1 key, which WebCrypto does not have. */
export async function expectPkcs1Refused(outcome: Promise<unknown>): Promise<void> {
  const error = (await rejectionOf(outcome)) as NoDecryptableKeyError
  expect(error.code).toBe('NO_DECRYPTABLE_KEY')
  expect(error.failures.map((failure) => (failure.error as EnvelopeError).code)).toEqual(['UNSUPPORTED_OPERATION'])
}

/** What `run` throws, or fail the test when it returns. */
export function thrownBy(run: () => unknown): unknown {
  try {
    run()
  } catch (error) {
    return error
  }
  throw new Error('expected a throw, but the function returned')
}

/** A keyring that counts how often it is asked, delegating to `inner`. */
export function spyKeyring(inner: Keyring): { keyring: Keyring; calls: { encrypt: number; decrypt: number } } {
  const calls = { encrypt: 0, decrypt: 0 }
  const keyring: Keyring = {
    onEncrypt: (materials, backend) => {
      calls.encrypt++
      return inner.onEncrypt(materials, backend)
    },
    onDecrypt: (materials, edks, backend) => {
      calls.decrypt++
      return inner.onDecrypt(materials, edks, backend)
    },
  }
  return { keyring, calls }
}

/** A keyring that holds each answer of `inner` until `release()` is called: a keyring still working, on demand. */
export function heldKeyring(inner: Keyring): { keyring: Keyring; release: () => void } {
  let release = () => undefined as void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const keyring: Keyring = {
    onEncrypt: async (materials, backend) => {
      await gate
      return inner.onEncrypt(materials, backend)
    },
    onDecrypt: async (materials, edks, backend) => {
      await gate
      return inner.onDecrypt(materials, edks, backend)
    },
  }
  return { keyring, release }
}

/**
 * For every child process a test starts: Node kills one still running after a minute, so that a child that hangs
 * fails its test and outlives neither it nor the test run (a `spawnSync` that never returns would block the test
 * worker, where no test timeout can fire).
 */
export const CHILD_TIMEOUT = { timeout: 60_000, killSignal: 'SIGKILL' } as const

/**
 * Run Node with tsx in a fresh process (none of the test runner's options, and `env` added to the environment)
 * and parse the last line it prints as JSON: `args` is a script file and its arguments, or use `runModuleScript`
 * for inline code.
 */
export function runTsxJson<T = unknown>(args: readonly string[], cwd?: string, env: Record<string, string> = {}): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      cwd,
      env: { ...process.env, NODE_OPTIONS: '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      ...CHILD_TIMEOUT,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (signal !== null) return reject(new Error(`child ended by ${signal} (${CHILD_TIMEOUT.timeout} ms gone?): ${stdout.trim()} ${stderr.trim()}`))
      if (code !== 0) return reject(new Error(`child exited with ${String(code)}: ${stderr.trim()}`))
      const line = stdout.trim().split('\n').at(-1)
      if (!line) return reject(new Error(`child printed nothing: ${stderr.trim()}`))
      resolve(JSON.parse(line) as T)
    })
  })
}

/** An inline ES module script in a fresh process (see `runTsxJson`); the JSON it prints last. */
export function runModuleScript<T = unknown>(script: string, env?: Record<string, string>): Promise<T> {
  return runTsxJson<T>(['--input-type=module', '-e', script], undefined, env)
}

/** The major version of the Node running the tests: some Node behaviour the tests see changed (Node 24). */
export const NODE_MAJOR = Number(process.versions.node.split('.')[0])

/**
 * Run `body` and return the MaxListenersExceededWarning-s Node emitted meanwhile (a leak of listeners on an
 * AbortSignal, say); warnings come on a later tick, which this waits for.
 */
export async function maxListenersWarnings(body: () => Promise<void>): Promise<Error[]> {
  const warnings: Error[] = []
  const onWarning = (warning: Error) => warnings.push(warning)
  process.on('warning', onWarning)
  try {
    await body()
    await new Promise((resolve) => setImmediate(resolve))
  } finally {
    process.off('warning', onWarning)
  }
  return warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')
}

/** Runs `run` with `globalThis.crypto` replaced by `crypto`, then puts the platform's back. */
async function withCrypto<T>(crypto: object, run: () => Promise<T>): Promise<T> {
  const original = globalThis.crypto
  Object.defineProperty(globalThis, 'crypto', { value: crypto, configurable: true })
  try {
    return await run()
  } finally {
    Object.defineProperty(globalThis, 'crypto', { value: original, configurable: true })
  }
}

/** Runs `run` with a `crypto` that has getRandomValues only, as on a page served over plain HTTP from another host. */
export function withoutSubtle<T>(run: () => Promise<T>): Promise<T> {
  const original = globalThis.crypto
  return withCrypto({ getRandomValues: original.getRandomValues.bind(original) }, run)
}

/** Runs `run` with crypto.subtle's method `name` replaced by `replacement`; its other methods are the platform's. */
export function withSubtleMethod<T>(name: keyof SubtleCrypto, replacement: (...args: never[]) => unknown, run: () => Promise<T>): Promise<T> {
  const original = globalThis.crypto
  const subtle = new Proxy(original.subtle, { get: (target, key) => (key === name ? replacement : Reflect.get(target, key).bind(target)) })
  return withCrypto({ subtle, getRandomValues: original.getRandomValues.bind(original) }, run)
}
