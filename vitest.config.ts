import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

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
  },
});
