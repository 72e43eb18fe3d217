// The `livepatch-check` command. With no subcommand it runs the built-in matrix (every protocol on every
// scenario, SPEC §10) and compares each verdict with the one its protocol declares; with both
// --protocol and --scenario it is a single check for a user's CI; `replay TOKEN` re-runs a
// counterexample; `list` names what can be checked.
//
// Exit codes: 0 as expected (or: holds / refused), 1 a violation or a verdict other than the declared
// one, 2 the input could not be checked. Everything for stdout is collected and written at the end, so
// a run that ends with exit 2 leaves stdout empty: scripts never parse half a report.
//
// This file runs the program (cli/program.ts: commander, the commands and their options); each
// command's work is in cli/commands/, what it prints in cli/output/.
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CommanderError } from "commander";
import type { CheckerSession } from "../session/session.js";
import { EXIT_OK, EXIT_USAGE, type Io, processIo, UsageError } from "./io.js";
import { buildProgram } from "./program.js";

export type { Io } from "./io.js";

/**
 * Runs the command. `argv` is the arguments after the program name (process.argv.slice(2)). Returns
 * the exit code; never calls process.exit, so it can run inside tests.
 */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const out: string[] = [];
  const print = (text: string) => out.push(text);
  let code = EXIT_OK;
  const sessions: CheckerSession[] = [];
  const program = buildProgram(io, print, sessions, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    code = handleFailure(e, io);
  } finally {
    // Threads must end for the process to exit on its own; a close that fails must not hide the verdict.
    for (const session of sessions) await session.close().catch(() => {});
  }
  if (code !== EXIT_USAGE) io.stdout(out.join(""));
  return code;
}

function handleFailure(e: unknown, io: Io): number {
  if (e instanceof CommanderError) {
    // Help and version were printed through writeOut; commander already reported its own errors.
    if (e.code === "commander.helpDisplayed" || e.code === "commander.help" || e.code === "commander.version")
      return EXIT_OK;
    return EXIT_USAGE;
  }
  if (e instanceof UsageError) {
    io.stderr(`livepatch-check: ${e.message}\n`);
    return EXIT_USAGE;
  }
  const message = e instanceof Error ? e.message : String(e);
  io.stderr(
    `livepatch-check: the check could not be run: ${message}. If this comes from a protocol module given with --module, fix that module; otherwise it is a bug in livepatch-check: please report it with the command line.\n`,
  );
  return EXIT_USAGE;
}

// Run as a program (node dist/cli/main.js): the bin script imports this module instead and calls main.
function invokedDirectly(): boolean {
  try {
    return (
      process.argv[1] !== undefined &&
      realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))
    );
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
