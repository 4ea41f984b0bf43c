import type { FastifyInstance } from 'fastify'
import { APPEAL_GROUNDS, CORRECTABLE_FIELDS, REPAIR_GROUNDS, type ApplicationKind } from './applications.models.js'
import { ATTACHMENT_TYPES, MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, type ApplicationInput, type ApplicationsService, type DecisionInput } from './applications.service.js'

const trackingCode = { type: 'string', minLength: 24, maxLength: 40, description: 'the tracking code given when the application was filed' } as const
const looseObject = { type: 'object', additionalProperties: true } as const
const applicationBody = (grounds: readonly string[]) => ({
  type: 'object', additionalProperties: false, required: ['listingId', 'ground', 'applicant', 'statement'],
  properties: {
    listingId: { type: 'string', format: 'uuid' },
    ground: { type: 'string', enum: grounds },
    applicant: {
      type: 'object', additionalProperties: false, required: ['name', 'contact'],
      description: 'the listed party: exactly one of idNumber (a person) or creditCode (an entity), which must be the listing subject’s',
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 200 },
        idNumber: { type: 'string', minLength: 15, maxLength: 18 },
        creditCode: { type: 'string', minLength: 18, maxLength: 18 },
        contact: { type: 'string', minLength: 3, maxLength: 200, description: 'telephone or e-mail for notifications' },
      },
    },
    statement: { type: 'string', minLength: 1, maxLength: 10_000 },
    requestedChanges: { type: 'object', maxProperties: 20, additionalProperties: { type: ['string', 'number', 'boolean', 'null'] }, description: 'what the applicant says is wrong, field by field' },
    attachments: {
      type: 'array', maxItems: MAX_ATTACHMENTS,
      items: {
        type: 'object', additionalProperties: false, required: ['fileName', 'mediaType', 'contentBase64'],
        properties: {
          fileName: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[^/\\\\\\u0000-\\u001f]+$' },
          mediaType: { type: 'string', enum: ATTACHMENT_TYPES },
          contentBase64: { type: 'string', minLength: 4, maxLength: Math.ceil(MAX_ATTACHMENT_BYTES / 3) * 4 + 4 },
        },
      },
    },
  },
})
const filedSchema = {
  type: 'object', required: ['trackingCode', 'kind', 'status', 'listingId', 'receivedOn', 'reviewDueOn'],
  properties: { trackingCode: { type: 'string' }, kind: { type: 'string' }, status: { type: 'string' }, listingId: { type: 'string' }, receivedOn: { type: 'string', format: 'date' }, reviewDueOn: { type: 'string', format: 'date' } },
} as const
const trackedSchema = {
  type: 'object', additionalProperties: true, required: ['kind', 'status', 'history'],
  properties: {
    kind: { type: 'string' }, status: { type: 'string' }, listingId: { type: 'string' }, ground: { type: 'string' }, receivedOn: { type: 'string' },
    reviewDueOn: { type: 'string' }, dueOn: { type: ['string', 'null'] }, overdue: { type: 'boolean' }, decision: { type: ['object', 'null'], additionalProperties: true },
    correctionDueOn: { type: ['string', 'null'] }, reconsiderationWindowEndsOn: { type: ['string', 'null'] }, reconsideration: { type: ['object', 'null'], additionalProperties: true },
    reconsiderationDueOn: { type: ['string', 'null'] }, applicant: looseObject, attachments: { type: 'array', items: looseObject }, certificateId: { type: ['string', 'null'] },
    history: { type: 'array', items: { type: 'object', properties: { at: { type: 'string' }, status: { type: 'string' }, by: { type: 'string' }, note: { type: ['string', 'null'] } } } },
  },
} as const
// Base64 inflates by 4/3: the body limit admits every attachment at its maximum plus the rest.
const BODY_LIMIT = MAX_ATTACHMENTS * (Math.ceil(MAX_ATTACHMENT_BYTES / 3) * 4 + 1024) + 64 * 1024

/** Public routes: filing and tracking appeals and repairs, reconsideration, verifying certificates. */
export async function applicationsPublicRoutes(app: FastifyInstance, opts: { service: ApplicationsService }) {
  const { service } = opts
  for (const [kind, path, grounds] of [['appeal', '/v1/public/appeals', Object.keys(APPEAL_GROUNDS)], ['repair', '/v1/public/repairs', Object.keys(REPAIR_GROUNDS)]] as const) {
    const what = kind === 'appeal' ? 'a correction application (纠正申请, SPC-List Art. 11)' : 'a credit-repair application (信用修复)'
    app.post<{ Body: ApplicationInput }>(path, {
      bodyLimit: BODY_LIMIT,
      config: { operationId: `${kind}s.file` },
      schema: { tags: ['applications'], summary: `File ${what}; returns the tracking code`, body: applicationBody(grounds), response: { 201: filedSchema } },
    }, async (req, reply) => reply.code(201).send(await service.file(kind, req.body, req.id)))

    app.get<{ Params: { code: string } }>(`${path}/:code`, {
      config: { operationId: `${kind}s.track` },
      schema: {
        tags: ['applications'], summary: `Status, deadlines and history of ${what} by tracking code`,
        params: { type: 'object', required: ['code'], additionalProperties: false, properties: { code: trackingCode } },
        response: { 200: trackedSchema },
      },
    }, async (req) => service.track(kind, req.params.code))
  }

  app.post<{ Params: { code: string }; Body: { statement: string } }>('/v1/public/appeals/:code/reconsideration', {
    config: { operationId: 'appeals.reconsideration' },
    schema: {
      tags: ['applications'], summary: 'Ask the next-higher court to reconsider a rejected correction application (复议, SPC-List Art. 12), within 10 days',
      params: { type: 'object', required: ['code'], additionalProperties: false, properties: { code: trackingCode } },
      body: { type: 'object', required: ['statement'], additionalProperties: false, properties: { statement: { type: 'string', minLength: 1, maxLength: 10_000 } } },
      response: { 200: trackedSchema },
    },
  }, async (req) => service.reconsider(req.params.code, req.body.statement, req.id))

  app.get<{ Params: { id: string } }>('/v1/certificates/:id/verify', {
    config: { operationId: 'certificates.verify' },
    schema: {
      tags: ['applications'], summary: 'Check a repair certificate: the gateway signature (JWKS) and that the listing stays removed by repair',
      params: { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', format: 'uuid' } } },
      response: {
        200: {
          type: 'object', required: ['id', 'valid', 'signatureValid', 'listingRemovedByRepair', 'jws'],
          properties: { id: { type: 'string' }, valid: { type: 'boolean' }, signatureValid: { type: 'boolean' }, listingRemovedByRepair: { type: 'boolean' }, certificate: { type: ['object', 'null'], additionalProperties: true }, jws: { type: 'string' }, issuedAt: { type: 'string' } },
        },
      },
    },
  }, async (req) => service.verifyCertificate(req.params.id))
}

/** Signed routes for courts: the review queues and decisions (scopes appeals:review, repairs:review). */
export async function reviewsRoutes(app: FastifyInstance, opts: { service: ApplicationsService }) {
  const { service } = opts
  for (const [kind, segment, scope] of [['appeal', 'appeals', 'appeals:review'], ['repair', 'repairs', 'repairs:review']] as const) {
    app.get<{ Querystring: { limit: number } }>(`/${segment}`, {
      config: { scope, operationId: `reviews.${segment}` },
      schema: {
        tags: ['reviews'], summary: `The court's ${kind} queue, oldest deadline first, overdue items flagged (reconsiderations it hears as the higher court included)`,
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 } } },
        response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: looseObject } } } },
      },
    }, async (req) => ({ items: await service.queue(req.principal!, kind as ApplicationKind, req.query.limit) }))

    app.post<{ Params: { id: string }; Body: DecisionInput }>(`/${segment}/:id/decision`, {
      config: { scope, operationId: `reviews.${segment}.decide` },
      schema: {
        tags: ['reviews'],
        summary: kind === 'appeal'
          ? 'Decide a correction application: accept with a correction (fields) or removal, or reject with reasons; on reconsideration the higher court decides'
          : 'Decide a credit-repair application: accept (the listing is removed with reason credit_repair and a certificate issued) or reject with reasons',
        params: { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', format: 'uuid' } } },
        body: {
          type: 'object', required: ['outcome'], additionalProperties: false,
          properties: {
            outcome: { type: 'string', enum: ['accept', 'reject'] },
            reasons: { type: 'string', minLength: 1, maxLength: 10_000 },
            ...(kind === 'appeal' ? {
              correction: { type: 'object', additionalProperties: false, minProperties: 1, properties: Object.fromEntries(CORRECTABLE_FIELDS.map((f) => [f, {}])) },
              removal: { type: 'boolean' },
            } : {}),
          },
        },
        response: { 200: looseObject },
      },
    }, async (req) => service.decide(req.principal!, req.params.id, req.body, req.id, kind as ApplicationKind))
  }
}
