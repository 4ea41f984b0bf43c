import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from 'jose'
import t, { type Test } from 'tap'
import { createDeliveryRepository } from '../src/modules/delivery/delivery.repository.js'
import { createDeliveryService } from '../src/modules/delivery/delivery.service.js'
import { buildTestGateway } from './helper.js'
import { entityListing, personListing } from './factories.js'

const NOON_2026_03_02 = Date.parse('2026-03-02T04:00:00Z')
const FAST = { WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_RETRY_BASE_MS: '1000', WEBHOOK_RETRY_MAX_MS: '4000', WEBHOOK_TIMEOUT_MS: '300', WEBHOOK_PAUSE_AFTER_SECONDS: '600', WEBHOOK_POLL_MS: '60000' }

interface Received { seq: number; kind: string; listingId: string; signature: string; body: Buffer }

/** A webhook receiver on loopback whose behaviour the test switches. */
async function receiver(t: Test) {
  const got: Received[] = []
  let mode: 'ok' | 'fail' | 'redirect' | 'slow' = 'ok'
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (mode === 'fail') { res.writeHead(500).end(); return }
      if (mode === 'redirect') { res.writeHead(302, { location: 'http://127.0.0.1:1/' }).end(); return }
      if (mode === 'slow') { setTimeout(() => res.writeHead(200).end(), 1000); return }
      const body = Buffer.concat(chunks)
      const { event } = JSON.parse(body.toString('utf8'))
      got.push({ seq: event.seq, kind: event.kind, listingId: event.listingId, signature: String(req.headers['x-gw-signature']), body })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => new Promise<void>((r) => server.close(() => r())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, set: (m: typeof mode) => { mode = m } }
}

async function setup(t: Test, env: Record<string, string> = FAST) {
  const gw = await buildTestGateway(t, env)
  gw.clock.set(NOON_2026_03_02)
  const court = await gw.addPrincipal({ id: 'court-bj-0105', kind: 'court', courtCode: '京0105', scopes: ['listings:write'] })
  const caac = await gw.addPrincipal({ id: 'caac', kind: 'agency', scopes: ['changes:read'], profile: { lists: ['dishonest', 'restricted'], fields: ['name'] } })
  const samr = await gw.addPrincipal({ id: 'samr', kind: 'agency', scopes: ['changes:read'], profile: { lists: ['dishonest'], fields: ['name'] } })
  return { gw, court, caac, samr }
}

t.test('events are delivered in order, signed, and the state is visible', async (t) => {
  const { gw, court, caac } = await setup(t)
  const hook = await receiver(t)
  const sub = await gw.signed(caac, 'POST', '/v1/subscriptions', { url: hook.url })
  t.equal(sub.statusCode, 201, sub.body)
  // Past ten events, so that an order by the text of the sequence ('10' < '9') would show.
  const pushed = await gw.signed(court, 'POST', '/v1/listings', { items: [...Array.from({ length: 11 }, (_, i) => personListing(i + 1)), entityListing(30)] })
  await gw.signed(court, 'POST', `/v1/listings/${pushed.json().results[0].listingId}/removal`, { reason: 'performed' })
  t.equal(await gw.app.delivery.runOnce(), 13)
  t.same(hook.got.map((r) => r.kind), [...Array(12).fill('published'), 'removed'])
  t.same(hook.got.map((r) => r.seq), [...hook.got.map((r) => r.seq)].sort((a, b) => a - b), 'in sequence order')
  const jwks = createLocalJWKSet((await gw.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json())
  for (const r of hook.got) {
    const [h, , s] = r.signature.split('.')
    await compactVerify(`${h}.${r.body.toString('base64url')}.${s}`, jwks)
    t.match(decodeProtectedHeader(r.signature), { sub: sub.json().id, seq: r.seq }, 'the signature is bound to the subscription and sequence')
  }
  t.notOk(JSON.parse(hook.got[0]!.body.toString()).event.listing.subject.idNumber, 'the listing is projected to the agency fields')
  const state = (await gw.signed(caac, 'GET', `/v1/subscriptions/${sub.json().id}/deliveries`)).json()
  t.equal(state.subscription.ackedSeq, hook.got[12]!.seq)
  t.same(state.attempts.map((a: { seq: number; ok: boolean; httpStatus: number }) => [a.seq, a.ok, a.httpStatus]), hook.got.map((r) => [r.seq, true, 204]).reverse(), 'every attempt, newest first')
  t.equal(await gw.app.delivery.runOnce(), 0, 'nothing twice')
})

t.test('a failing receiver: retries with backoff, no event lost or reordered; paused after the limit and resumed', async (t) => {
  const { gw, court, caac, samr } = await setup(t)
  const hook = await receiver(t)
  const sub = (await gw.signed(samr, 'POST', '/v1/subscriptions', { url: hook.url, eventKinds: ['published'] })).json()
  await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), entityListing(3), personListing(2)] })
  for (const [mode, error] of [['fail', /HTTP 500/], ['redirect', /redirects are not followed/], ['slow', /no answer within 300 ms/]] as const) {
    hook.set(mode)
    gw.clock.advance(10)
    t.equal(await gw.app.delivery.runOnce(), 0, mode)
    const state = (await gw.signed(samr, 'GET', `/v1/subscriptions/${sub.id}/deliveries`)).json()
    t.match(state.attempts[0], { ok: false, error }, mode)
    t.equal(state.subscription.ackedSeq, sub.ackedSeq, 'the cursor stays')
    t.ok(Date.parse(state.subscription.nextAttemptAt) > gw.clock.nowMs(), 'the next attempt is later')
    const attempts = state.attempts.length
    t.equal(await gw.app.delivery.runOnce(), 0)
    t.equal((await gw.signed(samr, 'GET', `/v1/subscriptions/${sub.id}/deliveries`)).json().attempts.length, attempts, 'not retried before its time')
  }
  hook.set('fail')
  gw.clock.advance(601)
  await gw.app.delivery.runOnce()
  t.equal((await gw.signed(samr, 'GET', `/v1/subscriptions/${sub.id}`)).json().status, 'paused', 'failing for over 600 s: paused')
  hook.set('ok')
  gw.clock.advance(3600)
  t.equal(await gw.app.delivery.runOnce(), 0, 'a paused subscription gets nothing')
  t.equal((await gw.signed(samr, 'PATCH', `/v1/subscriptions/${sub.id}`, { status: 'active' })).json().status, 'active')
  t.equal(await gw.app.delivery.runOnce(), 2, 'resumed from the last acknowledged event')
  t.same(hook.got.map((r) => r.kind), ['published', 'published'], 'the restricted listing is outside samr’s lists')
  void caac
})

t.test('two workers on one database never deliver an event twice', async (t) => {
  const { gw, court, caac } = await setup(t)
  const hook = await receiver(t)
  for (let i = 0; i < 5; i++) await gw.signed(caac, 'POST', '/v1/subscriptions', { url: `${hook.url}?n=${i}` })
  await gw.signed(court, 'POST', '/v1/listings', { items: [personListing(1), personListing(2)] })
  const options = { allowPrivateNetworks: true, timeoutMs: 2000, retryBaseMs: 1000, retryMaxMs: 4000, pauseAfterSeconds: 600, pollMs: 60_000 }
  const other = createDeliveryService({ repo: createDeliveryRepository(gw.database), clock: gw.clock, gatewayKeys: gw.gatewayKeys, options, log: { warn: () => {} }, principalOf: async () => ({ id: 'caac', kind: 'agency', name: 'caac', courtCode: null, scopes: ['changes:read'], profile: { lists: ['dishonest', 'restricted'], fields: ['name'] }, status: 'active' }) })
  const [a, b] = await Promise.all([gw.app.delivery.runOnce(), other.runOnce()])
  t.equal(a + b, 10, `5 subscriptions × 2 events (${a} + ${b})`)
  t.equal(hook.got.length, 10)
  t.equal(new Set(hook.got.map((r) => `${JSON.parse(r.body.toString()).subscriptionId}/${r.seq}`)).size, 10, 'each (subscription, event) once')
})

t.test('bad subscriptions are refused', async (t) => {
  const { gw, caac, samr, court } = await setup(t)
  const hook = await receiver(t)
  const cases: [unknown, number, string][] = [
    [{ url: 'ftp://example.cn/x' }, 400, 'subscriptions.bad_url'],
    [{ url: 'https://user:pw@example.cn/x' }, 400, 'subscriptions.bad_url'],
    [{ url: 'not a url' }, 400, 'subscriptions.bad_url'],
    [{ url: `https://example.cn/${'x'.repeat(2100)}` }, 400, 'request.validation'],
    [{ url: hook.url, listKinds: ['restricted'] }, 400, 'subscriptions.list_not_allowed'],
    [{ url: hook.url, eventKinds: ['deleted'] }, 400, 'request.validation'],
    [{ url: hook.url, afterSeq: 999_999 }, 400, 'subscriptions.bad_seq'],
    [{ url: hook.url, principalId: 'caac' }, 403, 'subscriptions.not_allowed'],
  ]
  for (const [body, status, code] of cases) {
    const res = await gw.signed(samr, 'POST', '/v1/subscriptions', body)
    t.equal(res.statusCode, status, JSON.stringify(body).slice(0, 80))
    t.equal(res.json().code, code)
  }
  const theirs = (await gw.signed(caac, 'POST', '/v1/subscriptions', { url: hook.url })).json()
  t.equal((await gw.signed(samr, 'GET', `/v1/subscriptions/${theirs.id}`)).json().code, 'subscriptions.not_found', 'another agency’s subscription is not found')
  t.equal((await gw.signed(samr, 'DELETE', `/v1/subscriptions/${theirs.id}`)).statusCode, 404)
  t.equal((await gw.signed(court, 'POST', '/v1/subscriptions', { url: hook.url })).statusCode, 403)
  t.same((await gw.signed(samr, 'GET', '/v1/subscriptions')).json().items, [], 'nothing was created for samr')

  const strict = await setup(t, {})
  const local = await strict.gw.signed(strict.samr, 'POST', '/v1/subscriptions', { url: hook.url })
  t.equal(local.statusCode, 400)
  t.equal(local.json().code, 'subscriptions.disallowed_network', 'loopback is refused unless configured')
  t.equal((await strict.gw.signed(strict.samr, 'POST', '/v1/subscriptions', { url: 'https://[::1]:8443/x' })).json().code, 'subscriptions.disallowed_network')
  t.equal((await strict.gw.signed(strict.samr, 'POST', '/v1/subscriptions', { url: 'http://10.1.2.3/x' })).json().code, 'subscriptions.disallowed_network')
})
