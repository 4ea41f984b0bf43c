import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import { projectPath } from '../src/infra/paths.js'
import { testLogFile } from './helper.js'

/** How long a child may take to log "listening on" (tsx compiles on the fly). */
const START_TIMEOUT_MS = 20_000
/** After SIGTERM, how long before SIGKILL. */
const STOP_GRACE_MS = 3_000
const KEEP_LOG_LINES = 200

export interface GatewayProcess {
  name: string
  /** http://HOST:PORT as the child logged it. */
  url: string
  pid: number
  /** The last lines the child wrote (stdout and stderr), for failure messages. */
  log(): string
  /** SIGTERM, then SIGKILL after a grace period; resolves once the child has exited. Idempotent. */
  stop(): Promise<void>
}

/** Environment for the child; without DATABASE_URL it runs on embedded PGlite under DATA_DIR. */
export interface GatewayEnv {
  DATABASE_URL?: string
  GATEWAY_SIGNING_KEY?: string
  GATEWAY_ID?: string
  [name: string]: string | undefined
}

/** Children still alive, killed synchronously if the test process exits without its teardowns. */
const alive = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of alive) { try { child.kill('SIGKILL') } catch { /* already gone */ } }
})

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => { child.off('exit', onExit); resolve(false) }, ms)
    const onExit = () => { clearTimeout(timer); resolve(true) }
    child.once('exit', onExit)
  })
}

/**
 * Starts `node --import tsx src/server.ts` as a child process on PORT=0 and resolves with the URL it
 * logged. The child is stopped in `t.teardown` (SIGTERM, then SIGKILL), and killed outright if the
 * test process exits first.
 */
export async function startGateway(t: Test, name: string, env: GatewayEnv): Promise<GatewayProcess> {
  const dataDir = mkdtempSync(join(tmpdir(), `cgw-${name}-`))
  const childEnv: NodeJS.ProcessEnv = { ...process.env }
  // The test runner's loaders and coverage hooks are not part of the gateway under test.
  delete childEnv.NODE_OPTIONS
  delete childEnv.NODE_V8_COVERAGE
  Object.assign(childEnv, {
    PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', SEED_DEMO: 'false', DATA_DIR: dataDir,
    // Load shedding off unless a test asks: two cores running the whole suite lag every loop now and then.
    OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0', ...env,
  })
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: projectPath('.'), env: childEnv, stdio: ['ignore', 'pipe', 'pipe'],
  })
  alive.add(child)

  const lines: string[] = []
  // Every line also goes to the suite's log directory, which the privacy check reads (test/log-privacy.ts).
  const logCopy = createWriteStream(testLogFile(`child-${name}-${child.pid}`), { flags: 'a' })
  child.once('exit', () => logCopy.end())
  const keep = (line: string) => { logCopy.write(`${line}\n`); lines.push(line); if (lines.length > KEEP_LOG_LINES) lines.shift() }
  const log = () => lines.join('\n')

  let stopping: Promise<void> | undefined
  const stop = () => {
    stopping ??= (async () => {
      if (!exited(child)) {
        child.kill('SIGTERM')
        if (!(await waitForExit(child, STOP_GRACE_MS))) {
          child.kill('SIGKILL')
          await waitForExit(child, STOP_GRACE_MS)
        }
      }
      alive.delete(child)
      rmSync(dataDir, { recursive: true, force: true })
    })()
    return stopping
  }
  t.teardown(stop)

  const url = await new Promise<string>((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer)
      reject(new Error(`gateway ${name} ${why}\n--- its output ---\n${log()}`))
    }
    const timer = setTimeout(() => fail(`did not log "listening on" within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS)
    child.once('error', (err) => fail(`could not be spawned: ${err.message}`))
    child.once('exit', (code, signal) => fail(`exited before listening (code ${code}, signal ${signal})`))
    createInterface({ input: child.stderr! }).on('line', (line) => keep(`[stderr] ${line}`))
    createInterface({ input: child.stdout! }).on('line', (line) => {
      keep(line)
      const m = /listening on (http:\/\/[^\s"]+)/.exec(line)
      if (m) { clearTimeout(timer); resolve(m[1]!) }
    })
  }).catch(async (err: unknown) => { await stop(); throw err })

  return { name, url, pid: child.pid!, log, stop }
}
