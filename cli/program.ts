// The command line: commander's program, its commands and their options, the help text. Each
// command's work is in cli/commands/, what it prints in cli/output/.

import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Command, InvalidArgumentError, Option } from "commander";
import { FETCH_MODELS, HARDWARE_RANGES, MCE_DELIVERIES, OS_NAMES } from "../model/types.js";
import { MODEL_VERSION } from "../model/version.js";
import { DEFAULTS } from "../session/defaults.js";
import type { CheckerSession } from "../session/session.js";
import { ENGINES } from "../workers/engine.js";
import { STRATEGIES } from "../workers/strategies/arbitraries.js";
import { BOUND_LIMITS } from "../workers/strategies/explore.js";
import { REDUCTION_NAMES } from "../workers/strategies/reductions.js";
import { PCT_MAX_CHANGES } from "../workers/strategies/tape.js";
import { addCallgraphCommand } from "./commands/callgraph.js";
import { explore } from "./commands/check.js";
import { list } from "./commands/list.js";
import { merge } from "./commands/merge.js";
import { replay } from "./commands/replay.js";
import { addElfScenarioOptions, ELF_SCENARIO_KEYS, elfScenarioSource } from "./elf-scenario.js";
import { type Io, UsageError, usage } from "./io.js";
import {
  collect,
  DETAILS_HELP,
  type ExploreOptions,
  HTML_HELP,
  kebab,
  type ListOptions,
  MAIN_HTML_HELP,
  type MergeOptions,
  minBound,
  NO_HTML_HELP,
  type ReplayOptions,
  range,
  WATCHDOG_OPTION,
  wholeNumber,
  withOptionsBefore,
} from "./options.js";
import { parseShard } from "./shard.js";

export const HELP_AFTER = `
Exit codes:
  0  every verdict is the one its protocol declares (matrix); the property holds or the patch
     was refused (single check with --protocol and --scenario); a replay shows no violation
  1  a verdict differs from the declared one (matrix); a property is violated (single check,
     replay)
  2  nothing was checked: bad arguments, an unknown protocol or scenario, a malformed replay
     token or one from another model version, a protocol module that fails to load or throws,
     protocol code that never yields (the watchdog stops it and names the CPU, routine and
     step), an engine that is not available, or shard outputs that cannot be merged (one
     given twice, from another model version or with other options)

Sharding (CI):
  livepatch-check --shard i/n --json > shard-i.json   runs the i-th of n parts of the work
  livepatch-check merge shard-*.json                  prints the verdicts of the whole run, with
                                                      its exit code; a missing shard leaves its
                                                      checks incomplete (exit 1)

Replay tokens:
  Every counterexample ends with a token vN/protocol/scenario/hardware/tape, e.g.
    v${MODEL_VERSION}/no-mask/nmi-path/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/_25.7._6.7._23.1
  vN is the model version: a token from another version is refused, since its tape may give
  another trace there. hardware is cpus, fetch, nmis, mces, bound (the step bound) and
  optionally os, mce and stishadow; tape is the choice tape, '.'-separated, with _N for a run
  of N zeros and '-' for the empty tape.
  'livepatch-check replay TOKEN' re-runs it and prints the same report.
`;

/** The package version, from package.json beside dist/ (compiled) or beside cli/ (sources). */
export function version(): string {
  for (const rel of ["../../package.json", "../package.json"]) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (!existsSync(path)) continue;
    try {
      const pkg = JSON.parse(readFileSync(path, "utf8")) as { name?: string; version?: string };
      if (pkg.name === "livepatch-check" && pkg.version) return pkg.version;
    } catch {
      // not the package's own manifest; try the next place
    }
  }
  return "unknown";
}

export function buildProgram(
  io: Io,
  print: (text: string) => void,
  sessions: CheckerSession[],
  setCode: (code: number) => void,
): Command {
  const program = new Command();
  program
    .name("livepatch-check")
    .description(
      "Model checker for live code patching on multi-core x86: explores how a patching protocol's byte " +
        "writes race instruction fetch, NMIs and machine checks, and prints shrunk counterexamples.\n\n" +
        "With no command, runs every protocol on every scenario (or those chosen with --protocol / " +
        "--scenario), prints the verdict matrix and a counterexample for each violation, and compares each " +
        "verdict with the one the protocol declares. With both --protocol and --scenario, runs that one " +
        "check and exits 1 if a property is violated.",
    )
    .version(version(), "-V, --version", "print the version")
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({
      writeOut: print,
      writeErr: (t) => io.stderr(t),
      outputError: (text, write) => {
        // One sentence on one line: commander puts its suggestion on a line of its own.
        const message = text
          .replace(/^error: /, "")
          .split("\n")
          .map((line) => line.trim())
          .filter((line) => line !== "")
          .join(" ")
          .replace("(Did you mean", "(did you mean")
          .replace(/\.$/, "");
        write(`livepatch-check: ${message}. Run 'livepatch-check --help' for the options.\n`);
      },
    })
    .addHelpText("after", HELP_AFTER);
  addCheckOptions(program)
    // Stray words are most likely a mistyped command: say so, rather than "too many arguments".
    .allowExcessArguments(true)
    .action(async (opts: ExploreOptions, cmd: Command) => {
      if (cmd.args.length > 0) {
        throw new UsageError(
          `unknown command '${cmd.args[0]}'. The commands are 'replay TOKEN', 'list', 'merge FILE...' and 'callgraph'; with no command, livepatch-check checks every protocol on every scenario (see 'livepatch-check --help').`,
        );
      }
      setCode(await explore(opts, io, print, sessions));
    });

  const check = program
    .command("check")
    .description(
      "one protocol on one scenario: a built-in one or a module's (--scenario), or one built from your own binary (--elf FILE --site FUNCTION+OFFSET --workload F --nmi-service G); exit 0 if every property holds or the patch is refused, 1 if one is violated",
    );
  addCheckOptions(check)
    .allowExcessArguments(true)
    .action(async (own: ExploreOptions, cmd: Command) => {
      if (cmd.args.length > 0) {
        throw new UsageError(
          `'check' takes no arguments, but was given ${cmd.args.map((a) => `'${a}'`).join(" ")}; name the protocol with --protocol and the scenario with --scenario or --elf.`,
        );
      }
      const opts = withOptionsBefore(
        cmd,
        own,
        cmd.options.map((o) => o.attributeName()),
      );
      if (opts.protocol === undefined)
        throw new UsageError(
          "'check' needs a protocol: give it with --protocol NAME (see 'livepatch-check list').",
        );
      if (opts.scenario === undefined && opts.elf === undefined) {
        elfScenarioSource(opts, undefined, usage); // an option that needs --elf says so first
        throw new UsageError(
          "'check' needs a scenario: give a built-in or a module's with --scenario NAME, or build one from your binary with --elf FILE --site FUNCTION+OFFSET --workload F --nmi-service G.",
        );
      }
      setCode(await explore(opts, io, print, sessions));
    });

  const replayer = program
    .command("replay")
    .description(
      "re-run the counterexample of a replay token and print its report; exit 1 if it shows a violation",
    )
    .argument("<token>", "protocol/scenario/hardware/tape, as printed under a counterexample")
    .addOption(
      new Option(
        "--engine <name>",
        "inline; threaded also re-runs it on worker threads and checks that both engines give the same log",
      )
        .choices(ENGINES)
        .default("inline"),
    )
    .option("--module <path>", "ES module exporting protocols and scenarios; repeatable", collect)
    .option(...WATCHDOG_OPTION)
    .option("--json", "print the replay's violations as JSON on stdout, and nothing else there")
    .option("--html <file>", HTML_HELP)
    .option("--color", "colour the output")
    .option("--no-color", "never colour the output");
  // A token of a scenario built from an ELF file is replayed with the options that built it.
  addElfScenarioOptions(replayer).action(async (token: string, own: ReplayOptions, cmd: Command) => {
    if (cmd.args.length > 1) {
      throw new UsageError(
        `'replay' takes one token, but was given ${cmd.args.length} arguments (${cmd.args.map((a) => `'${a}'`).join(", ")}); quote the token if the shell split it.`,
      );
    }
    const opts = withOptionsBefore(cmd, own, [
      "module",
      "engine",
      "json",
      "color",
      "watchdog",
      "html",
      ...ELF_SCENARIO_KEYS,
    ]);
    setCode(await replay(token, opts, io, print, sessions));
  });

  program
    .command("list")
    .description("list the protocols and scenarios, one line each")
    .option("--module <path>", "also list the protocols and scenarios of this ES module; repeatable", collect)
    .option(...WATCHDOG_OPTION)
    .action(async (own: ListOptions, cmd: Command) => {
      if (cmd.args.length > 0) {
        throw new UsageError(
          `'list' takes no arguments, but was given ${cmd.args.map((a) => `'${a}'`).join(" ")}.`,
        );
      }
      const opts = withOptionsBefore(cmd, own, ["module", "watchdog"]);
      setCode(await list(opts, print, sessions));
    });

  program
    .command("merge")
    .description(
      "put together the --json outputs of the shards of one run (--shard i/n) into its verdicts, as the unsharded run prints them; exit codes as that run's",
    )
    .argument("<files...>", "the shards' --json outputs, one file per shard")
    .option("--module <path>", "the ES modules the shards were run with; repeatable", collect)
    .option(...WATCHDOG_OPTION)
    .option("--json", "print the verdicts as JSON on stdout, and nothing else there")
    .option("--html <file>", MAIN_HTML_HELP)
    .option("--no-html", NO_HTML_HELP)
    .option("--details", DETAILS_HELP)
    .option("--color", "colour the output")
    .option("--no-color", "never colour the output")
    .action(async (files: string[], own: MergeOptions, cmd: Command) => {
      const opts = withOptionsBefore(cmd, own, ["module", "json", "color", "watchdog", "html", "details"]);
      setCode(await merge(files, opts, io, print, sessions));
    });

  // `callgraph --elf FILE --from SYM`: the call graph of a real binary (cli/commands/callgraph.ts).
  addCallgraphCommand(program, { print, setCode, usage: (message) => new UsageError(message) });
  return program;
}

/** The options of a check: the main command's, which `check` takes as well. */
export function addCheckOptions(cmd: Command): Command {
  cmd
    .option("-p, --protocol <name>", "check only this protocol (see 'livepatch-check list')")
    .option("-s, --scenario <name>", "check only this scenario (see 'livepatch-check list')")
    .option(
      "--runs <n>",
      `runs per property (default: ${DEFAULTS.runs})`,
      wholeNumber("--runs", 1, 10_000_000),
    )
    .option("--seed <x>", "fast-check seed (default: 1)", wholeNumber("--seed", -(2 ** 31), 2 ** 31 - 1))
    .option(
      "--seeds <n>",
      `seeds tried in turn per property until one finds a violation (default: ${DEFAULTS.seeds})`,
      wholeNumber("--seeds", 1, 1000),
    )
    .option("--no-examples", "do not run the protocol's declared example tapes before the random ones")
    .option(
      "--example <token>",
      "a replay token whose tape runs first, as a regression test of its own protocol and scenario; repeatable",
      collect,
    )
    .addOption(
      new Option(
        "--engine <name>",
        "how a check's machines run: inline, every CPU in the check's worker thread; threaded, a worker thread per CPU (every counterexample is confirmed on the threaded engine either way)",
      )
        .choices(ENGINES)
        .default("inline"),
    )
    .addOption(
      new Option(
        "--strategy <name>",
        `how runs are chosen: portfolio (exhaustive to ≤ ${DEFAULTS.portfolio.bounds.preemptions} preemption and ≤ ${DEFAULTS.portfolio.bounds.events} event within ${DEFAULTS.portfolio.maxExecutions} executions, then random and PCT), exhaustive (every run within --preemptions, --events, --branches, --stale: a holds is a proof within them), random, bounded, pct`,
      )
        .choices(STRATEGIES)
        .default(DEFAULTS.strategy),
    )
    .option(
      "--preemptions <k>",
      `exhaustive, portfolio: at most k preemptions per run, 0-${BOUND_LIMITS.preemptions} (default: ${DEFAULTS.bounds.preemptions}; portfolio ${DEFAULTS.portfolio.bounds.preemptions})`,
      wholeNumber("--preemptions", 0, BOUND_LIMITS.preemptions),
    )
    .option(
      "--events <e>",
      `exhaustive, portfolio: at most e NMI or #MC arrivals per run, 0-${BOUND_LIMITS.events} (default: ${DEFAULTS.bounds.events}; also capped by --nmis and --mces)`,
      wholeNumber("--events", 0, BOUND_LIMITS.events),
    )
    .option(
      "--branches <b>",
      `exhaustive, portfolio: at most b conditional branches of real code taken the other way per run, 0-${BOUND_LIMITS.branches} (default: ${DEFAULTS.bounds.branches}: the verdict says how many branch points it met)`,
      wholeNumber("--branches", 0, BOUND_LIMITS.branches),
    )
    .option(
      "--stale <s>",
      `exhaustive, portfolio, with --fetch stale: at most s fetches per run that return an older value of a code byte than the newest, 0-${BOUND_LIMITS.stale} (default: ${DEFAULTS.bounds.stale})`,
      wholeNumber("--stale", 0, BOUND_LIMITS.stale),
    )
    .option(
      "--max-memory <mb>",
      "exhaustive, portfolio: at most this many MB for a check's state cache; past it, states are explored without being remembered (sound, slower) and the verdict says so (default: no limit)",
      wholeNumber("--max-memory", 4, 1_048_576),
    )
    .option(
      "--min-bound <k,e>",
      "exhaustive, portfolio: demand a proof of every run with ≤ k preemptions and ≤ e events: the bounds are raised to them, and a check whose exhaustive search does not finish within --max-executions is incomplete (exit 1) instead of resting on random runs",
      minBound,
    )
    .option(
      "--max-executions <n>",
      `exhaustive, portfolio: stop the exhaustive search after n executions; it then says incomplete (default: ${DEFAULTS.maxExecutions}; portfolio ${DEFAULTS.portfolio.maxExecutions})`,
      wholeNumber("--max-executions", 1, 1_000_000_000),
    )
    .option(
      "--reductions <list>",
      `exhaustive, portfolio: the reductions to use, comma-separated from ${REDUCTION_NAMES.map(kebab).join(", ")}, or all or none (default and all: sleep-sets, event-placement, symmetry, state-caching; dpor misses outcomes under a preemption bound, so it is used only when named, and state-caching switches it off)`,
    )
    .option(
      "--bound <k>",
      `bounded: at most k non-zero choices per run (1-64); pct: the bug depth d (1-${PCT_MAX_CHANGES + 1})`,
      wholeNumber("--bound", 1, 64),
    )
    .addOption(
      new Option("--fetch <model>", "instruction fetch model (default: bytewise)").choices(FETCH_MODELS),
    )
    .option(
      "--cpus <n>",
      `simulated CPUs, ${range("cpus")} (default: ${DEFAULTS.hardware.cpus})`,
      wholeNumber("--cpus", ...HARDWARE_RANGES.cpus),
    )
    .option(
      "--nmis <n>",
      `external NMIs per run, ${range("nmis")} (default: the scenario's)`,
      wholeNumber("--nmis", ...HARDWARE_RANGES.nmis),
    )
    .option(
      "--mces <n>",
      `machine checks per run, ${range("mces")} (default: the scenario's)`,
      wholeNumber("--mces", ...HARDWARE_RANGES.mces),
    )
    .option(
      "--step-bound <n>",
      `steps after which a run counts as not completing, ${range("stepBound")} (default: ${DEFAULTS.hardware.stepBound})`,
      wholeNumber("--step-bound", ...HARDWARE_RANGES.stepBound),
    )
    .addOption(
      new Option("--os <name>", "OS entry code instead of the protocol's own (NMI nesting rules)").choices(
        OS_NAMES,
      ),
    )
    .addOption(
      new Option(
        "--mce-delivery <how>",
        "machine checks reach every CPU (broadcast: Intel without LMCE) or one (local: LMCE, AMD); default broadcast",
      ).choices(MCE_DELIVERIES),
    )
    .option(
      "--sti-shadow",
      "hold an NMI for one instruction after STI (model-specific, SDM Vol. 2 STI; default: not held)",
    )
    .option(
      "--module <path>",
      "ES module exporting protocols and scenarios (`protocols`, `scenarios` or a default export); repeatable",
      collect,
    )
    .option(
      "--parallel <n>",
      "checks run at once, a worker thread each (default: one per core; with --engine threaded, cores / simulated CPUs); at most one per core",
      wholeNumber("--parallel", 1, 4096),
    )
    .option(...WATCHDOG_OPTION)
    .option("--json", "print the verdicts as JSON on stdout, and nothing else there")
    .option(
      "--shard <i/n>",
      "run only the i-th of n parts of the work (CI sharding, with --json); put the shards' outputs together with 'livepatch-check merge'",
      (text: string) => {
        try {
          return parseShard(text);
        } catch (e) {
          throw new InvalidArgumentError(`${(e as Error).message}.`);
        }
      },
    )
    .option(
      "--json-file <file>",
      "also write the verdicts as JSON (what --json prints) to this file, keeping the terminal's report",
    )
    .option("--html <file>", MAIN_HTML_HELP)
    .option("--no-html", NO_HTML_HELP)
    .option("--details", DETAILS_HELP)
    .option("--color", "colour the output (default: when stdout is a terminal and NO_COLOR is unset)")
    .option("--no-color", "never colour the output");
  return addElfScenarioOptions(cmd);
}
