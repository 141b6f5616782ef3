// Small statistics and table-printing helpers for the benchmark suite.

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return NaN
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

/** (max - min) / median, as a fraction: a rough noise indicator for a set of rounds. */
export function spread(values) {
  const v = values.filter((x) => Number.isFinite(x))
  if (v.length < 2) return 0
  const m = median(v)
  return m === 0 ? 0 : (Math.max(...v) - Math.min(...v)) / m
}

/**
 * The contenders (objects with a `name`) in the order of round `r`: ours and the floor (without the floor, the
 * first two of `list`) back to back, which one first alternating (their ratio is the target, and this machine's
 * speed drifts over a second or so), then the others. Use an even number of rounds: the first of the pair pays
 * for the garbage the others left.
 */
export function pairedOrder(list, r) {
  const withFloor = list.some((item) => item.name === 'floor')
  const paired = (item, index) => (withFloor ? item.name === 'ours' || item.name === 'floor' : index < 2)
  const pair = list.filter(paired)
  if (r % 2 === 1) pair.reverse()
  return [...pair, ...list.filter((item, index) => !paired(item, index))]
}

/**
 * Median of per-round ratios a[i] / b[i]. The contenders run back to back within a round, so a
 * slow patch on a shared machine tends to hit both sides of a pair; this is steadier than
 * median(a) / median(b).
 */
export function pairedRatio(a, b) {
  if (!a || !b) return NaN
  const n = Math.min(a.length, b.length)
  const r = []
  for (let i = 0; i < n; i++) r.push(a[i] / b[i])
  return median(r)
}

export function fmtNum(x, digits = 1) {
  if (x === undefined || x === null || Number.isNaN(x)) return 'n/a'
  if (!Number.isFinite(x)) return String(x)
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export function fmtRatio(x) {
  if (x === undefined || x === null || !Number.isFinite(x)) return 'n/a'
  return `${x.toFixed(2)}x`
}

export function fmtPct(x) {
  if (x === undefined || x === null || !Number.isFinite(x)) return 'n/a'
  return `${(x * 100).toFixed(0)}%`
}

export function fmtBytes(n) {
  if (!Number.isFinite(n)) return 'n/a'
  const abs = Math.abs(n)
  if (abs >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`
  if (abs >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`
  return `${n} B`
}

export function fmtSize(n) {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`
  if (n >= 1 << 10 && n % (1 << 10) === 0) return `${n / (1 << 10)} KiB`
  return `${n} B`
}

export function hex(id) {
  return `0x${id.toString(16).padStart(4, '0')}`
}

/**
 * Print rows as an aligned table. `columns` is a list of { key, title, align } ('left' | 'right').
 * Cells are strings already formatted.
 */
export function printTable(columns, rows, log = console.log) {
  const widths = columns.map((c) => Math.max(c.title.length, ...rows.map((r) => String(r[c.key] ?? '').length)))
  const cell = (c, i, s) => (c.align === 'left' ? String(s).padEnd(widths[i]) : String(s).padStart(widths[i]))
  log('  ' + columns.map((c, i) => cell(c, i, c.title)).join('  '))
  log('  ' + widths.map((w) => '-'.repeat(w)).join('  '))
  for (const r of rows) log('  ' + columns.map((c, i) => cell(c, i, r[c.key] ?? '')).join('  '))
}

export function gc() {
  if (typeof globalThis.gc === 'function') globalThis.gc()
}

/**
 * A minor GC (the young generation only) between timed samples: it takes the previous contender's fresh
 * garbage off the next one's clock without a forced full GC's side effect of discarding optimized code, which
 * every contender would then recompile during its timed sample (see bench/stream.mjs).
 */
export function minorGc() {
  if (typeof globalThis.gc === 'function') globalThis.gc({ type: 'minor' })
}

export const now = () => performance.now()
