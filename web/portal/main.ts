/**
 * The public portal (issue 8 item 1): search the lists, a listing's public details, correction and
 * credit-repair applications, tracking. One page with hash routes, so the search results stay in
 * memory between views:
 *   #/                       search (and the results of the last search)
 *   #/listing/<id>           a listing's public details
 *   #/listing/<id>/appeal    a correction application for it (…/repair: credit repair)
 *   #/track                  tracking by code (the code is never in the URL)
 */
import { byId, mount } from '../shared/dom.js'
import { languageToggle } from '../shared/i18n.js'
import { applicationView } from './application.js'
import { i18n, t, type Key } from './l10n.js'
import { listingView } from './listing.js'
import { searchView } from './search.js'
import { trackView } from './track.js'

languageToggle(byId<HTMLButtonElement>('lang-toggle'), i18n)

const view = byId('view')
const main = byId('main')
let titleKey: Key = 'nav.search'
const setTitle = () => { document.title = `${t(titleKey)} - ${t('title')}` }
i18n.onChange(setTitle)

function route(moveFocus: boolean) {
  const hash = location.hash
  const parts = hash.startsWith('#/') ? hash.slice(2).split('/').filter(Boolean).map(decodeURIComponent) : []
  let section: 'search' | 'track' = 'search'
  if (parts[0] === 'listing' && parts[1]) {
    const kind = parts[2]
    if (kind === 'appeal' || kind === 'repair') {
      mount(view, applicationView(parts[1], kind))
      titleKey = kind === 'appeal' ? 'app.heading.appeal' : 'app.heading.repair'
    } else {
      mount(view, listingView(parts[1]))
      titleKey = 'search.details'
    }
  } else if (parts[0] === 'track') {
    mount(view, trackView())
    titleKey = 'nav.track'
    section = 'track'
  } else {
    mount(view, searchView())
    titleKey = 'nav.search'
  }
  for (const [id, of] of [['nav-search', 'search'], ['nav-track', 'track']] as const) {
    const link = byId(id)
    if (of === section) link.setAttribute('aria-current', 'page')
    else link.removeAttribute('aria-current')
  }
  setTitle()
  // A new view: move the reader to its heading (not on the first load, where the page starts at the top).
  if (moveFocus) view.querySelector<HTMLElement>('.view-heading')?.focus()
}

window.addEventListener('hashchange', () => {
  // In-page anchors that are not routes (none today) leave the view alone.
  if (location.hash === '' || location.hash.startsWith('#/')) route(true)
})

// The skip link focuses <main> itself: following "#main" would be taken for a route.
document.querySelector<HTMLAnchorElement>('a.skip-link')?.addEventListener('click', (e) => {
  e.preventDefault()
  main.focus()
})

route(false)
