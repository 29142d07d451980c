/**
 * One token-endpoint call shared by the built-in grants: body encoding, client authentication,
 * no redirects, a per-attempt timeout and a bounded retry that honours `Retry-After`.
 *
 * Redirects are never followed (`redirect: 'manual'`): a 307/308 would re-send the refresh token,
 * the client secret or the password to wherever `Location` points. A 3xx is an error that asks for
 * the final URL.
 *
 * A lost rotation response is replayed once, at once. When a rotating refresh (`idempotent:
 * false`) fails ambiguously, that is, the server may have processed it but its answer never
 * arrived (a network fault or reset after sending, the per-attempt timeout, a gateway's 502 or
 * 504), the stored refresh token may already be spent. We send the same request again immediately,
 * exactly once, because:
 * - the client holds nothing but the old refresh token, so any later refresh would replay it
 *   anyway, only later;
 * - servers with a reuse grace window (Auth0's rotation overlap, Okta's grace period) answer a
 *   replay inside the window with valid tokens, so replaying at once is the only way to recover;
 * - on a strict reuse-detection server the replay of a processed token revokes the family, the
 *   same result any later refresh would have had; if the server never processed the first request,
 *   the replay simply succeeds.
 * If the replay is rejected (`invalid_grant`, 401), the error is `ERR_SESSION_ENDED` and says that
 * the earlier response was lost. Answers that say "not processed" (429, 503) keep the bounded,
 * `Retry-After`-honouring retries; a 500 is not repeated (it may have rotated, and a broken server
 * does not get better by being asked twice in a row). Idempotent calls (client credentials, login)
 * retry network faults, timeouts, 5xx and 429 with backoff.
 *
 * @module
 */
import { TokenError, isTokenError } from '../errors.js'
import type { GrantContext, TokenSet } from '../types.js'
import { isLocalFailure } from './sender.js'
import { describeURL, readTokenResponse } from './token-response.js'

/**
 * How the client authenticates to the token endpoint: RFC 6749 §2.3.1 (`client_secret_basic`,
 * `client_secret_post`), none (public clients), or RFC 7523 `private_key_jwt` (a signed client
 * assertion; needs the `clientAssertion` option).
 */
export type ClientAuthMethod = 'none' | 'client_secret_post' | 'client_secret_basic' | 'private_key_jwt'

/** The RFC 7523 `client_assertion_type` for a JWT client assertion. */
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

/**
 * Signs RFC 7523 client assertions for `clientAuth: 'private_key_jwt'`. Build one with
 * `privateKeyJwt({ key })` from `ky-token-refresh/dpop` (jose stays out of the core bundle), or
 * implement it over your own signer (a KMS, an HSM).
 */
export interface ClientAssertion {
  /**
   * A fresh signed assertion for one token-endpoint call: `iss` = `sub` = `clientId`, `aud` =
   * `endpoint` (or the audience the signer was configured with, e.g. the issuer), a unique `jti`
   * and a short `exp`. Called once per attempt: servers refuse a replayed `jti`.
   */
  sign(claims: { clientId: string; endpoint: string }): Promise<string>
}

/** Settings shared by every grant that calls a token endpoint. */
export interface TokenEndpointOptions {
  /** Extra headers for the token endpoint only (never sent to the API), e.g. a tenant header. */
  headers?: Record<string, string>
  /**
   * Attempts per token-endpoint call, counting the first (default 3; `1` turns off every repeat,
   * the lost-response replay included).
   *
   * - Client credentials and login (safe to repeat): network faults, timeouts, 5xx and 429 are
   *   retried with backoff, honouring `Retry-After`.
   * - A rotating refresh: 429 and 503 (the server says it did not process the request) are retried
   *   the same way. A failure that leaves it unknown whether the server rotated the token (network
   *   fault after sending, timeout, 502, 504) is replayed exactly once, immediately: the client
   *   has only the old refresh token, so any later refresh would replay it anyway; a server with a
   *   reuse grace window (Auth0, Okta) answers a prompt replay with valid tokens; a strict
   *   reuse-detection server ends the session, as a later refresh would have, and if the first
   *   request was never processed the replay just succeeds. A replay rejected by the server is
   *   `ERR_SESSION_ENDED`, saying the earlier response was lost. A 500 is not repeated.
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
  clientAssertion?: ClientAssertion
  /** Whether a repeat after a network fault is harmless (client credentials, login). */
  idempotent: boolean
  rejected: 'session' | 'client'
  secrets: readonly string[]
}

/** @internal POST to the token endpoint and return validated tokens, or throw a `TokenError`. */
export async function callTokenEndpoint(call: TokenCall, context: GrantContext): Promise<TokenSet> {
  const { attempts = 3, timeout = 10_000, maxRetryAfter = 10 } = call
  const where = describeURL(call.url)
  // Everything we sent (refresh token, password, secret, the Basic credential) is scrubbed from
  // quoted server text.
  const { grant_type: _, ...sent } = call.fields
  const secrets = [...call.secrets, ...Object.values(sent), call.clientId ?? '', call.clientSecret ?? '', basicCredential(call) ?? '']
  let lost: string | undefined // why the answer we replay for never arrived
  let nonceRetried = false // a DPoP nonce challenge is answered once, at once, and is not an attempt
  for (let attempt = 1; ; attempt++) {
    let retryAfter: number | undefined
    let failure: TokenError
    let ambiguous: string | undefined
    const controller = new AbortController()
    const abort = () => controller.abort(context.signal.reason)
    context.signal.addEventListener('abort', abort, { once: true })
    const timer = setTimeout(() => controller.abort(), timeout)
    let assertion: string | undefined
    try {
      // A client assertion is signed per attempt (a replayed jti is refused) and scrubbed like a secret.
      assertion = await signAssertion(call, call.url)
      if (assertion) secrets.push(assertion)
      const response = await context.fetch(call.url, { method: 'POST', signal: controller.signal, ...encode(call, assertion) })
      return await readTokenResponse(response, { now: context.now, rejected: call.rejected, secrets, url: call.url })
    } catch (error) {
      if (context.signal.aborted) throw context.signal.reason
      if (isLocalFailure(error)) throw error // nothing was sent (a key that cannot be loaded): not a network fault
      if (isTokenError(error)) {
        if (lost && error.code === 'ERR_SESSION_ENDED') {
          throw new TokenError(
            'ERR_SESSION_ENDED',
            `The token endpoint ${where} rejected the refresh token when it was sent again because the earlier response was lost (${lost}): the server had most likely already rotated it and took the replay as reuse. The stored tokens were deleted; sign the user in again and call setTokens().`,
            { cause: error, ...(error.status !== undefined && { status: error.status }), ...(error.error !== undefined && { error: error.error }) },
          )
        }
        const { status } = error
        // RFC 9449 §8: the server wants a proof with its new nonce (learned by the sender's
        // transport). A sender retries that itself, except for a request with a single-use client
        // assertion: then it is done here, once, with a new assertion and a new proof.
        if (error.error === 'use_dpop_nonce' && assertion && !nonceRetried && (status === 400 || status === 401)) {
          nonceRetried = true
          attempt--
          continue
        }
        if (error.code !== 'ERR_TOKEN_ENDPOINT' || status === undefined) throw error
        if (!call.idempotent && (status === 502 || status === 504)) ambiguous = `answered ${status}`
        else if (!(status === 429 || status === 503 || (call.idempotent && status >= 500))) throw error
        failure = error
        retryAfter = error.retryAfter
      } else {
        const timedOut = controller.signal.aborted
        failure = new TokenError(
          'ERR_TOKEN_ENDPOINT_UNREACHABLE',
          `Could not reach the token endpoint ${where} (${timedOut ? `no answer within ${timeout} ms` : 'network error'}). Stored tokens were kept; check connectivity and try again.`,
          { cause: error },
        )
        if (!call.idempotent) ambiguous = timedOut ? `no answer within ${timeout} ms` : 'network error'
      }
    } finally {
      clearTimeout(timer)
      context.signal.removeEventListener('abort', abort)
    }
    if (ambiguous) {
      // A rotating refresh the server may have processed: one immediate replay (module comment).
      if (lost || attempt >= attempts) throw failure
      lost = ambiguous
      continue
    }
    if (attempt >= attempts || (retryAfter !== undefined && retryAfter > maxRetryAfter)) throw failure
    await sleep(retryAfter !== undefined ? retryAfter * 1000 : 100 * 2 ** attempt, context.signal)
  }
}

/**
 * @internal The request init for a token-endpoint style POST: body, headers with the client
 * authentication, and `redirect: 'manual'` (a redirect is an error, never followed).
 */
export function encode(call: Pick<TokenCall, 'headers' | 'fields' | 'encoding' | 'clientAuth' | 'clientId' | 'clientSecret'>, assertion?: string): { headers: Headers; body: string; redirect: 'manual' } {
  const headers = new Headers(call.headers)
  const fields = { ...call.fields }
  const { clientId, clientSecret } = call
  const basic = basicCredential(call)
  if (basic !== undefined) {
    headers.set('authorization', `Basic ${btoa(basic)}`)
  } else if (clientId !== undefined) {
    fields.client_id = clientId
    if (call.clientAuth === 'client_secret_post' && clientSecret !== undefined) fields.client_secret = clientSecret
  }
  if (assertion !== undefined) {
    fields.client_assertion_type = JWT_BEARER
    fields.client_assertion = assertion
  }
  headers.set('accept', 'application/json')
  headers.set('content-type', call.encoding === 'json' ? 'application/json' : 'application/x-www-form-urlencoded')
  return { headers, body: call.encoding === 'json' ? JSON.stringify(fields) : new URLSearchParams(fields).toString(), redirect: 'manual' }
}

/**
 * @internal The client assertion for one call to `endpoint` when the client authenticates with
 * `private_key_jwt`, else `undefined`.
 */
export async function signAssertion(call: Pick<TokenCall, 'clientAuth' | 'clientId' | 'clientAssertion'>, endpoint: string): Promise<string | undefined> {
  if (call.clientAuth !== 'private_key_jwt' && !(call.clientAuth === undefined && call.clientAssertion)) return undefined
  return call.clientAssertion!.sign({ clientId: call.clientId!, endpoint })
}

/**
 * @internal Check the client-authentication options of a grant at setup; returns the method in
 * effect. `private_key_jwt` (explicit, or implied by `clientAssertion`) needs a client id and a
 * signer; the secret-based methods need a secret.
 */
export function clientAuthOf(options: { clientAuth?: ClientAuthMethod | undefined; clientId?: string | undefined; clientSecret?: string | undefined; clientAssertion?: ClientAssertion | undefined }, fallback: ClientAuthMethod): ClientAuthMethod {
  const method = options.clientAuth ?? (options.clientAssertion ? 'private_key_jwt' : fallback)
  if (method === 'private_key_jwt') {
    if (!options.clientId) throw new TypeError('clientAuth "private_key_jwt" needs "clientId" (the assertion\'s iss and sub).')
    if (typeof options.clientAssertion?.sign !== 'function') {
      throw new TypeError('clientAuth "private_key_jwt" needs "clientAssertion": privateKeyJwt({ key }) from "ky-token-refresh/dpop", or your own { sign(claims) } signer.')
    }
  }
  return method
}

// `client_secret_basic`'s `id:secret`, each form-urlencoded first (RFC 6749 §2.3.1) so any
// character survives; `undefined` for the other methods. Default: basic with a secret, else none.
function basicCredential({ clientId, clientSecret, clientAuth = clientSecret ? 'client_secret_basic' : 'none' }: Pick<TokenCall, 'clientAuth' | 'clientId' | 'clientSecret'>): string | undefined {
  return clientAuth === 'client_secret_basic' ? `${formEncode(clientId ?? '')}:${formEncode(clientSecret ?? '')}` : undefined
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
