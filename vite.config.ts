import { defineConfig } from 'vitest/config'

// The core suites run twice: in Node, and in happy-dom (a browser-like global scope: window,
// document, happy-dom's own Headers/Request/Response). Suites that drive a real runtime from Node
// (Chromium, workerd, redis-server, Deno, the built package) run in the node project only.
const core = ['test/**/*.test.ts']
const nodeOnly = ['test/dist-smoke.test.ts', 'test/trust-node.test.ts', 'test/size.test.ts', 'test/e2e/**', 'test/browser/**', 'test/storage/redis.test.ts', 'test/runtime/**', 'test/dpop/*-node.test.ts']

// Expected console output of a green run, dropped; anything else still prints, labelled with its
// test. happy-dom's fetch reports like a browser's console: every non-2xx response ("POST
// http://127.0.0.1:PORT/path 401 (Unauthorized)": the 401 storms, the token-endpoint corpus) and
// every network error (the reset and refused connections of the fault tests), all against the
// loopback fixtures. (It reaches vitest's console through test/setup/happy-dom.ts.)
const EXPECTED_LOGS = [
  /^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|QUERY) http:\/\/127\.0\.0\.1:\d+\/\S* \d{3} \([^)\n]*\)\n?$/,
  /^Error: (socket hang up|read ECONNRESET|connect ECONNREFUSED 127\.0\.0\.1:\d+)\n\s+at [^]*\bcode: '(ECONNRESET|ECONNREFUSED)'[^]*\}\n?$/,
]

export default defineConfig({
  test: {
    onConsoleLog: (log, type) => !(type === 'stderr' && EXPECTED_LOGS.some((pattern) => pattern.test(log.replace(/\u001b\[[\d;]*m/g, '')))),
    // The JSON report feeds .ci/run's plain "N passed, N failed" line.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-results/vitest.json' },
    projects: [
      { test: { name: 'node', environment: 'node', include: core, setupFiles: ['test/setup/leak-scan.ts'], testTimeout: 30_000, hookTimeout: 60_000 } },
      { test: { name: 'happy-dom', environment: 'happy-dom', include: core, exclude: nodeOnly, setupFiles: ['test/setup/happy-dom.ts', 'test/setup/leak-scan.ts'], testTimeout: 30_000, hookTimeout: 60_000 } },
    ],
  },
})
