/**
 * Tracking an application by its code: status, deadlines (review, correction, the reconsideration
 * window and decision), overdue flag, decisions, a repair's certificate, documents and history;
 * a refresh button, and the reconsideration form (复议, SPC-List Art. 12) while a rejected appeal's
 * window is open.
 */
import { h, mount } from '../shared/dom.js'
import {
  askReconsideration, trackApplication, verifyCertificate, type ApplicationKind, type Decision, type Filed, type Tracked,
} from './api.js'
import { CHANGE_FIELD_LABELS, groundKey } from './application.js'
import { colon, dateTime, fileSize, known, t, timeNow, todayInChina, tr, type Key } from './l10n.js'
import { state } from './state.js'
import { alertRegion, facts, field, invalid, markInvalid, problemMessage, say, statusRegion, viewHeading, whileBusy } from './ui.js'

/** 24 Crockford base32 characters (applications.models.ts newTrackingCode), hyphens optional. */
const TRACKING_CODE = /^[0-9A-Z]{24}$/

function statusText(status: string): Text {
  const key = known(`status.${status}`)
  return key ? tr(key) : document.createTextNode(status)
}

function groundText(kind: ApplicationKind, ground: string): Text {
  const key = known(groundKey(kind, ground))
  return key ? tr(key) : document.createTextNode(ground)
}

function valueText(value: unknown): string {
  if (Array.isArray(value)) return value.map(valueText).join(', ')
  if (value !== null && typeof value === 'object') return Object.values(value).map(valueText).join(' ')
  return String(value)
}

function decisionRows(d: Decision): Array<[Key, Node | string | null] | undefined | false> {
  const correction = d.correction && Object.keys(d.correction).length
    ? h('ul', { class: 'plain' }, ...Object.entries(d.correction).map(([f, v]) => {
      const label = CHANGE_FIELD_LABELS[f as keyof typeof CHANGE_FIELD_LABELS] as Key | undefined
      return h('li', {}, label ? tr(label) : f, colon(), valueText(v))
    }))
    : undefined
  return [
    d.outcome !== undefined && ['track.outcome', tr(d.outcome === 'accept' ? 'decision.accept' : 'decision.reject')],
    d.reasons !== undefined && ['track.reasons', d.reasons ?? null],
    d.decidedOn !== undefined && ['track.decidedOn', d.decidedOn],
    d.decidedBy !== undefined && ['track.decidedBy', d.decidedBy],
    correction && ['track.correction', correction],
    d.removal === true && ['track.removal', tr('track.removal.yes')],
    d.appliedOn !== undefined && ['track.appliedOn', d.appliedOn],
  ]
}

/** The tracking code, shown once after filing, large, with the advice to keep it. */
function filedPanel(filed: Filed): HTMLElement {
  const copyStatus = statusRegion('filed-copy-status')
  const copy = h('button', {
    type: 'button', class: 'secondary',
    onclick: () => {
      const done = () => say(copyStatus, tr('filed.copied'))
      const failed = () => say(copyStatus, tr('filed.copyFailed'))
      if (navigator.clipboard) navigator.clipboard.writeText(filed.trackingCode).then(done, failed)
      else failed()
    },
  }, tr('filed.copy'))
  return h('section', { class: 'card filed', 'aria-labelledby': 'filed-heading' },
    Object.assign(viewHeading(tr('filed.heading')), { id: 'filed-heading' }),
    h('p', { class: 'filed-label', id: 'filed-code-label' }, tr('filed.code')),
    h('p', { class: 'tracking-code', id: 'tracking-code', translate: 'no', 'aria-describedby': 'filed-code-label' }, filed.trackingCode),
    h('p', { class: 'warn' }, tr('filed.keep')),
    copy, copyStatus)
}

/** The result of a look-up: a persistent header (heading, refresh, live status) over a body re-rendered on each refresh. */
function resultPanel(kind: ApplicationKind, code: string, first: Tracked): HTMLElement {
  const heading = h('h3', { id: 'track-result-heading', tabindex: -1 }, tr('track.result'))
  const refreshStatus = statusRegion('track-refresh-status')
  const errors = alertRegion('track-result-error')
  const body = h('div', { class: 'track-body' })
  const refresh = h('button', {
    type: 'button', class: 'secondary',
    onclick: () => void (async () => {
      say(errors)
      try {
        const tracked = await whileBusy(refresh, 'track.loading', () => trackApplication(kind, code))
        render(tracked)
        say(refreshStatus, tr('track.refreshed', { time: timeNow() }))
      } catch (err) {
        say(errors, problemMessage(err))
      }
    })(),
  }, tr('track.refresh'))

  function reconsiderationForm(tracked: Tracked): HTMLElement | null {
    if (tracked.kind !== 'appeal' || tracked.status !== 'rejected' || !tracked.reconsiderationWindowEndsOn) return null
    const ends = tracked.reconsiderationWindowEndsOn
    if (todayInChina() > ends) return h('p', { class: 'hint' }, tr('recon.closed', { date: ends }))
    const statement = h('textarea', { id: 'recon-statement', name: 'statement', maxlength: 10_000, rows: 5 })
    const formErrors = alertRegion('recon-error')
    const send = h('button', { type: 'submit', class: 'primary' }, tr('recon.submit'))
    const form = h('form', {
      novalidate: true, 'aria-labelledby': 'recon-heading',
      onsubmit: (e: Event) => {
        e.preventDefault()
        void (async () => {
          say(formErrors)
          invalid(statement, false)
          const text = statement.value.trim()
          if (!text) {
            say(formErrors, tr('recon.statement.missing'))
            invalid(statement, true, formErrors.id)
            statement.focus()
            return
          }
          try {
            const updated = await whileBusy(send, 'recon.submitting', () => askReconsideration(code, text))
            render(updated)
            say(refreshStatus, tr('recon.done'))
            heading.focus()
          } catch (err) {
            say(formErrors, problemMessage(err, { 'body.statement': 'recon.statement' }))
            markInvalid(err, { 'body.statement': statement })
          }
        })()
      },
    },
    field({ control: statement, label: 'recon.statement', need: 'required' }),
    formErrors, send)
    return h('section', { class: 'recon', 'aria-labelledby': 'recon-heading' },
      h('h4', { id: 'recon-heading' }, tr('recon.heading')),
      h('p', {}, tr('recon.intro', { date: ends })),
      form)
  }

  function certificatePanel(id: string): HTMLElement {
    const result = statusRegion('verify-status')
    const verify = h('button', {
      type: 'button', class: 'secondary',
      onclick: () => void (async () => {
        try {
          const check = await whileBusy(verify, 'track.verifying', () => verifyCertificate(id))
          say(result, h('span', { class: check.valid ? 'ok' : 'error' }, tr(check.valid ? 'verify.valid' : 'verify.invalid')))
        } catch (err) {
          say(result, h('span', { class: 'error' }, problemMessage(err)))
        }
      })(),
    }, tr('track.verify'))
    return h('section', { 'aria-labelledby': 'certificate-heading' },
      h('h4', { id: 'certificate-heading' }, tr('track.certificate')),
      facts([['track.certificateId', h('span', { class: 'code', translate: 'no' }, id)]]),
      verify, result)
  }

  function render(tracked: Tracked) {
    const dated = (key: Key, value: string | null | undefined): [Key, string] | undefined => (value ? [key, value] : undefined)
    const applicant = tracked.applicant
    mount(body,
      h('p', { class: `status-badge status-${tracked.status}`, 'data-status': tracked.status },
        tr('track.status'), colon(), h('strong', { class: 'status-name' }, statusText(tracked.status))),
      known(`statusHelp.${tracked.status}`) ? h('p', {}, tr(known(`statusHelp.${tracked.status}`)!)) : null,
      tracked.overdue ? h('p', { class: 'warn overdue' }, tr('track.overdue')) : null,
      facts([
        ['track.kind', tr(tracked.kind === 'appeal' ? 'appKind.appeal' : 'appKind.repair')],
        tracked.ground ? ['track.ground', groundText(tracked.kind, tracked.ground)] : undefined,
        applicant ? ['track.applicant', h('span', {}, applicant.name ?? '', ' ', h('span', { class: 'code', translate: 'no' }, applicant.identifier ?? ''))] : undefined,
        tracked.listingId ? ['track.listingId', h('span', { class: 'code small', translate: 'no' }, tracked.listingId)] : undefined,
        dated('track.receivedOn', tracked.receivedOn),
        dated('track.reviewDueOn', tracked.reviewDueOn),
        tracked.dueOn && tracked.dueOn !== tracked.reviewDueOn ? ['track.dueOn', tracked.dueOn] : undefined,
        dated('track.correctionDueOn', tracked.correctionDueOn),
        dated('track.reconsiderationWindowEndsOn', tracked.reconsiderationWindowEndsOn),
        dated('track.reconsiderationDueOn', tracked.reconsiderationDueOn),
      ]),
      h('p', { class: 'hint' }, tr('track.deadlines.note')),
      tracked.decision ? h('section', { 'aria-labelledby': 'decision-heading' }, h('h4', { id: 'decision-heading' }, tr('track.decision')), facts(decisionRows(tracked.decision))) : null,
      tracked.reconsideration ? h('section', { 'aria-labelledby': 'reconsideration-heading' },
        h('h4', { id: 'reconsideration-heading' }, tr('track.reconsideration')),
        facts([
          tracked.reconsideration.filedOn ? ['track.reconsideration.filedOn', tracked.reconsideration.filedOn] : undefined,
          tracked.reconsideration.statement ? ['track.reconsideration.statement', tracked.reconsideration.statement] : undefined,
          ...(tracked.reconsideration.decision ? decisionRows(tracked.reconsideration.decision) : []),
        ])) : null,
      reconsiderationForm(tracked),
      tracked.certificateId ? certificatePanel(tracked.certificateId) : null,
      h('section', { 'aria-labelledby': 'attachments-heading' },
        h('h4', { id: 'attachments-heading' }, tr('track.attachments')),
        tracked.attachments?.length
          ? h('ul', { class: 'plain files' }, ...tracked.attachments.map((a) => h('li', {}, h('span', { class: 'file-name' }, a.fileName), ' ', h('span', { class: 'hint' }, fileSize(a.size)))))
          : h('p', { class: 'hint' }, tr('track.attachments.none'))),
      h('section', { 'aria-labelledby': 'history-heading' },
        h('h4', { id: 'history-heading' }, tr('track.history')),
        h('p', { class: 'hint' }, tr('history.timezone')),
        h('ol', { class: 'history' }, ...tracked.history.map((e) => h('li', {},
          h('time', { datetime: e.at }, dateTime(e.at)), ' · ',
          h('strong', {}, statusText(e.status)),
          e.by ? h('span', {}, ' · ', tr(e.by === 'applicant' ? 'history.by.applicant' : 'history.by.court')) : null,
          e.note ? h('p', { class: 'note' }, e.note) : null)))))
  }

  render(first)
  return h('section', { class: 'card', 'aria-labelledby': 'track-result-heading' },
    h('div', { class: 'result-head' }, heading, refresh),
    refreshStatus, errors, body)
}

export function trackView(): HTMLElement {
  const remembered = state.track
  const kindName = 'track-kind'
  const radio = (kind: ApplicationKind) => {
    const input = h('input', { type: 'radio', name: kindName, id: `track-kind-${kind}`, value: kind })
    input.checked = (remembered?.kind ?? 'appeal') === kind
    return h('div', { class: 'choice' }, input, h('label', { for: input.id }, tr(kind === 'appeal' ? 'appKind.appeal' : 'appKind.repair')))
  }
  const code = h('input', { id: 'track-code', name: 'code', type: 'text', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'characters', maxlength: 40 })
  code.value = remembered?.code ?? ''
  const submit = h('button', { type: 'submit', class: 'primary' }, tr('track.submit'))
  const errors = alertRegion('track-error')
  const status = statusRegion('track-status')
  const result = h('div', { id: 'track-result' })

  async function lookup(kind: ApplicationKind, raw: string, focusResult: boolean) {
    say(errors)
    invalid(code, false)
    const normalized = raw.trim().toUpperCase().replace(/[\s-]/g, '')
    if (!normalized || !TRACKING_CODE.test(normalized)) {
      say(errors, tr(normalized ? 'track.code.format' : 'track.code.missing'))
      invalid(code, true, errors.id)
      code.focus()
      return
    }
    // The API takes the code with or without hyphens; keep the grouped form the user was given.
    const grouped = normalized.match(/.{4}/g)!.join('-')
    say(status, tr('track.loading'))
    try {
      const tracked = await whileBusy(submit, 'track.loading', () => trackApplication(kind, grouped))
      say(status)
      const filed = state.track?.code === grouped ? state.track.filed : undefined
      state.track = { kind, code: grouped, filed }
      mount(result, resultPanel(kind, grouped, tracked))
      if (focusResult) document.getElementById('track-result-heading')?.focus()
    } catch (err) {
      say(status)
      say(errors, problemMessage(err, { 'params.code': 'track.code' }))
      markInvalid(err, { 'params.code': code })
    }
  }

  const form = h('form', {
    novalidate: true, 'aria-labelledby': 'track-heading',
    onsubmit: (e: Event) => {
      e.preventDefault()
      const kind = (document.querySelector<HTMLInputElement>(`input[name="${kindName}"]:checked`)?.value ?? 'appeal') as ApplicationKind
      void lookup(kind, code.value, true)
    },
  },
  h('fieldset', { class: 'choices' }, h('legend', {}, tr('track.kind')), radio('appeal'), radio('repair')),
  field({ control: code, label: 'track.code', need: 'required', hint: 'track.code.hint' }),
  submit, errors, status)

  const heading = viewHeading(tr('track.heading'))
  heading.id = 'track-heading'
  if (remembered?.code) queueMicrotask(() => void lookup(remembered.kind, remembered.code, false))
  return h('div', {},
    remembered?.filed && remembered.filed.trackingCode === remembered.code ? filedPanel(remembered.filed) : null,
    h('section', { class: 'card' }, heading, h('p', {}, tr('track.intro')), form),
    result)
}
