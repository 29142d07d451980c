// happy-dom's Response.clone() hands an empty body to one side when the response streams from a
// real socket (upstream bug), and ky passes clones to afterResponse hooks. Buffer each response
// once, with happy-dom's own Response class, so the browser-like globals stay in use.
const socketFetch = globalThis.fetch
globalThis.fetch = async (input, init) => {
  const response = await socketFetch(input, init)
  const buffered = new Response(response.status === 204 ? null : await response.arrayBuffer(), {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  })
  Object.defineProperty(buffered, 'url', { value: response.url })
  return buffered
}

// happy-dom's fetch logs non-2xx responses and network errors on Node's own console (handed to it
// before vitest installs its capturing console); forward it so vite.config.ts's onConsoleLog can
// drop the expected ones and keep real failures loud.
import nodeConsole from 'node:console'
const capturing = globalThis.console
if (capturing !== nodeConsole) {
  for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
    nodeConsole[method] = (...args: unknown[]) => capturing[method](...args)
  }
}
