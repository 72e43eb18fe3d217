import { resolve } from "node:path";
import { SCENARIOS } from "../../model/scenarios/index.js";
import type { Hardware, RunConfig } from "../../model/types.js";
import { hardwareOf, resolveConfig } from "../../properties/check.js";
import { decodeToken, encodeHardware } from "../../properties/token.js";
import { maxWorkers } from "../../session/check-pool.js";
import { DEFAULTS } from "../../session/defaults.js";
import type { CheckerSession } from "../../session/session.js";
import type { Bounds } from "../../workers/strategies/search-tree.js";
import { PCT_MAX_CHANGES } from "../../workers/strategies/tape.js";
import { elfScenarioArguments, elfScenarioSource } from "../elf-scenario.js";
import { type Io, UsageError, usage, useColor } from "../io.js";
import {
  type ExploreOptions,
  htmlTarget,
  modulePaths,
  parseReductions,
  replayArgumentsOf,
} from "../options.js";
import { reportVerdicts } from "../output/verdicts.js";
import { catalogOf, checkName, openSession } from "../pool.js";
import { runChecks } from "../run-checks.js";
import { runShard } from "./shard.js";

export async function explore(
  opts: ExploreOptions,
  io: Io,
  print: (t: string) => void,
  sessions: CheckerSession[],
): Promise<number> {
  const searching = opts.strategy === "exhaustive" || opts.strategy === "portfolio";
  for (const [flag, value] of [
    ["--preemptions", opts.preemptions],
    ["--events", opts.events],
    ["--branches", opts.branches],
    ["--stale", opts.stale],
    ["--min-bound", opts.minBound],
    ["--max-memory", opts.maxMemory],
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
    stale: opts.stale,
  };
  if (opts.bound !== undefined) {
    if (opts.strategy !== "bounded" && opts.strategy !== "pct")
      throw new UsageError(
        "--bound applies to '--strategy bounded' or '--strategy pct' (the exhaustive bounds are --preemptions, --events, --branches and --stale); add one of them or drop --bound.",
      );
    if (opts.strategy === "pct" && opts.bound > PCT_MAX_CHANGES + 1)
      throw new UsageError(
        `with '--strategy pct', --bound (the bug depth) must be from 1 to ${PCT_MAX_CHANGES + 1}, not ${opts.bound}.`,
      );
  }
  const modules = modulePaths(opts.module);
  const cpus = opts.cpus ?? DEFAULTS.hardware.cpus;
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
  const session = openSession(
    {
      modules,
      workers: opts.parallel,
      engine: opts.engine,
      cpus,
      watchdogSeconds: opts.watchdog,
      scenarioSources: sources,
    },
    sessions,
  );
  const catalog = await catalogOf(session);
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
  if (opts.shard !== undefined && opts.jsonFile !== undefined)
    throw new UsageError(
      "--json-file does not apply to a shard: a shard's --json output on stdout is the file to merge.",
    );
  const html = opts.shard === undefined ? htmlTarget(opts.html, !single, opts.json === true, io) : undefined;
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
    return await runShard(opts.shard, pairs, opts, settings, session, io, print);
  }
  const verdicts = await runChecks(pairs, opts, hardware, session, io, { bounds, reductions, examples });
  return await reportVerdicts(verdicts, {
    session,
    protocols,
    single,
    json: opts.json === true,
    color,
    engine: opts.engine,
    started,
    io,
    print,
    html,
    ...(opts.jsonFile !== undefined ? { jsonFile: resolve(io.cwd, opts.jsonFile) } : {}),
    details: single || opts.details === true,
    ...(source ? { surveyed: new Set([source.definition.name]) } : {}),
    replayArguments: replayArgumentsOf(modules, source ? elfScenarioArguments(opts) : undefined),
  });
}

/**
 * The --example tokens, by protocol/scenario: each must name a checked pair and its hardware, so
 * that its tape means the same run it meant when it was recorded.
 */
export function exampleTapes(
  tokens: readonly string[],
  configs: Map<string, RunConfig>,
): Map<string, number[][]> {
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
