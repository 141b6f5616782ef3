// The three contenders behind one shape:
//   contender.encryptor(suiteId, frameLength, extra?) -> async (plaintext) => ciphertext
//   contender.decryptor(suiteId, extra?)              -> async (ciphertext) => plaintext
// (`extra`: more options for ours, such as a `signal`; the official SDK has no such options)
// Every encrypt uses a fresh data key (no caching); the keyrings are raw AES-256 keyrings
// with the same namespace, name and wrapping key, so messages are interchangeable between
// "ours" and "official".

import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { floorDecrypt, floorEncrypt, floorKey } from './floor.mjs'

export const OURS_URL = new URL('../../dist/index.js', import.meta.url)
export const OURS_PATH = fileURLToPath(OURS_URL)

export const KEY_NAMESPACE = 'bench-namespace'
export const KEY_NAME = 'bench-key-1'
// Fixed so that every contender and child process can read the others' messages. A fresh copy
// per keyring: the official RawAesKeyringNode zeroes the array it is given.
export const wrappingKey = () => Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff)
export const ENCRYPTION_CONTEXT = Object.freeze({ purpose: 'benchmark', tenant: 'acme-corp', region: 'eu-west-1' })

/**
 * How many distinct messages a decrypt benchmark cycles through: more than the 64 signers whose public keys
 * kms-envelope remembers (src/backend/recent-keys.ts), so every signed decrypt imports its own message's key,
 * as decrypting the messages of independent encrypts does. Decrypting one message over and over would let ours
 * skip that import (0.05-0.2 ms on P-384, by machine) while the official SDK decompresses the point every time.
 */
export const DISTINCT_MESSAGES = 80

/** `count` messages made by `encrypt` (async, plaintext -> message), one after another. */
export async function distinctMessages(encrypt, plaintext, count = DISTINCT_MESSAGES) {
  const messages = []
  for (let i = 0; i < count; i++) messages.push(await encrypt(plaintext))
  return messages
}

/** A function decrypting the next of `messages` on each call, round and round. */
export function cyclingDecryptor(decrypt, messages) {
  let next = 0
  return () => decrypt(messages[next++ % messages.length])
}

const NON_COMMITTING = new Set([0x0014, 0x0046, 0x0078, 0x0114, 0x0146, 0x0178, 0x0214, 0x0346, 0x0378])

/** Policies "ours" uses: FORBID to write non-committing suites, REQUIRE_ENCRYPT_ALLOW_DECRYPT to read them. */
export function oursEncryptPolicy(suiteId) {
  return NON_COMMITTING.has(suiteId) ? 'FORBID_ENCRYPT_ALLOW_DECRYPT' : 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'
}
export function oursDecryptPolicy(suiteId) {
  return NON_COMMITTING.has(suiteId) ? 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' : 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT'
}

/** The built library and a raw AES keyring shared by every "ours" contender. */
export async function loadOursBuild(names) {
  if (!existsSync(OURS_PATH)) throw new Error(`${OURS_PATH} does not exist (run \`npx tsup\` first)`)
  const lib = await import(OURS_URL.href)
  for (const name of [...names, 'RawAesKeyring']) {
    if (typeof lib[name] !== 'function') throw new Error(`dist/index.js does not export ${name}`)
  }
  const keyring = new lib.RawAesKeyring({ keyNamespace: KEY_NAMESPACE, keyName: KEY_NAME, wrappingKey: wrappingKey() })
  return { lib, keyring }
}

export async function loadOurs() {
  const { lib, keyring } = await loadOursBuild(['encrypt', 'decrypt'])
  return {
    name: 'ours',
    encryptor(suiteId, frameLength, extra = {}) {
      const options = {
        algorithmSuite: suiteId,
        frameLength,
        commitmentPolicy: oursEncryptPolicy(suiteId),
        encryptionContext: ENCRYPTION_CONTEXT,
        ...extra,
      }
      return async (plaintext) => (await lib.encrypt(keyring, plaintext, options)).ciphertext
    },
    decryptor(suiteId, extra = {}) {
      const options = { commitmentPolicy: oursDecryptPolicy(suiteId), ...extra }
      return async (ciphertext) => (await lib.decrypt(keyring, ciphertext, options)).plaintext
    },
  }
}

/** The built library and its KMS emulator (kms-envelope/testing), for the KMS and cache benchmarks. */
export async function loadOursWithEmulator() {
  const testing = new URL('../../dist/testing/index.js', import.meta.url)
  for (const url of [OURS_URL, testing]) {
    if (!existsSync(fileURLToPath(url))) throw new Error(`${fileURLToPath(url)} does not exist (run \`npx tsup\` first)`)
  }
  return { lib: await import(OURS_URL.href), testing: await import(testing.href) }
}

/** The official SDK and a raw AES keyring interchangeable with ours (same namespace, name and key). */
export async function loadOfficialSdk() {
  const mod = await import('@aws-crypto/client-node')
  const sdk = mod.buildClient ? mod : mod.default
  const keyring = new sdk.RawAesKeyringNode({
    keyNamespace: KEY_NAMESPACE,
    keyName: KEY_NAME,
    unencryptedMasterKey: wrappingKey(), // a fresh copy: the keyring zeroes the array it is given
    wrappingSuite: sdk.RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    utf8Sorting: true,
  })
  return { sdk, keyring }
}

export async function loadOfficial() {
  const { sdk, keyring } = await loadOfficialSdk()
  const { buildClient, CommitmentPolicy } = sdk
  const clients = {
    REQUIRE_ENCRYPT_REQUIRE_DECRYPT: buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT),
    REQUIRE_ENCRYPT_ALLOW_DECRYPT: buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_ALLOW_DECRYPT),
    FORBID_ENCRYPT_ALLOW_DECRYPT: buildClient(CommitmentPolicy.FORBID_ENCRYPT_ALLOW_DECRYPT),
  }
  return {
    name: 'official',
    encryptor(suiteId, frameLength) {
      const client = clients[oursEncryptPolicy(suiteId)]
      // encrypt() mutates its options (plaintextLength), so pass a fresh object each time
      return async (plaintext) =>
        (await client.encrypt(keyring, plaintext, { suiteId, frameLength, encryptionContext: ENCRYPTION_CONTEXT }))
          .result
    },
    decryptor(suiteId) {
      const client = clients[oursDecryptPolicy(suiteId)]
      return async (ciphertext) => (await client.decrypt(keyring, ciphertext)).plaintext
    },
  }
}

export function loadFloor() {
  const key = floorKey()
  return {
    name: 'floor',
    encryptor(suiteId, frameLength) {
      return async (plaintext) => floorEncrypt(key, suiteId, frameLength, plaintext)
    },
    decryptor(suiteId) {
      return async (ciphertext) => floorDecrypt(key, suiteId, ciphertext)
    },
  }
}

export async function loadContender(name) {
  if (name === 'ours') return loadOurs()
  if (name === 'official') return loadOfficial()
  if (name === 'floor') return loadFloor()
  throw new Error(`unknown contender ${name}`)
}
