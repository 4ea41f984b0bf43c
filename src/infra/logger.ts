import type { FastifyServerOptions } from 'fastify'
import { stdSerializers } from 'pino'

/** 15/18-digit resident ids and 18-character credit codes: never written to a log in clear. */
const IDENTIFIER_PATTERN = /(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15}|[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10})(?![0-9A-Za-z])/g

/**
 * Replaces anything shaped like an identity number or credit code (also percent-encoded text) with
 * `[id]`, or with `[id:<keyed hash prefix>]` when a hasher is given, so log lines about the same
 * person can be correlated without the number ever being written.
 */
export function redactIdentifiers(text: string, hash?: (id: string) => string): string {
  let decoded = text
  try { decoded = decodeURIComponent(text) } catch { /* keep raw */ }
  return decoded.replace(IDENTIFIER_PATTERN, (id) => (hash ? `[id:${hash(id.toUpperCase()).slice(0, 16)}]` : '[id]'))
}

/**
 * A public route's query holds what a citizen typed (a name, a masked or partial identifier): the
 * log keeps the parameter names only.
 */
export function redactPublicQuery(url: string): string {
  const q = url.indexOf('?')
  if (q < 0 || !url.startsWith('/v1/public/')) return url
  return `${url.slice(0, q)}?${url.slice(q + 1).split('&').map((p) => `${p.split('=')[0]}=…`).join('&')}`
}

/** Pretty output on a terminal, JSON lines otherwise (fastify/demo picks by TTY, not NODE_ENV). */
export function loggerOptions(level: string, hash?: (id: string) => string, file?: string): FastifyServerOptions['logger'] {
  return {
    level,
    ...(file ? { file } : {}),
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', '*.privateKey', '*.d', 'privateJwk', 'idNumber', '*.idNumber', 'creditCode', '*.creditCode'],
      censor: '[redacted]',
    },
    // Messages and errors are text we do not control (Fastify's own warnings quote the raw URL; a
    // driver error may quote a value): every string logged passes the same identifier redaction.
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? redactIdentifiers(a, hash) : a)) as Parameters<typeof method>)
      },
    },
    serializers: {
      err(err: Error) {
        const out = stdSerializers.err(err)
        out.message = redactIdentifiers(out.message, hash)
        if (out.stack) out.stack = redactIdentifiers(out.stack, hash)
        return out
      },
      req(req) {
        return { method: req.method, url: redactIdentifiers(redactPublicQuery(req.url), hash), operationId: req.routeOptions?.config?.operationId, remoteAddress: req.ip }
      },
    },
    ...(process.stdout.isTTY && level !== 'silent' && !file
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss', ignore: 'pid,hostname' } } }
      : {}),
  }
}
