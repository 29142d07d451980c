// The playground: a Vite page using the library straight from src/, plus the built-in mock API
// (the same faithful copies of the four APIs the tests use) mounted at /mock on the same server.
import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import { mockApiPlugin } from './mock-api.ts'

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  plugins: [mockApiPlugin()],
  server: { host: '127.0.0.1', port: Number(process.env.PORT ?? 5173), strictPort: false },
  // Pre-bundle every dependency the page may load (idb-keyval only when IndexedDB is picked, jose
  // only for the DPoP profile), so
  // Vite never discovers one mid-session and reloads the page.
  optimizeDeps: { include: ['ky', 'jose', 'jose/jwt/decode', 'idb-keyval'] },
  clearScreen: false,
  logLevel: 'info',
})
