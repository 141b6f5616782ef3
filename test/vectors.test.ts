import { describe, expect, it } from 'vitest'
import { decrypt, EnvelopeError } from '../src/index.js'
import { runModuleScript } from './helpers/fixtures.js'
import { buildKeyring, manifest, readFixture } from './helpers/vectors.js'

const positives = manifest.vectors.filter((vector) => vector.expect === 'success')
const negatives = manifest.vectors.filter((vector) => vector.expect === 'error')

describe('official JavaScript SDK vectors', () => {
  it('the manifest has both kinds of vector', () => {
    expect(positives.length).toBeGreaterThanOrEqual(68)
    expect(negatives.length).toBeGreaterThanOrEqual(5)
  })

  describe.each(positives.map((vector) => [vector.id, vector] as const))('%s', (_id, vector) => {
    const ciphertext = readFixture(vector.ciphertext)
    const expected = readFixture(vector.plaintext as string)

    it.each(vector.decryptKeyrings.map((spec, index) => [index, spec] as const))('decrypts with keyring %i', async (_index, spec) => {
      const { plaintext, header } = await decrypt(buildKeyring(spec), ciphertext, {
        commitmentPolicy: vector.commitmentPolicy,
        encryptionContext: vector.encryptionContext ?? {},
      })
      expect(Buffer.from(plaintext).equals(Buffer.from(expected))).toBe(true)
      expect(header.encryptionContext).toEqual(vector.expectedEncryptionContext)
      expect(header.algorithmSuiteId).toBe(Number(vector.suiteId))
      expect(header.contentType).toBe(vector.contentType)
      expect(header.frameLength).toBe(vector.contentType === 'framed' ? vector.frameLength : 0)
      expect(header.version).toBe(vector.messageFormatVersion)
      expect(header.encryptedDataKeys.map((edk) => edk.providerId)).toEqual(vector.encryptedDataKeys?.map((edk) => edk.providerId))
    })
  })

  // Messages whose raw AES keys older releases wrapped with the context sorted by localeCompare, in the writer's
  // (en-US) collation: a process in another locale reads them too (Thai once read none of the mixed-case ones).
  it.each(['th_TH.UTF-8', 'da_DK.UTF-8'])('every one decrypts in a process whose locale is %s', async (locale) => {
    const script = `
      const { decrypt } = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)})
      const { buildKeyring, manifest, readFixture } = await import(${JSON.stringify(new URL('./helpers/vectors.ts', import.meta.url).href)})
      const failed = []
      let runs = 0
      for (const vector of manifest.vectors.filter((vector) => vector.expect === 'success')) {
        for (const [index, spec] of vector.decryptKeyrings.entries()) {
          runs++
          const options = { commitmentPolicy: vector.commitmentPolicy, encryptionContext: vector.encryptionContext ?? {} }
          await decrypt(buildKeyring(spec), readFixture(vector.ciphertext), options).catch((error) => failed.push(vector.id + ' ' + index + ': ' + error.code))
        }
      }
      console.log(JSON.stringify({ locale: new Intl.Collator().resolvedOptions().locale, runs, failed }))`
    const { locale: resolved, runs, failed } = await runModuleScript<{ locale: string; runs: number; failed: string[] }>(script, { LC_ALL: locale, LANG: locale })
    expect(resolved).toBe(locale.slice(0, 5).replace('_', '-'))
    expect(runs).toBe(positives.reduce((total, vector) => total + vector.decryptKeyrings.length, 0))
    expect(failed).toEqual([])
  })

  // An older release in a process of another locale (the official SDK sorted by the runtime's own collation)
  // wrapped its raw AES keys in that locale's order: such a process reads them, after the spec and en-US orders.
  it('a key wrapped with the context in the writer\'s own locale order (Danish) decrypts in a process of that locale; another order does not', async () => {
    const script = `
      const { createCipheriv, randomBytes } = await import('node:crypto')
      const { decrypt, encrypt, RawAesKeyring } = await import(${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)})
      const wrappingKey = new Uint8Array(32).fill(7)
      const u16 = (n) => Buffer.of(n >> 8, n & 0xff)
      const aadIn = (keys) => Buffer.concat([u16(keys.length), ...keys.flatMap((key) => [u16(key.length), Buffer.from(key), u16(1), Buffer.from('v')])])
      // A writer as older releases were: AES-GCM of the data key, bound to the context serialized in its order.
      const writerIn = (keys) => ({
        async onEncrypt(materials) {
          const dataKey = randomBytes(materials.suite.keyLength)
          const iv = randomBytes(12)
          const cipher = createCipheriv('aes-256-gcm', wrappingKey, iv).setAAD(aadIn(keys))
          const ciphertext = Buffer.concat([cipher.update(dataKey), cipher.final(), cipher.getAuthTag()])
          const providerInfo = Buffer.concat([Buffer.from('key-1'), Buffer.of(0, 0, 0, 128, 0, 0, 0, 12), iv])
          return { ...materials, plaintextDataKey: new Uint8Array(dataKey), encryptedDataKeys: [{ providerId: 'test', providerInfo, ciphertext }] }
        },
        async onDecrypt(materials) { return materials },
      })
      const keyring = new RawAesKeyring({ keyNamespace: 'test', keyName: 'key-1', wrappingKey })
      const outcomes = []
      // The spec's byte order, en-US's, Danish (aa after z), and one no collation gives.
      for (const keys of [['Zeta', 'aa', 'z'], ['aa', 'z', 'Zeta'], ['z', 'Zeta', 'aa'], ['aa', 'Zeta', 'z']]) {
        const { ciphertext } = await encrypt(writerIn(keys), 'hello', { encryptionContext: { aa: 'v', z: 'v', Zeta: 'v' }, algorithmSuite: 0x0478 })
        outcomes.push(await decrypt(keyring, ciphertext).then(({ plaintext }) => Buffer.from(plaintext).toString(), (error) => error.code))
      }
      console.log(JSON.stringify(outcomes))`
    expect(await runModuleScript(script, { LC_ALL: 'da_DK.UTF-8', LANG: 'da_DK.UTF-8' })).toEqual(['hello', 'hello', 'hello', 'NO_DECRYPTABLE_KEY'])
  })

  it.each(negatives.map((vector) => [vector.id, vector] as const))('rejects %s', async (_id, vector) => {
    const ciphertext = readFixture(vector.ciphertext)
    for (const spec of vector.decryptKeyrings) {
      const error = await decrypt(buildKeyring(spec), ciphertext, { commitmentPolicy: vector.commitmentPolicy }).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      expect(error).toBeInstanceOf(EnvelopeError)
    }
  })
})
