// workerd side of the leak scan (test/runtime/workerd/leaks.test.ts bundles this with esbuild):
// POST / with the scenario config runs test/leaks/scenario.ts and answers with its report.
import { runScenario, type ScenarioConfig } from '../../leaks/scenario.ts'

export default {
  async fetch(request: Request): Promise<Response> {
    return Response.json(await runScenario((await request.json()) as ScenarioConfig))
  },
}
