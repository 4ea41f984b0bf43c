import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { AuditWriter } from '../../modules/audit/audit.writer.js'
import { decodeUnverified, tokenFromAuthorization } from './token.js'

/** The audit principal of a refusal whose token was never verified (the `iss` it claimed is in the result). */
export const UNAUTHENTICATED = '-unauthenticated'

/** The token's `iss` as sent, unverified and cut to 64 characters, when there is a decodable token. */
function claimedIssuer(request: FastifyRequest): string | null {
  try {
    const iss = request.gw1Claims?.iss ?? decodeUnverified(tokenFromAuthorization(request.headers.authorization)).claims.iss
    return typeof iss === 'string' ? iss.slice(0, 64) : null
  } catch {
    return null
  }
}

/**
 * An onError hook for the signed routes: every 401 and 403 — a token refused, a scope missing, another
 * court's listing — is written to the audit trail (全程留痕 covers who was turned away too) and
 * committed before the refusal is answered. The route pattern is recorded, not the URL, which may
 * carry identifiers.
 */
export function auditRefusals(audit: AuditWriter) {
  return async (request: FastifyRequest, _reply: FastifyReply, error: FastifyError & { status?: number }) => {
    const status = error.status ?? error.statusCode
    if (status !== 401 && status !== 403) return
    await audit.append([{
      principalId: request.principal?.id ?? UNAUTHENTICATED,
      action: 'auth.refused',
      operationId: request.routeOptions.config.operationId ?? 'unknown',
      requestId: request.id,
      result: { code: error.code, status, method: request.method, route: request.routeOptions.url ?? null, claimedIssuer: claimedIssuer(request) },
    }])
  }
}
