import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { createKeyCache } from '../src/modules/principals/principals.key-cache.js'
import type { PrincipalsRepository } from '../src/modules/principals/principals.repository.js'

type Found = Awaited<ReturnType<PrincipalsRepository['findKeyWithPrincipal']>>
const publicJwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as Record<string, unknown>
const row = (status: 'active' | 'retired'): Found => ({
  key: { kid: 'k1', principalId: 'samr', alg: 'ES256', publicJwk, status, createdAt: new Date(), retiredAt: null },
  principal: { id: 'samr', kind: 'agency', name: 'SAMR', courtCode: null, scopes: ['match'], profile: {}, status: 'active', createdAt: new Date(), updatedAt: new Date() },
})

t.test('a cached key is served without a second read until cleared or 30 s old', async (t) => {
  let reads = 0
  let now = 0
  let current = row('active')
  const cache = createKeyCache({ findKeyWithPrincipal: async () => { reads++; return current } }, () => now)
  t.equal((await cache.lookup('k1'))?.status, 'active')
  t.equal((await cache.lookup('k1'))?.status, 'active')
  t.equal(reads, 1)
  current = row('retired')
  cache.clear()
  t.equal((await cache.lookup('k1'))?.status, 'retired', 'a clear (NOTIFY) makes the next look-up read again')
  now += 31_000
  await cache.lookup('k1')
  t.equal(reads, 3, 'entries expire after their TTL even without a NOTIFY')
})

t.test('unknown kids are cached too, so junk kids do not each cost a query', async (t) => {
  let reads = 0
  const cache = createKeyCache({ findKeyWithPrincipal: async () => { reads++; return undefined } })
  t.equal(await cache.lookup('nope'), undefined)
  t.equal(await cache.lookup('nope'), undefined)
  t.equal(reads, 1)
})

t.test('a look-up in flight during a clear does not put the stale key back', async (t) => {
  let release!: (v: Found) => void
  let reads = 0
  const cache = createKeyCache({
    findKeyWithPrincipal: () => { reads++; return reads === 1 ? new Promise<Found>((r) => { release = r }) : Promise.resolve(row('retired')) },
  })
  const inFlight = cache.lookup('k1')
  cache.clear() // the key is retired while the first read is still on its way back
  release(row('active'))
  t.equal((await inFlight)?.status, 'active', 'the racing request saw the old row')
  t.equal((await cache.lookup('k1'))?.status, 'retired', 'but the next one reads again instead of using it')
})
