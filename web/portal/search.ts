/**
 * The public search: exact full name, optional identifier and list, results as cards with the
 * identifier exactly as the API masks it, pagination by `hasMore` (at most MAX_PAGE pages).
 */
import { h, mount } from '../shared/dom.js'
import { MAX_PAGE, searchListings, type ListKind, type PublicListing, type SearchQuery } from './api.js'
import { t, tr, trAttr, type Key } from './l10n.js'
import { state } from './state.js'
import { alertRegion, announce, facts, field, invalid, markInvalid, problemMessage, say, statusRegion, viewHeading, whileBusy } from './ui.js'

/** Which label a refusal's `field` names. */
const FIELD_LABELS: Record<string, Key> = { 'querystring.name': 'search.name', 'querystring.id': 'search.id', 'querystring.list': 'search.list' }

/** The subject's identifier as published: a person's masked id, an entity's credit or organisation code. */
export function identifierRow(l: PublicListing): [Key, Node] | undefined {
  const code = (value: string) => h('span', { class: 'code', translate: 'no' }, value)
  if (l.subject.idNumberMasked) return ['field.idNumber', code(l.subject.idNumberMasked)]
  if (l.subject.creditCode) return ['field.creditCode', code(l.subject.creditCode)]
  if (l.subject.orgCode) return ['field.orgCode', code(l.subject.orgCode)]
  return undefined
}

export const listKindKey = (kind: ListKind): Key => (kind === 'dishonest' ? 'list.dishonest' : 'list.restricted')

export function searchView(): HTMLElement {
  const previous = state.query
  const name = h('input', { id: 'search-name', name: 'name', type: 'text', autocomplete: 'off', spellcheck: 'false', maxlength: 100 })
  const id = h('input', { id: 'search-id', name: 'id', type: 'text', autocomplete: 'off', spellcheck: 'false', maxlength: 32 })
  const list = h('select', { id: 'search-list', name: 'list' },
    h('option', { value: '' }, tr('search.list.all')),
    h('option', { value: 'dishonest' }, tr('list.dishonest')),
    h('option', { value: 'restricted' }, tr('list.restricted')))
  name.value = previous?.name ?? ''
  id.value = previous?.id ?? ''
  list.value = previous?.list ?? ''

  const submit = h('button', { type: 'submit', class: 'primary' }, tr('search.submit'))
  const errors = alertRegion('search-error')
  const status = statusRegion('search-status')
  const results = h('section', { class: 'card', 'aria-labelledby': 'results-heading', hidden: true })

  async function run(query: SearchQuery, focusResults: boolean) {
    say(errors)
    for (const control of [name, id, list]) invalid(control, false)
    if (!query.name) {
      say(errors, tr('search.name.missing'))
      invalid(name, true, errors.id)
      name.focus()
      return
    }
    say(status, tr('search.searching'))
    try {
      const result = await whileBusy(submit, 'search.searching', () => searchListings(query))
      state.query = query
      state.result = result
      for (const item of result.items) state.listings.set(item.id, item)
      renderResults(focusResults)
      say(status)
      announce(result.items.length ? tr('search.count', { page: result.page, n: result.items.length }) : tr('search.none', { name: query.name }))
    } catch (err) {
      say(status)
      say(errors, problemMessage(err, FIELD_LABELS))
      markInvalid(err, { 'querystring.name': name, 'querystring.id': id, 'querystring.list': list })
    }
  }

  function renderResults(focus: boolean) {
    const { result, query } = state
    if (!result || !query) return
    results.hidden = false
    const heading = viewHeading(tr('search.results'))
    heading.id = 'results-heading'
    const items = result.items.map((l) => h('li', { class: 'result' },
      h('article', { 'aria-labelledby': `result-${l.id}` },
        h('h3', { id: `result-${l.id}` }, l.subject.name),
        facts([
          identifierRow(l),
          ['field.listKind', tr(listKindKey(l.listKind))],
          ['field.courtName', l.courtName],
          ['field.caseNumber', l.caseNumber],
          ['field.publishedOn', l.publishedOn],
        ]),
        h('a', { href: `#/listing/${encodeURIComponent(l.id)}`, class: 'button secondary' },
          tr('search.details'), h('span', { class: 'visually-hidden' }, ` ${l.subject.name} ${l.caseNumber}`)))))
    const atLastPage = result.page >= MAX_PAGE
    const prev = h('button', { type: 'button', class: 'secondary', disabled: result.page <= 1, onclick: () => void run({ ...query, page: result.page - 1 }, true) }, tr('search.prev'))
    const next = h('button', { type: 'button', class: 'secondary', disabled: !result.hasMore || atLastPage, onclick: () => void run({ ...query, page: result.page + 1 }, true) }, tr('search.next'))
    const pagination = result.page > 1 || result.hasMore
      ? trAttr(h('nav', { class: 'pagination' }, prev, next), 'aria-label', () => t('search.pages'))
      : null
    mount(results, heading,
      ...(result.items.length
        ? [h('p', { class: 'summary' }, tr('search.count', { page: result.page, n: result.items.length })), h('ol', { class: 'results' }, ...items)]
        : [h('p', {}, tr('search.none', { name: query.name }))]),
      pagination,
      result.hasMore && atLastPage ? h('p', { class: 'warn' }, tr('search.narrow', { max: MAX_PAGE })) : null)
    if (focus) heading.focus()
  }

  const form = h('form', {
    novalidate: true, role: 'search', 'aria-labelledby': 'search-heading',
    onsubmit: (e: Event) => {
      e.preventDefault()
      void run({ name: name.value.trim(), id: id.value.trim(), list: list.value as '' | ListKind, page: 1 }, false)
    },
  },
  field({ control: name, label: 'search.name', need: 'required', hint: 'search.name.hint' }),
  h('div', { class: 'row' },
    field({ control: id, label: 'search.id', need: 'optional', hint: 'search.id.hint' }),
    field({ control: list, label: 'search.list' })),
  submit, errors, status)

  const heading = viewHeading(tr('search.heading'))
  heading.id = 'search-heading'
  renderResults(false)
  return h('div', {}, h('section', { class: 'card' }, heading, h('p', {}, tr('search.intro')), form), results)
}
