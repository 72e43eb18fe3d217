import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/**
 * The files that take longest, started first so that no long file starts last and holds the run up
 * while the other workers idle (vitest otherwise orders by the durations it cached, which a fresh
 * clone in CI has not). The main job is the longest: it runs the whole matrix at the default budget.
 */
const LONGEST_FIRST = [
  "test/cli.test.ts",
  "test/elf-cli.test.ts",
  "test/resume.test.ts",
  "test/search-soundness.test.ts",
  "test/state-cache.test.ts",
  "test/shard.test.ts",
];

class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (f: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((name) => f.moduleId.endsWith(name));
      return i < 0 ? LONGEST_FIRST.length : i;
    };
    return sorted
      .map((f, i) => ({ f, i }))
      .sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i)
      .map(({ f }) => f);
  }
}

// The fast tier (`npm test`): everything under test/ except test/slow/. The slow tier has its own
// config (vitest.slow.config.ts). Tests import the compiled dist/ (npm test builds it first), which
// runs natively: transforming it through Vite made the checker about 4x slower than plain Node.
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    exclude: ["test/slow/**", "**/node_modules/**"],
    testTimeout: 300_000,
    hookTimeout: 60_000,
    maxWorkers: availableParallelism(),
    server: { deps: { external: [/\/dist\//] } },
    sequence: { sequencer: LongestFirst },
  },
});
