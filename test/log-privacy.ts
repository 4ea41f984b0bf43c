import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseCreditCode, parseResidentId } from '../src/modules/identity/identity.models.js'
import { projectPath } from '../src/infra/paths.js'

/**
 * The privacy check of issue 9 item 6: every log line the test suite produced (each in-process
 * gateway logs to a file here; each child gateway's output is copied here) is searched for identity
 * numbers and key material. Nothing of either may ever be logged in clear (DESIGN.md, security).
 */
export const TEST_LOG_DIR = projectPath('test-artifacts/logs')

/** Shaped like a resident id (18 or legacy 15) or a credit code, not inside a longer token. */
const IDENTIFIER_SHAPE = /(?<![0-9A-Za-z])(\d{17}[\dXx]|\d{15}|[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10})(?![0-9A-Za-z])/g
/** Private key material: a JWK's private members, a PEM private key, a GW1 token (a live credential). */
const KEY_MATERIAL = [
  { kind: 'private JWK member', pattern: /"(d|p|q|dp|dq|qi)"\s*:\s*"[A-Za-z0-9_-]{32,}"/ },
  { kind: 'PEM private key', pattern: /-----BEGIN [A-Z ]*PRIVATE KEY-----/ },
  { kind: 'GW1 token', pattern: /GW1 eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/ },
]

/** The seeded numbers of the shared vectors, valid or not: a rejected one must not be logged either. */
function vectorIdentifiers(): Set<string> {
  const file = projectPath('../shared/vectors/identifiers.json')
  if (!existsSync(file)) return new Set()
  const found = readFileSync(file, 'utf8').match(/"[0-9A-Z]{15,18}"/g) ?? []
  return new Set(found.map((s) => s.slice(1, -1)))
}

export interface PrivacyFinding { file: string; line: number; kind: string; excerpt: string }

/** An identity number is reported by its kind and position only: the report must not leak it either. */
function mask(text: string): string {
  return text.length <= 6 ? '***' : `${text.slice(0, 3)}***${text.slice(-2)}`
}

export function findPrivateData(text: string, file = '-', seeded = vectorIdentifiers()): PrivacyFinding[] {
  const findings: PrivacyFinding[] = []
  text.split('\n').forEach((raw, i) => {
    let line = raw
    try { line = decodeURIComponent(raw) } catch { /* not percent-encoded */ }
    for (const m of line.matchAll(IDENTIFIER_SHAPE)) {
      const candidate = m[1]!.toUpperCase()
      const kind = parseResidentId(candidate).ok ? 'resident id' : parseCreditCode(candidate).ok ? 'credit code' : seeded.has(candidate) ? 'seeded identifier' : undefined
      if (kind) findings.push({ file, line: i + 1, kind, excerpt: mask(candidate) })
    }
    for (const { kind, pattern } of KEY_MATERIAL) {
      const m = pattern.exec(line)
      if (m) findings.push({ file, line: i + 1, kind, excerpt: `${m[0].slice(0, 12)}…` })
    }
  })
  return findings
}

export interface LogScan { files: number; lines: number; requestLines: number; findings: PrivacyFinding[] }

export function scanLogDir(dir = TEST_LOG_DIR): LogScan {
  const scan: LogScan = { files: 0, lines: 0, requestLines: 0, findings: [] }
  if (!existsSync(dir)) return scan
  const seeded = vectorIdentifiers()
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.log')).sort()) {
    const text = readFileSync(join(dir, name), 'utf8')
    scan.files++
    scan.lines += text.split('\n').filter(Boolean).length
    scan.requestLines += text.match(/"req":\{/g)?.length ?? 0
    scan.findings.push(...findPrivateData(text, name, seeded))
  }
  return scan
}
