// Module customization hooks (run on the loader thread in Node 20): record every URL the ESM
// loader resolves. The child reads the list back by importing the special specifier below.
// CommonJS require() calls do not pass through these hooks on Node 20; the child adds
// Module._cache for those.

const DUMP = 'bench-dump:resolved'
const resolved = new Set()

export async function resolve(specifier, context, nextResolve) {
  if (specifier === DUMP) return { url: DUMP, shortCircuit: true }
  const result = await nextResolve(specifier, context)
  resolved.add(result.url)
  return result
}

export async function load(url, context, nextLoad) {
  if (url === DUMP) {
    return { format: 'module', shortCircuit: true, source: `export default ${JSON.stringify([...resolved])}` }
  }
  return nextLoad(url, context)
}
