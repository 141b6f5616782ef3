// Required encryption context: pairs authenticated but not stored (spec: framework/required-encryption-context-cmm.md,
// client-apis/encrypt.md#construct-the-header, client-apis/decrypt.md#verify-the-header, framework/cmm-interface.md).
import { createHash } from 'node:crypto'
import { KMS } from '@aws-sdk/client-kms'
import { buildClient, CommitmentPolicy as OfficialCommitmentPolicy, getClient, KmsKeyringNode } from '@aws-crypto/client-node'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { nodeBackend } from '../src/backend/node.js'
import { encryptWith } from '../src/encrypt.js'
import {
  ConfigurationError,
  DefaultMaterialsManager,
  decrypt,
  decryptStream,
  defaultKmsClientSupplier,
  encrypt,
  encryptStream,
  KmsKeyring,
  RawAesKeyring,
  RequiredEncryptionContextMaterialsManager,
  type CompleteDecryptionMaterials,
  type CryptoBackend,
  type DecryptionRequest,
  type EncryptionContext,
  type EnvelopeError,
  type Keyring,
  type MaterialsManager,
} from '../src/index.js'
import { startKmsEmulator, type KmsEmulator } from '../src/testing/index.js'
import { isAllZero } from '../src/format/bytes.js'
import { aesKeyring, policyFor, rejectionOf, rsaKeyring, spyKeyring } from './helpers/fixtures.js'
import { buildKatMessage, KAT } from './helpers/required-context-kat.js'

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)
const context = { tenant: 'acme-corp', purpose: 'backup' }
const codeOf = async (promise: Promise<unknown>): Promise<string> => ((await rejectionOf(promise)) as EnvelopeError).code

async function streamDecrypt(
  keyringOrCmm: Keyring | MaterialsManager,
  ciphertext: Uint8Array,
  encryptionContext?: EncryptionContext,
): Promise<{ plaintext?: Uint8Array; error?: unknown }> {
  const stream = decryptStream(keyringOrCmm, encryptionContext === undefined ? {} : { encryptionContext })
  const writer = stream.writable.getWriter()
  const chunks: Uint8Array[] = []
  const reading = (async () => {
    const reader = stream.readable.getReader()
    for (let next = await reader.read(); !next.done; next = await reader.read()) chunks.push(next.value)
  })()
  try {
    for (let offset = 0; offset < ciphertext.length; offset += 100) await writer.write(ciphertext.subarray(offset, offset + 100))
    await writer.close()
    await reading
    return { plaintext: Buffer.concat(chunks) }
  } catch (error) {
    await reading.catch(() => undefined)
    return { error: await stream.header.then(() => error, (headerError) => headerError) }
  }
}

describe('RequiredEncryptionContextMaterialsManager configuration', () => {
  const keyring = aesKeyring()
  it.each([
    [
      'no options',
      () => new RequiredEncryptionContextMaterialsManager(undefined as never),
      'RequiredEncryptionContextMaterialsManager requiredKeys must be a non-empty array of context keys; got undefined.',
    ],
    [
      'no required keys',
      () => new RequiredEncryptionContextMaterialsManager({ requiredKeys: [], keyring }),
      'RequiredEncryptionContextMaterialsManager requiredKeys must be a non-empty array of context keys; got an empty array.',
    ],
    [
      'required keys not an array',
      () => new RequiredEncryptionContextMaterialsManager({ requiredKeys: 'tenant' as never, keyring }),
      'RequiredEncryptionContextMaterialsManager requiredKeys must be a non-empty array of context keys; got "tenant".',
    ],
    [
      'a numeric key',
      () => new RequiredEncryptionContextMaterialsManager({ requiredKeys: [1 as never], keyring }),
      'RequiredEncryptionContextMaterialsManager requiredKeys must be non-empty strings; got 1.',
    ],
    [
      'an empty key',
      () => new RequiredEncryptionContextMaterialsManager({ requiredKeys: [''], keyring }),
      'RequiredEncryptionContextMaterialsManager requiredKeys must be non-empty strings; got "".',
    ],
    [
      'a reserved key',
      () => new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['aws-crypto-public-key'], keyring }),
      'RequiredEncryptionContextMaterialsManager: "aws-crypto-public-key" uses the reserved prefix "aws-crypto-".',
    ],
    [
      'a repeated key',
      () => new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['a', 'a'], keyring }),
      'RequiredEncryptionContextMaterialsManager requiredKeys must not repeat a key; "a" is there twice.',
    ],
    [
      'neither keyring nor manager',
      () => new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['a'] }),
      'RequiredEncryptionContextMaterialsManager needs exactly one of keyring or materialsManager; got neither.',
    ],
    [
      'both keyring and manager',
      () => new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['a'], keyring, materialsManager: new DefaultMaterialsManager(keyring) }),
      'RequiredEncryptionContextMaterialsManager needs exactly one of keyring or materialsManager; got both.',
    ],
    [
      'a keyring that is not one',
      () => new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['a'], keyring: {} as never }),
      'RequiredEncryptionContextMaterialsManager keyring must be a keyring.',
    ],
    [
      'a manager that is not one',
      () => new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['a'], materialsManager: {} as never }),
      'RequiredEncryptionContextMaterialsManager materialsManager must be a materials manager.',
    ],
    [
      'a manager with one of its two methods',
      () => new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['a'], materialsManager: { getEncryptionMaterials: () => undefined } as never }),
      'RequiredEncryptionContextMaterialsManager materialsManager must be a materials manager.',
    ],
  ])('%s is a ConfigurationError that says what is wrong', (_name, build, message) => {
    expect(build).toThrow(ConfigurationError)
    expect(build).toThrow(expect.objectContaining({ code: 'INVALID_CONFIGURATION', message }))
  })
})

describe('required encryption context: authenticated, not stored', () => {
  it.each([
    ['0x0478', 'aes', 0x0478],
    ['0x0578', 'aes', 0x0578],
    ['0x0178', 'aes', 0x0178],
    ['0x0378', 'rsa', 0x0378],
    ['0x0478', 'rsa', 0x0478],
  ] as const)('suite %s with the %s keyring round-trips; the message does not store the required pair', async (_label, kind, suite) => {
    const keyring = kind === 'aes' ? aesKeyring() : rsaKeyring()
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring })
    const commitmentPolicy = policyFor(suite)
    const { ciphertext, header } = await encrypt(cmm, 'secret', { encryptionContext: context, algorithmSuite: suite, commitmentPolicy })
    expect(header.encryptionContext.tenant).toBeUndefined()
    expect(header.encryptionContext.purpose).toBe('backup')
    expect(Buffer.from(ciphertext).includes(Buffer.from('acme-corp'))).toBe(false)
    expect(Buffer.from(ciphertext).includes(Buffer.from('backup'))).toBe(true)

    const result = await decrypt(cmm, ciphertext, { encryptionContext: { tenant: 'acme-corp' }, commitmentPolicy })
    expect(text(result.plaintext)).toBe('secret')
    expect(result.header.encryptionContext.tenant).toBeUndefined()
    expect(result.encryptionContext).toMatchObject(context)
    // The required manager is not needed to decrypt: any keyring given the pair authenticates it.
    const plain = await decrypt(keyring, ciphertext, { encryptionContext: { tenant: 'acme-corp', purpose: 'backup' }, commitmentPolicy })
    expect(text(plain.plaintext)).toBe('secret')
  })

  it('encrypt without a required key fails before any keyring runs', async () => {
    const { keyring, calls } = spyKeyring(aesKeyring())
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant', 'region'], keyring })
    const error = await rejectionOf(encrypt(cmm, 'x', { encryptionContext: { tenant: 'a' } }))
    expect(error).toMatchObject({
      code: 'INVALID_ENCRYPTION_CONTEXT',
      message: 'The encryption context has no "region", which this materials manager requires; add the pair to encryptionContext.',
    })
    expect(await rejectionOf(encrypt(cmm, 'x'))).toMatchObject({
      code: 'INVALID_ENCRYPTION_CONTEXT',
      message: 'The encryption context has no "tenant", "region", which this materials manager requires; add the pairs to encryptionContext.',
    })
    expect(calls.encrypt).toBe(0)
    // The manager checks by itself, even over an underlying manager that would not.
    const lenient: MaterialsManager = {
      getEncryptionMaterials: async (request, backend) => {
        const { requiredEncryptionContextKeys, ...rest } = request
        const materials = await new DefaultMaterialsManager(keyring).getEncryptionMaterials(rest, backend)
        return { ...materials, requiredEncryptionContextKeys: requiredEncryptionContextKeys ?? [] }
      },
      getDecryptionMaterials: (request, backend) => new DefaultMaterialsManager(keyring).getDecryptionMaterials(request, backend),
    }
    const over = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], materialsManager: lenient })
    expect(await codeOf(encrypt(over, 'x', { encryptionContext: { purpose: 'p' } }))).toBe('INVALID_ENCRYPTION_CONTEXT')
    expect(calls.encrypt).toBe(0)
  })

  it('decrypt through the manager without a required key: ENCRYPTION_CONTEXT_MISMATCH before any keyring runs, one-shot and streaming', async () => {
    const { keyring, calls } = spyKeyring(aesKeyring())
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring })
    const { ciphertext } = await encrypt(cmm, 'x', { encryptionContext: context })
    calls.decrypt = 0
    expect(await rejectionOf(decrypt(cmm, ciphertext))).toMatchObject({
      code: 'ENCRYPTION_CONTEXT_MISMATCH',
      message: 'Decrypting needs the value of "tenant" in encryptionContext: this materials manager requires it, and messages it writes do not store it.',
    })
    const both = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant', 'purpose'], keyring })
    expect(await rejectionOf(decrypt(both, ciphertext))).toMatchObject({
      code: 'ENCRYPTION_CONTEXT_MISMATCH',
      message: 'Decrypting needs the values of "tenant", "purpose" in encryptionContext: this materials manager requires them, and messages it writes do not store them.',
    })
    expect(await codeOf(decrypt(cmm, ciphertext, { encryptionContext: { purpose: 'backup' } }))).toBe('ENCRYPTION_CONTEXT_MISMATCH')
    const { error } = await streamDecrypt(cmm, ciphertext, { purpose: 'backup' })
    expect((error as EnvelopeError).code).toBe('ENCRYPTION_CONTEXT_MISMATCH')
    expect(calls.decrypt).toBe(0)
  })

  it('a wrong value for a stored key is ENCRYPTION_CONTEXT_MISMATCH before any keyring runs, with or without the manager', async () => {
    const { keyring, calls } = spyKeyring(aesKeyring())
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring })
    const { ciphertext } = await encrypt(cmm, 'x', { encryptionContext: context })
    calls.decrypt = 0
    for (const manager of [cmm, keyring]) {
      const wrong = { tenant: 'acme-corp', purpose: 'other' }
      expect(await codeOf(decrypt(manager, ciphertext, { encryptionContext: wrong }))).toBe('ENCRYPTION_CONTEXT_MISMATCH')
      expect(((await streamDecrypt(manager, ciphertext, wrong)).error as EnvelopeError).code).toBe('ENCRYPTION_CONTEXT_MISMATCH')
    }
    expect(calls.decrypt).toBe(0)
  })

  it('a wrong value for an unstored key fails the header tag (keyring that does not bind the context), saying the unstored pairs did not authenticate', async () => {
    const keyring = rsaKeyring()
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring })
    const { ciphertext } = await encrypt(cmm, 'x', { encryptionContext: context })
    for (const manager of [cmm, keyring]) {
      const error = await rejectionOf(decrypt(manager, ciphertext, { encryptionContext: { tenant: 'someone-else' } }))
      expect((error as EnvelopeError).code).toBe('HEADER_AUTHENTICATION_FAILED')
      expect((error as Error).message).toMatch(/does not store \("tenant"\).*did not authenticate/)
      const streamed = (await streamDecrypt(manager, ciphertext, { tenant: 'someone-else' })).error as EnvelopeError
      expect(streamed.code).toBe('HEADER_AUTHENTICATION_FAILED')
      expect(streamed.message).toBe((error as Error).message)
    }
    // Without the pair at all, the keyring has nothing to add and the tag fails plainly.
    expect(await rejectionOf(decrypt(keyring, ciphertext))).toMatchObject({
      code: 'HEADER_AUTHENTICATION_FAILED',
      message: 'The message header failed authentication: it was altered or the wrong key was used.',
    })
  })

  it('a wrong value for an unstored key fails at a keyring that binds the context (raw AES), naming the unstored pairs', async () => {
    const keyring = aesKeyring()
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring })
    const { ciphertext } = await encrypt(cmm, 'x', { encryptionContext: context })
    const error = await rejectionOf(decrypt(cmm, ciphertext, { encryptionContext: { tenant: 'someone-else' } }))
    expect((error as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
    expect((error as Error).message).toMatch(/does not store \("tenant"\).*did not authenticate/)
    const streamed = (await streamDecrypt(cmm, ciphertext, { tenant: 'someone-else' })).error as EnvelopeError
    expect(streamed.code).toBe('NO_DECRYPTABLE_KEY')
    expect(await codeOf(decrypt(keyring, ciphertext))).toBe('NO_DECRYPTABLE_KEY')
  })

  it('streams: encryptStream leaves the pair out, decryptStream and one-shot iterable decrypt authenticate it', async () => {
    const keyring = aesKeyring()
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring })
    const plaintext = new Uint8Array(10_000).fill(9)
    const stream = encryptStream(cmm, { encryptionContext: context, frameLength: 1024 })
    const writer = stream.writable.getWriter()
    void writer.write(plaintext).then(() => writer.close())
    const chunks: Uint8Array[] = []
    for await (const chunk of stream.readable as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk)
    const ciphertext = new Uint8Array(Buffer.concat(chunks))
    expect((await stream.header).encryptionContext.tenant).toBeUndefined()

    const streamed = await streamDecrypt(cmm, ciphertext, { tenant: 'acme-corp' })
    expect(Buffer.from(streamed.plaintext as Uint8Array).equals(Buffer.from(plaintext))).toBe(true)
    async function* pieces() {
      for (let offset = 0; offset < ciphertext.length; offset += 777) yield ciphertext.subarray(offset, offset + 777)
    }
    const result = await decrypt(cmm, pieces(), { encryptionContext: { tenant: 'acme-corp' } })
    expect(result.encryptionContext).toMatchObject(context)
    expect(result.header.encryptionContext.tenant).toBeUndefined()
  })

  it('property: any split of a context into stored and required pairs round-trips, and any changed unstored value fails', async () => {
    const keyring = rsaKeyring()
    const key = fc.string({ minLength: 1, maxLength: 8 }).filter((candidate) => !candidate.startsWith('aws-crypto-'))
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(key, fc.string({ maxLength: 12 }), { minKeys: 1, maxKeys: 5 }),
        fc.nat(),
        fc.string({ maxLength: 12 }),
        async (pairs, pick, otherValue) => {
          const keys = Object.keys(pairs)
          const required = keys.filter((_, index) => ((pick >> index) & 1) === 1 || index === pick % keys.length)
          const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: required, keyring })
          const { ciphertext, header } = await encrypt(cmm, 'p', { encryptionContext: pairs, algorithmSuite: 0x0478 })
          expect(Object.keys(header.encryptionContext).sort()).toEqual(keys.filter((k) => !required.includes(k)).sort())
          const reproduced = Object.fromEntries(required.map((k) => [k, pairs[k] as string]))
          expect((await decrypt(cmm, ciphertext, { encryptionContext: reproduced })).encryptionContext).toEqual(pairs)
          const target = required[0] as string
          if (otherValue !== pairs[target]) {
            const changed = { ...reproduced, [target]: otherValue }
            expect(await codeOf(decrypt(cmm, ciphertext, { encryptionContext: changed }))).toBe('HEADER_AUTHENTICATION_FAILED')
          }
        },
      ),
      { numRuns: 40 },
    )
  })
})

// The decrypt cases of the specification's test plan for the default materials manager (the first column of
// each table in the spec's "Which Encryption Context should be used in Decrypt Operations" change): messages
// whose context { a: a, b: b } is stored and authenticated-only in three splits, decrypted with each
// reproduced context.
describe('reproduced encryption context against stored and authenticated-only pairs (spec test plan)', () => {
  const reproducedCases: Array<Record<string, string>> = [
    {},
    { a: 'a' },
    { b: 'b' },
    { a: 'a', b: 'b' },
    { a: 'c' },
    { b: 'c' },
    { a: 'c', b: 'b' },
    { a: 'c', b: 'c' },
    { c: 'c' },
    { a: 'a', c: 'c' },
    { b: 'b', c: 'c' },
    { a: 'a', b: 'b', c: 'c' },
  ]
  const messages = [
    { name: 'stored {a, b}', required: [] as string[], passes: ['{}', '{"a":"a"}', '{"b":"b"}', '{"a":"a","b":"b"}'] },
    { name: 'stored {a}, not stored {b}', required: ['b'], passes: ['{"b":"b"}', '{"a":"a","b":"b"}'] },
    { name: 'not stored {a, b}', required: ['a', 'b'], passes: ['{"a":"a","b":"b"}'] },
  ]
  for (const kind of ['rsa', 'aes'] as const) {
    for (const message of messages) {
      it.each(reproducedCases.map((reproduced) => [JSON.stringify(reproduced), reproduced] as const))(
        `${kind} keyring, message ${message.name}, reproduced %s`,
        async (label, reproduced) => {
          const keyring = kind === 'rsa' ? rsaKeyring() : aesKeyring()
          const cmm =
            message.required.length === 0
              ? new DefaultMaterialsManager(keyring)
              : new RequiredEncryptionContextMaterialsManager({ requiredKeys: message.required, keyring })
          const { ciphertext } = await encrypt(cmm, 'asdf', { encryptionContext: { a: 'a', b: 'b' }, algorithmSuite: 0x0478 })
          const outcome = decrypt(keyring, ciphertext, { encryptionContext: reproduced })
          if (message.passes.includes(label)) expect(text((await outcome).plaintext)).toBe('asdf')
          else await expect(outcome).rejects.toMatchObject({ code: expect.stringMatching(/ENCRYPTION_CONTEXT_MISMATCH|HEADER_AUTHENTICATION_FAILED|NO_DECRYPTABLE_KEY/) })
        },
      )
    }
  }
})

describe('materials managers that break the required-context contract are refused', () => {
  const keyring = aesKeyring()
  const base = new DefaultMaterialsManager(keyring)

  it('an underlying manager that drops the required keys on encrypt', async () => {
    const dataKeys: Uint8Array[] = []
    const dropping: MaterialsManager = {
      getEncryptionMaterials: async (request, backend) => {
        const { requiredEncryptionContextKeys: _dropped, ...rest } = request
        const materials = await base.getEncryptionMaterials(rest, backend)
        dataKeys.push(materials.plaintextDataKey)
        return materials
      },
      getDecryptionMaterials: (request, backend) => base.getDecryptionMaterials(request, backend),
    }
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], materialsManager: dropping })
    const failure = await rejectionOf(encrypt(cmm, 'x', { encryptionContext: context }))
    expect(failure).toBeInstanceOf(ConfigurationError)
    expect((failure as Error).message).toBe('The underlying materials manager dropped required encryption context key "tenant": the message would store its value.')
    const two = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant', 'purpose'], materialsManager: dropping })
    expect(((await rejectionOf(encrypt(two, 'x', { encryptionContext: context }))) as Error).message).toBe(
      'The underlying materials manager dropped required encryption context keys "tenant", "purpose": the message would store their values.',
    )
    // The data keys of the refused materials are zeroed: no message will use them.
    expect(dataKeys.map((key) => key.length > 0 && isAllZero(key))).toEqual([true, true])
  })

  it('an underlying manager that changes a required value on decrypt', async () => {
    const cmmOk = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring })
    const { ciphertext } = await encrypt(cmmOk, 'x', { encryptionContext: context })
    const dataKeys: Uint8Array[] = []
    const changing: MaterialsManager = {
      getEncryptionMaterials: (request, backend) => base.getEncryptionMaterials(request, backend),
      getDecryptionMaterials: async (request, backend) => {
        const materials = await base.getDecryptionMaterials(request, backend)
        dataKeys.push(materials.plaintextDataKey)
        return { ...materials, encryptionContext: { ...materials.encryptionContext, tenant: 'changed' } }
      },
    }
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], materialsManager: changing })
    const failure = await rejectionOf(decrypt(cmm, ciphertext, { encryptionContext: { tenant: 'acme-corp' } }))
    expect(failure).toBeInstanceOf(ConfigurationError)
    expect((failure as Error).message).toBe('The underlying materials manager did not keep required encryption context key "tenant" with the value the caller gave.')
    expect(dataKeys.map((key) => key.length > 0 && isAllZero(key))).toEqual([true])
  })

  it('encryption materials naming a required key the context lacks, a reserved one, or one that is no non-empty string', async () => {
    const cases: [unknown, string][] = [
      [['nope'], 'the encryption context has no key "nope", which is required.'],
      [['aws-crypto-public-key'], '"aws-crypto-public-key" uses the reserved prefix "aws-crypto-" and cannot be left out of the message.'],
      [['aws-crypto-tenant'], '"aws-crypto-tenant" uses the reserved prefix "aws-crypto-" and cannot be left out of the message.'],
      // Not iterated as the characters t, e, n...: that it is no array is what is wrong.
      ['tenant', 'requiredEncryptionContextKeys must be an array of strings.'],
      [[''], 'required encryption context keys must be non-empty strings.'],
      [['tenant', 3], 'required encryption context keys must be non-empty strings.'],
    ]
    for (const [requiredEncryptionContextKeys, problem] of cases) {
      const bad: MaterialsManager = {
        getEncryptionMaterials: async (request, backend) => ({
          ...(await base.getEncryptionMaterials(request, backend)),
          requiredEncryptionContextKeys: requiredEncryptionContextKeys as string[],
        }),
        getDecryptionMaterials: (request, backend) => base.getDecryptionMaterials(request, backend),
      }
      const error = await rejectionOf(encrypt(bad, 'x', { encryptionContext: context, algorithmSuite: 0x0578 }))
      expect((error as EnvelopeError).code).toBe('INVALID_ENCRYPTION_CONTEXT')
      expect((error as Error).message).toBe(`The materials manager: ${problem}`)
    }
  })

  it('decryption materials that leave out an unstored pair the caller gave (it would go unauthenticated)', async () => {
    const cmmOk = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring: rsaKeyring() })
    const { ciphertext } = await encrypt(cmmOk, 'x', { encryptionContext: context })
    const forgetful: MaterialsManager = {
      getEncryptionMaterials: (request, backend) => base.getEncryptionMaterials(request, backend),
      getDecryptionMaterials: async (request: DecryptionRequest, backend: CryptoBackend): Promise<CompleteDecryptionMaterials> => {
        const { reproducedEncryptionContext: _ignored, ...rest } = request
        return new DefaultMaterialsManager(rsaKeyring()).getDecryptionMaterials(rest, backend)
      },
    }
    expect(await codeOf(decrypt(forgetful, ciphertext, { encryptionContext: { tenant: 'acme-corp' } }))).toBe('ENCRYPTION_CONTEXT_MISMATCH')
  })

  it('decryption materials whose required value for a stored key differs from the message', async () => {
    const { ciphertext } = await encrypt(keyring, 'x', { encryptionContext: context })
    const contrary: MaterialsManager = {
      getEncryptionMaterials: (request, backend) => base.getEncryptionMaterials(request, backend),
      getDecryptionMaterials: async (request, backend) => {
        const materials = await base.getDecryptionMaterials(request, backend)
        return { ...materials, encryptionContext: { ...materials.encryptionContext, purpose: 'x' }, requiredEncryptionContextKeys: ['purpose'] }
      },
    }
    expect(await codeOf(decrypt(contrary, ciphertext))).toBe('ENCRYPTION_CONTEXT_MISMATCH')
  })

  it('decrypt compares the caller pairs with the stored context before asking any materials manager', async () => {
    const { ciphertext } = await encrypt(keyring, 'x', { encryptionContext: context, algorithmSuite: 0x0478 })
    let asked = 0
    const spy: MaterialsManager = {
      getEncryptionMaterials: (request, backend) => base.getEncryptionMaterials(request, backend),
      getDecryptionMaterials: (request, backend) => {
        asked++
        return base.getDecryptionMaterials(request, backend)
      },
    }
    for (const encryptionContext of [{ purpose: 'other' }, { 'aws-crypto-public-key': 'x' }, { tenant: 'acme-corp', purpose: 'x' }]) {
      expect(await codeOf(decrypt(spy, ciphertext, { encryptionContext }))).toBe('ENCRYPTION_CONTEXT_MISMATCH')
      expect(((await streamDecrypt(spy, ciphertext, encryptionContext)).error as EnvelopeError).code).toBe('ENCRYPTION_CONTEXT_MISMATCH')
    }
    expect(asked).toBe(0)
    for (const encryptionContext of [null, 'x', ['a'], { tenant: 5 }, { '': 'x' }]) {
      expect(await codeOf(decrypt(spy, ciphertext, { encryptionContext: encryptionContext as never }))).toMatch(/INVALID_CONFIGURATION|INVALID_ENCRYPTION_CONTEXT/)
    }
  })

  it('DefaultMaterialsManager refuses required keys the context lacks, and a context already holding the public key, before its keyring runs', async () => {
    let calls = 0
    const counting = new DefaultMaterialsManager({ onEncrypt: (materials, backend) => (calls++, keyring.onEncrypt(materials, backend)), onDecrypt: keyring.onDecrypt.bind(keyring) })
    const suite = (await import('../src/suites.js')).suiteFromOption(0x0478)
    const request = { suite, commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' as const }
    for (const [encryptionContext, requiredEncryptionContextKeys] of [
      [{ a: '1' }, ['b']],
      [{ a: '1' }, ['aws-crypto-x']],
      [{ 'aws-crypto-public-key': 'x' }, []],
    ] as const) {
      const outcome = counting.getEncryptionMaterials({ ...request, encryptionContext, requiredEncryptionContextKeys }, nodeBackend)
      expect(await codeOf(outcome)).toBe('INVALID_ENCRYPTION_CONTEXT')
    }
    expect(calls).toBe(0)
  })

  it('DefaultMaterialsManager on decrypt: compares stored pairs, appends the others as required keys (spec: cmm-interface.md#decrypt-materials)', async () => {
    const { header } = await encrypt(rsaKeyring(), 'x', { encryptionContext: context, algorithmSuite: 0x0478 })
    let calls = 0
    const inner = rsaKeyring()
    const counting = new DefaultMaterialsManager({ onEncrypt: inner.onEncrypt.bind(inner), onDecrypt: (m, e, b) => (calls++, inner.onDecrypt(m, e, b)) })
    const request = {
      suite: (await import('../src/suites.js')).suiteFromOption(0x0478),
      encryptionContext: header.encryptionContext,
      encryptedDataKeys: header.encryptedDataKeys,
      commitmentPolicy: 'REQUIRE_ENCRYPT_REQUIRE_DECRYPT' as const,
    }
    for (const reproducedEncryptionContext of [{ purpose: 'x' }, { 'aws-crypto-extra': 'x' }]) {
      expect(await codeOf(counting.getDecryptionMaterials({ ...request, reproducedEncryptionContext }, nodeBackend))).toBe('ENCRYPTION_CONTEXT_MISMATCH')
    }
    expect(calls).toBe(0)
    const materials = await counting.getDecryptionMaterials({ ...request, reproducedEncryptionContext: { purpose: 'backup', extra: 'v' } }, nodeBackend)
    expect({ ...materials.encryptionContext }).toEqual({ ...context, extra: 'v' })
    expect(materials.requiredEncryptionContextKeys).toEqual(['extra'])
    const none = await counting.getDecryptionMaterials(request, nodeBackend)
    expect(none.requiredEncryptionContextKeys).toEqual([])
  })

  it('the caller may not reproduce a reserved key the message does not store', async () => {
    const { ciphertext } = await encrypt(keyring, 'x', { encryptionContext: context, algorithmSuite: 0x0478 })
    expect(await codeOf(decrypt(keyring, ciphertext, { encryptionContext: { 'aws-crypto-public-key': 'x' } }))).toBe('ENCRYPTION_CONTEXT_MISMATCH')
  })
})

describe('known-answer message built from the specification (node:crypto only)', () => {
  const keyring = () => new RawAesKeyring({ keyNamespace: KAT.keyNamespace, keyName: KAT.keyName, wrappingKey: KAT.wrappingKey })

  it('the builder is deterministic: its bytes are pinned', () => {
    const message = buildKatMessage()
    expect(createHash('sha256').update(message).digest('hex')).toBe(KAT_SHA256)
  })

  it('decrypts with the unstored pair supplied, and reports it as authenticated', async () => {
    const { plaintext, header, encryptionContext } = await decrypt(keyring(), buildKatMessage(), { encryptionContext: { tenant: 'acme-corp' } })
    expect(Buffer.from(plaintext).equals(KAT.plaintext)).toBe(true)
    expect({ ...header.encryptionContext }).toEqual({ department: 'finance' })
    expect({ ...encryptionContext }).toEqual(KAT.context)
    const required = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring: keyring() })
    expect(Buffer.from((await decrypt(required, buildKatMessage(), { encryptionContext: { tenant: 'acme-corp' } })).plaintext).equals(KAT.plaintext)).toBe(true)
  })

  it('fails without the pair, with a wrong value, and when the header tag leaves it out', async () => {
    expect(await codeOf(decrypt(keyring(), buildKatMessage()))).toBe('NO_DECRYPTABLE_KEY')
    expect(await codeOf(decrypt(keyring(), buildKatMessage(), { encryptionContext: { tenant: 'acme' } }))).toBe('NO_DECRYPTABLE_KEY')
    // The same pairs all stored: a different header, still readable without reproducing anything.
    const allStored = buildKatMessage({ requiredKeys: [] })
    expect(Buffer.from((await decrypt(keyring(), allStored)).plaintext).equals(KAT.plaintext)).toBe(true)
  })

  it('our encrypt writes exactly these bytes given the same random inputs', async () => {
    const queue = [KAT.dataKey, KAT.wrapIv, KAT.messageId].map((bytes) => new Uint8Array(bytes))
    const deterministic: CryptoBackend = {
      ...nodeBackend,
      randomBytes: (length: number) => {
        const next = queue.shift()
        if (next?.length !== length) throw new Error(`unexpected randomBytes(${length})`)
        return next
      },
    }
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: KAT.requiredKeys, keyring: keyring() })
    const { ciphertext } = await encryptWith(deterministic, cmm, KAT.plaintext, {
      encryptionContext: KAT.context,
      algorithmSuite: KAT.suiteId,
      frameLength: KAT.frameLength,
    })
    expect(Buffer.from(ciphertext).equals(Buffer.from(buildKatMessage()))).toBe(true)
  })
})

/** SHA-256 of the known-answer message (see test/helpers/required-context-kat.ts for its derivation). */
const KAT_SHA256 = '67ab6151c3b65234332b4f83203b7c373e51562e5da86c4945c6d1db51b4bcbc'

describe('required encryption context with AWS KMS and the official SDK', () => {
  let kms: KmsEmulator
  let keyArn: string
  let clientSupplier: ReturnType<typeof defaultKmsClientSupplier>
  const credentials = { accessKeyId: 'AKIDREQUIRED', secretAccessKey: 'required' }
  beforeAll(async () => {
    kms = await startKmsEmulator({ regions: ['us-east-1'] })
    keyArn = kms.createKey({ region: 'us-east-1' }).arn
    clientSupplier = defaultKmsClientSupplier({ clientConfig: { endpoint: kms.endpoint, credentials } })
  })
  afterAll(async () => {
    await kms.close()
  })

  it('KMS binds the unstored pair: the data key decrypts only under the full context', async () => {
    const keyring = new KmsKeyring({ generatorKeyId: keyArn, clientSupplier })
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring })
    const { ciphertext, header } = await encrypt(cmm, 'kms', { encryptionContext: context })
    expect(text((await decrypt(cmm, ciphertext, { encryptionContext: { tenant: 'acme-corp' } })).plaintext)).toBe('kms')
    kms.resetCalls()
    const error = await rejectionOf(decrypt(cmm, ciphertext, { encryptionContext: { tenant: 'evil-corp' } }))
    expect((error as EnvelopeError).code).toBe('NO_DECRYPTABLE_KEY')
    expect((error as Error).message).toMatch(/does not store \("tenant"\)/)
    expect(kms.calls.map((call) => call.errorType)).toEqual(['InvalidCiphertextException'])
    // Straight to the keyring with only the stored context: KMS refuses too.
    const { suiteFromOption } = await import('../src/suites.js')
    const direct = keyring.onDecrypt({ suite: suiteFromOption(header.algorithmSuiteId), encryptionContext: header.encryptionContext }, header.encryptedDataKeys, nodeBackend)
    expect(await codeOf(direct)).toBe('NO_DECRYPTABLE_KEY')
  })

  it('official SDK messages (which store every pair) decrypt through the required manager when the caller reproduces the key', async () => {
    // @aws-crypto/client-node 5.x has no required encryption context (no "requiredEncryptionContextKeys" in its source).
    const official = buildClient(OfficialCommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    const theirs = new KmsKeyringNode({ generatorKeyId: keyArn, clientProvider: getClient(KMS as never, { endpoint: kms.endpoint, credentials }) as never })
    const { result } = await official.encrypt(theirs, 'from official', { encryptionContext: { ...context } })
    const cmm = new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring: new KmsKeyring({ keyIds: [keyArn], clientSupplier }) })
    expect(text((await decrypt(cmm, result, { encryptionContext: { tenant: 'acme-corp' } })).plaintext)).toBe('from official')
    expect(await codeOf(decrypt(cmm, result))).toBe('ENCRYPTION_CONTEXT_MISMATCH')
    expect(await codeOf(decrypt(cmm, result, { encryptionContext: { tenant: 'other' } }))).toBe('ENCRYPTION_CONTEXT_MISMATCH')

    // The other way, the official 5.x reader cannot authenticate a message whose pairs are not all stored.
    const ours = await encrypt(new RequiredEncryptionContextMaterialsManager({ requiredKeys: ['tenant'], keyring: new KmsKeyring({ generatorKeyId: keyArn, clientSupplier }) }), 'x', {
      encryptionContext: context,
    })
    await expect(official.decrypt(theirs, ours.ciphertext)).rejects.toThrow()
  })
})
