import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestHookHandler, preValidationHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import secureJson from 'secure-json-parse'
import type { Principal, Scope } from '../../modules/principals/principals.models.js'
import { nowSeconds, type Clock } from '../clock.js'
import { AppError } from '../errors.js'
import type { GatewayKeys } from '../gateway-keys.js'
import type { ReplayGuard } from './replay-guard.js'
import {
  AuthError, decodeUnverified, sha256b64url, SHA256_OF_EMPTY, tokenFromAuthorization, verifyGw1Token,
  type Gw1Claims, type KeyEntry,
} from './token.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller, set by the GW1 hooks on signed routes. */
    principal?: Principal
    gw1Claims?: Gw1Claims
    /** The jti the response signature is bound to (set as soon as the token decodes). */
    gw1Jti?: string
    /** The kid that signed the verified token. */
    gw1Kid?: string
    rawBody?: Buffer
  }
  interface FastifyContextConfig {
    /** The scope a signed route requires (403 without it); `any` = any authenticated principal. */
    scope?: Scope | 'any'
    /** Stable operation id, e.g. `principals.create`; logged and audited. */
    operationId?: string
  }
  interface FastifyInstance {
    gw1Authenticate: onRequestHookHandler
    gw1Authorize: preValidationHookHandler
  }
}

export interface Gw1Options {
  audience: string
  clockSkewSeconds: number
  clock: Clock
  gatewayKeys: GatewayKeys
  replayGuard: ReplayGuard
  lookupKey: (kid: string) => Promise<KeyEntry<Principal> | undefined>
}

/**
 * The GW1 protocol (DESIGN.md): JSON bodies are parsed from their raw bytes so `bsh` binds the
 * exact bytes sent; signed scopes add `gw1Authenticate` (onRequest) and `gw1Authorize`
 * (preValidation: body binding, replay, scope); every response to a GW1 request is signed.
 */
async function gw1Plugin(app: FastifyInstance, opts: Gw1Options) {
  // JSON only: any other media type gets 415, so no body can reach a route without bsh covering it.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const raw = body as Buffer
    request.rawBody = raw
    if (request.gw1Claims && sha256b64url(raw) !== request.gw1Claims.bsh) {
      return done(new AuthError('body_mismatch', 'bsh does not match the SHA-256 of the body'), undefined)
    }
    if (raw.length === 0) return done(new AppError('request.malformed_json', 400, 'the JSON body is empty'), undefined)
    try {
      done(null, secureJson.parse(raw, undefined, { protoAction: 'error', constructorAction: 'error' }))
    } catch (err) {
      done(new AppError('request.malformed_json', 400, `malformed JSON: ${(err as Error).message}`), undefined)
    }
  })

  const logsRequests = ['trace', 'debug', 'info'].includes(app.log.level)
  const authenticate: onRequestHookHandler = async (request) => {
    const token = tokenFromAuthorization(request.headers.authorization)
    const jti = decodeUnverified(token).claims.jti
    if (typeof jti === 'string' && jti.length <= 128) request.gw1Jti = jti
    const verified = await verifyGw1Token(token, { method: request.method, url: request.url, nowSeconds: nowSeconds(opts.clock) },
      { audience: opts.audience, clockSkewSeconds: opts.clockSkewSeconds }, opts.lookupKey)
    request.gw1Claims = verified.claims
    request.gw1Kid = verified.header.kid
    request.principal = verified.key.principal
    // A child logger costs a few µs a request: only worth it when request logs are written.
    if (logsRequests) request.log = request.log.child({ principal: verified.key.principal.id })
  }

  const authorize: preValidationHookHandler = async (request) => {
    const claims = request.gw1Claims
    if (!claims || !request.principal) throw new AuthError('missing_token', 'Authorization: GW1 <token> is required')
    if (request.rawBody === undefined) {
      // No parsed body (e.g. GET): bytes sent anyway were never hashed, so refuse them too.
      const sentBytes = Number(request.headers['content-length'] ?? 0) > 0 || request.headers['transfer-encoding'] !== undefined
      if (sentBytes || claims.bsh !== SHA256_OF_EMPTY) {
        throw new AuthError('body_mismatch', 'bsh does not match the SHA-256 of the (empty) body')
      }
    }
    const expiresAt = new Date((claims.exp + opts.clockSkewSeconds) * 1000)
    if (!(await opts.replayGuard.claim(claims.iss, claims.jti, expiresAt))) {
      throw new AuthError('replayed', 'this jti has already been used')
    }
    const scope = request.routeOptions.config.scope
    if (!scope || (scope !== 'any' && !request.principal.scopes.includes(scope))) {
      throw new AuthError('insufficient_scope', `this operation requires the scope "${scope ?? 'unknown'}"`, 403)
    }
  }

  app.decorate('gw1Authenticate', authenticate)
  app.decorate('gw1Authorize', authorize)

  // DESIGN.md: every response to a signed request carries X-GW-Signature over the exact body bytes.
  app.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (!/^GW1 /i.test(request.headers.authorization ?? '')) return payload
    let bytes: Buffer
    if (payload === null || payload === undefined) bytes = Buffer.alloc(0)
    else if (typeof payload === 'string') bytes = Buffer.from(payload)
    else if (Buffer.isBuffer(payload)) bytes = payload
    else return payload // streams are not signed inline
    const header: Record<string, unknown> = { iat: nowSeconds(opts.clock) }
    if (request.gw1Jti) header.jti = request.gw1Jti
    reply.header('x-gw-signature', await opts.gatewayKeys.signDetached(bytes, header))
    return bytes
  })
}

export default fp(gw1Plugin, { name: 'gw1', fastify: '5.x' })
