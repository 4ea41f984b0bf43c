import type { FastifyInstance } from 'fastify'
import { rulesError } from './rules.models.js'
import type { RulesService } from './rules.service.js'
import type { RuleSetRow } from './rules.table.js'

const TAGS = ['rules']

const versionMeta = {
  version: { type: 'integer', minimum: 1 },
  contentHash: { type: 'string', description: 'sha256 of the canonical JSON of the document' },
  publishedBy: { type: 'string' },
  publishedAt: { type: 'string', format: 'date-time' },
  requestId: { type: ['string', 'null'] },
} as const
const ruleSetVersionSchema = {
  type: 'object', required: ['version', 'contentHash', 'publishedBy', 'publishedAt', 'document'],
  properties: { ...versionMeta, document: { $ref: 'RuleSet#' } },
} as const

function toDto(r: RuleSetRow) {
  return { version: r.version, contentHash: r.contentHash, publishedBy: r.publishedBy, publishedAt: r.publishedAt.toISOString(), requestId: r.requestId, document: r.document }
}

/**
 * `/v1/rules`: the graded-punishment rule set. Publishing needs `rules:write`; reading is open to
 * every signed principal, since the measures are managed as public lists (清单管理, domain.md §4.1).
 */
export async function rulesRoutes(app: FastifyInstance, opts: { service: RulesService }) {
  const { service } = opts

  app.put('', {
    config: { scope: 'rules:write', operationId: 'rules.publish' },
    // The service checks the body against the same schema with every error listed (ajv allErrors) plus
    // the consistency rules no schema can state; the route's own check would stop at the first error.
    attachValidation: true,
    schema: {
      tags: TAGS,
      summary: 'Validate and publish a rule set as the next version (every error listed when refused; the version in force stays)',
      body: { $ref: 'RuleSet#' },
      response: {
        200: { ...ruleSetVersionSchema, description: 'the same document as the version in force: nothing published' },
        201: { ...ruleSetVersionSchema, description: 'published; every gateway process uses it within 1 s' },
      },
    },
  }, async (req, reply) => {
    const { row, created } = await service.publish(req.body, req.principal!.id, req.id)
    return reply.code(created ? 201 : 200).send(toDto(row))
  })

  app.get('', {
    config: { scope: 'any', operationId: 'rules.current' },
    schema: { tags: TAGS, summary: 'The rule set in force', response: { 200: ruleSetVersionSchema } },
  }, async () => {
    const row = await service.latest()
    if (!row) throw rulesError('not_found', 404, 'no rule set has been published')
    return toDto(row)
  })

  app.get('/versions', {
    config: { scope: 'any', operationId: 'rules.versions' },
    schema: {
      tags: TAGS,
      summary: 'Every published version, newest first (without the documents)',
      response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: { type: 'object', properties: versionMeta } } } } },
    },
  }, async () => ({ items: (await service.listVersions()).map((r) => ({ ...r, publishedAt: r.publishedAt.toISOString() })) }))

  app.get<{ Params: { version: number } }>('/versions/:version', {
    config: { scope: 'any', operationId: 'rules.version' },
    schema: {
      tags: TAGS,
      summary: 'One published version',
      params: { type: 'object', required: ['version'], additionalProperties: false, properties: { version: { type: 'integer', minimum: 1, maximum: 2147483647 } } },
      response: { 200: ruleSetVersionSchema },
    },
  }, async (req) => {
    const row = await service.byVersion(req.params.version)
    if (!row) throw rulesError('version_not_found', 404, `no rule set version ${req.params.version}`)
    return toDto(row)
  })
}
