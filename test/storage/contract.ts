/**
 * The storage contract every adapter runs (the unstorage `testDriver` pattern). Each capability
 * an adapter advertises is proven here; a capability it lacks must be absent, not a stub.
 */
import { describe, expect, it } from 'vitest'
import type { StoredTokens, TokenStorage } from '../../src/index.ts'

export interface ContractOptions {
  compareAndSet: boolean
  withLock: boolean
  /** Milliseconds a write may take to become visible to `get` (0 for strong consistency). */
  settle?: number
}

const sample = (rev: string, extra: Partial<StoredTokens> = {}): StoredTokens => ({
  accessToken: `at-${rev}`,
  refreshToken: `rt-${rev}`,
  expiresAt: 2_000_000_000_000,
  receivedAt: 1_999_999_000_000,
  scope: 'pass:read',
  rev,
  ...extra,
})

export function testTokenStorage(name: string, create: () => TokenStorage | Promise<TokenStorage>, options: ContractOptions): void {
  const settle = () => new Promise((resolve) => setTimeout(resolve, options.settle ?? 0))
  describe(`storage contract: ${name}`, () => {
    it('has a name and flags', async () => {
      const storage = await create()
      expect(storage.name).toBeTypeOf('string')
      expect(['isolate', 'origin', 'global']).toContain(storage.flags.scope)
      expect(['strong', 'eventual']).toContain(storage.flags.consistency)
      expect(typeof storage.compareAndSet === 'function').toBe(options.compareAndSet)
      expect(typeof storage.withLock === 'function').toBe(options.withLock)
    })

    it('get / set / delete round-trip every field, per key', async () => {
      const storage = await create()
      expect(await storage.get('k1')).toBeUndefined()
      await storage.set('k1', sample('a'))
      await storage.set('k2', sample('b', { refreshToken: undefined as never }))
      await settle()
      expect(await storage.get('k1')).toEqual(sample('a'))
      expect((await storage.get('k2'))!.accessToken).toBe('at-b')
      await storage.delete('k1')
      await settle()
      expect(await storage.get('k1')).toBeUndefined()
      expect((await storage.get('k2'))!.rev).toBe('b')
      await storage.delete('missing') // deleting nothing is fine
    })

    it('returns copies: mutating a read value does not change what is stored', async () => {
      const storage = await create()
      const value = sample('a')
      await storage.set('k', value)
      value.accessToken = 'mutated-after-set'
      await settle()
      const read = (await storage.get('k'))!
      read.accessToken = 'mutated-after-get'
      expect((await storage.get('k'))!.accessToken).toBe('at-a')
    })

    if (options.compareAndSet) {
      it('compareAndSet writes only over the expected revision', async () => {
        const storage = await create()
        expect(await storage.compareAndSet!('k', undefined, sample('a'))).toBe(true)
        expect(await storage.compareAndSet!('k', undefined, sample('x'))).toBe(false)
        expect(await storage.compareAndSet!('k', 'wrong', sample('x'))).toBe(false)
        expect((await storage.get('k'))!.rev).toBe('a')
        expect(await storage.compareAndSet!('k', 'a', sample('b'))).toBe(true)
        expect(await storage.get('k')).toEqual(sample('b'))
      })

      it('compareAndSet: of 20 concurrent writers over one revision, exactly one wins', async () => {
        const storage = await create()
        await storage.set('k', sample('base'))
        const results = await Promise.all(Array.from({ length: 20 }, (_, i) => storage.compareAndSet!('k', 'base', sample(`w${i}`))))
        expect(results.filter(Boolean)).toHaveLength(1)
        const winner = results.indexOf(true)
        expect((await storage.get('k'))!.rev).toBe(`w${winner}`)
      })
    }

    if (options.withLock) {
      it('withLock: holders for one key never overlap; other keys are not blocked', async () => {
        const storage = await create()
        let holders = 0
        let maxHolders = 0
        const order: number[] = []
        const run = (i: number) =>
          storage.withLock!('k', async () => {
            holders++
            maxHolders = Math.max(maxHolders, holders)
            await new Promise((resolve) => setTimeout(resolve, 5))
            order.push(i)
            holders--
            return i
          })
        const other = storage.withLock!('other-key', async () => 'free')
        const results = await Promise.all([run(0), run(1), run(2), run(3), run(4)])
        expect(results).toEqual([0, 1, 2, 3, 4])
        expect(maxHolders).toBe(1)
        expect(order).toHaveLength(5)
        expect(await other).toBe('free')
      })

      it('withLock: a throwing holder releases the lock; a waiter past its timeout gets ERR_LOCK_TIMEOUT', async () => {
        const storage = await create()
        await expect(storage.withLock!('k', async () => { throw new Error('boom') })).rejects.toThrow('boom')
        expect(await storage.withLock!('k', async () => 'after')).toBe('after')
        let release!: () => void
        const held = storage.withLock!('k', () => new Promise<void>((resolve) => (release = resolve)))
        await new Promise((resolve) => setTimeout(resolve, 20))
        const error = await storage.withLock!('k', async () => 'never', { timeout: 100 }).catch((e: unknown) => e)
        expect((error as { code?: string }).code).toBe('ERR_LOCK_TIMEOUT')
        release()
        await held
        expect(await storage.withLock!('k', async () => 'free again', { timeout: 1000 })).toBe('free again')
      })
    }
  })
}
