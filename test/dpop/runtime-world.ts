// The Node side of the DPoP runtime scenarios (deno-node.test.ts, workerd-node.test.ts): the real
// authorization server and the jose-verifying resource server on 127.0.0.1, an authorization code
// for the runtime to exchange, the resource server's nonce rotation and revocation triggered by
// the scenario's batches, and the assertions on both servers' counts.
import { randomBytes } from 'node:crypto'
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose'
import { expect } from 'vitest'
import type { ScenarioInput } from './runtime-scenario.ts'
import { authorize, REDIRECT_URI, startAuthorizationServer, startResourceServer, type AuthorizationServer, type ResourceServer } from './servers.ts'

export const COUNT = 20

export interface RuntimeWorld {
  as: AuthorizationServer
  rs: ResourceServer
  input: ScenarioInput
  configuredJkt: string
  /** When the RS rotated its nonce: how many `rot` requests had arrived (the 10th triggers it). */
  rotatedAt: () => number
  close(): Promise<void>
}

export async function runtimeWorld(alg: ScenarioInput['alg'] = 'ES256'): Promise<RuntimeWorld> {
  let issuer = ''
  const rs = await startResourceServer(() => issuer)
  const service = (await generateKeyPair('ES256', { extractable: true })).privateKey
  const serviceKey = { ...(await exportJWK(service)), kid: 'service-1', alg: 'ES256' }
  const { d: _d, ...servicePublic } = serviceKey
  const as = await startAuthorizationServer({ resource: `${rs.origin}/`, serviceKeys: [servicePublic as JWK] })
  issuer = as.issuer
  const configuredKey = await exportJWK((await generateKeyPair('ES256', { extractable: true })).privateKey)
  const { d: _cd, ...configuredPublic } = configuredKey
  const verifier = randomBytes(32).toString('base64url')
  const code = await authorize(as.issuer, 'spa', verifier)

  // The RS's own events, driven by the scenario's batches (request ids `<batch>-<i>`): its nonce
  // rotates when the 10th `rot` request arrives (midway through the 20 in flight); every token it
  // has seen is refused from the moment the first `rev` request arrives (before any is checked).
  let rot = 0
  let rotatedAt = 0
  let revoked = false
  const set = rs.attempts.set.bind(rs.attempts)
  rs.attempts.set = (n: string, value: number) => {
    if (value === 1 && n.startsWith('rot-') && ++rot === COUNT / 2) {
      rs.rotateNonce()
      rotatedAt = rot
    }
    if (value === 1 && n.startsWith('rev-') && !revoked) {
      revoked = true
      rs.revokeSeenTokens()
    }
    return set(n, value)
  }
  return {
    as,
    rs,
    input: { issuer: as.issuer, tokenUrl: as.tokenUrl, rs: rs.origin, code, verifier, redirectUri: REDIRECT_URI, alg, serviceKey, configuredKey, count: COUNT },
    configuredJkt: await calculateJwkThumbprint(configuredPublic as JWK),
    rotatedAt: () => rotatedAt,
    close: async () => {
      await rs.close()
      await as.close()
    },
  }
}

/** Attempts the RS saw for each request of a batch. */
export const attemptsOf = (rs: ResourceServer, batch: string, count = COUNT) => Array.from({ length: count }, (_, i) => rs.attempts.get(`${batch}-${i}`) ?? 0)

/** The assertions shared by every runtime: what the servers saw, and what the runtime reported. */
export function expectScenario(w: RuntimeWorld, result: any, alg: ScenarioInput['alg'] = 'ES256') {
  const { as, rs } = w
  const ok = Array(COUNT).fill('ok')
  // The generated key: non-extractable, of the asked algorithm; tokens bound to it.
  expect(result.key).toMatchObject({ alg, type: 'private', extractable: false, algorithm: alg === 'ES256' ? 'ECDSA' : 'Ed25519' })
  expect(result.tokenType).toBe('DPoP')

  // warm: the RS nonce is not known yet: one challenge, one retry; no token call.
  expect(result.phases.warm).toEqual({ outcomes: ['ok'], tokenCalls: 0, refreshes: 0, attempts: 2 })
  expect(attemptsOf(rs, 'warm', 1)).toEqual([2])

  // rot: the nonce rotates midway: all succeed, at most one nonce retry each, no token call.
  const rot = attemptsOf(rs, 'rot')
  expect(result.phases.rot.outcomes).toEqual(ok)
  expect(w.rotatedAt()).toBe(COUNT / 2)
  // At least the 10th (it triggered the rotation) was challenged; how many of the others were
  // depends on whether the RS checked them before or after it (its checks are async).
  expect(Math.max(...rot)).toBe(2)
  expect(Math.min(...rot)).toBeGreaterThanOrEqual(1)
  expect(result.phases.rot).toMatchObject({ tokenCalls: 0, refreshes: 0, attempts: rot.reduce((a, b) => a + b, 0) })

  // exp: past expiry: one proactive refresh (one token call: the AS nonce is known), no 401.
  expect(result.phases.exp).toEqual({ outcomes: ok, tokenCalls: 1, refreshes: 1, attempts: COUNT })
  expect(attemptsOf(rs, 'exp')).toEqual(Array(COUNT).fill(1))

  // rev: 20 × 401 (revoked) → one refresh, rotated; each request replayed once.
  expect(result.phases.rev).toEqual({ outcomes: ok, tokenCalls: 1, refreshes: 1, attempts: 2 * COUNT })
  expect(attemptsOf(rs, 'rev')).toEqual(Array(COUNT).fill(2))
  expect(rs.counts.rejected.revoked).toBe(COUNT)
  expect(result.rotated).toEqual([true, true])
  expect(result.refreshTokenChanged).toBe(true)

  // thief: a proof from another key is refused at the RS (cnf.jkt), and the bound refresh token
  // at the AS (invalid_grant): ERR_SESSION_ENDED. The owner is unaffected.
  expect(result.forged.status).toBe(401)
  expect(result.forged.wwwAuthenticate).toMatch(/^DPoP error="invalid_token"/)
  expect(attemptsOf(rs, 'forged', 1)).toEqual([1])
  expect(attemptsOf(rs, 'thief', 1)).toEqual([1])
  expect(rs.counts.rejected['cnf.jkt mismatch']).toBe(2)
  expect(result.thief).toEqual(['ERR_SESSION_ENDED'])
  expect(result.phases.owner).toEqual({ outcomes: ['ok'], tokenCalls: 0, refreshes: 0, attempts: 1 })

  // cc: client credentials with a configured JWK: one issuance per expiry. The first token call is
  // challenged for the AS nonce (a new sender) and re-sent with a new client assertion.
  expect(result.cc.first).toEqual(ok)
  expect(result.cc.second).toEqual(ok)
  expect(result.cc.tokenCalls).toEqual([2, 1])
  expect(result.cc.jkt).toBe(w.configuredJkt)
  expect(rs.lastJkt).toBe(w.configuredJkt)
  // A new sender knows no RS nonce: at most one challenge per request, then none.
  expect(Math.max(...attemptsOf(rs, 'cc1'))).toBeLessThanOrEqual(2)
  expect(attemptsOf(rs, 'cc2')).toEqual(Array(COUNT).fill(1))

  // Every attempt the RS got (requests + retries) was either refused for its token before the
  // proof was looked at (revoked), or had its proof verified with jose (signature, typ, htm, htu,
  // ath, jti, cnf.jkt): accepted, challenged for the nonce after verification, or refused for
  // being bound to another key. No proof was invalid.
  const verified = rs.counts.ok + rs.counts.nonceChallenges + rs.counts.rejected['cnf.jkt mismatch']
  expect(Object.keys(rs.counts.rejected).sort()).toEqual(['cnf.jkt mismatch', 'revoked'])
  expect(rs.counts.requests).toBe(verified + rs.counts.rejected.revoked)
  const retries = [...rs.attempts.values()].reduce((sum, n) => sum + n - 1, 0)
  expect(rs.counts.requests).toBe(rs.attempts.size + retries)
  expect(rs.counts.ok).toBe(1 + COUNT * 3 + 1 + COUNT * 2) // warm, rot, exp, rev, owner, cc1, cc2

  // The AS: the code exchange (challenged once), two refreshes, the thief's refresh (challenged
  // once, then invalid_grant), client credentials (challenged once) twice. 0 reuse.
  expect(as.counts).toMatchObject({ token: 2 + 1 + 1 + 2 + 2 + 1, issued: 1 + 2 + 2, nonceChallenges: 3, reuse: 0 })
  expect(as.counts.errors).toEqual([expect.stringContaining('jkt')])
}

/** One line for the log: what the servers saw. */
export function summary(w: RuntimeWorld, label: string) {
  const { requests, ok, nonceChallenges, rejected } = w.rs.counts
  const rotRetries = attemptsOf(w.rs, 'rot').filter((n) => n === 2).length
  return `[${label}] RS: ${requests} attempts, ${ok + nonceChallenges + rejected['cnf.jkt mismatch']} proofs verified (${ok} ok, ${nonceChallenges} nonce challenges, ${rejected['cnf.jkt mismatch']} bound to another key), ${rejected.revoked} refused as revoked; ${rotRetries}/20 retried after the midway rotation; AS: ${w.as.counts.token} token calls, ${w.as.counts.issued} issued, ${w.as.counts.nonceChallenges} nonce challenges`
}
