// What the Node build has in place of noble.ts and noble-ecdsa.ts, the @noble fallbacks that only the browser
// build's WebCrypto backend loads: tsup.config.ts resolves their imports here in the Node build, so that no @noble
// module is in it, nor in a Node application's bundle of it (modules of the browser backend reach the Node build
// through the on-demand module both share, but nothing there runs them).
throw new Error('kms-envelope: the @noble fallbacks are part of the browser build only.')
