/**
 * Small accessible building blocks shared by the portal's views: labelled fields, fact lists,
 * announcements (aria-live) and error messages from the gateway's problem codes.
 */
import { byId, h, mount } from '../shared/dom.js'
import { ApiError } from './api.js'
import { dyn, known, t, tr, type Key } from './l10n.js'

type Control = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement

/** A label, the control, and an optional hint the control is described by. */
export function field(opts: { control: Control; label: Key; need?: 'required' | 'optional'; hint?: Key; className?: string }): HTMLDivElement {
  const { control } = opts
  const describedBy: string[] = []
  let hint: HTMLElement | undefined
  if (opts.hint) {
    hint = h('p', { id: `${control.id}-hint`, class: 'hint' }, tr(opts.hint))
    describedBy.push(hint.id)
  }
  if (describedBy.length) control.setAttribute('aria-describedby', describedBy.join(' '))
  if (opts.need === 'required') {
    control.required = true
    control.setAttribute('aria-required', 'true')
  }
  return h('div', { class: `field ${opts.className ?? ''}`.trim() },
    h('label', { for: control.id }, tr(opts.label), opts.need ? h('span', { class: 'need' }, tr(opts.need)) : null),
    hint ?? null,
    control)
}

/** A description list of facts; a null value reads "none", an undefined row is left out. */
export function facts(rows: Array<[Key, Node | string | null] | undefined | false>): HTMLDListElement {
  const dl = h('dl', { class: 'facts' })
  for (const row of rows) {
    if (!row) continue
    const [label, value] = row
    dl.append(h('dt', {}, tr(label)), h('dd', {}, value === null || value === '' ? tr('value.none') : value))
  }
  return dl
}

/** A region for errors: role=alert, so whatever is put in it is announced at once. */
export function alertRegion(id: string): HTMLDivElement {
  return h('div', { id, class: 'alert', role: 'alert' })
}

/** A polite status line (progress, counts, confirmations). */
export function statusRegion(id: string): HTMLParagraphElement {
  return h('p', { id, class: 'status-line', role: 'status' })
}

export function say(region: HTMLElement, ...content: Node[]) {
  mount(region, ...content)
}

/** Announced by the page-wide live region (outlives a view: used when moving to another one). */
export function announce(text: Node) {
  const region = byId('announcer')
  region.replaceChildren()
  // A new node in the next frame, so the same message twice is still announced.
  requestAnimationFrame(() => region.append(text))
}

/**
 * What a refusal means to the user, from its stable `code` (never the English `detail`): a 429 with
 * its wait, a validation error naming the field by its label, or the code itself as a last resort.
 */
export function problemMessage(err: unknown, fieldLabels: Record<string, Key> = {}): Text {
  if (!(err instanceof ApiError)) return tr('problem.network')
  const { code, field: path } = err.problem
  if (code === 'rate_limit.exceeded') {
    return err.retryAfterSeconds ? tr('problem.rate_limit.exceeded', { seconds: err.retryAfterSeconds }) : tr('problem.rate_limit.later')
  }
  const own = known(`problem.${code}`)
  if (own) return tr(own)
  if (code === 'request.validation') {
    const label = path ? labelOf(path, fieldLabels) : undefined
    return label ? dyn(() => t('problem.request.validation', { field: t(label) })) : tr('problem.request.validation.general')
  }
  return tr('problem.generic', { code })
}

/** The label of a problem's `field` (`body.applicant.idNumber`, `body.attachments.0.contentBase64` …): the longest matching prefix. */
function labelOf(path: string, labels: Record<string, Key>): Key | undefined {
  let best: string | undefined
  for (const prefix of Object.keys(labels)) {
    if ((path === prefix || path.startsWith(`${prefix}.`)) && (!best || prefix.length > best.length)) best = prefix
  }
  return best ? labels[best] : undefined
}

/** Marks the control a refusal names (its `field`) invalid and moves focus to it. */
export function markInvalid(err: unknown, controls: Record<string, Control | undefined>): boolean {
  if (!(err instanceof ApiError) || !err.problem.field) return false
  const path = err.problem.field
  const match = Object.keys(controls).filter((p) => path === p || path.startsWith(`${p}.`)).sort((a, b) => b.length - a.length)[0]
  const control = match ? controls[match] : undefined
  if (!control) return false
  invalid(control, true)
  control.focus()
  return true
}

export function invalid(control: Control, on: boolean, errorId?: string) {
  if (on) {
    control.setAttribute('aria-invalid', 'true')
    if (errorId) control.setAttribute('aria-errormessage', errorId)
  } else {
    control.removeAttribute('aria-invalid')
    control.removeAttribute('aria-errormessage')
  }
}

/** A button shows it is working (and cannot be pressed twice) while an action runs. */
export async function whileBusy<T>(button: HTMLButtonElement, label: Key, action: () => Promise<T>): Promise<T> {
  const original = [...button.childNodes]
  const hadFocus = document.activeElement === button
  button.disabled = true
  button.setAttribute('aria-busy', 'true')
  button.replaceChildren(tr(label))
  try {
    return await action()
  } finally {
    button.disabled = false
    button.removeAttribute('aria-busy')
    button.replaceChildren(...original)
    // Disabling a focused button drops focus to <body>: give it back, so a keyboard user stays put.
    if (hadFocus && button.isConnected && (document.activeElement === null || document.activeElement === document.body)) button.focus()
  }
}

/** A view's main heading: focusable by script, so a change of view moves the reader to it. */
export function viewHeading(text: Node, level: 'h2' | 'h3' = 'h2'): HTMLHeadingElement {
  return h(level, { class: 'view-heading', tabindex: -1 }, text)
}
