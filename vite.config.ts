import { resolve } from 'node:path'
import { defineConfig } from 'vite'

// The two pages the gateway serves (src/infra/web.ts): the public portal and the supervision console.
// Built into dist/web with hashed assets under /assets/; nothing is loaded from another origin.
export default defineConfig({
  root: resolve(import.meta.dirname, 'web'),
  base: '/',
  publicDir: false,
  build: {
    outDir: resolve(import.meta.dirname, 'dist/web'),
    emptyOutDir: true,
    assetsDir: 'assets',
    // Every asset is a file: the pages' Content-Security-Policy allows no inline script or style.
    assetsInlineLimit: 0,
    rollupOptions: {
      input: {
        portal: resolve(import.meta.dirname, 'web/portal/index.html'),
        console: resolve(import.meta.dirname, 'web/console/index.html'),
      },
    },
  },
})
