import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import { Counter } from 'prom-client'
import { problem, sendProblem } from './errors.js'

export interface OverloadOptions {
  /** Shed when the event loop's mean delay over a sample exceeds this (ms); 0 turns the check off. */
  maxEventLoopDelayMs: number
  /** Shed when the event loop was busy more than this share of the last sample (0–1); 0 turns it off. */
  maxEventLoopUtilization: number
  /** Seconds the caller is asked to wait. */
  retryAfterSeconds: number
  /** How often the loop is sampled (ms): shedding starts at most this long after the stall begins. */
  sampleIntervalMs: number
}

/** Liveness, readiness and metrics still answer under load: an orchestrator must see the process alive and why it sheds. */
const NEVER_SHED = new Set(['/healthz', '/readyz', '/metrics'])

/**
 * Load shedding (issue 9 item 4): when the event loop lags, new requests get 503
 * `service.overloaded` with Retry-After at once instead of queueing behind the stall, so a licence
 * office's system fails over or retries in a second rather than timing out.
 */
async function overloadPlugin(app: FastifyInstance, opts: OverloadOptions) {
  const shed = new Counter({ name: 'gateway_requests_shed_total', help: 'requests refused with 503 service.overloaded', labelNames: ['reason'], registers: [app.metrics] })
  await app.register(underPressure, {
    maxEventLoopDelay: opts.maxEventLoopDelayMs,
    maxEventLoopUtilization: opts.maxEventLoopUtilization,
    eventLoopUtilizationMode: 'interval',
    sampleInterval: opts.sampleIntervalMs,
    retryAfter: opts.retryAfterSeconds,
    pressureHandler: (request: FastifyRequest, reply: FastifyReply, type: string, value: number | undefined) => {
      if (NEVER_SHED.has(request.url.split('?')[0]!)) return undefined // let it through
      shed.inc({ reason: type })
      request.log.warn({ pressure: type, value }, 'overloaded: request shed')
      // Answered here; under-pressure then calls next() on a sent reply, which Fastify ends there.
      sendProblem(reply, problem(503, 'service.overloaded', `the gateway is overloaded (${type}); retry after ${opts.retryAfterSeconds} s`, { instance: request.id }), { 'retry-after': String(opts.retryAfterSeconds) })
    },
  })
}

export default fp(overloadPlugin, { name: 'overload', fastify: '5.x', dependencies: ['metrics'] })
