// Runs examples/own-patch the way a user gets it: packs this package (`npm pack`), copies the example
// to a temporary directory, installs the tarball there (its other dependencies from the npm cache or
// the registry) and runs the example's own `npm test` (tsc against the packed .d.ts, then vitest).
// Nothing is imported from the source tree.
//
//   npm run build && node dist/scripts/test-example.js
//
// Exit codes: 0 the example's tests pass; 1 they fail (or packing or installing failed); 77 npm
// cannot reach the registry for a dependency the cache does not hold (test/slow/example.test.ts then
// skips, saying so).
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The package root: two levels above dist/scripts/, or one above scripts/. */
function packageRoot(): string {
  const here = fileURLToPath(new URL(".", import.meta.url));
  for (const up of ["../..", ".."]) {
    const root = join(here, up);
    if (existsSync(join(root, "package.json")) && existsSync(join(root, "examples", "own-patch")))
      return root;
  }
  throw new Error(`cannot find the package root above ${here}`);
}

/** npm's messages when it cannot reach the registry (DNS, refused, timed out, offline cache miss). */
export const UNREACHABLE = /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|ENOTCACHED/;

export const EXIT_UNREACHABLE = 77;

function run(what: string, cmd: string, args: string[], cwd: string): string {
  const started = performance.now();
  try {
    const out = execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    process.stdout.write(`${what}: ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
    return out;
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    const output = `${err.stdout ?? ""}${err.stderr ?? ""}`;
    if (what.startsWith("install") && UNREACHABLE.test(output)) {
      process.stdout.write(
        `${output}\nnpm cannot reach the registry (${UNREACHABLE.exec(output)?.[0]}): the example was not run.\n`,
      );
      process.exit(EXIT_UNREACHABLE);
    }
    process.stdout.write(`${output}\n${what} failed (exit ${err.status ?? "?"}) in ${cwd}\n`);
    process.exit(1);
  }
}

const started = performance.now();
const root = packageRoot();
if (!existsSync(join(root, "dist", "api", "index.js"))) {
  process.stdout.write("dist/ is missing: run `npm run build` first.\n");
  process.exit(1);
}
const work = mkdtempSync(join(tmpdir(), "livepatch-check-example-"));
try {
  // dist/ is built already (npm test builds first): the pack skips `prepare`'s second build.
  run("npm pack", "npm", ["pack", "--ignore-scripts", "--pack-destination", work], root);
  const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"));
  if (!tarball) throw new Error(`npm pack left no tarball in ${work}`);
  const example = join(work, "own-patch");
  cpSync(join(root, "examples", "own-patch"), example, {
    recursive: true,
    filter: (src) => !src.includes("node_modules"),
  });
  run(
    "install the tarball",
    "npm",
    ["install", "--prefer-offline", "--no-audit", "--no-fund", join(work, tarball)],
    example,
  );
  process.stdout.write(run("npm test in the example", "npm", ["test"], example));
  process.stdout.write(
    `the example's tests pass from ${tarball} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
