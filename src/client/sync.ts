import { createHash } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import type { JSONWebKeySet } from 'jose'
import { readKeyFile, ResponseSignatureError, signRequest, verifyResponseSignature, type KeyFile } from './gw1-client.js'

/**
 * The reference consumer (issue 7 item 4): keeps a local copy of an agency's view of the lists.
 *
 * A directory with no `state.json` is filled from `GET /v1/snapshot` (every page's X-GW-Signature and
 * manifest SHA-256 checked; nothing is written until the last page has passed), then the change feed
 * `GET /v1/changes?after=SEQ` is applied by version from the snapshot's sequence. After each applied
 * feed page the copy is saved atomically (temp file + fsync + rename):
 *
 *   DIR/listings.ndjson  one projected listing per line, exactly as the gateway sent it (order unspecified)
 *   DIR/state.json       {"seq", "gatewayUrl", "principalId", "count", "updatedAt"}
 *
 * listings.ndjson is renamed into place before state.json, so a crash between the two leaves a copy
 * that is ahead of `seq`; replaying the feed from `seq` by version converges to the same set.
 */

export const STATE_FILE = 'state.json'
export const LISTINGS_FILE = 'listings.ndjson'
const LOCK_FILE = '.sync.lock'

export interface SyncState {
  seq: number
  gatewayUrl: string
  principalId: string
  count: number
  updatedAt: string
}

export interface SyncOptions {
  url: string
  /** A key file, or the path of one. */
  key: KeyFile | string
  outDir: string
  /** The gateway id tokens are addressed to (default credit-gateway). */
  audience?: string
  /** Keep following with the long poll until `signal` aborts. */
  follow?: boolean
  /** Long-poll seconds for --follow (0–30, default 20). */
  waitSeconds?: number
  /** Snapshot page size (1–10 000, default 5000) and change-feed page size (1–1000, default 1000). */
  pageSize?: number
  feedLimit?: number
  signal?: AbortSignal
  fetch?: typeof fetch
  /** Where progress goes (default process.stderr); null for silence. */
  progress?: NodeJS.WritableStream & { isTTY?: boolean } | null
  /** Without a TTY, one progress line every this many snapshot pages (default 10). */
  progressEvery?: number
}

export interface SyncResult {
  seq: number
  count: number
  /** Whether this run loaded a snapshot (false when it resumed from state.json). */
  snapshot: boolean
  snapshotPages: number
  feedPages: number
  events: number
}

/** Refused data: a bad signature, a manifest that does not match, a foreign state directory. */
export class SyncError extends Error {
  override name = 'SyncError'
}

type Listing = Record<string, unknown> & { id: string; version: number }
type FeedEvent = { seq: number; kind: 'published' | 'updated' | 'removed' | 'expired'; listingId: string; version: number; listing: Listing }

function writeAtomic(path: string, chunks: Iterable<string>): void {
  const tmp = `${path}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    let buffered = ''
    for (const chunk of chunks) {
      buffered += chunk
      if (buffered.length >= 1 << 20) { writeSync(fd, buffered); buffered = '' }
    }
    if (buffered) writeSync(fd, buffered)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  renameSync(tmp, path)
}

function* ndjsonLines(copy: Map<string, Listing>): Generator<string> {
  for (const listing of copy.values()) yield `${JSON.stringify(listing)}\n`
}

export function readState(outDir: string): SyncState | undefined {
  const path = join(outDir, STATE_FILE)
  if (!existsSync(path)) return undefined
  return JSON.parse(readFileSync(path, 'utf8')) as SyncState
}

export function readListings(outDir: string): Map<string, Listing> {
  const copy = new Map<string, Listing>()
  const path = join(outDir, LISTINGS_FILE)
  if (!existsSync(path)) return copy
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line) continue
    const listing = JSON.parse(line) as Listing
    copy.set(listing.id, listing)
  }
  return copy
}

function save(outDir: string, copy: Map<string, Listing>, state: Omit<SyncState, 'updatedAt' | 'count'>): SyncState {
  writeAtomic(join(outDir, LISTINGS_FILE), ndjsonLines(copy))
  const full: SyncState = { ...state, count: copy.size, updatedAt: new Date().toISOString() }
  writeAtomic(join(outDir, STATE_FILE), [`${JSON.stringify(full, null, 2)}\n`])
  return full
}

/** One process per directory: an O_EXCL lock file holding our pid, taken over when its owner is gone. */
function lock(outDir: string): () => void {
  const path = join(outDir, LOCK_FILE)
  for (;;) {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' })
      return () => rmSync(path, { force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const owner = Number(readFileSync(path, 'utf8'))
    let alive = true
    try { process.kill(owner, 0) } catch (err) { alive = (err as NodeJS.ErrnoException).code === 'EPERM' }
    if (alive) throw new SyncError(`${outDir} is in use by another sync (pid ${owner}; remove ${path} if that process is gone)`)
    rmSync(path, { force: true })
  }
}

/** Applies change events by version; returns how many changed the copy. */
export function applyEvents(copy: Map<string, Listing>, events: FeedEvent[]): number {
  let changed = 0
  for (const e of events) {
    const known = copy.get(e.listingId)
    if (e.kind === 'removed' || e.kind === 'expired') {
      // A replayed old removal must not delete a newer version the snapshot already holds.
      if (known && known.version <= e.version) { copy.delete(e.listingId); changed++ }
    } else if (!known || known.version < e.version) {
      copy.set(e.listingId, e.listing)
      changed++
    }
  }
  return changed
}

class Progress {
  private readonly tty: boolean
  private drawn = false
  constructor(private readonly out: SyncOptions['progress'], private readonly every: number) {
    this.tty = Boolean(out?.isTTY)
  }
  page(pages: number, rows: number, done: boolean): void {
    if (!this.out) return
    const text = `snapshot: ${pages} page${pages === 1 ? '' : 's'}, ${rows} listings${done ? ', done' : ''}`
    if (this.tty) {
      this.out.write(`\r\x1b[2K${text}${done ? '\n' : ''}`)
      this.drawn = !done
    } else if (done || pages % this.every === 0) {
      this.out.write(`${text}\n`)
    }
  }
  line(text: string): void {
    if (!this.out) return
    if (this.drawn) { this.out.write('\n'); this.drawn = false }
    this.out.write(`${text}\n`)
  }
}

/** Signs, sends and verifies one GET; returns the exact body bytes the signature covers. */
function createCaller(opts: SyncOptions, key: KeyFile) {
  const doFetch = opts.fetch ?? fetch
  const baseUrl = opts.url.replace(/\/+$/, '')
  const audience = opts.audience ?? 'credit-gateway'
  let jwks: JSONWebKeySet | undefined

  async function gatewayKeys(refresh: boolean): Promise<JSONWebKeySet> {
    if (!jwks || refresh) {
      const res = await doFetch(`${baseUrl}/.well-known/jwks.json`, { signal: opts.signal })
      if (!res.ok) throw new SyncError(`cannot fetch the gateway JWKS: HTTP ${res.status}`)
      jwks = (await res.json()) as JSONWebKeySet
    }
    return jwks
  }

  return async function get(pathWithQuery: string): Promise<{ status: number; headers: Headers; raw: Buffer }> {
    const { authorization, jti } = await signRequest({ method: 'GET', pathWithQuery, audience, key })
    // identity: fetch would gunzip transparently, and the signature covers the compressed bytes.
    const res = await doFetch(`${baseUrl}${pathWithQuery}`, { headers: { authorization, 'accept-encoding': 'identity' }, signal: opts.signal })
    const raw = Buffer.from(await res.arrayBuffer())
    const signature = res.headers.get('x-gw-signature')
    try {
      try {
        await verifyResponseSignature(signature, raw, jti, await gatewayKeys(false))
      } catch (err) {
        // The gateway may have rotated its key since we fetched the JWKS: refetch once.
        if (!(err instanceof ResponseSignatureError)) throw err
        await verifyResponseSignature(signature, raw, jti, await gatewayKeys(true))
      }
    } catch (err) {
      if (err instanceof ResponseSignatureError) throw new SyncError(`GET ${pathWithQuery.split('?')[0]}: ${err.message}; nothing was applied`)
      throw err
    }
    if (res.status !== 200) {
      let detail = raw.toString('utf8').slice(0, 500)
      try { const p = JSON.parse(detail) as { code?: string; detail?: string; title?: string }; detail = `${p.code ?? ''} ${p.detail ?? p.title ?? ''}`.trim() } catch { /* not JSON */ }
      throw new SyncError(`GET ${pathWithQuery.split('?')[0]}: HTTP ${res.status} ${detail}`)
    }
    return { status: res.status, headers: res.headers, raw }
  }
}

type Get = ReturnType<typeof createCaller>

/** Loads every snapshot page, verified, into memory; returns the copy and the snapshot's sequence. */
async function loadSnapshot(get: Get, pageSize: number, progress: Progress): Promise<{ copy: Map<string, Listing>; seq: number; pages: number }> {
  const copy = new Map<string, Listing>()
  let cursor: string | null = null
  let seq: number | undefined
  let pages = 0
  for (;;) {
    const path = `/v1/snapshot?limit=${pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`
    const { headers, raw } = await get(path)
    pages++
    const text = raw.toString('utf8')
    const end = text.lastIndexOf('\n', text.length - 2)
    const linesText = text.slice(0, end + 1)
    let manifest: { rows: number; seq: number; sha256: string; next: string | null; done: boolean }
    try {
      manifest = (JSON.parse(text.slice(end + 1)) as { manifest: typeof manifest }).manifest
    } catch {
      throw new SyncError(`snapshot page ${pages}: the last line is not a manifest`)
    }
    if (!manifest || typeof manifest.sha256 !== 'string') throw new SyncError(`snapshot page ${pages}: the last line is not a manifest`)
    const sha = createHash('sha256').update(linesText).digest('hex')
    if (sha !== manifest.sha256) throw new SyncError(`snapshot page ${pages}: the manifest SHA-256 ${manifest.sha256} does not match the lines (${sha})`)
    const lines = linesText === '' ? [] : linesText.slice(0, -1).split('\n')
    if (lines.length !== manifest.rows) throw new SyncError(`snapshot page ${pages}: the manifest counts ${manifest.rows} rows, the page has ${lines.length}`)
    seq ??= manifest.seq
    if (manifest.seq !== seq || Number(headers.get('x-snapshot-seq')) !== seq) throw new SyncError(`snapshot page ${pages}: sequence ${manifest.seq} is not the snapshot's ${seq}`)
    for (const line of lines) {
      const listing = JSON.parse(line) as Listing
      copy.set(listing.id, listing)
    }
    progress.page(pages, copy.size, manifest.done)
    if (manifest.done || !manifest.next) break
    cursor = manifest.next
  }
  return { copy, seq: seq ?? 0, pages }
}

const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((resolve) => {
  if (signal?.aborted) return resolve()
  const timer = setTimeout(() => { signal?.removeEventListener('abort', done); resolve() }, ms)
  const done = () => { clearTimeout(timer); resolve() }
  signal?.addEventListener('abort', done, { once: true })
})

/**
 * Brings `outDir` up to date: a verified snapshot when it has no state yet, then the change feed from
 * the recorded sequence. Without `follow` it returns once the feed is drained; with it, it long-polls
 * until `signal` aborts (transient network and 5xx errors are retried with backoff; a bad signature or
 * manifest always aborts). The copy on disk is only ever replaced by a fully verified one.
 */
export async function sync(opts: SyncOptions): Promise<SyncResult> {
  const key = typeof opts.key === 'string' ? readKeyFile(opts.key) : opts.key
  const gatewayUrl = opts.url.replace(/\/+$/, '')
  const progress = new Progress(opts.progress === undefined ? process.stderr : opts.progress, opts.progressEvery ?? 10)
  const feedLimit = opts.feedLimit ?? 1000
  const wait = Math.min(30, Math.max(0, opts.waitSeconds ?? 20))
  mkdirSync(opts.outDir, { recursive: true })
  const unlock = lock(opts.outDir)
  try {
    const get = createCaller(opts, key)
    const result: SyncResult = { seq: 0, count: 0, snapshot: false, snapshotPages: 0, feedPages: 0, events: 0 }
    let state = readState(opts.outDir)
    let copy: Map<string, Listing>
    if (state) {
      if (state.gatewayUrl !== gatewayUrl) throw new SyncError(`${opts.outDir} holds a copy from ${state.gatewayUrl}, not ${gatewayUrl}`)
      if (state.principalId !== key.principalId) throw new SyncError(`${opts.outDir} holds ${state.principalId}'s view, not ${key.principalId}'s`)
      copy = readListings(opts.outDir)
      progress.line(`resuming from seq ${state.seq} (${copy.size} listings)`)
    } else {
      const loaded = await loadSnapshot(get, opts.pageSize ?? 5000, progress)
      copy = loaded.copy
      state = save(opts.outDir, copy, { seq: loaded.seq, gatewayUrl, principalId: key.principalId })
      Object.assign(result, { snapshot: true, snapshotPages: loaded.pages })
    }

    let seq = state.seq
    let failures = 0
    while (!opts.signal?.aborted) {
      let events: FeedEvent[]
      let next: number
      try {
        const waitNow = opts.follow ? wait : 0
        const { raw } = await get(`/v1/changes?after=${seq}&limit=${feedLimit}${waitNow ? `&wait=${waitNow}` : ''}`)
        ;({ events, next } = JSON.parse(raw.toString('utf8')) as { events: FeedEvent[]; next: number })
        failures = 0
      } catch (err) {
        if (opts.signal?.aborted) break
        const transient = !(err instanceof SyncError) || /HTTP 5\d\d/.test((err as Error).message)
        if (!opts.follow || !transient) throw err
        failures++
        const backoff = Math.min(30_000, 1000 * 2 ** Math.min(failures - 1, 5))
        progress.line(`change feed: ${(err as Error).message}; retrying in ${backoff / 1000} s`)
        await sleep(backoff, opts.signal)
        continue
      }
      if (events.length > 0) {
        // Each page must move forward in sequence order: a replayed or reordered page is refused.
        let last = seq
        for (const e of events) {
          if (!(e.seq > last)) throw new SyncError(`change feed: event ${e.seq} after ${last} is out of order; nothing was applied`)
          last = e.seq
        }
        if (next !== last) throw new SyncError(`change feed: next ${next} is not the last event's sequence ${last}; nothing was applied`)
        applyEvents(copy, events)
        seq = next
        state = save(opts.outDir, copy, { seq, gatewayUrl, principalId: key.principalId })
        result.feedPages++
        result.events += events.length
        if (opts.follow) progress.line(`seq ${seq}: ${events.length} event${events.length === 1 ? '' : 's'}, ${copy.size} listings`)
      }
      if (!opts.follow && events.length < feedLimit) break
    }
    result.seq = seq
    result.count = copy.size
    progress.line(`synced to seq ${seq}: ${copy.size} listings in ${opts.outDir}`)
    return result
  } finally {
    unlock()
  }
}

/** One catch-up run: snapshot if needed, then the feed until it is drained. */
export function syncOnce(opts: Omit<SyncOptions, 'follow'>): Promise<SyncResult> {
  return sync({ ...opts, follow: false })
}

export const SYNC_USAGE = `usage: npm run client -- sync --key KEYFILE --out DIR [--url URL] [--aud GATEWAY_ID] [--follow] [--wait SECONDS] [--page-size N]

Keeps DIR a verified local copy of the lists as the agency in KEYFILE sees them. A DIR without
state.json is filled from GET /v1/snapshot (every page's X-GW-Signature and manifest SHA-256
checked); then the change feed is applied by version from the recorded sequence, saving
DIR/listings.ndjson (one listing per line) and DIR/state.json (seq, gatewayUrl, ...) atomically after
each page. A restart resumes from state.json. Any bad signature or manifest aborts and leaves the
previous copy as it was.

  --follow     keep following with the long poll until SIGINT/SIGTERM (default: stop when drained)
  --wait       long-poll seconds, 0–30 (default 20)
  --page-size  snapshot page size, 1–10000 (default 5000)`

export async function runSyncCli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      key: { type: 'string' }, url: { type: 'string' }, aud: { type: 'string' }, out: { type: 'string' },
      follow: { type: 'boolean' }, wait: { type: 'string' }, 'page-size': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help || !values.key || !values.out) {
    console.error(SYNC_USAGE)
    return values.help ? 0 : 2
  }
  const wait = values.wait === undefined ? 20 : Number(values.wait)
  const pageSize = values['page-size'] === undefined ? 5000 : Number(values['page-size'])
  if (!Number.isInteger(wait) || wait < 0 || wait > 30 || !Number.isInteger(pageSize) || pageSize < 1 || pageSize > 10_000) {
    console.error(SYNC_USAGE)
    return 2
  }
  const controller = new AbortController()
  const stop = () => controller.abort()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    await sync({
      url: values.url ?? process.env.GATEWAY_URL ?? 'http://127.0.0.1:3000',
      audience: values.aud ?? process.env.GATEWAY_ID ?? 'credit-gateway',
      key: values.key, outDir: values.out, follow: values.follow ?? false, waitSeconds: wait, pageSize, signal: controller.signal,
    })
    return 0
  } catch (err) {
    if (!controller.signal.aborted) throw err
    console.error('interrupted before the snapshot was complete: nothing was saved')
    return 130
  } finally {
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
  }
}
