import { InternalError } from './errors.js'
import type * as OnDemandModule from './on-demand.js'

export type OnDemand = typeof OnDemandModule

/**
 * `load` (a dynamic import) run on the first call; later calls share its promise. A load that fails rejects
 * with `failure(error)`, by default an InternalError (in a browser, a chunk that did not arrive), and is tried
 * again on the next call. (Browsers that keep a failed module import for the page, as Chromium does, fail it
 * again until a reload; other loaders, such as webpack's, fetch it anew.)
 */
export function loadOnce<T>(load: () => Promise<T>, failure: (error: unknown) => Error = partMissing): () => Promise<T> {
  let loading: Promise<T> | undefined
  return () =>
    (loading ??= load().catch((error: unknown) => {
      loading = undefined
      throw failure(error)
    }))
}

function partMissing(error: unknown): Error {
  return new InternalError('A part of kms-envelope did not load (see cause).', { cause: error })
}

let loaded: OnDemand | undefined

/**
 * The on-demand module (on-demand.ts), imported on the first call. Once loaded, callers that write
 * `onDemandLoaded() ?? (await loadOnDemand())` take no extra turn.
 */
export const loadOnDemand: () => Promise<OnDemand> = /* @__PURE__ */ loadOnce(() => import('./on-demand.js').then((module) => (loaded = module)))

export function onDemandLoaded(): OnDemand | undefined {
  return loaded
}
