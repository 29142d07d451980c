// The DPoP scenario (test/dpop/runtime-scenario.ts) under real Deno, on the built package (dist/)
// exactly as published: `ky-token-refresh` and `ky-token-refresh/dpop` (jose from node_modules).
// Reads its input as JSON from the first argument; prints one JSON line of results.
import { clientCredentialsGrant, createTokenAuth, isTokenError, memoryStorage, refreshTokenGrant } from '../../dist/index.js'
import { dpop, generateDPoPKey, privateKeyJwt } from '../../dist/dpop/index.js'
import { runScenario, type ScenarioInput } from './runtime-scenario.ts'

// Deno's globals, declared here so the Node-side typecheck of test/ accepts this file.
declare const Deno: { args: string[] }

const input = JSON.parse(Deno.args[0]!) as ScenarioInput
const result = await runScenario({ createTokenAuth, refreshTokenGrant, clientCredentialsGrant, memoryStorage, isTokenError, dpop, generateDPoPKey, privateKeyJwt }, input)
console.log(JSON.stringify(result))
