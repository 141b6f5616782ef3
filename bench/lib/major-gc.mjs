// Major garbage collections (mark-compact pauses) during timed batches, from node:perf_hooks 'gc' entries. V8
// schedules them on the process's heap as a whole, not on the contender that made the garbage: a contender whose
// batches take many of them pays for the process, which is what this shows beside a throughput row.
import { PerformanceObserver, constants } from 'node:perf_hooks'

const isMajor = (entry) => entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR

/** Watch major GC pauses; `record` names the contender whose timed batch ran from `start` to `end` (performance.now()). */
export function watchMajorGc() {
  const pauses = []
  const windows = []
  const observer = new PerformanceObserver((list) => pauses.push(...list.getEntries().filter(isMajor)))
  observer.observe({ entryTypes: ['gc'] })
  return {
    record(name, start, end) {
      windows.push({ name, start, end })
    },
    /** Stop watching. Per contender: the share of its batches' time spent in major GC pauses, and their count. */
    stop() {
      pauses.push(...observer.takeRecords().filter(isMajor))
      observer.disconnect()
      const result = {}
      for (const name of new Set(windows.map((window) => window.name))) {
        const own = windows.filter((window) => window.name === name)
        const time = own.reduce((sum, window) => sum + window.end - window.start, 0)
        const during = pauses.filter((pause) => own.some((window) => pause.startTime >= window.start && pause.startTime < window.end))
        result[name] = { share: during.reduce((sum, pause) => sum + pause.duration, 0) / time, count: during.length }
      }
      return result
    },
  }
}
