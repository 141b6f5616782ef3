import { defineConfig } from 'tsup'

// The browser build never loads the AWS SDK unless a KMS keyring calls KMS (a dynamic import the
// application's bundler resolves); the IIFE leaves that import as is, so a `<script>` page passes its own client.
const BROWSER_EXTERNAL = ['@aws-sdk/client-kms']

export default defineConfig([
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
  },
  {
    // kms-envelope/browser (and the "browser" condition of "."): ESM on WebCrypto, with the @noble fallback,
    // the stream engine and the KMS decrypt side in chunks loaded only when used.
    entry: { index: 'src/browser.ts' },
    outDir: 'dist/browser',
    format: ['esm'],
    platform: 'browser',
    target: 'es2022',
    dts: false,
    sourcemap: true,
    clean: ['!kms-envelope.iife.*', '!**/*.d.{ts,cts}'],
    splitting: true,
    treeshake: true,
    external: BROWSER_EXTERNAL,
  },
  {
    // A standalone script for a <script> tag: global `KmsEnvelope`, @noble bundled in, minified (src/iife.ts gives
    // the classes their names back).
    entry: { 'kms-envelope.iife': 'src/iife.ts' },
    outDir: 'dist/browser',
    format: ['iife'],
    globalName: 'KmsEnvelope',
    platform: 'browser',
    target: 'es2022',
    dts: false,
    sourcemap: true,
    clean: false,
    minify: true,
    // tsup's `external` does not apply to IIFE builds; esbuild's own option does.
    esbuildOptions(options) {
      options.external = BROWSER_EXTERNAL
    },
    outExtension: () => ({ js: '.js' }),
  },
])
