import { defineConfig } from 'vitest/config'

// The core suites run twice: in Node, and in happy-dom (a browser-like global scope: window,
// document, happy-dom's own Headers/Request/Response). Runtime suites (Chromium, workerd, Redis,
// Deno) have their own projects.
const core = ['test/**/*.test.ts']
const nodeOnly = ['test/dist-smoke.test.ts', 'test/size.test.ts', 'test/e2e/**', 'test/browser/**', 'test/storage/redis.test.ts', 'test/runtime/**']

export default defineConfig({
  test: {
    testTimeout: 30_000,
    // The JSON report feeds .ci/run's plain "N passed, N failed" line.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
    hookTimeout: 30_000,
    projects: [
      { test: { name: 'node', environment: 'node', include: core } },
      { test: { name: 'happy-dom', environment: 'happy-dom', include: core, exclude: nodeOnly, setupFiles: ['test/setup/happy-dom.ts'] } },
    ],
  },
})
