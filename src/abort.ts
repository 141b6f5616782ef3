// The `signal` option of encrypt, decrypt, their streams and the DynamoDB item calls. The browser build's one-shot
// calls reach this module on demand (only when given a signal), so a page that never passes one does not download it.
import { AbortedError, ConfigurationError } from './errors.js'
import { whenCollected } from './when-collected.js'

/** The `signal` option: an AbortSignal, or none (undefined or null). */
export function abortSignalOption(signal: unknown): AbortSignal | undefined {
  if (signal === undefined || signal === null) return undefined
  const candidate = signal as Partial<AbortSignal>
  if (typeof candidate.addEventListener !== 'function' || typeof candidate.aborted !== 'boolean') {
    throw new ConfigurationError(`signal must be an AbortSignal (an AbortController's signal); got ${typeof signal}.`)
  }
  return signal as AbortSignal
}

/**
 * The `signal` of a call's options when they have one of their own: one inherited (set on Object.prototype by a
 * polluting bug elsewhere, say) is not read, as no inherited option is.
 */
export function ownSignal(options: unknown): unknown {
  return typeof options === 'object' && options !== null && Object.prototype.hasOwnProperty.call(options, 'signal')
    ? (options as { signal?: unknown }).signal
    : undefined
}

/** The error of an aborted call or stream (`what`: 'The stream', …); the signal's reason is its cause. */
export function abortedError(what: string, signal: AbortSignal): AbortedError {
  return new AbortedError(`${what} was aborted.`, { cause: signal.reason })
}

/**
 * Stop the work on the data keys once `signal` aborted: a keyring that tries one data key after another (or a
 * MultiKeyring, one keyring after another) tries no more, and no message key is made from a data key that came
 * late. The caller (a call under `abortable`, a stream) has its own ABORTED error already; this one reaches only
 * code that called a materials manager or keyring itself.
 */
export function stopIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedError('The work on the data keys', signal)
}

/**
 * Run a one-shot call (`encrypt`, `decrypt`, `encryptItem`, …: `work`) under its `signal` option. An abort before it
 * settles rejects at once with `ABORTED`; one that came before the call rejects before anything runs. The signal
 * also reaches the materials manager and the keyrings in their request (KMS keyrings cancel their requests); what
 * `work` still returns after an abort goes to `dropLate` (decrypt zeroes the plaintext).
 */
export function abortable<T>(
  option: unknown,
  call: string,
  work: () => Promise<T>,
  dropLate: (late: T) => void = () => undefined,
): Promise<T> {
  const what = `The ${call} call`
  return new Promise<T>((resolve, reject) => {
    const signal = abortSignalOption(option) as AbortSignal // a throw here rejects the call
    if (signal.aborted) {
      reject(abortedError(what, signal))
      return
    }
    let aborted = false
    // Held strongly, unlike a stream's watcher: a call lets go of the signal when it settles, and a WeakRef and a
    // finalizer cost about 2 µs, a tenth of a small message's encrypt.
    const detach = watch(signal, () => {
      aborted = true
      reject(abortedError(what, signal))
    })
    let running: Promise<T>
    try {
      running = work()
    } catch (error) {
      detach()
      throw error // rejects this promise
    }
    running.then(
      (result) => {
        detach()
        if (aborted) dropLate(result)
        else resolve(result)
      },
      (error: unknown) => {
        detach()
        reject(error) // no effect once aborted: the call has already rejected
      },
    )
  })
}

/**
 * Call `onAbort` when `signal` aborts (at once if it has). Returns a function that detaches it (and returns
 * `onAbort`), which the stream must keep: it keeps `onAbort`, which the signal holds only weakly. A signal can
 * outlive many streams (a server's, passed to every request's), and one dropped unfinished, neither closed nor
 * aborted, would otherwise be kept by its listener for good; once such a stream is collected, it is forgotten.
 */
export function watchAbort(signal: AbortSignal | undefined, onAbort: () => void): () => unknown {
  if (signal === undefined) return () => undefined
  if (signal.aborted) {
    onAbort()
    return () => undefined
  }
  const unwatch = watch(signal, new WeakRef(onAbort))
  const forget = whenCollected(onAbort, unwatch)
  return () => {
    unwatch()
    forget()
    // A use of `onAbort`, which keeps it alive as long as the stream keeps this function. (It was `void onAbort`,
    // which minifiers drop as a statement without effect: in minified builds the signal then held `onAbort` only
    // weakly, and an abort after a garbage collection went unheard.)
    return onAbort
  }
}

/** What to call on abort: a function, or a stream's, held weakly. */
type AbortWatcher = (() => void) | WeakRef<() => void>

/**
 * What watches each signal. A signal gets one listener however many streams and calls watch it: with one listener
 * each, eleven streams at once on a shared signal made Node warn of a leak (MaxListenersExceededWarning).
 */
const watchers = new WeakMap<AbortSignal, { readonly watching: Set<AbortWatcher>; readonly listener: () => void }>()

/**
 * Add `watcher` to what `signal` calls on abort; returns the function that takes it off. Made apart from
 * `watchAbort` so that it does not share `onAbort` (see `whenCollected`).
 */
function watch(signal: AbortSignal, watcher: AbortWatcher): () => void {
  let watched = watchers.get(signal)
  if (watched === undefined) {
    const watching = new Set<AbortWatcher>()
    const listener = (): void => {
      watchers.delete(signal)
      for (const each of watching) {
        try {
          if (typeof each === 'function') each()
          else each.deref()?.()
        } catch (error) {
          queueMicrotask(() => {
            throw error // reported as a listener's own would be, without keeping the others from their abort
          })
        }
      }
      watching.clear()
    }
    watched = { watching, listener }
    watchers.set(signal, watched)
    signal.addEventListener('abort', listener, { once: true })
  }
  const { watching, listener } = watched
  watching.add(watcher)
  return () => {
    if (!watching.delete(watcher) || watching.size > 0) return
    signal.removeEventListener('abort', listener)
    if (watchers.get(signal)?.watching === watching) watchers.delete(signal)
  }
}
