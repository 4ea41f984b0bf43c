import type { FastifyInstance } from 'fastify'
import { COURT_REMOVAL_REASONS, type RemovalReason } from './listings.models.js'
import { MAX_PUSH_ITEMS, type ListingsService } from './listings.service.js'

const TAGS = ['listings']
/** 10 000 listings of about 1 KiB each, with room to spare. */
const PUSH_BODY_LIMIT = 32 * 1024 * 1024

/** `/v1/listings`: courts push, remove, and watch their overdue removals. */
export async function listingsRoutes(app: FastifyInstance, opts: { service: ListingsService }) {
  const { service } = opts

  app.post<{ Body: { items: unknown[] } }>('', {
    bodyLimit: PUSH_BODY_LIMIT,
    config: { scope: 'listings:write', operationId: 'listings.push' },
    schema: {
      tags: TAGS,
      summary: 'Push 1–10 000 listings (create or update; idempotent by court, case number and subject)',
      description: 'Each item is validated against ListingInput on its own: the response has one result per item in input order; valid items are applied even when others are rejected, all in one transaction.',
      body: {
        type: 'object', required: ['items'], additionalProperties: false,
        properties: { items: { type: 'array', minItems: 1, maxItems: MAX_PUSH_ITEMS, items: { type: 'object' }, description: 'ListingInput objects' } },
      },
      response: { 200: { $ref: 'ListingPushResult#' } },
    },
  }, async (req) => service.push(req.principal!, req.body.items, req.id))

  app.get('/overdue-removals', {
    config: { scope: 'listings:read', operationId: 'listings.overdue' },
    schema: {
      tags: TAGS,
      summary: 'Listings with full performance recorded but not removed within 3 working days (未及时屏蔽): the court’s own, or all for an admin',
      response: {
        200: {
          type: 'object', required: ['items'],
          properties: { items: { type: 'array', items: { type: 'object', properties: {
            id: { type: 'string' }, courtCode: { type: 'string' }, caseNumber: { type: 'string' }, listKind: { type: 'string' }, subjectName: { type: 'string' },
            fullPerformanceOn: { type: 'string' }, removalDueOn: { type: 'string' }, overdueWorkingDays: { type: 'integer' },
          } } } },
        },
      },
    },
  }, async (req) => ({ items: await service.overdueRemovals(req.principal!) }))

  app.post<{ Params: { id: string }; Body: { reason: Exclude<RemovalReason, 'expired'>; note?: string } }>('/:id/removal', {
    config: { scope: 'listings:write', operationId: 'listings.remove' },
    schema: {
      tags: TAGS,
      summary: 'Remove (屏蔽) a listing with a statutory reason; it stops matching at once and stays on record',
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', format: 'uuid' } }, additionalProperties: false },
      body: {
        type: 'object', required: ['reason'], additionalProperties: false,
        properties: { reason: { type: 'string', enum: COURT_REMOVAL_REASONS }, note: { type: 'string', maxLength: 2000 } },
      },
      response: { 200: { $ref: 'Listing#' } },
    },
  }, async (req) => service.remove(req.principal!, req.params.id, req.body.reason, req.body.note, req.id))
}

/** `/v1/changes`: the change feed, in commit order, for agencies that keep a copy. */
export async function changesRoutes(app: FastifyInstance, opts: { service: ListingsService }) {
  app.get<{ Querystring: { after: number; limit: number; kinds?: string; list?: string; wait: number } }>('', {
    config: { scope: 'changes:read', operationId: 'changes.list' },
    schema: {
      tags: ['changes'],
      summary: 'Every publish, update, removal and expiry after a sequence number, in commit order',
      querystring: {
        type: 'object', additionalProperties: false,
        properties: {
          after: { type: 'integer', minimum: 0, default: 0 },
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          kinds: { type: 'string', pattern: '^(published|updated|removed|expired)(,(published|updated|removed|expired)){0,3}$', description: 'only these event kinds, comma-separated' },
          list: { type: 'string', enum: ['dishonest', 'restricted'], description: 'only this list (within the agency profile)' },
          wait: { type: 'integer', minimum: 0, maximum: 30, default: 0, description: 'seconds to wait for an event when there is none yet (long poll)' },
        },
      },
      response: {
        200: {
          type: 'object', required: ['events', 'next'],
          properties: {
            events: { type: 'array', items: { type: 'object', required: ['seq', 'kind', 'listingId', 'version', 'listing'], properties: {
              seq: { type: 'integer' }, kind: { type: 'string', enum: ['published', 'updated', 'removed', 'expired'] }, listingId: { type: 'string' },
              version: { type: 'integer' }, at: { type: 'string' }, listing: { $ref: 'Listing#' },
            } } },
            next: { type: 'integer', description: 'pass as `after` to continue' },
            serverTime: { type: 'integer' },
          },
        },
      },
    },
  }, async (req) => opts.service.changes(req.principal!, req.query.after, req.query.limit, {
    kinds: req.query.kinds?.split(',') as ('published' | 'updated' | 'removed' | 'expired')[] | undefined, list: req.query.list, waitSeconds: req.query.wait,
  }))
}
