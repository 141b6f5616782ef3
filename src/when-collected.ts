// Clean-up for objects a caller may drop without finishing them (a stream let go after an error, say): what they
// registered elsewhere (a signal's listener, a job on the signing thread) is undone once they are collected.

/**
 * Made on first use: an engine without FinalizationRegistry (Hermes, React Native's) must still load the module
 * (null there: nothing is undone on collection; what a dropped stream registered stays until its signal aborts).
 */
let cleanups: FinalizationRegistry<() => void> | null | undefined

function runCleanup(cleanup: () => void): void {
  try {
    cleanup()
  } catch {
    // Thrown from a finalizer, it would end the process.
  }
}

/**
 * Run `cleanup` once `target` has been garbage-collected, unless the returned function is called first. `cleanup`
 * must not refer to `target`, nor be a closure made beside one that does (closures made in one function share
 * what they capture), or `target` is never collected.
 */
export function whenCollected(target: object, cleanup: () => void): () => void {
  cleanups ??= typeof FinalizationRegistry === 'function' ? new FinalizationRegistry(runCleanup) : null
  if (cleanups === null) return () => undefined
  const registry = cleanups
  const token = {}
  registry.register(target, cleanup, token)
  return () => registry.unregister(token)
}
