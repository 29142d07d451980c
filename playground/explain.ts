/**
 * Words for what happened: burst summaries ("50 requests → 50 × 401 → 1 token call → 50
 * replayed, all OK"), one-line error explanations (what happened, whether the stored tokens were
 * kept or deleted, what to do) and the library's events in plain language.
 */
import type { TokenErrorCode } from '../src/index.ts'

/** What one burst did, counted by the mock server (per action) and the page (outcomes). */
export interface BurstFacts {
  requests: number
  apiCalls: number
  unauthorized: number
  forbidden: number
  tokenCalls: number
  tokenStatuses: number[]
  replayed: number
  ok: number
  failed: number
  /** Error codes of the failed requests, most frequent first. */
  codes: string[]
  reuse: number
  /** DPoP: API answers 401 `use_dpop_nonce` (not counted in {@link BurstFacts.unauthorized}). */
  nonceChallenges?: number
  /** DPoP: requests retried with a fresh proof after a nonce challenge. */
  nonceRetried?: number
  /** DPoP: token-endpoint answers 400 `use_dpop_nonce` (counted in {@link BurstFacts.tokenCalls}). */
  tokenChallenges?: number
}

const plural = (count: number, word: string) => `${count} ${word}${count === 1 ? '' : 's'}`

/**
 * "50 requests → 50 × 401 → 1 token call → 50 replayed, all OK"; with DPoP nonce challenges
 * "20 requests → 20 × nonce challenge → 0 token calls → 20 retried with a fresh proof, all OK".
 */
export function summarize(facts: BurstFacts): string {
  const outcome =
    facts.failed === 0 ? 'all OK'
    : facts.ok === 0 ? `all failed (${facts.codes.join(', ')})`
    : `${facts.ok} OK, ${facts.failed} failed (${facts.codes.join(', ')})`
  const nonces = facts.nonceChallenges ?? 0
  const tokenChallenges = facts.tokenChallenges ?? 0
  const tokens = `${plural(facts.tokenCalls - tokenChallenges, 'token call')}${tokenChallenges ? ` (+ ${tokenChallenges} × nonce challenge at the token endpoint)` : ''}`
  if (!nonces) return `${plural(facts.requests, 'request')} → ${facts.unauthorized} × 401 → ${tokens} → ${facts.replayed} replayed, ${outcome}`
  const challenges = `${nonces} × nonce challenge${facts.unauthorized ? `, ${facts.unauthorized} × 401` : ''}`
  const retried = `${facts.nonceRetried ?? 0} retried with a fresh proof${facts.unauthorized ? `, ${facts.replayed} replayed` : ''}`
  return `${plural(facts.requests, 'request')} → ${challenges} → ${tokens} → ${retried}, ${outcome}`
}

/** One line on why the burst went the way it did (the error lines come from {@link explainError}). */
export function explainBurst(facts: BurstFacts, refreshBeforeSeconds: number): string {
  const statuses = facts.tokenStatuses.filter((status) => status !== 200)
  const endpoint = statuses.length ? ` The token endpoint answered ${statuses.map((status) => status || 'nothing').join(', ')}.` : ''
  if (facts.requests === 0) return ''
  const nonces = facts.nonceChallenges ?? 0
  if (nonces > 0 && facts.failed === 0) {
    const nonce = `${facts.nonceRetried === 1 && facts.requests === 1 ? 'The request' : 'Every request'} that carried the API's old DPoP nonce got one nonce challenge (401 use_dpop_nonce with a new DPoP-Nonce) and was retried once with a fresh proof signed with the new nonce. A nonce challenge is not a dead token: it never causes a refresh.`
    return facts.unauthorized > 0 && facts.tokenCalls > 0 ? `${nonce} The 401s for the expired token waited for one shared token call, then were replayed with the new token.` : nonce
  }
  if (facts.reuse > 0) return 'The server saw a spent refresh token again and revoked the whole session (reuse detection).'
  if (facts.failed > 0) {
    if (facts.apiCalls === 0) return `No request reached the API.${endpoint}`
    if (facts.unauthorized > 0 && facts.tokenCalls > 0) return `The requests got 401s and waited for a shared token call, which failed; none was replayed.${endpoint}`
    return `The API answered, but not with success.${endpoint}`
  }
  if (facts.unauthorized > 0 && facts.tokenCalls > 0) {
    return facts.requests === 1
      ? 'The request got a 401 for the old token, waited for one token call, and was replayed once with the new token.'
      : `Every request that got a 401 waited for the same single token call (single flight), then was replayed once with the new token.${facts.tokenCalls > 1 ? endpoint : ''}`
  }
  if (facts.unauthorized > 0) return 'The requests got 401s, then found new tokens already in storage (another tab or caller had refreshed): no token call from this tab.'
  if (facts.tokenCalls > 0 && facts.tokenCalls === (facts.tokenChallenges ?? 0) + 1) return `The token was within ${refreshBeforeSeconds} s of expiry (refreshBefore), so it was renewed once before the requests went out${facts.tokenChallenges ? '; the token endpoint asked for its DPoP nonce first (one retry with a fresh proof)' : ''}: no 401 at all.`
  if (facts.tokenCalls > 0) return `The token was within ${refreshBeforeSeconds} s of expiry (refreshBefore), so it was renewed once before the requests went out: no 401 at all.`
  return 'The token was still fresh: every request went out once with it; no token call.'
}

interface ErrorText { what: string; tokens: string; todo: string }

const ERRORS: Record<TokenErrorCode, ErrorText> = {
  ERR_TOKEN_MISSING: { what: 'nothing is stored yet, so no request was sent', tokens: 'No tokens stored', todo: 'sign in first (step 1)' },
  ERR_TOKEN_RESPONSE_INVALID: { what: 'the token endpoint answered 200 with something that is not a token response (an HTML page)', tokens: 'Stored tokens kept', todo: 'set the token endpoint back to normal and fire again' },
  ERR_TOKEN_ENDPOINT: { what: 'the token endpoint answered with an error (5xx or 429, retried up to 3 times)', tokens: 'Stored tokens kept', todo: 'set it back to normal, wait a second (failed refreshes back off 1 s, 2 s, 4 s …) and fire again' },
  ERR_TOKEN_ENDPOINT_UNREACHABLE: { what: 'the token endpoint could not be reached or did not answer in time', tokens: 'Stored tokens kept', todo: 'check the connection and fire again' },
  ERR_INVALID_CLIENT: { what: 'the token endpoint rejected the client credentials or the login', tokens: 'Stored tokens kept', todo: 'fix the credentials (here: pick the profile again to reload them)' },
  ERR_SESSION_ENDED: { what: 'the server rejected the refresh token: the session is over (revoked, expired or reused)', tokens: 'Stored tokens deleted', todo: 'sign in again' },
  ERR_LOGGED_OUT: { what: 'the session ended while the request waited (a logout here or in another tab, or the server ended it for an earlier request)', tokens: 'Stored tokens deleted', todo: 'sign in again' },
  ERR_STILL_UNAUTHORIZED: { what: 'the API answered 401 again right after a refresh and one replay; the library does not loop', tokens: 'Stored tokens kept', todo: 'check which audience and scopes the API expects' },
  ERR_STATIC_TOKEN_REJECTED: { what: 'the API rejected the static API token with a 401; it cannot be refreshed', tokens: 'Nothing stored', todo: 'replace the API token' },
  ERR_INSUFFICIENT_SCOPE: { what: 'the API answered 403: the token is valid but lacks a scope, so refreshing would not help', tokens: 'Stored tokens kept', todo: 'request that scope when signing in' },
  ERR_BODY_NOT_REPLAYABLE: { what: 'a 401 on a streaming body, which cannot be sent twice', tokens: 'Tokens refreshed and kept', todo: 'send a buffered body (string, FormData, Blob) instead' },
  ERR_STORAGE: { what: 'the storage adapter failed (for example IndexedDB blocked in a private window)', tokens: 'Stored tokens unchanged', todo: 'check the storage and fire again' },
  ERR_LOCK_TIMEOUT: { what: 'another tab held the refresh lock for too long', tokens: 'Stored tokens unchanged', todo: 'fire again' },
  ERR_DISPOSED: { what: 'this auth instance was disposed (the page switched profile or storage mid-request)', tokens: 'Stored tokens unchanged', todo: 'fire again' },
}

/** "ERR_SESSION_ENDED: the server rejected … Stored tokens deleted. Sign in again." */
export function explainError(code: string, detail: { status?: number; scope?: string } = {}): string {
  const text = ERRORS[code as TokenErrorCode]
  if (!text) {
    if (code === 'HTTPError') return `HTTPError: the API answered ${detail.status ?? 'an error'} that is not about the token. Stored tokens kept. Read the API's error body in the inspector.`
    if (code === 'TimeoutError') return 'TimeoutError: the API did not answer in time. Stored tokens kept. Fire again.'
    return `${code}: an unexpected error. Stored tokens unchanged. See the browser console.`
  }
  let what = text.what
  if (code === 'ERR_INSUFFICIENT_SCOPE' && detail.scope) what += ` (missing: ${detail.scope})`
  if (code === 'ERR_TOKEN_ENDPOINT' && detail.status) what = `the token endpoint answered ${detail.status} (retried up to 3 times)`
  return `${code}: ${what}. ${text.tokens}. ${text.todo[0]!.toUpperCase()}${text.todo.slice(1)}.`
}

/** Whether stored tokens survive this error (for the banner). */
export const tokensDeleted = (code: string) => code === 'ERR_SESSION_ENDED' || code === 'ERR_LOGGED_OUT'

/** The library's `tokens` event causes, in words. */
export const TOKEN_CAUSES: Record<string, string> = {
  set: 'tokens stored (signed in)',
  refresh: 'new tokens stored after a refresh',
  adopt: 'using tokens found in storage (stored earlier, or by another tab)',
  logout: 'tokens deleted (logged out)',
  'session-ended': 'tokens deleted: the server ended the session',
  remote: 'another tab changed the stored tokens',
}
