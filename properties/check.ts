// check(): explores one (protocol, scenario, hardware) with fast-check and returns a verdict. Each
// property is explored on its own, so that one violation does not hide another (SPEC §7); each
// violation comes with its shrunk tape and a replay token.
import fc from "fast-check";
import { DEFAULT_HARDWARE } from "../model/machine.js";
import { H, type MachineMemory, RunStatus } from "../model/memory.js";
import { findScenario } from "../model/scenarios/index.js";
import type { Hardware, MachineSpec, RunConfig } from "../model/types.js";
import { type Engine, inlineEngine } from "../workers/engine.js";
import { runInline } from "../workers/inline.js";
import { machineFor, type Strategy } from "../workers/setup.js";
import {
  type Choice,
  choicesToTape,
  pctParams,
  type StrategyName,
  sparseChoices,
  tapeToChoices,
} from "./arbitraries.js";
import { evaluate, PROPERTY_IDS, type PropertyId, type Violation } from "./invariants.js";
import type { PctParams } from "./tape.js";
import { decodeTape, encodeToken } from "./token.js";

/** The default search: uniform random tapes and PCT, seed by seed (see check()). */
export const DEFAULT_STRATEGY: StrategyName = "portfolio";
/** PCT's bug depth d when the portfolio runs it (a bug of depth d needs d-1 priority changes). */
export const PCT_DEPTH = 3;

/** The default exploration budget: runs per property and seed, and seeds tried per property. */
export const DEFAULT_RUNS = 1000;
export const DEFAULT_SEEDS = 3;

/**
 * Run outcomes a check remembers (about 1 KB each, the key being the run's tape): enough for every
 * tape of the default budget (runs x seeds) and the shrinking of its counterexamples, so each
 * property after the first finds its runs done. Past it, new outcomes are not kept and their runs are
 * repeated: memory stays flat, results do not change (a run's outcome depends on its configuration
 * and tape alone).
 */
export const OUTCOME_MEMORY = 8192;

export interface CheckOptions {
  protocol: string;
  scenario: string;
  hardware?: Partial<Hardware>;
  engine?: Engine;
  strategy?: StrategyName;
  /** Runs per property and seed. */
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
  /** bounded: at most this many non-zero choices (preemptions + events); pct: the bug depth d. */
  bound?: number;
  /** Run outcomes kept for the other properties' runs (default OUTCOME_MEMORY); memory, not results. */
  outcomeMemory?: number;
}

export interface PropertyResult {
  property: PropertyId;
  holds: boolean;
  runs: number;
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

export type Verdict =
  | { kind: "refused"; config: RunConfig; reason: string }
  | {
      kind: "holds" | "violated";
      config: RunConfig;
      properties: PropertyResult[];
      runs: number;
      distinctLogs: number;
      elapsedMs: number;
    }
  | { kind: "error"; config: RunConfig; message: string };

/** The configuration of a run with the scenario's budgets and the defaults filled in. */
export function resolveConfig(
  protocol: string,
  scenario: string,
  hardware: Partial<Hardware> = {},
): RunConfig {
  const s = findScenario(scenario);
  const hw: Hardware = { ...DEFAULT_HARDWARE, nmis: s.nmis, mces: s.mces, ...stripUndefined(hardware) };
  for (const [k, v] of Object.entries({ nmis: hw.nmis, mces: hw.mces, stepBound: hw.stepBound })) {
    if (!Number.isInteger(v) || v < 0) throw new Error(`${k} must be a whole number, not ${v}`);
  }
  if (hw.stepBound < 100 || hw.stepBound > 1_000_000)
    throw new Error(`the step bound must be from 100 to 1000000, not ${hw.stepBound}`);
  const config = { protocol, scenario, hardware: hw };
  machineFor(config); // rejects unknown names and bad CPU counts now, with their own messages
  return config;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function hashLog(mem: MachineMemory): number {
  let h = 0x811c9dc5;
  const n = mem.header[H.logCount] * 8;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ mem.log[i], 0x01000193);
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
  const engine = opts.engine ?? inlineEngine;
  const strategyName = opts.strategy ?? DEFAULT_STRATEGY;
  const runs = opts.runs ?? DEFAULT_RUNS;
  const seed = opts.seed ?? 1;
  const span = tapeSpan(config);
  const n = config.hardware.cpus;
  const eventKinds = (config.hardware.mces > 0 ? 2 : 1) * n;
  const declared = spec.protocol.expected[config.scenario];
  const exampleTapes =
    opts.examples !== false && declared && "violated" in declared
      ? (declared.examples ?? []).map(decodeTape)
      : [];
  const pctSpace: SearchSpace<unknown> = {
    arb: pctParams(
      n,
      strategyName === "pct" ? (opts.bound ?? PCT_DEPTH) : PCT_DEPTH,
      span,
      config.hardware.nmis + config.hardware.mces,
      eventKinds,
    ),
    strategy: (pct) => ({ pct: pct as PctParams }),
    examples: [],
  };
  const tapeSpace: SearchSpace<unknown> = {
    // Choices stay (position, value) pairs until a run needs the tape, so that fast-check can
    // shrink declared examples too (it shrinks plain arrays without their generation context).
    arb: sparseChoices(span, strategyName === "bounded" ? (opts.bound ?? 3) : 24),
    strategy: (pairs) => ({ tape: choicesToTape(pairs as Choice[]) }),
    examples: exampleTapes.map(tapeToChoices),
  };
  // The portfolio alternates uniform random tapes and PCT seed by seed: random finds the short
  // counterexamples and shrinks them best, PCT the ones that need a few precise preemptions.
  const spaces =
    strategyName === "pct" ? [pctSpace] : strategyName === "portfolio" ? [tapeSpace, pctSpace] : [tapeSpace];
  let space = spaces[0];
  const logs = new Set<number>();
  let total = 0;
  const results: PropertyResult[] = [];
  const wanted = opts.properties ?? PROPERTY_IDS;
  // Each property is explored by its own fast-check run, but with one seed fast-check generates the
  // same tapes for each: a run's outcome is computed once and judged for every property.
  const outcomes = new Map<string, Failing[]>();
  // A run that fails with an error (a routine throws, a stuck run stopped) ends the check: it is a bug
  // to report, not a counterexample to shrink, so no further run is made once one has failed.
  let runError: string | undefined;
  const outcome = async (strategy: Strategy): Promise<Failing[]> => {
    const key = JSON.stringify(strategy);
    let failing = outcomes.get(key);
    if (!failing) {
      const r = await engine.run(config, strategy).catch((e: unknown) => ({
        status: RunStatus.Error,
        error: e instanceof Error ? e.message : String(e),
        mem: undefined,
      }));
      total++;
      if (r.status === RunStatus.Error || !r.mem) {
        runError ??= r.error ?? "the run failed";
        return [];
      }
      logs.add(hashLog(r.mem));
      failing = evaluate(spec, r.mem).map((v) => ({ property: v.property, hazard: v.hazard !== undefined }));
      if (outcomes.size < (opts.outcomeMemory ?? OUTCOME_MEMORY)) outcomes.set(key, failing);
    }
    return failing;
  };
  for (const property of wanted) {
    let explored = 0;
    let firstFailing: Strategy | undefined;
    // A violation caused only by a hazard (a second #MC, ...) is not the protocol's: the search goes
    // on for one that is, and falls back to the first hazard it saw (shrunk on its own) if none is.
    let firstHazard: unknown;
    let hazardSpace = space;
    let hazardOnly = false;
    let details: fc.RunDetails<[unknown]> | undefined;
    for (let k = 0; k < (opts.seeds ?? DEFAULT_SEEDS) * spaces.length && !details?.failed && !runError; k++) {
      space = spaces[k % spaces.length];
      details = await fc.check(
        fc.asyncProperty(space.arb, async (value) => {
          if (runError !== undefined) return true; // the check is over: let fast-check finish at once
          explored++;
          const strategy = space.strategy(value);
          const failing = (await outcome(strategy)).filter((f) => f.property === property);
          if (failing.some((f) => f.hazard) && firstHazard === undefined) {
            firstHazard = value;
            hazardSpace = space;
          }
          const ok = !failing.some((f) => !f.hazard);
          if (!ok) firstFailing ??= strategy;
          return ok;
        }),
        {
          numRuns: runs,
          seed: seed + Math.floor(k / spaces.length),
          endOnFailure: false,
          examples: k === 0 ? space.examples.map((e) => [e] as [unknown]) : [],
        },
      );
    }
    if (runError !== undefined)
      return { kind: "error", config, message: `${config.protocol}/${config.scenario}: ${runError}` };
    if (details && !details.failed && !details.errorInstance && firstHazard !== undefined) {
      hazardOnly = true;
      space = hazardSpace;
      firstFailing = space.strategy(firstHazard);
      details = await fc.check(
        fc.asyncProperty(space.arb, async (value) => {
          explored++;
          const failing = await outcome(space.strategy(value));
          return !failing.some((f) => f.property === property && f.hazard);
        }),
        { numRuns: 1, seed, endOnFailure: false, examples: [[firstHazard]] },
      );
      if (runError !== undefined)
        return { kind: "error", config, message: `${config.protocol}/${config.scenario}: ${runError}` };
    }
    if (!details) continue;
    if (!details.failed || !details.counterexample) {
      results.push({ property, holds: true, runs: explored });
      continue;
    }
    const shrunk = space.strategy(details.counterexample[0]);
    const replay = counterexample(config, spec, shrunk, property, hazardOnly);
    const originalLength = firstFailing ? tapeOf(config, firstFailing).length : replay.tape.length;
    const original = firstFailing ?? shrunk;
    results.push({
      property,
      holds: false,
      runs: explored,
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
  const violated = results.some((r) => !r.holds);
  return {
    kind: violated ? "violated" : "holds",
    config,
    properties: results,
    runs: total,
    distinctLogs: logs.size,
    elapsedMs: performance.now() - started,
  };
}

/** A property a run violates, and whether only through a hazard (see properties/invariants). */
interface Failing {
  property: PropertyId;
  hazard: boolean;
}

/** What fast-check explores for a strategy, and how a generated value becomes a strategy. */
interface SearchSpace<T> {
  arb: fc.Arbitrary<T>;
  strategy: (value: T) => Strategy;
  examples: T[];
}

/** The tape a strategy amounts to: the choices actually consumed (a PCT run's recorded choices). */
/** Non-zero values of a tape strategy; the choices PCT made for a PCT one (its events and priority changes). */
function choicesIn(strategy: Strategy): number {
  if ("tape" in strategy) return strategy.tape.filter((v) => v !== 0).length;
  return strategy.pct.events.length + strategy.pct.changePoints.length;
}

function tapeOf(config: RunConfig, strategy: Strategy): number[] {
  const r = runInline(config, strategy);
  if ("tape" in strategy) return strategy.tape.slice(0, r.mem.header[H.tapePos]);
  return Array.from(r.mem.record.subarray(0, r.mem.header[H.recordLen]));
}

/** Re-runs a shrunk counterexample inline, as a plain tape, and returns the tape and its violation. */
function counterexample(
  config: RunConfig,
  spec: MachineSpec,
  strategy: Strategy,
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
