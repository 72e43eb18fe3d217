// check(): explores one (protocol, scenario, hardware) and returns a verdict. Each property is judged
// on its own, so that one violation does not hide another (SPEC §7); each violation comes with a tape
// and a replay token. The strategies live in workers/strategies/; a strategy name is a list of phases
// run in turn (workers/strategies/portfolio.ts): bounded exhaustive search (properties/search.ts
// judges its runs: a "holds" is then a proof within the bounds, and counterexamples are minimal),
// random sparse tapes and PCT (fast-check: a "holds" is then only the absence of a violation in the
// runs drawn; counterexamples are shrunk), and the portfolio: exhaustive to small bounds, then random
// and PCT interleaved for what is left.
import fc from "fast-check";
import { DEFAULT_HARDWARE } from "../model/machine.js";
import { H, type MachineMemory, RunStatus } from "../model/memory.js";
import { notePart, noteSampled, Part } from "../model/progress.js";
import { findScenario } from "../model/scenarios/index.js";
import type { Hardware, MachineSpec, Protocol, RunConfig, Scenario } from "../model/types.js";
import { type Engine, inlineEngine } from "../workers/engine.js";
import { runInline } from "../workers/inline.js";
import { type BufferStrategy, machineFor } from "../workers/setup.js";
import {
  type Choice,
  choicesToTape,
  pctParams,
  type StrategyName,
  sparseChoices,
  tapeToChoices,
} from "../workers/strategies/arbitraries.js";
import { SearchRunError } from "../workers/strategies/explore.js";
import { type MinBound, type Phase, phasesOf, type SampledName } from "../workers/strategies/portfolio.js";
import { DEFAULT_REDUCTIONS, type Reductions } from "../workers/strategies/reductions.js";
import { type Bounds, type Cost, spentOf } from "../workers/strategies/search-tree.js";
import type { PctParams } from "../workers/strategies/tape.js";
import { addCoverage, type Coverage, countSituations, emptyCoverage, situationsOf } from "./coverage.js";
import { evaluate, PROPERTY_IDS, type PropertyId, type Violation } from "./invariants.js";
import { type ExhaustiveResult, exhaustive } from "./search.js";
import { decodeTape, encodeToken } from "./token.js";

/** The strategy of check() and of the command when none is given. */
export const DEFAULT_STRATEGY: StrategyName = "portfolio";
/** The default exploration budget: runs per property and seed, and seeds tried per property. */
export const DEFAULT_RUNS = 1000;
export const DEFAULT_SEEDS = 3;

/**
 * Run outcomes a check remembers (about 1 KB each, the key being the run's choices): enough for every
 * sampled run of the default budget and the shrinking of its counterexamples, so each property after
 * the first finds its runs done. Past it, new outcomes are not kept and their runs are repeated:
 * memory stays flat, results do not change (a run's outcome depends on its configuration and tape).
 */
export const OUTCOME_MEMORY = 8192;
export interface CheckOptions {
  protocol: string;
  scenario: string;
  hardware?: Partial<Hardware>;
  engine?: Engine;
  strategy?: StrategyName;
  /** Runs per property and seed (random, bounded, PCT, and the portfolio's sampling). */
  runs?: number;
  seed?: number;
  /**
   * Seeds tried in turn (seed, seed+1, ...) for a property until one finds a violation: a property
   * that holds is explored runs x seeds times.
   */
  seeds?: number;
  properties?: PropertyId[];
  /** Run the protocol's declared example tapes first (default true). */
  examples?: boolean;
  /** A user's regression tapes for this configuration, run first (as fast-check runs examples). */
  exampleTapes?: readonly (readonly number[])[];
  /** bounded: at most this many non-zero choices (preemptions + events); pct: the bug depth d. */
  bound?: number;
  /** Run outcomes kept for the other properties' runs (default OUTCOME_MEMORY); memory, not results. */
  outcomeMemory?: number;
  /** exhaustive: the bounds (the portfolio's exhaustive phase has its own, PORTFOLIO_BOUNDS). */
  bounds?: Partial<Bounds>;
  /** exhaustive, portfolio: at most this many choices in total besides each bound (default: none). */
  total?: number;
  /** exhaustive: executions before the search stops, incomplete. */
  maxExecutions?: number;
  /**
   * exhaustive, portfolio: the least preemptions and events the exhaustive phase must prove; its
   * bounds are raised to them, and the verdict is incomplete (not holds) when the phase does not
   * complete, whatever the sampling found nothing against (`--min-bound K,E`).
   */
  minBound?: MinBound;
  /**
   * exhaustive, portfolio: the state cache's size limit in MB (`--max-memory`); past it, states are
   * explored without being remembered (sound, slower) and the verdict says so.
   */
  maxMemoryMb?: number;
  /** exhaustive: reductions to switch off (all are on by default). */
  reductions?: Partial<Reductions>;
  /**
   * Run only these parts of the check (a shard's, cli/shard.ts): the exhaustive phase or not, and which
   * sampling rounds (round k is seed + ⌊k / spaces⌋ with space k mod spaces, as the check numbers them).
   * Default: every part. A part left out is run by another shard, whose results are merged with these.
   */
  parts?: CheckParts;
}

/** A selection of a check's parts (see CheckOptions.parts, and sampleRounds in portfolio.ts). */
export interface CheckParts {
  exhaustive: boolean;
  rounds: readonly number[];
}

/** How a property's result was obtained. */
export type How = "exhaustive" | "random" | "bounded" | "pct" | "example";

export interface PropertyResult {
  property: PropertyId;
  holds: boolean;
  runs: number;
  /** Not violated, but the exhaustive search stopped before the end and nothing else explored it. */
  undecided?: boolean;
  /** What found the violation (or, for a holds, the strongest evidence). */
  how?: How;
  /** An exhaustive counterexample with the fewest choices of any within the bounds. */
  minimal?: boolean;
  /** Preemptions, events and branch choices of an exhaustive counterexample. */
  cost?: Cost;
  violation?: Violation;
  tape?: number[];
  token?: string;
  shrinks?: number;
  originalTapeLength?: number;
  shrunkTapeLength?: number;
  /** Non-zero choices (preemptions, events, branch picks) of the first failing tape and of the shrunk one. */
  originalChoices?: number;
  shrunkChoices?: number;
}

/** How a verdict was reached: the exhaustive part (a proof within bounds when complete) and the sampled part. */
export interface SearchSummary {
  strategy: StrategyName;
  exhaustive?: {
    bounds: Bounds;
    /** At most this many choices in all (the sum of the bounds unless a total was set). */
    total: number;
    cpus: number;
    /** Every run within the bounds was explored (up to the reductions' equivalence). */
    complete: boolean;
    /** The budget of executions it was given. */
    maxExecutions: number;
    /** Runs the search started (complete ones and ones stopped as redundant), and complete ones judged. */
    executions: number;
    judged: number;
    /** The largest total of choices explored to its end (-1: none). */
    level: number;
    /**
     * Choice points met inside steps, by kind: conditional branches of real code and stale fetches
     * with more than one value. Met with a bound of 0, their other values were not explored: the
     * verdict says so.
     */
    valuePoints: { branch: number; stale: number };
    /** The state cache reached --max-memory: later states were explored without being remembered. */
    cacheFull: boolean;
    reductions: Reductions;
    symmetryGivenUp?: string;
    elapsedMs: number;
  };
  /** Runs drawn by random search, preemption-bounded search or PCT (not exhaustive). */
  sampled?: { runs: number; strategies: StrategyName[] };
  /** Runs that reached each situation of properties/coverage SITUATIONS, over `coverageRuns` runs. */
  coverage: Coverage;
  coverageRuns: number;
}

export type Verdict =
  | { kind: "refused"; config: RunConfig; reason: string }
  | {
      /** incomplete: nothing violated, but the exhaustive search stopped before its end (its budget). */
      kind: "holds" | "violated" | "incomplete";
      config: RunConfig;
      properties: PropertyResult[];
      runs: number;
      distinctLogs: number;
      elapsedMs: number;
      search?: SearchSummary;
    }
  | { kind: "error"; config: RunConfig; message: string };

/** The configuration of a run with the scenario's budgets and the defaults filled in. */
export function resolveConfig(
  protocol: string,
  scenario: string,
  hardware: Partial<Hardware> = {},
): RunConfig {
  const hw = hardwareOf(findScenario(scenario), hardware);
  for (const [k, v] of Object.entries({ nmis: hw.nmis, mces: hw.mces, stepBound: hw.stepBound })) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${k} must be a whole number, not ${v}`);
  }
  if (hw.stepBound < 100 || hw.stepBound > 1_000_000)
    throw new Error(`the step bound must be from 100 to 1000000, not ${hw.stepBound}`);
  const config = { protocol, scenario, hardware: hw };
  machineFor(config); // rejects unknown names and bad CPU counts now, with their own messages
  return config;
}

/** The hardware of a run: the defaults, the scenario's event budgets, then what was given. */
export function hardwareOf(scenario: { nmis: number; mces: number }, hardware: Partial<Hardware>): Hardware {
  return { ...DEFAULT_HARDWARE, nmis: scenario.nmis, mces: scenario.mces, ...stripUndefined(hardware) };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A hash of the event log (who did what where: each record's CPU, kind, address and first field). */
function hashLog(mem: MachineMemory): number {
  let h = 0x811c9dc5;
  const log = mem.log;
  const n = mem.header[H.logCount] * 8;
  for (let i = 0; i < n; i += 8) {
    h = Math.imul(h ^ log[i + 1], 0x01000193);
    h = Math.imul(h ^ log[i + 2], 0x01000193);
    h = Math.imul(h ^ log[i + 3], 0x01000193);
    h = Math.imul(h ^ log[i + 4], 0x01000193);
  }
  return h >>> 0;
}

/** Tapes are laid over twice the choices of the round-robin run (every CPU interleaved, no events). */
export function tapeSpan(config: RunConfig): number {
  return Math.max(64, 2 * runInline(config, { tape: [] }).mem.header[H.recordLen]);
}

export async function check(opts: CheckOptions): Promise<Verdict> {
  const started = performance.now();
  const config = resolveConfig(opts.protocol, opts.scenario, opts.hardware);
  const spec = machineFor(config);
  if (spec.refusal) return { kind: "refused", config, reason: spec.refusal.reason };
  const strategyName = opts.strategy ?? DEFAULT_STRATEGY;
  const wanted = opts.properties ?? PROPERTY_IDS;
  const declared = spec.protocol.expected[config.scenario];
  const exampleTapes = [
    ...(opts.examples !== false && declared && "violated" in declared
      ? (declared.examples ?? []).map(decodeTape)
      : []),
    ...(opts.exampleTapes ?? []).map((t) => [...t]),
  ];
  const state: CheckState = {
    results: new Map(),
    hazards: new Map(),
    logs: new Set(),
    total: 0,
    coverage: emptyCoverage(),
    coverageRuns: 0,
    search: { strategy: strategyName, coverage: emptyCoverage(), coverageRuns: 0 },
  };
  try {
    // The phases of the strategy, in turn (the portfolio: exhaustive, then sampling).
    for (const phase of phasesOf(strategyName, opts)) {
      if (phase.kind === "exhaustive") {
        if (opts.parts?.exhaustive === false) continue;
        // Example tapes come first, as fast-check runs examples (the portfolio hands them to its
        // sampling phase instead, which shrinks what they find).
        if (strategyName === "exhaustive")
          for (const tape of exampleTapes) runExample(config, spec, tape, wanted, state);
        notePart(Part.Exhaustive);
        runExhaustive(config, spec, wanted, phase, opts.reductions, state, opts.maxMemoryMb);
      } else if (opts.parts === undefined || opts.parts.rounds.length > 0) {
        const open = wanted.filter((p) => !state.results.get(p) || state.results.get(p)?.holds);
        await sample(config, spec, opts, phase, open, exampleTapes, state);
      } else if (strategyName === "portfolio") {
        // The portfolio's sampling runs in other shards: a hazard the exhaustive phase found is reported
        // here, and the merge prefers any violation the protocol is answerable for, as sample() does.
        for (const [p, hazard] of state.hazards)
          if (state.results.get(p)?.holds) state.results.set(p, hazard);
      }
    }
  } catch (e) {
    if (e instanceof RunError || e instanceof SearchRunError)
      return { kind: "error", config, message: `${config.protocol}/${config.scenario}: ${e.message}` };
    throw e;
  }
  const properties = wanted.map(
    (p) => state.results.get(p) ?? { property: p, holds: true, runs: 0, undecided: true },
  );
  const violated = properties.some((r) => !r.holds);
  // --min-bound: a proof was demanded; runs drawn at random do not make up for one that stopped.
  const unproven =
    opts.minBound !== undefined &&
    opts.parts?.exhaustive !== false &&
    state.search.exhaustive?.complete !== true;
  const incomplete = !violated && (unproven || properties.some((r) => r.undecided));
  state.search.coverage = state.coverage;
  state.search.coverageRuns = state.coverageRuns;
  return {
    kind: violated ? "violated" : incomplete ? "incomplete" : "holds",
    config,
    properties,
    runs: state.total,
    distinctLogs: state.logs.size,
    elapsedMs: performance.now() - started,
    search: state.search,
  };
}

class RunError extends Error {}

/** What a check has found so far, whichever strategies it runs. */
interface CheckState {
  results: Map<PropertyId, PropertyResult>;
  /**
   * A violation found only through a hazard (a second #MC, ...), kept while the search looks on for
   * one the protocol is answerable for, and reported if none is found (properties/invariants).
   */
  hazards: Map<PropertyId, PropertyResult>;
  logs: Set<number>;
  total: number;
  coverage: Coverage;
  coverageRuns: number;
  search: SearchSummary;
}

/** A user's (or a declared) example tape, run once and judged for every property. */
function runExample(
  config: RunConfig,
  spec: MachineSpec,
  tape: readonly number[],
  wanted: readonly PropertyId[],
  state: CheckState,
): void {
  const r = runInline(config, { tape });
  if (r.status === RunStatus.Error) throw new RunError(r.error ?? "the run failed");
  state.total++;
  state.coverageRuns++;
  countSituations(state.coverage, situationsOf(spec, r.mem));
  state.logs.add(hashLog(r.mem));
  for (const v of evaluate(spec, r.mem)) {
    // A hazard in an example is left for the search, which looks for the protocol's own fault first.
    if (v.hazard || !wanted.includes(v.property) || state.results.has(v.property)) continue;
    const used = tape.slice(0, r.mem.header[H.tapePos]);
    state.results.set(v.property, {
      property: v.property,
      holds: false,
      runs: 1,
      how: "example",
      violation: v,
      tape: used,
      token: encodeToken(config, used),
      shrunkTapeLength: used.length,
      shrunkChoices: used.filter((x) => x !== 0).length,
    });
  }
}

/** Bounded exhaustive search; properties it does not violate hold within its bounds when it completes. */
/** Exhaustive results kept per protocol object (a few, each small: findings, coverage, counts). */
const SEARCH_MEMORY = 16;
const searchMemory = new WeakMap<Protocol, WeakMap<Scenario, Map<string, ExhaustiveResult>>>();

function runExhaustive(
  config: RunConfig,
  spec: MachineSpec,
  wanted: readonly PropertyId[],
  phase: Extract<Phase, { kind: "exhaustive" }>,
  reductions: Partial<Reductions> | undefined,
  state: CheckState,
  maxMemoryMb: number | undefined,
): void {
  const { bounds, total, maxExecutions, levelGrowth } = phase;
  const options = {
    bounds,
    total,
    maxExecutions,
    ...(levelGrowth !== undefined ? { levelGrowth } : {}),
    ...(maxMemoryMb !== undefined ? { maxCacheBytes: maxMemoryMb * 2 ** 20 } : {}),
    properties: wanted,
    reductions: { ...DEFAULT_REDUCTIONS, ...stripUndefined(reductions ?? {}) },
  };
  // The search is deterministic: the same protocol and scenario objects, configuration and options
  // give the same result, so checks of one cell with other seeds (which only the random phase uses)
  // reuse it.
  const key = JSON.stringify([config, options]);
  const byScenario =
    searchMemory.get(spec.protocol) ?? new WeakMap<Scenario, Map<string, ExhaustiveResult>>();
  searchMemory.set(spec.protocol, byScenario);
  const known = byScenario.get(spec.scenario);
  let r = known?.get(key);
  if (!r) {
    r = exhaustive(spec, options);
    const memory = known ?? new Map<string, ExhaustiveResult>();
    if (memory.size >= SEARCH_MEMORY) memory.delete(memory.keys().next().value as string);
    memory.set(key, r);
    byScenario.set(spec.scenario, memory);
  }
  state.total += r.executions;
  state.coverageRuns += r.coverageRuns;
  addCoverage(state.coverage, r.coverage);
  state.search.exhaustive = {
    bounds,
    total: Math.min(total ?? Number.POSITIVE_INFINITY, spentOf(bounds)),
    cpus: r.cpus,
    complete: r.complete,
    maxExecutions,
    executions: r.executions,
    judged: r.judged,
    level: r.level,
    valuePoints: r.valuePoints,
    cacheFull: r.cacheFull,
    reductions: r.reductions,
    symmetryGivenUp: r.symmetryGivenUp,
    elapsedMs: r.elapsedMs,
  };
  for (const p of wanted) {
    const found = r.findings.get(p);
    const earlier = state.results.get(p);
    const hazard = r.hazards.get(p);
    if (!found && hazard && !state.hazards.has(p)) {
      const { tape, violation } = counterexample(config, spec, { tape: hazard.tape }, p, true);
      state.hazards.set(p, {
        property: p,
        holds: false,
        runs: r.executions,
        how: "exhaustive",
        minimal: hazard.minimal,
        cost: hazard.cost,
        violation,
        tape,
        token: encodeToken(config, tape),
        shrunkTapeLength: tape.length,
        shrunkChoices: tape.filter((x) => x !== 0).length,
      });
    }
    if (found) {
      // An exhaustive counterexample is minimal: it replaces a user's example for the same property.
      const { tape, violation } = counterexample(config, spec, { tape: found.tape }, p, false);
      state.results.set(p, {
        property: p,
        holds: false,
        runs: r.executions,
        how: "exhaustive",
        minimal: found.minimal,
        cost: found.cost,
        violation,
        tape,
        token: encodeToken(config, tape),
        shrunkTapeLength: tape.length,
        shrunkChoices: tape.filter((x) => x !== 0).length,
      });
    } else if (!earlier) {
      state.results.set(p, {
        property: p,
        holds: true,
        runs: r.executions,
        how: "exhaustive",
        undecided: !r.complete,
      });
    }
  }
}

/** A property a run violates, and whether only through a hazard (see properties/invariants). */
interface Failing {
  property: PropertyId;
  hazard: boolean;
}

/** What fast-check explores for a strategy, and how a generated value becomes a strategy. */
interface SearchSpace<T> {
  name: "random" | "bounded" | "pct";
  arb: fc.Arbitrary<T>;
  strategy: (value: T) => BufferStrategy;
  examples: T[];
}

/**
 * Random, preemption-bounded or PCT search with fast-check, per property; the portfolio alternates
 * random and PCT seed by seed.
 */
async function sample(
  config: RunConfig,
  spec: MachineSpec,
  opts: CheckOptions,
  phase: Extract<Phase, { kind: "sampling" }>,
  properties: readonly PropertyId[],
  exampleTapes: readonly number[][],
  state: CheckState,
): Promise<void> {
  if (properties.length === 0) return;
  const engine = opts.engine ?? inlineEngine;
  const runs = opts.runs ?? DEFAULT_RUNS;
  const seed = opts.seed ?? 1;
  const span = tapeSpan(config);
  const n = config.hardware.cpus;
  const eventKinds = (config.hardware.mces > 0 ? 2 : 1) * n;
  const pctSpace: SearchSpace<unknown> = {
    name: "pct",
    arb: pctParams(n, phase.pctDepth, span, config.hardware.nmis + config.hardware.mces, eventKinds),
    strategy: (pct) => ({ pct: pct as PctParams }),
    examples: [],
  };
  // Choices stay (position, value) pairs until a run needs the tape, so that fast-check can shrink
  // examples too (it shrinks plain arrays without their generation context).
  const tapeSpace = (name: "random" | "bounded"): SearchSpace<unknown> => ({
    name,
    arb: sparseChoices(span, phase.maxChoices),
    strategy: (pairs) => ({ tape: choicesToTape(pairs as Choice[]) }),
    examples: exampleTapes.map(tapeToChoices),
  });
  const spaces = phase.spaces.map((name: SampledName) => (name === "pct" ? pctSpace : tapeSpace(name)));
  state.search.sampled = { runs: 0, strategies: spaces.map((s) => s.name) };
  const rounds = (opts.seeds ?? DEFAULT_SEEDS) * spaces.length;
  const mine = opts.parts ? opts.parts.rounds.filter((k) => k < rounds).length : rounds;
  notePart(Part.Sampling, properties.length * mine * runs); // at most: a violation ends a property early
  // Each property is explored by its own fast-check run, but with one seed fast-check generates the
  // same tapes for each: a run's outcome is computed once and judged for every property.
  const outcomes = new Map<string, Failing[]>();
  // A run that fails with an error (a routine throws, a stuck run stopped) ends the check: it is a bug
  // to report, not a counterexample to shrink, so no further run is made once one has failed.
  let runError: string | undefined;
  const outcome = async (strategy: BufferStrategy, value: unknown): Promise<Failing[]> => {
    // The generated value is short (sparse choices, PCT parameters); the tape it becomes is not.
    const key = JSON.stringify(value);
    let failing = outcomes.get(key);
    if (!failing) {
      const r = await engine.run(config, strategy).catch((e: unknown) => ({
        status: RunStatus.Error,
        error: e instanceof Error ? e.message : String(e),
        mem: undefined,
      }));
      state.total++;
      if (state.search.sampled) state.search.sampled.runs++;
      if (r.status === RunStatus.Error || !r.mem) {
        runError ??= r.error ?? "the run failed";
        return [];
      }
      state.logs.add(hashLog(r.mem));
      state.coverageRuns++;
      countSituations(state.coverage, situationsOf(spec, r.mem));
      failing = evaluate(spec, r.mem).map((v) => ({ property: v.property, hazard: v.hazard !== undefined }));
      if (outcomes.size < (opts.outcomeMemory ?? OUTCOME_MEMORY)) outcomes.set(key, failing);
    }
    return failing;
  };
  for (const property of properties) {
    let explored = 0;
    let firstFailing: BufferStrategy | undefined;
    // A violation caused only by a hazard (a second #MC, ...) is not the protocol's: the search goes
    // on for one that is, and falls back to the first hazard it saw (shrunk on its own) if none is.
    let firstHazard: { value: unknown; space: SearchSpace<unknown> } | undefined;
    let hazardOnly = false;
    let details: fc.RunDetails<[unknown]> | undefined;
    let space = spaces[0];
    for (
      let k = 0;
      k < (opts.seeds ?? DEFAULT_SEEDS) * spaces.length && !details?.failed && runError === undefined;
      k++
    ) {
      if (opts.parts !== undefined && !opts.parts.rounds.includes(k)) continue; // another shard's round
      space = spaces[k % spaces.length];
      const current = space;
      details = await fc.check(
        fc.asyncProperty(current.arb, async (value) => {
          if (runError !== undefined) return true; // the check is over: let fast-check finish at once
          explored++;
          noteSampled();
          const strategy = current.strategy(value);
          const failing = (await outcome(strategy, value)).filter((f) => f.property === property);
          if (failing.some((f) => f.hazard) && firstHazard === undefined)
            firstHazard = { value, space: current };
          const ok = !failing.some((f) => !f.hazard);
          if (!ok) firstFailing ??= strategy;
          return ok;
        }),
        {
          numRuns: runs,
          seed: seed + Math.floor(k / spaces.length),
          endOnFailure: false,
          examples: k === 0 ? current.examples.map((e) => [e] as [unknown]) : [],
        },
      );
    }
    if (runError !== undefined) throw new RunError(runError);
    const exhaustiveHazard = state.hazards.get(property);
    if (details && !details.failed && !details.errorInstance && exhaustiveHazard) {
      // The exhaustive phase's hazard is minimal within its bounds: report it, as no fault was found.
      state.results.set(property, { ...exhaustiveHazard, runs: exhaustiveHazard.runs + explored });
      continue;
    }
    if (details && !details.failed && !details.errorInstance && firstHazard !== undefined) {
      const hazardSpace = firstHazard.space;
      hazardOnly = true;
      space = hazardSpace;
      firstFailing = hazardSpace.strategy(firstHazard.value);
      details = await fc.check(
        fc.asyncProperty(hazardSpace.arb, async (value) => {
          explored++;
          const failing = await outcome(hazardSpace.strategy(value), value);
          return !failing.some((f) => f.property === property && f.hazard);
        }),
        { numRuns: 1, seed, endOnFailure: false, examples: [[firstHazard.value]] },
      );
      if (runError !== undefined) throw new RunError(runError);
    }
    if (!details) continue;
    if (details.errorInstance instanceof RunError) throw details.errorInstance;
    if (!details.failed || !details.counterexample) {
      const earlier = state.results.get(property);
      // Runs drawn at random add evidence to an exhaustive part; an undecided one stays undecided
      // as far as proof goes, but the verdict can now rest on sampling.
      state.results.set(property, {
        property,
        holds: true,
        runs: explored + (earlier?.runs ?? 0),
        how: earlier?.how === "exhaustive" && !earlier.undecided ? "exhaustive" : space.name,
      });
      continue;
    }
    const shrunk = space.strategy(details.counterexample[0]);
    const replay = counterexample(config, spec, shrunk, property, hazardOnly);
    const originalLength = firstFailing ? tapeOf(config, firstFailing).length : replay.tape.length;
    const original = firstFailing ?? shrunk;
    state.results.set(property, {
      property,
      holds: false,
      runs: explored,
      how: space.name,
      violation: replay.violation,
      tape: replay.tape,
      token: encodeToken(config, replay.tape),
      shrinks: details.numShrinks,
      originalTapeLength: originalLength,
      shrunkTapeLength: replay.tape.length,
      originalChoices: choicesIn(original),
      shrunkChoices: choicesIn(shrunk),
    });
  }
}

/** Non-zero values of a tape strategy; the choices PCT made for a PCT one (its events and priority changes). */
function choicesIn(strategy: BufferStrategy): number {
  if ("tape" in strategy) return strategy.tape.filter((v) => v !== 0).length;
  return strategy.pct.events.length + strategy.pct.changePoints.length;
}

/** The tape a strategy amounts to: the choices actually consumed (a PCT run's recorded choices). */
function tapeOf(config: RunConfig, strategy: BufferStrategy): number[] {
  const r = runInline(config, strategy);
  if ("tape" in strategy) return strategy.tape.slice(0, r.mem.header[H.tapePos]);
  return Array.from(r.mem.record.subarray(0, r.mem.header[H.recordLen]));
}

/** Re-runs a counterexample inline, as a plain tape, and returns the tape and its violation. */
function counterexample(
  config: RunConfig,
  spec: MachineSpec,
  strategy: BufferStrategy,
  property: PropertyId,
  hazard: boolean,
): { tape: number[]; violation: Violation } {
  const tape = tapeOf(config, strategy);
  const r = runInline(config, { tape });
  const violation = evaluate(spec, r.mem, property).find((v) => (v.hazard !== undefined) === hazard);
  if (!violation)
    throw new Error(`the counterexample for ${property} did not replay from its tape: a determinism bug`);
  return { tape, violation };
}
