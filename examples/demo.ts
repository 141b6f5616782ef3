/**
 * The main demo: encrypt and decrypt a message with a raw AES keyring and show its header.
 * Run it with `npm run demo`.
 */
import { randomBytes } from 'node:crypto'
import { decrypt, encrypt, RawAesKeyring } from '../src/index.js'

async function main(): Promise<void> {
  // A real application loads its wrapping key from a secret store; the demo makes a fresh one.
  const keyring = new RawAesKeyring({ keyNamespace: 'demo', keyName: 'wrapping-key-1', wrappingKey: randomBytes(32) })
  const encryptionContext = { purpose: 'kms-envelope demo', tenant: 'example' }

  const { ciphertext, header } = await encrypt(keyring, 'Hello from kms-envelope!', { encryptionContext })
  console.log(`Encrypted ${ciphertext.length} bytes with suite 0x${header.algorithmSuiteId.toString(16).padStart(4, '0')}.`)
  console.log('Header:')
  console.log(`  version:            ${header.version}`)
  console.log(`  message ID:         ${Buffer.from(header.messageId).toString('hex')}`)
  console.log(`  content type:       ${header.contentType}, frame length ${header.frameLength}`)
  console.log('  encryption context:')
  for (const [key, value] of Object.entries(header.encryptionContext)) console.log(`    ${key} = ${value}`)
  for (const edk of header.encryptedDataKeys) {
    console.log(`  encrypted data key: provider "${edk.providerId}", ${edk.ciphertext.length} bytes`)
  }

  // Decrypt checks that the context we expect is the one the message carries.
  const { plaintext } = await decrypt(keyring, ciphertext, { encryptionContext })
  console.log(`Decrypted: ${new TextDecoder().decode(plaintext)}`)
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
