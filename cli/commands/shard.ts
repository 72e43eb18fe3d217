// `--shard i/n`: the i-th part of the work, printed as JSON for `merge`.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Hardware } from "../../model/types.js";
import { MODEL_VERSION } from "../../model/version.js";
import type { Verdict } from "../../properties/check.js";
import { DEFAULTS } from "../../session/defaults.js";
import type { ScenarioSource } from "../../session/modules.js";
import type { CheckerSession } from "../../session/session.js";
import type { Reductions } from "../../workers/strategies/reductions.js";
import type { Bounds } from "../../workers/strategies/search-tree.js";
import { EXIT_OK, type Io, UsageError } from "../io.js";
import { SHARD_FORMAT, type ShardOutput } from "../merge.js";
import type { ExploreOptions } from "../options.js";
import { runChecks } from "../run-checks.js";
import { planShards, type Shard, shardChecks } from "../shard.js";

/** What a shard needs besides the command's options: what explore() resolved from them. */
export interface ShardSettings {
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
export function sourceDigests(source: ScenarioSource): Record<string, string> {
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
export function moduleDigests(modules: readonly string[]): string[] {
  return modules.map((m) => `sha256:${createHash("sha256").update(readFileSync(m)).digest("hex")}`);
}

/**
 * The options that decide the verdicts, in a fixed form, with the defaults filled in: the shards of a
 * run must all have the same (the engine, --parallel, --watchdog and colour decide nothing).
 */
export function shardOptions(opts: ExploreOptions, settings: ShardSettings): Record<string, unknown> {
  const defined = (o: object) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  return {
    protocol: opts.protocol ?? null,
    scenario: opts.scenario ?? null,
    strategy: opts.strategy,
    runs: opts.runs ?? DEFAULTS.runs,
    seeds: opts.seeds ?? DEFAULTS.seeds,
    seed: opts.seed ?? 1,
    examples: opts.examples !== false,
    bound: opts.bound ?? null,
    bounds: defined(settings.bounds),
    maxExecutions: opts.maxExecutions ?? null,
    minBound: opts.minBound ?? null,
    maxMemory: opts.maxMemory ?? null,
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
export async function runShard(
  shard: Shard,
  pairs: Array<{ protocol: string; scenario: string }>,
  opts: ExploreOptions,
  settings: ShardSettings,
  session: CheckerSession,
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
    seeds: opts.seeds ?? DEFAULTS.seeds,
  });
  const checks = shardChecks(plan, shard.index);
  const verdicts = await runChecks(checks, opts, settings.hardware, session, io, settings);
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
    workers: session.workers,
    elapsedMs: Math.round(performance.now() - started),
  };
  print(`${JSON.stringify(output, null, 1)}\n`);
  return EXIT_OK;
}
