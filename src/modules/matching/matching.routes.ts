import type { FastifyInstance } from 'fastify'
import { schemaById } from '../../infra/schemas.js'
import { MAX_BATCH_SUBJECTS, type MatchingService, type MatchSubject } from './matching.service.js'

const TAGS = ['match']
const scenario = { type: 'string', pattern: '^[A-Z][A-Z0-9_]{1,63}$', description: 'approval scenario from the agency profile, e.g. TICKET_AIR' } as const
const explain = { type: 'boolean', description: 'also return, per result, which criteria set the grade and which rules fired' } as const

/** `/v1/match`: agencies ask whether applicants are listed and what to do (scope match). */
export async function matchingRoutes(app: FastifyInstance, opts: { service: MatchingService }) {
  const { service } = opts

  app.post<{ Body: MatchSubject & { scenario?: string; explain?: boolean } }>('', {
    config: { scope: 'match', operationId: 'match.single' },
    schema: {
      tags: TAGS,
      summary: 'Match one subject (idNumber, creditCode or orgCode, optional name) for a scenario',
      body: {
        type: 'object', additionalProperties: false,
        properties: { ...schemaById('MatchSubject').properties, scenario, explain },
      },
      response: { 200: { $ref: 'MatchResult#' } },
    },
  }, async (req) => {
    const { scenario: sc, explain: ex, ...subject } = req.body
    const [result] = await service.match(req.principal!, [subject], { scenario: sc, explain: ex, requestId: req.id, operationId: 'match.single', single: true })
    return result
  })

  app.post<{ Body: { subjects: MatchSubject[]; scenario?: string; explain?: boolean } }>('/batch', {
    bodyLimit: 8 * 1024 * 1024,
    config: { scope: 'match', operationId: 'match.batch' },
    schema: {
      tags: TAGS,
      summary: 'Match 1–10 000 subjects; one result each, in input order (an invalid identifier is that item’s error)',
      body: {
        type: 'object', required: ['subjects'], additionalProperties: false,
        properties: { subjects: { type: 'array', minItems: 1, maxItems: MAX_BATCH_SUBJECTS, items: { $ref: 'MatchSubject#' } }, scenario, explain },
      },
      response: { 200: { type: 'object', required: ['results'], properties: { results: { type: 'array', items: { $ref: 'MatchResult#' } } } } },
    },
  }, async (req) => ({
    results: await service.match(req.principal!, req.body.subjects, { scenario: req.body.scenario, explain: req.body.explain, requestId: req.id, operationId: 'match.batch', single: false }),
  }))
}
