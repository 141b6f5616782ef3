import type * as OnDemandModule from './on-demand.js'

export type OnDemand = typeof OnDemandModule

let loaded: OnDemand | undefined
let loading: Promise<OnDemand> | undefined

/**
 * The on-demand module (on-demand.ts), imported on the first call. Once loaded, callers that write
 * `onDemandLoaded() ?? (await loadOnDemand())` take no extra turn.
 */
export function loadOnDemand(): Promise<OnDemand> {
  loading ??= import('./on-demand.js').then(
    (module) => (loaded = module),
    (error: unknown) => {
      loading = undefined // a failed load (a chunk that did not arrive) is tried again next time
      throw error
    },
  )
  return loading
}

export function onDemandLoaded(): OnDemand | undefined {
  return loaded
}
