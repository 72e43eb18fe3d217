#!/usr/bin/env node
// The `livepatch-check` command: runs the compiled CLI (dist/cli/main.js). The exit code is set, not
// forced, so that output is flushed and the process ends once the engine's threads have closed.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write(
    "livepatch-check: the compiled program (dist/) is missing: run `npm ci` (or `npm run build`) first.\n",
  );
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
