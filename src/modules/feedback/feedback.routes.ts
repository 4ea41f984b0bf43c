import type { FastifyInstance } from 'fastify'
import type { FeedbackInput, FeedbackService } from './feedback.service.js'
import type { MatchFeedbackRow } from './feedback.table.js'

const ACTIONS = ['restricted', 'allowed_after_review', 'not_applicable'] as const

const feedbackSchema = {
  type: 'object', required: ['receiptId', 'action', 'measures', 'matchedAt', 'at'],
  properties: {
    receiptId: { type: 'string', format: 'uuid' },
    action: { type: 'string', enum: ACTIONS },
    measures: { type: 'array', items: { type: 'string' } },
    note: { type: ['string', 'null'] },
    matchedAt: { type: 'string', format: 'date-time', description: 'when the match was made (feedback is due a deadline after it)' },
    at: { type: 'string', format: 'date-time' },
  },
} as const

function toDto(r: MatchFeedbackRow) {
  return { receiptId: r.receiptId, action: r.action, measures: r.measures, note: r.note, matchedAt: r.matchedAt.toISOString(), at: r.at.toISOString() }
}

/** `POST /v1/feedback`: what an agency did with a hit (惩戒反馈), once per receipt (scope feedback:write). */
export async function feedbackRoutes(app: FastifyInstance, opts: { service: FeedbackService }) {
  app.post<{ Body: FeedbackInput }>('', {
    config: { scope: 'feedback:write', operationId: 'feedback.report' },
    schema: {
      tags: ['feedback'],
      summary: 'Report what was done with a hit: restricted (with the measures applied), allowed_after_review or not_applicable',
      body: {
        type: 'object', required: ['receiptId', 'action'], additionalProperties: false,
        properties: {
          receiptId: { type: 'string', format: 'uuid' },
          action: { type: 'string', enum: ACTIONS },
          measures: { type: 'array', maxItems: 50, uniqueItems: true, items: { type: 'string', pattern: '^[A-Z][A-Z0-9-]{1,63}$' }, description: 'codes of the hit’s measures that were applied (with restricted)' },
          note: { type: 'string', minLength: 1, maxLength: 2000 },
        },
      },
      response: { 200: { ...feedbackSchema, description: 'the same report was already on record' }, 201: feedbackSchema },
    },
  }, async (req, reply) => {
    const { row, created } = await opts.service.report(req.principal!, req.body, req.id)
    return reply.code(created ? 201 : 200).send(toDto(row))
  })
}
