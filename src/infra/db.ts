import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect as netConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import postgres from 'postgres'
import * as schema from '../db/schema.js'

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]

/** Rows of `db.execute(sql)`: postgres.js returns an array, PGlite an object with `rows`. */
export function resultRows<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[]
}

/**
 * The database, whichever engine: drizzle for queries, plus the few things drizzle does not
 * abstract over both drivers (multi-statement scripts for migrations, LISTEN).
 */
export interface Database {
  readonly engine: 'postgres' | 'pglite'
  readonly db: Db
  /** Runs a multi-statement SQL script inside one transaction (migrations). */
  runScriptInTransaction(fn: (exec: (script: string) => Promise<void>, query: (text: string, params?: unknown[]) => Promise<Record<string, unknown>[]>) => Promise<void>): Promise<void>
  /** Raw parameterised query, returning rows. */
  /**
   * One statement. `prepare: true` names and caches it per connection (parsed and planned once): for
   * constant SQL on hot paths only, since every distinct text would stay cached.
   */
  query<T = Record<string, unknown>>(text: string, params?: unknown[], opts?: { prepare?: boolean }): Promise<T[]>
  /**
   * Subscribes to a NOTIFY channel; resolves to an unsubscribe function. `onResubscribed` runs when
   * a dropped listening connection is re-established: notifications sent meanwhile are lost, so
   * the caller must treat it as "anything may have changed".
   */
  listen(channel: string, onPayload: (payload: string) => void, onResubscribed?: () => void): Promise<() => Promise<void>>
  close(): Promise<void>
}

export interface DatabaseOptions {
  /** postgres:// URL; unset = PGlite. */
  url?: string
  /** PGlite data directory; unset = in memory. */
  pgliteDir?: string
  poolSize?: number
  /** An already open PGlite instance to wrap (tests clone a migrated template). */
  pglite?: PGlite
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  if (opts.url) return openPostgres(opts.url, opts.poolSize ?? 10)
  if (opts.pglite) return wrapPglite(opts.pglite)
  if (!opts.pgliteDir) return wrapPglite(await PGlite.create())
  mkdirSync(opts.pgliteDir, { recursive: true })
  const release = lockDirectory(opts.pgliteDir)
  try {
    const database = wrapPglite(await PGlite.create(opts.pgliteDir))
    const close = database.close
    return Object.assign(database, { close: async () => { try { await close() } finally { release() } } })
  } catch (err) {
    release()
    throw err
  }
}

/**
 * One embedded database directory serves one process: a second opener (say `npm run import` while
 * the gateway runs) would corrupt it. A lock file with the owner's pid refuses it; a lock left by a
 * process that died is taken over.
 */
function lockDirectory(dir: string): () => void {
  const file = join(dir, 'gateway.lock')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' })
      return () => rmSync(file, { force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const owner = Number(readFileSync(file, 'utf8'))
      if (owner && isAlive(owner)) {
        throw new Error(`the embedded database at ${dir} is open in process ${owner}; stop it first (one PGlite directory serves one process)`)
      }
      rmSync(file, { force: true })
    }
  }
  throw new Error(`cannot lock the embedded database at ${dir}`)
}

function isAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

/**
 * How long a connection attempt may take before its queries fail (postgres.js default: 30 s). A
 * database that does not answer must turn into a prompt 503, not a request hanging for half a minute.
 */
export const CONNECT_TIMEOUT_SECONDS = 5
/** The longest pause between reconnection attempts of one pooled connection. */
export const RECONNECT_MAX_DELAY_SECONDS = 0.5

/**
 * Seconds a pooled connection waits before its next connection attempt. postgres.js's default grows
 * 3^retries / 100 s up to 20 s with the failures counted across the whole pool, and a query handed to
 * a connection that is still waiting out that delay waits with it: after a few seconds of outage
 * requests hung for many seconds instead of failing, and the gateway came back up to 20 s after the
 * database did. Capped at half a second (with jitter), a request during an outage fails within about
 * that long (503), and the pool is back within about that long of the database.
 */
export function reconnectDelaySeconds(retries: number): number {
  return Math.min(0.05 * 2 ** retries, RECONNECT_MAX_DELAY_SECONDS) * (0.5 + Math.random() / 2)
}

/**
 * The TCP (or unix) socket postgres.js talks over, opened here (its `socket` option) to work around a
 * crash in postgres.js 3.4.9 (porsager/postgres#1154, #1208; unfixed upstream): when the server
 * closes a connection, postgres.js nulls its socket and only then rejects the queries in flight; a
 * transaction (`sql.begin`, under drizzle's `db.transaction`) reacts by sending ROLLBACK on that
 * connection, whose deferred write then dereferences the null socket in a setImmediate callback —
 * an uncaught TypeError that took the whole gateway down whenever PostgreSQL restarted during a push.
 *
 * Here postgres.js hears of a close in two steps: at once an `error` (so every query in flight is
 * rejected while its socket still exists, and a ROLLBACK written in reaction goes to the dead socket,
 * which drops it), then, two event-loop turns later (after that deferred write has run), the `close`
 * itself, after refusing whatever was sent meanwhile; that resets the connection for the pool.
 * Connection-refused and timeout errors take the same path as before. Not covered: a transaction
 * idle on something other than its own query when the server closes (none of ours is), and TLS
 * (postgres.js wraps the socket in its own TLS socket, whose close it hears directly). Remove once
 * postgres.js guards `nextWrite` (or patch it: see the PRs on those issues).
 */
function connectSocket(options: { host: string[]; port: number[]; path?: string | false }): Socket {
  const i = hostTurn++ % Math.max(1, options.host.length)
  const host = options.host[i] ?? 'localhost'
  const port = options.port[i] ?? 5432
  const socket = options.path ? netConnect(options.path) : netConnect(port, host)
  Object.assign(socket, { host, port })
  let errored = false
  const emit = socket.emit.bind(socket) as (event: string | symbol, ...args: unknown[]) => boolean
  const closedError = () => Object.assign(new Error('the database closed the connection'), { code: 'CONNECTION_CLOSED' })
  socket.emit = ((event: string | symbol, ...args: unknown[]) => {
    if (event === 'error') errored = true
    if (event !== 'close') return emit(event, ...args)
    if (!errored) { errored = true; emit('error', closedError()) }
    setImmediate(() => setImmediate(() => {
      // Whatever was sent meanwhile (a ROLLBACK) is refused too, so nothing waits on a dead connection.
      emit('error', closedError())
      emit('close', ...args)
    }))
    return true
  }) as Socket['emit']
  return socket
}
let hostTurn = 0

async function openPostgres(url: string, max: number): Promise<Database> {
  const sql = postgres(url, {
    max, onnotice: () => {}, connection: { application_name: 'credit-gateway' },
    connect_timeout: CONNECT_TIMEOUT_SECONDS, backoff: reconnectDelaySeconds,
    // Not in postgres.js's type definitions, but a documented option (custom sockets, e.g. Cloudflare).
    ...({ socket: connectSocket } as object),
  })
  const db = drizzlePostgres(sql, { schema }) as unknown as Db
  return {
    engine: 'postgres',
    db,
    async runScriptInTransaction(fn) {
      await sql.begin(async (tx) => {
        await fn(async (script) => { await tx.unsafe(script).simple() }, async (text, params = []) => [...await tx.unsafe(text, params as never[])])
      })
    },
    async query<T>(text: string, params: unknown[] = [], opts: { prepare?: boolean } = {}) {
      return [...await sql.unsafe(text, params as never[], { prepare: opts.prepare ?? false })] as T[]
    },
    async listen(channel, onPayload, onResubscribed) {
      let first = true
      // postgres.js calls the third argument on every (re)subscription; skip the initial one.
      const sub = await sql.listen(channel, onPayload, () => { if (first) first = false; else onResubscribed?.() })
      return async () => { await sub.unlisten() }
    },
    async close() { await sql.end({ timeout: 5 }) },
  }
}

function wrapPglite(pg: PGlite): Database {
  const db = drizzlePglite(pg, { schema }) as unknown as Db
  return {
    engine: 'pglite',
    db,
    async runScriptInTransaction(fn) {
      await pg.transaction(async (tx) => {
        await fn(async (script) => { await tx.exec(script) }, async (text, params = []) => (await tx.query<Record<string, unknown>>(text, params)).rows)
      })
    },
    async query<T>(text: string, params: unknown[] = []) {
      return (await pg.query<T>(text, params)).rows
    },
    async listen(channel, onPayload) {
      return pg.listen(channel, onPayload)
    },
    async close() { await pg.close() },
  }
}
