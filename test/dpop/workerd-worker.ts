// The DPoP scenario (test/dpop/runtime-scenario.ts) in a Worker on real workerd: the library's
// sources bundled by esbuild (as test/runtime/workerd does), WebCrypto and fetch from workerd.
// POST /scenario with the scenario's input as JSON; answers its results.
import { clientCredentialsGrant, createTokenAuth, isTokenError, memoryStorage, refreshTokenGrant } from '../../src/index.ts'
import { dpop, generateDPoPKey, privateKeyJwt } from '../../src/dpop/index.ts'
import { runScenario, type ScenarioInput } from './runtime-scenario.ts'

export default {
  async fetch(request: Request): Promise<Response> {
    if (new URL(request.url).pathname !== '/scenario') return new Response('not found', { status: 404 })
    try {
      const input = (await request.json()) as ScenarioInput
      return Response.json(await runScenario({ createTokenAuth, refreshTokenGrant, clientCredentialsGrant, memoryStorage, isTokenError, dpop, generateDPoPKey, privateKeyJwt }, input))
    } catch (error) {
      return Response.json({ error: String(error), stack: (error as Error)?.stack }, { status: 500 })
    }
  },
}
