// ECDSA message signatures on node:crypto: ephemeral signing keys made ahead of need, incremental and
// whole-message signatures, and the hand-off of large one-shot messages to the signing thread.
import { type KeyObject, createSign, generateKeyPair, generateKeyPairSync, sign } from 'node:crypto'
import { setImmediate } from 'node:timers'
import type { CurveName } from '../suites.js'
import { SIGNATURE_HASH, unusableSigningKey } from './node-ec-keys.js'
import { OFF_THREAD_SIGNING_MIN, offThreadJobsPending, prepareSigningThread, startOffThreadSignature } from './signing-thread.js'
import type { OffThreadSignature, Signer, SigningKeyPair } from './types.js'

export const COMPRESSED_POINT_LENGTH: Record<CurveName, number> = { 'P-256': 33, 'P-384': 49 }

/** Compress the uncompressed point that ends an SPKI encoding: 0x02/0x03 by the parity of y, then x. */
function compressSpkiPoint(spki: Uint8Array, curve: CurveName): Uint8Array {
  const coordinateLength = COMPRESSED_POINT_LENGTH[curve] - 1
  const point = spki.subarray(spki.length - 1 - 2 * coordinateLength)
  const compressed = new Uint8Array(1 + coordinateLength)
  compressed[0] = 0x02 | ((point[point.length - 1] as number) & 1)
  compressed.set(point.subarray(1, 1 + coordinateLength), 1)
  return compressed
}

/**
 * EC key pairs with the public half as SPKI DER and the private half as a KeyObject. Node accepts an encoding
 * for one half only; its typings want both, hence these narrower signatures.
 */
interface SpkiPairOptions {
  readonly namedCurve: string
  readonly publicKeyEncoding: { readonly type: 'spki'; readonly format: 'der' }
}
const generateSpkiPair = generateKeyPair as unknown as (
  type: 'ec',
  options: SpkiPairOptions,
  callback: (error: Error | null, spki: Buffer, privateKey: KeyObject) => void,
) => void
const generateSpkiPairSync = generateKeyPairSync as unknown as (type: 'ec', options: SpkiPairOptions) => { publicKey: Buffer; privateKey: KeyObject }
const spkiPairOptions = (curve: CurveName): SpkiPairOptions => ({ namedCurve: curve, publicKeyEncoding: { type: 'spki', format: 'der' } })

function generateInBackground(curve: CurveName): Promise<SigningKeyPair> {
  return new Promise((resolve, reject) => {
    // The SPKI encoding is made on the thread pool too. (Exporting a freshly generated key as JWK on
    // the main thread can deadlock Node 20 when a GC frees the key-generation job meanwhile.)
    generateSpkiPair('ec', spkiPairOptions(curve), (error, spki, privateKey) => {
      if (error !== null) reject(error)
      else resolve({ privateKey, publicKey: compressSpkiPoint(spki, curve) })
    })
  })
}

/**
 * Ephemeral signing keys, made ahead of need. A P-384 key pair costs about as much as the signature itself,
 * so making the next one while this message is signed nearly halves a small signed message's latency, and the
 * main thread never waits for key generation. Each pair is handed out once; the pool starts only after a curve
 * is first used, so importing starts no work.
 *
 * A pool is topped up once its message knows how it will be signed (`startSignature` below), or on the next
 * turn of the event loop at the latest. Signed inline, the main thread is busy: the keys are made on libuv's
 * thread pool beside it. Signed on the helper thread, the main thread has sealed the frames and would only wait
 * for the signature: it makes one key itself meanwhile. A key made on libuv's pool at that moment would compete
 * with the helper thread and the frames for the CPUs, and delayed a 1 MiB message by 15-20% on two vCPUs.
 */
const SIGNING_KEY_POOL_SIZE = 2
const signingKeyPools = new Map<CurveName, Promise<SigningKeyPair>[]>()
/** Curves whose pool has handed out keys since it was last topped up. */
const shortPools = new Set<CurveName>()
let topUpScheduled = false

/** How many spare signing keys (pool top-ups) were made on libuv's thread pool and on the calling thread (tests). */
export const signingKeysMade = { inBackground: 0, inline: 0 }

export function takeSigningKey(curve: CurveName): Promise<SigningKeyPair> {
  let pool = signingKeyPools.get(curve)
  if (pool === undefined) signingKeyPools.set(curve, (pool = []))
  const spare = pool.shift()
  // A spare that failed (before or after it was taken) is made again once for this message; a second failure is the message's.
  const next = spare === undefined ? generateInBackground(curve) : spare.catch(() => generateInBackground(curve))
  shortPools.add(curve)
  if (!topUpScheduled) {
    topUpScheduled = true
    setImmediate(topUpInBackground)
  }
  return next
}

/** Resolves once every key in the pools has been made (tests). */
export function signingKeysSettled(): Promise<unknown> {
  return Promise.allSettled([...signingKeyPools.values()].flat())
}

/** Fill every short pool with keys made on libuv's thread pool. */
function topUpInBackground(): void {
  topUpScheduled = false
  for (const curve of shortPools) {
    const pool = signingKeyPools.get(curve) as Promise<SigningKeyPair>[]
    while (pool.length < SIGNING_KEY_POOL_SIZE) {
      const job = generateInBackground(curve)
      job.catch(() => undefined) // a failed spare surfaces only if it is taken, and is then made again once
      pool.push(job)
      signingKeysMade.inBackground++
    }
  }
  shortPools.clear()
}

/** Add one key made on this thread to a short pool (the rest are made by `topUpInBackground`). */
function topUpOneInline(curve: CurveName): void {
  const pool = signingKeyPools.get(curve)
  if (pool === undefined || pool.length >= SIGNING_KEY_POOL_SIZE) return
  let pair: SigningKeyPair
  try {
    const { publicKey, privateKey } = generateSpkiPairSync('ec', spkiPairOptions(curve))
    pair = { privateKey, publicKey: compressSpkiPoint(publicKey, curve) }
  } catch {
    return // made on the thread pool instead
  }
  pool.push(Promise.resolve(pair))
  signingKeysMade.inline++
}

/**
 * `sealBody`'s offer of the helper thread, with the pools topped up where it costs least (see above). Each
 * message is sealed within one turn, so this is called once the message's key is taken.
 */
export function startSignature(curve: CurveName, privateKey: unknown, signedLength: number): OffThreadSignature | undefined {
  const job = startOffThreadSignature(curve, privateKey, signedLength)
  if (job === undefined) {
    topUpInBackground()
    return undefined
  }
  return {
    publish: job.publish,
    abandon: job.abandon,
    finish() {
      // The frames are sealed. Alone on the helper thread, this message's hash and signature take longer than
      // a key pair; with other jobs queued there, this thread has their frames to seal instead.
      if (offThreadJobsPending() === 1) topUpOneInline(curve)
      topUpInBackground()
      return job.finish()
    },
  }
}

/**
 * Streams hash on the signing thread once it runs. It is started by a large one-shot message, or by a signed
 * stream that carried (or declares) as much: that stream hashes its own bytes, and later ones use the thread.
 */
export function signedStreamSeen(length: number): void {
  if (length >= OFF_THREAD_SIGNING_MIN) prepareSigningThread()
}

export function createSigner(curve: CurveName, privateKey: unknown): Signer {
  const signer = createSign(SIGNATURE_HASH[curve])
  return {
    update: (bytes) => void signer.update(bytes),
    sign() {
      try {
        return new Uint8Array(signer.sign({ key: privateKey as KeyObject, dsaEncoding: 'der' }))
      } catch (error) {
        throw unusableSigningKey(error)
      }
    },
  }
}

export function signMessage(curve: CurveName, privateKey: unknown, message: Uint8Array): Promise<Uint8Array> {
  // With a callback, node:crypto hashes and signs on libuv's thread pool.
  return new Promise((resolve, reject) => {
    try {
      sign(SIGNATURE_HASH[curve], message, { key: privateKey as KeyObject, dsaEncoding: 'der' }, (error, signature) =>
        error === null ? resolve(new Uint8Array(signature)) : reject(unusableSigningKey(error)),
      )
    } catch (error) {
      reject(unusableSigningKey(error))
    }
  })
}
