import fc from 'fast-check'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { signRequest, type KeyFile } from '../src/client/gw1-client.js'
import { loadSchemas } from '../src/infra/schemas.js'
import { SCOPES_BY_KIND, type PrincipalKind } from '../src/modules/principals/principals.models.js'
import { creditCode, entityListing, personId, personListing } from './factories.js'

/**
 * Input fuzzing (issue 9 item 2): the route catalogue, the fast-check arbitraries for malformed
 * requests, and how one request is sent and judged. Shared by test/fuzz.test.ts (a fixed seed, a
 * few thousand requests) and scripts/fuzz.ts (the long run).
 *
 * A generated request is a small descriptor: huge and deeply nested bodies are materialised only
 * when sent, so requests can be sampled in batches of hundreds and an offending one printed.
 */

type JsonSchema = Record<string, unknown>

// ---------------------------------------------------------------------------------------------
// The route catalogue: every route of the app (printRoutes), signed ones with their scope
// (app.signedRoutes), schemas of the described ones from the OpenAPI document.
// ---------------------------------------------------------------------------------------------

export interface FuzzRoute {
  method: string
  /** Fastify pattern, e.g. `/v1/listings/:id/removal`; a `*` wildcard takes any rest of path. */
  url: string
  signed: boolean
  /** Signed routes: the scope required ('any' = any principal). */
  scope?: string
  /** Path parameter name → its schema (a plain string if undescribed). */
  params: Record<string, JsonSchema>
  /** Query parameter name → its schema. */
  query: Record<string, JsonSchema>
  /** The request body schema ($refs resolved lazily by the generator), if the route takes one. */
  body?: JsonSchema
}

/** Every `METHOD /full/path` line of `app.printRoutes({ commonPrefix: false })`. */
export function parsePrintedRoutes(printed: string): Array<{ method: string; url: string }> {
  const out: Array<{ method: string; url: string }> = []
  const stack: string[] = []
  for (const line of printed.split('\n')) {
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(.*?)(?: \(([A-Z, ]+)\))?$/.exec(line)
    if (!m) continue
    const depth = m[1]!.length / 4
    stack.length = depth
    stack.push(m[2]!)
    if (!m[3]) continue
    const url = stack.join('').replace(/^\/+/, '/')
    for (const method of m[3].split(',').map((s) => s.trim())) out.push({ method, url })
  }
  return out
}

/** The whole route table: signed and public, ops and static pages (HEAD kept only as a variant of GET). */
export function routeCatalogue(app: FastifyInstance): FuzzRoute[] {
  const signed = new Map(app.signedRoutes.map((r) => [`${r.method} ${r.url}`, r.scope]))
  const doc = (app as unknown as { swagger(): { paths: Record<string, Record<string, OpenApiOperation>> } }).swagger()
  const described = new Map<string, OpenApiOperation>()
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) described.set(`${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`, op)
  }
  const seen = new Set<string>()
  const routes: FuzzRoute[] = []
  for (const { method, url } of parsePrintedRoutes(app.printRoutes({ commonPrefix: false }))) {
    const key = `${method} ${url}`
    if (method === 'HEAD' || seen.has(key)) continue
    seen.add(key)
    const op = described.get(key)
    const params: Record<string, JsonSchema> = {}
    const query: Record<string, JsonSchema> = {}
    for (const name of url.match(/:(\w+)/g) ?? []) params[name.slice(1)] = { type: 'string' }
    for (const p of op?.parameters ?? []) {
      if (p.in === 'path') params[p.name] = p.schema ?? { type: 'string' }
      if (p.in === 'query') query[p.name] = p.schema ?? { type: 'string' }
    }
    const body = op?.requestBody?.content?.['application/json']?.schema
    routes.push({ method, url, signed: signed.has(key), scope: signed.get(key), params, query, body: body && BODY_HINTS[key] ? BODY_HINTS[key](body) : body })
  }
  const missing = app.signedRoutes.filter((r) => !seen.has(`${r.method} ${r.url}`))
  if (missing.length > 0) throw new Error(`signed routes missing from printRoutes: ${missing.map((r) => `${r.method} ${r.url}`).join(', ')}`)
  return routes
}

interface OpenApiOperation {
  parameters?: Array<{ in: string; name: string; schema?: JsonSchema }>
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> }
}

/** Bodies whose route schema is loose on purpose (items checked one by one in the service): fuzz the real item shape. */
const BODY_HINTS: Record<string, (schema: JsonSchema) => JsonSchema> = {
  'POST /v1/listings': (s) => ({ ...s, properties: { items: { type: 'array', minItems: 1, items: { $ref: 'ListingInput#' } } } }),
}

/**
 * A valid body per writing route (built when sampled, from the seeded values): mutated in one
 * place — a value replaced by a hostile or mistyped one, a key dropped or an injected key added —
 * or sent as is, so requests get past validation into the services with one thing wrong.
 */
const EXEMPLARS: Record<string, () => unknown> = {
  'POST /v1/match': () => ({ idNumber: personId(1), scenario: 'TICKET_AIR', name: '张1' }),
  'POST /v1/match/batch': () => ({ subjects: [{ idNumber: personId(1) }, { creditCode: creditCode(4) }, { idNumber: personId(704, '19750505'), name: '王4' }, { orgCode: creditCode(4).slice(8, 17) }], scenario: 'TICKET_AIR', explain: true }),
  'POST /v1/listings': () => ({ items: [personListing(9), entityListing(10)] }),
  'POST /v1/listings/:id/removal': () => ({ reason: 'performed' }),
  'POST /v1/public/appeals': () => ({ listingId: knownListingId(), ground: 'inaccurate', applicant: { name: '张1', idNumber: personId(1), contact: '13800000000' }, statement: '身份证号有误', requestedChanges: { 'subject.name': '张一' } }),
  'POST /v1/public/repairs': () => ({ listingId: knownListingId(), ground: 'full_performance', applicant: { name: '张3', idNumber: personId(3), contact: 'a@example.cn' }, statement: '已全部履行', attachments: [{ fileName: 'receipt.pdf', mediaType: 'application/pdf', contentBase64: Buffer.from('%PDF-1.4 fuzz').toString('base64') }] }),
  'POST /v1/public/appeals/:code/reconsideration': () => ({ statement: '请求复议' }),
  'POST /v1/feedback': () => ({ receiptId: '00000000-0000-4000-8000-000000000000', action: 'restricted', measures: ['CAAC-AIR'] }),
  'POST /v1/subscriptions': () => ({ url: 'https://hooks.example.com/credit', eventKinds: ['published', 'removed'], listKinds: ['dishonest'] }),
  'PATCH /v1/subscriptions/:id': () => ({ status: 'paused' }),
  'POST /v1/reviews/appeals/:id/decision': () => ({ outcome: 'accept', correction: { subjectName: '张一' } }),
  'POST /v1/reviews/repairs/:id/decision': () => ({ outcome: 'reject', reasons: '材料不全' }),
  'PATCH /v1/principals/:id': () => ({ name: 'Renamed' }),
}
const knownListingId = () => KNOWN.find((v) => /^[0-9a-f]{8}-[0-9a-f]{4}-/.test(v)) ?? '00000000-0000-4000-8000-000000000000'

/** One mutation of a JSON value at the `pick`-th of its nodes. */
function mutate(value: unknown, pick: number, op: number, replacement: unknown, key: string): unknown {
  if (op === 0) return value // sent as is
  const root = structuredClone(value)
  const nodes: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number }> = []
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach((x, i) => { nodes.push({ parent: v, key: i }); walk(x) })
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) { nodes.push({ parent: v as Record<string, unknown>, key: k }); walk(x) }
  }
  walk(root)
  const node = nodes[pick % Math.max(nodes.length, 1)]
  if (!node) return replacement
  if (op === 1) (node.parent as Record<string | number, unknown>)[node.key] = replacement
  else if (op === 2 && !Array.isArray(node.parent)) delete node.parent[node.key as string]
  else if (op === 3) {
    const target = (node.parent as Record<string | number, unknown>)[node.key]
    const holder = target && typeof target === 'object' && !Array.isArray(target) ? target as Record<string, unknown> : root as Record<string, unknown>
    Object.defineProperty(holder, key, { value: replacement, enumerable: true, writable: true, configurable: true })
  } else (node.parent as Record<string | number, unknown>)[node.key] = replacement
  return root
}

function exemplarArb(build: () => unknown): fc.Arbitrary<unknown> {
  return fc.tuple(fc.nat(1000), fc.constantFrom(0, 1, 1, 1, 2, 3), anyJson, fc.constantFrom(...JSON_INJECTION_KEYS, 'extra'))
    .map(([pick, op, replacement, key]) => mutate(build(), pick, op, replacement, key))
}

/** The principal kind that signs for a scope: one holding every scope of its kind. */
export function kindsFor(scope: string | undefined): PrincipalKind[] {
  const kinds: PrincipalKind[] = ['court', 'agency', 'admin']
  return scope === 'any' || !scope ? kinds : kinds.filter((k) => (SCOPES_BY_KIND[k] as readonly string[]).includes(scope))
}

// ---------------------------------------------------------------------------------------------
// Hostile strings and values
// ---------------------------------------------------------------------------------------------

export const SQL_INJECTIONS = [
  "' OR 1=1 --", "'; DROP TABLE listings; --", '" OR ""="', "1; SELECT pg_sleep(5)", "' UNION SELECT * FROM principals --",
  "admin'--", "1' AND '1'='1", '$1', "\\'; TRUNCATE audit_entries; --", "%' OR '%'='", "') OR ('x'='x", '1e309',
]
export const JSON_INJECTION_KEYS = ['__proto__', 'constructor', 'prototype', '$ne', '$gt', '$where', 'toString', 'hasOwnProperty', 'valueOf', '']
export const ODD_STRINGS = [
  '__proto__', 'constructor', 'prototype', 'null', 'undefined', 'NaN', 'Infinity', '-0', 'true', '[]', '{}', '\\', '"', "'", '`',
  '\u0000', '\u0000abc', 'a\u0000b', '\ud800', '\udfff', '\ud83d', '𝕏𝕐ℤ', '京（2026）京0105执1号', '(2026)京0105执1号', '\u202e\u0644\u0627', '\u200b\u200d\ufeff',
  ' ', '\t\n\r', '%00', '%', '%zz', '../../etc/passwd', '..%2f..%2f', '<script>alert(1)</script>', '${7*7}', '{{7*7}}', '%s%s%s%n',
  'x'.repeat(257), 'é'.repeat(100), '9'.repeat(400), '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
  '11010519491231002X', '110105194912310021', '91110000100000000X', '2026-02-30', '0000-00-00', '9999-12-31T99:99:99Z',
]
const ALL_HOSTILE = [...SQL_INJECTIONS, ...ODD_STRINGS]

/**
 * Values the seeded gateway knows (identifiers, names, listing ids of {@link seedFuzzData}): mixed
 * into strings so some requests match, find or name something real and the handlers run in full.
 */
const KNOWN: string[] = []
export function setKnownValues(values: string[]) { KNOWN.splice(0, KNOWN.length, ...values) }

const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...ALL_HOSTILE) },
  { weight: 2, arbitrary: fc.nat(10_000).map((i) => (KNOWN.length > 0 ? KNOWN[i % KNOWN.length]! : ALL_HOSTILE[i % ALL_HOSTILE.length]!)) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) }, // lone surrogates, control characters
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...ALL_HOSTILE), fc.string({ maxLength: 10 })).map(([a, b]) => a + b) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 20_000 }).map((n) => 'A'.repeat(n)) },
)

/** An object with exactly these own keys, `__proto__` included (JSON.stringify writes it as a plain key). */
export function ownObject(entries: ReadonlyArray<readonly [string, unknown]>): Record<string, unknown> {
  const o: Record<string, unknown> = {}
  for (const [k, v] of entries) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true })
  return o
}

const hostileObject: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(ownObject([['$ne', null]])),
  fc.constant(ownObject([['$gt', '']])),
  fc.constant(ownObject([['$where', 'sleep(1000)']])),
  fc.constant(ownObject([['__proto__', { admin: true, scopes: ['principals:write'] }]])),
  fc.constant(ownObject([['constructor', { prototype: { polluted: true } }]])),
  fc.constant(ownObject([['constructor', 'x']])),
  fc.constant(ownObject([['toString', 1], ['valueOf', null], ['hasOwnProperty', 'x']])),
  fc.constant([]),
  fc.constant([null]),
  fc.constant({}),
)

/** Any JSON value, hostile ones favoured. */
const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: hostileString },
  { weight: 2, arbitrary: hostileObject },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, 0, -1, 1.5, -0, 1e308, -1e308, 2 ** 53 + 1, Number.MIN_VALUE, 4294967296) },
)

// ---------------------------------------------------------------------------------------------
// Values from a JSON schema: mostly of the declared type (so validation passes and the handler
// runs), with hostile strings and out-of-range numbers, missing and extra keys mixed in.
// ---------------------------------------------------------------------------------------------

const SCHEMAS = new Map<string, JsonSchema>()
function schemaNamed(ref: string): JsonSchema | undefined {
  if (SCHEMAS.size === 0) for (const s of loadSchemas()) SCHEMAS.set(String(s.$id), s as JsonSchema)
  const name = ref.replace(/^#\/components\/schemas\//, '').replace(/#.*$/, '')
  return SCHEMAS.get(name)
}

function typed(schema: JsonSchema, depth: number): fc.Arbitrary<unknown> {
  if (typeof schema.$ref === 'string') {
    const target = schemaNamed(schema.$ref)
    return target ? typed(target, depth) : anyJson
  }
  if (depth > 6) return anyJson
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...(schema.enum as unknown[])) }, { weight: 1, arbitrary: hostileString })
  if ('const' in schema) return fc.constant(schema.const)
  for (const key of ['oneOf', 'anyOf', 'allOf'] as const) {
    const list = schema[key] as JsonSchema[] | undefined
    if (Array.isArray(list) && list.length > 0) return fc.oneof(...list.map((s) => typed({ ...schema, [key]: undefined, ...s }, depth + 1)))
  }
  const type = Array.isArray(schema.type) ? schema.type : schema.type ? [schema.type] : schema.properties ? ['object'] : []
  if (type.length === 0) return anyJson
  return fc.oneof(...type.map((t) => typedOne(String(t), schema, depth)))
}

function typedOne(type: string, schema: JsonSchema, depth: number): fc.Arbitrary<unknown> {
  switch (type) {
    case 'string': return stringFor(schema)
    case 'integer': case 'number': return numberFor(schema, type === 'integer')
    case 'boolean': return fc.boolean()
    case 'null': return fc.constant(null)
    case 'array': {
      const items = (schema.items as JsonSchema | undefined) ?? {}
      return fc.oneof(
        { weight: 6, arbitrary: fc.array(value(items, depth + 1), { minLength: Number(schema.minItems ?? 0) > 0 ? 1 : 0, maxLength: 4 }) },
        { weight: 1, arbitrary: fc.constant([]) },
        { weight: 1, arbitrary: fc.array(anyJson, { maxLength: 3 }) },
      )
    }
    case 'object': return objectFor(schema, depth)
    default: return anyJson
  }
}

function stringFor(schema: JsonSchema): fc.Arbitrary<string> {
  const min = Number(schema.minLength ?? 0)
  const max = Math.min(Number(schema.maxLength ?? 64), 300)
  const options: Array<fc.WeightedArbitrary<string>> = [
    { weight: 3, arbitrary: fc.string({ unit: 'grapheme', minLength: Math.min(min, max), maxLength: max }) },
    { weight: 3, arbitrary: hostileString },
    { weight: 1, arbitrary: fc.string({ minLength: max + 1, maxLength: max + 3 }) },
  ]
  if (schema.format === 'uuid') options.push({ weight: 6, arbitrary: fc.uuid() })
  if (schema.format === 'date' || schema.format === 'date-time') {
    options.push({ weight: 4, arbitrary: fc.date({ min: new Date('1900-01-01'), max: new Date('2200-01-01'), noInvalidDate: true }).map((d) => (schema.format === 'date' ? d.toISOString().slice(0, 10) : d.toISOString())) })
  }
  if (typeof schema.pattern === 'string') {
    try { options.push({ weight: 6, arbitrary: fc.stringMatching(new RegExp(schema.pattern)) }) } catch { /* a pattern fast-check cannot invert */ }
  }
  return fc.oneof(...options)
}

function numberFor(schema: JsonSchema, integer: boolean): fc.Arbitrary<number> {
  const min = typeof schema.minimum === 'number' ? schema.minimum : -1000
  const max = typeof schema.maximum === 'number' ? schema.maximum : 1_000_000
  return fc.oneof(
    { weight: 4, arbitrary: integer ? fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31) }) : fc.double({ min, max, noNaN: true }) },
    { weight: 2, arbitrary: fc.constantFrom(min - 1, max + 1, 0, -1, 0.5, -0, 2 ** 31, 2 ** 53 + 2, 1e308, -1e308, Number.MAX_SAFE_INTEGER) },
    { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  )
}

function objectFor(schema: JsonSchema, depth: number): fc.Arbitrary<unknown> {
  const props = Object.entries((schema.properties as Record<string, JsonSchema> | undefined) ?? {})
  const required = new Set((schema.required as string[] | undefined) ?? [])
  const entries = props.map(([key, sub]) => fc.option(value(sub, depth + 1).map((v) => [key, v] as const), { freq: required.has(key) ? 12 : 2, nil: undefined }))
  const extra = fc.array(fc.tuple(fc.oneof(fc.constantFrom(...JSON_INJECTION_KEYS), fc.string({ maxLength: 12 })), anyJson), { maxLength: 2 })
  return fc.tuple(fc.tuple(...entries), fc.oneof({ weight: 5, arbitrary: fc.constant([] as Array<[string, unknown]>) }, { weight: 1, arbitrary: extra }))
    .map(([present, more]) => ownObject([...present.filter((e): e is readonly [string, unknown] => e !== undefined), ...more]))
}

/** A value for a schema: typed most of the time, anything at all otherwise. */
function value(schema: JsonSchema, depth: number): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 8, arbitrary: typed(schema, depth) }, { weight: 1, arbitrary: anyJson })
}

// ---------------------------------------------------------------------------------------------
// Request descriptors
// ---------------------------------------------------------------------------------------------

export type BodySpec =
  | { kind: 'none' }
  | { kind: 'json'; value: unknown } // JSON.stringify of a (schema-shaped or hostile) value
  | { kind: 'text'; text: string } // malformed JSON text and other text
  | { kind: 'bytes'; hex: string } // invalid UTF-8 and other raw bytes
  | { kind: 'deep'; depth: number; open: '[' | '{"a":' | '{"__proto__":' } // deeply nested JSON
  | { kind: 'huge'; bytes: number; json: boolean } // over (or at) a body limit

export type AuthSpec =
  | { kind: 'signed'; as: PrincipalKind } // a correct GW1 signature by a principal holding every scope of its kind
  | { kind: 'signed-stale'; as: PrincipalKind; tamper: 'body' | 'path' | 'expired' } // signed, then changed
  | { kind: 'none' }
  | { kind: 'garbage'; value: string } // a random Authorization header

export interface FuzzRequest {
  method: string
  route: string // the pattern, for reports
  /** The path with query as generated (normalised by light-my-request like a client's URL would be). */
  url: string
  body: BodySpec
  contentType?: string
  headers: Record<string, string | string[]>
  auth: AuthSpec
  remoteAddress: string
}

const MALFORMED_JSON = [
  '{', '}', '[', '{"a":', '{"a":1,}', "{'a':1}", '{a:1}', '{"a":NaN}', '{"a":Infinity}', '{"a":undefined}', '{"a":01}', '{"a":.5}', '{"a":1e}',
  '{"a":"\\x41"}', '{"a":"\\u12"}', '{"a":"\\ud800"}', '{"a":1}{"b":2}', '{"a":1} trailing', '\ufeff{}', '/* c */{}', '{"a":1 // c\n}', 'null', 'true', '0',
  '"string"', '[]', '[1,2', '{"a":"unterminated}', '{"a":"\u0000"}', '{"a":"line\nbreak"}', ' ', '\n', '{"__proto__":{"x":1}}',
  '{"constructor":{"prototype":{"x":1}}}', '{"a":{"__proto__":null}}', '{"a":1,"a":2}', '[' + '1,'.repeat(1000) + '1]',
  '{"a":' + '9'.repeat(400) + '}', '{"a":-}', '{"a":tru}', '{"a":nul}', '\u0000', 'SELECT 1', "' OR 1=1 --",
]

const INVALID_UTF8: string[] = [
  'ff', 'fe', 'c0af', 'c080', 'e080af', 'f08080af', 'eda080', 'edbfbf', 'f4908080', 'f8888080af', '80', 'bf', 'c3', 'e282', 'f09f98',
].map((bad) => Buffer.concat([Buffer.from('{"name":"'), Buffer.from(bad, 'hex'), Buffer.from('"}')]).toString('hex'))

const CONTENT_TYPES = [
  'application/json; charset=utf-8', 'application/json;charset=UTF-8', 'APPLICATION/JSON', 'application/json; charset=latin1',
  'application/json; charset=utf-16', 'application/problem+json', 'application/merge-patch+json', 'application/jsonx', 'application/json, text/plain',
  'text/plain', 'text/json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=----x', 'application/octet-stream',
  'application/xml', '', ' ', ';', 'application/', '/json', 'application/json; boundary="', 'application/json; ' + 'a=b; '.repeat(200), '*/*',
]

/** The body of a request: shaped by the route's schema most of the time, hostile otherwise. */
export function bodyArb(route: FuzzRoute): fc.Arbitrary<BodySpec> {
  const takesBody = ['POST', 'PUT', 'PATCH'].includes(route.method)
  const shaped = route.body ? typed(route.body, 0) : anyJson
  const exemplar = EXEMPLARS[`${route.method} ${route.url}`]
  return fc.oneof(
    { weight: exemplar ? 10 : 0, arbitrary: exemplar ? exemplarArb(exemplar).map((value) => ({ kind: 'json', value }) as const) : fc.constant({ kind: 'none' } as const) },
    // GET, HEAD and DELETE bodies are never parsed (a signed one is refused as body_mismatch): now and then only.
    { weight: takesBody ? 1 : 40, arbitrary: fc.constant({ kind: 'none' } as const) },
    { weight: takesBody ? 14 : 1, arbitrary: shaped.map((value) => ({ kind: 'json', value }) as const) },
    { weight: 2, arbitrary: anyJson.map((value) => ({ kind: 'json', value }) as const) },
    { weight: 2, arbitrary: fc.oneof(fc.constantFrom(...MALFORMED_JSON), fc.string({ unit: 'binary', maxLength: 60 })).map((text) => ({ kind: 'text', text }) as const) },
    { weight: 1, arbitrary: fc.oneof(fc.constantFrom(...INVALID_UTF8), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('hex'))).map((hex) => ({ kind: 'bytes', hex }) as const) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('deep' as const), depth: fc.constantFrom(100, 1000, 10_000, 100_000), open: fc.constantFrom('[' as const, '{"a":' as const, '{"__proto__":' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('huge' as const), bytes: hugeSize, json: fc.boolean() }) },
  )
}

/** Body limits in force: the app's (FUZZ_ENV sets BODY_LIMIT_BYTES), match (8 MiB), applications (~14 MiB), a listings push (32 MiB). */
export const HUGE_LIMITS = { global: 64 * 1024, match: 8 * 1024 * 1024, applications: 5 * (Math.ceil((2 * 1024 * 1024) / 3) * 4 + 1024) + 64 * 1024, listings: 32 * 1024 * 1024 }

const hugeSize = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(HUGE_LIMITS.global + 1, HUGE_LIMITS.global) },
  { weight: 1, arbitrary: fc.constantFrom(HUGE_LIMITS.match + 1, HUGE_LIMITS.applications + 1, HUGE_LIMITS.listings + 1) },
)

// Path parameters: plausible ids that belong to nobody, and hostile text.
const paramArb = (schema: JsonSchema): fc.Arbitrary<string> => fc.oneof(
  { weight: 4, arbitrary: stringFor(schema).filter((s) => s.length > 0) },
  { weight: 2, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: fc.nat(100).map(() => knownListingId()) },
  { weight: 1, arbitrary: fc.constantFrom('1', '0', '-1', '99999999999999999999', 'k1', 'caac', 'admin', 'NOT_A_SLUG', 'a'.repeat(300)) },
  { weight: 1, arbitrary: fc.constantFrom('%E0%A4%A', '%ZZ', '%', '%00', '%2F', '%2e%2e', '..', '.', '%C0%AF', '%FF%FE', '%ud800', '%25', 'a%20b', '%0d%0aX-Injected:%201') },
).map((s) => encodeSegment(s))

/** Percent-encodes what must be, but leaves a literal `%` alone now and then (percent-encoding errors). */
function encodeSegment(s: string): string {
  if (/^(%[0-9A-Za-z]{0,2}|[A-Za-z0-9._~-]|%u[0-9a-f]{4})+$/.test(s)) return s
  return encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '\ufffd'))
}

const QUERY_SPECIALS = ['%', '%G1', '%E0%A4%A', '%00', '%FF', '%C0%AF', '+', '%2B', '%26', '%3D', '&', '=', '==', '[]', '%5B%5D', '#frag', '%23']

function queryArb(route: FuzzRoute): fc.Arbitrary<string> {
  const known = Object.entries(route.query)
  const name = fc.oneof(
    { weight: known.length > 0 ? 6 : 1, arbitrary: known.length > 0 ? fc.constantFrom(...known.map(([k]) => k)) : fc.constantFrom('q', 'limit', 'after', 'page') },
    { weight: 1, arbitrary: fc.constantFrom(...JSON_INJECTION_KEYS, 'fields', 'limit[]', 'after[$gt]', 'name[0]', 'a.b', '__proto__[admin]', 'constructor[prototype][x]') },
    { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
  )
  const param = name.chain((k) => {
    const schema = route.query[k] ?? { type: 'string' }
    const v = fc.oneof(
      { weight: 5, arbitrary: typed(schema, 0).map((x) => (typeof x === 'string' ? x : JSON.stringify(x) ?? '')) },
      { weight: 2, arbitrary: hostileString },
      { weight: 1, arbitrary: fc.constantFrom('', '-1', '0', '1.5', '1e3', '1e309', 'NaN', 'Infinity', '0x10', '99999999999999999999999', 'true', 'null', '[1,2]', '{"$ne":null}') },
    )
    return fc.tuple(fc.constant(k), v, fc.integer({ min: 0, max: 9 }))
  }).map(([k, v, style]) => {
    // Mostly well encoded; sometimes raw bytes, bad escapes and repeated or bracketed keys.
    if (style === 0) return `${k}=${v.replace(/[\ud800-\udfff]/g, '')}` // raw (light-my-request encodes what URL parsing would)
    if (style === 1) return `${encodeURIComponent(k)}=${QUERY_SPECIALS[v.length % QUERY_SPECIALS.length]}`
    if (style === 2) return `${encodeURIComponent(k)}[]=${encodeQ(v)}&${encodeURIComponent(k)}[]=${encodeQ(v)}`
    if (style === 3) return `${encodeURIComponent(k)}`
    return `${encodeURIComponent(k)}=${encodeQ(v)}`
  })
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant('') },
    { weight: 6, arbitrary: fc.array(param, { minLength: 1, maxLength: 6 }).map((ps) => `?${ps.join('&')}`) },
    { weight: 1, arbitrary: fc.constantFrom('?', '??', '?&&&', '?=', '?=x', '?%', '?a=%zz', '?' + 'a=1&'.repeat(2000), '?x=' + 'é'.repeat(3000), '?%E0%A4%A=1') },
  )
}

const encodeQ = (v: string) => encodeURIComponent(v.replace(/[\ud800-\udfff]/g, '\ufffd'))

// Header values an HTTP/1.1 parser would pass on: tab, visible ASCII, and obs-text bytes (0x80–0xff, e.g. invalid UTF-8).
const headerValue = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }), fc.constant(9)).map((c) => String.fromCharCode(c)), maxLength: 60 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 15_000 }).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom(...SQL_INJECTIONS, '__proto__', '{"$ne":null}', '-1', '0', '') },
)
const headerName = fc.oneof(
  fc.constantFrom('x-request-id', 'accept', 'accept-encoding', 'accept-language', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded',
    'cookie', 'origin', 'referer', 'if-none-match', 'if-modified-since', 'range', 'x-http-method-override', 'user-agent', 'x-real-ip', 'prefer', 'expect-ct'),
  fc.stringMatching(/^[a-z][a-z0-9-]{0,30}$/),
)
const headersArb: fc.Arbitrary<Record<string, string | string[]>> = fc.array(
  fc.tuple(headerName, fc.oneof({ weight: 5, arbitrary: headerValue }, { weight: 1, arbitrary: fc.array(headerValue, { minLength: 2, maxLength: 3 }) })),
  { maxLength: 4 },
).map((pairs) => Object.fromEntries(pairs.filter(([k]) => !['host', 'content-length', 'transfer-encoding', 'authorization', 'content-type'].includes(k))))

const garbageAuthorization = fc.oneof(
  fc.constantFrom('GW1', 'GW1 ', 'GW1 a.b.c', 'GW1 ..', 'Bearer abc', 'Basic YWRtaW46YWRtaW4=', 'gw1 x', 'GW1  ' + 'A'.repeat(9000),
    'GW1 eyJhbGciOiJub25lIn0.eyJpc3MiOiJhZG1pbiJ9.', "GW1 ' OR 1=1 --", 'GW1 ' + Buffer.from('{"alg":"ES256","kid":"__proto__","typ":"gw1+jwt"}').toString('base64url') + '.e30.AAAA'),
  headerValue.map((v) => `GW1 ${v}`),
  headerValue,
  fc.tuple(fc.jsonValue({ maxDepth: 2 }), fc.jsonValue({ maxDepth: 2 })).map(([h, c]) => `GW1 ${Buffer.from(JSON.stringify(h) ?? 'null').toString('base64url')}.${Buffer.from(JSON.stringify(c) ?? 'null').toString('base64url')}.${Buffer.from('sig').toString('base64url')}`),
)

const METHODS_ODD = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'TRACE', 'PROPFIND', 'SEARCH']

const remoteAddress = fc.oneof(
  fc.ipV4(),
  fc.ipV6(),
)

/** One request at one route of the catalogue. */
export function requestArb(route: FuzzRoute): fc.Arbitrary<FuzzRequest> {
  const kinds = kindsFor(route.scope)
  const path = fc.tuple(...Object.entries(route.params).map(([, schema]) => paramArb(schema)))
    .chain((values) => fc.string({ unit: fc.constantFrom('a', 'b', '/', '.', '%2e', '%2f', '..', 'index.html', '%00', '~'), maxLength: 8 }).map((rest) => {
      let i = 0
      return route.url.replace(/:(\w+)/g, () => values[i++] ?? 'x').replace('*', rest)
    }))
  const auth: fc.Arbitrary<AuthSpec> = route.signed
    ? fc.oneof(
      { weight: 16, arbitrary: fc.constantFrom(...kinds).map((as) => ({ kind: 'signed', as }) as const) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('signed-stale' as const), as: fc.constantFrom(...kinds), tamper: fc.constantFrom('body' as const, 'path' as const, 'expired' as const) }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'none' } as const) },
      { weight: 2, arbitrary: garbageAuthorization.map((value) => ({ kind: 'garbage', value }) as const) },
    )
    : fc.oneof(
      { weight: 8, arbitrary: fc.constant({ kind: 'none' } as const) },
      { weight: 1, arbitrary: garbageAuthorization.map((value) => ({ kind: 'garbage', value }) as const) },
      { weight: 1, arbitrary: fc.constant({ kind: 'signed', as: 'agency' } as const) },
    )
  const method = fc.oneof({ weight: 20, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom(...METHODS_ODD) })
  return fc.record({ method, path, query: queryArb(route), body: bodyArb(route), headers: headersArb, auth, remoteAddress,
    contentType: fc.oneof({ weight: 12, arbitrary: fc.constant('application/json') }, { weight: 3, arbitrary: fc.constantFrom(...CONTENT_TYPES) }, { weight: 1, arbitrary: fc.constant(undefined) }),
  }).map(({ path: p, query, ...rest }) => ({ ...rest, route: `${route.method} ${route.url}`, url: normalizeUrl(p + query) }))
}

/** Every route: those taking a body three times as often as other API routes, static pages and docs half as often. */
export function fuzzRequestArb(routes: FuzzRoute[]): fc.Arbitrary<FuzzRequest> {
  const weight = (r: FuzzRoute) => (r.body ? 6 : r.url.startsWith('/v1/') || r.signed ? 2 : 1)
  return fc.oneof(...routes.map((r) => ({ weight: weight(r), arbitrary: requestArb(r) })))
}

/** The URL as light-my-request (and any WHATWG client) sends it: what a GW1 htu must sign. */
export function normalizeUrl(url: string): string {
  const u = new URL(url.startsWith('/') ? url : `/${url}`, 'http://localhost')
  return u.pathname + u.search
}

// ---------------------------------------------------------------------------------------------
// Sending and judging
// ---------------------------------------------------------------------------------------------

export function bodyBytes(body: BodySpec): Buffer | undefined {
  switch (body.kind) {
    case 'none': return undefined
    case 'json': return Buffer.from(JSON.stringify(body.value) ?? 'null')
    case 'text': return Buffer.from(body.text)
    case 'bytes': return Buffer.from(body.hex, 'hex')
    case 'deep': {
      const close = body.open === '[' ? ']' : '}'
      return Buffer.from(body.open.repeat(body.depth) + '1' + close.repeat(body.depth))
    }
    case 'huge': {
      if (!body.json) return Buffer.alloc(body.bytes, 0x61)
      const b = Buffer.alloc(body.bytes, 0x61)
      b.write('{"statement":"', 0)
      b.write('"}', body.bytes - 2)
      return b
    }
  }
}

export interface Signers { keys: Record<PrincipalKind, KeyFile>; audience: string; nowSeconds: () => number }

/** The inject options for a descriptor: signed over the exact bytes and path sent when it says so. */
export async function toInject(req: FuzzRequest, signers: Signers): Promise<InjectOptions> {
  const payload = bodyBytes(req.body)
  const headers: Record<string, string | string[]> = { ...req.headers }
  if (payload !== undefined && req.contentType !== undefined) headers['content-type'] = req.contentType
  const auth = req.auth
  if (auth.kind === 'garbage') headers.authorization = auth.value
  if (auth.kind === 'signed' || auth.kind === 'signed-stale') {
    const tamper = auth.kind === 'signed-stale' ? auth.tamper : undefined
    const { authorization } = await signRequest({
      method: req.method, pathWithQuery: tamper === 'path' ? `${req.url}x` : req.url,
      body: tamper === 'body' ? Buffer.concat([payload ?? Buffer.alloc(0), Buffer.from(' ')]) : payload,
      audience: signers.audience, key: signers.keys[auth.as], now: signers.nowSeconds() - (tamper === 'expired' ? 3600 : 0),
    })
    headers.authorization = authorization
  }
  return { method: req.method as never, url: req.url, headers, remoteAddress: req.remoteAddress, ...(payload !== undefined ? { payload } : {}) }
}

/** What is wrong with a response, if anything: a 5xx, or a 4xx that is not a complete problem+json. */
export function judge(req: FuzzRequest, res: LightMyRequestResponse): string | undefined {
  if (res.statusCode >= 500) return `${res.statusCode} ${res.body.slice(0, 200)}`
  if (res.statusCode < 400) return undefined
  const type = String(res.headers['content-type'] ?? '')
  if (!/^application\/problem\+json/.test(type)) return `${res.statusCode} with content-type ${type || '(none)'}: ${res.body.slice(0, 200)}`
  if (req.method === 'HEAD' && res.body === '') return undefined
  let body: { code?: unknown; status?: unknown; title?: unknown }
  try { body = JSON.parse(res.body) } catch { return `${res.statusCode} problem+json that is not JSON: ${res.body.slice(0, 200)}` }
  if (typeof body.code !== 'string' || body.status !== res.statusCode || typeof body.title !== 'string') {
    return `${res.statusCode} problem without string code, matching status and title: ${res.body.slice(0, 200)}`
  }
  return undefined
}

/** A descriptor short enough to print: long strings cut. */
export function describe(req: FuzzRequest): string {
  return JSON.stringify(req, (_k, v: unknown) => (typeof v === 'string' && v.length > 120 ? `${v.slice(0, 120)}…(${v.length})` : v))
}

// ---------------------------------------------------------------------------------------------
// The run: setup, the loop, the data and memory checks
// ---------------------------------------------------------------------------------------------

/** Gateway settings for fuzzing: a small global body limit keeps over-limit bodies cheap. */
export const FUZZ_ENV = { BODY_LIMIT_BYTES: String(HUGE_LIMITS.global) }

/** The fuzzing principals: one per kind with every scope of its kind, and a rate limit the run never reaches. */
export const FUZZ_PRINCIPALS: Array<{ id: string; kind: PrincipalKind; scopes: string[]; courtCode?: string; profile: Record<string, unknown> }> = [
  { id: 'fuzz-court', kind: 'court', scopes: [...SCOPES_BY_KIND.court], courtCode: '京0105', profile: { rateLimit: { max: 1_000_000, timeWindowSeconds: 1 } } },
  { id: 'fuzz-agency', kind: 'agency', scopes: [...SCOPES_BY_KIND.agency], profile: { lists: ['dishonest', 'restricted'], fields: ['name', 'caseNumber'], scenarios: ['TICKET_AIR', 'LOAN'], rateLimit: { max: 1_000_000, timeWindowSeconds: 1 } } },
  { id: 'fuzz-admin', kind: 'admin', scopes: [...SCOPES_BY_KIND.admin], profile: { rateLimit: { max: 1_000_000, timeWindowSeconds: 1 } } },
]

/**
 * A few listings pushed by the court before the baseline (a person, an entity with its
 * representative and officers), so matches hit, the public search finds, and appeals name a real
 * listing. Returns the values the fuzzer mixes into its strings.
 */
export async function seedFuzzData(app: FastifyInstance, signers: Signers): Promise<string[]> {
  const items = [personListing(1), personListing(2, { listKind: 'restricted', grounds: [] }), personListing(3), entityListing(4)]
  const payload = Buffer.from(JSON.stringify({ items }))
  const { authorization } = await signRequest({ method: 'POST', pathWithQuery: '/v1/listings', body: payload, audience: signers.audience, key: signers.keys.court, now: signers.nowSeconds() })
  const res = await app.inject({ method: 'POST', url: '/v1/listings', payload, headers: { authorization, 'content-type': 'application/json' } })
  const results = (res.json() as { results?: Array<{ status: string; listingId?: string }> }).results ?? []
  if (res.statusCode !== 200 || results.some((r) => r.status !== 'created')) throw new Error(`seeding listings failed: ${res.statusCode} ${res.body.slice(0, 500)}`)
  await app.matchSync.catchUp()
  const known = new Set<string>(results.map((r) => r.listingId!))
  const collect = (v: unknown): void => {
    if (typeof v === 'string' && v.length >= 2) known.add(v)
    else if (Array.isArray(v)) v.forEach(collect)
    else if (v && typeof v === 'object') Object.values(v).forEach(collect)
  }
  for (const item of items) collect({ subject: item.subject, restrictedPersons: item.restrictedPersons, caseNumber: item.caseNumber })
  const values = [...known, 'TICKET_AIR', 'dishonest', 'restricted', 'fuzz-court', 'fuzz-agency', 'fuzz-admin', '京0105']
  setKnownValues(values)
  return values
}

/** Rows of the domain tables (as in security.matrix.test.ts), and audit entries that are not refusals. */
export const DOMAIN_TABLES = ['principals', 'principal_keys', 'listings', 'listing_events', 'rule_sets', 'match_feedback', 'applications', 'subscriptions', 'certificates']
export async function domainState(query: <T>(sql: string) => Promise<T[]>): Promise<Record<string, number>> {
  const state: Record<string, number> = {}
  for (const table of DOMAIN_TABLES) state[table] = (await query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n
  state.audit = (await query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_entries WHERE action <> 'auth.refused'`))[0]!.n
  return state
}

/** heapUsed after a full GC (exposed at run time) and a few turns of the event loop. */
export async function settledHeap(): Promise<number> {
  const v8 = await import('node:v8')
  const vm = await import('node:vm')
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return process.memoryUsage().heapUsed
}

export interface FuzzStats {
  tried: number
  byClass: Record<string, number>
  byCode: Record<string, number>
  /** 5xx responses and 4xx that are not a complete problem+json: the request and what was wrong. */
  offenders: Array<{ request: string; problem: string }>
  fiveXX: number
  /** Signed requests (correctly signed) that got past authentication: reached validation or the handler. */
  signedReached: number
  signedTotal: number
  /** 2xx answers to POST, PUT, PATCH, DELETE: the only requests allowed to change data. */
  acceptedWrites: Record<string, number>
  /** Requests light-my-request itself refused to send (never reached the app). */
  injectErrors: Array<{ request: string; error: string }>
  ms: number
}

/**
 * Samples `runs` requests from the seed (in batches of 500, each batch its own derived seed so the
 * long run needs no memory for descriptors) and sends them one after another through app.inject.
 */
export async function runFuzz(app: FastifyInstance, opts: { routes: FuzzRoute[]; signers: Signers; seed: number; runs: number; progress?: (done: number, stats: FuzzStats) => void; onResponse?: (req: FuzzRequest, res: LightMyRequestResponse) => void }): Promise<FuzzStats> {
  const arb = fuzzRequestArb(opts.routes)
  const stats: FuzzStats = { tried: 0, byClass: {}, byCode: {}, offenders: [], fiveXX: 0, signedReached: 0, signedTotal: 0, acceptedWrites: {}, injectErrors: [], ms: 0 }
  const started = performance.now()
  const BATCH = 500
  for (let batch = 0; stats.tried < opts.runs; batch++) {
    const requests = fc.sample(arb, { seed: opts.seed + batch, numRuns: Math.min(BATCH, opts.runs - stats.tried) })
    for (const req of requests) {
      stats.tried++
      let res: LightMyRequestResponse
      try {
        res = await app.inject(await toInject(req, opts.signers))
      } catch (err) {
        stats.injectErrors.push({ request: describe(req), error: String(err) })
        continue
      }
      opts.onResponse?.(req, res)
      const cls = `${Math.floor(res.statusCode / 100)}xx`
      stats.byClass[cls] = (stats.byClass[cls] ?? 0) + 1
      let code = String(res.statusCode)
      if (res.statusCode >= 400 && res.body) { try { code = `${res.statusCode} ${(JSON.parse(res.body) as { code?: string }).code}` } catch { /* judged below */ } }
      stats.byCode[code] = (stats.byCode[code] ?? 0) + 1
      if (res.statusCode >= 500) stats.fiveXX++
      const problem = judge(req, res)
      if (problem) stats.offenders.push({ request: describe(req), problem })
      if (req.auth.kind === 'signed' && req.route.startsWith(`${req.method} `) && opts.routes.some((r) => `${r.method} ${r.url}` === req.route && r.signed)) {
        stats.signedTotal++
        if (res.statusCode !== 401 && res.statusCode !== 403) stats.signedReached++
      }
      if (res.statusCode < 300 && ['POST', 'PUT', 'PATCH', 'DELETE'].includes(req.method)) stats.acceptedWrites[req.route] = (stats.acceptedWrites[req.route] ?? 0) + 1
    }
    opts.progress?.(stats.tried, stats)
  }
  stats.ms = Math.round(performance.now() - started)
  return stats
}
