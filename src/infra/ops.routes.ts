import type { FastifyInstance } from 'fastify'
import type { Database } from './db.js'
import type { GatewayKeys } from './gateway-keys.js'
import { pendingMigrations } from './migrate.js'

const statusSchema = { type: 'object', required: ['status'], properties: { status: { type: 'string' }, checks: { type: 'object', additionalProperties: true } } } as const

/** Liveness, readiness and the gateway's public keys: unsigned, for load balancers and partners. */
export async function opsRoutes(app: FastifyInstance, opts: { database: Database; gatewayKeys: GatewayKeys; indexReady: () => boolean; rulesReady: () => boolean }) {
  app.get('/healthz', {
    config: { operationId: 'ops.healthz' },
    schema: { tags: ['ops'], summary: 'Liveness: the process is up', response: { 200: statusSchema } },
  }, async () => ({ status: 'ok' }))

  app.get('/readyz', {
    config: { operationId: 'ops.readyz' },
    schema: { tags: ['ops'], summary: 'Readiness: database reachable, every migration applied, match index built, rule set loaded', response: { 200: statusSchema, 503: statusSchema } },
  }, async (_req, reply) => {
    const checks: Record<string, string> = {}
    try {
      await opts.database.query('SELECT 1')
      checks.database = 'ok'
      const pending = await pendingMigrations(opts.database)
      checks.migrations = pending.length === 0 ? 'ok' : `pending: ${pending.join(', ')}`
    } catch {
      checks.database = 'unreachable'
    }
    // Not ready until the match index has been built and caught up with the change log.
    checks.matchIndex = opts.indexReady() ? 'ok' : 'building'
    checks.rules = opts.rulesReady() ? 'ok' : 'loading'
    const ready = Object.values(checks).every((v) => v === 'ok') && checks.migrations !== undefined
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks })
  })

  app.get('/.well-known/jwks.json', {
    config: { operationId: 'ops.jwks' },
    schema: { tags: ['ops'], summary: 'The gateway public keys that sign responses (X-GW-Signature)', response: { 200: { $ref: 'Jwks#' } } },
  }, async (_req, reply) => {
    reply.header('cache-control', 'public, max-age=300')
    return opts.gatewayKeys.jwks
  })
}
