import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { projectPath } from './paths.js'

export const WEB_ROOT = projectPath('dist/web')
export const WEB_PAGES = ['portal', 'console'] as const

/**
 * Headers for the pages: everything comes from this origin (no CDN), no inline script or style, no
 * framing, no referrer leaking a tracking code; the console's key never leaves the browser, and
 * connect-src 'self' keeps a script from sending it anywhere else.
 */
const PAGE_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}

/**
 * The public portal (`/portal/`, also `/`) and the supervision console (`/console/`): static files
 * Vite built into dist/web (`npm run build:web`, run by `npm install`). Without a build the pages
 * answer 503 `web.not_built`, and every API route works as before.
 */
export async function webPages(app: FastifyInstance, opts: { root?: string } = {}) {
  const root = opts.root ?? WEB_ROOT
  app.get('/', { schema: { hide: true } }, (_req, reply) => reply.redirect('/portal/', 302))
  // Our own redirects for the page folders without their slash (the query kept): @fastify/static's
  // (redirect: true) answered some fuzzed requests twice ("Reply was already sent").
  for (const page of WEB_PAGES) {
    app.get(`/${page}`, { schema: { hide: true } }, (req, reply) => {
      const q = req.url.indexOf('?')
      return reply.redirect(`/${page}/${q < 0 ? '' : req.url.slice(q)}`, 301)
    })
  }
  if (!WEB_PAGES.every((page) => existsSync(join(root, page, 'index.html')))) {
    app.log.warn({ root }, 'web pages not built (npm run build:web): /portal/ and /console/ answer 503')
    for (const page of WEB_PAGES) {
      app.get(`/${page}/`, { schema: { hide: true } }, (_req, reply) => reply.code(503).type('application/problem+json').send({
        type: 'about:blank', status: 503, code: 'web.not_built', title: 'The web pages have not been built', detail: 'run npm run build:web',
      }))
    }
    return
  }
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    // Only the files present at start-up get routes; any other path falls through to route.not_found.
    wildcard: false,
    decorateReply: false,
    redirect: false,
    index: ['index.html'],
    serveDotFiles: false,
    setHeaders(reply, path) {
      for (const [name, value] of Object.entries(PAGE_HEADERS)) reply.header(name, value)
      // Hashed assets never change; the pages themselves are re-checked so a deploy shows at once.
      reply.header('cache-control', path.startsWith(join(root, 'assets')) ? 'public, max-age=31536000, immutable' : 'no-cache')
    },
  })
}
