// The DPoP sender constraint through the ky hooks, against an in-memory authorization server and
// API (one fetch function): proof contents, the one-retry rule for nonce challenges at both ends,
// body replay, token-type checks, option validation. Runs under Node and happy-dom.
import ky from 'ky'
import { EmbeddedJWK, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import { createTokenAuth, refreshTokenGrant, type TokenAuth } from '../../src/index.ts'
import { dpop, generateDPoPKey } from '../../src/dpop/index.ts'
import { MODES, rejection, wire } from '../helpers.ts'

const AS = 'https://as.example'
const API = 'https://api.example'

const decode = (jwt: string) => JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(jwt.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0))))

function memoryWorld() {
  const state = {
    asNonce: 'as-nonce-1',
    apiNonce: 'api-nonce-1',
    /** The access token the API accepts. */
    valid: 'at-0',
    issued: 0,
    tokenType: 'DPoP' as string,
    /** Answer every proof at the API / AS with a nonce challenge (a server that keeps rotating). */
    apiAlwaysChallenges: false,
    asAlwaysChallenges: false,
    /** Answer the next API calls 503. */
    unavailable: 0,
    tokenCalls: [] as { proof: Record<string, unknown> | undefined }[],
    apiCalls: [] as { authorization: string | null; proof: string | null }[],
  }
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init)
    const proof = request.headers.get('dpop')
    const claims = proof ? decode(proof) : undefined
    if (request.url.startsWith(AS)) {
      state.tokenCalls.push({ proof: claims })
      if (state.asAlwaysChallenges || claims?.nonce !== state.asNonce) {
        if (state.asAlwaysChallenges) state.asNonce += '+'
        return json(400, { error: 'use_dpop_nonce', error_description: 'use the nonce' }, { 'dpop-nonce': state.asNonce })
      }
      state.valid = `at-${++state.issued}`
      return json(200, { access_token: state.valid, token_type: state.tokenType, expires_in: 300, refresh_token: `rt-${state.issued}` }, { 'dpop-nonce': state.asNonce })
    }
    if (request.body) await request.arrayBuffer()
    state.apiCalls.push({ authorization: request.headers.get('authorization'), proof })
    if (state.unavailable > 0) {
      state.unavailable--
      return json(503, { error: 'busy' })
    }
    if (request.headers.get('authorization') !== `DPoP ${state.valid}`) return json(401, { error: 'invalid_token' }, { 'www-authenticate': 'DPoP error="invalid_token"' })
    if (state.apiAlwaysChallenges || claims?.nonce !== state.apiNonce) {
      if (state.apiAlwaysChallenges) state.apiNonce += '+'
      return json(401, { error: 'use_dpop_nonce' }, { 'www-authenticate': 'DPoP error="use_dpop_nonce"', 'dpop-nonce': state.apiNonce })
    }
    return json(200, { ok: true }, { 'dpop-nonce': state.apiNonce })
  }
  return { state, fetch }
}

async function setup(mode: (typeof MODES)[number] = 'hooks', kyOptions: Parameters<typeof ky.create>[0] = {}) {
  const world = memoryWorld()
  const sender = dpop({ key: generateDPoPKey() })
  const auth: TokenAuth = createTokenAuth({ grant: refreshTokenGrant({ url: `${AS}/token`, clientId: 'spa' }), origins: [API], sender, fetch: world.fetch })
  await auth.setTokens({ access_token: 'at-0', token_type: 'DPoP', expires_in: 300, refresh_token: 'rt-0' })
  const api = wire(auth, mode, { prefix: API, fetch: world.fetch as typeof fetch, retry: 0, ...kyOptions })
  return { ...world, sender, auth, api }
}

for (const mode of MODES) {
  describe(`DPoP through the ky hooks (auth.${mode})`, () => {
    it('every attempt carries a fresh proof: typ, public jwk, htm, htu without query and fragment, iat, unique jti, ath; token calls without ath', async () => {
      const { state, api, auth, sender } = await setup(mode)
      await api.get('items?q=1#frag').json()
      await api.post('items', { json: { a: 1 } }).json()
      await auth.getAccessToken({ forceRefresh: true })
      const { jkt } = await sender.info()
      const proofs = state.apiCalls.map((call) => call.proof!)
      expect(proofs).toHaveLength(3) // the first GET met the nonce challenge once
      const verified = await Promise.all(proofs.map((proof) => jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256'] })))
      expect(verified.map(({ payload }) => [payload.htm, payload.htu])).toEqual([['GET', `${API}/items`], ['GET', `${API}/items`], ['POST', `${API}/items`]])
      expect(new Set(verified.map(({ payload }) => payload.jti)).size).toBe(3)
      expect(verified.every(({ payload }) => typeof payload.iat === 'number' && Math.abs(payload.iat - Date.now() / 1000) < 5)).toBe(true)
      const ath = btoa(String.fromCharCode(...new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode('at-0'))))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
      expect(verified.every(({ payload }) => payload.ath === ath)).toBe(true)
      expect(verified.map(({ payload }) => payload.nonce)).toEqual([undefined, 'api-nonce-1', 'api-nonce-1'])
      expect(Object.keys(verified[0]!.protectedHeader.jwk!).sort()).toEqual(['crv', 'kty', 'x', 'y'])
      expect(state.apiCalls.every((call) => call.authorization === 'DPoP at-0')).toBe(true)
      // Token endpoint: a proof without ath; the first call learned the AS nonce and retried once.
      expect(state.tokenCalls.map(({ proof }) => [proof!.htu, proof!.ath, proof!.nonce])).toEqual([[`${AS}/token`, undefined, undefined], [`${AS}/token`, undefined, 'as-nonce-1']])
      expect(jkt).toMatch(/^[\w-]{43}$/)
    })

    it('an API that answers use_dpop_nonce again after the retry: ERR_STILL_UNAUTHORIZED after exactly one retry, no refresh', async () => {
      const { state, api } = await setup(mode)
      state.apiAlwaysChallenges = true
      const error = await rejection(api.get('items'))
      expect(error.code).toBe('ERR_STILL_UNAUTHORIZED')
      expect(error.message).toMatch(/another DPoP nonce challenge/)
      expect(state.apiCalls).toHaveLength(2)
      expect(state.tokenCalls).toHaveLength(0)
    })

    it('a rejected token after a nonce challenge: one nonce retry, one refresh, one auth retry', async () => {
      const { state, api } = await setup(mode)
      await api.get('items').json() // learn the nonce
      state.valid = 'revoked-elsewhere'
      state.apiNonce = 'api-nonce-2'
      expect(await api.get('items').json()).toMatchObject({ ok: true })
      // stale nonce + old token → 401 invalid_token (token checked first) → refresh → new token, stale nonce → challenge → retry
      expect(state.apiCalls.slice(2).map((call) => call.authorization)).toEqual(['DPoP at-0', 'DPoP at-1', 'DPoP at-1'])
      expect(state.tokenCalls).toHaveLength(2) // AS nonce learned on the first call
    })

    it('a caller retry (503) gets a new proof, never the same one twice', async () => {
      const { state, api } = await setup(mode, { retry: { limit: 1, delay: () => 0 } })
      await api.get('items').json()
      state.unavailable = 1
      await api.get('items').json()
      const proofs = state.apiCalls.map((call) => call.proof)
      expect(new Set(proofs).size).toBe(proofs.length)
    })

    it('a nonce challenge to a streaming body: ERR_BODY_NOT_REPLAYABLE, the nonce is learned for the next request', async () => {
      const { state, api } = await setup(mode)
      const body = new ReadableStream({ start(controller) { controller.enqueue(new TextEncoder().encode('chunk')); controller.close() } })
      const error = await rejection(api.post('items', { body, duplex: 'half' } as never))
      expect(error.code).toBe('ERR_BODY_NOT_REPLAYABLE')
      expect(error.message).toMatch(/nonce/)
      expect(state.tokenCalls).toHaveLength(0)
      expect(await api.post('items', { body: 'again' }).json()).toMatchObject({ ok: true })
      expect(state.apiCalls).toHaveLength(2)
    })

    it('with throwHttpErrors: false a nonce challenge is retried once too', async () => {
      const { state, api } = await setup(mode, { throwHttpErrors: false })
      const response = await api.get('items')
      expect(response.status).toBe(mode === 'hooks' || mode === 'extend' ? 200 : 401)
      expect(state.apiCalls).toHaveLength(2)
    })
  })
}

describe('DPoP at the token endpoint and token types', () => {
  it('an AS that keeps answering use_dpop_nonce: one retry, then ERR_TOKEN_ENDPOINT; stored tokens kept', async () => {
    const { state, auth } = await setup()
    state.asAlwaysChallenges = true
    const error = await rejection(auth.getAccessToken({ forceRefresh: true }))
    expect(error.code).toBe('ERR_TOKEN_ENDPOINT')
    expect(error.message).toMatch(/new nonce/)
    expect(state.tokenCalls).toHaveLength(2)
    expect((await auth.storage.get('default'))!.refreshToken).toBe('rt-0')
  })

  it('a Bearer token where DPoP was required is ERR_TOKEN_RESPONSE_INVALID saying what to do; a rotated refresh token in it is kept', async () => {
    const { state, auth } = await setup()
    state.tokenType = 'Bearer'
    const error = await rejection(auth.getAccessToken({ forceRefresh: true }))
    expect(error.code).toBe('ERR_TOKEN_RESPONSE_INVALID')
    expect(error.message).toMatch(/Bearer token although DPoP was required.*dpop_bound_access_tokens/)
    expect((await auth.storage.get('default'))!.refreshToken).toBe('rt-1')
  })

  it('a DPoP token without a sender is refused, pointing at ky-token-refresh/dpop (token endpoint and setTokens)', async () => {
    const world = memoryWorld()
    world.state.asNonce = 'x'
    const bearer = createTokenAuth({ grant: refreshTokenGrant({ url: `${AS}/token` }), fetch: async () => new Response(JSON.stringify({ access_token: 'abc', token_type: 'DPoP', expires_in: 60, refresh_token: 'r' }), { headers: { 'content-type': 'application/json' } }) })
    await bearer.setTokens({ accessToken: 'old', refreshToken: 'r0', receivedAt: Date.now() })
    const error = await rejection(bearer.getAccessToken({ forceRefresh: true }))
    expect(error.code).toBe('ERR_TOKEN_RESPONSE_INVALID')
    expect(error.message).toMatch(/DPoP-bound token.*ky-token-refresh\/dpop/)
    const set = await rejection(bearer.setTokens({ access_token: 'abc', token_type: 'DPoP' }))
    expect(set.code).toBe('ERR_TOKEN_RESPONSE_INVALID')
  })

  it('setTokens() with a sender needs token_type DPoP; nothing is stored otherwise', async () => {
    const { auth } = await setup()
    await auth.logout({ revoke: false })
    for (const token_type of ['Bearer', undefined]) {
      const error = await rejection(auth.setTokens({ access_token: 'abc', ...(token_type && { token_type }) }))
      expect(error.code).toBe('ERR_TOKEN_RESPONSE_INVALID')
    }
    expect(await auth.storage.get('default')).toBeUndefined()
    await auth.setTokens({ access_token: 'abc', token_type: 'dpop' }) // case-insensitive
    expect((await auth.storage.get('default'))!.accessToken).toBe('abc')
  })

  it('sender options are validated at setup', () => {
    const grant = refreshTokenGrant({ url: `${AS}/token` })
    const sender = dpop({ key: generateDPoPKey() })
    expect(() => createTokenAuth({ grant, sender, scheme: 'Token' })).toThrow(/cannot be combined with "sender"/)
    expect(() => createTokenAuth({ grant, sender, header: 'X-Api-Key' })).toThrow(/cannot be combined with "sender"/)
    expect(() => createTokenAuth({ grant, sender, headers: { DPoP: 'x' } })).toThrow(/"headers" cannot set "DPoP"/)
    expect(() => createTokenAuth({ grant, sender: {} as never })).toThrow(/"sender" must be/)
    expect(() => dpop({} as never)).toThrow(/dpop\(\) needs \{ key \}/)
  })
})
