// Bundle-size budgets (gzip bytes). Size is deterministic, unlike timing, so it may gate CI.
// Measured with the same esbuild flags as `npm run bench` (bench/size.ts), on the built package.
import { describe, expect, it } from 'vitest'
import { sizes } from '../bench/size.ts'

describe('bundle budgets', () => {
  it('every budgeted bundle stays within its budget', async () => {
    const rows = (await sizes()).filter((row) => row.budget !== undefined)
    expect(rows.length).toBeGreaterThanOrEqual(7)
    for (const row of rows) expect({ bundle: row.bundle, gzip: row.gzip, within: row.gzip <= row.budget! }).toEqual({ bundle: row.bundle, gzip: row.gzip, within: true })
  }, 60_000)
})
