/**
 * Summarises a V8 CPU profile of the gateway (`BENCH_CPU_PROF=1 npm run bench` writes one to
 * bench/results/profiles/): the functions and the modules with the most self time, over the whole
 * profile or, given the run's results JSON, per measured phase (each phase records its window on
 * CLOCK_MONOTONIC, the clock of the profile's timestamps).
 *
 *   npx tsx bench/profile-summary.ts bench/results/profiles/CPU.….cpuprofile [bench/results/<run>.json] [--top 15] [--phase match]
 *
 * Only the gateway's main thread is profiled: the threadpool (the ES256/EdDSA/RS256 verify of the
 * requests, the response signature) does not appear; PGlite's WebAssembly does, as wasm functions
 * of the @electric-sql/pglite module. `(idle)` is the event loop waiting; `(program)` is native code
 * outside JavaScript (libuv, the HTTP parser's glue, PGlite's host calls); `(garbage collector)` is GC.
 */
import { readFileSync } from 'node:fs'

interface CallFrame { functionName: string; url: string; lineNumber: number; columnNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples: number[]; timeDeltas: number[] }
interface Phase { target: string; server?: string; monotonicWindowUs?: [number, number] }

function parseArgs(argv: string[]) {
  const files: string[] = []
  let top = 15
  let phaseFilter: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--top') top = Number(argv[++i])
    else if (a === '--phase') phaseFilter = argv[++i]
    else files.push(a)
  }
  if (files.length === 0) {
    console.error('usage: tsx bench/profile-summary.ts <profile.cpuprofile> [results.json] [--top N] [--phase substring]')
    process.exit(2)
  }
  return { profileFile: files[0]!, resultsFile: files[1], top, phaseFilter }
}

/** A readable module name for a script url: a package, a src/ file, node's internals. */
function moduleOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)'
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  if (url.startsWith('node:')) return url
  const src = url.indexOf('/src/')
  if (src >= 0) return url.slice(src + 1)
  return url.replace(/^file:\/\//, '')
}

function frameName(f: CallFrame): string {
  const where = f.url ? `${moduleOf(f.url, f.functionName)}:${f.lineNumber + 1}` : ''
  return `${f.functionName || '(anonymous)'}${where ? ` ${where}` : ''}`
}

function summarize(profile: CpuProfile, from: number, to: number, top: number): string[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const selfByFn = new Map<string, number>()
  const selfByModule = new Map<string, number>()
  let total = 0
  let t = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0
    // The time until the next sample belongs to this one (as in Chrome's DevTools).
    const dt = profile.timeDeltas[i + 1] ?? 0
    if (t < from || t >= to) continue
    const node = byId.get(profile.samples[i]!)
    if (!node) continue
    total += dt
    const name = frameName(node.callFrame)
    selfByFn.set(name, (selfByFn.get(name) ?? 0) + dt)
    const mod = moduleOf(node.callFrame.url, node.callFrame.functionName)
    selfByModule.set(mod, (selfByModule.get(mod) ?? 0) + dt)
  }
  const idle = selfByFn.get('(idle)') ?? 0
  const busy = total - idle
  const lines = [`  ${(total / 1e6).toFixed(1)} s sampled, event loop busy ${(busy / 1e6).toFixed(1)} s (${((busy / Math.max(total, 1)) * 100).toFixed(0)}%); shares below are of the busy time`]
  const pct = (v: number) => `${((v / Math.max(busy, 1)) * 100).toFixed(1).padStart(5)}%`
  const rows = (m: Map<string, number>) => [...m.entries()].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, top)
  lines.push('  self time by module:')
  for (const [k, v] of rows(selfByModule)) lines.push(`    ${pct(v)}  ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`)
  lines.push('  self time by function:')
  for (const [k, v] of rows(selfByFn)) lines.push(`    ${pct(v)}  ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`)
  return lines
}

const { profileFile, resultsFile, top, phaseFilter } = parseArgs(process.argv.slice(2))
const profile = JSON.parse(readFileSync(profileFile, 'utf8')) as CpuProfile
if (!resultsFile) {
  console.log(`${profileFile}: whole profile`)
  for (const l of summarize(profile, -Infinity, Infinity, top)) console.log(l)
} else {
  const phases = (JSON.parse(readFileSync(resultsFile, 'utf8')) as { results: Phase[] }).results
  for (const p of phases) {
    if (!p.monotonicWindowUs) continue
    if (phaseFilter && !p.target.includes(phaseFilter)) continue
    const [from, to] = p.monotonicWindowUs
    if (p.server === 'baseline' || to < profile.startTime || from > profile.endTime) continue // the baseline's phases: the gateway idled
    console.log(`${p.target} (measured ${((to - from) / 1e6).toFixed(1)} s)`)
    for (const l of summarize(profile, from, to, top)) console.log(l)
    console.log('')
  }
}
