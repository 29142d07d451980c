/**
 * Serves the repository's README.md (and BENCHMARKS.md) as HTML next to the playground, so the
 * page's links (`README.md#recipes-for-the-four-apis`) work offline, with the same heading anchors
 * GitHub generates. A deliberately small Markdown subset: headings, paragraphs, lists, tables,
 * fenced code, images (and `<img>` lines), links, inline code, bold and italics.
 */
const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .toLowerCase()
    .replace(/<[^>]+>/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .trim()
    .replace(/\s/g, '-')
}

function inline(text: string): string {
  const codes: string[] = []
  let out = escape(text).replace(/`([^`]+)`/g, (_, code: string) => `\u0000${codes.push(code) - 1}\u0000`)
  out = out
    .replace(/!\[([^\]]*)\]\(([^)\s]+)\)/g, (_, alt: string, src: string) => `<img alt="${alt}" src="${src}">`)
    .replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_, label: string, href: string) => `<a href="${href}">${label}</a>`)
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/(^|[\s(])\*([^*\s][^*]*)\*/g, '$1<em>$2</em>')
  return out.replace(/\u0000(\d+)\u0000/g, (_, index: string) => `<code>${codes[Number(index)]}</code>`)
}

export function renderMarkdown(markdown: string, title: string): string {
  const lines = markdown.split('\n')
  const html: string[] = []
  const used = new Map<string, number>()
  let paragraph: string[] = []
  const flush = () => {
    if (paragraph.length) html.push(`<p>${inline(paragraph.join(' '))}</p>`)
    paragraph = []
  }
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const fence = line.match(/^```(\w*)/)
    if (fence) {
      flush()
      const code: string[] = []
      while (++i < lines.length && !lines[i]!.startsWith('```')) code.push(lines[i]!)
      html.push(`<pre><code>${escape(code.join('\n'))}</code></pre>`)
      continue
    }
    const heading = line.match(/^(#{1,6})\s+(.*)$/)
    if (heading) {
      flush()
      const base = slug(heading[2]!)
      const seen = used.get(base) ?? 0
      used.set(base, seen + 1)
      const id = seen ? `${base}-${seen}` : base
      html.push(`<h${heading[1]!.length} id="${id}">${inline(heading[2]!)}</h${heading[1]!.length}>`)
      continue
    }
    if (line.startsWith('|')) {
      flush()
      const rows: string[][] = []
      for (; i < lines.length && lines[i]!.startsWith('|'); i++) rows.push(lines[i]!.slice(1, -1).split(/(?<!\\)\|/).map((cell) => cell.trim()))
      i--
      const [head, , ...body] = rows
      html.push(`<table><thead><tr>${head!.map((cell) => `<th>${inline(cell)}</th>`).join('')}</tr></thead><tbody>${body.map((row) => `<tr>${row.map((cell) => `<td>${inline(cell)}</td>`).join('')}</tr>`).join('')}</tbody></table>`)
      continue
    }
    const item = line.match(/^(\s*)([-*]|\d+\.)\s+(.*)$/)
    if (item) {
      flush()
      const ordered = /\d/.test(item[2]!)
      const items: string[] = []
      for (; i < lines.length; i++) {
        const next = lines[i]!.match(/^\s*([-*]|\d+\.)\s+(.*)$/)
        if (next) items.push(next[2]!)
        else if (/^\s{2,}\S/.test(lines[i]!) && items.length) items[items.length - 1] += ` ${lines[i]!.trim()}`
        else break
      }
      i--
      html.push(`<${ordered ? 'ol' : 'ul'}>${items.map((text) => `<li>${inline(text)}</li>`).join('')}</${ordered ? 'ol' : 'ul'}>`)
      continue
    }
    if (/^<img\s[^>]*>$/.test(line.trim())) {
      // A sized image (GitHub renders this HTML too); the README is the repository's own file.
      flush()
      html.push(`<p>${line.trim()}</p>`)
      continue
    }
    if (/^---+$/.test(line.trim())) {
      flush()
      html.push('<hr>')
      continue
    }
    if (!line.trim()) flush()
    else paragraph.push(line.trim())
  }
  flush()
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)} — ky-token-refresh</title><link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>
body { font: 16px/1.55 system-ui, sans-serif; color: #1d2433; background: #fff; max-width: 920px; margin: 0 auto; padding: 16px 20px 64px; }
a { color: #2f4fd1; } pre { background: #f3f4f7; padding: 12px; overflow: auto; border-radius: 8px; font-size: 13px; }
code { font-family: ui-monospace, monospace; font-size: .92em; } table { border-collapse: collapse; display: block; overflow: auto; font-size: 14px; }
th, td { border: 1px solid #c9ced8; padding: 4px 8px; text-align: left; vertical-align: top; } img { max-width: 100%; }
nav { font-size: 14px; margin-bottom: 8px; }
</style></head><body><nav><a href="/">← back to the playground</a></nav><main>${html.join('\n')}</main></body></html>`
}
