/**
 * A small webhook receiver partners can run or copy (`npm run client -- serve-webhook`): it checks
 * each pushed event's X-GW-Signature against the gateway JWKS (and that the signature names this
 * event's subscription and sequence), drops repeats by sequence (delivery is at least once), and
 * applies the event to a local copy in the same files as `sync` (DIR/listings.ndjson), plus
 * DIR/webhook-state.json {subscriptionId: last applied sequence}.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { compactVerify, createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet } from 'jose'
import { applyEvents, LISTINGS_FILE, readListings } from './sync.js'

export const WEBHOOK_STATE_FILE = 'webhook-state.json'
const MAX_BODY_BYTES = 4 * 1024 * 1024

export interface ReceiverOptions {
  outDir: string
  /** The gateway's base URL, for its JWKS; or the JWKS itself. */
  gatewayUrl?: string
  jwks?: JSONWebKeySet
  host?: string
  port?: number
  log?: (line: string) => void
}

function writeAtomic(path: string, text: string) {
  const tmp = `${path}.tmp-${process.pid}`
  writeFileSync(tmp, text, { mode: 0o600 })
  renameSync(tmp, path)
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => { size += c.length; if (size > MAX_BODY_BYTES) { req.destroy(); resolve(undefined) } else chunks.push(c) })
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

export async function startWebhookReceiver(opts: ReceiverOptions): Promise<{ url: string; server: Server; stats: { applied: number; repeats: number; refused: number }; close(): Promise<void> }> {
  let jwks = opts.jwks
  async function keys(): Promise<JSONWebKeySet> {
    if (!jwks) {
      const res = await fetch(new URL('/.well-known/jwks.json', opts.gatewayUrl), { signal: AbortSignal.timeout(5000) })
      if (!res.ok) throw new Error(`JWKS: HTTP ${res.status}`)
      jwks = await res.json() as JSONWebKeySet
    }
    return jwks
  }
  const statePath = join(opts.outDir, WEBHOOK_STATE_FILE)
  const state: Record<string, number> = existsSync(statePath) ? JSON.parse(readFileSync(statePath, 'utf8')) as Record<string, number> : {}
  const copy = readListings(opts.outDir)
  const stats = { applied: 0, repeats: 0, refused: 0 }
  // One event at a time: the copy and the state are written before the 2xx that acknowledges it.
  let queue = Promise.resolve()

  async function handle(req: IncomingMessage): Promise<number> {
    if (req.method !== 'POST') return 405
    const body = await readBody(req)
    const signature = String(req.headers['x-gw-signature'] ?? '')
    if (!body || !signature) return 400
    let event: { seq: number; kind: 'published' | 'updated' | 'removed' | 'expired'; listingId: string; version: number; listing: Record<string, unknown> & { version: number } }
    let subscriptionId: string
    try {
      const [h, , s] = signature.split('.')
      await compactVerify(`${h}.${body.toString('base64url')}.${s}`, createLocalJWKSet(await keys()), { algorithms: ['ES256', 'EdDSA'] })
      const header = decodeProtectedHeader(signature)
      ;({ event, subscriptionId } = JSON.parse(body.toString('utf8')))
      if (header.sub !== subscriptionId || header.seq !== event.seq) throw new Error('the signature names another event')
    } catch (err) {
      stats.refused++
      opts.log?.(`refused: ${(err as Error).message}`)
      return 401
    }
    if (event.seq <= (state[subscriptionId] ?? 0)) { stats.repeats++; return 200 }
    applyEvents(copy as never, [event as never])
    writeAtomic(join(opts.outDir, LISTINGS_FILE), [...copy.values()].map((l) => `${JSON.stringify(l)}\n`).join(''))
    state[subscriptionId] = event.seq
    writeAtomic(statePath, JSON.stringify(state))
    stats.applied++
    return 204
  }

  const server = createServer((req, res) => {
    queue = queue.then(() => handle(req)).then((status) => { res.writeHead(status).end() }, (err: unknown) => { opts.log?.(`error: ${(err as Error).message}`); res.writeHead(500).end() })
  })
  await new Promise<void>((r) => server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', r))
  const address = server.address() as AddressInfo
  return { url: `http://${address.address}:${address.port}/`, server, stats, close: () => new Promise<void>((r) => server.close(() => r())) }
}

export const SERVE_WEBHOOK_USAGE = 'usage: npm run client -- serve-webhook --out DIR [--url GATEWAY_URL] [--host 127.0.0.1] [--port 8080]'

export async function runServeWebhookCli(argv: string[]): Promise<number> {
  const value = (flag: string) => { const i = argv.indexOf(flag); return i >= 0 ? argv[i + 1] : undefined }
  const outDir = value('--out')
  if (!outDir || argv.includes('--help')) { console.error(SERVE_WEBHOOK_USAGE); return 2 }
  const receiver = await startWebhookReceiver({
    outDir, gatewayUrl: value('--url') ?? process.env.GATEWAY_URL ?? 'http://127.0.0.1:3000', host: value('--host'), port: Number(value('--port') ?? 8080),
    log: (line) => console.error(line),
  })
  console.error(`receiving webhooks at ${receiver.url}, applying to ${outDir}`)
  await new Promise<void>((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve) })
  await receiver.close()
  console.error(`stopped: ${receiver.stats.applied} applied, ${receiver.stats.repeats} repeats, ${receiver.stats.refused} refused`)
  return 0
}
