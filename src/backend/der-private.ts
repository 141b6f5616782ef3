// Reading a PKCS#1 RSAPrivateKey, apart from der.ts: the browser build's first load has der.ts and never needs
// this (only its private-key code, loaded on demand, and the Node build's PKCS1 decryption do).
import { INTEGER, readElement, SEQUENCE } from './der.js'

/** The modulus and exponents of a PKCS#1 RSAPrivateKey (version, n, e, d, ...): TypeError when it is not one. */
export function rsaPrivateKeyParts(rsaPrivateKey: Uint8Array): { modulus: Uint8Array; publicExponent: Uint8Array; privateExponent: Uint8Array } {
  const key = readElement(rsaPrivateKey, 0, SEQUENCE, 'RSAPrivateKey')
  const modulus = readElement(key.content, readElement(key.content, 0, INTEGER, 'version').end, INTEGER, 'modulus')
  const publicExponent = readElement(key.content, modulus.end, INTEGER, 'publicExponent')
  const privateExponent = readElement(key.content, publicExponent.end, INTEGER, 'privateExponent')
  return { modulus: modulus.content, publicExponent: publicExponent.content, privateExponent: privateExponent.content }
}
