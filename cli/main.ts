// The `livepatch-check` command. With no subcommand it runs the built-in matrix (every protocol on every
// scenario, SPEC §10) and compares each verdict with the one its protocol declares; with both
// --protocol and --scenario it is a single check for a user's CI; `replay TOKEN` re-runs a
// counterexample; `list` names what can be checked.
//
// Exit codes: 0 as expected (or: holds / refused), 1 a violation or a verdict other than the declared
// one, 2 the input could not be checked. Everything for stdout is collected and written at the end, so
// a run that ends with exit 2 leaves stdout empty: scripts never parse half a report.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { DEFAULT_HARDWARE } from "../model/machine.js";
import { PROTOCOLS } from "../model/protocols/index.js";
import { SCENARIOS } from "../model/scenarios/index.js";
import {
  type Expected,
  FETCH_MODELS,
  type FetchModel,
  HARDWARE_RANGES,
  type Hardware,
  MCE_DELIVERIES,
  type MceDelivery,
  OS_NAMES,
  type OsName,
  type RunConfig,
} from "../model/types.js";
import { MODEL_VERSION } from "../model/version.js";
import {
  type CheckParts,
  DEFAULT_RUNS,
  DEFAULT_SEEDS,
  DEFAULT_STRATEGY,
  hardwareOf,
  type PropertyResult,
  resolveConfig,
  type Verdict,
} from "../properties/check.js";
import { SITUATIONS } from "../properties/coverage.js";
import { PROPERTIES, type PropertyId } from "../properties/invariants.js";
import {
  coverageLines,
  expectedCell,
  foundText,
  holdsText,
  matchesExpected,
  proven,
  type ReportModel,
  renderVerdictMatrix,
  replayCommand,
  verdictCell,
} from "../properties/report.js";
import { decodeToken, encodeHardware, encodeToken } from "../properties/token.js";
import {
  CheckPool,
  defaultWorkers,
  maxWorkers,
  StuckError,
  type UnitLabel,
  type UnitRequest,
} from "../workers/check-pool.js";
import type { Confirmation, ProtocolInfo, ScenarioInfo, UnitResult } from "../workers/check-worker.js";
import { ENGINES, type EngineName } from "../workers/engine.js";
import type { ScenarioSource } from "../workers/modules.js";
import { STRATEGIES, type StrategyName } from "../workers/strategies/arbitraries.js";
import { BOUND_LIMITS } from "../workers/strategies/explore.js";
import {
  DEFAULT_BOUNDS,
  DEFAULT_MAX_EXECUTIONS,
  PORTFOLIO_BOUNDS,
  PORTFOLIO_MAX_EXECUTIONS,
  PORTFOLIO_TOTAL,
} from "../workers/strategies/portfolio.js";
import { REDUCTION_NAMES, type Reductions } from "../workers/strategies/reductions.js";
import type { Bounds } from "../workers/strategies/search-tree.js";
import { PCT_MAX_CHANGES } from "../workers/strategies/tape.js";
import { DEFAULT_WATCHDOG_MS } from "../workers/threaded.js";
import { addCallgraphCommand } from "./callgraph.js";
import {
  addElfScenarioOptions,
  ELF_SCENARIO_KEYS,
  type ElfScenarioOptions,
  elfScenarioArguments,
  elfScenarioSource,
  shellWord,
} from "./elf-scenario.js";
import { counterexampleId, htmlMatrix, htmlPath, writeHtml } from "./html.js";
import { MergeError, mergeShards, readShards, SHARD_FORMAT, type ShardOutput } from "./merge.js";
import { ProgressDisplay } from "./progress.js";
import { parseShard, planShards, type Shard, shardChecks } from "./shard.js";

/** Where the command writes; tests pass their own to capture output in-process. */
export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
  /** The terminal's width, when stderr is one (progress lines are cut to it). */
  stderrColumns?: number;
  env: Record<string, string | undefined>;
}

/**
 * The process's own streams. A reader that goes away (`| head -3`, `| true`) makes a write fail with
 * EPIPE: that is no error of the check, so the command stops quietly with exit 0 (never 1, which
 * means a violation) instead of dying with a stack trace. Only the process's Io does this: main()
 * itself never exits the process.
 */
function processIo(): Io {
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    process.exit(EXIT_OK);
  });
  // Progress and messages to a closed stderr are lost; the exit code still says how the check went.
  process.stderr.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
  });
  return {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    stdoutIsTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    stderrColumns: process.stderr.columns,
    env: process.env,
  };
}

/** Input that cannot be checked: reported as one paragraph on stderr, exit code 2. */
class UsageError extends Error {}

const EXIT_OK = 0;
const EXIT_VIOLATION = 1;
const EXIT_USAGE = 2;

const HELP_AFTER = `
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
function version(): string {
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

/** A commander argument parser for a whole number in [min, max]. */
function wholeNumber(what: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^-?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${what} must be a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}

/** The range of a hardware number, as the help prints it. */
function range(field: keyof typeof HARDWARE_RANGES): string {
  const [min, max] = HARDWARE_RANGES[field];
  return `${min}-${max}`;
}

/** Repeatable options: commander passes undefined before the first occurrence (no default shown in help). */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

interface ExploreOptions extends ElfScenarioOptions {
  protocol?: string;
  scenario?: string;
  runs: number;
  seed?: number;
  seeds?: number;
  examples?: boolean;
  engine: EngineName;
  strategy: StrategyName;
  bound?: number;
  preemptions?: number;
  events?: number;
  branches?: number;
  maxExecutions?: number;
  reductions?: string;
  example?: string[];
  fetch?: FetchModel;
  cpus?: number;
  nmis?: number;
  mces?: number;
  stepBound?: number;
  os?: OsName;
  mceDelivery?: MceDelivery;
  stiShadow?: boolean;
  module?: string[];
  parallel?: number;
  watchdog?: number;
  json?: boolean;
  color?: boolean;
  shard?: Shard;
  html?: string;
}

interface ReplayOptions extends ElfScenarioOptions {
  engine: EngineName;
  module?: string[];
  watchdog?: number;
  json?: boolean;
  color?: boolean;
  html?: string;
}

interface MergeOptions {
  module?: string[];
  watchdog?: number;
  json?: boolean;
  color?: boolean;
  html?: string;
}

interface ListOptions {
  module?: string[];
  watchdog?: number;
}

/**
 * Runs the command. `argv` is the arguments after the program name (process.argv.slice(2)). Returns
 * the exit code; never calls process.exit, so it can run inside tests.
 */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const out: string[] = [];
  const print = (text: string) => out.push(text);
  let code = EXIT_OK;
  const pools: CheckPool[] = [];
  const program = buildProgram(io, print, pools, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    code = handleFailure(e, io);
  } finally {
    // Threads must end for the process to exit on its own; a close that fails must not hide the verdict.
    for (const pool of pools) await pool.close().catch(() => {});
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

function buildProgram(
  io: Io,
  print: (text: string) => void,
  pools: CheckPool[],
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
      setCode(await explore(opts, io, print, pools));
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
      setCode(await explore(opts, io, print, pools));
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
    setCode(await replay(token, opts, io, print, pools));
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
      const modules = modulePaths(opts.module);
      // A module's code runs only in a worker thread, where the watchdog can stop it.
      const { protocols, scenarios } =
        modules.length === 0 ? builtIns() : await catalogOf(openPool(modules, 1, opts.watchdog, pools));
      const width = Math.max(...protocols.map((p) => p.name.length), ...scenarios.map((s) => s.name.length));
      // Grouped by where each came from: the built-in ones, then each module's.
      for (const [kind, list] of [
        ["protocols", protocols],
        ["scenarios", scenarios],
      ] as const) {
        for (const origin of [...new Set(list.map((x) => x.origin))]) {
          print(origin === "built-in" ? `${kind}:\n` : `${kind} from ${origin}:\n`);
          for (const x of list.filter((y) => y.origin === origin))
            print(`  ${x.name.padEnd(width)}  ${x.summary}\n`);
        }
      }
      setCode(EXIT_OK);
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
    .option("--html <file>", HTML_HELP)
    .option("--color", "colour the output")
    .option("--no-color", "never colour the output")
    .action(async (files: string[], own: MergeOptions, cmd: Command) => {
      const opts = withOptionsBefore(cmd, own, ["module", "json", "color", "watchdog", "html"]);
      setCode(await merge(files, opts, io, print, pools));
    });

  // `callgraph --elf FILE --from SYM`: the call graph of a real binary (cli/callgraph.ts).
  addCallgraphCommand(program, { print, setCode, usage: (message) => new UsageError(message) });
  return program;
}

/** The options of a check: the main command's, which `check` takes as well. */
function addCheckOptions(cmd: Command): Command {
  cmd
    .option("-p, --protocol <name>", "check only this protocol (see 'livepatch-check list')")
    .option("-s, --scenario <name>", "check only this scenario (see 'livepatch-check list')")
    .option(
      "--runs <n>",
      `runs per property (default: ${DEFAULT_RUNS})`,
      wholeNumber("--runs", 1, 10_000_000),
    )
    .option("--seed <x>", "fast-check seed (default: 1)", wholeNumber("--seed", -(2 ** 31), 2 ** 31 - 1))
    .option(
      "--seeds <n>",
      `seeds tried in turn per property until one finds a violation (default: ${DEFAULT_SEEDS})`,
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
        `how runs are chosen: portfolio (exhaustive to ≤ ${PORTFOLIO_TOTAL} preemption or event, then random and PCT), exhaustive (every run within --preemptions, --events, --branches: a holds is a proof within them), random, bounded, pct`,
      )
        .choices(STRATEGIES)
        .default(DEFAULT_STRATEGY),
    )
    .option(
      "--preemptions <k>",
      `exhaustive, portfolio: at most k preemptions per run, 0-${BOUND_LIMITS.preemptions} (default: ${DEFAULT_BOUNDS.preemptions}; portfolio ${PORTFOLIO_BOUNDS.preemptions})`,
      wholeNumber("--preemptions", 0, BOUND_LIMITS.preemptions),
    )
    .option(
      "--events <e>",
      `exhaustive, portfolio: at most e NMI or #MC arrivals per run, 0-${BOUND_LIMITS.events} (default: ${DEFAULT_BOUNDS.events}; also capped by --nmis and --mces)`,
      wholeNumber("--events", 0, BOUND_LIMITS.events),
    )
    .option(
      "--branches <b>",
      `exhaustive, portfolio: at most b non-default branch directions and stale-fetch values per run, 0-${BOUND_LIMITS.branches} (default: ${DEFAULT_BOUNDS.branches})`,
      wholeNumber("--branches", 0, BOUND_LIMITS.branches),
    )
    .option(
      "--max-executions <n>",
      `exhaustive, portfolio: stop the exhaustive search after n executions; it then says incomplete (default: ${DEFAULT_MAX_EXECUTIONS}; portfolio ${PORTFOLIO_MAX_EXECUTIONS})`,
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
      `simulated CPUs, ${range("cpus")} (default: ${DEFAULT_HARDWARE.cpus})`,
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
      `steps after which a run counts as not completing, ${range("stepBound")} (default: ${DEFAULT_HARDWARE.stepBound})`,
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
    .option("--html <file>", HTML_HELP)
    .option("--color", "colour the output (default: when stdout is a terminal and NO_COLOR is unset)")
    .option("--no-color", "never colour the output");
  return addElfScenarioOptions(cmd);
}

/**
 * A command's options together with the program's options given before the command's name
 * (`--module m.mjs list`), which commander parses as the program's own: those the command has are
 * applied (repeatable ones first, then the command's own), any other is refused by name.
 */
function withOptionsBefore<T extends object>(cmd: Command, own: T, applies: readonly string[]): T {
  const program = cmd.parent as Command;
  const before = program.opts() as Record<string, unknown>;
  const merged = { ...own } as Record<string, unknown>;
  for (const key of Object.keys(before)) {
    if (program.getOptionValueSource(key) !== "cli") continue;
    const flag = program.options.find((o) => o.attributeName() === key)?.long ?? key;
    if (!applies.includes(key)) {
      throw new UsageError(
        `${flag} does not apply to '${cmd.name()}'; see 'livepatch-check ${cmd.name()} --help' for its options.`,
      );
    }
    const mine = merged[key];
    if (Array.isArray(before[key]))
      merged[key] = [...(before[key] as unknown[]), ...((mine as unknown[]) ?? [])];
    else if (cmd.getOptionValueSource(key) !== "cli") merged[key] = before[key];
  }
  return merged as T;
}

const HTML_HELP =
  "also write the report as one self-contained HTML page to this file (timeline lanes, the site's bytes and their writers, the replay token)";

const usage = (message: string) => new UsageError(message);

function useColor(flag: boolean | undefined, json: boolean | undefined, io: Io): boolean {
  if (json) return false;
  if (flag !== undefined) return flag;
  return io.stdoutIsTTY && !io.env.NO_COLOR;
}

/** The --watchdog option, the same for every command. */
const WATCHDOG_OPTION = [
  "--watchdog <seconds>",
  `seconds a check may make no progress before it is stopped, naming the CPU, routine and step (default: ${DEFAULT_WATCHDOG_MS / 1000})`,
  wholeNumber("--watchdog", 1, 3600),
] as const;

/**
 * What a replay command needs besides the token: the --module files that define its protocol or
 * scenario, and the options that built a scenario from an ELF file; undefined when nothing.
 */
function replayArgumentsOf(modules: readonly string[], elfArguments: string | undefined): string | undefined {
  const args = [
    ...modules.flatMap((m) => ["--module", shellWord(m)]),
    ...(elfArguments ? [elfArguments] : []),
  ];
  return args.length > 0 ? args.join(" ") : undefined;
}

/**
 * The protocol modules' absolute paths, each checked to exist. They are imported only by worker
 * threads (workers/check-worker), never by this one: top-level code that never ends cannot hang the
 * command, the watchdog stops it.
 */
function modulePaths(paths: readonly string[] = []): string[] {
  const absolute = paths.map((p) => resolve(p));
  for (const p of absolute) {
    if (!existsSync(p))
      throw new UsageError(`the protocol module '${p}' does not exist: check the path given with --module.`);
  }
  return absolute;
}

/** A check pool that the command closes when it ends. */
function openPool(
  modules: string[],
  workers: number,
  watchdogSeconds: number | undefined,
  pools: CheckPool[],
  scenarioSources: ScenarioSource[] = [],
): CheckPool {
  let pool: CheckPool;
  try {
    pool = new CheckPool({
      workers,
      modules,
      scenarioSources,
      watchdogMs: (watchdogSeconds ?? DEFAULT_WATCHDOG_MS / 1000) * 1000,
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}.`);
  }
  pools.push(pool);
  return pool;
}

/**
 * Runs one unit on the pool; a unit stopped by the watchdog, a module that fails to load and a worker
 * that dies become input errors (exit 2) with their cause.
 */
async function unit(pool: CheckPool, request: UnitRequest, label: UnitLabel = {}): Promise<UnitResult> {
  let r: UnitResult;
  try {
    r = await pool.run(request, label);
  } catch (e) {
    if (e instanceof StuckError) {
      throw new UsageError(
        `the watchdog stopped the check: ${e.message}. Nothing was judged: fix the protocol module (or, if the machine is only very slow, raise --watchdog).`,
      );
    }
    throw e;
  }
  if (r.kind === "module-error") {
    throw new UsageError(
      `${r.message}. A module given with --module must be an ES module that exports 'protocols' and/or 'scenarios' (arrays), or a default export: a protocol, a scenario, an array of them, or { protocols, scenarios }.`,
    );
  }
  return r;
}

/** The protocols and scenarios a command can name. */
interface Catalog {
  protocols: ProtocolInfo[];
  scenarios: ScenarioInfo[];
}

function builtIns(): Catalog {
  return {
    protocols: PROTOCOLS.map((p) => ({
      name: p.name,
      summary: p.summary,
      expected: p.expected,
      origin: "built-in",
    })),
    scenarios: SCENARIOS.map((s) => ({
      name: s.name,
      summary: s.summary,
      nmis: s.nmis,
      mces: s.mces,
      origin: "built-in",
    })),
  };
}

/** The protocols and scenarios, built-in and from the modules, as a worker thread loaded them. */
async function catalogOf(pool: CheckPool): Promise<Catalog> {
  const r = await unit(pool, { kind: "describe" });
  if (r.kind !== "describe") throw new Error(`a describe task answered ${r.kind}`);
  return { protocols: r.protocols, scenarios: r.scenarios };
}

function checkName(
  kind: "protocol" | "scenario",
  name: string,
  known: readonly { name: string }[],
  where = "",
): void {
  if (known.some((x) => x.name === name)) return;
  throw new UsageError(
    `${where}unknown ${kind} '${name}'. The known ${kind}s are: ${known.map((x) => x.name).join(", ")}. ` +
      (kind === "protocol"
        ? "Run 'livepatch-check list' to see them with a summary, or load your own with --module PATH."
        : "Run 'livepatch-check list' to see them with a summary, load your own with --module PATH, or build one from an ELF file with --elf FILE --site ... (a token of such a scenario replays with the options that built it)."),
  );
}

/** The default command: the matrix, or a single check when both names are given. */
/** sleepSets -> sleep-sets. */
function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The --reductions list, or a clear refusal. */
function parseReductions(text: string | undefined): Partial<Reductions> | undefined {
  if (text === undefined) return undefined;
  const words = text
    .split(",")
    .map((w) => w.trim())
    .filter((w) => w.length > 0);
  const all = Object.fromEntries(REDUCTION_NAMES.map((n) => [n, false])) as unknown as Reductions;
  if (words.length === 1 && words[0] === "all") return undefined;
  if (words.length === 1 && words[0] === "none") return all;
  for (const w of words) {
    const name = REDUCTION_NAMES.find((n) => kebab(n) === w);
    if (!name)
      throw new UsageError(
        `--reductions: unknown reduction '${w}'. The reductions are ${REDUCTION_NAMES.map(kebab).join(", ")}; give a comma-separated list of them, or all, or none.`,
      );
    all[name] = true;
  }
  return all;
}

async function explore(
  opts: ExploreOptions,
  io: Io,
  print: (t: string) => void,
  pools: CheckPool[],
): Promise<number> {
  const searching = opts.strategy === "exhaustive" || opts.strategy === "portfolio";
  for (const [flag, value] of [
    ["--preemptions", opts.preemptions],
    ["--events", opts.events],
    ["--branches", opts.branches],
    ["--max-executions", opts.maxExecutions],
    ["--reductions", opts.reductions],
  ] as const) {
    if (value !== undefined && !searching)
      throw new UsageError(
        `${flag} applies to '--strategy exhaustive' or '--strategy portfolio'; add one of them or drop ${flag}.`,
      );
  }
  const reductions = parseReductions(opts.reductions);
  const bounds: Partial<Bounds> = {
    preemptions: opts.preemptions,
    events: opts.events,
    branches: opts.branches,
  };
  if (opts.bound !== undefined) {
    if (opts.strategy !== "bounded" && opts.strategy !== "pct")
      throw new UsageError(
        "--bound applies to '--strategy bounded' or '--strategy pct' (the exhaustive bounds are --preemptions, --events and --branches); add one of them or drop --bound.",
      );
    if (opts.strategy === "pct" && opts.bound > PCT_MAX_CHANGES + 1)
      throw new UsageError(
        `with '--strategy pct', --bound (the bug depth) must be from 1 to ${PCT_MAX_CHANGES + 1}, not ${opts.bound}.`,
      );
  }
  const modules = modulePaths(opts.module);
  const html = opts.html === undefined ? undefined : htmlPath(opts.html, usage);
  const cpus = opts.cpus ?? DEFAULT_HARDWARE.cpus;
  const limit = maxWorkers(opts.engine, cpus);
  if (opts.parallel !== undefined && opts.parallel > limit.max) {
    throw new UsageError(
      `--parallel must be a whole number from 1 to ${limit.max} here, not ${opts.parallel}: ${limit.why}. More workers than that only take turns on the cores (or run out of memory).`,
    );
  }
  // --elf: the scenario built from the user's binary replaces the built-in ones.
  const source = elfScenarioSource(opts, opts.mces, usage);
  if (source && opts.scenario !== undefined)
    throw new UsageError(
      `--scenario ${opts.scenario} and --elf ${opts.elf} both choose the scenario: give one of them.`,
    );
  if (source && SCENARIOS.some((s) => s.name === source.definition.name))
    throw new UsageError(
      `the scenario built from --elf is named '${source.definition.name}', as a built-in one is: give it another name with --name NAME.`,
    );
  const sources = source ? [source] : [];
  const pool = openPool(
    modules,
    opts.parallel ?? defaultWorkers(opts.engine, cpus),
    opts.watchdog,
    pools,
    sources,
  );
  const catalog = modules.length === 0 && sources.length === 0 ? builtIns() : await catalogOf(pool);
  const { protocols } = catalog;
  const scenarios = source
    ? catalog.scenarios.filter((s) => s.name === source.definition.name)
    : catalog.scenarios;
  if (opts.protocol !== undefined) checkName("protocol", opts.protocol, protocols);
  if (opts.scenario !== undefined) checkName("scenario", opts.scenario, scenarios);
  const hardware: Partial<Hardware> = {
    cpus: opts.cpus,
    fetch: opts.fetch,
    nmis: opts.nmis,
    mces: opts.mces,
    stepBound: opts.stepBound,
    os: opts.os,
    mceDelivery: opts.mceDelivery,
    stiShadow: opts.stiShadow,
  };
  const pairs: Array<{ protocol: string; scenario: string }> = [];
  for (const p of protocols) {
    if (opts.protocol !== undefined && p.name !== opts.protocol) continue;
    for (const s of scenarios) {
      if (opts.scenario !== undefined && s.name !== opts.scenario) continue;
      pairs.push({ protocol: p.name, scenario: s.name });
    }
  }
  // --example tokens are checked against the configurations they are for (built here only when given).
  // A scenario of a module or of --elf is known only to the workers: its configuration is made from
  // the event budgets the catalog gives, and a bad one is reported when its check is built.
  const configs = new Map<string, RunConfig>();
  if ((opts.example ?? []).length > 0) {
    for (const { protocol, scenario } of pairs) {
      const known = SCENARIOS.some((s) => s.name === scenario);
      const info = scenarios.find((s) => s.name === scenario);
      try {
        configs.set(
          `${protocol}/${scenario}`,
          known || !info
            ? resolveConfig(protocol, scenario, hardware)
            : {
                protocol,
                scenario,
                hardware: hardwareOf(info, hardware),
              },
        );
      } catch (e) {
        throw new UsageError(`cannot build ${protocol} on ${scenario}: ${(e as Error).message}.`);
      }
    }
  }
  const examples = exampleTapes(opts.example ?? [], configs);
  const single = opts.protocol !== undefined && (opts.scenario !== undefined || source !== undefined);
  const color = useColor(opts.color, opts.json, io);
  const started = performance.now();
  if (opts.shard !== undefined) {
    const settings = {
      bounds,
      reductions,
      examples,
      hardware,
      modules,
      sources,
      elfArguments: elfScenarioArguments(opts),
    };
    return await runShard(opts.shard, pairs, opts, settings, pool, io, print);
  }
  const verdicts = await runChecks(pairs, opts, hardware, pool, io, { bounds, reductions, examples });
  return await reportVerdicts(verdicts, {
    pool,
    protocols,
    single,
    json: opts.json === true,
    color,
    engine: opts.engine,
    started,
    io,
    print,
    html,
    ...(source ? { surveyed: new Set([source.definition.name]) } : {}),
    replayArguments: replayArgumentsOf(modules, source ? elfScenarioArguments(opts) : undefined),
  });
}

/** How the verdicts of a run (or of merged shards) are reported. */
interface ReportContext {
  pool: CheckPool;
  protocols: readonly ProtocolInfo[];
  single: boolean;
  json: boolean;
  color: boolean;
  engine: EngineName;
  started: number;
  io: Io;
  print: (t: string) => void;
  /** Merged shards: their number and times, said in the summary line and the JSON. */
  shards?: { count: number; elapsedMs: Array<number | undefined>; missing: number[] };
  /** Also write the report as one HTML page to this file. */
  html?: string;
  /**
   * Scenarios built from --elf, on which no protocol declares a verdict: their cells show what each
   * protocol gets, and are not judged against a declaration.
   */
  surveyed?: ReadonlySet<string>;
  /** What `replay` needs besides a token: the --module files and the --elf options (replayArgumentsOf). */
  replayArguments?: string;
}

/**
 * The verdicts' report, as the main job prints it: every counterexample re-run in a worker for its
 * report and confirmed on the threaded engine, the matrix (or the single check's summary) and the
 * counterexamples, or JSON. Returns the exit code: the main job's, or the single check's.
 */
async function reportVerdicts(verdicts: Verdict[], ctx: ReportContext): Promise<number> {
  const { pool, protocols, single, color, started, io, print, html } = ctx;
  const opts = { json: ctx.json, engine: ctx.engine };
  const errors = verdicts.filter((v): v is Extract<Verdict, { kind: "error" }> => v.kind === "error");
  if (errors.length > 0) {
    throw new UsageError(
      `a run failed, so nothing was judged: ${errors[0].message}. A protocol routine that throws or never yields is a bug in that protocol (check the module given with --module); otherwise replay with --engine inline to see whether the engine is at fault.`,
    );
  }
  // Every counterexample is re-run in a worker for its report, and confirmed on the threaded engine.
  const failing = verdicts.flatMap((v) =>
    v.kind === "violated" ? v.properties.filter((p) => !p.holds).map((p) => ({ v, p })) : [],
  );
  const confirmation = confirmAll(
    pool,
    failing.map(({ v, p }) => ({ config: v.config, property: p.property, tape: p.tape ?? [] })),
  );
  const reports = await Promise.all(
    failing.map(({ v, p }) =>
      counterexampleReport(pool, v.config, p, color && !opts.json, html !== undefined, ctx.replayArguments),
    ),
  );
  const { confirmations, ms: confirmMs } = await confirmation;
  const elapsed = (performance.now() - started) / 1000;
  const expectedFor = (protocol: string, scenario: string) =>
    protocols.find((p) => p.name === protocol)?.expected[scenario];
  const judged = (protocol: string, scenario: string) =>
    expectedFor(protocol, scenario) !== undefined || !ctx.surveyed?.has(scenario);
  const mismatches = verdicts.filter(
    (v) =>
      judged(v.config.protocol, v.config.scenario) &&
      !matchesExpected(v, expectedFor(v.config.protocol, v.config.scenario)),
  );
  const violated = verdicts.some((v) => v.kind === "violated");
  const threads = confirmations[0]?.threads ?? 0;
  const confirmed = (v: Verdict, p: PropertyResult) =>
    confirmations[failing.findIndex((f) => f.v === v && f.p === p)];

  if (opts.json) {
    print(
      `${JSON.stringify(
        {
          mode: single ? "single" : "matrix",
          ok: single ? !violated : mismatches.length === 0,
          engine: opts.engine,
          workers: pool.workers,
          elapsedMs: Math.round(elapsed * 1000),
          ...(ctx.shards
            ? {
                shards: {
                  count: ctx.shards.count,
                  missing: ctx.shards.missing,
                  elapsedMs: ctx.shards.elapsedMs.map((ms) => (ms === undefined ? null : Math.round(ms))),
                },
              }
            : {}),
          confirmation: { counterexamples: failing.length, threads, elapsedMs: Math.round(confirmMs) },
          verdicts: verdicts.map((v) =>
            verdictJson(
              v,
              expectedFor(v.config.protocol, v.config.scenario),
              (p) => confirmed(v, p),
              ctx.replayArguments,
            ),
          ),
        },
        null,
        2,
      )}\n`,
    );
  } else {
    if (single && ctx.shards && ctx.shards.missing.length > 0)
      print(
        `${verdicts[0].config.protocol} on ${verdicts[0].config.scenario}: incomplete: shard ${ctx.shards.missing.map((i) => `${i}/${ctx.shards?.count}`).join(", ")} missing, whose runs may violate any property\n`,
      );
    else if (single) print(singleSummary(verdicts[0], expectedFor));
    else {
      print(renderVerdictMatrix(verdicts, expectedFor, { color, judged }));
      for (const s of ctx.surveyed ?? [])
        print(
          `\nNo protocol declares a verdict on ${s}, built from your file: its column shows what each protocol gets.\n`,
        );
    }
    const runs = verdicts.reduce((n, v) => n + (v.kind === "refused" || v.kind === "error" ? 0 : v.runs), 0);
    const confirmation =
      failing.length > 0
        ? `; ${failing.length} counterexample${failing.length === 1 ? "" : "s"} confirmed on ${threads} threads in ${(confirmMs / 1000).toFixed(1)} s`
        : "";
    const where = ctx.shards
      ? `merged from ${ctx.shards.count} shard${ctx.shards.count === 1 ? "" : "s"} (${ctx.shards.elapsedMs
          .map((ms, i) => `${i + 1}: ${ms === undefined ? "missing" : `${(ms / 1000).toFixed(1)} s`}`)
          .join(", ")}); reports`
      : `${opts.engine} engine`;
    print(
      `\n${verdicts.length} check${verdicts.length === 1 ? "" : "s"}, ${runs} runs, ${elapsed.toFixed(1)} s, ${where} on ${pool.workers} worker${pool.workers === 1 ? "" : "s"}${confirmation}\n`,
    );
    if (failing.length > 0) print(`\nCounterexamples (${failing.length}):\n`);
    failing.forEach(({ v, p }, i) => {
      print(`\n${counterexampleTitle(v, p)}\n${reports[i].text}${confirmationLine(confirmations[i])}`);
    });
  }
  if (html !== undefined) {
    const counterexamples = failing.map(({ v, p }, i) => ({
      id: counterexampleId(i),
      title: counterexampleTitle(v, p).replace(/^━━ /, ""),
      model: reports[i].model as ReportModel,
      note: confirmationLine(confirmations[i]).trim(),
    }));
    const sections = failing.map(({ v, p }) => ({ ...v.config, property: p.property }));
    writeHtml(
      html,
      {
        title: single
          ? `${verdicts[0].config.protocol} on ${verdicts[0].config.scenario}`
          : "livepatch-check: verdicts",
        summary: single ? singleSummary(verdicts[0], expectedFor).trimEnd().split("\n") : [],
        ...(single ? {} : { matrix: htmlMatrix(verdicts, expectedFor, counterexamples, sections, judged) }),
        counterexamples,
      },
      usage,
    );
  }
  if (single) return violated ? EXIT_VIOLATION : EXIT_OK;
  if (mismatches.length > 0) {
    io.stderr(
      `livepatch-check: ${mismatches.length} of ${verdicts.length} verdicts differ from what their protocol declares: ${mismatches
        .map(
          (v) =>
            `${v.config.protocol} on ${v.config.scenario} (got ${verdictCell(v)}, expected ${expectedCell(expectedFor(v.config.protocol, v.config.scenario))})`,
        )
        .join("; ")}.\n`,
    );
    return EXIT_VIOLATION;
  }
  return EXIT_OK;
}

/**
 * Runs the checks on the pool, a unit per cell, as many at once as it has workers. The verdicts come
 * back in the order of `pairs` whatever order they finish in, so the output is a sequential run's.
 */
async function runChecks(
  pairs: Array<{ protocol: string; scenario: string; parts?: CheckParts }>,
  opts: ExploreOptions,
  hardware: Partial<Hardware>,
  pool: CheckPool,
  io: Io,
  search: {
    bounds: Partial<Bounds>;
    reductions: Partial<Reductions> | undefined;
    examples: Map<string, number[][]>;
  },
): Promise<Verdict[]> {
  // A live line per running check, on a terminal only, and never with --json (cli/progress.ts).
  let done = 0;
  const display =
    io.stderrIsTTY && !opts.json && pairs.length > 0
      ? new ProgressDisplay(
          io.stderr,
          () =>
            pool
              .runningUnits()
              .filter((u) => u.kind === "check")
              .map((u) => ({ ...u, label: `${u.label.protocol} on ${u.label.scenario}` })),
          () => `[${done}/${pairs.length}] checks done`,
          io.stderrColumns,
        )
      : undefined;
  const show = () => display?.update();
  const one = async ({
    protocol,
    scenario,
    parts,
  }: {
    protocol: string;
    scenario: string;
    parts?: CheckParts;
  }): Promise<Verdict> => {
    try {
      const r = await unit(
        pool,
        {
          kind: "check",
          engine: opts.engine,
          options: {
            protocol,
            scenario,
            hardware,
            strategy: opts.strategy,
            runs: opts.runs ?? DEFAULT_RUNS,
            seeds: opts.seeds ?? DEFAULT_SEEDS,
            examples: opts.examples,
            seed: opts.seed,
            bound: opts.bound,
            exampleTapes: search.examples.get(`${protocol}/${scenario}`),
            bounds: search.bounds,
            maxExecutions: opts.maxExecutions,
            reductions: search.reductions,
            parts,
          },
        },
        { protocol, scenario },
      );
      if (r.kind === "build-error")
        throw new UsageError(`cannot build ${protocol} on ${scenario}: ${r.message}.`);
      if (r.kind !== "check") throw new Error(`a check task answered ${r.kind}`);
      return r.verdict;
    } finally {
      done++;
      show();
    }
  };
  display?.start();
  try {
    return await Promise.all(pairs.map(one));
  } finally {
    display?.clear();
  }
}

/** A counterexample's report, from a re-run of its tape in a worker. */
async function counterexampleReport(
  pool: CheckPool,
  config: RunConfig,
  p: PropertyResult,
  color: boolean,
  html: boolean,
  replayArguments: string | undefined,
): Promise<{ text: string; model?: ReportModel }> {
  const label = { protocol: config.protocol, scenario: config.scenario };
  const r = await unit(
    pool,
    { kind: "report", config, tape: p.tape ?? [], property: p.property, color, html, replayArguments },
    label,
  );
  if (r.kind !== "report") throw new Error(`a report task answered ${r.kind}`);
  if (r.error)
    throw new UsageError(
      `the counterexample of ${config.protocol} on ${config.scenario} failed when re-run: ${r.error}.`,
    );
  return { text: r.text, model: r.model };
}

/**
 * Every counterexample re-run on the threaded engine (a worker thread per simulated CPU), which must
 * give the inline engine's log record for record: a difference is an error, not a verdict.
 */
async function confirmAll(
  pool: CheckPool,
  runs: Array<{ config: RunConfig; property?: PropertyId; tape: number[] }>,
): Promise<{ confirmations: Confirmation[]; ms: number }> {
  if (runs.length === 0) return { confirmations: [], ms: 0 };
  const started = performance.now();
  const r = await unit(pool, {
    kind: "confirm",
    runs: runs.map(({ config, tape }) => ({ config, tape })),
  });
  if (r.kind !== "confirm") throw new Error(`a confirm task answered ${r.kind}`);
  r.confirmations.forEach((c, i) => {
    if (c.difference === undefined) return;
    const { config, property, tape } = runs[i];
    throw new UsageError(
      `the threaded engine does not confirm the run${property ? ` (the counterexample for ${property})` : ""} of ${config.protocol} on ${config.scenario} (${encodeToken(config, tape)}): ${c.difference}. The engines must give the same log for the same tape: this is a bug in livepatch-check; please report it with the token.`,
    );
  });
  return { confirmations: r.confirmations, ms: performance.now() - started };
}

function confirmationLine(c: Confirmation | undefined): string {
  return c
    ? `confirmed on ${c.threads} threads: the same log, record for record (${c.records} records)\n`
    : "";
}

function singleSummary(
  v: Verdict,
  expectedFor: (protocol: string, scenario: string) => Expected | undefined,
): string {
  const { protocol, scenario } = v.config;
  const head = `${protocol} on ${scenario}: `;
  const expected = expectedFor(protocol, scenario);
  const declared = expected ? ` (the protocol declares: ${expectedCell(expected)})` : "";
  if (v.kind === "refused") return `${head}refused: ${v.reason}${declared}\n`;
  if (v.kind === "error") return `${head}error: ${v.message}\n`;
  const how = holdsText(v);
  const lines = [
    `${head}${
      v.kind === "holds"
        ? `every property ${how}`
        : v.kind === "incomplete"
          ? `no property violated, but ${how}`
          : `violated: ${verdictCell(v)}`
    }${declared}`,
  ];
  for (const p of v.properties) {
    const name = PROPERTIES.find((x) => x.id === p.property)?.name ?? "";
    lines.push(
      p.holds
        ? `  ${p.property} ${name}: ${p.undecided ? "undecided (not violated in the runs explored)" : "holds"}`
        : `  ${p.property} ${name}: violated (${p.violation?.kind})${p.violation?.hazard ? `, only through a hazard: ${p.violation.hazard}` : ""}, ${foundText(p)}`,
    );
  }
  if (v.kind === "violated" && v.properties.some((p) => p.holds && !p.undecided))
    lines.push(`  the properties not violated: ${how}`);
  lines.push(...coverageLines(v).map((l) => `  ${l}`));
  return `${lines.join("\n")}\n`;
}

function counterexampleTitle(
  v: Extract<Verdict, { properties: PropertyResult[] }>,
  p: PropertyResult,
): string {
  const name = PROPERTIES.find((x) => x.id === p.property)?.name ?? "";
  const shrink =
    p.how === "exhaustive" || p.how === "example"
      ? `; ${foundText(p)}`
      : p.originalTapeLength !== undefined && p.shrunkTapeLength !== undefined
        ? `; ${p.shrinks ?? 0} shrinks took it from ${p.originalChoices} to ${p.shrunkChoices} choices (tape of ${p.originalTapeLength} to ${p.shrunkTapeLength} values)`
        : "";
  const hazard = p.violation?.hazard
    ? ` only through a hazard (${p.violation.hazard}), not the protocol's`
    : "";
  return `━━ ${v.config.protocol} on ${v.config.scenario}: ${p.property} ${name} violated${hazard} (${p.runs} runs${p.how === "exhaustive" ? "" : ", shrinking included"}${shrink})`;
}

function verdictJson(
  v: Verdict,
  expected: Expected | undefined,
  confirmed: (p: PropertyResult) => Confirmation | undefined,
  replayArguments: string | undefined,
): unknown {
  const base = {
    protocol: v.config.protocol,
    scenario: v.config.scenario,
    hardware: v.config.hardware,
    verdict: v.kind,
    cell: verdictCell(v),
    expected: expected ?? null,
    matchesExpected: matchesExpected(v, expected),
  };
  if (v.kind === "refused") return { ...base, reason: v.reason };
  if (v.kind === "error") return { ...base, error: v.message };
  const ex = v.search?.exhaustive;
  return {
    ...base,
    how: holdsText(v),
    complete: ex?.complete ?? false,
    proven: proven(v),
    bounds: ex ? { ...ex.bounds, total: ex.total, cpus: ex.cpus } : null,
    exhaustive: ex
      ? {
          executions: ex.executions,
          judged: ex.judged,
          completeUpToChoices: ex.level,
          reductions: ex.reductions,
          symmetryGivenUp: ex.symmetryGivenUp ?? null,
          elapsedMs: Math.round(ex.elapsedMs),
        }
      : null,
    sampled: v.search?.sampled ?? null,
    coverage: v.search
      ? {
          runs: v.search.coverageRuns,
          situations: SITUATIONS.map((s, i) => ({
            id: s.id,
            text: s.text,
            runs: v.search?.coverage[i] ?? 0,
          })),
        }
      : null,
    runs: v.runs,
    distinctLogs: v.distinctLogs,
    elapsedMs: Math.round(v.elapsedMs),
    properties: v.properties.map((p) => ({
      id: p.property,
      name: PROPERTIES.find((x) => x.id === p.property)?.name,
      holds: p.holds,
      ...(p.undecided ? { undecided: true } : {}),
      runs: p.runs,
      ...(p.holds
        ? {}
        : {
            how: p.how,
            ...(p.how === "exhaustive" ? { minimal: p.minimal === true, cost: p.cost } : {}),
            violation: p.violation,
            token: p.token,
            replay: p.token ? replayCommand(p.token, replayArguments).replace(/^replay: /, "") : undefined,
            tapeLength: p.shrunkTapeLength,
            originalTapeLength: p.originalTapeLength,
            choices: p.shrunkChoices,
            originalChoices: p.originalChoices,
            shrinks: p.shrinks,
            confirmedOnThreads: confirmed(p)?.threads,
          }),
    })),
  };
}

/** `replay TOKEN`: the report of one tape; with the threaded engine, also its confirmation there. */
async function replay(
  token: string,
  opts: ReplayOptions,
  io: Io,
  print: (t: string) => void,
  pools: CheckPool[],
): Promise<number> {
  const modules = modulePaths(opts.module);
  let decoded: { config: RunConfig; tape: number[] };
  try {
    decoded = decodeToken(token);
  } catch (e) {
    throw new UsageError(
      `${(e as Error).message}. Copy the whole token from the line 'replay: npx livepatch-check replay ...' under a counterexample.`,
    );
  }
  const { config, tape } = decoded;
  const html = opts.html === undefined ? undefined : htmlPath(opts.html, usage);
  // The scenario built from --elf takes the token's name unless --name gives another.
  const source = elfScenarioSource(
    { ...opts, name: opts.elf === undefined ? opts.name : (opts.name ?? config.scenario) },
    config.hardware.mces,
    usage,
  );
  const sources = source ? [source] : [];
  const pool = openPool(modules, 1, opts.watchdog, pools, sources);
  const { protocols, scenarios } =
    modules.length === 0 && sources.length === 0 ? builtIns() : await catalogOf(pool);
  checkName("protocol", config.protocol, protocols, "the replay token names an ");
  checkName("scenario", config.scenario, scenarios, "the replay token names an ");
  const color = useColor(opts.color, opts.json, io);
  const r = await unit(
    pool,
    {
      kind: "report",
      config,
      tape,
      color,
      html: html !== undefined,
      replayArguments: replayArgumentsOf(modules, source ? elfScenarioArguments(opts) : undefined),
    },
    { protocol: config.protocol, scenario: config.scenario },
  );
  if (r.kind === "build-error")
    throw new UsageError(`the replay token's configuration is not valid: ${r.message}.`);
  if (r.kind !== "report") throw new Error(`a report task answered ${r.kind}`);
  if (r.error) throw new UsageError(`the replayed run failed: ${r.error}.`);
  const c =
    opts.engine === "threaded" ? (await confirmAll(pool, [{ config, tape }])).confirmations[0] : undefined;
  if (opts.json) {
    print(
      `${JSON.stringify(
        {
          token: encodeToken(config, tape),
          config,
          tapeLength: tape.length,
          status: r.status,
          violations: r.violations,
          ...(c === undefined ? {} : { sameLogOnThreadedEngine: true, confirmedOnThreads: c.threads }),
        },
        null,
        2,
      )}\n`,
    );
  } else {
    print(r.text);
    print(confirmationLine(c));
  }
  if (html !== undefined && r.model)
    writeHtml(
      html,
      {
        title: `${config.protocol} on ${config.scenario}: replay`,
        summary: [],
        counterexamples: [
          {
            id: counterexampleId(0),
            title: `${config.protocol} on ${config.scenario}`,
            model: r.model,
            note: confirmationLine(c).trim(),
          },
        ],
      },
      usage,
    );
  return r.violations.length > 0 ? EXIT_VIOLATION : EXIT_OK;
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

/**
 * The --example tokens, by protocol/scenario: each must name a checked pair and its hardware, so
 * that its tape means the same run it meant when it was recorded.
 */
function exampleTapes(tokens: readonly string[], configs: Map<string, RunConfig>): Map<string, number[][]> {
  const out = new Map<string, number[][]>();
  for (const token of tokens) {
    let decoded: { config: RunConfig; tape: number[] };
    try {
      decoded = decodeToken(token);
    } catch (e) {
      throw new UsageError(
        `--example: ${(e as Error).message}. Give a token as printed under a counterexample.`,
      );
    }
    const key = `${decoded.config.protocol}/${decoded.config.scenario}`;
    const config = configs.get(key);
    if (!config)
      throw new UsageError(
        `--example: the token is for ${decoded.config.protocol} on ${decoded.config.scenario}, which this command does not check; add -p ${decoded.config.protocol} -s ${decoded.config.scenario} or drop the token.`,
      );
    const want = encodeHardware(config.hardware);
    const got = encodeHardware({ ...decoded.config.hardware });
    if (want !== got)
      throw new UsageError(
        `--example: the token was recorded with hardware ${got}, but ${key} is checked with ${want}; its tape would mean another run. Check with the token's hardware options, or record the example again.`,
      );
    const list = out.get(key) ?? [];
    list.push(decoded.tape);
    out.set(key, list);
  }
  return out;
}

/** What a shard needs besides the command's options: what explore() resolved from them. */
interface ShardSettings {
  /** The scenario built from --elf, which merge builds again, and the options that built it. */
  sources: ScenarioSource[];
  elfArguments: string;
  bounds: Partial<Bounds>;
  reductions: Partial<Reductions> | undefined;
  examples: Map<string, number[][]>;
  hardware: Partial<Hardware>;
  modules: string[];
}

/** The files an --elf scenario is built from (the ELF and the payload object), by content. */
function sourceDigests(source: ScenarioSource): Record<string, string> {
  const image = source.definition.image as { elf?: unknown; payload?: unknown };
  const payload = image.payload as { elf?: unknown } | undefined;
  const files = [image.elf, payload?.elf].filter((f): f is string => typeof f === "string");
  return Object.fromEntries(
    files.map((f) => {
      try {
        return [f, `sha256:${createHash("sha256").update(readFileSync(f)).digest("hex")}`];
      } catch (e) {
        throw new UsageError(
          `cannot read '${f}', which the --elf scenario is built from: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}.`,
        );
      }
    }),
  );
}

/** The protocol modules by content (their paths may differ between CI jobs). */
function moduleDigests(modules: readonly string[]): string[] {
  return modules.map((m) => `sha256:${createHash("sha256").update(readFileSync(m)).digest("hex")}`);
}

/**
 * The options that decide the verdicts, in a fixed form, with the defaults filled in: the shards of a
 * run must all have the same (the engine, --parallel, --watchdog and colour decide nothing).
 */
function shardOptions(opts: ExploreOptions, settings: ShardSettings): Record<string, unknown> {
  const defined = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  return {
    protocol: opts.protocol ?? null,
    scenario: opts.scenario ?? null,
    strategy: opts.strategy,
    runs: opts.runs ?? DEFAULT_RUNS,
    seeds: opts.seeds ?? DEFAULT_SEEDS,
    seed: opts.seed ?? 1,
    examples: opts.examples !== false,
    bound: opts.bound ?? null,
    bounds: defined(settings.bounds),
    maxExecutions: opts.maxExecutions ?? null,
    reductions: settings.reductions ?? null,
    hardware: defined(settings.hardware),
    exampleTokens: opts.example ?? [],
    modules: moduleDigests(settings.modules),
    // merge builds the --elf scenario again from its definition; the files' contents must be the same.
    ...(settings.sources.length > 0
      ? {
          elfScenarios: settings.sources.map((source) => ({ source, files: sourceDigests(source) })),
          elfArguments: settings.elfArguments,
        }
      : {}),
  };
}

/**
 * `--shard i/n`: runs this shard's units of the plan (cli/shard.ts) and prints them as JSON for
 * `merge`. No report and no confirmation here: merge does both once, for the counterexample it shows.
 */
async function runShard(
  shard: Shard,
  pairs: Array<{ protocol: string; scenario: string }>,
  opts: ExploreOptions,
  settings: ShardSettings,
  pool: CheckPool,
  io: Io,
  print: (t: string) => void,
): Promise<number> {
  if (!opts.json)
    throw new UsageError(
      `--shard ${shard.index}/${shard.count} prints a part of the result for 'livepatch-check merge': add --json and save stdout to a file (e.g. --json > shard-${shard.index}.json), then merge the files of all ${shard.count} shards`,
    );
  const started = performance.now();
  const plan = planShards(pairs, shard.count, {
    strategy: opts.strategy,
    seeds: opts.seeds ?? DEFAULT_SEEDS,
  });
  const checks = shardChecks(plan, shard.index);
  const verdicts = await runChecks(checks, opts, settings.hardware, pool, io, settings);
  const error = verdicts.find((v): v is Extract<Verdict, { kind: "error" }> => v.kind === "error");
  if (error)
    throw new UsageError(
      `a run failed, so nothing was judged: ${error.message}. A protocol routine that throws or never yields is a bug in that protocol (check the module given with --module); otherwise replay with --engine inline to see whether the engine is at fault.`,
    );
  const output: ShardOutput = {
    mode: "shard",
    format: SHARD_FORMAT,
    modelVersion: MODEL_VERSION,
    shard: { index: shard.index, count: shard.count },
    options: shardOptions(opts, settings),
    plan,
    results: checks.map((c, i) => ({
      units: c.units,
      protocol: c.protocol,
      scenario: c.scenario,
      parts: c.parts ?? null,
      verdict: verdicts[i],
    })),
    workers: pool.workers,
    elapsedMs: Math.round(performance.now() - started),
  };
  print(`${JSON.stringify(output, null, 1)}\n`);
  return EXIT_OK;
}

/** `merge FILE...`: the shards' verdicts put together and reported as the unsharded run reports them. */
async function merge(
  files: string[],
  opts: MergeOptions,
  io: Io,
  print: (t: string) => void,
  pools: CheckPool[],
): Promise<number> {
  const started = performance.now();
  let shards: ReturnType<typeof readShards>;
  try {
    shards = readShards(files);
  } catch (e) {
    if (e instanceof MergeError) throw new UsageError(`merge: ${e.message}.`);
    throw e;
  }
  const options = shards[0].shard.options;
  const modules = modulePaths(opts.module);
  const want = (options.modules as string[] | undefined) ?? [];
  const got = moduleDigests(modules);
  if (JSON.stringify([...want].sort()) !== JSON.stringify([...got].sort()))
    throw new UsageError(
      `merge: the shards were run with ${want.length} protocol module${want.length === 1 ? "" : "s"} (--module), and merge was given ${got.length === want.length ? "other ones" : got.length}: give merge the same --module files as the shards, so that it can re-run their counterexamples`,
    );
  const merged = mergeShards(shards);
  const cpus = (options.hardware as Partial<Hardware> | undefined)?.cpus ?? DEFAULT_HARDWARE.cpus;
  // A scenario the shards built from --elf is built again here, from the same files.
  const recorded =
    (options.elfScenarios as Array<{ source: ScenarioSource; files: Record<string, string> }> | undefined) ??
    [];
  for (const { source, files } of recorded) {
    const now = sourceDigests(source);
    const changed = Object.keys(files).find((f) => now[f] !== files[f]);
    if (changed)
      throw new UsageError(
        `merge: '${changed}', which the shards built their --elf scenario from, has changed since they ran: merge with the file they checked`,
      );
  }
  const sources = recorded.map((r) => r.source);
  const pool = openPool(modules, defaultWorkers("inline", cpus), opts.watchdog, pools, sources);
  const { protocols } = modules.length === 0 && sources.length === 0 ? builtIns() : await catalogOf(pool);
  const code = await reportVerdicts(merged.verdicts, {
    pool,
    protocols,
    single: options.protocol !== null && (options.scenario !== null || sources.length > 0),
    json: opts.json === true,
    color: useColor(opts.color, opts.json, io),
    engine: "inline",
    started,
    io,
    print,
    shards: { count: merged.count, elapsedMs: merged.shardMs, missing: merged.missing },
    html: opts.html === undefined ? undefined : htmlPath(opts.html, usage),
    ...(sources.length > 0 ? { surveyed: new Set(sources.map((s) => s.definition.name)) } : {}),
    replayArguments: replayArgumentsOf(
      modules,
      sources.length > 0 ? (options.elfArguments as string) : undefined,
    ),
  });
  if (merged.missing.length === 0) return code;
  io.stderr(
    `livepatch-check: merge: shard${merged.missing.length === 1 ? "" : "s"} ${merged.missing.map((i) => `${i}/${merged.count}`).join(", ")} ${merged.missing.length === 1 ? "is" : "are"} missing, so ${merged.incompleteCells.length} check${merged.incompleteCells.length === 1 ? " is" : "s are"} incomplete (${merged.incompleteCells.join(", ")}): merge the output of every shard.\n`,
  );
  return EXIT_VIOLATION;
}
