/**
 * The benchmark's noise reference: a bare Fastify 5 server with one GET route that returns a small
 * JSON object of about the size of `GET /v1/whoami`'s body, serialised through a response schema
 * (as fastify/benchmarks does). No plugins, no hooks, logger off. bench/run.ts starts it as a child
 * process next to the gateway and measures both in the same run.
 *
 * Env: PORT (required), HOST (default 127.0.0.1).
 */
import Fastify from 'fastify'

/** Keep in step with bench/run.ts (not imported from here: importing this file would start a server). */
const BASELINE_PATH = '/v1/baseline'

const body = {
  id: 'baseline',
  kind: 'agency',
  name: '基准服务 Baseline reference',
  courtCode: null,
  scopes: ['match', 'changes:read', 'feedback:write'],
  profile: {
    lists: ['dishonest', 'restricted'],
    fields: ['name', 'caseNumber', 'courtName'],
    scenarios: ['TICKET_AIR'],
    rateLimit: { max: 5000, timeWindowSeconds: 1 },
    dailyQuota: 50_000_000,
  },
  kid: 'baseline-20260101-abcdef',
}

async function main() {
  const port = Number(process.env.PORT)
  if (!Number.isInteger(port) || port <= 0) throw new Error('PORT is required')
  const app = Fastify({ logger: false })
  app.get(BASELINE_PATH, {
    schema: {
      response: {
        200: {
          type: 'object',
          properties: {
            id: { type: 'string' }, kind: { type: 'string' }, name: { type: 'string' }, courtCode: { type: ['string', 'null'] },
            scopes: { type: 'array', items: { type: 'string' } }, profile: { type: 'object', additionalProperties: true }, kid: { type: 'string' },
          },
        },
      },
    },
  }, async () => body)
  await app.listen({ host: process.env.HOST ?? '127.0.0.1', port })
  const stop = () => { void app.close().then(() => process.exit(0)) }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
