/**
 * The reference consumer (src/client/sync.ts) against a real gateway process: snapshot, resume from
 * the change feed, follow with the long poll, refuse tampered answers, and the `sync` CLI.
 *
 * Needs TEST_DATABASE_URL: the test reads the gateway's database beside the gateway process, and the
 * embedded PGlite cannot be shared by two processes.
 */
import { execFile, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { decodeProtectedHeader } from 'jose'
import t, { type Test } from 'tap'
import { signRequest, type KeyFile } from '../src/client/gw1-client.js'
import { LISTINGS_FILE, readListings, readState, STATE_FILE, sync, syncOnce } from '../src/client/sync.js'
import { generateGatewayJwk, gatewayKeysFromJson } from '../src/infra/gateway-keys.js'
import { projectPath } from '../src/infra/paths.js'
import { entityListing, personListing } from './factories.js'
import { createTestDatabase } from './helper.js'
import { registerPrincipal } from './principal-setup.js'
import { startGateway } from './processes.js'

const GATEWAY_ID = 'gw-client-sync'
const REQUEST_TIMEOUT_MS = 10_000
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function tempDir(t: Test, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `cgw-sync-${name}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Reads the body, lets `edit` change it, and hands back an equivalent Response. */
async function rewrite(res: Response, edit: (body: Buffer, headers: Headers) => Promise<Buffer> | Buffer): Promise<Response> {
  const headers = new Headers(res.headers)
  const body = await edit(Buffer.from(await res.arrayBuffer()), headers)
  headers.delete('content-length')
  return new Response(new Uint8Array(body), { status: res.status, headers })
}

/** Flips one bit in the first line of the body (inside the first listing on a snapshot page). */
function flipByte(body: Buffer): Buffer {
  const copy = Buffer.from(body)
  copy[10] = copy[10]! ^ 1
  return copy
}

if (!process.env.TEST_DATABASE_URL) {
  t.plan(0, 'TEST_DATABASE_URL is not set: the gateway process and the test share a PostgreSQL database (the embedded PGlite cannot be shared)')
} else {
  const database = await createTestDatabase(t)
  const court = await registerPrincipal(database.db, 'court-sync', 'court', ['listings:write'], { courtCode: '京0105' })
  // Sees the dishonest list only, with names and amounts: restricted listings must never reach its copy.
  const agency = await registerPrincipal(database.db, 'agency-sync', 'agency', ['changes:read'], { profile: { lists: ['dishonest'], fields: ['name', 'amountOutstanding'] } })

  const gatewayJwk = generateGatewayJwk('gw-client-sync-1')
  const gatewayKeys = gatewayKeysFromJson(JSON.stringify(gatewayJwk))
  const gw = await startGateway(t, 'sync', {
    DATABASE_URL: database.url!, GATEWAY_SIGNING_KEY: JSON.stringify(gatewayJwk), IDENTIFIER_HASH_SECRET: 'client-sync-test-identifier-hash-secret', GATEWAY_ID,
  })

  async function call(key: KeyFile, method: string, path: string, json?: unknown): Promise<any> {
    const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json))
    const { authorization } = await signRequest({ method, pathWithQuery: path, body, audience: GATEWAY_ID, key })
    const res = await fetch(`${gw.url}${path}`, {
      method, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      headers: { authorization, ...(body ? { 'content-type': 'application/json' } : {}) },
    })
    const parsed = await res.json() as any
    if (res.status !== 200) throw new Error(`${method} ${path}: HTTP ${res.status} ${JSON.stringify(parsed)}`)
    return parsed
  }
  let nextCase = 1
  /** Each listing's case sequence, so that a correction can push the same case again. */
  const caseOf = new Map<string, number>()
  /** Pushes new dishonest (and restricted) listings; returns the new ids in order. */
  async function push(dishonest: number, restricted = 0): Promise<string[]> {
    const seqs = Array.from({ length: dishonest + restricted }, () => nextCase++)
    const items = seqs.map((seq, i) => (i < dishonest ? personListing(seq) : entityListing(seq)))
    const res = await call(court, 'POST', '/v1/listings', { items })
    const ids = res.results.map((r: { listingId: string }) => r.listingId) as string[]
    ids.forEach((id, i) => caseOf.set(id, seqs[i]!))
    return ids
  }
  const remove = (id: string) => call(court, 'POST', `/v1/listings/${id}/removal`, { reason: 'performed' })
  /** A correction: the same (court, case number, subject) pushed again with a new amount. */
  async function correct(id: string, amountOutstanding: number): Promise<void> {
    const res = await call(court, 'POST', '/v1/listings', { items: [personListing(caseOf.get(id)!, { amountOutstanding })] })
    if (res.results[0].listingId !== id || res.results[0].status === 'unchanged') throw new Error(`not a correction: ${JSON.stringify(res.results[0])}`)
  }

  /** The gateway's active set for the agency, as [id, version] pairs. */
  async function activeSet(): Promise<[string, number][]> {
    const rows = await database.query<{ id: string; version: number }>("SELECT id, version FROM listings WHERE status = 'published' AND list_kind = 'dishonest' ORDER BY id")
    return rows.map((r) => [r.id, Number(r.version)])
  }
  /** The last sequence the agency's feed can show. */
  async function lastDishonestSeq(): Promise<number> {
    const [row] = await database.query<{ seq: string | null }>("SELECT max(seq) AS seq FROM listing_events WHERE list_kind = 'dishonest'")
    return Number(row?.seq ?? 0)
  }
  function localSet(dir: string): [string, number][] {
    return [...readListings(dir).values()].map((l) => [l.id, l.version] as [string, number]).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  }
  function snapshotFiles(dir: string): Record<string, string> {
    return Object.fromEntries([STATE_FILE, LISTINGS_FILE].map((f) => [f, readFileSync(join(dir, f), 'utf8')]))
  }
  /** A fetch that records the paths it was asked for and lets a test change answers. */
  function recordingFetch(edit?: (path: string, res: Response) => Promise<Response>) {
    const paths: string[] = []
    const wrapped: typeof fetch = async (input, init) => {
      const url = new URL(String(input))
      paths.push(`${url.pathname}${url.search}`)
      const res = await fetch(input, init)
      return edit ? edit(`${url.pathname}${url.search}`, res) : res
    }
    return { fetch: wrapped, paths }
  }
  const base = { url: gw.url, key: agency, audience: GATEWAY_ID, progress: null }

  t.test('a fresh directory is loaded from the snapshot; a second run resumes from the change feed', async (t) => {
    const ids = await push(25, 3)
    const dir = tempDir(t, 'fresh')

    // Between the first and second snapshot page: a removal, a correction and new listings, so the
    // snapshot pages are not all of one moment and the feed has to reconcile them by version.
    let mutated = false
    const rec = recordingFetch(async (path, res) => {
      if (path.startsWith('/v1/snapshot') && !mutated) {
        mutated = true
        await remove(ids[24]!)
        await correct(ids[1]!, 777)
        await push(2, 1)
      }
      return res
    })
    const first = await syncOnce({ ...base, outDir: dir, pageSize: 10, fetch: rec.fetch })
    t.equal(first.snapshot, true, 'a fresh directory starts from the snapshot')
    t.equal(first.snapshotPages, 3, 'in pages of 10')
    t.ok(rec.paths.some((p) => p.startsWith('/v1/changes?after=')), 'then the change feed')
    const expected = await activeSet()
    t.equal(expected.length, 25 - 1 + 2)
    t.same(localSet(dir), expected, 'the local copy equals the active set (ids and versions)')
    t.equal(first.count, expected.length)
    const copy = readListings(dir)
    t.equal(copy.get(ids[1]!)?.amountOutstanding, 777, 'the correction made during the snapshot is in the copy')
    t.notOk(copy.has(ids[24]!), 'the removal made during the snapshot is applied')
    t.notOk(ids.slice(25).some((id) => copy.has(id)), 'no restricted listing reaches a dishonest-only agency')
    const subject = copy.get(ids[0]!)?.subject as Record<string, unknown>
    t.same(Object.keys(subject).sort(), ['kind', 'name'], 'listings are projected to the agency fields')
    const state = readState(dir)!
    t.equal(state.seq, await lastDishonestSeq(), 'state.json records the last sequence applied')
    t.equal(first.seq, state.seq)
    t.equal(state.gatewayUrl, gw.url)
    t.equal(state.count, expected.length)
    t.ok(Date.parse(state.updatedAt) > Date.now() - 60_000, 'updatedAt is now')
    t.notOk(readdirSync(dir).some((f) => f.includes('.tmp-') || f === '.sync.lock'), 'no temp or lock file is left behind')

    // More changes, then a restart: it must resume from state.json, never take a snapshot again.
    const added = await push(6, 2)
    for (const id of [ids[0]!, ids[10]!, added[3]!]) await remove(id)
    await correct(ids[5]!, 1)
    const rec2 = recordingFetch()
    const second = await syncOnce({ ...base, outDir: dir, pageSize: 10, feedLimit: 3, fetch: rec2.fetch })
    t.equal(second.snapshot, false, 'resumed')
    t.notOk(rec2.paths.some((p) => p.startsWith('/v1/snapshot')), 'no snapshot request on resume')
    t.match(rec2.paths.find((p) => p.startsWith('/v1/changes')), new RegExp(`^/v1/changes\\?after=${state.seq}&`), 'the feed is read from the recorded sequence')
    t.ok(second.feedPages >= 4, `the feed was read in pages of 3 (${second.feedPages} pages, ${second.events} events)`)
    const expected2 = await activeSet()
    t.equal(expected2.length, 26 + 6 - 3)
    t.same(localSet(dir), expected2, 'after the resume the copy equals the active set again')
    const copy2 = readListings(dir)
    t.equal(copy2.get(ids[5]!)?.amountOutstanding, 1, 'the correction is applied')
    t.equal(copy2.get(ids[5]!)?.version, expected2.find(([id]) => id === ids[5])![1], 'at the corrected version')
    t.notOk([ids[0]!, ids[10]!, added[3]!].some((id) => copy2.has(id)), 'removed listings are gone')
    t.equal(readState(dir)!.seq, await lastDishonestSeq())

    // A drained feed: nothing to apply, nothing rewritten.
    const before = snapshotFiles(dir)
    const third = await syncOnce({ ...base, outDir: dir })
    t.equal(third.events, 0)
    t.equal(third.feedPages, 0)
    t.same(snapshotFiles(dir), before, 'a run with nothing new leaves the files as they were')
  })

  t.test('tampered answers are refused and leave the previous state as it was', async (t) => {
    await push(12)
    const fresh = tempDir(t, 'tamper-fresh')
    // A flipped byte in a listing on the second snapshot page: the signature no longer verifies.
    let pages = 0
    const flipped = recordingFetch(async (path, res) => (path.startsWith('/v1/snapshot') && ++pages === 2 ? rewrite(res, flipByte) : res))
    await t.rejects(syncOnce({ ...base, outDir: fresh, pageSize: 10, fetch: flipped.fetch }), { name: 'SyncError', message: /snapshot: X-GW-Signature does not verify/ })
    t.equal(pages, 2, 'refused at the tampered page')
    t.same(readdirSync(fresh), [], 'nothing was saved from the pages before it')

    // The same flip re-signed with the gateway's own key (as if the gateway itself were wrong): the
    // signature passes and the manifest's SHA-256 catches it.
    pages = 0
    const resigned = recordingFetch(async (path, res) => {
      if (!path.startsWith('/v1/snapshot') || ++pages !== 2) return res
      return rewrite(res, async (body, headers) => {
        const { alg: _alg, kid: _kid, ...header } = decodeProtectedHeader(headers.get('x-gw-signature')!)
        const tampered = flipByte(body)
        headers.set('x-gw-signature', await gatewayKeys.signDetached(tampered, header))
        return tampered
      })
    })
    await t.rejects(syncOnce({ ...base, outDir: fresh, pageSize: 10, fetch: resigned.fetch }), { name: 'SyncError', message: /snapshot page 2: the manifest SHA-256 [0-9a-f]{64} does not match the lines/ })
    t.same(readdirSync(fresh), [], 'still nothing saved')

    // An untouched run then loads it.
    await syncOnce({ ...base, outDir: fresh, pageSize: 10 })
    t.same(localSet(fresh), await activeSet(), 'a clean run afterwards loads the snapshot')

    // With a state: a tampered change-feed page, and a genuine answer to another request, are refused.
    const saved = snapshotFiles(fresh)
    const [gone] = await push(1)
    await remove(gone!)
    await correct((await activeSet())[0]![0], 4242)
    const flippedFeed = recordingFetch(async (path, res) => (path.startsWith('/v1/changes') ? rewrite(res, flipByte) : res))
    await t.rejects(syncOnce({ ...base, outDir: fresh, fetch: flippedFeed.fetch }), { name: 'SyncError', message: /changes: X-GW-Signature does not verify/ })
    t.same(snapshotFiles(fresh), saved, 'state.json and listings.ndjson are unchanged')

    let stale: { body: Buffer; headers: Headers } | undefined
    const replayed = recordingFetch(async (path, res) => {
      if (!path.startsWith('/v1/changes')) return res
      if (!stale) { const body = Buffer.from(await res.arrayBuffer()); stale = { body, headers: res.headers }; return new Response(new Uint8Array(body), { status: res.status, headers: res.headers }) }
      return new Response(new Uint8Array(stale.body), { status: 200, headers: stale.headers })
    })
    // First answer is genuine and applied; the second call gets the first answer again.
    await t.rejects(syncOnce({ ...base, outDir: fresh, feedLimit: 1, fetch: replayed.fetch }), { name: 'SyncError', message: /is bound to jti .*, not ours/ })
    const afterOne = readState(fresh)!
    t.ok(afterOne.seq > JSON.parse(saved[STATE_FILE]!).seq, 'the genuine first page was applied and saved')
    t.not(afterOne.seq, await lastDishonestSeq(), 'the replayed page was not')

    await syncOnce({ ...base, outDir: fresh })
    t.same(localSet(fresh), await activeSet(), 'an honest run afterwards converges')
    t.equal(readListings(fresh).size, (await activeSet()).length)
  })

  t.test('--follow long-polls the feed until aborted, then stops with everything saved', async (t) => {
    const dir = tempDir(t, 'follow')
    const controller = new AbortController()
    const rec = recordingFetch()
    const following = sync({ ...base, outDir: dir, follow: true, waitSeconds: 20, signal: controller.signal, fetch: rec.fetch })
    const waitFor = async (what: string, ok: () => boolean | Promise<boolean>) => {
      const until = Date.now() + 10_000
      while (!(await ok())) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
        await sleep(50)
      }
    }
    await waitFor('the snapshot', () => existsSync(join(dir, STATE_FILE)))
    await waitFor('a long poll', () => rec.paths.some((p) => /^\/v1\/changes\?.*&wait=20$/.test(p)))
    const [added] = await push(1)
    await waitFor('the new listing', () => readListings(dir).has(added!))
    t.equal(readState(dir)!.seq, await lastDishonestSeq(), 'the event arrived through the long poll and was saved')
    const abortedAt = Date.now()
    controller.abort()
    const result = await following
    t.ok(Date.now() - abortedAt < 2_000, `stopped promptly (${Date.now() - abortedAt} ms), not after the 20 s poll`)
    t.equal(result.snapshot, true)
    t.same(localSet(dir), await activeSet(), 'the copy equals the active set')
    t.equal(result.count, (await activeSet()).length)
    t.notOk(existsSync(join(dir, '.sync.lock')), 'the lock is released')
  })

  t.test('the CLI: npm run client -- sync, and --follow ends cleanly on SIGTERM', async (t) => {
    const dir = tempDir(t, 'cli')
    const keyPath = join(tempDir(t, 'cli-key'), 'agency.json')
    writeFileSync(keyPath, JSON.stringify(agency), { mode: 0o600 })
    const env: NodeJS.ProcessEnv = { ...process.env }
    delete env.NODE_OPTIONS
    delete env.NODE_V8_COVERAGE
    const args = ['sync', '--url', gw.url, '--aud', GATEWAY_ID, '--key', keyPath, '--out', dir, '--page-size', '10']
    const run = async (extra: string[]) => {
      try {
        const { stdout, stderr } = await promisify(execFile)('npm', ['run', '--silent', 'client', '--', ...extra], { cwd: projectPath('.'), env, timeout: 60_000 })
        return { code: 0, stdout, stderr }
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string }
        return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
      }
    }
    const first = await run(args)
    t.equal(first.code, 0, first.stderr)
    t.match(first.stderr, /snapshot: \d+ pages, \d+ listings, done\n/, 'progress: a line at the end without a TTY')
    t.match(first.stderr, /synced to seq \d+: \d+ listings/)
    t.same(localSet(dir), await activeSet())
    const second = await run(args)
    t.equal(second.code, 0, second.stderr)
    t.match(second.stderr, /resuming from seq \d+/)
    t.notMatch(second.stderr, /snapshot:/, 'no snapshot on the second run')
    const usage = await run(['sync', '--url', gw.url, '--key', keyPath])
    t.equal(usage.code, 2, 'without --out: usage, exit 2')
    t.match(usage.stderr, /usage: npm run client -- sync/)

    // --follow in a real process: a change arrives, then SIGTERM ends it with exit status 0.
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/client/cli.ts', ...args, '--follow', '--wait', '20'], { cwd: projectPath('.'), env, stdio: ['ignore', 'pipe', 'pipe'] })
    t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
    let stderr = ''
    child.stderr.on('data', (d) => { stderr += d })
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    await sleep(1500)
    const [added] = await push(1)
    const until = Date.now() + 15_000
    while (!readListings(dir).has(added!) && Date.now() < until) await sleep(100)
    t.ok(readListings(dir).has(added!), `the following process applied the new listing: ${stderr}`)
    child.kill('SIGTERM')
    const code = await Promise.race([exited, sleep(5_000).then(() => 'timeout' as const)])
    t.equal(code, 0, `exits 0 on SIGTERM: ${stderr}`)
    t.same(localSet(dir), await activeSet())
  })
}
