/**
 * A listing's public details (every field of the search result: SPC-List Art. 6, domain.md §1.5),
 * read from the results kept in memory, with the ways out: a correction application or credit repair.
 */
import { h } from '../shared/dom.js'
import type { PublicListing } from './api.js'
import { dyn, i18n, known, money, t, tr } from './l10n.js'
import { identifierRow, listKindKey } from './search.js'
import { state } from './state.js'
import { facts, viewHeading } from './ui.js'

/** The view for a listing id that is not in memory (e.g. after a reload): the portal has no look-up by id. */
export function missingListing(): HTMLElement {
  return h('section', { class: 'card' },
    viewHeading(tr('listing.missing.heading')),
    h('p', {}, tr('listing.missing')),
    h('p', {}, h('a', { href: '#/', class: 'button primary' }, tr('listing.toSearch'))))
}

/** A ground as published: the API's Chinese text, or its English rendering. */
function groundText(g: PublicListing['grounds'][number]): Text {
  const key = known(`ground.${g.code}`)
  return dyn(() => (i18n.lang() === 'zh' || !key ? g.description : t(key)))
}

export function listingFacts(l: PublicListing): HTMLDListElement {
  const s = l.subject
  return facts([
    ['field.listKind', tr(listKindKey(l.listKind))],
    ['field.subjectKind', tr(s.kind === 'person' ? 'kind.person' : 'kind.entity')],
    ['field.name', s.name],
    identifierRow(l),
    s.sex !== undefined && ['field.sex', tr(s.sex === 'male' ? 'sex.male' : 'sex.female')],
    s.age !== undefined && ['field.age', tr('age.value', { age: s.age })],
    s.kind === 'entity' && ['field.legalRepresentative', s.legalRepresentative ?? null],
    ['field.courtName', l.courtName],
    ['field.caseNumber', l.caseNumber],
    ['field.basisIssuer', l.basis?.issuer ?? null],
    ['field.basisNumber', l.basis?.documentNumber ?? null],
    ['field.obligation', l.obligation],
    ['field.performance', tr(l.performance === 'full' ? 'performance.full' : l.performance === 'partial' ? 'performance.partial' : 'performance.none')],
    ['field.amountOutstanding', l.amountOutstanding === null ? null : money(l.amountOutstanding)],
    (l.listKind === 'dishonest' || l.grounds.length > 0) && ['field.grounds', l.grounds.length ? h('ul', { class: 'plain' }, ...l.grounds.map((g) => h('li', {}, groundText(g)))) : null],
    ['field.filedOn', l.filedOn],
    ['field.publishedOn', l.publishedOn],
  ])
}

export function listingView(id: string): HTMLElement {
  const l = state.listings.get(id)
  if (!l) return missingListing()
  const base = `#/listing/${encodeURIComponent(l.id)}`
  return h('div', {},
    h('section', { class: 'card' },
      h('p', { class: 'back' }, h('a', { href: '#/' }, tr('listing.back'))),
      viewHeading(tr('listing.heading', { name: l.subject.name })),
      listingFacts(l)),
    h('section', { class: 'card', 'aria-labelledby': 'listing-actions' },
      h('h3', { id: 'listing-actions' }, tr('listing.actions')),
      h('p', {}, tr('listing.actions.intro')),
      h('p', { class: 'actions' },
        h('a', { href: `${base}/appeal`, class: 'button primary' }, tr('listing.appeal')),
        h('a', { href: `${base}/repair`, class: 'button secondary' }, tr('listing.repair')))))
}
