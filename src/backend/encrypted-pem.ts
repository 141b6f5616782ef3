// Its own module, not der.ts: only code that reads private keys uses it, and a browser page that only encrypts
// loads der.ts first (with everything in it that any module uses).

/** A PEM private key encrypted with a passphrase: PKCS#8 (`ENCRYPTED PRIVATE KEY`) or OpenSSL's legacy headers. */
export function isEncryptedPem(input: unknown): boolean {
  return typeof input === 'string' && /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type:\s*4,\s*ENCRYPTED/.test(input)
}
