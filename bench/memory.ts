// Memory with many sessions (issue 10, item 3): a backend-for-frontend keeps one token set per
// user session (`authKey`). 100,000 distinct keys are each used once (`getAccessToken`), then all
// logged out; the heap is measured after each phase, for the engine with its default in-memory
// cache (`cache.maxKeys` 10,000) and with a huge `maxKeys` (what an unbounded engine would cost).
//
// The token sets live in a Map-backed storage that this benchmark builds before the baseline and
// keeps whole to the end (a delete only marks its entry, and every stored object stays referenced
// here), so the storage's own memory is in every measurement alike: the differences are the
// engine's. Each variant runs in its own `node --expose-gc` process (the heap of one does not
// bleed into the next), 3 times; medians. No network: the tokens are valid for an hour, and logout
// does not revoke.
//
// `npm run bench` calls memory() from bench/run.ts (after `npm run build`); alone:
// `node --expose-gc bench/memory.ts [--quick]` (--quick: 1 run per variant).
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { createTokenAuth, refreshTokenGrant, type StoredTokens, type TokenAuth, type TokenStorage } from 'ky-token-refresh'

const KEYS = Number(process.env.MEMORY_KEYS) || 100_000
const WARM = 2_000
const SELF = fileURLToPath(import.meta.url)

interface Variant { id: string; label: string; maxKeys?: number }
const VARIANTS: Variant[] = [
  { id: 'default', label: 'default cache (maxKeys 10,000)' },
  { id: 'huge', label: 'maxKeys 10,000,000 (in effect unbounded)', maxKeys: 10_000_000 },
]

export interface MemoryRun {
  /** MB over the baseline (storage filled, engine created, nothing used yet). */
  afterUse: number
  afterLogout: number
  /** The engine disposed and unreferenced (the storage still kept): a residue after logout that goes here was the engine's. */
  afterDispose: number
  /** The storage alone: its 100,000 token sets, measured before the engine existed. */
  storage: number
  useSeconds: number
  logoutSeconds: number
}

const heap = () => {
  for (let i = 0; i < 3; i++) globalThis.gc!()
  return process.memoryUsage().heapUsed
}

/** One variant, in this process (the child side). */
async function runVariant(variant: Variant): Promise<MemoryRun> {
  if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc')
  const empty = heap()
  // The storage: every token set it ever held stays referenced by `kept`; delete marks (null).
  const entries = new Map<string, StoredTokens | null>()
  const kept: StoredTokens[] = []
  const now = Date.now()
  const make = (key: string) => {
    const tokens: StoredTokens = { accessToken: `at_${randomBytes(24).toString('hex')}`, refreshToken: `srt_${randomBytes(16).toString('hex')}`, receivedAt: now, expiresAt: now + 3_600_000, scope: 'read write', rev: randomBytes(8).toString('hex'), sid: randomBytes(8).toString('hex') }
    kept.push(tokens)
    entries.set(key, tokens)
  }
  for (let i = 0; i < KEYS; i++) make(`user-${i}`)
  for (let i = 0; i < WARM; i++) make(`warm-${i}`)
  const storage: TokenStorage = {
    name: 'bench-map',
    flags: { scope: 'isolate', consistency: 'strong' },
    get: async (key) => entries.get(key) ?? undefined,
    set: async (key, value) => void (kept.push(value), entries.set(key, value)),
    delete: async (key, expectedRev) => {
      if (entries.has(key) && (expectedRev === undefined || entries.get(key)?.rev === expectedRev)) entries.set(key, null)
    },
    compareAndSet: async (key, expected, value) => {
      if ((entries.get(key)?.rev ?? undefined) !== expected) return false
      kept.push(value)
      entries.set(key, value)
      return true
    },
  }
  let auth: TokenAuth | undefined = createTokenAuth({
    grant: refreshTokenGrant({ url: 'http://127.0.0.1:9/token', body: 'json' }),
    storage,
    ...(variant.maxKeys && { cache: { maxKeys: variant.maxKeys } }),
  })
  // Warm-up on other keys, so the baseline already holds the compiled code and what else a first
  // use costs once per process (not per key).
  for (let i = 0; i < WARM; i++) await auth!.getAccessToken({ key: `warm-${i}` })
  for (let i = 0; i < WARM; i++) await auth!.logout({ key: `warm-${i}`, revoke: false })
  const base = heap()
  let started = performance.now()
  for (let i = 0; i < KEYS; i++) await auth!.getAccessToken({ key: `user-${i}` })
  const useSeconds = (performance.now() - started) / 1000
  const afterUse = heap()
  started = performance.now()
  for (let i = 0; i < KEYS; i++) await auth!.logout({ key: `user-${i}`, revoke: false })
  const logoutSeconds = (performance.now() - started) / 1000
  const afterLogout = heap()
  if ([...entries.values()].some((value) => value !== null)) throw new Error('logout left token sets in storage')
  // Then the engine itself goes (dispose, no reference left): what it still held after logout.
  auth.dispose()
  auth = undefined
  const afterDispose = heap()
  // Keep the storage alive to the last measurement.
  if (kept.length < KEYS) throw new Error('unreachable')
  return { afterUse: (afterUse - base) / 1e6, afterLogout: (afterLogout - base) / 1e6, afterDispose: (afterDispose - base) / 1e6, storage: (base - empty) / 1e6, useSeconds, logoutSeconds }
}

export interface MemoryRow { variant: Variant; runs: MemoryRun[]; afterUse: number; afterLogout: number; afterDispose: number; storage: number; useSeconds: number; logoutSeconds: number }
export interface MemoryResult { keys: number; repeats: number; rows: MemoryRow[] }

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Every variant, each run in a fresh `node --expose-gc` process, interleaved. */
export async function memory(quick = false, log: (line: string) => void = () => {}): Promise<MemoryResult> {
  const repeats = quick ? 1 : 3
  const runs = new Map<string, MemoryRun[]>(VARIANTS.map((variant) => [variant.id, []]))
  for (let repeat = 0; repeat < repeats; repeat++) {
    for (const variant of VARIANTS) {
      const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', SELF, '--variant', variant.id], { maxBuffer: 1 << 20 })
      const run = JSON.parse(stdout.trim().split('\n').at(-1)!) as MemoryRun
      runs.get(variant.id)!.push(run)
      log(`  ${variant.id} ${repeat + 1}/${repeats}: storage ${run.storage.toFixed(1)} MB; engine after ${KEYS} keys used once +${run.afterUse.toFixed(1)} MB (${run.useSeconds.toFixed(1)} s), after all logged out +${run.afterLogout.toFixed(2)} MB (${run.logoutSeconds.toFixed(1)} s), engine disposed ${run.afterDispose.toFixed(2)} MB`)
    }
  }
  return {
    keys: KEYS,
    repeats,
    rows: VARIANTS.map((variant) => {
      const all = runs.get(variant.id)!
      return { variant, runs: all, afterUse: median(all.map((run) => run.afterUse)), afterLogout: median(all.map((run) => run.afterLogout)), afterDispose: median(all.map((run) => run.afterDispose)), storage: median(all.map((run) => run.storage)), useSeconds: median(all.map((run) => run.useSeconds)), logoutSeconds: median(all.map((run) => run.logoutSeconds)) }
    }),
  }
}

const mb = (value: number) => value.toFixed(1)
/** Token sets the engine may still hold after the use phase: all of them, or its cap. */
const held = (row: MemoryRow, result: MemoryResult) => Math.min(result.keys, row.variant.maxKeys ?? 10_000)

export function memoryTable(result: MemoryResult) {
  return result.rows.map((row) => ({
    engine: row.variant.label,
    'after use (MB)': mb(row.afterUse),
    'per key held (bytes)': Math.round((row.afterUse * 1e6) / held(row, result)),
    'after logout (MB)': mb(row.afterLogout),
    'engine disposed (MB)': mb(row.afterDispose),
    'storage itself (MB)': mb(row.storage),
    'use (s)': row.useSeconds.toFixed(1),
    'logout (s)': row.logoutSeconds.toFixed(1),
  }))
}

/** The BENCHMARKS.md section. */
export function memoryMarkdown(result: MemoryResult, heading = '## 7. Memory with many sessions (one process, 100,000 keys)') {
  const bounded = result.rows.find((row) => row.variant.id === 'default')!
  const huge = result.rows.find((row) => row.variant.id === 'huge')!
  return `${heading}

A backend-for-frontend holds one token set per user session (\`authKey\`). ${result.keys.toLocaleString('en')} distinct keys, each used once (\`auth.getAccessToken({ key })\`, a valid token read from storage), then each logged out (\`auth.logout({ key, revoke: false })\`). The token sets live in a Map-backed storage built before the baseline and kept whole to the end (a delete marks the entry, every stored object stays referenced by the benchmark), so the storage's own memory (${mb(bounded.storage)} MB for ${result.keys.toLocaleString('en')} sets) is in every measurement alike and the numbers below are the **engine's**: \`process.memoryUsage().heapUsed\` after \`global.gc()\`, minus the same after the storage was filled, the engine created and warmed up (${WARM.toLocaleString('en')} other keys used and logged out, so compiled code and other once-per-process costs are in the baseline). Each variant ran in its own \`node --expose-gc\` process, ${result.repeats === 1 ? 'once' : `${result.repeats} times; medians`}.

| engine | heap after ${result.keys.toLocaleString('en')} keys used once | per key held (the cap, or all) | heap after all logged out | then the engine disposed and unreferenced | time: use / logout |
| --- | ---: | ---: | ---: | ---: | ---: |
${result.rows.map((row) => `| ${row.variant.label} | ${mb(row.afterUse)} MB | ${Math.round((row.afterUse * 1e6) / held(row, result)).toLocaleString('en')} B | ${mb(row.afterLogout)} MB | ${mb(row.afterDispose)} MB | ${row.useSeconds.toFixed(1)} s / ${row.logoutSeconds.toFixed(1)} s |`).join('\n')}

With the default cap the engine keeps at most 10,000 token sets in memory (the least recently used are dropped and re-read from storage on their next use): ${mb(bounded.afterUse)} MB after ${result.keys.toLocaleString('en')} keys, against ${mb(huge.afterUse)} MB with the cap out of the way — what per-key state would cost unbounded. After logout: ${mb(bounded.afterLogout)} MB and ${mb(huge.afterLogout)} MB (logout drops the key's state whole). What is left after logout (≈ ${Math.round((bounded.afterLogout * 1e6) / result.keys)} B per key, the same with and without the cap) is not the engine's: disposing the engine and dropping every reference to it does not bring the heap back down (${mb(bounded.afterDispose)} MB); it scales with the number of distinct keys the process has seen, not with what the engine holds (the same Map-backed storage driven without the engine leaves nothing). Before (issue 10): 20,000 keys kept ≈ 30 MB after storage had dropped them.
`
}

// The child side: `--variant <id>` prints one JSON line.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const at = process.argv.indexOf('--variant')
  if (at >= 0) {
    const variant = VARIANTS.find((candidate) => candidate.id === process.argv[at + 1])
    if (!variant) throw new Error(`unknown variant ${process.argv[at + 1]}`)
    console.log(JSON.stringify(await runVariant(variant)))
  } else {
    const result = await memory(process.argv.includes('--quick'), console.log)
    console.table(memoryTable(result))
    console.log(`\n${memoryMarkdown(result)}`)
  }
  process.exit(0)
}
