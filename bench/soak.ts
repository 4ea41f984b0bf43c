/**
 * `npm run soak`: a bounded soak (issue 9 item 4). Starts the real gateway (a child process, demo
 * principals) and the bare-Fastify baseline on loopback, then for SOAK_SECONDS sends a steady
 * SOAK_RATE requests per second, mixed as a day at the gateway looks:
 *   55% signed single matches (caac, TICKET_AIR; a quarter of them subjects this run pushed),
 *    5% signed batch matches of 100 subjects,
 *   10% signed pushes of 5 new listings (court-bj-0105),
 *   20% public searches (unsigned, from 10 000 citizen addresses behind TRUST_PROXY),
 *   10% the baseline's GET (the same machine's noise floor, measured alongside).
 * Every 10 s it prints throughput, latency percentiles and errors per kind, and the gateway's RSS
 * and V8 heap (from its /metrics); at the end a summary, with heap growth between the first and the
 * last third of the run. Exit 1 when a request failed (5xx, a timeout, a refused connection) or the
 * heap of the last third is more than 1.5× the first third's (growth without bound).
 *
 * Env: SOAK_SECONDS (default 180), SOAK_RATE (default 200), BENCH_DATABASE_URL (a fresh database on
 * that PostgreSQL server, dropped afterwards; without it embedded PGlite).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import postgres from 'postgres'
import { readKeyFile, signRequest, type KeyFile } from '../src/client/gw1-client.js'
import { generateGatewayJwk } from '../src/infra/gateway-keys.js'
import { residentIdCheckChar } from '../src/modules/identity/identity.models.js'
import { personListing } from '../test/factories.js'
import { startGateway } from '../test/processes.js'

const SECONDS = Number(process.env.SOAK_SECONDS ?? 180)
const RATE = Number(process.env.SOAK_RATE ?? 200)
const WINDOW_S = 10
const TIMEOUT_MS = 10_000
const AUDIENCE = 'credit-gateway-soak'
const MIX: Array<[Kind, number]> = [['match', 0.55], ['batch', 0.05], ['push', 0.1], ['search', 0.2], ['baseline', 0.1]]
type Kind = 'match' | 'batch' | 'push' | 'search' | 'baseline'

interface Sample { kind: Kind; at: number; ms: number; status: number }
const samples: Sample[] = []
const cleanups: Array<() => Promise<void> | void> = []
/** startGateway stops its child through a tap teardown; here the script's own clean-up list. */
const teardownOnly = { teardown: (fn: () => Promise<void> | void) => { cleanups.push(fn) } } as unknown as Test

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

/** A valid resident id of a random person born 1950–1999 in `region`. */
function residentId(region: string): string {
  const day = `${1950 + Math.floor(Math.random() * 50)}${String(1 + Math.floor(Math.random() * 12)).padStart(2, '0')}${String(1 + Math.floor(Math.random() * 28)).padStart(2, '0')}`
  const first17 = `${region}${day}${String(Math.floor(Math.random() * 1000)).padStart(3, '0')}`
  return first17 + residentIdCheckChar(first17)
}
/** Urumqi's address code: the demo data and this run's pushes use Beijing's only. */
const unlistedId = () => residentId('650102')

async function freshDatabase(base: string): Promise<string> {
  const name = `cg_soak_${Date.now().toString(36)}`
  const admin = postgres(base, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE "${name}"`)
  cleanups.push(async () => { await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`); await admin.end() })
  const url = new URL(base)
  url.pathname = `/${name}`
  return url.toString()
}

async function startBaseline(): Promise<string> {
  const port = 20000 + Math.floor(Math.random() * 20000)
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/baseline-server.ts'], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' })
  cleanups.push(() => { child.kill('SIGKILL') })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`${url}/v1/baseline`)).ok) return url } catch { /* not yet listening */ }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error('the baseline server did not start')
}

async function gatewayMemory(url: string): Promise<{ rssMb: number; heapMb: number }> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const read = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20
  return { rssMb: read('process_resident_memory_bytes'), heapMb: read('nodejs_heap_size_used_bytes') }
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'cg-soak-'))
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }))
  const env: Record<string, string> = { DATA_DIR: dataDir, SEED_DEMO: 'true', GATEWAY_ID: AUDIENCE, LOG_LEVEL: 'info', TRUST_PROXY: 'true', OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '200' }
  if (process.env.BENCH_DATABASE_URL) {
    Object.assign(env, { DATABASE_URL: await freshDatabase(process.env.BENCH_DATABASE_URL), GATEWAY_SIGNING_KEY: JSON.stringify(generateGatewayJwk()), IDENTIFIER_HASH_SECRET: randomBytes(32).toString('hex') })
  }
  const gateway = await startGateway(teardownOnly, 'soak', env)
  const baseline = await startBaseline()
  const caac = readKeyFile(join(dataDir, 'demo-keys', 'caac.json'))
  const court = readKeyFile(join(dataDir, 'demo-keys', 'court-bj-0105.json'))
  console.log(`soak: ${SECONDS} s at ${RATE} req/s on ${process.env.BENCH_DATABASE_URL ? 'PostgreSQL' : 'PGlite'}; gateway ${gateway.url}, baseline ${baseline}`)

  const pushedIds: string[] = []
  let pushSeq = 100_000 + Math.floor(Math.random() * 800_000)
  const signedCall = async (key: KeyFile, method: string, path: string, body: unknown) => {
    const bytes = Buffer.from(JSON.stringify(body))
    const { authorization } = await signRequest({ method, pathWithQuery: path, body: bytes, audience: AUDIENCE, key })
    return fetch(`${gateway.url}${path}`, { method, body: bytes, headers: { authorization, 'content-type': 'application/json' }, signal: AbortSignal.timeout(TIMEOUT_MS) })
  }
  const subject = () => (pushedIds.length > 0 && Math.random() < 0.25 ? pushedIds[Math.floor(Math.random() * pushedIds.length)]! : unlistedId())
  const send: Record<Kind, () => Promise<Response>> = {
    match: () => signedCall(caac, 'POST', '/v1/match', { idNumber: subject(), scenario: 'TICKET_AIR' }),
    batch: () => signedCall(caac, 'POST', '/v1/match/batch', { scenario: 'TICKET_AIR', subjects: Array.from({ length: 100 }, () => ({ idNumber: subject() })) }),
    push: async () => {
      const items = Array.from({ length: 5 }, () => personListing(pushSeq++, { subject: { kind: 'person', name: '张三', idNumber: residentId('110105') } }))
      const res = await signedCall(court, 'POST', '/v1/listings', { items })
      if (res.ok) pushedIds.push(...items.map((i) => (i.subject as { idNumber: string }).idNumber))
      return res
    },
    search: () => fetch(`${gateway.url}/v1/public/listings?name=${encodeURIComponent('张三')}`, { headers: { 'x-forwarded-for': `10.${Math.floor(Math.random() * 40)}.${Math.floor(Math.random() * 250)}.1` }, signal: AbortSignal.timeout(TIMEOUT_MS) }),
    baseline: () => fetch(`${baseline}/v1/baseline`, { signal: AbortSignal.timeout(TIMEOUT_MS) }),
  }
  const pick = (): Kind => {
    let r = Math.random()
    for (const [kind, share] of MIX) if ((r -= share) < 0) return kind
    return 'match'
  }
  const fire = async (kind: Kind) => {
    const start = performance.now()
    let status: number
    try {
      const res = await send[kind]()
      await res.arrayBuffer()
      status = res.status
    } catch (err) {
      status = (err as Error).name === 'TimeoutError' ? -1 : 0 // -1 timed out, 0 connection failed
    }
    samples.push({ kind, at: Date.now(), ms: performance.now() - start, status })
  }

  const memory: Array<{ t: number; rssMb: number; heapMb: number }> = []
  const t0 = Date.now()
  memory.push({ t: 0, ...(await gatewayMemory(gateway.url)) })
  const inFlight = new Set<Promise<void>>()
  let sent = 0
  let nextReport = WINDOW_S
  while (Date.now() - t0 < SECONDS * 1000) {
    // Open-loop pacing: the rate is kept whatever the latency, as real callers do.
    const due = Math.floor(((Date.now() - t0) / 1000) * RATE)
    while (sent < due) {
      const p = fire(pick()).finally(() => inFlight.delete(p))
      inFlight.add(p)
      sent++
    }
    const elapsed = (Date.now() - t0) / 1000
    if (elapsed >= nextReport) {
      const mem = await gatewayMemory(gateway.url)
      memory.push({ t: Math.round(elapsed), ...mem })
      const window = samples.filter((s) => s.at > Date.now() - WINDOW_S * 1000)
      const lat = window.filter((s) => s.kind !== 'baseline').map((s) => s.ms).sort((a, b) => a - b)
      const failed = window.filter((s) => s.status >= 500 || s.status <= 0).length
      console.log(`t=${String(Math.round(elapsed)).padStart(4)} s  ${(window.length / WINDOW_S).toFixed(0)} req/s  gateway p50 ${percentile(lat, 50).toFixed(1)} ms p99 ${percentile(lat, 99).toFixed(1)} ms  failed ${failed}  in flight ${inFlight.size}  rss ${mem.rssMb.toFixed(0)} MB heap ${mem.heapMb.toFixed(0)} MB`)
      nextReport += WINDOW_S
    }
    await new Promise((r) => setTimeout(r, 5))
  }
  await Promise.all(inFlight)
  memory.push({ t: SECONDS, ...(await gatewayMemory(gateway.url)) })

  console.log('\nkind       requests   req/s    p50 ms   p95 ms   p99 ms   2xx    4xx   5xx  timeouts  conn-errors')
  for (const [kind] of MIX) {
    const of = samples.filter((s) => s.kind === kind)
    const lat = of.map((s) => s.ms).sort((a, b) => a - b)
    const count = (f: (s: Sample) => boolean) => of.filter(f).length
    console.log(`${kind.padEnd(10)} ${String(of.length).padStart(8)} ${(of.length / SECONDS).toFixed(1).padStart(7)} ${percentile(lat, 50).toFixed(1).padStart(8)} ${percentile(lat, 95).toFixed(1).padStart(8)} ${percentile(lat, 99).toFixed(1).padStart(8)} ${String(count((s) => s.status >= 200 && s.status < 300)).padStart(6)} ${String(count((s) => s.status >= 400 && s.status < 500)).padStart(5)} ${String(count((s) => s.status >= 500)).padStart(5)} ${String(count((s) => s.status === -1)).padStart(9)} ${String(count((s) => s.status === 0)).padStart(12)}`)
  }
  const third = Math.max(1, Math.floor(memory.length / 3))
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
  const heapFirst = avg(memory.slice(1, 1 + third).map((m) => m.heapMb))
  const heapLast = avg(memory.slice(-third).map((m) => m.heapMb))
  console.log(`\nmemory: start rss ${memory[0]!.rssMb.toFixed(0)} MB heap ${memory[0]!.heapMb.toFixed(0)} MB; end rss ${memory.at(-1)!.rssMb.toFixed(0)} MB heap ${memory.at(-1)!.heapMb.toFixed(0)} MB; heap mean first third ${heapFirst.toFixed(0)} MB, last third ${heapLast.toFixed(0)} MB`)
  console.log(`pushed ${pushedIds.length} listings; error rate ${(samples.filter((s) => s.status >= 500 || s.status <= 0).length / samples.length * 100).toFixed(3)} %`)
  const failed = samples.filter((s) => s.kind !== 'baseline' && (s.status >= 500 || s.status <= 0)).length
  if (failed > 0 || heapLast > heapFirst * 1.5) {
    console.log(`soak: FAILED (${failed} failed requests${heapLast > heapFirst * 1.5 ? ', heap grew more than 1.5×' : ''})`)
    process.exitCode = 1
  }
}

main()
  .catch((err: unknown) => { console.error(err); process.exitCode = 1 })
  .finally(async () => { for (const fn of cleanups.reverse()) await fn() })
