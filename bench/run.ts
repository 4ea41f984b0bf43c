/**
 * `npm run bench`: the gateway against a bare-Fastify baseline, in one run (STYLE.md "Benchmarks";
 * the shape of fastify/benchmarks' lib/bench.js). See bench/README.md.
 *
 * Starts two child processes on 127.0.0.1 — the real gateway (`node --import tsx src/server.ts`,
 * temp DATA_DIR, LOG_LEVEL=warn, SEED_DEMO=true; embedded PGlite, or PostgreSQL when
 * BENCH_DATABASE_URL is set) and bench/baseline-server.ts — waits for /readyz, then for each
 * target warms up and measures with autocannon:
 *   baseline        GET /v1/baseline  (bare Fastify, the noise reference)
 *   gateway healthz GET /healthz      (unsigned: the gateway's plugins and hooks)
 *   gateway whoami  GET /v1/whoami    (full GW1: key cache, ES256 verify, replay guard, rate limit, response signature)
 * Each signed request carries its own fresh token (demo agency `caac`), signed just before its
 * phase and handed out by autocannon's setupRequest. Prints a table with ratios to the baseline,
 * saves JSON to bench/results/<timestamp>.json, stops the children (also on error or Ctrl-C).
 * Exit code 1 when any measured request failed. Timings are reported, never asserted.
 *
 * Env: BENCH_DATABASE_URL (postgres://…: a fresh database on that server, dropped afterwards;
 * BENCH_KEEP_DB=1 keeps it), BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 3),
 * BENCH_CONNECTIONS (default 32), BENCH_PIPELINING (default 1), BENCH_KEEP_RATE_LIMIT=1 (keep
 * caac's 5 000/s profile limit), BENCH_CPU_PROF=1 (gateway CPU profile to bench/results/profiles/).
 * Anything else in the environment (e.g. UV_THREADPOOL_SIZE) reaches both children.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash, createPrivateKey, randomBytes, randomUUID, sign } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { GatewayClient, readKeyFile, signRequest, type KeyFile } from '../src/client/gw1-client.js'
import { generateGatewayJwk } from '../src/infra/gateway-keys.js'

// ---------------------------------------------------------------- settings

function intEnv(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in [${min}, ${max}], got "${raw}"`)
  return n
}

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const HOST = '127.0.0.1'
const AUDIENCE = 'credit-gateway-bench'
const BASELINE_PATH = '/v1/baseline' // as in bench/baseline-server.ts
const WHOAMI_PATH = '/v1/whoami'
const SETTINGS = {
  durationSeconds: intEnv('BENCH_DURATION', 10, 1, 60),
  warmupSeconds: intEnv('BENCH_WARMUP', 3, 1, 30),
  connections: intEnv('BENCH_CONNECTIONS', 32, 1, 1000),
  pipelining: intEnv('BENCH_PIPELINING', 1, 1, 100),
  /** Token lifetime; DESIGN.md allows at most 300 s. Tokens are minted right before each phase. */
  tokenLifetimeSeconds: 120,
  /** Signed tokens for the measured phase = warm-up rate × duration × this, plus slack. */
  tokenMargin: 2,
  maxTokens: 250_000,
}
const DATABASE_URL = process.env.BENCH_DATABASE_URL || undefined
/** Safety net: whatever happens, the run ends (and the children die) after this. */
const WATCHDOG_MS = 240_000

// ---------------------------------------------------------------- autocannon (no bundled types)

interface AcRequest {
  method?: string
  path?: string
  headers?: Record<string, string>
  setupRequest?: (req: AcRequest, context: unknown) => AcRequest | null
}
interface AcOptions {
  url: string
  connections: number
  pipelining: number
  duration?: number
  timeout?: number
  requests?: AcRequest[]
}
interface AcHistogram { average: number; mean: number; stddev: number; min: number; max: number; p50: number; p90: number; p97_5: number; p99: number; total: number }
interface AcResult {
  duration: number
  errors: number
  timeouts: number
  non2xx: number
  resets: number
  mismatches: number
  '2xx': number
  statusCodeStats: Record<string, { count: number }>
  latency: AcHistogram & { totalCount: number }
  requests: AcHistogram & { sent: number }
  throughput: AcHistogram
}
interface AcInstance {
  on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTimeMs: number) => void): void
}
type Autocannon = (opts: AcOptions, cb: (err: Error | null, result: AcResult) => void) => AcInstance
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon

/** Response times in ms at full resolution (autocannon's own histogram keeps whole milliseconds). */
class Latencies {
  private values = new Float64Array(1 << 16)
  count = 0
  add(ms: number) {
    if (this.count === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2)
      bigger.set(this.values)
      this.values = bigger
    }
    this.values[this.count++] = ms
  }
  percentiles(): { p50: number; p97_5: number; p99: number; mean: number; max: number } {
    const sorted = this.values.slice(0, this.count).sort()
    const at = (q: number) => sorted.length === 0 ? 0 : round2(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!)
    let sum = 0
    for (const v of sorted) sum += v
    return { p50: at(0.5), p97_5: at(0.975), p99: at(0.99), mean: round2(sum / Math.max(1, sorted.length)), max: round2(sorted[sorted.length - 1] ?? 0) }
  }
}

function round2(n: number): number { return Math.round(n * 100) / 100 }

function cannon(opts: AcOptions, latencies?: Latencies): Promise<AcResult> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(opts, (err, result) => err ? reject(err) : resolve(result))
    if (latencies) instance.on('response', (_client, _status, _bytes, ms) => latencies.add(ms))
  })
}

// ---------------------------------------------------------------- child processes

interface Child {
  name: string
  proc: ChildProcess
  /** Everything the child wrote (bounded). */
  output: string[]
  exited: Promise<number | null>
  alive: boolean
}

const children: Child[] = []

function startChild(name: string, script: string, env: Record<string, string>, nodeArgs: string[] = []): Child {
  const base = { ...process.env }
  for (const k of ['DATABASE_URL', 'GATEWAY_SIGNING_KEY', 'GATEWAY_SIGNING_KEY_FILE', 'IDENTIFIER_HASH_SECRET', 'SEED_DEMO', 'PORT', 'HOST', 'DATA_DIR', 'GATEWAY_ID', 'LOG_LEVEL']) delete base[k]
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script], { cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  const child: Child = { name, proc, output: [], alive: true, exited: Promise.resolve(null) }
  child.exited = new Promise((resolve) => {
    proc.once('exit', (code) => { child.alive = false; resolve(code) })
    proc.once('error', (err) => { child.output.push(`spawn error: ${err.message}\n`); child.alive = false; resolve(null) })
  })
  let bytes = 0
  const collect = (chunk: Buffer) => {
    if (bytes > 1_000_000) return
    bytes += chunk.length
    child.output.push(chunk.toString('utf8'))
  }
  proc.stdout?.on('data', collect)
  proc.stderr?.on('data', collect)
  children.push(child)
  return child
}

async function stopChild(child: Child): Promise<void> {
  if (!child.alive) return
  child.proc.kill('SIGTERM')
  const timer = setTimeout(() => { if (child.alive) child.proc.kill('SIGKILL') }, 5_000)
  await child.exited
  clearTimeout(timer)
}

/** Undo steps (temp folder, database), run once after the children are stopped. */
const cleanups: Array<() => unknown> = []
let cleaning: Promise<void> | undefined

function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await Promise.all(children.map(stopChild))
    for (const fn of cleanups.reverse()) {
      try { await fn() } catch (err) { console.error(`bench cleanup: ${(err as Error).message}`) }
    }
  })()
  return cleaning
}

/** Last resort on any exit path: nothing we started outlives us. */
process.on('exit', () => { for (const c of children) if (c.alive) c.proc.kill('SIGKILL') })

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, HOST, () => {
      const address = srv.address()
      const port = typeof address === 'object' && address ? address.port : 0
      srv.close(() => resolve(port))
    })
  })
}

async function waitReady(child: Child, url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (!child.alive) throw new Error(`${child.name} exited before it was ready:\n${child.output.join('').slice(-4000)}`)
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) })
      await res.arrayBuffer()
      if (res.ok) return
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`${child.name} not ready at ${url} after ${timeoutMs} ms:\n${child.output.join('').slice(-4000)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

// ---------------------------------------------------------------- CPU accounting (Linux /proc; best effort)

const CLOCK_TICKS = 100 // USER_HZ on Linux

function procCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS // utime, stime
  } catch { return undefined }
}

function machineCpu(): { busy: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!
    const v = line.trim().split(/\s+/).slice(1).map(Number)
    const idle = (v[3] ?? 0) + (v[4] ?? 0)
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
    return { busy: (total - idle) / CLOCK_TICKS, total: total / CLOCK_TICKS }
  } catch { return undefined }
}

/** Per-thread run time and run-queue wait (ns) from /proc/<pid>/task/<tid>/schedstat. */
function threadSchedStats(pid: number | undefined): { mainRun: number; mainWait: number; othersRun: number } | undefined {
  if (pid === undefined) return undefined
  try {
    let mainRun = 0
    let mainWait = 0
    let othersRun = 0
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      let fields: number[]
      try { fields = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number) } catch { continue }
      if (Number(tid) === pid) { mainRun = fields[0] ?? 0; mainWait = fields[1] ?? 0 } else othersRun += fields[0] ?? 0
    }
    return { mainRun, mainWait, othersRun }
  } catch { return undefined }
}

interface CpuShare {
  /** Cores' worth of CPU (1.0 = one core fully busy) over the measured phase: the target process. */
  server: number | undefined
  /** The target's main thread (event loop): running, and runnable but waiting for a CPU. */
  serverMainThread: number | undefined
  serverMainThreadRunQueueWait: number | undefined
  /** The target's other threads: libuv threadpool (crypto callbacks), V8 GC helpers, loader. */
  serverOtherThreads: number | undefined
  /** This process (autocannon). */
  loadGenerator: number
  /** Everything else on the machine: PostgreSQL backends, other jobs. */
  other: number | undefined
  machineBusyPercent: number | undefined
}

async function withCpu<T>(serverPid: number | undefined, fn: () => Promise<T>): Promise<{ value: T; cpu: CpuShare }> {
  const t0 = process.hrtime.bigint()
  const s0 = procCpuSeconds(serverPid)
  const th0 = threadSchedStats(serverPid)
  const b0 = process.cpuUsage()
  const m0 = machineCpu()
  const value = await fn()
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const s1 = procCpuSeconds(serverPid)
  const th1 = threadSchedStats(serverPid)
  const b = process.cpuUsage(b0)
  const m1 = machineCpu()
  const server = s0 !== undefined && s1 !== undefined ? (s1 - s0) / wall : undefined
  const loadGenerator = (b.user + b.system) / 1e6 / wall
  const machineBusy = m0 && m1 ? (m1.busy - m0.busy) / wall : undefined
  const perWallNs = (a: number | undefined, z: number | undefined) => a === undefined || z === undefined ? undefined : round2((z - a) / 1e9 / wall)
  return {
    value,
    cpu: {
      server: server === undefined ? undefined : round2(server),
      serverMainThread: perWallNs(th0?.mainRun, th1?.mainRun),
      serverMainThreadRunQueueWait: perWallNs(th0?.mainWait, th1?.mainWait),
      serverOtherThreads: perWallNs(th0?.othersRun, th1?.othersRun),
      loadGenerator: round2(loadGenerator),
      other: machineBusy !== undefined && server !== undefined ? round2(Math.max(0, machineBusy - server - loadGenerator)) : undefined,
      machineBusyPercent: m0 && m1 ? Math.round(((m1.busy - m0.busy) / (m1.total - m0.total)) * 100) : undefined,
    },
  }
}

// ---------------------------------------------------------------- signed tokens

/**
 * Signs GW1 tokens for GET /v1/whoami exactly as the client SDK's signRequest does (same header,
 * same claims in the same order), but with the private key imported once and node:crypto's
 * one-shot sign: ~10× the SDK's rate, which re-imports the JWK on every call (about 2 500
 * tokens/s here). So a generous pool signs in a couple of seconds, right before its phase.
 * `checkAgainstSdk` proves the equivalence byte for byte at the start of every run.
 */
function createTokenMinter(key: KeyFile) {
  const { alg, kid } = key.privateJwk
  const privateKey = createPrivateKey({ key: key.privateJwk as Record<string, unknown>, format: 'jwk' })
  const header = Buffer.from(JSON.stringify({ alg, kid, typ: 'gw1+jwt' })).toString('base64url')
  const bsh = createHash('sha256').update(Buffer.alloc(0)).digest('base64url')
  const signingInput = (now: number, jti: string) => {
    const claims = { htm: 'GET', htu: WHOAMI_PATH, bsh, iss: key.principalId, aud: AUDIENCE, iat: now, exp: now + SETTINGS.tokenLifetimeSeconds, jti }
    return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
  }
  const signOne = (input: string) => {
    const data = Buffer.from(input)
    const sig = alg === 'ES256' ? sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' })
      : alg === 'EdDSA' ? sign(null, data, privateKey)
        : sign('sha256', data, privateKey)
    return `GW1 ${input}.${sig.toString('base64url')}`
  }
  return {
    /** Fails unless the SDK would have produced the same signing input (header and claims). */
    async checkAgainstSdk(): Promise<void> {
      const now = Math.floor(Date.now() / 1000)
      const jti = randomUUID()
      const sdk = await signRequest({ method: 'GET', pathWithQuery: WHOAMI_PATH, audience: AUDIENCE, key, now, jti, lifetimeSeconds: SETTINGS.tokenLifetimeSeconds })
      const sdkInput = sdk.authorization.slice('GW1 '.length).split('.').slice(0, 2).join('.')
      if (sdkInput !== signingInput(now, jti)) {
        throw new Error(`bench token minter out of step with src/client/gw1-client.ts signRequest:\n sdk   ${sdkInput}\n bench ${signingInput(now, jti)}`)
      }
    },
    mint(n: number): { tokens: string[]; seconds: number } {
      const t0 = performance.now()
      const now = Math.floor(Date.now() / 1000)
      const tokens = new Array<string>(n)
      for (let i = 0; i < n; i++) tokens[i] = signOne(signingInput(now, randomUUID()))
      return { tokens, seconds: (performance.now() - t0) / 1000 }
    },
  }
}

type TokenMinter = ReturnType<typeof createTokenMinter>

/** Hands each request the next unused token; never reuses one (a reuse would be a 401 replay). */
class TokenFeed {
  private i = 0
  exhausted = 0
  constructor(private readonly tokens: string[]) {}
  get used() { return Math.min(this.i, this.tokens.length) }
  request(): AcRequest {
    return {
      method: 'GET',
      path: WHOAMI_PATH,
      setupRequest: (req) => {
        const token = this.tokens[this.i++]
        // Out of tokens: send unsigned, so the shortfall shows up as 401s instead of passing silently.
        if (token === undefined) { this.exhausted++; return req }
        req.headers = { ...req.headers, authorization: token }
        return req
      },
    }
  }
}

// ---------------------------------------------------------------- measuring

interface Target { name: string; url: string; serverPid: number | undefined; signed: boolean }

interface Measurement {
  target: string
  url: string
  reqPerSec: number
  /** From every response's own timing, at full resolution. */
  latencyMs: { p50: number; p97_5: number; p99: number; mean: number; max: number }
  /** autocannon's histogram (whole milliseconds), for comparison with other autocannon runs. */
  autocannonLatencyMs: { p50: number; p97_5: number; p99: number; mean: number; max: number }
  requests: number
  non2xx: number
  errors: number
  timeouts: number
  statusCodes: Record<string, number>
  bytesPerSec: number
  durationSeconds: number
  cpu: CpuShare
  warmup: { requests: number; ok2xx: number; reqPerSec: number; non2xx: number; errors: number }
  tokens?: { minted: number; used: number; exhausted: number; mintSeconds: number; warmupMinted: number }
}

function acOptions(url: string, extra: Partial<AcOptions>): AcOptions {
  return { url, connections: SETTINGS.connections, pipelining: SETTINGS.pipelining, timeout: 10, ...extra }
}

function statusCodes(r: AcResult): Record<string, number> {
  return Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, v.count]))
}

async function measure(target: Target, minter: TokenMinter | undefined): Promise<Measurement> {
  const log = (msg: string) => console.error(`  [${target.name}] ${msg}`)
  const latencies = new Latencies()
  let warm: AcResult
  let run: AcResult
  let cpu: CpuShare
  let tokens: Measurement['tokens']
  if (!target.signed) {
    log(`warm-up ${SETTINGS.warmupSeconds} s`)
    warm = await cannon(acOptions(target.url, { duration: SETTINGS.warmupSeconds }))
    log(`measure ${SETTINGS.durationSeconds} s`)
    ;({ value: run, cpu } = await withCpu(target.serverPid, () => cannon(acOptions(target.url, { duration: SETTINGS.durationSeconds }), latencies)))
  } else {
    if (!minter) throw new Error('a signed target needs a token minter')
    // Warm-up for a fixed time too, with a pool no run on this kind of machine can drain.
    const warmPool = minter.mint(SETTINGS.warmupSeconds * 10_000)
    log(`warm-up ${SETTINGS.warmupSeconds} s (${warmPool.tokens.length} tokens signed in ${warmPool.seconds.toFixed(1)} s)`)
    const warmFeed = new TokenFeed(warmPool.tokens)
    warm = await cannon(acOptions(target.url, { duration: SETTINGS.warmupSeconds, requests: [warmFeed.request()] }))
    if (warmFeed.exhausted > 0) log(`warm-up ran out of tokens (${warmFeed.exhausted} unsigned requests)`)
    // Size the measured pool on the best one-second warm-up sample (2xx only), with a wide margin:
    // on a shared 2-core machine the rate swings by tens of percent from one phase to the next.
    const warmRate = Math.max(warm.requests.max, (warm['2xx'] ?? 0) / Math.max(warm.duration, 0.1))
    const n = Math.min(SETTINGS.maxTokens, Math.max(20_000, Math.ceil(warmRate * SETTINGS.durationSeconds * SETTINGS.tokenMargin) + 8 * SETTINGS.connections))
    const pool = minter.mint(n)
    log(`warm-up peak ${warmRate.toFixed(0)} req/s; ${n} tokens signed in ${pool.seconds.toFixed(1)} s; measure ${SETTINGS.durationSeconds} s`)
    const feed = new TokenFeed(pool.tokens)
    ;({ value: run, cpu } = await withCpu(target.serverPid, () => cannon(acOptions(target.url, { duration: SETTINGS.durationSeconds, requests: [feed.request()] }), latencies)))
    tokens = { minted: n, used: feed.used, exhausted: feed.exhausted, mintSeconds: round2(pool.seconds), warmupMinted: warmPool.tokens.length }
    if (feed.exhausted > 0) log(`RAN OUT OF TOKENS: ${feed.exhausted} requests went unsigned`)
  }
  const m: Measurement = {
    target: target.name,
    url: target.url,
    reqPerSec: run.requests.mean,
    latencyMs: latencies.percentiles(),
    autocannonLatencyMs: { p50: run.latency.p50, p97_5: run.latency.p97_5, p99: run.latency.p99, mean: run.latency.mean, max: run.latency.max },
    requests: run.requests.total,
    non2xx: run.non2xx,
    errors: run.errors,
    timeouts: run.timeouts,
    statusCodes: statusCodes(run),
    bytesPerSec: run.throughput.mean,
    durationSeconds: run.duration,
    cpu,
    warmup: { requests: warm.requests.total, ok2xx: warm['2xx'], reqPerSec: Math.round(warm.requests.total / Math.max(warm.duration, 0.1)), non2xx: warm.non2xx, errors: warm.errors },
    ...(tokens ? { tokens } : {}),
  }
  log(`${m.reqPerSec.toFixed(0)} req/s, p50 ${m.latencyMs.p50} ms, p99 ${m.latencyMs.p99} ms, non-2xx ${m.non2xx}, errors ${m.errors}`)
  return m
}

// ---------------------------------------------------------------- report

function ratio(value: number, base: number): string {
  if (!(base > 0)) return '  n/a'
  return `${(value / base).toFixed(2)}×`
}

function printTable(rows: Measurement[], baseline: Measurement): string {
  const header = ['target', 'req/s', 'p50 ms', 'p97.5 ms', 'p99 ms', 'non-2xx', 'errors', 'CPU server', 'loadgen', 'other']
  const cells = rows.map((m) => [
    m.target,
    `${Math.round(m.reqPerSec).toLocaleString('en-US')} (${ratio(m.reqPerSec, baseline.reqPerSec)})`,
    `${m.latencyMs.p50.toFixed(2)} (${ratio(m.latencyMs.p50, baseline.latencyMs.p50)})`,
    `${m.latencyMs.p97_5.toFixed(2)} (${ratio(m.latencyMs.p97_5, baseline.latencyMs.p97_5)})`,
    `${m.latencyMs.p99.toFixed(2)} (${ratio(m.latencyMs.p99, baseline.latencyMs.p99)})`,
    `${m.non2xx}`,
    `${m.errors + m.timeouts}`,
    m.cpu.server === undefined ? 'n/a' : m.cpu.server.toFixed(2),
    m.cpu.loadGenerator.toFixed(2),
    m.cpu.other === undefined ? 'n/a' : m.cpu.other.toFixed(2),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)))
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ')
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n')
}

// ---------------------------------------------------------------- main

async function createBenchDatabase(baseUrl: string): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const name = `credit_gateway_bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`
  const admin = postgres(baseUrl, { max: 1, onnotice: () => {} })
  await admin.unsafe(`CREATE DATABASE "${name}"`)
  const url = new URL(baseUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    name,
    async drop() {
      try {
        if (process.env.BENCH_KEEP_DB !== '1') await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
      } finally { await admin.end({ timeout: 5 }) }
    },
  }
}

/**
 * The demo agency's profile caps it at 5 000 requests/s (src/infra/rate-limit.ts), which a quiet
 * 2-core machine already exceeds on /v1/whoami: the run would measure the limiter's 429s, not the
 * GW1 path. So, through the admin API as an operator would, raise caac's limit for this run's
 * throw-away database (the limiter still runs on every request). BENCH_KEEP_RATE_LIMIT=1 keeps it.
 */
async function liftRateLimit(gatewayUrl: string, adminKey: KeyFile, principalId: string): Promise<{ before: unknown; after: unknown; note: string }> {
  const admin = new GatewayClient({ baseUrl: gatewayUrl, key: adminKey, audience: AUDIENCE })
  const current = await admin.request<{ profile: Record<string, unknown> }>('GET', `/v1/principals/${principalId}`)
  if (current.status !== 200) throw new Error(`cannot read principal ${principalId}: ${current.status} ${current.raw.toString('utf8').slice(0, 300)}`)
  const before = current.body.profile.rateLimit
  if (process.env.BENCH_KEEP_RATE_LIMIT === '1') return { before, after: before, note: `${principalId} rate limit kept at ${JSON.stringify(before)}` }
  const after = { max: 1_000_000, timeWindowSeconds: 1 }
  const res = await admin.request('PATCH', `/v1/principals/${principalId}`, { profile: { ...current.body.profile, rateLimit: after } })
  if (res.status !== 200) throw new Error(`cannot lift the rate limit of ${principalId}: ${res.status} ${res.raw.toString('utf8').slice(0, 300)}`)
  return { before, after, note: `${principalId} rate limit lifted from ${JSON.stringify(before)} to ${JSON.stringify(after)} for this run` }
}

async function sanityCheck(gatewayUrl: string, key: KeyFile): Promise<{ whoamiBytes: number; replayRejected: boolean }> {
  // The SDK end to end: sign, send, verify X-GW-Signature against the gateway's JWKS.
  const client = new GatewayClient({ baseUrl: gatewayUrl, key, audience: AUDIENCE })
  const res = await client.request<{ id: string }>('GET', WHOAMI_PATH)
  if (res.status !== 200 || res.body.id !== key.principalId) throw new Error(`sanity: whoami answered ${res.status} ${res.raw.toString('utf8').slice(0, 300)}`)
  // The replay guard is live (otherwise the signed figure would flatter the gateway).
  const { authorization } = await signRequest({ method: 'GET', pathWithQuery: WHOAMI_PATH, audience: AUDIENCE, key })
  const first = await fetch(gatewayUrl + WHOAMI_PATH, { headers: { authorization } })
  await first.arrayBuffer()
  const second = await fetch(gatewayUrl + WHOAMI_PATH, { headers: { authorization } })
  const problem = (await second.json()) as { code?: string }
  return { whoamiBytes: res.raw.length, replayRejected: first.status === 200 && second.status === 401 && problem.code === 'auth.replayed' }
}

function gatewayLogSummary(child: Child): { warnings: number; errors: number; samples: string[] } {
  let warnings = 0
  let errors = 0
  const samples: string[] = []
  for (const line of child.output.join('').split('\n')) {
    const m = /"level":(\d+)/.exec(line)
    if (!m) continue
    const level = Number(m[1])
    if (level >= 50) errors++
    else if (level >= 40) warnings++
    if (level >= 40 && samples.length < 5) samples.push(line.slice(0, 500))
  }
  return { warnings, errors, samples }
}

/** Signs that the machine was busy with something else, so that the ratios deserve less trust. */
function noiseWarnings(results: Measurement[]): string[] {
  const warnings: string[] = []
  const first = results[0]!
  const repeat = results[results.length - 1]!
  const drift = repeat.reqPerSec / first.reqPerSec - 1
  if (Math.abs(drift) > 0.15) warnings.push(`the baseline moved ${(drift * 100).toFixed(0)}% between the first and the last phase; rerun for ratios you can trust`)
  const busy = results.filter((m) => (m.cpu.other ?? 0) > 0.3)
  if (busy.length > 0) warnings.push(`other processes used ${busy.map((m) => `${m.cpu.other!.toFixed(2)} cores during "${m.target}"`).join(', ')}`)
  return warnings
}

/** Which code was measured: the commit, and the source files changed since (the tree may move under a run). */
function gitState(): { commit: string | undefined; changedFiles: string[] } {
  const run = (args: string[]) => {
    const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' })
    return r.status === 0 ? r.stdout.trimEnd() : undefined
  }
  const changed = run(['status', '--porcelain', '--', 'src', 'schemas', 'migrations', 'package.json'])
  return { commit: run(['rev-parse', 'HEAD']), changedFiles: changed ? changed.split('\n').map((l) => l.slice(3)) : [] }
}

async function main(): Promise<number> {
  const startedAt = new Date()
  // Other work on the machine skews every figure; the baseline ratio absorbs part of it, not all.
  const loadAtStart = loadavg().map((n) => round2(n))
  const dataDir = mkdtempSync(join(tmpdir(), 'credit-gateway-bench-'))
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }))
  let database: Awaited<ReturnType<typeof createBenchDatabase>> | undefined
  try {
    const [gatewayPort, baselinePort] = [await freePort(), await freePort()]
    const gatewayEnv: Record<string, string> = {
      HOST, PORT: String(gatewayPort), DATA_DIR: dataDir, GATEWAY_ID: AUDIENCE, LOG_LEVEL: 'warn', SEED_DEMO: 'true',
    }
    if (DATABASE_URL) {
      database = await createBenchDatabase(DATABASE_URL)
      cleanups.push(database.drop)
      gatewayEnv.DATABASE_URL = database.url
      gatewayEnv.GATEWAY_SIGNING_KEY = JSON.stringify(generateGatewayJwk())
      gatewayEnv.IDENTIFIER_HASH_SECRET = randomBytes(32).toString('base64url')
    }
    const engine = DATABASE_URL ? `postgresql (${database!.name})` : 'pglite'
    console.error(`credit-gateway bench: ${engine}; ${SETTINGS.connections} connections, pipelining ${SETTINGS.pipelining}, warm-up ${SETTINGS.warmupSeconds} s, measure ${SETTINGS.durationSeconds} s per target; ${cpus().length} CPUs, load average ${loadAtStart.join(' ')}`)

    // BENCH_CPU_PROF=1: the gateway writes a V8 CPU profile on exit, to bench/results/profiles/.
    const profileDir = join(ROOT, 'bench', 'results', 'profiles')
    const gateway = startChild('gateway', 'src/server.ts', gatewayEnv, process.env.BENCH_CPU_PROF === '1' ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])
    const baseline = startChild('baseline', 'bench/baseline-server.ts', { HOST, PORT: String(baselinePort) })
    const gatewayUrl = `http://${HOST}:${gatewayPort}`
    const baselineUrl = `http://${HOST}:${baselinePort}`
    await Promise.all([waitReady(gateway, `${gatewayUrl}/readyz`), waitReady(baseline, baselineUrl + BASELINE_PATH)])

    const key = readKeyFile(join(dataDir, 'demo-keys', 'caac.json'))
    const rateLimit = await liftRateLimit(gatewayUrl, readKeyFile(join(dataDir, 'demo-keys', 'admin-demo.json')), key.principalId)
    const minter = createTokenMinter(key)
    await minter.checkAgainstSdk()
    const sanityBefore = await sanityCheck(gatewayUrl, key)
    if (!sanityBefore.replayRejected) throw new Error('sanity: a replayed token was not rejected with auth.replayed')
    const baselineBytes = Buffer.from(await (await fetch(baselineUrl + BASELINE_PATH)).arrayBuffer()).length
    console.error(`  ready; body bytes: baseline ${baselineBytes}, whoami ${sanityBefore.whoamiBytes}; replay guard live; ${rateLimit.note}`)

    const targets: Target[] = [
      { name: 'baseline (bare fastify)', url: baselineUrl + BASELINE_PATH, serverPid: baseline.proc.pid, signed: false },
      { name: 'gateway GET /healthz', url: `${gatewayUrl}/healthz`, serverPid: gateway.proc.pid, signed: false },
      { name: 'gateway GET /v1/whoami (GW1)', url: gatewayUrl + WHOAMI_PATH, serverPid: gateway.proc.pid, signed: true },
      // Measured again last: if the machine's load changed during the run, this row shows it.
      { name: 'baseline (repeat)', url: baselineUrl + BASELINE_PATH, serverPid: baseline.proc.pid, signed: false },
    ]
    const results: Measurement[] = []
    for (const t of targets) results.push(await measure(t, minter))

    // After the load: still answering, still verifying; on PostgreSQL every accepted jti is on record.
    const sanityAfter = await sanityCheck(gatewayUrl, key)
    let usedJtis: number | undefined
    if (database) {
      const check = postgres(database.url, { max: 1, onnotice: () => {} })
      try { usedJtis = (await check.unsafe<{ n: number }[]>('SELECT count(*)::int AS n FROM used_jtis WHERE iss = $1', [key.principalId]))[0]?.n } finally { await check.end({ timeout: 5 }) }
    }
    const whoami = results[2]!
    const whoami2xx = (whoami.statusCodes['200'] ?? 0)
    const logs = gatewayLogSummary(gateway)

    const baselineRow = results[0]!
    const table = printTable(results, baselineRow)
    const failed = results.filter((m) => m.non2xx > 0 || m.errors > 0 || m.timeouts > 0 || (m.tokens?.exhausted ?? 0) > 0)
    console.log(`\ncredit-gateway bench — ${engine}, ${SETTINGS.connections} connections × pipelining ${SETTINGS.pipelining}, ${SETTINGS.durationSeconds} s each, ${cpus().length} CPUs (load generator shares them), load average at start ${loadAtStart.join(' ')}`)
    const source = gitState()
    const changed = source.changedFiles.length > 4 ? `${source.changedFiles.length} source files (listed in the JSON)` : source.changedFiles.join(', ')
    console.log(`source: ${source.commit?.slice(0, 12) ?? 'unknown commit'}${source.changedFiles.length ? ` + uncommitted changes in ${changed}` : ''}; ${rateLimit.note}`)
    console.log('ratios in parentheses are to the baseline of this run; CPU in cores (1.00 = one core busy) over each measured phase:')
    console.log('server = the target process, loadgen = this process (autocannon), other = the rest of the machine (PostgreSQL, other jobs)\n')
    console.log(table)
    console.log('\nserver threads (cores): event loop running / event loop runnable but waiting for a CPU / other threads (threadpool, GC)')
    for (const m of results) {
      const f = (n: number | undefined) => n === undefined ? 'n/a' : n.toFixed(2)
      console.log(`  ${m.target.padEnd(30)} ${f(m.cpu.serverMainThread)} / ${f(m.cpu.serverMainThreadRunQueueWait)} / ${f(m.cpu.serverOtherThreads)}`)
    }
    console.log('')
    if (whoami.tokens) console.log(`signed tokens: ${whoami.tokens.used} used of ${whoami.tokens.minted} minted (${whoami.tokens.mintSeconds} s to sign), ${whoami.tokens.exhausted} requests without a token`)
    // Every 200 must have committed its jti. The table can hold a few more rows than the client saw:
    // requests still in flight when autocannon stops a phase are answered, but no longer counted.
    const acceptedSeen = whoami2xx + whoami.warmup.ok2xx + 4 // + two accepted sanity calls before and after
    if (usedJtis !== undefined) console.log(`used_jtis rows for ${key.principalId}: ${usedJtis}; 200s seen by the client ${acceptedSeen} (difference ${usedJtis - acceptedSeen}, expected 0..${2 * SETTINGS.connections}: in flight when a phase stopped)`)
    console.log(`replay guard live: before ${sanityBefore.replayRejected}, after ${sanityAfter.replayRejected}; gateway log: ${logs.warnings} warnings, ${logs.errors} errors`)
    for (const s of logs.samples) console.log(`  ${s}`)
    const noise = noiseWarnings(results)
    for (const w of noise) console.log(`NOISY RUN: ${w}`)
    const jtisOk = usedJtis === undefined || (usedJtis >= acceptedSeen && usedJtis - acceptedSeen <= 2 * SETTINGS.connections)
    if (!jtisOk) console.log(`RUN HAS ERRORS: used_jtis holds ${usedJtis} rows, the client saw ${acceptedSeen} accepted requests`)
    if (!sanityAfter.replayRejected) console.log('RUN HAS ERRORS: after the load a replayed token was not rejected')
    for (const m of failed) console.log(`RUN HAS ERRORS: ${m.target}: non-2xx ${m.non2xx} ${JSON.stringify(m.statusCodes)}, errors ${m.errors}, timeouts ${m.timeouts}${m.tokens?.exhausted ? `, ${m.tokens.exhausted} without a token` : ''}`)

    const report = {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      engine: DATABASE_URL ? 'postgresql' : 'pglite',
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, platform: process.platform, loadAverageAtStart: loadAtStart, uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? 'default (4)' },
      settings: SETTINGS,
      source,
      bodyBytes: { baseline: baselineBytes, whoami: sanityBefore.whoamiBytes },
      rateLimit: { principal: key.principalId, before: rateLimit.before, during: rateLimit.after },
      results: results.map((m) => ({
        ...m,
        ratioToBaseline: {
          reqPerSec: m.reqPerSec / baselineRow.reqPerSec,
          p50: m.latencyMs.p50 / baselineRow.latencyMs.p50,
          p97_5: m.latencyMs.p97_5 / baselineRow.latencyMs.p97_5,
          p99: m.latencyMs.p99 / baselineRow.latencyMs.p99,
        },
      })),
      noiseWarnings: noise,
      checks: { replayRejectedBefore: sanityBefore.replayRejected, replayRejectedAfter: sanityAfter.replayRejected, usedJtis, whoami200sSeen: acceptedSeen, gatewayLog: logs },
      ok: failed.length === 0 && sanityAfter.replayRejected && jtisOk,
    }
    const dir = join(ROOT, 'bench', 'results')
    mkdirSync(dir, { recursive: true })
    const file = join(dir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
    writeFileSync(file, JSON.stringify(report, null, 2) + '\n')
    console.log(`\nsaved ${file}`)
    return report.ok ? 0 : 1
  } finally {
    await cleanup()
  }
}

const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${WATCHDOG_MS / 1000} s; stopping`)
  setTimeout(() => process.exit(2), 15_000).unref()
  void cleanup().finally(() => process.exit(2))
}, WATCHDOG_MS)
watchdog.unref()

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`bench: ${signal}, stopping children`)
    void cleanup().finally(() => process.exit(130))
  })
}

main().then((code) => { process.exitCode = code }, (err: unknown) => {
  console.error(err)
  process.exitCode = 1
})
