import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generatePrincipalKey } from '../principals/principals.keygen.js'
import type { PrincipalCreateInput, PrincipalsService } from '../principals/principals.service.js'

type DemoPrincipal = Omit<PrincipalCreateInput, 'keys'>

/**
 * Demo principals for the embedded database: an admin, two courts (a basic court and the
 * intermediate court above it) and three agencies with different profiles (domain.md §3.3).
 */
export const DEMO_PRINCIPALS: DemoPrincipal[] = [
  { id: 'admin-demo', kind: 'admin', name: '演示管理员 Demo administrator', scopes: ['principals:write', 'rules:write', 'audit:read', 'supervision:read', 'listings:read', 'changes:read'] },
  { id: 'court-bj-0105', kind: 'court', name: '北京市朝阳区人民法院', courtCode: '京0105', scopes: ['listings:write', 'listings:read', 'appeals:review', 'repairs:review'] },
  { id: 'court-bj-03', kind: 'court', name: '北京市第三中级人民法院', courtCode: '京03', scopes: ['listings:write', 'listings:read', 'appeals:review', 'repairs:review'], profile: { subordinateCourtCodes: ['京0105'] } },
  {
    id: 'caac', kind: 'agency', name: '中国民用航空局', scopes: ['match', 'changes:read', 'feedback:write'],
    profile: { lists: ['dishonest', 'restricted'], fields: ['name', 'identifiers', 'caseNumber', 'courtName'], scenarios: ['TICKET_AIR'], rateLimit: { max: 5000, timeWindowSeconds: 1 }, dailyQuota: 50_000_000 },
  },
  {
    id: 'samr', kind: 'agency', name: '国家市场监督管理总局', scopes: ['match', 'listings:read', 'changes:read', 'feedback:write'],
    profile: { lists: ['dishonest'], fields: ['name', 'identifiers', 'legalRepresentative', 'caseNumber', 'courtName', 'grounds', 'obligation', 'performance'], scenarios: ['COMPANY_OFFICER_REG', 'ROUTINE_INSPECTION'], rateLimit: { max: 500, timeWindowSeconds: 1 }, dailyQuota: 1_000_000 },
  },
  {
    id: 'mof', kind: 'agency', name: '财政部', scopes: ['match', 'feedback:write'],
    profile: { lists: ['dishonest'], fields: ['name', 'caseNumber'], scenarios: ['GOV_PROCUREMENT'], rateLimit: { max: 100, timeWindowSeconds: 1 }, dailyQuota: 100_000 },
  },
]

/** Creates the demo principals and writes each private key to `<keysDir>/<principal-id>.json`. */
export async function seedDemoPrincipals(service: Pick<PrincipalsService, 'create'>, keysDir: string): Promise<string[]> {
  mkdirSync(keysDir, { recursive: true, mode: 0o700 })
  const created: string[] = []
  for (const p of DEMO_PRINCIPALS) {
    const { keyFile, publicJwk } = await generatePrincipalKey(p.id)
    const result = await service.create({ principalId: 'system:demo-seed' }, { ...p, keys: [publicJwk] })
    if (!result.created) continue
    writeFileSync(join(keysDir, `${p.id}.json`), JSON.stringify(keyFile, null, 2) + '\n', { mode: 0o600 })
    created.push(p.id)
  }
  return created
}
