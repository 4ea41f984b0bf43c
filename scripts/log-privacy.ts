/**
 * `npm test` runs this before the suite with --clear and after it without: it fails when any log
 * line the suite produced holds an identity number or key material (test/log-privacy.ts), or when
 * the suite produced no request logs at all (the check would then prove nothing).
 */
import { rmSync } from 'node:fs'
import { scanLogDir, TEST_LOG_DIR } from '../test/log-privacy.js'

if (process.argv.includes('--clear')) {
  rmSync(TEST_LOG_DIR, { recursive: true, force: true })
} else {
  const scan = scanLogDir()
  console.log(`log privacy: ${scan.files} log files, ${scan.lines} lines (${scan.requestLines} request lines) in ${TEST_LOG_DIR}`)
  for (const f of scan.findings.slice(0, 50)) console.log(`  ${f.file}:${f.line}: ${f.kind} ${f.excerpt}`)
  if (scan.findings.length > 0) {
    console.log(`log privacy: FAILED, ${scan.findings.length} finding(s)`)
    process.exit(1)
  }
  if (scan.requestLines === 0) {
    console.log('log privacy: FAILED, the suite wrote no request logs to check')
    process.exit(1)
  }
  console.log('log privacy: no identity number or key material in any log')
}
