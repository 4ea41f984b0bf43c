import t from 'tap'
import { buildTestGateway } from './helper.js'

/** Keeps this process's event loop lagging, as a flood of CPU-heavy requests would: busy turns of 150 ms for about 1.5 s. */
async function stall() {
  for (let i = 0; i < 10; i++) {
    const until = performance.now() + 150
    while (performance.now() < until) { /* busy */ }
    await new Promise((r) => setImmediate(r)) // the loop turns: timers, the delay monitor and the sampler run, late
  }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('a lagging event loop sheds new requests with 503 service.overloaded and Retry-After, then recovers', async (t) => {
  const gw = await buildTestGateway(t, { OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '50', OVERLOAD_SAMPLE_INTERVAL_MS: '50' })
  await gw.app.ready()
  const search = () => gw.app.inject({ url: '/v1/public/listings?name=%E5%BC%A0%E4%B8%89' })
  const served = async () => {
    for (let i = 0; i < 60; i++) {
      if ((await search()).statusCode === 200) return true
      await sleep(50)
    }
    return false
  }
  t.ok(await served(), 'served once the start-up work is behind it and the loop is idle')

  await stall()
  const shed = await search()
  t.equal(shed.statusCode, 503, 'shed while the loop lags')
  t.equal(shed.headers['retry-after'], '1')
  t.match(shed.headers['content-type'], /application\/problem\+json/)
  t.match(shed.json(), { status: 503, code: 'service.overloaded' })
  t.equal((await gw.app.inject({ url: '/healthz' })).statusCode, 200, 'liveness still answers')
  const metrics = await gw.app.inject({ url: '/metrics' })
  t.match(metrics.body, /gateway_requests_shed_total\{reason="eventLoopDelay"\} [1-9]/, 'the shedding is counted')

  t.ok(await served(), 'served again once the loop keeps up')
})

t.test('with the checks set to 0 nothing is shed', async (t) => {
  const gw = await buildTestGateway(t, { OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', OVERLOAD_SAMPLE_INTERVAL_MS: '50' })
  await gw.app.ready()
  await stall()
  t.equal((await gw.app.inject({ url: '/v1/public/listings?name=%E5%BC%A0%E4%B8%89' })).statusCode, 200)
})
