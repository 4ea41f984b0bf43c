import { creditCodeCheckChar, orgCodeCheckChar, residentIdCheckChar } from '../src/modules/identity/identity.models.js'

/** A valid 18-digit resident id: region, birth date, sequence, computed check character. */
export function personId(seq: number, birth = '19800101', region = '110105'): string {
  const first17 = `${region}${birth}${String(seq % 1000).padStart(3, '0')}`
  return first17 + residentIdCheckChar(first17)
}

/** A valid unified social credit code (enterprise, Beijing Chaoyang) with a valid embedded org code. */
export function creditCode(seq: number): string {
  const org8 = String(seq).padStart(8, "0")
  const first17 = `91110105${org8}${orgCodeCheckChar(org8)}`
  return first17 + creditCodeCheckChar(first17)
}

/** A basic-court enforcement case number of 京0105 (or another court code). */
export function caseNumber(seq: number, court = '京0105', year = 2025): string {
  return `（${year}）${court}执${seq}号`
}

export function personListing(seq: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listKind: 'dishonest',
    caseNumber: caseNumber(seq),
    courtName: '北京市朝阳区人民法院',
    subject: { kind: 'person', name: `张${seq}`, idNumber: personId(seq) },
    basis: { issuer: '北京市朝阳区人民法院', documentNumber: `（2024）京0105民初${seq}号` },
    obligation: '支付货款及利息',
    performance: 'none',
    amountOutstanding: 120000,
    grounds: ['G4'],
    filedOn: '2025-03-01',
    publishedOn: '2025-06-01',
    ...overrides,
  }
}

export function entityListing(seq: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    listKind: 'restricted',
    caseNumber: caseNumber(seq),
    courtName: '北京市朝阳区人民法院',
    subject: { kind: 'entity', name: `北京某某${seq}有限公司`, creditCode: creditCode(seq), legalRepresentative: { name: `李${seq}`, idNumber: personId(seq + 500, '19700101') } },
    restrictedPersons: [{ name: `王${seq}`, idNumber: personId(seq + 700, '19750505'), role: 'actualController' }],
    performance: 'partial',
    amountOutstanding: 5_000_000,
    publishedOn: '2025-06-01',
    periodEndsOn: '2027-06-01',
    ...overrides,
  }
}
