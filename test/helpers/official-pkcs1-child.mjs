// Decrypts one message with the official AWS Encryption SDK (@aws-crypto/client-node) and prints the result.
//
// Run as:  node --security-revert=CVE-2023-46809 test/helpers/official-pkcs1-child.mjs < input.json (Node 20; from
// Node 22 on, without the option: see pkcs1NodeOptions in official.ts)
//
// Node refuses RSA PKCS1 v1.5 decryption (crypto.privateDecrypt with RSA_PKCS1_PADDING) unless started with that
// flag, and NODE_OPTIONS does not accept it; the official RSA keyring needs it for PKCS1 data keys. Used by
// test/helpers/official.ts (officialDecryptInChild).
//
// stdin (JSON):
//   { ciphertext: base64, commitmentPolicy: string, maxEncryptedDataKeys: number | false, keyring: WireKeyring }
//   WireKeyring = { kind: 'aes', keyNamespace, keyName, bits: 128|192|256, key: base64 }
//               | { kind: 'rsa', keyNamespace, keyName, padding: 'OAEP-SHA1'|…|'PKCS1', publicKey: PEM, privateKey: PEM }
//               | { kind: 'multi', generator: WireKeyring, children: WireKeyring[] }
// stdout: one line 'OFFICIAL-RESULT ' + JSON (Node also prints its security-revert warning on stdout), exit 0:
//   { plaintext: base64, header: { version, algorithmSuiteId, messageId: base64, encryptionContext,
//     encryptedDataKeys: [{ providerId, providerInfo: base64, ciphertext: base64 }], contentType, frameLength } }
// On failure: 'OFFICIAL-RESULT ' + JSON { error } on stdout, exit 1.
import { constants } from 'node:crypto'
import {
  buildClient,
  CommitmentPolicy,
  MultiKeyringNode,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  RawRsaKeyringNode,
} from '@aws-crypto/client-node'

const AES_WRAPPING = {
  128: RawAesWrappingSuiteIdentifier.AES128_GCM_IV12_TAG16_NO_PADDING,
  192: RawAesWrappingSuiteIdentifier.AES192_GCM_IV12_TAG16_NO_PADDING,
  256: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
}

const RSA_PADDING = {
  'OAEP-SHA1': { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
  'OAEP-SHA256': { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
  'OAEP-SHA384': { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha384' },
  'OAEP-SHA512': { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha512' },
  PKCS1: { padding: constants.RSA_PKCS1_PADDING },
}

function buildKeyring(wire) {
  switch (wire.kind) {
    case 'aes':
      return new RawAesKeyringNode({
        keyNamespace: wire.keyNamespace,
        keyName: wire.keyName,
        unencryptedMasterKey: new Uint8Array(Buffer.from(wire.key, 'base64')),
        wrappingSuite: AES_WRAPPING[wire.bits],
        utf8Sorting: true,
      })
    case 'rsa': {
      const padding = RSA_PADDING[wire.padding]
      if (!padding) throw new Error(`unknown RSA padding ${wire.padding}`)
      return new RawRsaKeyringNode({
        keyNamespace: wire.keyNamespace,
        keyName: wire.keyName,
        rsaKey: { publicKey: wire.publicKey, privateKey: wire.privateKey },
        ...padding,
      })
    }
    case 'multi':
      return new MultiKeyringNode({
        generator: buildKeyring(wire.generator),
        children: wire.children.map(buildKeyring),
      })
    default:
      throw new Error(`unknown keyring kind ${wire.kind}`)
  }
}

async function readStdin() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return Buffer.concat(chunks).toString('utf8')
}

const b64 = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')

try {
  const input = JSON.parse(await readStdin())
  const policy = CommitmentPolicy[input.commitmentPolicy]
  if (!policy) throw new Error(`unknown commitment policy ${input.commitmentPolicy}`)
  const { decrypt } = buildClient({ commitmentPolicy: policy, maxEncryptedDataKeys: input.maxEncryptedDataKeys ?? false })
  const { plaintext, messageHeader: h } = await decrypt(buildKeyring(input.keyring), Buffer.from(input.ciphertext, 'base64'))
  const output = {
    plaintext: b64(plaintext),
    header: {
      version: h.version,
      algorithmSuiteId: h.suiteId,
      messageId: b64(h.messageId),
      encryptionContext: { ...h.encryptionContext },
      encryptedDataKeys: h.encryptedDataKeys.map((edk) => ({
        providerId: edk.providerId,
        providerInfo: b64(edk.rawInfo ?? Buffer.from(edk.providerInfo, 'utf8')),
        ciphertext: b64(edk.encryptedDataKey),
      })),
      // Official ContentType: NO_FRAMING = 1, FRAMED_DATA = 2.
      contentType: h.contentType === 2 ? 'framed' : 'non-framed',
      frameLength: h.frameLength,
    },
  }
  process.stdout.write(`\nOFFICIAL-RESULT ${JSON.stringify(output)}\n`)
} catch (error) {
  process.stdout.write(`\nOFFICIAL-RESULT ${JSON.stringify({ error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) })}\n`)
  process.exitCode = 1
}
