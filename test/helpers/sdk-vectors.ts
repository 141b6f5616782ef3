// Messages written by the official Python, Java and C SDKs and the AWS Encryption CLI, saved by
// `npm run interop:<sdk> -- --save <file>` (scripts/interop.ts) into test/fixtures/official-sdks/, and read by
// test/official-sdk-vectors.test.ts.

/** One file of test/fixtures/official-sdks/: what one SDK wrote, and the keys to read it. */
export interface SdkVectors {
  /** The SDK and its version, as it reported them. */
  writer: string
  /** The raw keys' namespace (each message's provider ID). */
  namespace: string
  /** Base64 AES keys by keyring name (`aes-128`, `aes-192`, `aes-256`), and `rsa-private`, a PKCS #8 PEM. */
  keys: Record<string, string>
  /**
   * For messages under AWS KMS keys: the KMS emulator's Regions and keys (its `statePath` file), the key ARN of
   * keyring `kms`, and of `kms-mrk` the multi-Region key it encrypted with and the replica it decrypts through.
   */
  kms?: { regions: string[]; state: unknown; key: string; mrk: string; replica: string }
  /** Every message's encryption context, its signing key left out. */
  context: Record<string, string>
  /** Base64 plaintexts by message shape. */
  plaintexts: Record<string, string>
  messages: SdkMessage[]
}

export interface SdkMessage {
  suite: number
  /**
   * `aes-<bits>`, `rsa-<padding>` (a kms-envelope `RsaPadding`), `multi` (generator `aes-256`, child `rsa-OAEP-SHA256`),
   * `kms` or `kms-mrk`.
   */
  keyring: string
  /** Its shape: a key of `plaintexts`. */
  shape: string
  /** 0 when the SDK wrote it non-framed. */
  frameLength: number
  ciphertext: string
}
