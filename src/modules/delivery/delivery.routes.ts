import type { FastifyInstance } from 'fastify'
import { EVENT_KINDS, MAX_URL_LENGTH } from './delivery.models.js'
import type { DeliveryService, SubscriptionInput } from './delivery.service.js'

const subscriptionSchema = {
  type: 'object', required: ['id', 'principalId', 'url', 'eventKinds', 'listKinds', 'status', 'ackedSeq'],
  properties: {
    id: { type: 'string' }, principalId: { type: 'string' }, url: { type: 'string' },
    eventKinds: { type: 'array', items: { type: 'string' } }, listKinds: { type: 'array', items: { type: 'string' } },
    status: { type: 'string', enum: ['active', 'paused'] }, ackedSeq: { type: 'integer', description: 'the last event delivered; a resumed subscription continues after it' },
    attempts: { type: 'integer' }, failingSince: { type: ['string', 'null'] }, nextAttemptAt: { type: 'string' }, lastError: { type: ['string', 'null'] }, createdAt: { type: 'string' },
  },
} as const
const idParams = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', format: 'uuid' } } } as const
const TAGS = ['subscriptions']

/** `/v1/subscriptions`: webhook subscriptions to the change log (scope changes:read; admins on behalf of an agency). */
export async function subscriptionsRoutes(app: FastifyInstance, opts: { service: DeliveryService }) {
  const { service } = opts
  app.post<{ Body: SubscriptionInput }>('', {
    config: { scope: 'changes:read', operationId: 'subscriptions.create' },
    schema: {
      tags: TAGS, summary: 'Register a webhook for event kinds and lists (within the profile), from now or after a sequence',
      body: {
        type: 'object', required: ['url'], additionalProperties: false,
        properties: {
          url: { type: 'string', minLength: 8, maxLength: MAX_URL_LENGTH },
          eventKinds: { type: 'array', minItems: 1, maxItems: 4, uniqueItems: true, items: { type: 'string', enum: EVENT_KINDS } },
          listKinds: { type: 'array', minItems: 1, maxItems: 2, uniqueItems: true, items: { type: 'string', enum: ['dishonest', 'restricted'] } },
          afterSeq: { type: 'integer', minimum: 0, description: 'deliver events after this sequence (e.g. a snapshot’s); default: from now' },
          principalId: { type: 'string', minLength: 1, maxLength: 100, description: 'admins: the agency subscribed' },
        },
      },
      response: { 201: subscriptionSchema },
    },
  }, async (req, reply) => reply.code(201).send(await service.create(req.principal!, req.body)))

  app.get('', {
    config: { scope: 'changes:read', operationId: 'subscriptions.list' },
    schema: { tags: TAGS, summary: 'Your subscriptions (all, for an admin)', response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: subscriptionSchema } } } } },
  }, async (req) => ({ items: await service.list(req.principal!) }))

  app.get<{ Params: { id: string } }>('/:id', {
    config: { scope: 'changes:read', operationId: 'subscriptions.get' },
    schema: { tags: TAGS, summary: 'One subscription and its delivery state', params: idParams, response: { 200: subscriptionSchema } },
  }, async (req) => service.get(req.principal!, req.params.id))

  app.patch<{ Params: { id: string }; Body: { status: 'active' | 'paused' } }>('/:id', {
    config: { scope: 'changes:read', operationId: 'subscriptions.update' },
    schema: {
      tags: TAGS, summary: 'Pause, or resume from the last acknowledged event', params: idParams,
      body: { type: 'object', required: ['status'], additionalProperties: false, properties: { status: { type: 'string', enum: ['active', 'paused'] } } },
      response: { 200: subscriptionSchema },
    },
  }, async (req) => service.setStatus(req.principal!, req.params.id, req.body.status))

  app.delete<{ Params: { id: string } }>('/:id', {
    config: { scope: 'changes:read', operationId: 'subscriptions.delete' },
    schema: { tags: TAGS, summary: 'Delete a subscription', params: idParams, response: { 204: { type: 'null' } } },
  }, async (req, reply) => { await service.remove(req.principal!, req.params.id); return reply.code(204).send() })

  app.get<{ Params: { id: string }; Querystring: { limit: number } }>('/:id/deliveries', {
    config: { scope: 'changes:read', operationId: 'subscriptions.deliveries' },
    schema: {
      tags: TAGS, summary: 'Delivery state and the latest attempts (newest first)', params: idParams,
      querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } } },
      response: {
        200: {
          type: 'object', required: ['subscription', 'attempts'],
          properties: {
            subscription: subscriptionSchema,
            attempts: { type: 'array', items: { type: 'object', properties: { seq: { type: 'integer' }, at: { type: 'string' }, httpStatus: { type: ['integer', 'null'] }, ok: { type: 'boolean' }, error: { type: ['string', 'null'] }, ms: { type: 'integer' } } } },
          },
        },
      },
    },
  }, async (req) => service.deliveries(req.principal!, req.params.id, req.query.limit))
}
