#!/usr/bin/env node
// The `livepatch-check` command: runs the compiled CLI (dist/cli/main.js), building it first (`npm run
// build`) when the TypeScript sources are newer than dist/, so that the main thread and the Piscina
// workers always run the same, current code. The exit code is set, not forced, so that output is
// flushed and the process ends once the engine's threads have closed.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const entry = join(root, "dist", "cli", "main.js");
/** The folders tsc compiles (tsconfig.json's "include"), so that an edit in any of them rebuilds. */
function sourceFolders() {
  const tsconfig = join(root, "tsconfig.json");
  if (!existsSync(tsconfig)) return [];
  const include = JSON.parse(readFileSync(tsconfig, "utf8")).include ?? [];
  return [...new Set(include.map((pattern) => pattern.split("/")[0]))];
}

/** Newest modification time of the .ts sources (0 when the package ships without them). */
function newestSource(dir) {
  if (!existsSync(dir)) return 0;
  let newest = 0;
  for (const name of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, name.name);
    if (name.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (name.name.endsWith(".ts")) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

const sources = Math.max(0, ...sourceFolders().map((d) => newestSource(join(root, d))));
const built = existsSync(entry) ? statSync(entry).mtimeMs : 0;
if (sources > built && existsSync(join(root, "tsconfig.json"))) {
  try {
    execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", root], {
      stdio: ["ignore", "ignore", "inherit"],
    });
  } catch {
    process.stderr.write(
      "livepatch-check: building dist/ failed (see above): fix the sources or run `npm ci`.\n",
    );
    process.exit(2);
  }
}
if (!existsSync(entry)) {
  process.stderr.write(
    "livepatch-check: the compiled program (dist/) is missing: run `npm ci` (or `npm run build`) first.\n",
  );
  process.exit(2);
}
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv.slice(2));
