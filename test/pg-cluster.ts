/**
 * A private, throwaway PostgreSQL cluster for fault tests that stop and restart the database. The
 * machine's shared PostgreSQL (port 5432, used concurrently by other tests and CI) is never touched:
 * initdb + pg_ctl from /usr/lib/postgresql/<version>/bin build a cluster in a fresh temporary
 * directory, listening on a free port on 127.0.0.1 with its unix socket in that directory too.
 * initdb refuses to run as root, so as root every command runs as the `postgres` OS user (runuser).
 */
import { execFile, execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { Test } from 'tap'

export interface PrivateCluster {
  /** postgres://postgres@127.0.0.1:PORT/postgres (trust authentication). */
  url: string
  port: number
  dir: string
  /** Stops the server (`pg_ctl stop -m MODE`, default fast) and waits until it is down. */
  stop(mode?: 'smart' | 'fast' | 'immediate'): Promise<void>
  /** Starts it again and resolves once it accepts connections (`pg_ctl start -w`). */
  start(): Promise<void>
  restart(mode?: 'smart' | 'fast' | 'immediate'): Promise<void>
  /** The server log so far (for failure messages). */
  log(): Promise<string>
}

const PG_ROOT = '/usr/lib/postgresql'
const RUNUSER = '/usr/sbin/runuser'

/** The newest installed server's bin directory with initdb and pg_ctl, or undefined. */
function findBinDir(): string | undefined {
  if (!existsSync(PG_ROOT)) return undefined
  const versions = readdirSync(PG_ROOT).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
  for (const v of versions) {
    const bin = join(PG_ROOT, v, 'bin')
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin
  }
  return undefined
}

function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, env: { ...process.env, LC_ALL: 'C', LANG: 'C' } }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}${stdout}`), { cause: err }))
      else resolve({ stdout, stderr })
    })
  })
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

/**
 * Why a private cluster cannot be made here, or undefined when it can. Tests skip with this reason.
 */
export async function privateClusterUnavailable(): Promise<string | undefined> {
  if (!findBinDir()) return `no PostgreSQL server binaries (initdb, pg_ctl) under ${PG_ROOT}/*/bin`
  if (process.getuid?.() === 0) {
    if (!existsSync(RUNUSER)) return `running as root but ${RUNUSER} is missing (initdb refuses root)`
    try { await run('id', ['-u', 'postgres']) } catch { return 'running as root but there is no `postgres` OS user to run initdb as' }
  }
  return undefined
}

/**
 * initdb + start a cluster in a temporary directory on a free port; `t.teardown` stops it
 * (`pg_ctl stop -m immediate`) and removes the directory. Call privateClusterUnavailable() first
 * to skip where it cannot work.
 */
export async function startPrivateCluster(t: Test, opts: { name?: string } = {}): Promise<PrivateCluster> {
  const bin = findBinDir()
  if (!bin) throw new Error(`no PostgreSQL server binaries under ${PG_ROOT}/*/bin`)
  const asRoot = process.getuid?.() === 0
  let owner: { uid: number; gid: number } | undefined
  if (asRoot) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim())
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim())
    owner = { uid, gid }
  }
  const pgCmd = (tool: string, args: string[], timeoutMs?: number) =>
    asRoot ? run(RUNUSER, ['-u', 'postgres', '--', join(bin, tool), ...args], timeoutMs) : run(join(bin, tool), args, timeoutMs)

  const dir = mkdtempSync(join(tmpdir(), `cgw-pg-${opts.name ?? 'cluster'}-`))
  const data = join(dir, 'data')
  const logFile = join(dir, 'server.log')
  if (owner) chownSync(dir, owner.uid, owner.gid)
  const port = await freePort()
  let running = false
  let removed = false

  const teardown = async () => {
    if (removed) return
    removed = true
    if (running || existsSync(join(data, 'postmaster.pid'))) {
      await pgCmd('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w', '-t', '30']).catch(() => {})
    }
    running = false
    rmSync(dir, { recursive: true, force: true })
  }
  t.teardown(teardown)
  // A test process that dies without its teardowns must not leave a server behind.
  process.once('exit', () => {
    if (removed) return
    try {
      const args = ['stop', '-D', data, '-m', 'immediate']
      if (asRoot) execFileSync(RUNUSER, ['-u', 'postgres', '--', join(bin, 'pg_ctl'), ...args], { stdio: 'ignore' })
      else execFileSync(join(bin, 'pg_ctl'), args, { stdio: 'ignore' })
      rmSync(dir, { recursive: true, force: true })
    } catch { /* best effort */ }
  })

  const started = performance.now()
  // --no-sync only speeds up initdb's own files; the server runs with fsync on (the default).
  await pgCmd('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C'])
  const serverOptions = [
    `-p ${port}`, '-c listen_addresses=127.0.0.1', `-k ${dir}`, '-c fsync=on', '-c max_connections=100',
  ].join(' ')
  const start = async () => {
    try {
      await pgCmd('pg_ctl', ['start', '-D', data, '-w', '-t', '30', '-l', logFile, '-o', serverOptions])
    } catch (err) {
      let tail = ''
      try { tail = readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n') } catch { /* no log yet */ }
      throw Object.assign(new Error(`${(err as Error).message}\n--- server log ---\n${tail}`), { cause: err })
    }
    running = true
  }
  const stop = async (mode: 'smart' | 'fast' | 'immediate' = 'fast') => {
    await pgCmd('pg_ctl', ['stop', '-D', data, '-m', mode, '-w', '-t', '30'])
    running = false
  }
  await start()
  t.comment(`private PostgreSQL (${bin}) on 127.0.0.1:${port} in ${dir}: initdb + start took ${(performance.now() - started).toFixed(0)} ms`)

  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    dir,
    stop,
    start,
    async restart(mode = 'fast') { await stop(mode); await start() },
    async log() {
      try { return readFileSync(logFile, 'utf8') } catch { return '' }
    },
  }
}
