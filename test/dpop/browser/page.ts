// One page of the Chromium DPoP scenario: the real library with a persisted, non-extractable
// IndexedDB key and IndexedDB token storage, against oidc-provider and the jose-verifying API.
// Driven by test/dpop/browser-node.test.ts through window.page.
import ky from 'ky'
import { createTokenAuth, isTokenError, refreshTokenGrant } from '../../../src/index.ts'
import { browserDPoPKey, dpop } from '../../../src/dpop/index.ts'
import { indexedDBStorage } from '../../../src/storage/indexeddb.ts'

const params = new URLSearchParams(location.search)
const as = params.get('as')!
const rs = params.get('rs')!
const key = browserDPoPKey({ dbName: 'dpop-test-keys' })
const sender = dpop({ key })
const auth = createTokenAuth({ grant: refreshTokenGrant({ url: `${as}/token`, clientId: 'spa' }), storage: indexedDBStorage({ dbName: 'dpop-test-tokens' }), origins: [rs], sender })
const api = ky.create({ prefix: rs, hooks: auth.hooks, retry: 0 })

const page = {
  async info() {
    const pair = await key
    const { jkt, alg } = await sender.info()
    const exported = await crypto.subtle.exportKey('jwk', pair.privateKey).then(() => 'exported', (error: Error) => error.name)
    return { jkt, alg, type: pair.privateKey.type, extractable: pair.privateKey.extractable, exported, publicKeyExtractable: pair.publicKey.extractable }
  },
  async exchange(code: string, verifier: string, redirectUri: string) {
    // The sign-in's code exchange goes through the DPoP transport: the tokens are bound to this key.
    const response = await sender.fetch(`${as}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: 'spa' }),
    })
    const tokens = await response.json()
    await auth.setTokens(tokens)
    return tokens.token_type as string
  },
  async fire(count: number) {
    const results = await Promise.allSettled(Array.from({ length: count }, () => api.get('api/items').json()))
    return results.map((result) => (result.status === 'fulfilled' ? 'ok' : isTokenError(result.reason) ? result.reason.code : String(result.reason)))
  },
  refresh: () => auth.getAccessToken({ forceRefresh: true }).then(() => 'refreshed', (error: unknown) => (isTokenError(error) ? error.code : String(error))),
}
Object.assign(window, { page, ready: true })
