// examples/own-patch, run the way a user gets it: scripts/test-example.ts packs the package, installs
// the tarball into a temporary copy of the example and runs the example's own tests (tsc against the
// packed .d.ts files, then vitest). Skipped, with the reason, only when npm cannot reach the registry
// for a dependency its cache does not hold.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";

const SCRIPT = fileURLToPath(new URL("../../dist/scripts/test-example.js", import.meta.url));
/** scripts/test-example.ts: npm cannot reach the registry. */
const EXIT_UNREACHABLE = 77;

it("the example project's tests pass from the packed tarball", (ctx) => {
  // Plain text from the example's vitest (this one asks its workers for colour through FORCE_COLOR).
  const { FORCE_COLOR: _, ...env } = process.env;
  const r = spawnSync(process.execPath, [SCRIPT], {
    encoding: "utf8",
    timeout: 170_000,
    env: { ...env, NO_COLOR: "1" },
  });
  const output = `${r.stdout}${r.stderr}`;
  if (r.status === EXIT_UNREACHABLE) {
    const reason = `SKIPPED: npm cannot reach the registry, so the example's dependencies could not be installed:\n${output.trim().split("\n").slice(-3).join("\n")}`;
    console.warn(reason);
    ctx.skip(reason);
  }
  expect(r.status, output).toBe(0);
  // The example's three checks ran, from the installed package.
  expect(output).toMatch(/✓ patch\.test\.ts \(3 tests\)/);
  expect(output).toMatch(/Tests +3 passed \(3\)/);
  expect(output).toMatch(/the example's tests pass from livepatch-check-\d+\.\d+\.\d+\.tgz/);
}, 180_000);
