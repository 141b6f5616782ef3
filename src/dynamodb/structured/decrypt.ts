// spec: structured-encryption/decrypt-path-structure.md: parse the header, get materials, verify the commitment
// and the footer, and only then decrypt. Nothing is returned unless every check passed.
import { countOf } from '../../byte-count.js'
import { RequiredEncryptionContextMaterialsManager } from '../../cmm/required-context.js'
import { checkDecryptionMaterials, materialsFrom } from '../../cmm/materials-check.js'
import { CommitmentMismatchError } from '../../errors.js'
import { checkKeyCount } from '../../format/header.js'
import { dbeSuite } from '../../suites-dbe.js'
import type { CompleteDecryptionMaterials, EncryptionContext, MaterialsManager } from '../../types.js'
import { ItemAuthenticationError, MalformedItemError } from '../errors.js'
import { FOOTER_ATTRIBUTE, HEADER_ATTRIBUTE, type CryptoAction, type Terminal } from '../types.js'
import { withAttributeContext } from './context.js'
import type { ItemBackend } from './item-backend.js'
import { ENCRYPTED_TYPE_ID, decryptTerminal, fieldKeyAt, fieldKeys, fieldRootKey, settledAll } from './crypt.js'
import { inCanonicalOrder, itemSuiteOf, type StructureOutput } from './encrypt.js'
import { canonicalHash, verifyFooter, type SignedField } from './footer.js'
import { LEGEND, headerCommitment, parseHeader } from './header.js'

export interface DecryptStructureInput {
  readonly tableName: string
  /** Every attribute of the stored item, the header and footer included. */
  readonly fields: ReadonlyMap<string, Terminal>
  /** Which attributes the signatures cover (spec: decrypt-item.md#signature-scope). */
  readonly authenticate: (name: string) => 'SIGN' | 'DO_NOT_SIGN'
  readonly materialsManager: MaterialsManager
  /** Keys of `encryptionContext` that are bound but not stored in the header (the item's base context). */
  readonly requiredContextKeys?: readonly string[]
  readonly backend: ItemBackend
  readonly encryptionContext?: EncryptionContext
  /** Items with more wrapped data keys are refused before any keyring runs. */
  readonly maxEncryptedDataKeys?: number | undefined
  /** The caller's abort signal, passed on to the materials manager. */
  readonly signal?: AbortSignal | undefined
}

const ACTION_OF_LEGEND: Record<number, CryptoAction> = {
  [LEGEND.ENCRYPT_AND_SIGN]: 'ENCRYPT_AND_SIGN',
  [LEGEND.SIGN_ONLY]: 'SIGN_ONLY',
  [LEGEND.SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT]: 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT',
}

function reserved(fields: ReadonlyMap<string, Terminal>, name: string): Uint8Array {
  const terminal = fields.get(name)
  if (terminal === undefined) throw new MalformedItemError(`The item has no ${name} attribute: it is not an encrypted item, or it was stripped.`)
  if (terminal.typeId !== ENCRYPTED_TYPE_ID) throw new MalformedItemError(`The item's ${name} attribute must be binary.`)
  return terminal.value
}

function zeroMaterials(materials: CompleteDecryptionMaterials): void {
  materials.plaintextDataKey.fill(0)
  materials.symmetricSigningKey?.fill(0)
}

export async function decryptStructure(input: DecryptStructureInput): Promise<StructureOutput> {
  const { tableName, fields, backend } = input
  const { header, partialHeader, commitment } = parseHeader(reserved(fields, HEADER_ATTRIBUTE))
  checkKeyCount(header.encryptedDataKeys.length, input.maxEncryptedDataKeys, 'The item has')
  const footer = reserved(fields, FOOTER_ATTRIBUTE)
  const headerBytes = (fields.get(HEADER_ATTRIBUTE) as Terminal).value
  const data = [...fields].filter(([name]) => name !== HEADER_ATTRIBUTE && name !== FOOTER_ATTRIBUTE)
  const ordered = inCanonicalOrder(
    tableName,
    data.map(([name, terminal]) => ({ name, terminal, action: input.authenticate(name) === 'SIGN' ? 'SIGN_ONLY' : 'DO_NOTHING' })),
  )
  const signed = ordered.filter((field) => field.action !== 'DO_NOTHING')
  // spec: the legend has one byte per signed attribute; a count that differs means one was added or removed.
  if (signed.length !== header.legend.length) {
    throw new ItemAuthenticationError(
      `The item has ${countOf(signed.length, 'signed attribute')} but its header lists ${header.legend.length}: a signed attribute was added or removed.`,
    )
  }
  const actions = new Map<string, CryptoAction>(signed.map((field, index) => [field.name, ACTION_OF_LEGEND[header.legend[index] as number] as CryptoAction]))
  const included = signed.filter((field) => actions.get(field.name) === 'SIGN_AND_INCLUDE_IN_ENCRYPTION_CONTEXT')
  if (header.version === 1 && included.length > 0) {
    throw new MalformedItemError('A version 1 item header lists context attributes, which only version 2 has.')
  }
  const extended = header.version === 2 ? withAttributeContext(input.encryptionContext ?? {}, included, MalformedItemError) : undefined
  const reproducedEncryptionContext = extended?.context ?? input.encryptionContext ?? {}
  // One required-context manager for the caller's required keys and the attribute pairs added here.
  const requiredKeys = [...(input.requiredContextKeys ?? []), ...(extended?.addedKeys ?? [])]
  const materialsManager =
    requiredKeys.length === 0 ? input.materialsManager : RequiredEncryptionContextMaterialsManager.forReservedKeys(input.materialsManager, requiredKeys)
  const suite = dbeSuite(header.algorithmSuiteId)
  const materials = await materialsFrom(() =>
    materialsManager.getDecryptionMaterials(
      {
        suite,
        encryptionContext: header.storedEncryptionContext,
        encryptedDataKeys: header.encryptedDataKeys,
        commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT',
        reproducedEncryptionContext,
        signal: input.signal,
      },
      backend,
    ),
  )
  const materialsSuite = itemSuiteOf(materials, suite)
  checkDecryptionMaterials(materials, materialsSuite, backend)
  try {
    const expected = await headerCommitment(backend, materialsSuite, materials.plaintextDataKey, header.messageId, partialHeader)
    if (!backend.timingSafeEqual(expected, commitment)) {
      throw new CommitmentMismatchError('The item header commitment does not match its data key: the header was changed.')
    }
    const signedFields: SignedField[] = signed.map((field) => ({
      path: field.path,
      terminal: field.terminal,
      encrypted: actions.get(field.name) === 'ENCRYPT_AND_SIGN',
    }))
    const hash = await canonicalHash(backend, headerBytes, materials.encryptionContext, signedFields)
    // checkDecryptionMaterials saw a usable symmetric signing key.
    await verifyFooter(backend, materialsSuite, footer, header.encryptedDataKeys.length, hash, materials.symmetricSigningKey as Uint8Array, materials.verificationKey)

    const rootKey = await fieldRootKey(backend, materialsSuite, materials.plaintextDataKey, header.messageId)
    const keys = await fieldKeys(backend, rootKey, signedFields.filter((field) => field.encrypted).length).finally(() => rootKey.fill(0))
    const output = new Map<string, Terminal>()
    let offset = 0
    // Side by side, as encryptStructure encrypts them.
    const terminals = await settledAll(
      ordered.map((field) =>
        actions.get(field.name) === 'ENCRYPT_AND_SIGN' ? decryptTerminal(backend, fieldKeyAt(keys, offset++), field.path, field.terminal, field.name) : field.terminal,
      ),
    ).finally(() => keys.fill(0))
    for (const [index, field] of ordered.entries()) output.set(field.name, terminals[index] as Terminal)
    return {
      fields: output,
      parsedHeader: {
        algorithmSuiteId: materialsSuite.id,
        messageId: header.messageId,
        encryptedDataKeys: header.encryptedDataKeys,
        storedEncryptionContext: header.storedEncryptionContext,
        encryptionContext: materials.encryptionContext,
      },
      cryptoActions: Object.fromEntries(ordered.map((field) => [field.name, actions.get(field.name) ?? 'DO_NOTHING'])),
    }
  } finally {
    zeroMaterials(materials)
  }
}
