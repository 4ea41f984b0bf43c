import type { FastifyInstance } from 'fastify'
import type { SupervisionService } from './supervision.service.js'

const day = { type: 'string', format: 'date', description: 'a China (Asia/Shanghai) calendar day, YYYY-MM-DD' } as const
const counts = {
  requests: { type: 'integer', description: 'match requests (a batch is one)' },
  matches: { type: 'integer', description: 'subjects matched (refused items not counted)' },
  hits: { type: 'integer', description: 'subjects found listed' },
  decisions: { type: 'object', properties: { allow: { type: 'integer' }, review: { type: 'integer' }, deny: { type: 'integer' } } },
  feedback: { type: 'object', properties: { received: { type: 'integer' }, restricted: { type: 'integer' }, allowedAfterReview: { type: 'integer' }, notApplicable: { type: 'integer' } } },
  overdue: { type: 'integer', description: 'hits with no feedback feedbackDeadlineDays after the match' },
  measuresApplied: { type: 'object', additionalProperties: { type: 'integer' }, description: 'measure code → times the agency reported applying it' },
} as const
const reportSchema = {
  type: 'object', required: ['from', 'to', 'feedbackDeadlineDays', 'asOf', 'agencies'],
  properties: {
    from: day, to: day, feedbackDeadlineDays: { type: 'integer' }, asOf: { type: 'string', format: 'date-time' },
    agencies: {
      type: 'array',
      items: {
        type: 'object', required: ['agency', 'totals', 'days'],
        properties: {
          agency: { type: 'string' },
          totals: { type: 'object', properties: counts },
          days: { type: 'array', items: { type: 'object', properties: { day, ...counts } } },
        },
      },
    },
  },
} as const
const instant = { type: 'string', format: 'date-time' } as const
const processesSchema = {
  type: 'object', required: ['asOf', 'headSeq', 'processes', 'changeLog'],
  properties: {
    asOf: instant,
    headSeq: { type: 'integer', description: 'the change log\'s last sequence (0 when empty)' },
    processes: {
      type: 'array', description: 'every gateway process as of its last heartbeat (a process deletes its row on close; rows not seen for 10 minutes are pruned)',
      items: {
        type: 'object',
        required: ['id', 'host', 'pid', 'startedAt', 'lastSeenAt', 'stale', 'indexReady', 'indexSize', 'indexSeq', 'indexLag', 'eventsApplied', 'eventsPerSecond'],
        properties: {
          id: { type: 'string', format: 'uuid', description: 'random per process start' },
          host: { type: 'string' },
          pid: { type: 'integer' },
          startedAt: instant,
          lastSeenAt: instant,
          stale: { type: 'boolean', description: 'no heartbeat for 3 intervals (PROCESS_HEARTBEAT_SECONDS)' },
          indexReady: { type: 'boolean', description: 'the match index was built and has caught up once' },
          indexSize: { type: 'integer', description: 'listings in the match index' },
          indexSeq: { type: 'integer', description: 'the last change-log sequence the match index applied' },
          indexLag: { type: 'integer', minimum: 0, description: 'headSeq − indexSeq, at least 0' },
          eventsApplied: { type: 'integer', description: 'change-log events applied to the index since the process started' },
          eventsPerSecond: { type: 'number', description: 'events applied between its last two heartbeats, per second of the interval' },
        },
      },
    },
    changeLog: {
      type: 'object', required: ['perMinute', 'lastHour', 'last24Hours'],
      properties: {
        perMinute: {
          type: 'array', description: 'events per minute over the last 60 minutes, ascending; minutes without events are left out',
          items: { type: 'object', required: ['minute', 'events'], properties: { minute: { ...instant, description: 'the minute\'s start' }, events: { type: 'integer' } } },
        },
        lastHour: { type: 'integer' },
        last24Hours: { type: 'integer' },
      },
    },
  },
} as const
const range = { type: 'object', additionalProperties: false, properties: { from: day, to: day } } as const

/** `/v1/supervision`: the supervision figures (自动监督) for holders of supervision:read. */
export async function supervisionRoutes(app: FastifyInstance, opts: { service: SupervisionService }) {
  app.get<{ Querystring: { from?: string; to?: string } }>('/agencies', {
    config: { scope: 'supervision:read', operationId: 'supervision.agencies' },
    schema: { tags: ['supervision'], summary: 'Per agency and day: matches, hits, decisions, feedback, overdue hits, measures applied (default: the last 30 days)', querystring: range, response: { 200: reportSchema } },
  }, async (req) => opts.service.agencies(req.query))

  app.get<{ Params: { agency: string }; Querystring: { from?: string; to?: string } }>('/agencies/:agency', {
    config: { scope: 'supervision:read', operationId: 'supervision.agency' },
    schema: {
      tags: ['supervision'], summary: 'The same for one agency (no days when it made no match in the range)', querystring: range,
      params: { type: 'object', required: ['agency'], additionalProperties: false, properties: { agency: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,63}$' } } },
      response: { 200: reportSchema },
    },
  }, async (req) => opts.service.agencies({ ...req.query, agency: req.params.agency }))

  app.get('/processes', {
    config: { scope: 'supervision:read', operationId: 'supervision.processes' },
    schema: { tags: ['supervision'], summary: 'Per gateway process: match index lag behind the change log and events applied; change-log throughput', response: { 200: processesSchema } },
  }, async () => opts.service.processes())

  app.get('/applications', {
    config: { scope: 'supervision:read', operationId: 'supervision.applications' },
    schema: {
      tags: ['supervision'], summary: 'Open correction and repair applications per deciding court, and how many are past their deadline',
      response: {
        200: {
          type: 'object', required: ['asOf', 'courts'],
          properties: {
            asOf: day,
            courts: { type: 'array', items: { type: 'object', required: ['courtCode', 'kind', 'open', 'overdue'], properties: { courtCode: { type: 'string' }, kind: { type: 'string', enum: ['appeal', 'repair'] }, open: { type: 'integer' }, overdue: { type: 'integer' } } } },
            overdueItems: {
              type: 'array', description: 'up to 50 open applications past their deadline, the oldest due first (no applicant details)',
              items: {
                type: 'object', required: ['id', 'kind', 'courtCode', 'status', 'receivedOn', 'dueOn', 'listingId'],
                properties: { id: { type: 'string', format: 'uuid' }, kind: { type: 'string', enum: ['appeal', 'repair'] }, courtCode: { type: 'string', description: 'the deciding court' }, status: { type: 'string' }, receivedOn: day, dueOn: day, listingId: { type: 'string', format: 'uuid' } },
              },
            },
          },
        },
      },
    },
  }, async () => opts.service.applications())
}
