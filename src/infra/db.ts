import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
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

async function openPostgres(url: string, max: number): Promise<Database> {
  const sql = postgres(url, { max, onnotice: () => {}, connection: { application_name: 'credit-gateway' } })
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
