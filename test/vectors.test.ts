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
