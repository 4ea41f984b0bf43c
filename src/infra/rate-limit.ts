import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import { AppError } from './errors.js'

/** Used when a principal's profile sets no rate limit. */
export const DEFAULT_RATE_LIMIT = { max: 100, timeWindowSeconds: 1 }

/**
 * Per-principal rate limit from its profile (DESIGN.md "Scopes and projection"), counted in this
 * process (N processes allow up to N × max). Runs at preHandler, after authentication, so the
 * limit is the caller's own and an unauthenticated flood cannot exhaust it.
 */
export async function registerPrincipalRateLimit(scope: FastifyInstance) {
  await scope.register(rateLimit, {
    hook: 'preHandler',
    keyGenerator: (req) => req.principal?.id ?? req.ip,
    max: async (req) => (req.principal?.profile.rateLimit ?? DEFAULT_RATE_LIMIT).max,
    timeWindow: async (req) => (req.principal?.profile.rateLimit ?? DEFAULT_RATE_LIMIT).timeWindowSeconds * 1000,
    errorResponseBuilder: (_req, ctx) => new AppError('rate_limit.exceeded', 429, `rate limit of ${ctx.max} requests per ${ctx.after} exceeded; retry after ${ctx.after}`),
  })
}

/** Public routes: requests per client address per window (issue 6: anti-enumeration). */
export const PUBLIC_RATE_LIMIT = { max: 30, timeWindowSeconds: 60 }

/**
 * Per-client-address rate limit for the unsigned public routes (`/v1/public/*`): what stops a
 * client from walking the list name by name. Keyed by `req.ip`, which is the peer address unless
 * TRUST_PROXY is set — behind a load balancer set it, or every citizen shares the balancer's
 * budget. Runs at onRequest, so bad and refused requests count too. Counted in this process
 * (N processes allow up to N × max). 429 `rate_limit.exceeded` problem+json with Retry-After.
 */
export async function registerPublicRateLimit(scope: FastifyInstance, limit = PUBLIC_RATE_LIMIT) {
  await scope.register(rateLimit, {
    hook: 'onRequest',
    keyGenerator: (req) => req.ip,
    max: limit.max,
    timeWindow: limit.timeWindowSeconds * 1000,
    errorResponseBuilder: (_req, ctx) => new AppError('rate_limit.exceeded', 429, `rate limit of ${ctx.max} requests per ${ctx.after} from one address exceeded; retry after ${ctx.after}`),
  })
}
