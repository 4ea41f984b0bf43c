import type { FastifyInstance } from 'fastify'
import { AuthError } from '../../infra/gw1/token.js'
import { auditError } from './audit.errors.js'
import { splitReceiptId } from './audit.models.js'
import type { AuditRepository } from './audit.repository.js'
import type { AuditEntryRow } from './audit.table.js'

const TAGS = ['audit']

const auditEntrySchema = {
  type: 'object',
  required: ['id', 'writerId', 'writerSeq', 'at', 'principalId', 'action', 'operationId', 'requestId', 'subjectHash', 'scenario', 'receiptId', 'result', 'prevHash', 'hash'],
  properties: {
    id: { type: 'integer', description: 'pass as `after` to continue a listing' },
    writerId: { type: 'string', description: 'the gateway process (hash chain) that wrote the entry' },
    writerSeq: { type: 'integer', minimum: 1 },
    at: { type: 'string', format: 'date-time' },
    principalId: { type: 'string' },
    action: { type: 'string', examples: ['match', 'listing.read', 'review.decision', 'auth.refused'] },
    operationId: { type: 'string' },
    requestId: { type: 'string' },
    subjectHash: { type: ['string', 'null'], description: 'keyed hash (HMAC) of the subject identifier; the identifier itself is never stored' },
    scenario: { type: ['string', 'null'] },
    receiptId: { type: ['string', 'null'], format: 'uuid' },
    result: { type: 'object', additionalProperties: true },
    prevHash: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    hash: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'sha256(prevHash + "\\n" + canonical JSON of the entry)' },
  },
} as const

function toDto(r: AuditEntryRow) {
  return {
    id: r.id, writerId: r.writerId, writerSeq: r.writerSeq, at: r.at.toISOString(), principalId: r.principalId, action: r.action,
    operationId: r.operationId, requestId: r.requestId, subjectHash: r.subjectHash, scenario: r.scenario, receiptId: r.receiptId,
    result: r.result, prevHash: r.prevHash, hash: r.hash,
  }
}

/** The item of a match entry a receipt names (see splitReceiptId), or undefined. */
function receiptItem(row: AuditEntryRow, index: number): Record<string, unknown> | undefined {
  const items = (row.result as { items?: unknown }).items
  const item = Array.isArray(items) ? items[index] as Record<string, unknown> | undefined : undefined
  return item && typeof item === 'object' && !('error' in item) ? item : undefined
}

/**
 * `/v1/receipts/:receiptId`: the audit entry behind a match receipt, with the receipt's own item
 * (a batch's subjects share one entry). An agency reads only its own receipts, and another
 * agency's receipt is "not found" exactly like one that does not exist; `audit:read` reads any.
 */
export async function receiptsRoutes(app: FastifyInstance, opts: { repository: Pick<AuditRepository, 'findReceipt'> }) {
  app.get<{ Params: { receiptId: string } }>('/:receiptId', {
    config: { scope: 'any', operationId: 'audit.receipt' },
    schema: {
      tags: TAGS,
      summary: 'The audit entry of a match receipt: the agency’s own, or any with audit:read',
      params: { type: 'object', required: ['receiptId'], properties: { receiptId: { type: 'string', format: 'uuid' } }, additionalProperties: false },
      response: {
        200: {
          ...auditEntrySchema,
          required: [...auditEntrySchema.required, 'item'],
          properties: {
            ...auditEntrySchema.properties,
            item: {
              type: 'object', additionalProperties: true, required: ['receiptId', 'index'],
              description: 'this receipt\'s subject in the entry: its index in the request and what was recorded for it',
              properties: { receiptId: { type: 'string', format: 'uuid' }, index: { type: 'integer', minimum: 0 } },
            },
          },
        },
      },
    },
  }, async (req) => {
    const principal = req.principal!
    const { base, index } = splitReceiptId(req.params.receiptId)
    let row: AuditEntryRow | undefined
    if (principal.scopes.includes('audit:read')) row = await opts.repository.findReceipt(base)
    else if (principal.kind === 'agency') row = await opts.repository.findReceipt(base, principal.id)
    else throw new AuthError('insufficient_scope', 'a receipt is readable by the agency that matched, or with the scope "audit:read"', 403)
    const item = row && receiptItem(row, index)
    if (!row || !item) throw auditError('receipt_not_found', 404, 'no receipt with this id')
    return { ...toDto(row), item: { ...item, receiptId: req.params.receiptId.toLowerCase(), index } }
  })
}

/** `/v1/audit`: the whole trail in id order, optionally one principal's, for holders of audit:read. */
export async function auditRoutes(app: FastifyInstance, opts: { repository: Pick<AuditRepository, 'list'> }) {
  app.get<{ Querystring: { after: number; limit: number; principal?: string } }>('', {
    config: { scope: 'audit:read', operationId: 'audit.list' },
    schema: {
      tags: TAGS,
      summary: 'Audit entries after an id, in id order, optionally of one principal',
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          after: { type: 'integer', minimum: 0, default: 0 },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          principal: { type: 'string', minLength: 1, maxLength: 1000 },
        },
      },
      response: {
        200: {
          type: 'object', required: ['items', 'next'],
          properties: {
            items: { type: 'array', items: auditEntrySchema },
            next: { type: 'integer', description: 'pass as `after` to continue (unchanged when there was nothing new)' },
          },
        },
      },
    },
  }, async (req) => {
    const { after, limit, principal } = req.query
    const rows = await opts.repository.list({ after, limit, principalId: principal })
    return { items: rows.map(toDto), next: rows.length > 0 ? rows[rows.length - 1]!.id : after }
  })
}
