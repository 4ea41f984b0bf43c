/**
 * The portal's i18n: the shared createI18n with this page's dictionary, plus live text nodes that
 * re-translate themselves on a language switch. Views never re-render for a switch, so what a user
 * typed into a form survives it.
 */
import { createI18n, type Lang } from '../shared/i18n.js'
import { dictionary } from './strings.js'

export type Key = keyof typeof dictionary
type Vars = Record<string, string | number>

export const i18n = createI18n(dictionary)

export function t(key: Key, vars?: Vars): string {
  return i18n.t(key, vars)
}

/** For keys built from API values (a status, a ground): the key if the dictionary has it. */
export function known(key: string): Key | undefined {
  return key in dictionary ? (key as Key) : undefined
}

const liveTexts = new Set<{ ref: WeakRef<Text>; text: () => string }>()
const liveAttrs = new Set<{ ref: WeakRef<Element>; name: string; text: () => string }>()

i18n.onChange(() => {
  for (const entry of liveTexts) {
    const node = entry.ref.deref()
    if (node) node.data = entry.text()
    else liveTexts.delete(entry)
  }
  for (const entry of liveAttrs) {
    const el = entry.ref.deref()
    if (el) el.setAttribute(entry.name, entry.text())
    else liveAttrs.delete(entry)
  }
})

/** A text node computed now and again on every language switch. */
export function dyn(text: () => string): Text {
  const node = document.createTextNode(text())
  liveTexts.add({ ref: new WeakRef(node), text })
  return node
}

/** A dictionary string as a live text node. */
export function tr(key: Key, vars?: Vars): Text {
  return dyn(() => t(key, vars))
}

/** An attribute (aria-label, title …) kept in the current language. */
export function trAttr<E extends Element>(el: E, name: string, text: () => string): E {
  el.setAttribute(name, text())
  liveAttrs.add({ ref: new WeakRef(el), name, text })
  return el
}

const locale = (lang: Lang) => (lang === 'zh' ? 'zh-CN' : 'en-GB')

/** An amount in yuan, e.g. ¥120,000.00. */
export function money(amount: number): Text {
  return dyn(() => new Intl.NumberFormat(locale(i18n.lang()), { style: 'currency', currency: 'CNY' }).format(amount))
}

/** A moment in China time (deadlines and history are China-time facts). */
export function dateTime(iso: string): Text {
  return dyn(() => new Intl.DateTimeFormat(locale(i18n.lang()), { timeZone: 'Asia/Shanghai', dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso)))
}

export function timeNow(): string {
  return new Intl.DateTimeFormat(locale(i18n.lang()), { timeZone: 'Asia/Shanghai', timeStyle: 'medium' }).format(new Date())
}

/** Today's date in China (YYYY-MM-DD), the calendar the gateway's deadlines are counted on. */
export function todayInChina(): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date())
}

export function fileSize(bytes: number): Text {
  return tr('size.kib', { n: Math.max(1, Math.ceil(bytes / 1024)) })
}

/** A colon in the current language's typography (full-width in Chinese). */
export function colon(): Text {
  return dyn(() => (i18n.lang() === 'zh' ? '：' : ': '))
}
