import type { FastifyInstance } from 'fastify'
import { Counter } from 'prom-client'
import { GROUNDS } from '../listings/listings.models.js'
import { DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE, NAME_MAX_CHARS, NAME_MIN_CHARS } from './public-search.models.js'
import type { PublicSearchQuery, PublicSearchService } from './public-search.service.js'

export const PUBLIC_SEARCHES_METRIC = 'credit_gateway_public_searches_total'
/** hit: at least one listing shown; miss: none; refused: bad input (400); limited: over the rate limit (429); error: 5xx. */
const RESULTS = ['hit', 'miss', 'refused', 'limited', 'error'] as const

const nullableString = { type: ['string', 'null'] } as const
const publicListingSchema = {
  type: 'object', additionalProperties: false,
  required: ['id', 'listKind', 'subject', 'caseNumber', 'courtName', 'basis', 'obligation', 'performance', 'amountOutstanding', 'grounds', 'filedOn', 'publishedOn'],
  properties: {
    id: { type: 'string', format: 'uuid', description: 'the listing, for a correction application (POST /v1/public/appeals)' },
    listKind: { type: 'string', enum: ['dishonest', 'restricted'] },
    subject: {
      type: 'object', additionalProperties: false, required: ['kind', 'name'],
      properties: {
        kind: { type: 'string', enum: ['person', 'entity'] },
        name: { type: 'string' },
        idNumberMasked: { type: 'string', description: 'a person’s identity number with digits 11–14 (birth month and day) as ****, e.g. 3423011964****3224 (domain.md §7.1)' },
        sex: { type: 'string', enum: ['male', 'female'] },
        age: { type: 'integer', description: 'a person’s age on the publication date' },
        creditCode: { type: 'string', description: 'an entity’s unified social credit code (shown in full unless the gateway is configured to mask it)' },
        orgCode: { type: 'string', description: 'an entity’s legacy organisation code, when it has no credit code' },
        legalRepresentative: { type: 'string', description: 'the name of an entity’s legal representative or person in charge (no identifier)' },
      },
    },
    caseNumber: { type: 'string' },
    courtName: { type: 'string' },
    basis: { type: ['object', 'null'], additionalProperties: false, required: ['issuer', 'documentNumber'], properties: { issuer: { type: 'string' }, documentNumber: { type: 'string' } }, description: 'issuer and number of the enforcement basis' },
    obligation: nullableString,
    performance: { type: 'string', enum: ['none', 'partial', 'full'] },
    amountOutstanding: { type: ['number', 'null'], description: 'the unperformed part (unperformPart)' },
    grounds: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['code', 'description'], properties: { code: { type: 'string', enum: Object.keys(GROUNDS) }, description: { type: 'string' } } }, description: 'the dishonest conduct (SPC-List Art. 1); empty on the restriction list' },
    filedOn: { ...nullableString, description: 'case filing date' },
    publishedOn: { type: 'string', format: 'date' },
  },
} as const

/**
 * `GET /v1/public/listings`: the public search (issue 6 item 1), unsigned, rate-limited per client
 * address by the public scope (app.ts), every call counted in {@link PUBLIC_SEARCHES_METRIC}.
 */
export async function publicSearchRoutes(app: FastifyInstance, opts: { service: PublicSearchService }) {
  const searches = new Counter({ name: PUBLIC_SEARCHES_METRIC, help: 'Public searches by result', labelNames: ['result'], registers: [app.metrics] })
  for (const result of RESULTS) searches.inc({ result }, 0)
  // Hits and misses are counted by the handler; refusals here, whichever stage refused (schema, service, rate limit).
  app.addHook('onResponse', async (_req, reply) => {
    const status = reply.statusCode
    if (status === 429) searches.inc({ result: 'limited' })
    else if (status >= 500) searches.inc({ result: 'error' })
    else if (status >= 400) searches.inc({ result: 'refused' })
  })

  app.get<{ Querystring: PublicSearchQuery }>('', {
    config: { operationId: 'public.listings.search' },
    schema: {
      tags: ['public'],
      summary: 'Search the active listings by exact full name, optionally narrowed by identifier; identifiers masked',
      description: `Unsigned. \`name\` is the exact full name of a person or an entity (${NAME_MIN_CHARS}–${NAME_MAX_CHARS} characters; no wildcards). \`id\` narrows it: a resident identity number (18 or 15), the masked form the public site shows (\`3423011964****3224\`, matched by prefix and suffix), a unified social credit code or an organisation code. Only active listings; at most ${MAX_PAGE} pages of ${MAX_PAGE_SIZE}. Results show the fields SPC-List Art. 6 publishes, with a person's identity number masked (digits 11–14). Rate-limited per client address (429 rate_limit.exceeded with Retry-After).`,
      querystring: {
        type: 'object', additionalProperties: false, required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 200, description: 'exact full name (trimmed)' },
          id: { type: 'string', minLength: 1, maxLength: 32, description: 'resident id, masked resident id, credit code or organisation code' },
          list: { type: 'string', enum: ['dishonest', 'restricted'] },
          page: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 1 },
          pageSize: { type: 'integer', minimum: 1, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE },
        },
      },
      response: {
        200: {
          type: 'object', additionalProperties: false, required: ['page', 'pageSize', 'hasMore', 'items'],
          properties: {
            page: { type: 'integer' },
            pageSize: { type: 'integer' },
            hasMore: { type: 'boolean', description: `more matches follow; past page ${MAX_PAGE}, narrow by id` },
            items: { type: 'array', items: publicListingSchema },
          },
        },
      },
    },
  }, async (req) => {
    const result = await opts.service.search(req.query)
    searches.inc({ result: result.items.length > 0 ? 'hit' : 'miss' })
    return result
  })
}
