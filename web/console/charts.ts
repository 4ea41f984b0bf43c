import { h, s } from '../shared/dom.js'

/**
 * Plain-SVG bar charts: no chart library to ship or audit. Each chart is an <svg role="img"> with a
 * title and a description, and the same figures as a table for screen readers and copying. Every bar
 * carries data-series, data-category and data-value, which the browser tests read.
 */
export interface Series { name: string; values: number[] }
export interface BarChartOptions {
  id: string
  title: string
  categories: string[]
  series: Series[]
  stacked?: boolean
  /** Shown after each value in tooltips and the table, e.g. "%". */
  unit?: string
  tableLabel: string
}

// Okabe–Ito: told apart with the common colour-vision deficiencies.
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9']
const WIDTH = 640
const HEIGHT = 240
const PAD = { top: 12, right: 12, bottom: 40, left: 48 }

/** A rounded-up axis maximum with tidy tick steps (1, 2 or 5 × 10ⁿ). */
function niceMax(max: number): { top: number; step: number } {
  if (max <= 0) return { top: 4, step: 1 }
  const rough = max / 4
  const magnitude = 10 ** Math.floor(Math.log10(rough))
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((candidate) => candidate >= rough)!
  return { top: Math.ceil(max / step) * step, step }
}

export function barChart(opts: BarChartOptions): HTMLElement {
  const { categories, series } = opts
  const totals = categories.map((_, i) => opts.stacked ? series.reduce((sum, x) => sum + (x.values[i] ?? 0), 0) : Math.max(0, ...series.map((x) => x.values[i] ?? 0)))
  const { top, step } = niceMax(Math.max(0, ...totals))
  const plotW = WIDTH - PAD.left - PAD.right
  const plotH = HEIGHT - PAD.top - PAD.bottom
  const y = (v: number) => PAD.top + plotH - (v / top) * plotH
  const slot = plotW / Math.max(1, categories.length)
  // Bars no wider than 36 units, so a chart of one or two categories still reads as bars.
  const groupW = Math.min(slot * 0.8, 36 * (opts.stacked ? 1 : Math.max(1, series.length)))
  const barW = opts.stacked ? groupW : groupW / Math.max(1, series.length)
  const titleId = `${opts.id}-title`

  const svg = s('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-labelledby': titleId, class: 'chart', id: opts.id },
    s('title', { id: titleId }, opts.title))
  for (let v = 0; v <= top; v += step) {
    svg.append(
      s('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v), class: 'grid' }),
      s('text', { x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, formatNumber(v)),
    )
  }
  // At most ~12 category labels, so dates stay legible on a narrow screen.
  const labelEvery = Math.ceil(categories.length / 12)
  categories.forEach((category, i) => {
    const x0 = PAD.left + i * slot + (slot - groupW) / 2
    let stackedBase = 0
    series.forEach((item, j) => {
      const value = item.values[i] ?? 0
      const from = opts.stacked ? stackedBase : 0
      stackedBase += opts.stacked ? value : 0
      const x = opts.stacked ? x0 : x0 + j * barW
      svg.append(s('rect', {
        x, y: y(from + value), width: Math.max(1, barW - 1), height: Math.max(0, y(from) - y(from + value)), fill: PALETTE[j % PALETTE.length],
        'data-series': item.name, 'data-category': category, 'data-value': value,
      }, s('title', {}, `${item.name} · ${category}: ${formatNumber(value)}${opts.unit ?? ''}`)))
    })
    if (i % labelEvery === 0) svg.append(s('text', { x: x0 + groupW / 2, y: HEIGHT - PAD.bottom + 16, 'text-anchor': 'middle', class: 'tick' }, category))
  })
  svg.append(s('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(0), y2: y(0), class: 'axis' }))

  const legend = h('ul', { class: 'legend' }, ...series.map((item, j) => h('li', {},
    s('svg', { viewBox: '0 0 10 10', width: 12, height: 12, 'aria-hidden': 'true' }, s('rect', { width: 10, height: 10, fill: PALETTE[j % PALETTE.length] })), ` ${item.name}`)))
  const table = h('details', { class: 'chart-table' }, h('summary', {}, opts.tableLabel), h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, ''), ...series.map((item) => h('th', { scope: 'col' }, item.name)))),
    h('tbody', {}, ...categories.map((category, i) => h('tr', {}, h('th', { scope: 'row' }, category), ...series.map((item) => h('td', {}, `${formatNumber(item.values[i] ?? 0)}${opts.unit ?? ''}`))))))))
  return h('figure', { class: 'chart-figure' }, h('figcaption', {}, opts.title), svg, legend, table)
}

export function formatNumber(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 1 })
}
