import { shanghaiDate } from '../calendar/working-days.js'
import { creditCodeCheckChar, orgCodeCheckChar, residentIdCheckChar } from '../identity/identity.models.js'
import { addYears } from '../listings/listings.models.js'
import type { Ground, ListingInput } from '../listings/listings.models.js'
import type { ListingsService } from '../listings/listings.service.js'
import type { Principal } from '../principals/principals.models.js'

const SURNAMES = ['王', '李', '张', '刘', '陈', '杨', '赵', '黄', '周', '吴', '徐', '孙', '马', '胡', '朱', '郭', '何', '罗', '高', '林']
const GIVEN = ['伟', '芳', '娜', '敏', '静', '强', '磊', '军', '洋', '勇', '艳', '杰', '娟', '涛', '明', '超', '秀英', '建华', '国强', '丽']
const TRADES = ['商贸', '建筑工程', '科技', '餐饮管理', '物流', '房地产开发', '投资管理', '文化传媒']
/** Beijing districts (GB/T 2260) used for demo identifiers. */
const REGIONS = ['110105', '110101', '110102', '110106', '110108']

/** Deterministic pseudo-random numbers, so every demo start seeds the same people. */
function prng(seed: number) {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
}

function daysBefore(date: string, days: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) - days * 86_400_000).toISOString().slice(0, 10)
}

/**
 * A realistic demo set for one court: persons and entities on both lists, every identifier with a
 * valid check character, a few listings days before their period ends (to watch the expiry run).
 * Synthetic: no real person or entity.
 */
export function demoListings(courtCode: string, courtName: string, count: number, today: string, seed = 1): ListingInput[] {
  const rand = prng(seed)
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!
  const person = (i: number) => {
    const year = 1955 + Math.floor(rand() * 45)
    const birth = `${year}${String(1 + Math.floor(rand() * 12)).padStart(2, '0')}${String(1 + Math.floor(rand() * 28)).padStart(2, '0')}`
    const first17 = `${pick(REGIONS)}${birth}${String((i * 7 + seed) % 1000).padStart(3, '0')}`
    return { name: pick(SURNAMES) + pick(GIVEN), idNumber: first17 + residentIdCheckChar(first17) }
  }
  const items: ListingInput[] = []
  for (let i = 1; i <= count; i++) {
    const entity = i % 4 === 0
    const nearExpiry = i % 25 === 0
    const listKind: ListingInput['listKind'] = i % 3 === 0 ? 'restricted' : 'dishonest'
    const grounds: Ground[] | undefined = listKind === 'dishonest' ? (nearExpiry ? ['G4'] : [pick(['G1', 'G1', 'G3', 'G4', 'G5', 'G6', 'G2'] as const)]) : undefined
    // Near-expiry listings end 1–5 days from today; the rest were published in the last 20 months.
    const publishedOn = nearExpiry ? addYears(daysBefore(today, -1 - (i % 5)), -2) : daysBefore(today, 10 + Math.floor(rand() * 600))
    const amount = Math.round(rand() * (entity ? 5_000_000 : 300_000))
    const org8 = `MA${String(seed * 100000 + i).padStart(6, '0').slice(-6)}`
    const code17 = `91110105${org8}${orgCodeCheckChar(org8)}`
    const subject = entity
      ? { kind: 'entity' as const, name: `北京${pick(['华', '鑫', '恒', '顺', '盛'])}${pick(['通', '达', '泰', '源'])}${pick(TRADES)}有限公司`, creditCode: code17 + creditCodeCheckChar(code17), legalRepresentative: person(i + 5000) }
      : { kind: 'person' as const, ...person(i) }
    items.push({
      listKind,
      caseNumber: `（${publishedOn.slice(0, 4)}）${courtCode}执${1000 + i}号`,
      courtName,
      subject,
      ...(entity && listKind === 'restricted' ? { restrictedPersons: [{ ...person(i + 9000), role: 'actualController' as const }] } : {}),
      basis: { issuer: courtName, documentNumber: `（${publishedOn.slice(0, 4)}）${courtCode}民初${2000 + i}号` },
      obligation: entity ? '支付工程款及逾期付款利息' : '偿还借款本金及利息',
      performance: rand() < 0.8 ? 'none' : 'partial',
      amountOutstanding: amount,
      ...(grounds ? { grounds: [...grounds] } : { periodEndsOn: addYears(publishedOn, 1 + (i % 2)) }),
      filedOn: daysBefore(publishedOn, 30 + (i % 60)),
      publishedOn,
    })
  }
  // Restriction orders that already ended would be refused: keep those whose stated end is ahead.
  return items.filter((it) => !it.periodEndsOn || it.periodEndsOn > today)
}

/** Seeds demo listings for the demo courts through the normal push path (so the change log has them). */
export async function seedDemoListings(service: Pick<ListingsService, 'push'>, courts: Principal[], now: Date): Promise<number> {
  const today = shanghaiDate(now)
  let created = 0
  for (const [n, court] of courts.entries()) {
    const { summary } = await service.push(court, demoListings(court.courtCode!, court.name, 150, today, n + 1), 'demo-seed')
    created += summary.created
  }
  return created
}
