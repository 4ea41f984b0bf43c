/**
 * Chinese first, English on request. The choice is kept in localStorage and in `?lang=`; elements
 * with `data-i18n="key"` are re-labelled on every switch, and pages re-render their own content.
 */
export type Lang = 'zh' | 'en'
export type Dictionary = Record<string, { zh: string; en: string }>

export interface I18n {
  lang(): Lang
  t(key: string, vars?: Record<string, string | number>): string
  set(lang: Lang): void
  onChange(listener: () => void): void
}

export function createI18n(dictionary: Dictionary): I18n {
  const fromQuery = new URLSearchParams(location.search).get('lang')
  let current: Lang = fromQuery === 'en' || fromQuery === 'zh' ? fromQuery : (localStorage.getItem('lang') === 'en' ? 'en' : 'zh')
  const listeners: Array<() => void> = []
  const t = (key: string, vars: Record<string, string | number> = {}) => {
    const entry = dictionary[key]
    const text = entry ? entry[current] : key
    return text.replace(/\{(\w+)\}/g, (_, name: string) => String(vars[name] ?? `{${name}}`))
  }
  const apply = () => {
    document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en'
    for (const el of document.querySelectorAll<HTMLElement>('[data-i18n]')) el.textContent = t(el.dataset.i18n!)
    for (const el of document.querySelectorAll<HTMLElement>('[data-i18n-placeholder]')) el.setAttribute('placeholder', t(el.dataset.i18nPlaceholder!))
    for (const el of document.querySelectorAll<HTMLElement>('[data-i18n-label]')) el.setAttribute('aria-label', t(el.dataset.i18nLabel!))
    for (const listener of listeners) listener()
  }
  const i18n: I18n = {
    lang: () => current,
    t,
    set(lang) { current = lang; localStorage.setItem('lang', lang); apply() },
    onChange(listener) { listeners.push(listener) },
  }
  queueMicrotask(apply)
  return i18n
}

/** Wires a button that switches between the two languages. */
export function languageToggle(button: HTMLButtonElement, i18n: I18n) {
  const label = () => { button.textContent = i18n.lang() === 'zh' ? 'English' : '中文'; button.lang = i18n.lang() === 'zh' ? 'en' : 'zh-CN' }
  button.addEventListener('click', () => i18n.set(i18n.lang() === 'zh' ? 'en' : 'zh'))
  i18n.onChange(label)
  label()
}
