import { memoryStorage } from '../../src/storage/memory.ts'
import { testTokenStorage } from './contract.ts'

testTokenStorage('memoryStorage()', () => memoryStorage(), { compareAndSet: true, withLock: true })
