import { and, asc, eq, sql } from 'drizzle-orm'
import type { Db } from '../../infra/db.js'
import { principalEvents, principalKeys, principals, type PrincipalKeyRow, type PrincipalRow } from './principals.table.js'

/** NOTIFY channel every process listens on to drop cached keys when a principal changes. */
export const PRINCIPALS_CHANNEL = 'principals_changed'

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]
type Executor = Db | Tx

export interface PrincipalWithKeys extends PrincipalRow { keys: PrincipalKeyRow[] }

export function createPrincipalsRepository(db: Db) {
  async function withKeys(exec: Executor, rows: PrincipalRow[]): Promise<PrincipalWithKeys[]> {
    if (rows.length === 0) return []
    const keys = await exec.select().from(principalKeys).orderBy(asc(principalKeys.createdAt), asc(principalKeys.kid))
    return rows.map((r) => ({ ...r, keys: keys.filter((k) => k.principalId === r.id) }))
  }

  const repo = {
    /** Runs `fn` in one transaction; the change is announced to every process on commit. */
    async inTransaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
      return db.transaction(fn)
    },

    async notifyChanged(tx: Tx, principalId: string) {
      await tx.execute(sql`SELECT pg_notify(${PRINCIPALS_CHANNEL}, ${principalId})`)
    },

    async findById(id: string, exec: Executor = db): Promise<PrincipalWithKeys | undefined> {
      const rows = await exec.select().from(principals).where(eq(principals.id, id))
      if (rows.length === 0) return undefined
      const keys = await exec.select().from(principalKeys).where(eq(principalKeys.principalId, id)).orderBy(asc(principalKeys.createdAt), asc(principalKeys.kid))
      return { ...rows[0]!, keys }
    },

    async list(): Promise<PrincipalWithKeys[]> {
      return withKeys(db, await db.select().from(principals).orderBy(asc(principals.id)))
    },

    async count(): Promise<number> {
      const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(principals)
      return row?.n ?? 0
    },

    async insertPrincipal(tx: Tx, row: typeof principals.$inferInsert) {
      await tx.insert(principals).values(row)
    },

    async updatePrincipal(tx: Tx, id: string, patch: Partial<Pick<PrincipalRow, 'name' | 'scopes' | 'profile' | 'status'>>) {
      await tx.update(principals).set({ ...patch, updatedAt: new Date() }).where(eq(principals.id, id))
    },

    async findKey(kid: string, exec: Executor = db): Promise<PrincipalKeyRow | undefined> {
      const rows = await exec.select().from(principalKeys).where(eq(principalKeys.kid, kid))
      return rows[0]
    },

    async insertKey(tx: Tx, row: typeof principalKeys.$inferInsert) {
      await tx.insert(principalKeys).values(row)
    },

    async retireKey(tx: Tx, principalId: string, kid: string) {
      await tx.update(principalKeys).set({ status: 'retired', retiredAt: new Date() })
        .where(and(eq(principalKeys.principalId, principalId), eq(principalKeys.kid, kid), eq(principalKeys.status, 'active')))
    },

    async recordEvent(tx: Tx, event: typeof principalEvents.$inferInsert) {
      await tx.insert(principalEvents).values(event)
    },

    /** The key and its owner in one query: the GW1 hot path's only database read (then cached). */
    async findKeyWithPrincipal(kid: string): Promise<{ key: PrincipalKeyRow; principal: PrincipalRow } | undefined> {
      const rows = await db.select({ key: principalKeys, principal: principals }).from(principalKeys)
        .innerJoin(principals, eq(principals.id, principalKeys.principalId)).where(eq(principalKeys.kid, kid))
      return rows[0]
    },
  }
  return repo
}

export type PrincipalsRepository = ReturnType<typeof createPrincipalsRepository>
