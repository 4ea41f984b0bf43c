import type { FastifyBaseLogger } from 'fastify'
import type { ListingsService } from './listings.service.js'

/**
 * Runs the expiry and grace-period pass every `intervalMs` (and once at start), never two passes at
 * once in this process; across processes the pass's advisory lock lets one work at a time. Its
 * state is the database, so a restart loses nothing: whatever fell due meanwhile is done next pass.
 */
export function startListingsScheduler(service: Pick<ListingsService, 'runDue'>, log: FastifyBaseLogger, intervalMs: number): () => Promise<void> {
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()
  let stopped = false
  const tick = () => {
    running = service.runDue().then((r) => {
      if (r.expired || r.published) log.info(r, 'listings scheduler: expired and published due listings')
    }, (err: unknown) => log.error({ err }, 'listings scheduler pass failed; retrying next interval')).finally(() => {
      if (!stopped) timer = setTimeout(tick, intervalMs)
    })
  }
  tick()
  return async () => {
    stopped = true
    clearTimeout(timer)
    await running
  }
}
