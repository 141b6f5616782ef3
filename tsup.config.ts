import { defineConfig } from 'tsup'

export default defineConfig({
  // Named entries keep dist/index.* where it has always been and put the testing subpath under dist/testing/.
  // The CLI's `#!/usr/bin/env node` line comes from its source file (esbuild keeps an entry's hashbang).
  entry: {
    index: 'src/index.ts',
    'testing/index': 'src/testing/index.ts',
    'testing/cli': 'src/testing/cli.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: true,
  treeshake: true,
})
