import type { FastifyInstance } from 'fastify'
import type { SnapshotService } from './snapshot.service.js'

/** `GET /v1/snapshot`: the agency's projected copy of the active lists, page by page (scope changes:read). */
export async function snapshotRoutes(app: FastifyInstance, opts: { service: SnapshotService }) {
  app.get<{ Querystring: { cursor?: string; limit: number } }>('', {
    config: { scope: 'changes:read', operationId: 'snapshot.page' },
    schema: {
      tags: ['changes'],
      summary: 'Active listings as NDJSON in id order, consistent with X-Snapshot-Seq; the last line is a manifest with the next cursor; gzip on Accept-Encoding',
      querystring: {
        type: 'object', additionalProperties: false,
        properties: { cursor: { type: 'string', minLength: 1, maxLength: 1000 }, limit: { type: 'integer', minimum: 1, maximum: 10_000, default: 5000 } },
      },
      response: { 200: { description: 'application/x-ndjson: one listing per line, then {"manifest": {rows, seq, sha256, next, done}}', type: 'string' } },
    },
  }, async (req, reply) => {
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))
    const page = await opts.service.page(req.principal!, { cursor: req.query.cursor, limit: req.query.limit, gzip })
    reply.header('content-type', 'application/x-ndjson; charset=utf-8').header('x-snapshot-seq', String(page.seq))
    if (gzip) reply.header('content-encoding', 'gzip').header('vary', 'accept-encoding')
    return reply.send(page.body)
  })
}
