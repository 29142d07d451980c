import { defineConfig } from 'vitest/config'

// The core suites run twice: in Node, and in happy-dom (a browser-like global scope: window,
// document, happy-dom's own Headers/Request/Response). Suites that drive a real runtime from Node
// (Chromium, workerd, redis-server, Deno, the built package) run in the node project only.
const core = ['test/**/*.test.ts']
const nodeOnly = ['test/dist-smoke.test.ts', 'test/trust-node.test.ts', 'test/size.test.ts', 'test/e2e/**', 'test/browser/**', 'test/storage/redis.test.ts', 'test/runtime/**']

export default defineConfig({
  test: {
    // The JSON report feeds .ci/run's plain "N passed, N failed" line.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
    projects: [
      { test: { name: 'node', environment: 'node', include: core, testTimeout: 30_000, hookTimeout: 60_000 } },
      { test: { name: 'happy-dom', environment: 'happy-dom', include: core, exclude: nodeOnly, setupFiles: ['test/setup/happy-dom.ts'], testTimeout: 30_000, hookTimeout: 60_000 } },
    ],
  },
})
