import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

/**
 * The one error type routes and services throw. `code` is dotted and stable (partners branch on
 * it); `expose` says whether `message` may reach the caller (never for 5xx).
 */
export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly extra: { field?: string; errors?: unknown[]; headers?: Record<string, string> } = {},
  ) {
    super(message)
    this.name = 'AppError'
  }

  /** 503 carries an actionable message (retry); other 5xx details stay in the log. */
  get expose(): boolean {
    return this.status < 500 || this.status === 503
  }
}

/** A per-module factory: `const err = createErrorFactory('principals'); throw err('not_found', 404, '...')`. */
export function createErrorFactory(module: string) {
  return (code: string, status: number, message: string, extra?: AppError['extra']) =>
    new AppError(`${module}.${code}`, status, message, extra)
}

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Payload Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type', 422: 'Unprocessable Content',
  429: 'Too Many Requests', 500: 'Internal Server Error', 503: 'Service Unavailable',
}

export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  code: string
  field?: string
  errors?: unknown[]
  instance?: string
}

export function problem(status: number, code: string, detail: string, extra: Omit<Partial<Problem>, 'status' | 'code' | 'detail'> = {}): Problem {
  return {
    type: `https://credit-gateway.example/problems/${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    code,
    ...extra,
  }
}

/** Fastify's own errors for things a caller sent, mapped to stable codes (never a 500). */
const FASTIFY_CODES: Record<string, [number, string]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'request.malformed_json'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'request.malformed_json'],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'request.body_too_large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'request.unsupported_media_type'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'request.bad_content_length'],
  FST_ERR_BAD_URL: [400, 'request.bad_url'],
  FST_ERR_ASYNC_CONSTRAINT: [400, 'request.bad_url'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'request.uri_too_long'],
}

/**
 * Fastify's `frameworkErrors` option (app.ts): a URL it cannot decode or a path parameter longer
 * than `maxParamLength` is refused by the router before any route or error handler runs, and
 * without this answered as plain `application/json` with Fastify's own shape.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const [status, code] = (err.code ? FASTIFY_CODES[err.code] : undefined) ?? [400, 'request.invalid']
  return sendProblem(reply, problem(status, code, err.message, { instance: request.id }))
}

function validationField(err: FastifyError): string | undefined {
  const first = err.validation?.[0] as { instancePath?: string; params?: Record<string, unknown> } | undefined
  if (!first) return undefined
  const base = `${err.validationContext ?? 'body'}${(first.instancePath ?? '').replaceAll('/', '.')}`
  const extra = first.params?.missingProperty ?? first.params?.additionalProperty
  return typeof extra === 'string' ? `${base}.${extra}` : base
}

/**
 * Error codes that mean the database cannot be reached right now, not that the request was wrong:
 * postgres.js's own connection errors, the socket's, and the SQLSTATEs of a server shutting down,
 * starting up, out of connections or a broken connection (class 08).
 */
const DATABASE_UNAVAILABLE_CODES = new Set([
  'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT',
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND',
  '57P01', '57P02', '57P03', '53300',
])

/**
 * Whether `err` (or an error it wraps: drizzle wraps the driver's error in `cause`) says the database
 * is unavailable, so the caller should retry (503) rather than being told of an internal error.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  let e = err as { code?: unknown; errno?: unknown; cause?: unknown } | null | undefined
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = typeof e.code === 'string' ? e.code : undefined
    if (code && (DATABASE_UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true
    // An AggregateError (several addresses refused) carries its causes in `errors`.
    const inner = (e as { errors?: unknown[] }).errors
    if (Array.isArray(inner) && inner.some((x) => isDatabaseUnavailable(x))) return true
    e = e.cause as typeof e
  }
  return false
}

/** Seconds a caller is asked to wait (Retry-After) when the database is unavailable. */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 1

export function sendProblem(reply: FastifyReply, p: Problem, headers: Record<string, string> = {}) {
  return reply.code(p.status).headers(headers).type('application/problem+json').send(p)
}

/** Renders every error as application/problem+json; 5xx details stay in the log. */
export function registerErrorHandling(app: FastifyInstance) {
  app.setErrorHandler((err: FastifyError | AppError, request: FastifyRequest, reply: FastifyReply) => {
    const instance = request.id
    if (err instanceof AppError) {
      // A 503 is expected while the database restarts (one line per refused request): a warning.
      if (err.status === 503) request.log.warn({ err, principal: request.principal?.id }, err.code)
      else if (err.status >= 500) request.log.error({ err, principal: request.principal?.id }, err.code)
      const detail = err.expose ? err.message : 'internal error'
      return sendProblem(reply, problem(err.status, err.code, detail, { field: err.extra.field, errors: err.extra.errors, instance }), err.extra.headers)
    }
    if (err.validation) {
      const field = validationField(err)
      const errors = err.validation.map((v) => ({ field: `${err.validationContext}${v.instancePath.replaceAll('/', '.')}`, message: v.message, params: v.params }))
      return sendProblem(reply, problem(400, 'request.validation', `${field ?? 'request'}: ${err.validation[0]?.message ?? 'invalid'}`, { field, errors, instance }))
    }
    const mapped = err.code ? FASTIFY_CODES[err.code] : undefined
    if (mapped) return sendProblem(reply, problem(mapped[0], mapped[1], err.message, { instance }))
    const status = err.statusCode ?? 500
    if (status >= 400 && status < 500) {
      return sendProblem(reply, problem(status, 'request.invalid', err.message, { instance }))
    }
    const retryAfter = { 'retry-after': String(UNAVAILABLE_RETRY_AFTER_SECONDS) }
    if (isDatabaseUnavailable(err)) {
      // Expected while PostgreSQL restarts or fails over: a warning, and a 503 the caller retries.
      request.log.warn({ err, principal: request.principal?.id }, 'database unavailable')
      return sendProblem(reply, problem(503, 'service.unavailable', 'the database is unavailable; retry shortly', { instance }), retryAfter)
    }
    request.log.error({ err, principal: request.principal?.id }, 'unhandled error')
    const unavailable = status === 503
    return sendProblem(reply, problem(unavailable ? 503 : 500, unavailable ? 'service.unavailable' : 'internal.error', 'internal error', { instance }), unavailable ? retryAfter : {})
  })

  app.setNotFoundHandler((request, reply) => {
    sendProblem(reply, problem(404, 'route.not_found', `no route for ${request.method} ${request.url.split('?')[0]}`, { instance: request.id }))
  })
}
