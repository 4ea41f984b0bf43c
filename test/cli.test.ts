import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { projectPath } from '../src/infra/paths.js'
import { startGateway } from './processes.js'

const run = promisify(execFile)

/** Runs an npm script the way the README does, from the project root, with a clean environment. */
async function npmRun(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env }
  delete childEnv.NODE_OPTIONS
  delete childEnv.NODE_V8_COVERAGE
  delete childEnv.DATABASE_URL
  try {
    const { stdout, stderr } = await run('npm', ['run', '--silent', ...args], { cwd: projectPath('.'), env: childEnv, timeout: 60_000 })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

function tempDir(t: Test, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `cgw-${name}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('the demo start seeds principals and its printed signed call works as printed', async (t) => {
  const dataDir = tempDir(t, 'demo')
  const gw = await startGateway(t, 'demo', { DATA_DIR: dataDir, SEED_DEMO: 'true' })
  for (const id of ['admin-demo', 'court-bj-0105', 'court-bj-03', 'caac', 'samr', 'mof']) {
    const file = join(dataDir, 'demo-keys', `${id}.json`)
    t.equal(JSON.parse(readFileSync(file, 'utf8')).principalId, id, `${id} key file written`)
    t.equal(statSync(file).mode & 0o077, 0, `${id} key file readable by its owner only`)
  }
  const printed = /npm run client -- (.+)$/m.exec(gw.log())
  t.ok(printed, 'a copy-paste command is printed')
  const res = await npmRun(['client', '--', ...printed![1]!.trim().split(/\s+/)], {})
  t.equal(res.code, 0, res.stderr)
  t.match(res.stderr, /HTTP 200 · response signature verified/)
  const ids = (JSON.parse(res.stdout) as { items: { id: string }[] }).items.map((p) => p.id).sort()
  t.same(ids, ['admin-demo', 'caac', 'court-bj-0105', 'court-bj-03', 'mof', 'samr'])
})

t.test('the bootstrap CLI creates the first admin, whose key then signs calls; it never overwrites', async (t) => {
  const dataDir = tempDir(t, 'bootstrap')
  const keyFile = join(dataDir, 'root.json')
  const created = await npmRun(['principal', '--', 'create-admin', '--id', 'root', '--alg', 'EdDSA', '--out', keyFile], { DATA_DIR: dataDir })
  t.equal(created.code, 0, created.stderr)
  t.match(created.stdout, /created admin root/)
  t.equal(statSync(keyFile).mode & 0o077, 0, 'key file mode 0600')
  const again = await npmRun(['principal', '--', 'create-admin', '--id', 'root', '--out', join(dataDir, 'other.json')], { DATA_DIR: dataDir })
  t.equal(again.code, 1, 'a second admin under the same id is refused')
  t.throws(() => statSync(join(dataDir, 'other.json')), 'and leaves no key file behind')

  const gw = await startGateway(t, 'bootstrap', { DATA_DIR: dataDir, SEED_DEMO: 'false' })
  const who = await npmRun(['client', '--', '--url', gw.url, '--key', keyFile, 'GET', '/v1/whoami'], {})
  t.equal(who.code, 0, who.stderr)
  const me = JSON.parse(who.stdout) as { id: string; kind: string; scopes: string[] }
  t.equal(me.id, 'root')
  t.equal(me.kind, 'admin')
  t.ok(me.scopes.includes('principals:write'))
  const denied = await npmRun(['client', '--', '--url', gw.url, '--key', keyFile, 'POST', '/v1/principals', '--data', '{"id":"x"}'], {})
  t.equal(denied.code, 1, 'HTTP >= 400 exits 1')
  t.match(denied.stdout, /request.validation/)
})
