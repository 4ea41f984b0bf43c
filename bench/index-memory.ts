/**
 * bench/index-memory: build time, look-up rate and memory of the match index for N synthetic
 * listings (issue 4 (d): 10 M listings with the whole process under 1 GB RSS).
 *
 *   npx tsx bench/index-memory.ts 1000000
 *   node --expose-gc --max-old-space-size=4096 --import tsx bench/index-memory.ts 10000000
 *
 * Flags: `--presize` gives the index the final sizes up front (as a boot that counts its listings
 * first would), instead of growing from the defaults; `--map` builds the naive alternative instead,
 * a JS `Map` from "type:key" to an array of hit objects, as the same-machine baseline (needs lots
 * of heap at 10 M). Run each variant in its own process: RSS is per process.
 *
 * Listing i: a person (a valid resident id, debtor), except every 4th, an entity: its credit code
 * and `org:` code (debtor) and its legal representative's resident id. Ids are seeded random
 * uuids. Build time is measured two ways: the upserts alone (listings are generated in batches of
 * 10 000 outside the timer, and passed through JSON as rows from the database driver would be) and
 * the whole loop. Then 1 M random look-ups, half of indexed
 * identifiers (of every type), half of resident ids never indexed, after a 100 000 warm-up; then
 * 100 000 re-upserts (new version, same keys) and 100 000 removals. Memory is sampled after a
 * full GC (with --expose-gc) before, after the build and at the end; peak RSS from getrusage.
 * Prints a summary and writes bench/results/index-memory-<N>-<timestamp>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { projectPath } from '../src/infra/paths.js'
import { creditCodeCheckChar, orgCodeCheckChar, residentIdCheckChar } from '../src/modules/identity/identity.models.js'
import { MatchIndex, type IndexKey, type IndexListing, type MatchHit, type MatchKeyType } from '../src/modules/matching/matching.index.js'

const N = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 1_000_000)
const PRESIZE = process.argv.includes('--presize')
const MAP = process.argv.includes('--map')
const BATCH = 10_000
const LOOKUPS = 1_000_000
const CHURN = Math.min(100_000, Math.floor(N / 2))

// ----- synthetic identifiers ----------------------------------------------------------------------

const AREAS = ['110101', '110105', '310104', '440305', '330106', '510107', '420106', '320102']
const DAY0 = Date.UTC(1950, 0, 1)
const dates: string[] = []
function birthDate(day: number): string {
  while (dates.length <= day) dates.push(new Date(DAY0 + dates.length * 86_400_000).toISOString().slice(0, 10).replaceAll('-', ''))
  return dates[day]!
}
/** Person j's resident id: unique for every j (area, birth date, sequence), valid check digit. */
function residentId(j: number): string {
  const first17 = AREAS[j % 8]! + birthDate(Math.floor(j / 8000)) + String(Math.floor(j / 8) % 1000).padStart(3, '0')
  return first17 + residentIdCheckChar(first17)
}
const LEGAL_REP_OFFSET = 20_000_000
const MISS_OFFSET = 40_000_000
/** Entity i's organisation code (8 digits + check) and credit code ("91" + area + org code + check). */
function entityKeys(i: number): [string, string] {
  const org8 = String(i).padStart(8, '0')
  const org = org8 + orgCodeCheckChar(org8)
  const first17 = '91' + AREAS[i % 8]! + org
  return [first17 + creditCodeCheckChar(first17), 'org:' + org]
}
function keysOf(i: number): IndexKey[] {
  if (i % 4 !== 3) return [{ type: 'idNumber', key: residentId(i), role: 'debtor' }]
  const [cc, org] = entityKeys(i)
  return [
    { type: 'creditCode', key: cc, role: 'debtor' },
    { type: 'orgCode', key: org, role: 'debtor' },
    { type: 'idNumber', key: residentId(LEGAL_REP_OFFSET + i), role: 'legalRepresentative' },
  ]
}

/** xorshift32, seeded: reproducible uuids and look-up choices. */
let seed = 0x9e3779b9
const rand32 = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return seed >>> 0 }
const randInt = (n: number) => Math.floor((rand32() / 4294967296) * n)
const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))
const hex8 = (w: number) => HEX2[w >>> 24]! + HEX2[(w >>> 16) & 255]! + HEX2[(w >>> 8) & 255]! + HEX2[w & 255]!
function uuid(): string {
  const a = hex8(rand32()), b = hex8((rand32() & 0xffff0fff) | 0x4000), c = hex8(((rand32() & 0x3fffffff) | 0x80000000) >>> 0), d = hex8(rand32())
  return `${a}-${b.slice(0, 4)}-${b.slice(4)}-${c.slice(0, 4)}-${c.slice(4)}${d}`
}

// ----- measurement helpers ------------------------------------------------------------------------

const gc = (globalThis as { gc?: () => void }).gc
/** Figures named *MB are MiB (2^20 bytes), one decimal. */
const MB = (b: number) => Math.round((b / 1_048_576) * 10) / 10
function sample() {
  gc?.()
  gc?.()
  const m = process.memoryUsage()
  return { rssMB: MB(m.rss), heapTotalMB: MB(m.heapTotal), heapUsedMB: MB(m.heapUsed), externalMB: MB(m.external), arrayBuffersMB: MB(m.arrayBuffers) }
}
const seconds = (from: bigint) => Number(process.hrtime.bigint() - from) / 1e9

/** The same-machine baseline: what a straightforward Map-based index would hold. */
class MapIndex {
  private readonly map = new Map<string, MatchHit[]>()
  upsert(l: IndexListing) {
    for (const k of l.keys) {
      const key = `${k.type}:${k.key}`
      const hit: MatchHit = { listingId: l.id, listKind: l.listKind, role: k.role, version: l.version }
      const list = this.map.get(key)
      if (list) list.push(hit); else this.map.set(key, [hit])
    }
  }
  lookup(type: MatchKeyType, key: string): MatchHit[] { return this.map.get(`${type}:${key}`) ?? [] }
  get size() { return this.map.size }
}

async function main() {
  const entries = N + 2 * Math.floor(N / 4)
  console.log(`index-memory: N=${N.toLocaleString('en')} listings (~${entries.toLocaleString('en')} entries), ${MAP ? 'baseline: JS Map' : PRESIZE ? 'typed-array index, presized' : 'typed-array index, grown from defaults'}${gc ? '' : ' (no --expose-gc: memory figures include garbage)'}`)
  const before = sample()
  const index = MAP ? new MapIndex() : new MatchIndex(PRESIZE ? { listings: N, entries } : {})

  // Build, in batches generated outside the upsert timer.
  const batch: IndexListing[] = new Array(BATCH)
  const idsForChurn: string[] = []
  let upsertSeconds = 0
  /** Highest RSS seen after a batch, and how many listings were in then. */
  const buildPeak = { rss: 0, atListings: 0 }
  const buildStart = process.hrtime.bigint()
  for (let from = 0; from < N; from += BATCH) {
    const n = Math.min(BATCH, N - from)
    for (let k = 0; k < n; k++) {
      const i = from + k
      const id = uuid()
      batch[k] = { id, listKind: i % 3 === 0 ? 'restricted' : 'dishonest', version: 1, keys: keysOf(i) }
      if (i < CHURN) idsForChurn.push(id)
    }
    // As rows arrive from the PostgreSQL driver: parsed JSON (flat strings, not concatenations).
    const rows = JSON.parse(JSON.stringify(n === BATCH ? batch : batch.slice(0, n))) as IndexListing[]
    const t0 = process.hrtime.bigint()
    for (let k = 0; k < n; k++) index.upsert(rows[k]!)
    upsertSeconds += seconds(t0)
    const rss = process.memoryUsage.rss()
    if (rss > buildPeak.rss) { buildPeak.rss = rss; buildPeak.atListings = from + n }
  }
  const buildSeconds = seconds(buildStart)
  batch.fill(undefined as unknown as IndexListing)
  const afterBuild = sample()
  const stats = index instanceof MatchIndex ? index.stats() : { listings: N, keys: index.size }
  console.log(`upserts alone ${upsertSeconds.toFixed(2)} s (${Math.round(N / upsertSeconds).toLocaleString('en')}/s); whole build loop with the synthetic generation and JSON round trip ${buildSeconds.toFixed(2)} s`)
  console.log(`stats: ${JSON.stringify(stats)}`)
  console.log(`memory after build: ${JSON.stringify(afterBuild)}`)

  // Look-ups: half hits (an identifier of listing i, any type), half misses (resident ids never
  // indexed), interleaved, in chunks of 10 000 made outside the timer (flat strings, as from a
  // parsed request body): 10 chunks of warm-up, then LOOKUPS. Then hits alone and misses alone.
  const CHUNK = 10_000
  const chunk = () => {
    const types: MatchKeyType[] = [], keys: string[] = []
    for (let q = 0; q < CHUNK; q++) {
      if (q % 2 === 0) {
        const ks = keysOf(randInt(N))
        const k = ks[randInt(ks.length)]!
        types.push(k.type)
        keys.push(k.key)
      } else {
        types.push('idNumber')
        keys.push(residentId(MISS_OFFSET + randInt(N)))
      }
    }
    return { types, keys: JSON.parse(JSON.stringify(keys)) as string[] }
  }
  let hits = 0
  let lookupSeconds = 0
  let hitSeconds = 0
  let missSeconds = 0
  for (let c = -10; c < LOOKUPS / CHUNK; c++) {
    const { types, keys } = chunk()
    let found = 0
    const t0 = process.hrtime.bigint()
    for (let q = 0; q < CHUNK; q++) found += index.lookup(types[q]!, keys[q]!).length
    const dt = seconds(t0)
    if (found !== CHUNK / 2) throw new Error(`look-ups found ${found} hits, expected ${CHUNK / 2}`)
    const t1 = process.hrtime.bigint()
    for (let q = 0; q < CHUNK; q += 2) found += index.lookup(types[q]!, keys[q]!).length
    const dHit = seconds(t1)
    const t2 = process.hrtime.bigint()
    for (let q = 1; q < CHUNK; q += 2) found += index.lookup(types[q]!, keys[q]!).length
    const dMiss = seconds(t2)
    if (c >= 0) { hits += CHUNK / 2; lookupSeconds += dt; hitSeconds += dHit; missSeconds += dMiss }
  }
  const lookupsPerSecond = Math.round(LOOKUPS / lookupSeconds)
  const hitsPerSecond = Math.round(LOOKUPS / 2 / hitSeconds)
  const missesPerSecond = Math.round(LOOKUPS / 2 / missSeconds)
  console.log(`${LOOKUPS.toLocaleString('en')} look-ups (half hits) in ${lookupSeconds.toFixed(3)} s: ${lookupsPerSecond.toLocaleString('en')}/s (hits alone ${hitsPerSecond.toLocaleString('en')}/s, misses alone ${missesPerSecond.toLocaleString('en')}/s)`)

  // Churn: the change log's work. Re-upserts (version 2, same keys), then removals.
  let churn: Record<string, number> | undefined
  if (index instanceof MatchIndex) {
    const relisted = JSON.parse(JSON.stringify(idsForChurn.map((id, i) => ({ id, listKind: 'dishonest', version: 2, keys: keysOf(i) })))) as IndexListing[]
    const removals = relisted.map((l) => l.id)
    const t0 = process.hrtime.bigint()
    for (const l of relisted) index.upsert(l)
    const upsertS = seconds(t0)
    const t1 = process.hrtime.bigint()
    for (const id of removals) index.remove(id, 3)
    const removeS = seconds(t1)
    let stray = 0
    for (let i = 0; i < CHURN; i++) for (const k of keysOf(i)) if (index.lookup(k.type, k.key).some((h) => h.listingId === idsForChurn[i])) stray++
    if (stray) throw new Error(`${stray} removed keys still match`)
    if (index.size !== N - CHURN) throw new Error(`size ${index.size}, expected ${N - CHURN}`)
    churn = { updates: CHURN, updatesPerSecond: Math.round(CHURN / upsertS), removals: CHURN, removalsPerSecond: Math.round(CHURN / removeS) }
    console.log(`churn: ${CHURN.toLocaleString('en')} re-upserts at ${churn.updatesPerSecond!.toLocaleString('en')}/s, ${CHURN.toLocaleString('en')} removals at ${churn.removalsPerSecond!.toLocaleString('en')}/s`)
  }
  idsForChurn.length = 0
  const atEnd = sample()
  const peakRssMB = MB(process.resourceUsage().maxRSS * 1024)
  const memoryBytes = index instanceof MatchIndex ? index.memoryBytes() : undefined

  const result = {
    bench: 'index-memory', unit: 'MiB (2^20 bytes) for every *MB field', variant: MAP ? 'js-map-baseline' : PRESIZE ? 'typed-arrays-presized' : 'typed-arrays-grown',
    listings: N, node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model, totalMemMB: MB(totalmem()), exposeGc: Boolean(gc),
    build: { seconds: Number(buildSeconds.toFixed(3)), upsertSeconds: Number(upsertSeconds.toFixed(3)), upsertsPerSecond: Math.round(N / upsertSeconds) },
    stats, memoryBytes, memoryMB: memoryBytes === undefined ? undefined : MB(memoryBytes),
    bytesPerListing: memoryBytes === undefined ? undefined : Math.round(memoryBytes / N),
    lookups: { count: LOOKUPS, hits, seconds: Number(lookupSeconds.toFixed(3)), perSecond: lookupsPerSecond, hitsPerSecond, missesPerSecond },
    churn,
    memory: { before, afterBuild, atEnd, buildPeakRssMB: MB(buildPeak.rss), buildPeakAtListings: buildPeak.atListings, peakRssMB },
    at: new Date().toISOString(),
  }
  console.log(`typed arrays: ${memoryBytes === undefined ? 'n/a' : `${MB(memoryBytes)} MiB (${result.bytesPerListing} B per listing)`}; RSS before ${before.rssMB} MiB, after build ${afterBuild.rssMB} MiB, at end ${atEnd.rssMB} MiB; highest after a build batch ${MB(buildPeak.rss)} MiB (at ${buildPeak.atListings.toLocaleString('en')} listings), peak (getrusage) ${peakRssMB} MiB; heapUsed ${before.heapUsedMB} → ${afterBuild.heapUsedMB} MiB`)
  const dir = projectPath('bench', 'results')
  mkdirSync(dir, { recursive: true })
  const file = `${dir}/index-memory-${N}${MAP ? '-map' : PRESIZE ? '-presized' : ''}-${result.at.replace(/[:.]/g, '-')}.json`
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n')
  console.log(`wrote ${file}`)
}

await main()
