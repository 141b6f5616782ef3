// Cache entry identifiers of the caching materials manager, exactly as the specification defines them:
// SHA-384 over resource ID, scope ID, partition ID and a resource suffix, each separated by one null byte.
// spec: framework/caching-cmm.md#appendix-a-cache-entry-identifier-formulas
//
// SHA-384 comes from the CryptoBackend the manager is called with: synchronous on node:crypto (so a cache hit
// takes no extra turn), a promise on WebCrypto. The preimage is built whole first; it is a few hundred bytes.
import { isPromise, type CryptoBackend, type MaybePromise } from '../backend/types.js'
import { ByteWriter, byteChars, compareBytes, concatBytes, utf8 } from '../format/bytes.js'
import { serializeContext } from '../format/context.js'
import { writeEncryptedDataKey } from '../format/header.js'
import type { EncryptedDataKey, EncryptionContext } from '../types.js'

const NULL_BYTE = Uint8Array.of(0x00)
/** spec: framework/caching-cmm.md#resource-identifier */
const RESOURCE_CACHING_CMM = 0x01
/** spec: framework/caching-cmm.md#scope-identifier */
const SCOPE_ENCRYPT = 0x01
const SCOPE_DECRYPT = 0x02
/** The "algorithm suite hex byte" of the two encryption formulas. */
const WITHOUT_SUITE = 0x00
const WITH_SUITE = 0x01

/** `resource-id + NULL + scope-id + NULL + partition-id + NULL`: the part shared by every entry of one manager and scope. */
export function identifierPrefix(partitionId: string, scope: 'encrypt' | 'decrypt'): Uint8Array {
  const partition = utf8(partitionId)
  const prefix = new Uint8Array(5 + partition.length)
  prefix[0] = RESOURCE_CACHING_CMM
  prefix[2] = scope === 'encrypt' ? SCOPE_ENCRYPT : SCOPE_DECRYPT
  prefix.set(partition, 4)
  return prefix // the separators and the trailing null byte are the zeros left in place
}

function suiteIdBytes(suiteId: number): Uint8Array {
  return Uint8Array.of(suiteId >>> 8, suiteId & 0xff)
}

/**
 * Identifier of encryption materials. With a suite (what `encrypt` always sends):
 * `SHA384(0x01 ‖ 0 ‖ 0x01 ‖ 0 ‖ partition ‖ 0 ‖ 0x01 ‖ 0 ‖ suiteId ‖ 0 ‖ SerializeEncryptionContext(ec))`;
 * without one, `… ‖ 0 ‖ 0x00 ‖ 0 ‖ SerializeEncryptionContext(ec))`.
 * spec: framework/caching-cmm.md#encryption-materials-with-algorithm-suite and #encryption-materials-without-algorithm-suite
 */
export function encryptionIdentifier(
  backend: CryptoBackend,
  prefix: Uint8Array,
  suiteId: number | undefined,
  context: EncryptionContext,
): MaybePromise<string> {
  const suitePart = suiteId === undefined ? [Uint8Array.of(WITHOUT_SUITE, 0)] : [Uint8Array.of(WITH_SUITE, 0), suiteIdBytes(suiteId), NULL_BYTE]
  return identifier(backend, [prefix, ...suitePart, serializeContext(context)])
}

/** One encrypted data key as the header writes it: three uint16-length-prefixed fields. spec: data-format/message-header.md#encrypted-data-key-entries */
export function serializeEncryptedDataKey(key: EncryptedDataKey): Uint8Array {
  return writeEncryptedDataKey(new ByteWriter(6 + key.providerId.length + key.providerInfo.length + key.ciphertext.length), key).toBytes()
}

/**
 * Identifier of decryption materials:
 * `SHA384(0x01 ‖ 0 ‖ 0x02 ‖ 0 ‖ partition ‖ 0 ‖ suiteId ‖ 0 ‖ CONCATENATE(SORTED(EDK)) ‖ 0 ‖ SerializeEncryptionContext(ec))`,
 * the data keys serialized as in the header and sorted lexicographically by those bytes.
 * spec: framework/caching-cmm.md#decryption-materials
 */
export function decryptionIdentifier(
  backend: CryptoBackend,
  prefix: Uint8Array,
  suiteId: number,
  encryptedDataKeys: readonly EncryptedDataKey[],
  context: EncryptionContext,
): MaybePromise<string> {
  const keys = encryptedDataKeys.map(serializeEncryptedDataKey).sort(compareBytes)
  return identifier(backend, [prefix, suiteIdBytes(suiteId), NULL_BYTE, ...keys, NULL_BYTE, serializeContext(context)])
}

/** SHA-384 of the concatenated parts, as a compact string key for the cache map. */
function identifier(backend: CryptoBackend, parts: Uint8Array[]): MaybePromise<string> {
  const digest = backend.digest('sha384', concatBytes(parts))
  // The key is the digest as a compact string, one character per byte.
  return isPromise(digest) ? digest.then(byteChars) : byteChars(digest)
}
