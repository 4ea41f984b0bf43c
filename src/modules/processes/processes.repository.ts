import type { Database } from '../../infra/db.js'

export interface ProcessBeat {
  id: string
  host: string
  pid: number
  startedAt: Date
  lastSeenAt: Date
  indexSeq: number
  indexReady: boolean
  indexSize: number
  eventsApplied: number
  eventsPerSecond: number
}

interface Row {
  id: string; host: string; pid: number; started_at: Date | string; last_seen_at: Date | string
  index_seq: string | number | bigint; index_ready: boolean; index_size: number
  events_applied: string | number | bigint; events_per_second: number
}

// bigint comes back as a string (postgres.js) or a number/bigint (PGlite); timestamps as Date either way, but be lenient.
const fromRow = (r: Row): ProcessBeat => ({
  id: r.id, host: r.host, pid: r.pid, startedAt: new Date(r.started_at), lastSeenAt: new Date(r.last_seen_at),
  indexSeq: Number(r.index_seq), indexReady: r.index_ready, indexSize: r.index_size,
  eventsApplied: Number(r.events_applied), eventsPerSecond: Number(r.events_per_second),
})

const UPSERT = `
INSERT INTO gateway_processes (id, host, pid, started_at, last_seen_at, index_seq, index_ready, index_size, events_applied, events_per_second)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (id) DO UPDATE SET
  last_seen_at = excluded.last_seen_at, index_seq = excluded.index_seq, index_ready = excluded.index_ready,
  index_size = excluded.index_size, events_applied = excluded.events_applied, events_per_second = excluded.events_per_second`

/**
 * gateway_processes: one row per running gateway process. Single statements only, never inside a
 * transaction: on PGlite there is one connection, and a heartbeat must not wait on (or hold) it.
 */
export function createProcessesRepository(database: Database) {
  return {
    async upsert(p: ProcessBeat): Promise<void> {
      await database.query(UPSERT, [
        p.id, p.host, p.pid, p.startedAt.toISOString(), p.lastSeenAt.toISOString(),
        p.indexSeq, p.indexReady, p.indexSize, p.eventsApplied, p.eventsPerSecond,
      ], { prepare: true })
    },

    /** Rows of processes not seen since `before` (died without closing); returns how many. */
    async prune(before: Date): Promise<number> {
      const rows = await database.query<{ id: string }>('DELETE FROM gateway_processes WHERE last_seen_at < $1 RETURNING id', [before.toISOString()], { prepare: true })
      return rows.length
    },

    async remove(id: string): Promise<void> {
      await database.query('DELETE FROM gateway_processes WHERE id = $1', [id])
    },

    async list(): Promise<ProcessBeat[]> {
      return (await database.query<Row>('SELECT * FROM gateway_processes ORDER BY host, started_at, id')).map(fromRow)
    },
  }
}

export type ProcessesRepository = ReturnType<typeof createProcessesRepository>
