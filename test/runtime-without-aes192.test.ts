// A runtime whose node:crypto has no AES-192-GCM (Deno's, at 2.9: getCiphers() lists aes-128-gcm and aes-256-gcm
// only, and createCipheriv throws "Unknown cipher"). This file's node:crypto lists no aes-192-gcm; the rest of it is
// Node's own, so what refuses here is kms-envelope's check, not the platform.
import { describe, expect, it, vi } from 'vitest'
import * as browser from '../src/browser.js'
import { decrypt, encrypt, MultiKeyring, NoDecryptableKeyError, RawAesKeyring, UnsupportedOperationError } from '../src/index.js'
import { rejectionOf } from './helpers/fixtures.js'

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:crypto')>()
  return { ...actual, getCiphers: () => actual.getCiphers().filter((name) => name !== 'aes-192-gcm') }
})

const keyring = (name: string, bytes: number) => new RawAesKeyring({ keyNamespace: 'runtime', keyName: name, wrappingKey: new Uint8Array(bytes).fill(bytes) })
const AES_256 = keyring('aes-256', 32)
const AES_192 = keyring('aes-192', 24)
const NON_COMMITTING = { commitmentPolicy: 'FORBID_ENCRYPT_ALLOW_DECRYPT' } as const

function expectNamed(error: unknown): void {
  expect(error).toBeInstanceOf(UnsupportedOperationError)
  expect(error).toMatchObject({ code: 'UNSUPPORTED_OPERATION' })
  expect((error as Error).message).toContain("This runtime's node:crypto has no aes-192-gcm")
}

describe('a runtime whose node:crypto has no aes-192-gcm', () => {
  it.each([
    ['0x0046', 0x0046],
    ['0x0146', 0x0146],
    ['0x0346', 0x0346],
  ])('refuses suite %s by name, on encrypt', async (_name, suite) => {
    expectNamed(await rejectionOf(encrypt(AES_256, 'data', { algorithmSuite: suite, ...NON_COMMITTING })))
  })

  it('refuses a 24-byte raw AES wrapping key by name', async () => {
    expectNamed(await rejectionOf(encrypt(AES_192, 'data')))
  })

  it('still runs the suites and keys with 128- and 256-bit AES', async () => {
    for (const suite of [0x0014, 0x0078, 0x0114, 0x0178, 0x0214, 0x0378, 0x0478, 0x0578]) {
      for (const wrapping of [keyring('aes-128', 16), AES_256]) {
        const options = suite < 0x0400 ? { algorithmSuite: suite, ...NON_COMMITTING } : { algorithmSuite: suite }
        const { ciphertext } = await encrypt(wrapping, 'data', options)
        const { plaintext } = await decrypt(wrapping, ciphertext, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })
        expect(new TextDecoder().decode(plaintext)).toBe('data')
      }
    }
  })

  it('on decrypt: a message of an AES-192 suite is refused by name; a 24-byte keyring is a cause, and a later keyring is tried', async () => {
    // Written as another runtime would: with the browser build, on WebCrypto and @noble (this file's mock is for
    // node:crypto only).
    const inBrowser = (name: string, bytes: number) => new browser.RawAesKeyring({ keyNamespace: 'runtime', keyName: name, wrappingKey: new Uint8Array(bytes).fill(bytes) })
    const aes192Suite = (await browser.encrypt(inBrowser('aes-256', 32), 'suite', { algorithmSuite: 0x0146, ...NON_COMMITTING })).ciphertext
    const both = new browser.MultiKeyring({ generator: inBrowser('aes-192', 24), children: [inBrowser('aes-256', 32)] })
    const aes192Wrapped = (await browser.encrypt(both, 'wrapped')).ciphertext

    expectNamed(await rejectionOf(decrypt(AES_256, aes192Suite, { commitmentPolicy: 'REQUIRE_ENCRYPT_ALLOW_DECRYPT' })))
    const onlyAes192 = await rejectionOf(decrypt(AES_192, aes192Wrapped))
    expect(onlyAes192).toBeInstanceOf(NoDecryptableKeyError)
    expect((onlyAes192 as Error).message).toContain("This runtime's node:crypto has no aes-192-gcm")
    const { plaintext } = await decrypt(new MultiKeyring({ children: [AES_192, AES_256] }), aes192Wrapped)
    expect(new TextDecoder().decode(plaintext)).toBe('wrapped')
  })
})
