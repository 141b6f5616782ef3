// Import cost of one package in a fresh process.
//   node bench/import-child.mjs <specifier>                       -> {"ms": ...}
//   node --import ./bench/lib/import-hooks-register.mjs bench/import-child.mjs <specifier> --count
//                                                                  -> {"ms": ..., "modules": {...}}
// This file sits inside the project so that `kms-envelope` resolves by package self-reference
// (package.json "name" + "exports"); if that fails it falls back to the absolute dist path.
// Timing runs must not use --count: the hooks run on a separate loader thread and slow imports.

const specifier = process.argv[2]
const count = process.argv.includes('--count')

let resolvedVia = 'specifier'
let t0 = performance.now()
let ms
try {
  await import(specifier)
  ms = performance.now() - t0
} catch (err) {
  if (specifier !== 'kms-envelope') throw err
  const fallback = new URL('../dist/index.js', import.meta.url).href
  resolvedVia = `fallback ${fallback} (self-reference failed: ${err.code ?? err.message})`
  t0 = performance.now()
  await import(fallback)
  ms = performance.now() - t0
}

const result = { specifier, ms, resolvedVia }

if (count) {
  const { default: Module } = await import('node:module')
  const { fileURLToPath } = await import('node:url')
  const { sep } = await import('node:path')
  const { default: esmUrls } = await import('bench-dump:resolved')
  const benchDir = fileURLToPath(new URL('.', import.meta.url))
  const files = new Set()
  const builtins = new Set()
  for (const url of esmUrls) {
    if (url.startsWith('node:')) builtins.add(url)
    else if (url.startsWith('file:')) files.add(fileURLToPath(url))
  }
  for (const path of Object.keys(Module._cache)) files.add(path)
  for (const f of [...files]) if (f.startsWith(benchDir)) files.delete(f)
  const packages = {}
  for (const f of files) {
    const i = f.lastIndexOf(`${sep}node_modules${sep}`)
    let pkg = '(project)'
    if (i >= 0) {
      const parts = f.slice(i + 14).split(sep)
      pkg = parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]
    }
    packages[pkg] = (packages[pkg] ?? 0) + 1
  }
  result.modules = {
    files: files.size,
    esmResolved: esmUrls.filter((u) => u.startsWith('file:')).length,
    cjsCached: Object.keys(Module._cache).length,
    builtins: builtins.size,
    packages,
    awsSdk: [...files].filter((f) => f.includes(`${sep}@aws-sdk${sep}`)),
    list: [...files],
  }
}

process.stdout.write(JSON.stringify(result) + '\n')
