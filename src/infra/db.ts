import { mkdirSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import postgres from 'postgres'
import * as schema from '../db/schema.js'

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>

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
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>
  /** Subscribes to a NOTIFY channel; resolves to an unsubscribe function. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>
  close(): Promise<void>
}

export interface DatabaseOptions {
  /** postgres:// URL; unset = PGlite. */
  url?: string
  /** PGlite data directory; unset = in memory. */
  pgliteDir?: string
  poolSize?: number
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  return opts.url ? openPostgres(opts.url, opts.poolSize ?? 10) : openPglite(opts.pgliteDir)
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
    async query<T>(text: string, params: unknown[] = []) {
      return [...await sql.unsafe(text, params as never[])] as T[]
    },
    async listen(channel, onPayload) {
      const sub = await sql.listen(channel, onPayload)
      return async () => { await sub.unlisten() }
    },
    async close() { await sql.end({ timeout: 5 }) },
  }
}

async function openPglite(dir: string | undefined): Promise<Database> {
  if (dir) mkdirSync(dir, { recursive: true })
  const pg = dir ? await PGlite.create(dir) : await PGlite.create()
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
