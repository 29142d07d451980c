/**
 * The storage contract every adapter runs (the unstorage `testDriver` pattern), from the public
 * `ky-token-refresh/testing` subpath, bound to vitest. Each capability an adapter advertises is
 * proven; a capability it lacks must be absent, not a stub.
 */
import { describe, it } from 'vitest'
import type { TokenStorage } from '../../src/index.ts'
import { testTokenStorage as contract, type ContractOptions } from '../../src/testing/index.ts'

export type { ContractOptions }

export function testTokenStorage(name: string, create: () => TokenStorage | Promise<TokenStorage>, options: ContractOptions): void {
  contract(name, create, options, { describe, it })
}
