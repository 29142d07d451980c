// A small horizontal bar chart as SVG (no dependencies).
export function barChart(title: string, bars: { label: string; value: number }[], unit: string): string {
  const width = 980
  const left = 470
  const row = 28
  const height = 50 + bars.length * row
  const max = Math.max(...bars.map((bar) => bar.value), 1) * 1.15
  const scale = (value: number) => ((width - left - 60) * value) / max
  const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;')
  const rows = bars.map((bar, i) => {
    const y = 40 + i * row
    const ours = bar.label.startsWith('ky + ky-token-refresh')
    return `<text x="${left - 8}" y="${y + 14}" text-anchor="end" font-size="12" fill="#1d2433">${escape(bar.label)}</text>
<rect x="${left}" y="${y}" width="${scale(bar.value).toFixed(1)}" height="18" rx="3" fill="${ours ? '#3559e0' : '#98a2b3'}"/>
<text x="${(left + scale(bar.value) + 6).toFixed(1)}" y="${y + 14}" font-size="12" fill="#1d2433">${bar.value.toFixed(2)}${unit}</text>`
  })
  const one = left + scale(1)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="12" y="22" font-size="13" font-weight="600" fill="#1d2433">${escape(title)}</text>
<line x1="${one.toFixed(1)}" y1="32" x2="${one.toFixed(1)}" y2="${height - 6}" stroke="#d6413a" stroke-dasharray="4 3"/>
<text x="${(one + 3).toFixed(1)}" y="${height - 8}" font-size="10" fill="#d6413a">1${unit}</text>
${rows.join('\n')}
</svg>
`
}
