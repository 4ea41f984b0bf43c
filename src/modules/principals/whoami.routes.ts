import type { FastifyInstance } from 'fastify'

/**
 * `GET /v1/whoami`: any signed caller sees who the gateway takes it for. Partners use it to check
 * their signing set-up before calling real endpoints; it reads no personal data.
 */
export async function whoamiRoutes(app: FastifyInstance) {
  app.get('', {
    config: { scope: 'any', operationId: 'principals.whoami' },
    schema: {
      tags: ['principals'],
      summary: 'The authenticated principal, its scopes and profile',
      response: {
        200: {
          type: 'object', required: ['id', 'kind', 'scopes', 'profile', 'kid'],
          properties: {
            id: { type: 'string' }, kind: { type: 'string' }, name: { type: 'string' }, courtCode: { type: ['string', 'null'] },
            scopes: { type: 'array', items: { $ref: 'Scope#' } }, profile: { $ref: 'PrincipalProfile#' }, kid: { type: 'string' },
          },
        },
      },
    },
  }, async (req) => {
    const p = req.principal!
    return { id: p.id, kind: p.kind, name: p.name, courtCode: p.courtCode, scopes: p.scopes, profile: p.profile, kid: req.gw1Kid }
  })
}
