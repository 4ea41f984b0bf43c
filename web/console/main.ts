import { byId, h, mount } from '../shared/dom.js'
import { createI18n, languageToggle } from '../shared/i18n.js'
import { ProblemError } from '../shared/problem.js'
import { barChart, formatNumber } from './charts.js'
import { dictionary } from './console.i18n.js'
import { importKeyFile, SignedClient } from './gw1.js'

/** The console: an admin loads a key, and every figure comes from signed, verified supervision calls. */
interface Counts { requests: number; matches: number; hits: number; decisions: { allow: number; review: number; deny: number }; feedback: { received: number }; overdue: number }
interface AgencyReport { agency: string; totals: Counts; days: Array<Counts & { day: string }> }
interface Report { from: string; to: string; feedbackDeadlineDays: number; asOf: string; agencies: AgencyReport[] }
interface Applications { asOf: string; courts: Array<{ courtCode: string; kind: 'appeal' | 'repair'; open: number; overdue: number }>; overdueItems?: Array<{ kind: 'appeal' | 'repair'; courtCode: string; status: string; receivedOn: string; dueOn: string }> }
interface Processes {
  asOf: string; headSeq: number
  processes: Array<{ id: string; host: string; pid: number; lastSeenAt: string; stale: boolean; indexReady: boolean; indexSize: number; indexSeq: number; indexLag: number; eventsPerSecond: number }>
  changeLog: { perMinute: Array<{ minute: string; events: number }>; lastHour: number; last24Hours: number }
}

const i18n = createI18n(dictionary)
const { t } = i18n
languageToggle(byId<HTMLButtonElement>('lang-toggle'), i18n)

const state: { client?: SignedClient; days: number; agency: string; data?: { report: Report; applications: Applications; processes: Processes } } = { days: 14, agency: '' }

const gatewayIdInput = h('input', { id: 'gateway-id', name: 'gateway-id', autocomplete: 'off', value: localStorage.getItem('gatewayId') ?? 'credit-gateway' })
const keyInput = h('input', { id: 'key-file', type: 'file', accept: 'application/json,.json' })
const keyStatus = h('p', { id: 'key-status', role: 'status', 'aria-live': 'polite' })
const rangeSelect = h('select', { id: 'range' }, ...[7, 14, 30].map((n) => h('option', { value: n, selected: n === state.days }, '')))
const agencySelect = h('select', { id: 'agency' })
const refreshButton = h('button', { type: 'button', class: 'primary', disabled: true }, '')
const loadStatus = h('p', { id: 'load-status', role: 'status', 'aria-live': 'polite', class: 'hint' })
const panels = h('div', { id: 'panels' })

mount(byId('main'),
  h('section', { class: 'card', 'aria-labelledby': 'key-heading' },
    h('h2', { id: 'key-heading', 'data-i18n': 'keyHeading' }),
    h('p', { class: 'hint', 'data-i18n': 'keyHint' }),
    h('div', { class: 'row' },
      h('div', {}, h('label', { for: 'gateway-id', 'data-i18n': 'gatewayId' }), gatewayIdInput),
      h('div', {}, h('label', { for: 'key-file', 'data-i18n': 'keyFile' }), keyInput)),
    keyStatus),
  h('section', { class: 'card controls', 'aria-label': 'filters' },
    h('div', { class: 'row' },
      h('div', {}, h('label', { for: 'range', 'data-i18n': 'range' }), rangeSelect),
      h('div', {}, h('label', { for: 'agency', 'data-i18n': 'agency' }), agencySelect),
      h('div', { class: 'refresh' }, refreshButton)),
    loadStatus),
  panels)

keyInput.addEventListener('change', async () => {
  const file = keyInput.files?.[0]
  keyInput.value = ''
  if (!file) return
  try {
    const operator = await importKeyFile(await file.text())
    localStorage.setItem('gatewayId', gatewayIdInput.value.trim())
    state.client = new SignedClient(operator, gatewayIdInput.value.trim())
    keyStatus.className = 'ok'
    keyStatus.dataset.principal = operator.principalId
    keyStatus.textContent = t('signedInAs', { principal: operator.principalId, kid: operator.kid })
    refreshButton.disabled = false
    await load()
  } catch (err) {
    keyStatus.className = 'error'
    keyStatus.textContent = t((err as Error).message)
  }
})
gatewayIdInput.addEventListener('change', () => {
  if (!state.client) return
  keyStatus.textContent = ''
  state.client = undefined
  refreshButton.disabled = true
})
rangeSelect.addEventListener('change', () => { state.days = Number(rangeSelect.value); void load() })
agencySelect.addEventListener('change', () => { state.agency = agencySelect.value; render() })
refreshButton.addEventListener('click', () => { void load() })
i18n.onChange(() => {
  for (const option of rangeSelect.options) option.textContent = t('days', { n: option.value })
  refreshButton.textContent = t('refresh')
  renderAgencyOptions()
  render()
})

/** China days, from..to inclusive (the supervision report's own day boundaries). */
function dayList(from: string, to: string): string[] {
  const days: string[] = []
  for (let d = Date.parse(`${from}T00:00:00Z`); d <= Date.parse(`${to}T00:00:00Z`); d += 86_400_000) days.push(new Date(d).toISOString().slice(0, 10))
  return days
}

async function load() {
  const client = state.client
  if (!client) return
  refreshButton.disabled = true
  loadStatus.textContent = t('loading')
  loadStatus.className = 'hint'
  try {
    const today = new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 10)
    const from = new Date(Date.parse(`${today}T00:00:00Z`) - (state.days - 1) * 86_400_000).toISOString().slice(0, 10)
    const [report, applications, processes] = await Promise.all([
      client.get<Report>(`/v1/supervision/agencies?from=${from}&to=${today}`),
      client.get<Applications>('/v1/supervision/applications'),
      client.get<Processes>('/v1/supervision/processes'),
    ])
    state.data = { report, applications, processes }
    loadStatus.textContent = t('updatedAt', { at: new Date().toLocaleString(i18n.lang() === 'zh' ? 'zh-CN' : 'en-GB') })
    renderAgencyOptions()
    render()
  } catch (err) {
    loadStatus.className = 'error'
    loadStatus.textContent = err instanceof ProblemError
      ? (dictionary[err.problem.code] ? t(err.problem.code) : t('refused', { code: err.problem.code }))
      : err instanceof TypeError ? t('network') : t((err as Error).message)
  } finally {
    refreshButton.disabled = !state.client
  }
}

function renderAgencyOptions() {
  const agencies = state.data?.report.agencies.map((a) => a.agency) ?? []
  mount(agencySelect, h('option', { value: '' }, t('allAgencies')), ...agencies.map((id) => h('option', { value: id, selected: id === state.agency }, id)))
}

function sumDays(agencies: AgencyReport[], days: string[]) {
  return days.map((day) => {
    const total = { matches: 0, hits: 0, allow: 0, review: 0, deny: 0 }
    for (const agency of agencies) {
      const row = agency.days.find((d) => d.day === day)
      if (!row) continue
      total.matches += row.matches; total.hits += row.hits
      total.allow += row.decisions.allow; total.review += row.decisions.review; total.deny += row.decisions.deny
    }
    return total
  })
}

const percent = (part: number, whole: number) => (whole === 0 ? 0 : Math.round((part / whole) * 1000) / 10)

function render() {
  const data = state.data
  if (!data) return
  const { report, applications, processes } = data
  const shown = state.agency ? report.agencies.filter((a) => a.agency === state.agency) : report.agencies
  const days = dayList(report.from, report.to)
  const labels = days.map((d) => d.slice(5))
  const perDay = sumDays(shown, days)

  const matchSection = h('section', { class: 'card', 'aria-labelledby': 'match-heading' },
    h('h2', { id: 'match-heading' }, t('matchHeading')),
    h('div', { class: 'charts' },
      barChart({ id: 'chart-matches', title: t('matchesHits'), categories: labels, tableLabel: t('showTable'), series: [
        { name: t('matches'), values: perDay.map((d) => d.matches) }, { name: t('hits'), values: perDay.map((d) => d.hits) }] }),
      barChart({ id: 'chart-decisions', title: t('decisionsChart'), categories: labels, stacked: true, tableLabel: t('showTable'), series: [
        { name: t('allow'), values: perDay.map((d) => d.allow) }, { name: t('review'), values: perDay.map((d) => d.review) }, { name: t('deny'), values: perDay.map((d) => d.deny) }] })))

  const feedbackSection = h('section', { class: 'card', 'aria-labelledby': 'feedback-heading' },
    h('h2', { id: 'feedback-heading' }, t('feedbackHeading')),
    h('p', { class: 'hint' }, t('deadlineNote', { n: report.feedbackDeadlineDays })),
    barChart({ id: 'chart-feedback', title: t('feedbackRateChart'), categories: report.agencies.map((a) => a.agency), unit: '%', tableLabel: t('showTable'), series: [
      { name: t('feedbackRate'), values: report.agencies.map((a) => percent(a.totals.feedback.received, a.totals.hits)) }] }),
    h('div', { class: 'table-wrap' }, h('table', { id: 'agency-totals' },
      h('thead', {}, h('tr', {}, ...['agency', 'requests', 'matches', 'hits', 'hitRate', 'feedbackReceived', 'feedbackRate', 'overdueFeedback'].map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, ...report.agencies.map((a) => h('tr', { 'data-agency': a.agency },
        h('th', { scope: 'row' }, a.agency), h('td', { 'data-field': 'requests' }, formatNumber(a.totals.requests)), h('td', { 'data-field': 'matches' }, formatNumber(a.totals.matches)),
        h('td', { 'data-field': 'hits' }, formatNumber(a.totals.hits)), h('td', {}, `${percent(a.totals.hits, a.totals.matches)}%`),
        h('td', { 'data-field': 'feedback' }, formatNumber(a.totals.feedback.received)), h('td', {}, `${percent(a.totals.feedback.received, a.totals.hits)}%`),
        h('td', { 'data-field': 'overdue', class: a.totals.overdue > 0 ? 'warn' : '' }, formatNumber(a.totals.overdue))))))))

  const kindLabel = (kind: string) => t(kind)
  const applicationsSection = h('section', { class: 'card', 'aria-labelledby': 'applications-heading' },
    h('h2', { id: 'applications-heading' }, t('applicationsHeading')),
    applications.courts.length === 0 ? h('p', {}, t('noApplications')) : h('div', { class: 'table-wrap' }, h('table', { id: 'application-queues' },
      h('thead', {}, h('tr', {}, ...['court', 'kind', 'open', 'overdue'].map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, ...applications.courts.map((c) => h('tr', { 'data-court': c.courtCode, 'data-kind': c.kind },
        h('th', { scope: 'row' }, c.courtCode), h('td', {}, kindLabel(c.kind)), h('td', { 'data-field': 'open' }, formatNumber(c.open)),
        h('td', { 'data-field': 'overdue', class: c.overdue > 0 ? 'warn' : '' }, formatNumber(c.overdue))))))),
    applications.overdueItems && applications.overdueItems.length > 0 ? h('div', {}, h('h3', {}, t('overdueItems')), h('div', { class: 'table-wrap' }, h('table', { id: 'overdue-items' },
      h('thead', {}, h('tr', {}, ...['court', 'kind', 'status', 'received', 'dueOn'].map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, ...applications.overdueItems.map((item) => h('tr', {},
        h('td', {}, item.courtCode), h('td', {}, kindLabel(item.kind)), h('td', {}, t(`status.${item.status}`)), h('td', {}, item.receivedOn), h('td', { class: 'warn' }, item.dueOn))))))) : null)

  // The last 60 minutes, quiet ones included, so the chart reads as a time line.
  const counted = new Map(processes.changeLog.perMinute.map((m) => [Date.parse(m.minute), m.events]))
  const lastMinute = Math.floor(Date.parse(processes.asOf) / 60_000) * 60_000
  const minutes = Array.from({ length: 60 }, (_, i) => lastMinute - (59 - i) * 60_000).map((minute) => ({ minute, events: counted.get(minute) ?? 0 }))
  const processesSection = h('section', { class: 'card', 'aria-labelledby': 'processes-heading' },
    h('h2', { id: 'processes-heading' }, t('processesHeading')),
    h('p', { id: 'head-seq' }, t('headSeq', { seq: processes.headSeq, hour: processes.changeLog.lastHour, day: processes.changeLog.last24Hours })),
    barChart({ id: 'chart-changelog', title: t('changeLogChart'), categories: minutes.map((m) => new Date(m.minute).toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' })), tableLabel: t('showTable'), series: [
      { name: t('events'), values: minutes.map((m) => m.events) }] }),
    h('div', { class: 'table-wrap' }, h('table', { id: 'processes' },
      h('thead', {}, h('tr', {}, ...['process', 'lastSeen', 'indexSize', 'indexSeq', 'indexLag', 'eventsPerSecond'].map((k) => h('th', { scope: 'col' }, t(k))))),
      h('tbody', {}, ...processes.processes.map((p) => h('tr', { 'data-process': p.id },
        h('th', { scope: 'row' }, `${p.host}:${p.pid}`, p.stale ? h('span', { class: 'warn' }, ` (${t('stale')})`) : null),
        h('td', {}, new Date(p.lastSeenAt).toLocaleTimeString('en-GB')), h('td', {}, formatNumber(p.indexSize)), h('td', {}, formatNumber(p.indexSeq)),
        h('td', { 'data-field': 'lag', class: p.indexLag > 0 ? 'warn' : '' }, formatNumber(p.indexLag)), h('td', {}, formatNumber(p.eventsPerSecond))))))))

  mount(panels, matchSection, feedbackSection, applicationsSection, processesSection)
}
