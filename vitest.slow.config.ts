import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

// The slow tier (`npm run test:slow`, run by .ci/run after `npm test`): the verdict matrix cell by cell
// at the default budget, the full-size soundness enumerations and the proofs beyond the default bounds.
export default defineConfig({
  test: {
    include: ["test/slow/**/*.test.ts"],
    testTimeout: 1_200_000,
    hookTimeout: 60_000,
    maxWorkers: availableParallelism(),
    server: { deps: { external: [/\/dist\//] } },
  },
});
