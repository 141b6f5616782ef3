// spec: structured-encryption/encrypt-path-structure.md (top-level attributes only, as DynamoDB items are).
import { RequiredEncryptionContextMaterialsManager } from '../../cmm/required-context.js'
import { checkEncryptionMaterials, materialsFrom, zeroDataKey } from '../../cmm/materials-check.js'
import { compareBytes } from '../../format/bytes.js'
import { dbeSuite } from '../../suites-dbe.js'
import type { AlgorithmSuite } from '../../suites.js'
import type { CompleteEncryptionMaterials, EncryptedDataKey, EncryptionContext, MaterialsManager } from '../../types.js'
import { quoteIdentifier } from '../../quote.js'
import { InvalidItemError } from '../errors.js'
import { FOOTER_ATTRIBUTE, HEADER_ATTRIBUTE, type CryptoAction, type Terminal } from '../types.js'
import { withAttributeContext } from './context.js'
import { ENCRYPTED_TYPE_ID, encryptTerminal, fieldKeyAt, fieldKeys, fieldRootKey, settledAll } from './crypt.js'
import { canonicalHash, createFooter, type SignedField } from './footer.js'
import { checkKeyCount } from '../../format/header.js'
import { LEGEND, MESSAGE_ID_LENGTH, headerCommitment, serializePartialHeader } from './header.js'
import type { ItemBackend } from './item-backend.js'
import { canonicalPath } from './path.js'

export interface StructuredField {
  readonly name: string
  readonly terminal: Terminal
  readonly action: CryptoAction
}

/** What a header says, for callers that inspect items. */
export interface ParsedHeader {
  readonly algorithmSuiteId: number
  readonly messageId: Uint8Array
  readonly encryptedDataKeys: readonly EncryptedDataKey[]
  /** The pairs the header stores. */
  readonly storedEncryptionContext: EncryptionContext
  /** Every pair the item is bound to, including those the header does not store. */
  readonly encryptionContext: EncryptionContext
}

export interface EncryptStructureInput {
  readonly tableName: string
  readonly fields: readonly StructuredField[]
  readonly materialsManager: MaterialsManager
  /** Keys of `encryptionContext` that are bound but not stored in the header (the item's base context). */
  readonly requiredContextKeys?: readonly string[]
  readonly backend: ItemBackend
  /** 0x6700 or 0x6701 (the default). */
  readonly algorithmSuiteId?: number
  readonly encryptionContext?: EncryptionContext
  /** Materials with more wrapped data keys are refused. */
  readonly maxEncryptedDataKeys?: number | undefined
  /** The caller's abort signal, passed on to the materials manager. */
  readonly signal?: AbortSignal | undefined
  /** Tests only: a fixed message ID for known-answer tests. */
  readonly messageId?: Uint8Array
}

export interface StructureOutput {
  /** Every field; encrypted ones (and the header and footer, on encrypt) with type 0xFFFF. */
  readonly fields: Map<string, Terminal>
  readonly parsedHeader: ParsedHeader
  /** The action each field (header and footer aside) had. */
  readonly cryptoActions: Record<string, CryptoAction>
}

export interface OrderedField extends StructuredField {
  readonly path: Uint8Array
}

/** Fields with their canonical paths, in canonical-path order (spec: header.md#encrypt-legend-bytes). */
export function inCanonicalOrder(tableName: string, fields: readonly StructuredField[]): OrderedField[] {
  return fields.map((field) => ({ ...field, path: canonicalPath(tableName, field.name) })).sort((a, b) => compareBytes(a.path, b.path))
}

function legendByte(action: CryptoAction): number {
  if (action === 'DO_NOTHING') throw new InvalidItemError('DO_NOTHING attributes have no legend byte.')
  return LEGEND[action]
}

/**
 * The suite the rest of an item's encrypt or decrypt uses: the materials' (spec: it may differ from the one asked
 * for), which must be a DynamoDB item suite. Materials naming another suite are refused with their data key
 * zeroed, as other refused materials are.
 */
export function itemSuiteOf(materials: { readonly suite?: { readonly id?: unknown }; readonly plaintextDataKey?: unknown } | null, asked: AlgorithmSuite): AlgorithmSuite {
  const id = materials?.suite?.id
  try {
    // An ID that is no number is left to the materials check, which names the problem.
    return dbeSuite(typeof id === 'number' ? id : asked.id)
  } catch (error) {
    zeroDataKey(materials)
    throw error
  }
}

function zeroMaterials(materials: CompleteEncryptionMaterials): void {
  materials.plaintextDataKey.fill(0)
  for (const key of materials.symmetricSigningKeys ?? []) key.fill(0)
}

export async function encryptStructure(input: EncryptStructureInput): Promise<StructureOutput> {
  const { tableName, backend } = input
  const names = new Set<string>()
  for (const field of input.fields) {
    if (field.name === HEADER_ATTRIBUTE || field.name === FOOTER_ATTRIBUTE) throw new InvalidItemError(`${quoteIdentifier(field.name)} is reserved for the encryptor.`)
    if (names.has(field.name)) throw new InvalidItemError(`Attribute ${quoteIdentifier(field.name)} appears twice.`)
    names.add(field.name)
  }
  const ordered = inCanonicalOrder(tableName, input.fields)
  const signed = ordered.filter((field) => field.action !== 'DO_NOTHING')
  if (signed.length === 0) throw new InvalidItemError('An item needs at least one signed attribute.')
  const encrypted = signed.filter((field) => field.action === 'ENCRYPT_AND_SIGN')
  const suite = dbeSuite(input.algorithmSuiteId ?? 0x6701)

  const included = signed.filter((field) => field.action === 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT')
  const extended = withAttributeContext(input.encryptionContext ?? {}, included, InvalidItemError)
  const encryptionContext = extended?.context ?? input.encryptionContext ?? {}
  // One required-context manager for the caller's required keys and the attribute pairs added here.
  const requiredKeys = [...(input.requiredContextKeys ?? []), ...(extended?.addedKeys ?? [])]
  const materialsManager =
    requiredKeys.length === 0 ? input.materialsManager : RequiredEncryptionContextMaterialsManager.forReservedKeys(input.materialsManager, requiredKeys)
  // spec: max plaintext length = 2 bytes per encrypted attribute plus their values
  const maxPlaintextLength = encrypted.reduce((sum, field) => sum + 2 + field.terminal.value.length, 0)
  const materials = await materialsFrom(() =>
    materialsManager.getEncryptionMaterials(
      { suite, encryptionContext, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT', maxPlaintextLength, signal: input.signal },
      backend,
    ),
  )
  const materialsSuite = itemSuiteOf(materials, suite)
  checkEncryptionMaterials(materials, materialsSuite, backend)
  try {
    checkKeyCount(materials.encryptedDataKeys.length, input.maxEncryptedDataKeys, 'The keyrings produced')
    // checkEncryptionMaterials saw one usable key per encrypted data key.
    const signingKeys = materials.symmetricSigningKeys as readonly Uint8Array[]
    const messageId = input.messageId ?? backend.randomBytes(MESSAGE_ID_LENGTH)
    const required = new Set(materials.requiredEncryptionContextKeys ?? [])
    const storedEncryptionContext = Object.fromEntries(Object.entries(materials.encryptionContext).filter(([key]) => !required.has(key)))
    const header = {
      version: included.length > 0 ? 2 : 1,
      algorithmSuiteId: materialsSuite.id,
      messageId,
      legend: Uint8Array.from(signed, (field) => legendByte(field.action)),
      storedEncryptionContext,
      encryptedDataKeys: materials.encryptedDataKeys,
    } as const
    const partialHeader = serializePartialHeader(header)
    // The commitment and the field root key are derived side by side (on WebCrypto, each runs off the main thread);
    // when one fails, the other's root key is zeroed.
    const derived = await Promise.allSettled([
      headerCommitment(backend, materialsSuite, materials.plaintextDataKey, messageId, partialHeader),
      fieldRootKey(backend, materialsSuite, materials.plaintextDataKey, messageId),
    ])
    const [commitment, rootKey] = derived.map((outcome) => (outcome.status === 'fulfilled' ? outcome.value : undefined))
    if (commitment === undefined || rootKey === undefined) {
      rootKey?.fill(0)
      throw (derived.find((outcome) => outcome.status === 'rejected') as PromiseRejectedResult).reason
    }
    const headerBytes = new Uint8Array(partialHeader.length + commitment.length)
    headerBytes.set(partialHeader, 0)
    headerBytes.set(commitment, partialHeader.length)

    const keys = await fieldKeys(backend, rootKey, encrypted.length).finally(() => rootKey.fill(0))
    const output = new Map<string, Terminal>()
    const signedFields: SignedField[] = []
    let offset = 0
    // The attributes are encrypted side by side: on WebCrypto each is a key import and an encryption that run
    // off the main thread.
    const terminals = await settledAll(
      ordered.map((field) => (field.action === 'ENCRYPT_AND_SIGN' ? encryptTerminal(backend, fieldKeyAt(keys, offset++), field.path, field.terminal) : field.terminal)),
    ).finally(() => keys.fill(0))
    for (const [index, field] of ordered.entries()) {
      const terminal = terminals[index] as Terminal
      output.set(field.name, terminal)
      if (field.action !== 'DO_NOTHING') signedFields.push({ path: field.path, terminal, encrypted: field.action === 'ENCRYPT_AND_SIGN' })
    }
    const hash = await canonicalHash(backend, headerBytes, materials.encryptionContext, signedFields)
    const footer = await createFooter(backend, materialsSuite, hash, signingKeys, materials.signingKey)
    output.set(HEADER_ATTRIBUTE, { typeId: ENCRYPTED_TYPE_ID, value: headerBytes })
    output.set(FOOTER_ATTRIBUTE, { typeId: ENCRYPTED_TYPE_ID, value: footer })
    return {
      fields: output,
      parsedHeader: {
        algorithmSuiteId: materialsSuite.id,
        messageId,
        encryptedDataKeys: materials.encryptedDataKeys,
        storedEncryptionContext,
        encryptionContext: materials.encryptionContext,
      },
      cryptoActions: Object.fromEntries(input.fields.map((field) => [field.name, field.action])),
    }
  } finally {
    zeroMaterials(materials)
  }
}
