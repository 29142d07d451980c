// Deno side of the leak scan (test/runtime/deno/leaks.test.ts bundles this with esbuild): run the
// scenario against the servers named in the one argument, with Deno.inspect (depth Infinity,
// hidden properties shown) as the runtime's own serializer, and print the report as one JSON line.
import { runScenario } from '../../leaks/scenario.ts'

// Deno's globals, declared here so the Node-side typecheck of test/ accepts this file.
declare const Deno: { args: string[]; inspect(value: unknown, options: { depth: number; showHidden: boolean }): string }

const report = await runScenario(JSON.parse(Deno.args[0]!), (value) => Deno.inspect(value, { depth: Infinity, showHidden: true }))
console.log(JSON.stringify(report))
