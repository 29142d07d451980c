/**
 * One token-endpoint call shared by the built-in grants: body encoding, client authentication,
 * a per-attempt timeout and a bounded retry that honours `Retry-After`.
 *
 * @module
 */
import { TokenError, isTokenError } from '../errors.js'
import type { GrantContext, TokenSet } from '../types.js'
import { describeURL, readTokenResponse } from './token-response.js'

/** How the client authenticates to the token endpoint (RFC 6749 §2.3.1). */
export type ClientAuthMethod = 'none' | 'client_secret_post' | 'client_secret_basic'

/** Settings shared by every grant that calls a token endpoint. */
export interface TokenEndpointOptions {
  /** Extra headers for the token endpoint only (never sent to the API), e.g. a tenant header. */
  headers?: Record<string, string>
  /**
   * Attempts for failures that are safe to repeat (default 3). A rotating refresh-token request
   * is repeated only on 429/502/503/504, never after a network fault or timeout: the server may
   * already have rotated the token, and replaying the old one would trip reuse detection.
   */
  attempts?: number
  /** Per-attempt timeout (ms). Default 10000 (10 seconds). */
  timeout?: number
  /** Longest `Retry-After` (seconds) we wait out; a longer one fails at once. Default 10. */
  maxRetryAfter?: number
}

/** @internal What a grant asks {@link callTokenEndpoint} to send. */
export interface TokenCall extends TokenEndpointOptions {
  url: string
  encoding: 'form' | 'json'
  fields: Record<string, string>
  clientAuth?: ClientAuthMethod
  clientId?: string
  clientSecret?: string
  /** Whether a repeat after a network fault is harmless (client credentials, login). */
  idempotent: boolean
  rejected: 'session' | 'client'
  secrets: readonly string[]
}

/** @internal POST to the token endpoint and return validated tokens, or throw a `TokenError`. */
export async function callTokenEndpoint(call: TokenCall, context: GrantContext): Promise<TokenSet> {
  const { attempts = 3, timeout = 10_000, maxRetryAfter = 10 } = call
  const where = describeURL(call.url)
  for (let attempt = 1; ; attempt++) {
    let retryAfter: number | undefined
    let failure: TokenError
    const controller = new AbortController()
    const abort = () => controller.abort(context.signal.reason)
    context.signal.addEventListener('abort', abort, { once: true })
    const timer = setTimeout(() => controller.abort(), timeout)
    try {
      const response = await context.fetch(call.url, { method: 'POST', signal: controller.signal, ...encode(call) })
      // Everything we sent (refresh token, password, secret) is scrubbed from quoted server text.
      const { grant_type: _, ...sent } = call.fields
      const secrets = [...call.secrets, ...Object.values(sent), call.clientSecret ?? '']
      return await readTokenResponse(response, { now: context.now, rejected: call.rejected, secrets })
    } catch (error) {
      if (context.signal.aborted) throw context.signal.reason
      if (isTokenError(error)) {
        const transient = error.code === 'ERR_TOKEN_ENDPOINT' && error.status !== undefined &&
          (call.idempotent ? error.status >= 500 || error.status === 429 : [429, 502, 503, 504].includes(error.status))
        if (!transient) throw error
        failure = error
        retryAfter = error.retryAfter
      } else {
        const timedOut = controller.signal.aborted
        failure = new TokenError(
          'ERR_TOKEN_ENDPOINT_UNREACHABLE',
          `Could not reach the token endpoint ${where} (${timedOut ? `no answer within ${timeout} ms` : 'network error'}). Stored tokens were kept; check connectivity and try again.`,
          { cause: error },
        )
        if (!call.idempotent) throw failure
      }
    } finally {
      clearTimeout(timer)
      context.signal.removeEventListener('abort', abort)
    }
    if (attempt >= attempts || (retryAfter !== undefined && retryAfter > maxRetryAfter)) throw failure
    await sleep(retryAfter !== undefined ? retryAfter * 1000 : 100 * 2 ** attempt, context.signal)
  }
}

/** @internal Body and headers for a token-endpoint style POST, with the client authentication. */
export function encode(call: Pick<TokenCall, 'headers' | 'fields' | 'encoding' | 'clientAuth' | 'clientId' | 'clientSecret'>): { headers: Headers; body: string } {
  const headers = new Headers(call.headers)
  const fields = { ...call.fields }
  const { clientId, clientSecret, clientAuth = clientSecret ? 'client_secret_basic' : 'none' } = call
  if (clientAuth === 'client_secret_basic') {
    // RFC 6749 §2.3.1: form-urlencode id and secret before base64, so any character survives.
    const user = formEncode(clientId ?? '')
    headers.set('authorization', `Basic ${btoa(`${user}:${formEncode(clientSecret ?? '')}`)}`)
  } else if (clientId !== undefined) {
    fields.client_id = clientId
    if (clientAuth === 'client_secret_post' && clientSecret !== undefined) fields.client_secret = clientSecret
  }
  headers.set('accept', 'application/json')
  if (call.encoding === 'json') {
    headers.set('content-type', 'application/json')
    return { headers, body: JSON.stringify(fields) }
  }
  headers.set('content-type', 'application/x-www-form-urlencoded')
  return { headers, body: new URLSearchParams(fields).toString() }
}

function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2)
}

/** Wait `ms`, rejecting early with the signal's reason when it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const done = () => {
      signal?.removeEventListener('abort', stop)
      resolve()
    }
    const timer = setTimeout(done, ms)
    const stop = () => {
      clearTimeout(timer)
      reject(signal!.reason)
    }
    signal?.addEventListener('abort', stop, { once: true })
  })
}
