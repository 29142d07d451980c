// Chromium side of the leak scan (test/browser/leaks.test.ts bundles this with esbuild and serves
// it from a third origin): exposes the scenario to page.evaluate().
import { runScenario } from '../leaks/scenario.ts'

Object.assign(window, { runScenario, ready: true })
