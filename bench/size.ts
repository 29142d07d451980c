// Minified + gzipped bundle sizes, ours and the peers', with the same esbuild flags for all.
// Deterministic (no timing), so test/size.test.ts enforces the budgets with it.
import { build } from 'esbuild'
import { gzipSync } from 'node:zlib'

export interface SizeRow { bundle: string; minified: number; gzip: number; budget?: number }

const ENTRIES: { bundle: string; code: string; external?: string[]; budget?: number }[] = [
  { bundle: 'ky-token-refresh: whole core entry (ky excluded)', code: `export * from 'ky-token-refresh'`, external: ['ky'], budget: 15_450 },
  { bundle: 'ky-token-refresh: createTokenAuth + refreshTokenGrant (ky excluded)', code: `export { createTokenAuth, refreshTokenGrant } from 'ky-token-refresh'`, external: ['ky'], budget: 14_950 },
  { bundle: 'ky-token-refresh: createTokenAuth + clientCredentialsGrant (ky excluded)', code: `export { createTokenAuth, clientCredentialsGrant } from 'ky-token-refresh'`, external: ['ky'], budget: 14_750 },
  { bundle: 'ky-token-refresh: createTokenAuth + refreshTokenGrant + ky', code: `export { createTokenAuth, refreshTokenGrant } from 'ky-token-refresh'; export { default } from 'ky'` },
  { bundle: 'ky-token-refresh/storage/memory', code: `export * from 'ky-token-refresh/storage/memory'`, budget: 850 },
  { bundle: 'ky-token-refresh/storage/indexeddb (idb-keyval excluded)', code: `export * from 'ky-token-refresh/storage/indexeddb'`, external: ['idb-keyval'], budget: 1_400 },
  { bundle: 'ky-token-refresh/storage/indexeddb + idb-keyval', code: `export * from 'ky-token-refresh/storage/indexeddb'` },
  { bundle: 'ky-token-refresh/storage/redis', code: `export * from 'ky-token-refresh/storage/redis'`, budget: 2_500 },
  { bundle: 'ky-token-refresh/storage/cloudflare-kv', code: `export * from 'ky-token-refresh/storage/cloudflare-kv'`, budget: 500 },
  { bundle: 'ky-token-refresh/storage/durable-object', code: `export * from 'ky-token-refresh/storage/durable-object'`, budget: 2_400 },
  { bundle: 'ky-token-refresh/storage/deno-kv', code: `export * from 'ky-token-refresh/storage/deno-kv'`, budget: 1_800 },
  { bundle: 'ky alone', code: `export { default } from 'ky'` },
  { bundle: '@badgateway/oauth2-client: OAuth2Client + OAuth2Fetch', code: `export { OAuth2Client, OAuth2Fetch } from '@badgateway/oauth2-client'` },
  { bundle: 'fetch-extras: withTokenRefresh + withHeaders + withHttpError + pipeline (the bench setup)', code: `export { pipeline, withHeaders, withHttpError, withTokenRefresh } from 'fetch-extras'` },
  { bundle: 'fetch-extras: withTokenRefresh alone', code: `export { withTokenRefresh } from 'fetch-extras'` },
  { bundle: 'axios + axios-auth-refresh', code: `export { default as axios } from 'axios'; export { default as refresh } from 'axios-auth-refresh'` },
  { bundle: 'axios-auth-refresh (axios excluded)', code: `export { default } from 'axios-auth-refresh'`, external: ['axios'] },
  { bundle: 'axios + axios-jwt', code: `export { default as axios } from 'axios'; export * from 'axios-jwt'` },
]

const TYPICAL = `export { createTokenAuth, refreshTokenGrant } from 'ky-token-refresh'`

/** `code` bundled, minified, ESM for browsers: the same flags for every row, ours and the peers'. */
function bundle(code: string, external: string[] = []) {
  return build({
    stdin: { contents: code, resolveDir: process.cwd(), loader: 'js' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    external,
    logLevel: 'silent',
    metafile: true,
    define: { 'process.env.NODE_ENV': '"production"' },
  })
}

export async function sizes(filter?: (bundle: string) => boolean): Promise<SizeRow[]> {
  const rows: SizeRow[] = []
  for (const entry of ENTRIES.filter((item) => !filter || filter(item.bundle))) {
    const result = await bundle(entry.code, entry.external)
    const code = result.outputFiles[0]!.contents
    rows.push({ bundle: entry.bundle, minified: code.byteLength, gzip: gzipSync(code, { level: 9 }).byteLength, ...(entry.budget !== undefined && { budget: entry.budget }) })
  }
  return rows
}

/** Where the bytes of the typical bundle (createTokenAuth + refreshTokenGrant, ky excluded) go. */
export async function breakdown(): Promise<{ file: string; minified: number }[]> {
  const result = await bundle(TYPICAL, ['ky'])
  const output = Object.values(result.metafile!.outputs)[0]!
  return Object.entries(output.inputs)
    .map(([file, info]) => ({ file: file.replace(/^.*node_modules\//, '').replace(/^dist\//, 'src/').replace(/\.js$/, '.ts'), minified: info.bytesInOutput }))
    .filter((row) => row.minified > 0)
    .sort((a, b) => b.minified - a.minified)
}

/**
 * How much of the typical bundle is sentences: its gzip size as built, and with every string or
 * template literal longer than 30 characters (the error messages; header names and codes are
 * shorter) replaced by an empty string. The difference is what the messages cost; the rest is logic.
 */
export async function anatomy(): Promise<{ gzip: number; withoutMessages: number; literals: number }> {
  const { parseSync } = await import('rolldown/utils') // vite's parser (oxc), already installed
  const code = (await bundle(TYPICAL, ['ky'])).outputFiles[0]!.text
  const spans: [number, number][] = []
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit)
    if (typeof node !== 'object' || node === null) return
    const { type, start, end, value } = node as { type?: string; start: number; end: number; value?: unknown }
    if ((type === 'Literal' && typeof value === 'string') || type === 'TemplateLiteral') {
      if (end - start > 30) return void spans.push([start, end])
    }
    for (const child of Object.values(node)) visit(child)
  }
  visit(parseSync('bundle.js', code).program)
  let stripped = code
  for (const [start, end] of spans.sort((a, b) => b[0] - a[0])) stripped = stripped.slice(0, start) + '""' + stripped.slice(end)
  const gzip = (text: string) => gzipSync(text, { level: 9 }).byteLength
  return { gzip: gzip(code), withoutMessages: gzip(stripped), literals: spans.length }
}
