// .mts: the root package.json is CommonJS, and Vite warns when it has to load its config as CommonJS.
// `pose serve` serves web/dist itself (GET / and GET /assets/{file}), so the build must be self-contained
// under /assets with absolute URLs.
import { defineConfig } from 'vite';

const webRoot = new URL('.', import.meta.url).pathname;

export default defineConfig({
  root: webRoot,
  base: '/',
  build: {
    outDir: 'dist',
    assetsDir: 'assets', // flat: the server maps /assets/{file} to one folder
    emptyOutDir: true,
    target: 'es2022',
  },
  server: {
    // `npx vite web` during development: the API and its WebSocket come from a running `pose serve`.
    proxy: {
      '/api': { target: 'http://127.0.0.1:8400', ws: true },
      '/readyz': 'http://127.0.0.1:8400',
    },
  },
});
