import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'

const ERROR_STATUSES = ['400', '401', '403', '404', '409', '413', '415', '422', '429', '500', '503'] as const

/**
 * Every route states the shared problem+json error responses (supabase/storage's routes-helper
 * does the same) and its operation id, so the published document is complete without repeating
 * that in each route.
 */
export function describeRoute(route: RouteOptions) {
  const schema = (route.schema ??= {}) as Record<string, unknown>
  const operationId = (route.config as { operationId?: string } | undefined)?.operationId
  if (operationId && !schema.operationId) schema.operationId = operationId
  const response = (schema.response ??= {}) as Record<string, unknown>
  for (const status of ERROR_STATUSES) {
    response[status] ??= { description: 'Problem details (application/problem+json)', content: { 'application/problem+json': { schema: { $ref: 'Problem#' } } } }
  }
}

async function openapiPlugin(app: FastifyInstance, opts: { version: string }) {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'credit-gateway',
        version: opts.version,
        description: 'Joint credit-punishment gateway (联合信用惩戒共享网关). Signed calls carry `Authorization: GW1 <compact JWS>`; see DESIGN.md for the protocol. Every response to a signed call carries `X-GW-Signature`, a detached JWS by a key in /.well-known/jwks.json.',
      },
      components: {
        securitySchemes: {
          GW1: { type: 'apiKey', in: 'header', name: 'Authorization', description: '`GW1 <compact JWS>` with claims iss, aud, iat, exp, jti, htm, htu, bsh' },
        },
      },
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`),
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.get('/openapi.json', { schema: { hide: true }, config: { operationId: 'ops.openapi' } }, async () => app.swagger())
}

export default fp(openapiPlugin, { name: 'openapi', fastify: '5.x' })
