// The commands' options as commander parses them, and what they resolve to: numbers in range,
// repeatable options, options given before a command, the HTML report's path, colour, modules.

import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { type FetchModel, HARDWARE_RANGES, type MceDelivery, type OsName } from "../model/types.js";
import { DEFAULTS } from "../session/defaults.js";
import type { EngineName } from "../workers/engine.js";
import type { StrategyName } from "../workers/strategies/arbitraries.js";
import { BOUND_LIMITS } from "../workers/strategies/explore.js";
import type { MinBound } from "../workers/strategies/portfolio.js";
import { REDUCTION_NAMES, type Reductions } from "../workers/strategies/reductions.js";
import { type ElfScenarioOptions, shellWord } from "./elf-scenario.js";
import { type Io, UsageError, usage } from "./io.js";
import { DEFAULT_HTML_REPORT, htmlPath } from "./output/html.js";
import type { Shard } from "./shard.js";

/** A commander argument parser for a whole number in [min, max]. */
export function wholeNumber(what: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = /^-?\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${what} must be a whole number from ${min} to ${max}.`);
    }
    return n;
  };
}

/** The range of a hardware number, as the help prints it. */
export function range(field: keyof typeof HARDWARE_RANGES): string {
  const [min, max] = HARDWARE_RANGES[field];
  return `${min}-${max}`;
}

/** `--min-bound K,E`: the preemptions and events a proof must reach (each within BOUND_LIMITS). */
export function minBound(value: string): MinBound {
  const m = /^\s*(\d+)\s*,\s*(\d+)\s*$/.exec(value);
  const k = m ? Number(m[1]) : Number.NaN;
  const e = m ? Number(m[2]) : Number.NaN;
  if (!m || k > BOUND_LIMITS.preemptions || e > BOUND_LIMITS.events)
    throw new InvalidArgumentError(
      `--min-bound takes K,E: at most K preemptions (0-${BOUND_LIMITS.preemptions}) and E events (0-${BOUND_LIMITS.events}) per run, e.g. 1,1; not '${value}'.`,
    );
  return { preemptions: k, events: e };
}

/** Repeatable options: commander passes undefined before the first occurrence (no default shown in help). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export interface ExploreOptions extends ElfScenarioOptions {
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
  stale?: number;
  minBound?: MinBound;
  maxMemory?: number;
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
  /** A path, or false (--no-html): the main job writes DEFAULT_HTML_REPORT otherwise. */
  html?: string | false;
  /** Also write the verdicts as JSON to this file (what --json prints). */
  jsonFile?: string;
  details?: boolean;
}

export interface ReplayOptions extends ElfScenarioOptions {
  engine: EngineName;
  module?: string[];
  watchdog?: number;
  json?: boolean;
  color?: boolean;
  html?: string;
}

export interface MergeOptions {
  module?: string[];
  watchdog?: number;
  json?: boolean;
  color?: boolean;
  html?: string | false;
  details?: boolean;
}

export interface ListOptions {
  module?: string[];
  watchdog?: number;
}

/**
 * A command's options together with the program's options given before the command's name
 * (`--module m.mjs list`), which commander parses as the program's own: those the command has are
 * applied (repeatable ones first, then the command's own), any other is refused by name.
 */
export function withOptionsBefore<T extends object>(cmd: Command, own: T, applies: readonly string[]): T {
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

export const HTML_HELP =
  "also write the report as one self-contained HTML page to this file (timeline lanes, the site's bytes and their writers, the replay token)";

export const MAIN_HTML_HELP = `write the report as one self-contained HTML page to this file (timeline lanes, the site's bytes and their writers, the replay tokens); the matrix writes ${DEFAULT_HTML_REPORT} in the working directory unless --no-html or --json`;

export const NO_HTML_HELP = "write no HTML report";

export const DETAILS_HELP =
  "print every counterexample's full timeline in the terminal (the matrix prints one line per counterexample)";

/**
 * Where a report's HTML page goes: the path given with --html; for the matrix (not a single check,
 * not --json), DEFAULT_HTML_REPORT in the working directory unless --no-html; none otherwise.
 */
export function htmlTarget(
  html: string | false | undefined,
  matrix: boolean,
  json: boolean,
  io: Io,
): string | undefined {
  if (html === false) return undefined;
  if (html !== undefined) return htmlPath(resolve(io.cwd, html), usage);
  return matrix && !json ? htmlPath(join(io.cwd, DEFAULT_HTML_REPORT), usage) : undefined;
}

/** The --watchdog option, the same for every command. */
export const WATCHDOG_OPTION = [
  "--watchdog <seconds>",
  `seconds of its own CPU time a check may spend without progress before it is stopped, naming the CPU, routine and step; time it waits for a core on a busy machine does not count (default: ${DEFAULTS.watchdogMs / 1000})`,
  wholeNumber("--watchdog", 1, 3600),
] as const;

/**
 * What a replay command needs besides the token: the --module files that define its protocol or
 * scenario, and the options that built a scenario from an ELF file; undefined when nothing.
 */
export function replayArgumentsOf(
  modules: readonly string[],
  elfArguments: string | undefined,
): string | undefined {
  const args = [
    ...modules.flatMap((m) => ["--module", shellWord(m)]),
    ...(elfArguments ? [elfArguments] : []),
  ];
  return args.length > 0 ? args.join(" ") : undefined;
}

/**
 * The protocol modules' absolute paths, each checked to exist. They are imported only by worker
 * threads (session/check-worker), never by this one: top-level code that never ends cannot hang the
 * command, the watchdog stops it.
 */
export function modulePaths(paths: readonly string[] = []): string[] {
  const absolute = paths.map((p) => resolve(p));
  for (const p of absolute) {
    if (!existsSync(p))
      throw new UsageError(`the protocol module '${p}' does not exist: check the path given with --module.`);
  }
  return absolute;
}

/** The default command: the matrix, or a single check when both names are given. */
/** sleepSets -> sleep-sets. */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The --reductions list, or a clear refusal. */
export function parseReductions(text: string | undefined): Partial<Reductions> | undefined {
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
