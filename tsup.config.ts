import { build, type Plugin as EsbuildPlugin } from 'esbuild'
import { defineConfig, type Options } from 'tsup'

// The browser build never loads the AWS SDK unless a KMS keyring calls KMS (a dynamic import the
// application's bundler resolves); the standalone builds leave that import as is, for a page's import map.
const BROWSER_EXTERNAL = ['@aws-sdk/client-kms']

/** What the standalone builds share: the browser entry with its dependencies bundled in, minified (src/standalone.ts gives the classes their names back). */
const STANDALONE = {
  entry: { 'kms-envelope': 'src/standalone.ts' },
  outDir: 'dist/browser',
  format: ['esm' as const],
  platform: 'browser' as const,
  target: 'es2022',
  dts: false,
  sourcemap: true,
  clean: false,
  minify: true,
  noExternal: [/^@noble\//, 'lru-cache'],
  external: BROWSER_EXTERNAL,
}

/**
 * The source files the browser entries reach (kms-envelope/browser's, and kms-envelope/dynamodb's for browsers), as
 * tsup entries keyed by their output path: `src/browser.ts` becomes `index`, the rest keep their place under src/
 * (so the relative imports between them still resolve).
 */
async function browserModules(): Promise<Record<string, string>> {
  const { metafile } = await build({
    entryPoints: ['src/browser.ts', 'src/dynamodb/browser.ts'],
    bundle: true,
    write: false,
    metafile: true,
    platform: 'browser',
    format: 'esm',
    splitting: true,
    outdir: 'dist/browser',
    packages: 'external',
    logLevel: 'silent',
  })
  const modules = Object.keys(metafile.inputs).filter((path) => path.startsWith('src/'))
  return Object.fromEntries(modules.map((path) => [path === 'src/browser.ts' ? 'index' : path.slice('src/'.length, -'.ts'.length), path]))
}

type Plugin = NonNullable<Options['plugins']>[number]

/**
 * The CommonJS build loads its on-demand part and its optional dependencies with `require()` inside a promise,
 * not `import()`: test runners that run CommonJS in a vm context of their own, as Jest does, refuse
 * `import()` there ("A dynamic import callback was invoked without --experimental-vm-modules"), so every decrypt
 * failed under Jest. Written in a `try` block, so that a bundler that meets the build (esbuild) leaves a package
 * that is not installed to fail at run time, on the call that needs it. The source maps keep their lines; on those
 * few lines, columns after the call are off by the added text.
 */
const requireInCommonJs: Plugin = {
  name: 'require-in-commonjs',
  renderChunk(code) {
    if (this.format !== 'cjs') return
    return { code: code.replace(/\bimport\(("[^"]+")\)/g, 'Promise.resolve().then(() => { try { return require($1) } catch (error) { throw error } })') }
  },
}

/** See src/backend/no-noble.ts and src/backend/no-webcrypto.ts. */
const noBrowserBackendInNode: EsbuildPlugin = {
  name: 'no-browser-backend-in-node',
  setup(build) {
    build.onResolve({ filter: /^\.\/noble(-ecdsa)?\.js$/ }, () => ({ path: new URL('./src/backend/no-noble.ts', import.meta.url).pathname }))
    build.onResolve({ filter: /^\.\/backend\/webcrypto-[a-z-]+\.js$/ }, () => ({ path: new URL('./src/backend/no-webcrypto.ts', import.meta.url).pathname }))
  },
}

/**
 * The Node build takes TextEncoder and TextDecoder from node:util where the global ones are missing: Jest's jsdom
 * environment takes them away, and a jsdom setup that resolves packages with the node condition
 * (`customExportConditions`, a common workaround for other packages) loads the Node build there. Through
 * process.getBuiltinModule, which bundlers leave alone.
 */
const NODE_TEXT_CODING = [
  'var { TextEncoder, TextDecoder } = typeof globalThis.TextEncoder === "function" && typeof globalThis.TextDecoder === "function"',
  '  ? globalThis : process.getBuiltinModule("node:util");',
].join('\n')

export default defineConfig(async () => [
  {
    // Named entries keep dist/index.* where it has always been and put the subpaths under dist/dynamodb/ and dist/testing/.
    // The CLI's `#!/usr/bin/env node` line comes from its source file (esbuild keeps an entry's hashbang).
    entry: {
      index: 'src/index.ts',
      'dynamodb/index': 'src/dynamodb/index.ts',
      'testing/index': 'src/testing/index.ts',
      'testing/cli': 'src/testing/cli.ts',
    },
    format: ['esm', 'cjs'],
    // The browser entry's types are made here too, so that only one build cleans and writes .d.ts files.
    dts: {
      entry: {
        index: 'src/index.ts',
        'dynamodb/index': 'src/dynamodb/index.ts',
        'testing/index': 'src/testing/index.ts',
        'testing/cli': 'src/testing/cli.ts',
        'browser/index': 'src/browser.ts',
      },
    },
    sourcemap: true,
    // dist/browser/ belongs to the builds below, which run at the same time.
    clean: ['!browser/**'],
    target: 'node20',
    splitting: true,
    treeshake: true,
    plugins: [requireInCommonJs],
    esbuildPlugins: [noBrowserBackendInNode],
    banner: { js: NODE_TEXT_CODING },
  },
  {
    // kms-envelope/browser (and the "browser" condition of "."): ESM on WebCrypto, one file per source module,
    // not bundled. The application's bundler then sees the modules as they are, drops the ones it does not use
    // (package.json says none has side effects) and splits off what is imported on first use (the @noble
    // fallback, the stream engine, the KMS decrypt side). Bundled into one file, nothing of it could be dropped:
    // an application that only encrypts with KmsRsaKeyring loaded 18.2 KB after gzip instead of 12.
    entry: await browserModules(),
    bundle: false,
    outDir: 'dist/browser',
    format: ['esm'],
    platform: 'browser',
    target: 'es2022',
    dts: false,
    sourcemap: true,
    // The standalone builds below write into dist/browser/ at the same time.
    clean: ['!kms-envelope.iife.*', '!kms-envelope.mjs*', '!cjs/**', '!module/**', '!**/*.d.{ts,cts}'],
  },
  {
    // A standalone script for a <script> tag: global `KmsEnvelope`, @noble bundled in.
    ...STANDALONE,
    entry: { 'kms-envelope.iife': 'src/standalone.ts' },
    format: ['iife'],
    globalName: 'KmsEnvelope',
    // tsup's `external` does not apply to IIFE builds; esbuild's own option does.
    esbuildOptions(options) {
      options.external = BROWSER_EXTERNAL
    },
    outExtension: () => ({ js: '.js' }),
  },
  {
    // The same as a standalone ES module, for <script type="module"> without a bundler: its dependencies bundled
    // in, and what the browser entry imports on first use in chunks beside it, fetched only then.
    ...STANDALONE,
    outDir: 'dist/browser/module',
    clean: true,
    splitting: true,
  },
  {
    // The browser builds for require() (the "require" branch of the "browser" condition of "." and of
    // kms-envelope/dynamodb): test runners that require() with that condition, as Jest does in its jsdom environment,
    // cannot load the ES modules (nor @noble's, which are ES modules only), and webpack and esbuild resolve require()
    // in browser code with the conditions browser and require. The two entries share their modules through chunks
    // beside them, so that an application that require()s both holds one core: one copy of each class, one set of
    // @noble fallbacks. What the browser entry imports on first use is a chunk of its own, require()d then; the AWS
    // SDK is require()d on the first KMS call, as in the Node build.
    ...STANDALONE,
    outDir: 'dist/browser/cjs',
    clean: true,
    format: ['cjs'],
    minify: false,
    // Not minified, so that stack traces in a test read as code, and without a source map (which would add more than
    // a megabyte to the package).
    sourcemap: false,
    // Jest's jsdom environment has no TextEncoder or TextDecoder, which the build makes at load, no Web Streams, and a
    // `crypto` with getRandomValues only (no `subtle`, so no RSA private keys). There, on Node, the build takes
    // Node's own (through process.getBuiltinModule, which bundlers leave alone), as a test setup file would. In a
    // browser there is no `process`, and nothing changes.
    banner: {
      js: [
        'var __fromNode = (name) => globalThis.process?.getBuiltinModule?.(name);',
        'var { TextEncoder, TextDecoder } = typeof globalThis.TextEncoder === "function" && typeof globalThis.TextDecoder === "function"',
        '  ? globalThis : (__fromNode("node:util") ?? globalThis);',
        'var { ReadableStream, TransformStream } = typeof globalThis.TransformStream === "function" ? globalThis : (__fromNode("node:stream/web") ?? globalThis);',
        // Read at each use, as the ES modules read globalThis.crypto: a page may set it up after loading this file.
        'var __platform = { get crypto() { const own = globalThis.crypto; return own?.subtle !== undefined ? own : (__fromNode("node:crypto")?.webcrypto ?? own) } };',
      ].join('\n'),
    },
    external: [...BROWSER_EXTERNAL, '@aws-sdk/client-dynamodb', '@aws-sdk/util-dynamodb'],
    entry: { index: 'src/standalone.ts', dynamodb: 'src/dynamodb/browser.ts' },
    splitting: true,
    // tsup splits CommonJS through rollup when it tree-shakes (as the Node build does); without it, through a
    // transform that rewrites optional chaining and ?? into helper calls.
    treeshake: true,
    esbuildOptions(options) {
      options.define = { ...options.define, 'globalThis.crypto': '__platform.crypto' }
    },
    plugins: [requireInCommonJs],
  },
  {
    // The same as one ES module, every part inside (no import() of its own, only that of the AWS SDK): for a
    // service worker, where import() is not allowed, and bundlers that would split kms-envelope's on-demand parts
    // off into chunks such a worker cannot load. kms-envelope/browser/bundled.
    ...STANDALONE,
    splitting: false,
    outExtension: () => ({ js: '.mjs' }),
  },
])
