// What the Node build has in place of noble.ts and noble-ecdsa.ts, the @noble fallbacks that only the browser
// build's WebCrypto backend loads: tsup.config.ts resolves their imports here in the Node build, so that no @noble
// module is in it, nor in a Node application's bundle of it, should a module of the browser backend reach the Node
// build again (those the on-demand module shares are replaced too: no-webcrypto.ts).
throw new Error('kms-envelope: the @noble fallbacks are part of the browser build only.')
