import { readFileSync } from 'node:fs'
import t from 'tap'
import { buildOpenapiDocument } from '../scripts/openapi-document.js'

t.test('the checked-in openapi/openapi.json is what the routes produce (run `npm run openapi`)', async (t) => {
  const committed = readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8')
  const current = await buildOpenapiDocument()
  t.equal(committed, current, 'openapi/openapi.json is stale: run `npm run openapi` and commit it')
})

t.test('every operation has an id, a summary, tags and a problem+json error response', async (t) => {
  const doc = JSON.parse(await buildOpenapiDocument()) as { openapi: string; paths: Record<string, Record<string, { operationId?: string; summary?: string; tags?: string[]; responses: Record<string, unknown> }>> }
  t.equal(doc.openapi, '3.1.0')
  for (const [path, ops] of Object.entries(doc.paths)) {
    if (path.startsWith('/docs')) continue
    for (const [method, op] of Object.entries(ops)) {
      t.ok(op.operationId, `${method} ${path} has an operationId`)
      t.ok(op.summary, `${method} ${path} has a summary`)
      t.ok(op.tags?.length, `${method} ${path} has tags`)
      t.ok(op.responses['400'], `${method} ${path} documents its errors`)
    }
  }
})
