/**
 * Filing a correction application (纠正申请, SPC-List Art. 11) or a credit-repair application for a
 * listing: ground, the applicant (the listed party: a person's resident id or an entity's credit
 * code), contact, statement, what is wrong (appeals), and up to 5 documents checked here before
 * they are read (type by content, size, count) and sent as base64. On success the tracking code is
 * shown on the tracking view.
 */
import { h, mount } from '../shared/dom.js'
import {
  ATTACHMENT_TYPES, CORRECTABLE_FIELDS, fileApplication, GROUNDS, MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS,
  type ApplicationInput, type ApplicationKind, type AttachmentType,
} from './api.js'
import { dyn, fileSize, t, tr, trAttr, type Key } from './l10n.js'
import { missingListing } from './listing.js'
import { identifierRow } from './search.js'
import { state } from './state.js'
import { alertRegion, announce, facts, field, invalid, markInvalid, problemMessage, say, statusRegion, viewHeading, whileBusy } from './ui.js'

export const groundKey = (kind: ApplicationKind, ground: string): Key => `${kind === 'appeal' ? 'appealGround' : 'repairGround'}.${ground}` as Key

/** The label of a correctable field. */
export const CHANGE_FIELD_LABELS: Record<(typeof CORRECTABLE_FIELDS)[number], Key> = {
  subjectName: 'field.name', obligation: 'field.obligation', performance: 'field.performance', amountOutstanding: 'field.amountOutstanding',
  grounds: 'field.grounds', basis: 'field.basis', filedOn: 'field.filedOn', fullPerformanceOn: 'field.fullPerformanceOn',
}

const MAX_CHANGES = 20

/** What a file is, by its first bytes (a renamed file is not taken for what its name says). */
async function sniff(file: File): Promise<AttachmentType | undefined> {
  const b = new Uint8Array(await file.slice(0, 8).arrayBuffer())
  if (b[0] === 0x25 && b[1] === 0x50 && b[2] === 0x44 && b[3] === 0x46) return 'application/pdf' // %PDF
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'image/png'
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg'
  return undefined
}

class UnreadableFile extends Error {
  constructor(readonly fileName: string) { super(fileName) }
}

function readBase64(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader()
    reader.onload = () => {
      const url = String(reader.result)
      resolve(url.slice(url.indexOf(',') + 1))
    }
    reader.onerror = () => reject(new UnreadableFile(file.name))
    reader.readAsDataURL(file)
  })
}

export function applicationView(listingId: string, kind: ApplicationKind): HTMLElement {
  const listing = state.listings.get(listingId)
  if (!listing) return missingListing()
  const person = listing.subject.kind === 'person'
  const p = `app-${kind}`

  const ground = h('select', { id: `${p}-ground`, name: 'ground' },
    h('option', { value: '' }, tr('app.ground.choose')),
    ...GROUNDS[kind].map((g) => h('option', { value: g }, tr(groundKey(kind, g)))))
  const applicantName = h('input', { id: `${p}-name`, name: 'applicantName', type: 'text', autocomplete: 'name', maxlength: 200 })
  applicantName.value = listing.subject.name
  const identifier = h('input', { id: `${p}-identifier`, name: person ? 'idNumber' : 'creditCode', type: 'text', autocomplete: 'off', spellcheck: 'false', maxlength: 18 })
  const contact = h('input', { id: `${p}-contact`, name: 'contact', type: 'text', autocomplete: 'off', maxlength: 200 })
  const statement = h('textarea', { id: `${p}-statement`, name: 'statement', maxlength: 10_000, rows: 6 })

  const errors = alertRegion(`${p}-error`)
  const status = statusRegion(`${p}-status`)

  // What is wrong (appeals): rows of field and correct value.
  interface ChangeRow { el: HTMLFieldSetElement; field: HTMLSelectElement; value: HTMLInputElement; legend: Text; remove: HTMLButtonElement; number: () => number }
  const rows: ChangeRow[] = []
  const rowsBox = h('div', { class: 'change-rows' })
  let rowSeq = 0
  const addButton = h('button', { type: 'button', class: 'secondary', onclick: () => addRow(true) }, tr('app.changes.add'))
  function addRow(focus: boolean) {
    if (rows.length >= MAX_CHANGES) {
      say(errors, tr('app.changes.tooMany'))
      return
    }
    const n = ++rowSeq
    const select = h('select', { id: `${p}-change-${n}-field` },
      h('option', { value: '' }, tr('app.ground.choose')),
      ...CORRECTABLE_FIELDS.map((f) => h('option', { value: f }, tr(CHANGE_FIELD_LABELS[f]))))
    const value = h('input', { id: `${p}-change-${n}-value`, type: 'text', autocomplete: 'off', maxlength: 1000 })
    const row = {} as ChangeRow
    const number = () => rows.indexOf(row) + 1
    const legend = dyn(() => t('app.changes.row', { n: number() }))
    const remove = trAttr(h('button', { type: 'button', class: 'secondary small', onclick: () => removeRow(row) }, '×'), 'aria-label', () => t('app.changes.remove', { n: number() }))
    const el = h('fieldset', { class: 'change-row' }, h('legend', {}, legend),
      field({ control: select, label: 'app.changes.field' }),
      field({ control: value, label: 'app.changes.value' }),
      h('div', { class: 'change-remove' }, remove))
    Object.assign(row, { el, field: select, value, legend, remove, number })
    rows.push(row)
    renumber()
    if (focus) select.focus()
  }
  function removeRow(row: ChangeRow) {
    rows.splice(rows.indexOf(row), 1)
    renumber()
    addButton.focus()
  }
  function renumber() {
    for (const row of rows) {
      row.legend.data = t('app.changes.row', { n: row.number() })
      row.remove.setAttribute('aria-label', t('app.changes.remove', { n: row.number() }))
    }
    mount(rowsBox, ...rows.map((r) => r.el))
    addButton.disabled = rows.length >= MAX_CHANGES
  }
  const changes = kind === 'appeal'
    ? h('fieldset', { class: 'changes', 'aria-describedby': `${p}-changes-hint` },
      h('legend', {}, tr('app.changes'), h('span', { class: 'need' }, tr('optional'))),
      h('p', { id: `${p}-changes-hint`, class: 'hint' }, tr('app.changes.hint')),
      rowsBox, addButton)
    : null
  if (kind === 'appeal') addRow(false)

  // Documents: checked as they are chosen, read only when the application is sent.
  const chosen: { file: File; mediaType: AttachmentType }[] = []
  // The native control's button speaks the browser's language, not the page's: it stays in the form
  // (its label names it; tests and assistive technology reach it) but the visible control is ours.
  const fileInput = h('input', { id: `${p}-files`, name: 'attachments', type: 'file', multiple: true, class: 'visually-hidden', tabindex: -1, accept: [...ATTACHMENT_TYPES, '.pdf', '.jpg', '.jpeg', '.png'].join(',') })
  const chooseFiles = h('button', { type: 'button', class: 'secondary', 'aria-describedby': `${p}-files-hint`, onclick: () => fileInput.click() }, tr('app.attachments.choose'))
  const fileList = h('ul', { class: 'files', 'aria-labelledby': `${p}-files-chosen` })
  function renderFiles() {
    mount(fileList, ...(chosen.length ? chosen.map((c) => h('li', {},
      h('span', { class: 'file-name' }, c.file.name), ' ', h('span', { class: 'hint' }, fileSize(c.file.size)), ' ',
      h('button', {
        type: 'button', class: 'secondary small',
        onclick: () => {
          chosen.splice(chosen.indexOf(c), 1)
          renderFiles()
          say(status, tr('app.attachments.removed', { file: c.file.name }))
          chooseFiles.focus()
        },
      }, tr('app.attachments.remove', { file: c.file.name })))) : [h('li', { class: 'hint' }, tr('app.attachments.none'))]))
  }
  fileInput.addEventListener('change', () => void (async () => {
    const picked = [...(fileInput.files ?? [])]
    fileInput.value = ''
    const refused: Node[] = []
    let added = 0
    for (const file of picked) {
      const refuse = (key: Key) => refused.push(h('p', {}, tr(key, { file: file.name })))
      if (chosen.length >= MAX_ATTACHMENTS) { refuse('app.attachments.tooMany'); continue }
      if (file.size === 0) { refuse('app.attachments.empty'); continue }
      if (file.size > MAX_ATTACHMENT_BYTES) { refuse('app.attachments.tooLarge'); continue }
      let mediaType: AttachmentType | undefined
      try { mediaType = await sniff(file) } catch { refuse('app.attachments.unreadable'); continue }
      if (!mediaType) { refuse('app.attachments.badType'); continue }
      chosen.push({ file, mediaType })
      added++
    }
    renderFiles()
    say(errors, ...refused)
    say(status, ...(added ? [tr('app.attachments.added', { n: added, total: chosen.length })] : []))
  })())
  renderFiles()

  const controls = {
    'body.ground': ground, 'body.applicant.name': applicantName, 'body.applicant.idNumber': identifier, 'body.applicant.creditCode': identifier,
    'body.applicant': identifier, 'body.applicant.contact': contact, 'body.statement': statement,
  }
  const identifierLabel: Key = person ? 'app.idNumber' : 'app.creditCode'
  const labels: Record<string, Key> = {
    'body.ground': 'app.ground', 'body.applicant.name': 'app.applicantName', 'body.applicant.idNumber': 'app.idNumber', 'body.applicant.creditCode': 'app.creditCode',
    'body.applicant': identifierLabel, 'body.applicant.contact': 'app.contact', 'body.statement': 'app.statement', 'body.requestedChanges': 'app.changes', 'body.attachments': 'app.attachments',
  }

  const submit = h('button', { type: 'submit', class: 'primary' }, tr('app.submit'))

  /** The requested changes, or a message saying which row is incomplete. */
  function requestedChanges(): Record<string, string | number> | Text {
    const out: Record<string, string | number> = {}
    for (const row of rows) {
      const f = row.field.value as (typeof CORRECTABLE_FIELDS)[number] | ''
      const v = row.value.value.trim()
      if (!f && !v) continue
      if (!f || !v) {
        invalid(f ? row.value : row.field, true, errors.id);
        (f ? row.value : row.field).focus()
        return tr('app.changes.incomplete', { n: row.number() })
      }
      if (f in out) {
        invalid(row.field, true, errors.id)
        row.field.focus()
        return tr('app.changes.duplicate', { field: t(CHANGE_FIELD_LABELS[f]) })
      }
      out[f] = f === 'amountOutstanding' && /^\d+(\.\d{1,2})?$/.test(v) ? Number(v) : v
    }
    return out
  }

  async function send(e: Event) {
    e.preventDefault()
    say(errors)
    for (const control of [ground, applicantName, identifier, contact, statement, ...rows.flatMap((r) => [r.field, r.value])]) invalid(control, false)
    const missing: [Key, HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement][] = (
      [['app.ground', ground], ['app.applicantName', applicantName], [identifierLabel, identifier], ['app.contact', contact], ['app.statement', statement]] as const
    ).filter(([, control]) => !control.value.trim()).map(([k, c]) => [k, c])
    if (missing.length) {
      for (const [, control] of missing) invalid(control, true, errors.id)
      missing[0]![1].focus()
      say(errors, dyn(() => t('app.missing', { fields: missing.map(([k]) => t(k)).join(t('list.separator')) })))
      return
    }
    const wanted = requestedChanges()
    if (wanted instanceof Text) {
      say(errors, wanted)
      return
    }
    const id = identifier.value.trim().toUpperCase()
    const body: ApplicationInput = {
      listingId: listing!.id,
      ground: ground.value,
      applicant: { name: applicantName.value.trim(), ...(person ? { idNumber: id } : { creditCode: id }), contact: contact.value.trim() },
      statement: statement.value.trim(),
    }
    if (Object.keys(wanted).length) body.requestedChanges = wanted
    say(status, tr('app.submitting'))
    try {
      const filed = await whileBusy(submit, 'app.submitting', async () => {
        if (chosen.length) body.attachments = await Promise.all(chosen.map(async (c) => ({ fileName: c.file.name, mediaType: c.mediaType, contentBase64: await readBase64(c.file) })))
        return fileApplication(kind, body)
      })
      state.track = { kind, code: filed.trackingCode, filed }
      announce(tr('filed.announce', { code: filed.trackingCode }))
      location.hash = '#/track'
    } catch (err) {
      say(status)
      if (err instanceof UnreadableFile) {
        say(errors, tr('app.attachments.unreadable', { file: err.fileName }))
        chooseFiles.focus()
        return
      }
      say(errors, problemMessage(err, labels))
      markInvalid(err, controls)
    }
  }

  const base = `#/listing/${encodeURIComponent(listing.id)}`
  const form = h('form', { novalidate: true, 'aria-labelledby': `${p}-heading`, onsubmit: (e: Event) => void send(e) },
    field({ control: ground, label: 'app.ground', need: 'required' }),
    h('div', { class: 'row' },
      field({ control: applicantName, label: 'app.applicantName', need: 'required' }),
      field({ control: identifier, label: identifierLabel, need: 'required', hint: person ? 'app.idNumber.hint' : 'app.creditCode.hint' })),
    field({ control: contact, label: 'app.contact', need: 'required', hint: 'app.contact.hint' }),
    field({ control: statement, label: 'app.statement', need: 'required', hint: 'app.statement.hint' }),
    changes,
    h('div', { class: 'attachments' },
      field({ control: fileInput, label: 'app.attachments', need: 'optional', hint: 'app.attachments.hint' }),
      chooseFiles,
      h('p', { id: `${p}-files-chosen`, class: 'files-heading' }, tr('app.attachments.chosen')),
      fileList),
    errors,
    h('p', { class: 'actions' }, submit, h('a', { href: base, class: 'button secondary' }, tr('app.back'))),
    status)

  const heading = viewHeading(tr(kind === 'appeal' ? 'app.heading.appeal' : 'app.heading.repair'))
  heading.id = `${p}-heading`
  return h('section', { class: 'card' },
    heading,
    h('p', {}, tr(kind === 'appeal' ? 'app.intro.appeal' : 'app.intro.repair')),
    h('div', { class: 'concerning', role: 'group', 'aria-labelledby': `${p}-concerning` },
      h('p', { id: `${p}-concerning`, class: 'concerning-title' }, tr('app.concerning')),
      facts([['field.name', listing.subject.name], identifierRow(listing), ['field.courtName', listing.courtName], ['field.caseNumber', listing.caseNumber]])),
    h('p', { class: 'warn' }, tr('app.identity.note')),
    form)
}
