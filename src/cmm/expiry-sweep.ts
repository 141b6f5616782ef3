// Expired entries evicted while nobody asks for them. A cache checks expiry when an entry is looked up, so the
// data key of an entry that expires in a quiet cache would otherwise stay in memory, not zeroed, until the
// entry is next looked up or pushed out by others.
// spec: framework/local-cryptographic-materials-cache.md#pruning ("SHOULD also periodically evict")

/** Told of each entry put in the cache, it has the cache pruned once the entry has expired. */
export interface ExpirySweeper {
  entryPut(expiresAt: number): void
}

/**
 * Sweeps come at most once a second, and less often in a cache of more than 10,000 entries (every size/10 ms),
 * since each walks every entry. An entry that expires within a second of the last sweep due shares it (moved to
 * the later expiry); one within a second of a sweep whose timer is already set is swept a second after it.
 */
const MIN_GAP_MS = 1000
/** setTimeout's longest delay: beyond it Node fires at once (and warns), which would make the sweep spin. */
const MAX_DELAY_MS = 2 ** 31 - 1

/**
 * Sweeps on the clock `now` (the caching manager's own, `performance.now`): `prune(now)` evicts every entry
 * expired by then. The timer never holds a Node process open.
 */
export function expirySweeper(prune: (now: number) => void, size: () => number, now: () => number): ExpirySweeper {
  /** When a sweep is due: ascending, at least MIN_GAP_MS apart, each the latest expiry of the entries it is for. */
  const due: number[] = []
  let timer: ReturnType<typeof setTimeout> | undefined
  let lastSweep = -Infinity

  const schedule = (): void => {
    if (timer !== undefined || due.length === 0) return
    const at = Math.max(due[0] as number, lastSweep + Math.max(MIN_GAP_MS, size() / 10))
    timer = setTimeout(sweep, Math.min(Math.max(at - now(), 0), MAX_DELAY_MS))
    ;(timer as { unref?: () => void }).unref?.()
  }
  const sweep = (): void => {
    timer = undefined
    const at = now()
    lastSweep = at
    try {
      prune(at)
    } catch {
      // Thrown from a timer it would end the process; the entries are still checked when looked up.
    }
    while (due.length > 0 && (due[0] as number) <= at) due.shift()
    schedule()
  }

  return {
    entryPut(expiresAt) {
      const last = due.length - 1
      if (last >= 0 && expiresAt - (due[last] as number) < MIN_GAP_MS) due[last] = Math.max(due[last] as number, expiresAt)
      else due.push(expiresAt)
      schedule()
    },
  }
}
