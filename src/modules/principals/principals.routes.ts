import type { FastifyInstance } from 'fastify'
import type { PrincipalCreateInput, PrincipalsService, PrincipalUpdateInput } from './principals.service.js'
import type { PrincipalWithKeys } from './principals.repository.js'

const TAGS = ['principals']
const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{1,62}$' } }, additionalProperties: false } as const
const keyParams = {
  type: 'object', required: ['id', 'kid'],
  properties: { id: idParam.properties.id, kid: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' } },
  additionalProperties: false,
} as const

function toDto(p: PrincipalWithKeys) {
  return {
    id: p.id, kind: p.kind, name: p.name, courtCode: p.courtCode, scopes: p.scopes, profile: p.profile, status: p.status,
    keys: p.keys.map((k) => ({ kid: k.kid, alg: k.alg, status: k.status, publicJwk: k.publicJwk, createdAt: k.createdAt, retiredAt: k.retiredAt })),
    createdAt: p.createdAt, updatedAt: p.updatedAt,
  }
}

/** `/v1/principals`: the admin API for courts, agencies, admins and their keys (scope principals:write). */
export async function principalsRoutes(app: FastifyInstance, opts: { service: PrincipalsService }) {
  const { service } = opts
  const actor = (req: { principal?: { id: string }; id: string }) => ({ principalId: req.principal!.id, requestId: req.id })
  const config = (operationId: string) => ({ scope: 'principals:write' as const, operationId })

  app.get('', {
    config: config('principals.list'),
    schema: { tags: TAGS, summary: 'List principals with their keys', response: { 200: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: { $ref: 'Principal#' } } } } } },
  }, async () => ({ items: (await service.list()).map(toDto) }))

  app.post<{ Body: PrincipalCreateInput }>('', {
    config: config('principals.create'),
    schema: { tags: TAGS, summary: 'Add a court, agency or admin with its public keys (idempotent)', body: { $ref: 'PrincipalCreate#' }, response: { 200: { $ref: 'Principal#' }, 201: { $ref: 'Principal#' } } },
  }, async (req, reply) => {
    const { principal, created } = await service.create(actor(req), req.body)
    return reply.code(created ? 201 : 200).send(toDto(principal))
  })

  app.get<{ Params: { id: string } }>('/:id', {
    config: config('principals.get'),
    schema: { tags: TAGS, summary: 'One principal with its keys', params: idParam, response: { 200: { $ref: 'Principal#' } } },
  }, async (req) => toDto(await service.get(req.params.id)))

  app.patch<{ Params: { id: string }; Body: PrincipalUpdateInput }>('/:id', {
    config: config('principals.update'),
    schema: { tags: TAGS, summary: 'Change name, scopes, profile or status', params: idParam, body: { $ref: 'PrincipalUpdate#' }, response: { 200: { $ref: 'Principal#' } } },
  }, async (req) => toDto(await service.update(actor(req), req.params.id, req.body)))

  app.post<{ Params: { id: string }; Body: Record<string, unknown> }>('/:id/keys', {
    config: config('principals.keys.add'),
    schema: { tags: TAGS, summary: 'Add a public key (rotation: several may be active)', params: idParam, body: { $ref: 'PublicJwk#' }, response: { 200: { $ref: 'Principal#' }, 201: { $ref: 'Principal#' } } },
  }, async (req, reply) => {
    const { principal, created } = await service.addKey(actor(req), req.params.id, req.body)
    return reply.code(created ? 201 : 200).send(toDto(principal))
  })

  app.delete<{ Params: { id: string; kid: string } }>('/:id/keys/:kid', {
    config: config('principals.keys.retire'),
    schema: { tags: TAGS, summary: 'Retire a key: tokens signed with it are refused from now on', params: keyParams, response: { 200: { $ref: 'Principal#' } } },
  }, async (req) => toDto(await service.retireKey(actor(req), req.params.id, req.params.kid)))
}
