// What the Node build has in place of the WebCrypto backend's modules that the on-demand module (on-demand.ts)
// re-exports for the browser build: tsup.config.ts resolves them here in the Node build, whose backend is
// node:crypto and never calls them, so that a Node application neither ships nor parses them.
function browserOnly(): never {
  throw new Error('kms-envelope: the WebCrypto backend is part of the browser build only.')
}

export const importPrivateKey = browserOnly
export const publicSpki = browserOnly
export const rsaDecrypt = browserOnly
export const generateSigningKey = browserOnly
export const importVerificationKey = browserOnly
export const signMessage = browserOnly
export const verifyMessage = browserOnly
export const webCryptoOpen = browserOnly
