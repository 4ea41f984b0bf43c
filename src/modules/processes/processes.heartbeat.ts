import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Clock } from '../../infra/clock.js'
import type { ProcessesRepository } from './processes.repository.js'

/** A row not seen for this long belongs to a process that died without closing; any heartbeat deletes it. */
export const PRUNE_AFTER_MS = 10 * 60_000

export interface HeartbeatSource {
  /** The match index sync (IndexSync): ready, last applied change-log seq, events applied since start. */
  sync: { readonly ready: boolean; readonly appliedSeq: number; readonly eventsApplied: number }
  index: { readonly size: number }
}

/**
 * This process's row in gateway_processes, upserted every `intervalSeconds` with the app clock as
 * last_seen_at, deleted on stop. A failed beat is logged and retried next tick: the dashboard may
 * show the process stale, but the process itself never stops for it.
 */
export function createProcessHeartbeat(deps: HeartbeatSource & {
  repository: ProcessesRepository
  clock: Clock
  intervalSeconds: number
  log: { warn(obj: unknown, msg?: string): void }
}) {
  const { repository, clock, intervalSeconds, log } = deps
  const id = randomUUID()
  const host = hostname()
  const startedAt = new Date(clock.nowMs())
  let lastApplied: number | undefined
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  let started = false
  let stopped = false

  async function beatOnce() {
    if (stopped) return // a beat after stop would bring the deleted row back
    const now = clock.nowMs()
    const applied = deps.sync.eventsApplied
    // Events applied in the last interval; the first beat has no previous one to compare with.
    const eventsPerSecond = lastApplied === undefined ? 0 : Math.max(0, applied - lastApplied) / intervalSeconds
    lastApplied = applied
    await repository.upsert({
      id, host, pid: process.pid, startedAt, lastSeenAt: new Date(now),
      indexSeq: deps.sync.appliedSeq, indexReady: deps.sync.ready, indexSize: deps.index.size,
      eventsApplied: applied, eventsPerSecond,
    })
    await repository.prune(new Date(now - PRUNE_AFTER_MS))
  }

  /** One beat now; beats never overlap (a call during one waits for it, then beats again). */
  function beat(): Promise<void> {
    const next = (running ?? Promise.resolve()).catch(() => {}).then(beatOnce)
    const mine: Promise<void> = next.finally(() => { if (running === mine) running = undefined })
    running = mine
    return mine
  }

  const tick = async () => {
    if (stopped) return
    try {
      await beat()
    } catch (err) {
      log.warn({ err, processId: id }, 'process heartbeat failed; retrying next tick')
    }
    if (!stopped) { timer = setTimeout(() => void tick(), intervalSeconds * 1000); timer.unref() }
  }

  return {
    id,
    beat,
    /** The first beat is awaited (the row exists once the app is ready); its failure is only logged. */
    async start() { started = true; await tick() },
    async stop() {
      stopped = true
      clearTimeout(timer)
      await running?.catch(() => {})
      if (!started) return // never wrote a row (the app was closed before it was ready)
      try {
        await repository.remove(id)
      } catch (err) {
        log.warn({ err, processId: id }, 'could not delete this process from gateway_processes; it is pruned after 10 minutes')
      }
    },
  }
}

export type ProcessHeartbeat = ReturnType<typeof createProcessHeartbeat>
