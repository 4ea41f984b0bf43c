/**
 * `npm run bench`: the gateway against a bare-Fastify baseline, in one run (STYLE.md "Benchmarks";
 * the shape of fastify/benchmarks' lib/bench.js). See bench/README.md.
 *
 * Starts two child processes on 127.0.0.1 — the real gateway (`node --import tsx src/server.ts`,
 * temp DATA_DIR, LOG_LEVEL=warn, SEED_DEMO=true; embedded PGlite, or PostgreSQL when
 * BENCH_DATABASE_URL is set) and bench/baseline-server.ts — waits for /readyz, then for each
 * target warms up and measures with autocannon:
 *   baseline        GET /v1/baseline     (bare Fastify, the noise reference)
 *   gateway healthz GET /healthz         (unsigned: the gateway's plugins and hooks)
 *   gateway whoami  GET /v1/whoami       (full GW1: key cache, ES256 verify, replay guard, rate limit, response signature)
 *   match ×3        POST /v1/match       (GW1 with an ES256, an EdDSA and an RS256 client key + index look-up
 *                                         + detail read for hits + audit group commit + signed answer)
 *   batch           POST /v1/match/batch (1 000 subjects per request: subjects matched per second)
 *   baseline again  GET /v1/baseline     (drift check)
 * Each signed request carries its own fresh token, bound to its body (bsh), signed before its phase
 * in worker threads and handed out by autocannon's setupRequest. Match subjects: 10% listed (read
 * from the demo data through GET /v1/changes), 90% valid resident ids that are not listed.
 * After the load: the replay guard and the match answers again, and (gateway stopped) the audit
 * hash chains it wrote. Prints a table with ratios to the baseline and the issue's goals beside the
 * figures (reported, never asserted), saves JSON to bench/results/<timestamp>.json, stops the
 * children (also on error or Ctrl-C). Exit code 1 when any measured request failed or a check did.
 *
 * Env: BENCH_DATABASE_URL (postgres://…: a fresh database on that server, dropped afterwards;
 * BENCH_KEEP_DB=1 keeps it), BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 3),
 * BENCH_CONNECTIONS (default 50), BENCH_BATCH_CONNECTIONS (default 8), BENCH_PIPELINING (default 1),
 * BENCH_KEEP_RATE_LIMIT=1 (keep caac's 5 000/s profile limit), BENCH_CPU_PROF=1 (gateway CPU
 * profile to bench/results/profiles/; summarise it with bench/profile-summary.ts).
 * Anything else in the environment (e.g. UV_THREADPOOL_SIZE) reaches both children.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createServer } from 'node:net'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import postgres from 'postgres'
import { GatewayClient, readKeyFile, signRequest, type KeyFile } from '../src/client/gw1-client.js'
import { openDatabase } from '../src/infra/db.js'
import { generateGatewayJwk } from '../src/infra/gateway-keys.js'
import { verifyAuditChain, type AuditVerifyResult } from '../src/modules/audit/audit.verify.js'
import { residentIdCheckChar } from '../src/modules/identity/identity.models.js'
import { generatePrincipalKey } from '../src/modules/principals/principals.keygen.js'
import type { KeyAlg } from '../src/modules/principals/principals.models.js'

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
const MATCH_PATH = '/v1/match'
const BATCH_PATH = '/v1/match/batch'
/** In the demo agencies' profiles (src/modules/demo/demo.seed.ts) and the bench agencies'. */
const SCENARIO = 'TICKET_AIR'
const SETTINGS = {
  durationSeconds: intEnv('BENCH_DURATION', 10, 1, 60),
  warmupSeconds: intEnv('BENCH_WARMUP', 3, 1, 30),
  /** The issue's single-match goal is stated at 50 connections; every single-request phase uses the same. */
  connections: intEnv('BENCH_CONNECTIONS', 50, 1, 1000),
  /** Batch requests carry 1 000 subjects each: a few connections keep the server busy. */
  batchConnections: intEnv('BENCH_BATCH_CONNECTIONS', 8, 1, 1000),
  pipelining: intEnv('BENCH_PIPELINING', 1, 1, 100),
  batchSubjects: 1_000,
  /** Share of match subjects that are listed; the rest are valid resident ids that are not. */
  listedShare: 0.1,
  /** Distinct single-match bodies (tokens are bound to them round-robin) and distinct batch bodies. */
  singleBodies: 10_000,
  batchBodies: 16,
  /** Token lifetime; DESIGN.md allows at most 300 s. Tokens are minted right before each phase. */
  tokenLifetimeSeconds: 120,
  /** Signed tokens for the measured phase = warm-up rate × duration × margin, plus slack. */
  tokenMargin: 2,
  /** RS256 signing is ~10× slower than ES256 or EdDSA: a smaller margin keeps the run short. */
  rsaTokenMargin: 1.5,
  maxTokens: 250_000,
}
const DATABASE_URL = process.env.BENCH_DATABASE_URL || undefined
/** Safety net: whatever happens, the run ends (and the children die) after this. */
const WATCHDOG_MS = 270_000

/** Issue 4 item 6, on this 2-core machine with the load generator on it: printed beside the figures, never asserted. */
const GOALS = {
  singleMatchRatioToBaseline: 0.25,
  singleMatchP99Ms: 25,
  singleMatchConnections: 50,
  batchSubjectsPerSecond: 750_000,
}

// ---------------------------------------------------------------- autocannon (no bundled types)

interface AcRequest {
  method?: string
  path?: string
  headers?: Record<string, string>
  body?: Buffer | string
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
  /** PostgreSQL: the backends of the run's database and the server's background processes (undefined with PGlite, which runs inside the server). */
  database: number | undefined
  /** This process (autocannon). */
  loadGenerator: number
  /** Everything else on the machine: other jobs (and, without a database figure, PostgreSQL). */
  other: number | undefined
  machineBusyPercent: number | undefined
}

/**
 * The PostgreSQL processes working for this run, to charge their CPU to `database` instead of
 * `other`: the backends connected to the run's database and the server's background processes
 * (WAL writer, checkpointer, ...; they serve every database, but on a quiet machine only this one).
 * Their CPU comes from /proc, so only for a server on this machine; best effort.
 */
function databaseProcesses(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  return {
    async pids(): Promise<number[]> {
      const rows = await sql.unsafe<{ pid: number }[]>('SELECT pid FROM pg_stat_activity WHERE (datname = current_database() OR datname IS NULL) AND pid <> pg_backend_pid()')
      return rows.map((r) => r.pid)
    },
    close: () => sql.end({ timeout: 5 }),
  }
}

function sumCpuSeconds(pids: number[]): Map<number, number> {
  const out = new Map<number, number>()
  for (const pid of pids) { const v = procCpuSeconds(pid); if (v !== undefined) out.set(pid, v) }
  return out
}

async function withCpu<T>(serverPid: number | undefined, fn: () => Promise<T>, databasePids?: number[]): Promise<{ value: T; cpu: CpuShare }> {
  const t0 = process.hrtime.bigint()
  const s0 = procCpuSeconds(serverPid)
  const th0 = threadSchedStats(serverPid)
  const d0 = databasePids ? sumCpuSeconds(databasePids) : undefined
  const b0 = process.cpuUsage()
  const m0 = machineCpu()
  const value = await fn()
  const wall = Number(process.hrtime.bigint() - t0) / 1e9
  const s1 = procCpuSeconds(serverPid)
  const th1 = threadSchedStats(serverPid)
  const d1 = databasePids ? sumCpuSeconds(databasePids) : undefined
  const b = process.cpuUsage(b0)
  const m1 = machineCpu()
  const server = s0 !== undefined && s1 !== undefined ? (s1 - s0) / wall : undefined
  // Processes that ended during the phase are left out (their CPU stays in `other`).
  let database: number | undefined
  if (d0 && d1 && d0.size > 0) {
    database = 0
    for (const [pid, v] of d1) { const start = d0.get(pid); if (start !== undefined) database += (v - start) / wall }
  }
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
      database: database === undefined ? undefined : round2(database),
      loadGenerator: round2(loadGenerator),
      other: machineBusy !== undefined && server !== undefined ? round2(Math.max(0, machineBusy - server - loadGenerator - (database ?? 0))) : undefined,
      machineBusyPercent: m0 && m1 ? Math.round(((m1.busy - m0.busy) / (m1.total - m0.total)) * 100) : undefined,
    },
  }
}

// ---------------------------------------------------------------- signed tokens

/**
 * Signs in worker threads, one per core (at most 4), with each private key imported once per
 * worker and node:crypto's one-shot sign. The machine is otherwise idle between phases, so both
 * cores sign: 30 000 RS256 tokens take ~7 s here instead of ~15 s on one thread.
 * Plain JavaScript evaluated in the worker (no TypeScript loader needed there).
 */
const SIGNER_SOURCE = `
const { parentPort } = require('node:worker_threads')
const { createPrivateKey, sign } = require('node:crypto')
const keys = new Map()
parentPort.on('message', ({ id, jwk, inputs }) => {
  try {
    let key = keys.get(jwk.kid)
    if (!key) { key = createPrivateKey({ key: jwk, format: 'jwk' }); keys.set(jwk.kid, key) }
    const out = new Array(inputs.length)
    for (let i = 0; i < inputs.length; i++) {
      const data = Buffer.from(inputs[i])
      const sig = jwk.alg === 'ES256' ? sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' })
        : jwk.alg === 'EdDSA' ? sign(null, data, key)
          : sign('sha256', data, key)
      out[i] = sig.toString('base64url')
    }
    parentPort.postMessage({ id, sigs: out })
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) })
  }
})`

class SignerPool {
  private readonly workers: Worker[]
  private nextId = 0
  private readonly pending = new Map<number, { resolve: (sigs: string[]) => void; reject: (err: Error) => void }>()

  constructor(size: number) {
    this.workers = Array.from({ length: size }, () => {
      const w = new Worker(SIGNER_SOURCE, { eval: true, execArgv: [] })
      w.on('message', (m: { id: number; sigs?: string[]; error?: string }) => {
        const p = this.pending.get(m.id)
        this.pending.delete(m.id)
        if (m.error !== undefined || !m.sigs) p?.reject(new Error(`signing worker: ${m.error}`))
        else p?.resolve(m.sigs)
      })
      w.on('error', (err) => { for (const p of this.pending.values()) p.reject(err); this.pending.clear() })
      w.unref()
      return w
    })
  }

  get size() { return this.workers.length }

  /** One base64url signature per signing input, in order. */
  async sign(jwk: KeyFile['privateJwk'], inputs: string[]): Promise<string[]> {
    const per = Math.ceil(inputs.length / this.workers.length)
    const parts = await Promise.all(this.workers.map((w, k) => {
      const chunk = inputs.slice(k * per, (k + 1) * per)
      if (chunk.length === 0) return Promise.resolve([] as string[])
      const id = this.nextId++
      return new Promise<string[]>((resolve, reject) => {
        this.pending.set(id, { resolve, reject })
        w.postMessage({ id, jwk, inputs: chunk })
      })
    }))
    return parts.flat()
  }

  async close(): Promise<void> { await Promise.all(this.workers.map((w) => w.terminate())) }
}

/** What a phase sends: method, path, and the bodies its tokens are bound to (token i ↔ bodies[i % n]). */
interface RequestShape {
  method: 'GET' | 'POST'
  path: string
  /** Empty: no body (bsh of the empty body). */
  bodies: Buffer[]
  /** base64url SHA-256 of each body, as the token's bsh. */
  bsh: string[]
}

const sha256b64url = (b: Buffer) => createHash('sha256').update(b).digest('base64url')

function requestShape(method: RequestShape['method'], path: string, bodies: Buffer[] = []): RequestShape {
  return { method, path, bodies, bsh: (bodies.length > 0 ? bodies : [Buffer.alloc(0)]).map(sha256b64url) }
}

/**
 * Signs GW1 tokens exactly as the client SDK's signRequest does (same header, same claims in the
 * same order, bsh over the exact body bytes), but many at once in the signer pool: the SDK signs
 * one token per call through jose, about 2 500 ES256 tokens/s here. `checkAgainstSdk` proves the
 * equivalence byte for byte for every principal and request shape at the start of every run.
 */
function createTokenMinter(key: KeyFile, signer: SignerPool) {
  const { alg, kid } = key.privateJwk
  const header = Buffer.from(JSON.stringify({ alg, kid, typ: 'gw1+jwt' })).toString('base64url')
  const signingInput = (shape: RequestShape, i: number, now: number, jti: string) => {
    const claims = { htm: shape.method, htu: shape.path, bsh: shape.bsh[i % shape.bsh.length], iss: key.principalId, aud: AUDIENCE, iat: now, exp: now + SETTINGS.tokenLifetimeSeconds, jti }
    return `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
  }
  return {
    key,
    alg,
    /** Fails unless the SDK would have produced the same signing input (header and claims). */
    async checkAgainstSdk(shape: RequestShape): Promise<void> {
      const now = Math.floor(Date.now() / 1000)
      const jti = randomUUID()
      const sdk = await signRequest({ method: shape.method, pathWithQuery: shape.path, body: shape.bodies[0], audience: AUDIENCE, key, now, jti, lifetimeSeconds: SETTINGS.tokenLifetimeSeconds })
      const sdkInput = sdk.authorization.slice('GW1 '.length).split('.').slice(0, 2).join('.')
      const ours = signingInput(shape, 0, now, jti)
      if (sdkInput !== ours) {
        throw new Error(`bench token minter out of step with src/client/gw1-client.ts signRequest (${key.principalId} ${shape.method} ${shape.path}):\n sdk   ${sdkInput}\n bench ${ours}`)
      }
    },
    /** n tokens; token i is bound to shape.bodies[i % n]. */
    async mint(shape: RequestShape, n: number): Promise<{ tokens: string[]; seconds: number }> {
      const t0 = performance.now()
      const now = Math.floor(Date.now() / 1000)
      const inputs = new Array<string>(n)
      for (let i = 0; i < n; i++) inputs[i] = signingInput(shape, i, now, randomUUID())
      const sigs = await signer.sign(key.privateJwk, inputs)
      const tokens = new Array<string>(n)
      for (let i = 0; i < n; i++) tokens[i] = `GW1 ${inputs[i]}.${sigs[i]}`
      return { tokens, seconds: (performance.now() - t0) / 1000 }
    },
  }
}

type TokenMinter = ReturnType<typeof createTokenMinter>

/** Hands each request the next unused token and its body; never reuses a token (a reuse would be a 401 replay). */
class TokenFeed {
  private i = 0
  exhausted = 0
  private startedAt: number | undefined
  private exhaustedAt: number | undefined
  constructor(private readonly tokens: string[], private readonly shape: RequestShape) {}
  get used() { return Math.min(this.i, this.tokens.length) }
  /** Signed requests handed out per second until the pool ran dry; undefined while it has not. */
  get rateUntilExhausted(): number | undefined {
    if (this.exhaustedAt === undefined || this.startedAt === undefined) return undefined
    return this.tokens.length / Math.max(0.05, (this.exhaustedAt - this.startedAt) / 1000)
  }
  request(): AcRequest {
    const { shape } = this
    return {
      method: shape.method,
      path: shape.path,
      headers: shape.bodies.length > 0 ? { 'content-type': 'application/json' } : {},
      setupRequest: (req) => {
        const i = this.i++
        if (i === 0) this.startedAt = performance.now()
        if (shape.bodies.length > 0) req.body = shape.bodies[i % shape.bodies.length]!
        const token = this.tokens[i]
        // Out of tokens: send unsigned, so the shortfall shows up as 401s instead of passing silently.
        if (token === undefined) {
          if (this.exhausted++ === 0) this.exhaustedAt = performance.now()
          return req
        }
        req.headers = { ...req.headers, authorization: token }
        return req
      },
    }
  }
}

// ---------------------------------------------------------------- match subjects

interface Subject { idNumber?: string; creditCode?: string; name: string }

/** Deterministic pseudo-random numbers: every run sends the same subjects. */
function prng(seed: number) {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
}

/**
 * Valid 18-digit resident ids that cannot be listed: the demo data only uses Beijing address codes
 * (1101xx), these use other provinces'. The run checks that none of them matches before the load.
 */
function unlistedResidentIds(n: number, exclude: Set<string>): string[] {
  const rand = prng(20260101)
  const regions = ['310101', '310104', '330106', '440305', '440106', '510107', '420106', '320102', '370202', '610113']
  const out = new Set<string>()
  while (out.size < n) {
    const year = 1950 + Math.floor(rand() * 55)
    const month = 1 + Math.floor(rand() * 12)
    const day = 1 + Math.floor(rand() * 28)
    const first17 = `${regions[Math.floor(rand() * regions.length)]}${year}${String(month).padStart(2, '0')}${String(day).padStart(2, '0')}${String(Math.floor(rand() * 1000)).padStart(3, '0')}`
    const id = first17 + residentIdCheckChar(first17)
    if (!exclude.has(id)) out.add(id)
  }
  return [...out]
}

const NAMES = ['王伟', '李娜', '张敏', '刘洋', '陈静', '杨磊', '赵勇', '黄艳', '周杰', '吴涛']

/**
 * The listed subjects as an agency sees them: GET /v1/changes as `caac` (its profile shows names and
 * identifiers), the last event of each listing, published ones only. Persons by idNumber, entities
 * by creditCode (the index also holds officers' ids, which caac's projection does not show).
 */
async function listedSubjects(ledger: Ledger, key: KeyFile): Promise<Subject[]> {
  const latest = new Map<string, Record<string, unknown>>()
  let after = 0
  for (let page = 0; page < 100; page++) {
    const res = await ledger.call(key, 'GET', `/v1/changes?after=${after}&limit=1000`)
    const body = res.body as { events: { listingId: string; listing: Record<string, unknown> }[]; next: number }
    if (body.events.length === 0) break
    for (const e of body.events) latest.set(e.listingId, e.listing)
    after = body.next
  }
  const seen = new Set<string>()
  const subjects: Subject[] = []
  for (const listing of latest.values()) {
    if (listing.status !== 'published') continue
    const s = listing.subject as { idNumber?: string; creditCode?: string; name?: string }
    const id = s.idNumber ?? s.creditCode
    if (!id || !s.name || seen.has(id)) continue
    seen.add(id)
    subjects.push(s.idNumber ? { idNumber: s.idNumber, name: s.name } : { creditCode: s.creditCode!, name: s.name })
  }
  if (subjects.length === 0) throw new Error('no listed subject with a visible identifier in GET /v1/changes (did SEED_DEMO seed listings, and does caac see identifiers?)')
  return subjects
}

/** The subjects of one run: every tenth is listed (cycling through the listed ones), the rest not. */
function buildSubjects(listed: Subject[], count: number, unlisted: string[], offset: number): Subject[] {
  const every = Math.round(1 / SETTINGS.listedShare)
  const out: Subject[] = []
  let u = offset
  for (let i = 0; i < count; i++) {
    if (i % every === 0) out.push(listed[(Math.floor(i / every) + offset) % listed.length]!)
    else { const id = unlisted[u++ % unlisted.length]!; out.push({ idNumber: id, name: NAMES[id.charCodeAt(16) % NAMES.length]! }) }
  }
  return out
}

const subjectJson = (s: Subject) => s.idNumber !== undefined ? { idNumber: s.idNumber, name: s.name } : { creditCode: s.creditCode, name: s.name }

// ---------------------------------------------------------------- bookkeeping of the bench's own signed calls

/**
 * Counts, per principal, the signed calls the bench itself makes outside autocannon (set-up and
 * sanity checks) that were accepted, and the audit entries they caused: on PostgreSQL the run
 * compares the gateway's used_jtis and audit_entries rows with what the client saw.
 */
class Ledger {
  readonly jtis = new Map<string, number>()
  readonly auditEntries = new Map<string, number>()
  private readonly clients = new Map<string, GatewayClient>()
  constructor(private readonly baseUrl: string) {}
  add(map: Map<string, number>, id: string, n: number) { map.set(id, (map.get(id) ?? 0) + n) }
  /** A signed call through the SDK (response signature verified) that must succeed; `audited` entries are expected in audit_entries. */
  async call<T = unknown>(key: KeyFile, method: string, path: string, body?: unknown, audited = 0) {
    let client = this.clients.get(key.principalId)
    if (!client) { client = new GatewayClient({ baseUrl: this.baseUrl, key, audience: AUDIENCE }); this.clients.set(key.principalId, client) }
    const res = await client.request<T>(method, path, body)
    if (res.status < 200 || res.status > 299) throw new Error(`${key.principalId}: ${method} ${path} answered ${res.status}: ${res.raw.toString('utf8').slice(0, 400)}`)
    this.add(this.jtis, key.principalId, 1)
    if (audited > 0) this.add(this.auditEntries, key.principalId, audited)
    return res
  }
}

interface MatchOut { matched: boolean; decision: string; measures?: { code: string; effect: string }[]; ruleSetVersion?: number; receiptId: string; listings: { role: string; nameMismatch: boolean }[]; error?: unknown }

/**
 * The match set-up is what the bench says it is: each bench agency matches a listed subject (with the
 * SDK, which also verifies the response signature) and not an unlisted one; caac's batch finds every
 * listed subject the run sends and none of the unlisted ones. Run before the load, and (singles) after.
 */
async function matchSanity(ledger: Ledger, agencies: KeyFile[], listed: Subject[], unlisted: string[], batchKey: KeyFile | undefined): Promise<string[]> {
  const problems: string[] = []
  for (const key of agencies) {
    const hit = await ledger.call<MatchOut>(key, 'POST', MATCH_PATH, { ...subjectJson(listed[0]!), scenario: SCENARIO }, 1)
    // The bench agencies apply CAAC's measures (profile.agency): a BLOCK measure (CAAC-AIR) means deny.
    const blocked = (hit.body.measures ?? []).some((m) => m.effect === 'BLOCK')
    if (!hit.body.matched || !((hit.body.ruleSetVersion ?? 0) >= 1) || (hit.body.decision === 'deny') !== blocked || hit.body.listings[0]?.nameMismatch !== false) problems.push(`${key.principalId}: listed subject answered ${hit.raw.toString('utf8').slice(0, 300)}`)
    const miss = await ledger.call<MatchOut>(key, 'POST', MATCH_PATH, { idNumber: unlisted[0], scenario: SCENARIO }, 1)
    if (miss.body.matched || miss.body.decision !== 'allow') problems.push(`${key.principalId}: unlisted subject answered ${miss.raw.toString('utf8').slice(0, 300)}`)
  }
  if (batchKey) {
    const all = await ledger.call<{ results: MatchOut[] }>(batchKey, 'POST', BATCH_PATH, { subjects: listed.map(subjectJson), scenario: SCENARIO }, listed.length)
    const notMatched = all.body.results.filter((r) => !r.matched).length
    if (notMatched > 0) problems.push(`${notMatched} of the ${listed.length} listed subjects did not match`)
    const sample = unlisted.slice(0, SETTINGS.batchSubjects)
    const none = await ledger.call<{ results: MatchOut[] }>(batchKey, 'POST', BATCH_PATH, { subjects: sample.map((idNumber) => ({ idNumber })), scenario: SCENARIO }, sample.length)
    const matched = none.body.results.filter((r) => r.matched || r.error).length
    if (matched > 0) problems.push(`${matched} of ${sample.length} unlisted subjects matched or failed`)
  }
  return problems
}

/**
 * Three agencies with an RS256, an ES256 and an EdDSA key, added through the admin API as an
 * operator would (`POST /v1/principals`, signed with the demo admin key). Their profile is caac's
 * (lists, fields, scenario) with a rate limit no run reaches, so the limiter runs but never refuses.
 */
async function registerBenchAgencies(ledger: Ledger, adminKey: KeyFile): Promise<KeyFile[]> {
  const keys: KeyFile[] = []
  for (const alg of ['ES256', 'EdDSA', 'RS256'] as KeyAlg[]) {
    const id = `bench-${alg.toLowerCase()}`
    const { keyFile, publicJwk } = await generatePrincipalKey(id, alg)
    const res = await ledger.call<{ keys: { alg: string }[] }>(adminKey, 'POST', '/v1/principals', {
      id, kind: 'agency', name: `Bench agency (${alg} client key)`, scopes: ['match'],
      profile: { agency: 'caac', lists: ['dishonest', 'restricted'], fields: ['name', 'identifiers', 'caseNumber', 'courtName'], scenarios: [SCENARIO], rateLimit: { max: 1_000_000, timeWindowSeconds: 1 } },
      keys: [publicJwk],
    })
    if (res.status !== 201) throw new Error(`registering ${id}: expected 201, got ${res.status} (left over from an earlier run on this database?)`)
    keys.push(keyFile)
  }
  return keys
}

// ---------------------------------------------------------------- measuring

interface SignedPhase {
  minter: TokenMinter
  shape: RequestShape
  /** Warm-up pool = warm-up seconds × this rate (req/s) the phase is not expected to pass; a function: decided when the phase starts. */
  warmRateCap: number | (() => number)
  /** Measured pool = warm-up rate × duration × margin. */
  margin: number
  minTokens: number
}

interface Target {
  name: string
  url: string
  /** Which child serves it. */
  server: 'gateway' | 'baseline'
  serverPid: number | undefined
  connections: number
  signed?: SignedPhase
  /** Subjects matched per request (match phases). */
  subjectsPerRequest?: number
  /** Which of the issue's goals the row is held against. */
  goal?: 'single' | 'batch'
}

interface Measurement {
  target: string
  url: string
  server: 'gateway' | 'baseline'
  connections: number
  reqPerSec: number
  /** Match phases: subjects matched per second (2xx responses × subjects per request). */
  subjectsPerSec?: number
  subjectsPerRequest?: number
  principal?: string
  clientKeyAlg?: string
  goal?: 'single' | 'batch'
  /** From every response's own timing, at full resolution. */
  latencyMs: { p50: number; p97_5: number; p99: number; mean: number; max: number }
  /** autocannon's histogram (whole milliseconds), for comparison with other autocannon runs. */
  autocannonLatencyMs: { p50: number; p97_5: number; p99: number; mean: number; max: number }
  requests: number
  ok2xx: number
  non2xx: number
  errors: number
  timeouts: number
  statusCodes: Record<string, number>
  bytesPerSec: number
  durationSeconds: number
  /** CLOCK_MONOTONIC µs (the clock of V8's CPU profiles) at the start and end of the measured part. */
  monotonicWindowUs: [number, number]
  cpu: CpuShare
  warmup: { requests: number; ok2xx: number; reqPerSec: number; non2xx: number; errors: number }
  tokens?: { minted: number; used: number; exhausted: number; mintSeconds: number; warmupMinted: number; warmupMintSeconds: number; warmupExhausted: number }
}

function acOptions(url: string, connections: number, extra: Partial<AcOptions>): AcOptions {
  return { url, connections, pipelining: SETTINGS.pipelining, timeout: 10, ...extra }
}

function statusCodes(r: AcResult): Record<string, number> {
  return Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, v.count]))
}

const monotonicUs = () => Number(process.hrtime.bigint() / 1000n)

async function measure(target: Target, databasePids?: () => Promise<number[]>): Promise<Measurement> {
  const log = (msg: string) => console.error(`  [${target.name}] ${msg}`)
  const latencies = new Latencies()
  const opts = (extra: Partial<AcOptions>) => acOptions(target.url, target.connections, extra)
  let warm: AcResult
  let run: AcResult
  let cpu: CpuShare
  let window: [number, number]
  let tokens: Measurement['tokens']
  const measured = async (requests?: AcRequest[]) => {
    const pids = databasePids ? await databasePids().catch(() => undefined) : undefined
    const t0 = monotonicUs()
    const r = await withCpu(target.serverPid, () => cannon(opts({ duration: SETTINGS.durationSeconds, ...(requests ? { requests } : {}) }), latencies), pids)
    window = [t0, monotonicUs()]
    return r
  }
  const signed = target.signed
  if (!signed) {
    log(`warm-up ${SETTINGS.warmupSeconds} s`)
    warm = await cannon(opts({ duration: SETTINGS.warmupSeconds }))
    log(`measure ${SETTINGS.durationSeconds} s`)
    ;({ value: run, cpu } = await measured())
  } else {
    const { minter, shape } = signed
    // Warm-up for a fixed time, with a pool sized for a rate the phase is not expected to reach.
    const cap = typeof signed.warmRateCap === 'function' ? signed.warmRateCap() : signed.warmRateCap
    const warmPool = await minter.mint(shape, SETTINGS.warmupSeconds * cap)
    log(`warm-up ${SETTINGS.warmupSeconds} s (${warmPool.tokens.length} ${minter.alg} tokens signed in ${warmPool.seconds.toFixed(1)} s)`)
    const warmFeed = new TokenFeed(warmPool.tokens, shape)
    warm = await cannon(opts({ duration: SETTINGS.warmupSeconds, requests: [warmFeed.request()] }))
    // Size the measured pool on the best one-second warm-up sample (2xx only), with a wide margin:
    // on a shared 2-core machine the rate swings by tens of percent from one phase to the next.
    // If the warm-up pool ran dry (its unsigned rest were fast 401s), on the rate until then.
    const dry = warmFeed.rateUntilExhausted
    if (dry !== undefined) log(`warm-up pool ran dry after ${warmPool.tokens.length} tokens (${warmFeed.exhausted} unsigned requests, not counted)`)
    const warmRate = dry ?? Math.max(warm.requests.max, (warm['2xx'] ?? 0) / Math.max(warm.duration, 0.1))
    const n = Math.min(SETTINGS.maxTokens, Math.max(signed.minTokens, Math.ceil(warmRate * SETTINGS.durationSeconds * signed.margin) + 8 * target.connections))
    const pool = await minter.mint(shape, n)
    log(`warm-up peak ${warmRate.toFixed(0)} req/s; ${n} tokens signed in ${pool.seconds.toFixed(1)} s; measure ${SETTINGS.durationSeconds} s`)
    const feed = new TokenFeed(pool.tokens, shape)
    ;({ value: run, cpu } = await measured([feed.request()]))
    tokens = {
      minted: n, used: feed.used, exhausted: feed.exhausted, mintSeconds: round2(pool.seconds),
      warmupMinted: warmPool.tokens.length, warmupMintSeconds: round2(warmPool.seconds), warmupExhausted: warmFeed.exhausted,
    }
    if (feed.exhausted > 0) log(`RAN OUT OF TOKENS: ${feed.exhausted} requests went unsigned`)
  }
  // Counted from the warm-up's 2xx only: a dry warm-up pool's unsigned requests are 401s.
  const spr = target.subjectsPerRequest
  const ok2xx = run['2xx'] ?? 0
  const m: Measurement = {
    target: target.name,
    url: target.url,
    server: target.server,
    connections: target.connections,
    reqPerSec: run.requests.mean,
    ...(spr ? { subjectsPerSec: Math.round((ok2xx / Math.max(run.requests.total, 1)) * run.requests.mean * spr), subjectsPerRequest: spr } : {}),
    ...(signed ? { principal: signed.minter.key.principalId, clientKeyAlg: signed.minter.alg } : {}),
    ...(target.goal ? { goal: target.goal } : {}),
    latencyMs: latencies.percentiles(),
    autocannonLatencyMs: { p50: run.latency.p50, p97_5: run.latency.p97_5, p99: run.latency.p99, mean: run.latency.mean, max: run.latency.max },
    requests: run.requests.total,
    ok2xx,
    non2xx: run.non2xx,
    errors: run.errors,
    timeouts: run.timeouts,
    statusCodes: statusCodes(run),
    bytesPerSec: run.throughput.mean,
    durationSeconds: run.duration,
    monotonicWindowUs: window!,
    cpu: cpu!,
    warmup: { requests: warm.requests.total, ok2xx: warm['2xx'], reqPerSec: Math.round(warm.requests.total / Math.max(warm.duration, 0.1)), non2xx: warm.non2xx, errors: warm.errors },
    ...(tokens ? { tokens } : {}),
  }
  log(`${m.reqPerSec.toFixed(0)} req/s${m.subjectsPerSec !== undefined ? ` (${m.subjectsPerSec.toLocaleString('en-US')} subjects/s)` : ''}, p50 ${m.latencyMs.p50} ms, p99 ${m.latencyMs.p99} ms, non-2xx ${m.non2xx}, errors ${m.errors}`)
  return m
}

// ---------------------------------------------------------------- report

function ratio(value: number, base: number): string {
  if (!(base > 0)) return '  n/a'
  return `${(value / base).toFixed(2)}×`
}

function printTable(rows: Measurement[], baseline: Measurement): string {
  const header = ['target', 'conn', 'req/s', 'subjects/s', 'p50 ms', 'p97.5 ms', 'p99 ms', 'non-2xx', 'errors', 'CPU server', 'db', 'loadgen', 'other']
  const cells = rows.map((m) => [
    m.target,
    `${m.connections}`,
    `${Math.round(m.reqPerSec).toLocaleString('en-US')} (${ratio(m.reqPerSec, baseline.reqPerSec)})`,
    m.subjectsPerSec === undefined ? '' : m.subjectsPerSec.toLocaleString('en-US'),
    `${m.latencyMs.p50.toFixed(2)} (${ratio(m.latencyMs.p50, baseline.latencyMs.p50)})`,
    `${m.latencyMs.p97_5.toFixed(2)} (${ratio(m.latencyMs.p97_5, baseline.latencyMs.p97_5)})`,
    `${m.latencyMs.p99.toFixed(2)} (${ratio(m.latencyMs.p99, baseline.latencyMs.p99)})`,
    `${m.non2xx}`,
    `${m.errors + m.timeouts}`,
    m.cpu.server === undefined ? 'n/a' : m.cpu.server.toFixed(2),
    m.cpu.database === undefined ? '-' : m.cpu.database.toFixed(2),
    m.cpu.loadGenerator.toFixed(2),
    m.cpu.other === undefined ? 'n/a' : m.cpu.other.toFixed(2),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)))
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ')
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].join('\n')
}

interface GoalCheck { target: string; goal: string; value: number; met: boolean }

/** The issue's goals beside the figures of this run (reported, never asserted). */
function goalChecks(rows: Measurement[], baseline: Measurement): GoalCheck[] {
  const checks: GoalCheck[] = []
  for (const m of rows) {
    if (m.goal === 'single') {
      checks.push({ target: m.target, goal: `req/s ≥ ${GOALS.singleMatchRatioToBaseline}× the baseline's`, value: round2(m.reqPerSec / baseline.reqPerSec), met: m.reqPerSec >= GOALS.singleMatchRatioToBaseline * baseline.reqPerSec })
      checks.push({ target: m.target, goal: `p99 < ${GOALS.singleMatchP99Ms} ms`, value: m.latencyMs.p99, met: m.latencyMs.p99 < GOALS.singleMatchP99Ms })
    } else if (m.goal === 'batch') {
      checks.push({ target: m.target, goal: `subjects/s ≥ ${GOALS.batchSubjectsPerSecond.toLocaleString('en-US')}`, value: m.subjectsPerSec ?? 0, met: (m.subjectsPerSec ?? 0) >= GOALS.batchSubjectsPerSecond })
    }
  }
  return checks
}

function printGoals(checks: GoalCheck[], rows: Measurement[], baseline: Measurement): string[] {
  const lines = [`goals of issue 4 (reported, not enforced; single match at ${GOALS.singleMatchConnections} connections against the first baseline row, ${Math.round(baseline.reqPerSec).toLocaleString('en-US')} req/s):`]
  const width = Math.max(...checks.map((c) => c.target.length))
  for (const c of checks) {
    const value = c.goal.startsWith('req/s') ? `${c.value.toFixed(2)}×` : c.goal.startsWith('p99') ? `${c.value.toFixed(2)} ms` : c.value.toLocaleString('en-US')
    lines.push(`  ${c.target.padEnd(width)}  ${c.goal.padEnd(28)} ${value.padStart(10)}  ${c.met ? 'met' : 'MISSED'}`)
  }
  const off = rows.filter((m) => m.goal === 'single' && m.connections !== GOALS.singleMatchConnections)
  if (off.length > 0) lines.push(`  (these single-match rows ran at ${off[0]!.connections} connections, not the goal's ${GOALS.singleMatchConnections}: BENCH_CONNECTIONS)`)
  return lines
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
async function liftRateLimit(ledger: Ledger, adminKey: KeyFile, principalId: string): Promise<{ before: unknown; after: unknown; note: string }> {
  const current = await ledger.call<{ profile: Record<string, unknown> }>(adminKey, 'GET', `/v1/principals/${principalId}`)
  const before = current.body.profile.rateLimit
  if (process.env.BENCH_KEEP_RATE_LIMIT === '1') return { before, after: before, note: `${principalId} rate limit kept at ${JSON.stringify(before)}` }
  const after = { max: 1_000_000, timeWindowSeconds: 1 }
  await ledger.call(adminKey, 'PATCH', `/v1/principals/${principalId}`, { profile: { ...current.body.profile, rateLimit: after } })
  return { before, after, note: `${principalId} rate limit lifted from ${JSON.stringify(before)} to ${JSON.stringify(after)} for this run` }
}

async function sanityCheck(ledger: Ledger, gatewayUrl: string, key: KeyFile): Promise<{ whoamiBytes: number; replayRejected: boolean }> {
  // The SDK end to end: sign, send, verify X-GW-Signature against the gateway's JWKS.
  const res = await ledger.call<{ id: string }>(key, 'GET', WHOAMI_PATH)
  if (res.body.id !== key.principalId) throw new Error(`sanity: whoami answered ${res.status} ${res.raw.toString('utf8').slice(0, 300)}`)
  // The replay guard is live (otherwise the signed figure would flatter the gateway).
  const { authorization } = await signRequest({ method: 'GET', pathWithQuery: WHOAMI_PATH, audience: AUDIENCE, key })
  const first = await fetch(gatewayUrl + WHOAMI_PATH, { headers: { authorization } })
  await first.arrayBuffer()
  if (first.status === 200) ledger.add(ledger.jtis, key.principalId, 1)
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

interface RowCount { principal: string; table: 'used_jtis rows' | 'audited match subjects (audit_entries)'; rows: number; expected: number; slack: number; ok: boolean }

/**
 * PostgreSQL only: every accepted request committed its jti, and every matched subject its audit
 * entry. The tables may hold a few more rows than the client saw: requests still in flight when
 * autocannon stops a warm-up or a measured phase are answered, but no longer counted.
 */
async function rowCounts(databaseUrl: string, ledger: Ledger, results: Measurement[]): Promise<RowCount[]> {
  const check = postgres(databaseUrl, { max: 1, onnotice: () => {} })
  try {
    const jtis = new Map((await check.unsafe<{ iss: string; n: number }[]>('SELECT iss, count(*)::int AS n FROM used_jtis GROUP BY iss')).map((r) => [r.iss, r.n]))
    const audit = new Map((await check.unsafe<{ p: string; n: number }[]>("SELECT principal_id AS p, sum((result->'summary'->>'subjects')::int)::int AS n FROM audit_entries WHERE action = 'match' GROUP BY principal_id")).map((r) => [r.p, r.n]))
    const out: RowCount[] = []
    const principals = [...new Set(results.map((m) => m.principal).filter((p): p is string => p !== undefined))]
    for (const p of principals) {
      const phases = results.filter((m) => m.principal === p)
      const seen = (m: Measurement) => m.ok2xx + m.warmup.ok2xx
      const inFlight = (m: Measurement) => 2 * m.connections * SETTINGS.pipelining
      const expJtis = (ledger.jtis.get(p) ?? 0) + phases.reduce((n, m) => n + seen(m), 0)
      const slackJtis = phases.reduce((n, m) => n + inFlight(m), 0)
      const rowsJtis = jtis.get(p) ?? 0
      out.push({ principal: p, table: 'used_jtis rows', rows: rowsJtis, expected: expJtis, slack: slackJtis, ok: rowsJtis >= expJtis && rowsJtis - expJtis <= slackJtis })
      const matchPhases = phases.filter((m) => m.subjectsPerRequest !== undefined)
      if (matchPhases.length === 0) continue
      const expAudit = (ledger.auditEntries.get(p) ?? 0) + matchPhases.reduce((n, m) => n + seen(m) * m.subjectsPerRequest!, 0)
      const slackAudit = matchPhases.reduce((n, m) => n + inFlight(m) * m.subjectsPerRequest!, 0)
      const rowsAudit = audit.get(p) ?? 0
      out.push({ principal: p, table: 'audited match subjects (audit_entries)', rows: rowsAudit, expected: expAudit, slack: slackAudit, ok: rowsAudit >= expAudit && rowsAudit - expAudit <= slackAudit })
    }
    return out
  } finally { await check.end({ timeout: 5 }) }
}

/**
 * After the gateway has stopped: walks the audit hash chains the load wrote (as `npm run
 * audit:verify` does), on the run's PostgreSQL database or the gateway's PGlite folder.
 */
async function verifyAuditTrail(opts: { url?: string; pgliteDir?: string }): Promise<{ result: AuditVerifyResult; seconds: number }> {
  const t0 = performance.now()
  const database = await openDatabase(opts.url ? { url: opts.url, poolSize: 1 } : { pgliteDir: opts.pgliteDir })
  try {
    return { result: await verifyAuditChain(database), seconds: round2((performance.now() - t0) / 1000) }
  } finally { await database.close() }
}

async function main(): Promise<number> {
  const startedAt = new Date()
  // Other work on the machine skews every figure; the baseline ratio absorbs part of it, not all.
  const loadAtStart = loadavg().map((n) => round2(n))
  const dataDir = mkdtempSync(join(tmpdir(), 'credit-gateway-bench-'))
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }))
  const signer = new SignerPool(Math.max(1, Math.min(4, cpus().length)))
  cleanups.push(() => signer.close())
  let database: Awaited<ReturnType<typeof createBenchDatabase>> | undefined
  try {
    const [gatewayPort, baselinePort] = [await freePort(), await freePort()]
    const gatewayEnv: Record<string, string> = {
      HOST, PORT: String(gatewayPort), DATA_DIR: dataDir, GATEWAY_ID: AUDIENCE, LOG_LEVEL: 'warn', SEED_DEMO: 'true',
      // The bench measures capacity: load shedding off unless asked for (npm run soak runs with it on).
      OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: process.env.OVERLOAD_MAX_EVENT_LOOP_DELAY_MS ?? '0',
    }
    if (DATABASE_URL) {
      database = await createBenchDatabase(DATABASE_URL)
      cleanups.push(database.drop)
      gatewayEnv.DATABASE_URL = database.url
      gatewayEnv.GATEWAY_SIGNING_KEY = JSON.stringify(generateGatewayJwk())
      gatewayEnv.IDENTIFIER_HASH_SECRET = randomBytes(32).toString('base64url')
    }
    const engine = DATABASE_URL ? `postgresql (${database!.name})` : 'pglite'
    console.error(`credit-gateway bench: ${engine}; ${SETTINGS.connections} connections (batch ${SETTINGS.batchConnections}), pipelining ${SETTINGS.pipelining}, warm-up ${SETTINGS.warmupSeconds} s, measure ${SETTINGS.durationSeconds} s per target; ${cpus().length} CPUs, load average ${loadAtStart.join(' ')}`)

    // BENCH_CPU_PROF=1: the gateway writes a V8 CPU profile on exit, to bench/results/profiles/.
    const profileDir = join(ROOT, 'bench', 'results', 'profiles')
    const gateway = startChild('gateway', 'src/server.ts', gatewayEnv, process.env.BENCH_CPU_PROF === '1' ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [])
    const baseline = startChild('baseline', 'bench/baseline-server.ts', { HOST, PORT: String(baselinePort) })
    const gatewayUrl = `http://${HOST}:${gatewayPort}`
    const baselineUrl = `http://${HOST}:${baselinePort}`
    await Promise.all([waitReady(gateway, `${gatewayUrl}/readyz`), waitReady(baseline, baselineUrl + BASELINE_PATH)])

    const ledger = new Ledger(gatewayUrl)
    const key = readKeyFile(join(dataDir, 'demo-keys', 'caac.json'))
    const adminKey = readKeyFile(join(dataDir, 'demo-keys', 'admin-demo.json'))
    const rateLimit = await liftRateLimit(ledger, adminKey, key.principalId)
    const minter = createTokenMinter(key, signer)
    const whoamiShape = requestShape('GET', WHOAMI_PATH)
    await minter.checkAgainstSdk(whoamiShape)
    const sanityBefore = await sanityCheck(ledger, gatewayUrl, key)
    if (!sanityBefore.replayRejected) throw new Error('sanity: a replayed token was not rejected with auth.replayed')
    const baselineBytes = Buffer.from(await (await fetch(baselineUrl + BASELINE_PATH)).arrayBuffer()).length

    // Match set-up: three agencies (one per client key algorithm), the listed subjects from the
    // change feed, unlisted ids, and the bodies the tokens are bound to.
    const agencies = await registerBenchAgencies(ledger, adminKey)
    const listed = await listedSubjects(ledger, key)
    const unlisted = unlistedResidentIds(SETTINGS.singleBodies + SETTINGS.batchBodies * SETTINGS.batchSubjects, new Set(listed.map((s) => s.idNumber ?? '')))
    const singleBodies = buildSubjects(listed, SETTINGS.singleBodies, unlisted, 0).map((s) => Buffer.from(JSON.stringify({ ...subjectJson(s), scenario: SCENARIO })))
    const batchBodies = Array.from({ length: SETTINGS.batchBodies }, (_, b) =>
      Buffer.from(JSON.stringify({ subjects: buildSubjects(listed, SETTINGS.batchSubjects, unlisted, SETTINGS.singleBodies + b * SETTINGS.batchSubjects).map(subjectJson), scenario: SCENARIO })))
    const matchShape = requestShape('POST', MATCH_PATH, singleBodies)
    const batchShape = requestShape('POST', BATCH_PATH, batchBodies)
    const matchMinters = agencies.map((k) => createTokenMinter(k, signer))
    for (const m of matchMinters) await m.checkAgainstSdk(matchShape)
    await minter.checkAgainstSdk(batchShape)
    const matchProblems = await matchSanity(ledger, agencies, listed, unlisted, key)
    if (matchProblems.length > 0) throw new Error(`sanity: the match set-up is not what the bench assumes:\n  ${matchProblems.join('\n  ')}`)
    const sampleBytes = async (k: KeyFile, s: Subject) => (await ledger.call(k, 'POST', MATCH_PATH, { ...subjectJson(s), scenario: SCENARIO }, 1)).raw.length
    const matchBytes = { listed: await sampleBytes(agencies[0]!, listed[0]!), unlisted: await sampleBytes(agencies[0]!, { idNumber: unlisted[1]!, name: NAMES[0]! }) }
    const avgBatchBody = Math.round(batchBodies.reduce((n, b) => n + b.length, 0) / batchBodies.length)
    console.error(`  ready; body bytes: baseline ${baselineBytes}, whoami ${sanityBefore.whoamiBytes}, match ${matchBytes.unlisted} (unlisted) / ${matchBytes.listed} (listed), batch request ${avgBatchBody}; replay guard live; ${rateLimit.note}`)
    console.error(`  match subjects: ${listed.length} listed (from GET /v1/changes), ${SETTINGS.listedShare * 100}% of each phase's subjects; the rest valid unlisted resident ids; bench agencies ${agencies.map((k) => `${k.principalId} (${k.privateJwk.alg})`).join(', ')}`)

    const results: Measurement[] = []
    /** RS256 signs slowly: its warm-up pool is sized on the single-match phases measured before it. */
    const bestSingle = () => Math.max(0, ...results.filter((m) => m.goal === 'single').map((m) => m.reqPerSec))
    const single = (m: TokenMinter): Target => ({
      name: `match ${m.alg} (POST /v1/match)`, url: gatewayUrl + MATCH_PATH, server: 'gateway', serverPid: gateway.proc.pid, connections: SETTINGS.connections,
      signed: {
        minter: m, shape: matchShape, minTokens: 10_000,
        warmRateCap: m.alg === 'RS256' ? () => Math.max(2_000, Math.ceil(bestSingle() * 1.5)) : 10_000,
        margin: m.alg === 'RS256' ? SETTINGS.rsaTokenMargin : SETTINGS.tokenMargin,
      },
      subjectsPerRequest: 1, goal: 'single',
    })
    const targets: Target[] = [
      { name: 'baseline (bare fastify)', url: baselineUrl + BASELINE_PATH, server: 'baseline', serverPid: baseline.proc.pid, connections: SETTINGS.connections },
      { name: 'gateway GET /healthz', url: `${gatewayUrl}/healthz`, server: 'gateway', serverPid: gateway.proc.pid, connections: SETTINGS.connections },
      {
        name: 'gateway GET /v1/whoami (GW1)', url: gatewayUrl + WHOAMI_PATH, server: 'gateway', serverPid: gateway.proc.pid, connections: SETTINGS.connections,
        signed: { minter, shape: whoamiShape, warmRateCap: 10_000, margin: SETTINGS.tokenMargin, minTokens: 20_000 },
      },
      // ES256 and EdDSA first: the RS256 warm-up pool is sized on their rate.
      ...matchMinters.map(single),
      {
        name: `batch ×${SETTINGS.batchSubjects} ${minter.alg} (POST /v1/match/batch)`, url: gatewayUrl + BATCH_PATH, server: 'gateway', serverPid: gateway.proc.pid, connections: SETTINGS.batchConnections,
        signed: { minter, shape: batchShape, warmRateCap: 2_000, margin: SETTINGS.tokenMargin, minTokens: 2_000 },
        subjectsPerRequest: SETTINGS.batchSubjects, goal: 'batch',
      },
      // Measured again last: if the machine's load changed during the run, this row shows it.
      { name: 'baseline (repeat)', url: baselineUrl + BASELINE_PATH, server: 'baseline', serverPid: baseline.proc.pid, connections: SETTINGS.connections },
    ]
    // PostgreSQL's processes, measured on their own (they would otherwise count as `other`).
    const dbProcs = database ? databaseProcesses(database.url) : undefined
    if (dbProcs) cleanups.push(() => dbProcs.close())
    for (const t of targets) results.push(await measure(t, dbProcs?.pids))

    // After the load: still answering, still verifying, still matching; on PostgreSQL every
    // accepted jti and every matched subject is on record in an audit entry.
    const sanityAfter = await sanityCheck(ledger, gatewayUrl, key)
    const matchProblemsAfter = await matchSanity(ledger, agencies, listed, unlisted, undefined)
    const counts = database ? await rowCounts(database.url, ledger, results) : undefined
    // The gateway stops here (it writes its CPU profile on exit); then the audit chains are walked.
    await stopChild(gateway)
    const logs = gatewayLogSummary(gateway)
    const chain = await verifyAuditTrail(database ? { url: database.url } : { pgliteDir: join(dataDir, 'pgdata') })

    const baselineRow = results[0]!
    const table = printTable(results, baselineRow)
    const goals = goalChecks(results, baselineRow)
    const failed = results.filter((m) => m.non2xx > 0 || m.errors > 0 || m.timeouts > 0 || (m.tokens?.exhausted ?? 0) > 0)
    console.log(`\ncredit-gateway bench — ${engine}, ${SETTINGS.connections} connections (batch ${SETTINGS.batchConnections}) × pipelining ${SETTINGS.pipelining}, ${SETTINGS.durationSeconds} s each, ${cpus().length} CPUs (load generator shares them), load average at start ${loadAtStart.join(' ')}`)
    const source = gitState()
    const changed = source.changedFiles.length > 4 ? `${source.changedFiles.length} source files (listed in the JSON)` : source.changedFiles.join(', ')
    console.log(`source: ${source.commit?.slice(0, 12) ?? 'unknown commit'}${source.changedFiles.length ? ` + uncommitted changes in ${changed}` : ''}; ${rateLimit.note}`)
    console.log(`match subjects: ${SETTINGS.listedShare * 100}% listed (${listed.length} distinct, from the demo data), the rest valid unlisted resident ids; response bytes: match ${matchBytes.unlisted} unlisted / ${matchBytes.listed} listed, baseline ${baselineBytes}`)
    console.log('ratios in parentheses are to the baseline of this run; CPU in cores (1.00 = one core busy) over each measured phase:')
    console.log(`server = the target process${database ? ', db = PostgreSQL (this database\'s backends and the server\'s background processes)' : ' (PGlite runs inside it)'}, loadgen = this process (autocannon), other = the rest of the machine\n`)
    console.log(table)
    console.log('\nserver threads (cores): event loop running / event loop runnable but waiting for a CPU / other threads (threadpool, GC)')
    for (const m of results) {
      const f = (n: number | undefined) => n === undefined ? 'n/a' : n.toFixed(2)
      console.log(`  ${m.target.padEnd(40)} ${f(m.cpu.serverMainThread)} / ${f(m.cpu.serverMainThreadRunQueueWait)} / ${f(m.cpu.serverOtherThreads)}`)
    }
    console.log('')
    for (const line of printGoals(goals, results, baselineRow)) console.log(line)
    console.log('')
    for (const m of results) {
      if (m.tokens) console.log(`signed tokens, ${m.target}: ${m.tokens.used} used of ${m.tokens.minted} minted (${m.tokens.mintSeconds} s to sign; warm-up ${m.tokens.warmupMinted} in ${m.tokens.warmupMintSeconds} s), ${m.tokens.exhausted} requests without a token`)
    }
    for (const c of counts ?? []) console.log(`${c.table} for ${c.principal}: ${c.rows}; expected from what the client saw ${c.expected} (difference ${c.rows - c.expected}, allowed 0..${c.slack}: in flight when a phase stopped)${c.ok ? '' : '  MISMATCH'}`)
    console.log(`replay guard live: before ${sanityBefore.replayRejected}, after ${sanityAfter.replayRejected}; match answers as expected after the load: ${matchProblemsAfter.length === 0}; gateway log: ${logs.warnings} warnings, ${logs.errors} errors`)
    for (const s of logs.samples) console.log(`  ${s}`)
    const c = chain.result
    console.log(c.ok ? `audit chain intact: ${c.entries} entries from ${c.writers} writer(s), verified in ${chain.seconds} s` : `RUN HAS ERRORS: audit chain BROKEN at writer ${c.writerId}, writer_seq ${c.writerSeq}: ${c.reason} — ${c.detail}`)
    const noise = noiseWarnings(results)
    for (const w of noise) console.log(`NOISY RUN: ${w}`)
    const countsOk = (counts ?? []).every((c) => c.ok)
    for (const c of (counts ?? []).filter((x) => !x.ok)) console.log(`RUN HAS ERRORS: ${c.table} holds ${c.rows} for ${c.principal}, the client saw ${c.expected} accepted (allowed up to ${c.slack} more)`)
    if (!sanityAfter.replayRejected) console.log('RUN HAS ERRORS: after the load a replayed token was not rejected')
    for (const p of matchProblemsAfter) console.log(`RUN HAS ERRORS: after the load: ${p}`)
    for (const m of failed) console.log(`RUN HAS ERRORS: ${m.target}: non-2xx ${m.non2xx} ${JSON.stringify(m.statusCodes)}, errors ${m.errors}, timeouts ${m.timeouts}${m.tokens?.exhausted ? `, ${m.tokens.exhausted} without a token` : ''}`)

    const report = {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      engine: DATABASE_URL ? 'postgresql' : 'pglite',
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, platform: process.platform, loadAverageAtStart: loadAtStart, uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? 'default (4)' },
      settings: SETTINGS,
      source,
      bodyBytes: { baseline: baselineBytes, whoami: sanityBefore.whoamiBytes, match: matchBytes, batchRequest: avgBatchBody },
      rateLimit: { principal: key.principalId, before: rateLimit.before, during: rateLimit.after },
      subjects: { listedShare: SETTINGS.listedShare, listedDistinct: listed.length, singleBodies: SETTINGS.singleBodies, batchBodies: SETTINGS.batchBodies, batchSubjects: SETTINGS.batchSubjects },
      benchAgencies: agencies.map((k) => ({ id: k.principalId, alg: k.privateJwk.alg })),
      results: results.map((m) => ({
        ...m,
        ratioToBaseline: {
          reqPerSec: m.reqPerSec / baselineRow.reqPerSec,
          p50: m.latencyMs.p50 / baselineRow.latencyMs.p50,
          p97_5: m.latencyMs.p97_5 / baselineRow.latencyMs.p97_5,
          p99: m.latencyMs.p99 / baselineRow.latencyMs.p99,
        },
      })),
      goals: { targets: GOALS, checks: goals, allMet: goals.every((g) => g.met) },
      noiseWarnings: noise,
      checks: { replayRejectedBefore: sanityBefore.replayRejected, replayRejectedAfter: sanityAfter.replayRejected, matchAfterLoad: matchProblemsAfter, rowCounts: counts, auditChain: { ...chain.result, seconds: chain.seconds }, gatewayLog: logs },
      ok: failed.length === 0 && sanityAfter.replayRejected && countsOk && matchProblemsAfter.length === 0 && chain.result.ok,
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
