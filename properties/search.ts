// Bounded exhaustive exploration of one machine (workers/strategies/exhaustive.ts), judged for every
// property: a property that no explored run violates holds within the bounds, as a proof, when the
// search ran to its end. With iterative deepening over the total number of choices (preemptions,
// events and branch choices together), the first violation found of each property has the fewest
// choices of any run within the bounds that violates it: it is minimal.
import { H, type MachineMemory } from "../model/memory.js";
import type { MachineSpec } from "../model/types.js";
import { continueSpec, runSpec } from "../workers/inline.js";
import { memoryFor } from "../workers/setup.js";
import { ExhaustiveSearch } from "../workers/strategies/exhaustive.js";
import { DEFAULT_REDUCTIONS, type Reductions } from "../workers/strategies/reductions.js";
import type { Bounds, Cost } from "../workers/strategies/search-tree.js";
import { type Coverage, countSituations, emptyCoverage, situationsOf } from "./coverage.js";
import { evaluate, PROPERTY_IDS, type PropertyId, type Violation } from "./invariants.js";

/** Upper limits of the bounds a search accepts (beyond them a search would not end in any useful time). */
export const BOUND_LIMITS: Bounds = { preemptions: 8, events: 8, branches: 8 };

export interface ExhaustiveOptions {
  bounds: Bounds;
  reductions?: Reductions;
  /** Stop after this many executions (all deepening levels together): the result is then incomplete. */
  maxExecutions?: number;
  /** Stop after this many milliseconds (benches: a time cap per search): the result is then incomplete. */
  maxMs?: number;
  /**
   * Resume each execution from a snapshot of an earlier one (default) rather than re-executing it from
   * the start: the same executions and verdicts, less work (false: the reference the tests compare with).
   */
  resume?: boolean;
  properties?: readonly PropertyId[];
  /** Iterative deepening over the total of choices (default true): counterexamples are then minimal. */
  deepening?: boolean;
  /** At most this many choices in total (preemptions, events, branch choices), besides each bound. */
  total?: number;
  /** Stop once every wanted property is violated (default true). */
  stopWhenAllViolated?: boolean;
  /** Told of every complete execution (the soundness tests collect outcomes with it). */
  onExecution?: (mem: MachineMemory, cost: Cost, violated: readonly PropertyId[]) => void;
}

export interface ExhaustiveFinding {
  violation: Violation;
  /** The run's choices, as a replayable tape (every decision up to the end of the run). */
  tape: number[];
  cost: Cost;
  /** No run within the bounds with fewer choices in total violates the property. */
  minimal: boolean;
}

export interface ExhaustiveResult {
  /** Every run within the bounds was explored (up to the reductions' equivalence). */
  complete: boolean;
  bounds: Bounds;
  cpus: number;
  /** Runs started, all levels together: complete ones and ones stopped as redundant. */
  executions: number;
  /** Complete runs judged. */
  judged: number;
  /** Runs resumed from a snapshot of an earlier one rather than executed from the start. */
  resumed: number;
  pruned: { sleep: number; placement: number; cache: number };
  /** Distinct states the state cache held at its largest level (0 without state caching). */
  states: number;
  /** The largest total of choices explored to its end (-1: none). */
  level: number;
  findings: Map<PropertyId, ExhaustiveFinding>;
  /** Violations found only through hazards, for properties with no finding of the protocol's own. */
  hazards: Map<PropertyId, ExhaustiveFinding>;
  coverage: Coverage;
  /** Runs whose situations `coverage` counts: those judged, and those cut at a state explored before. */
  coverageRuns: number;
  reductions: Reductions;
  /** Why symmetry reduction was given up (the program tells CPUs 1..n-1 apart), if it was. */
  symmetryGivenUp?: string;
  elapsedMs: number;
}

export class SearchRunError extends Error {}

export function total(c: Cost): number {
  return c.preemptions + c.events + c.branches;
}

export function exhaustive(spec: MachineSpec, opts: ExhaustiveOptions): ExhaustiveResult {
  const started = performance.now();
  const { bounds } = opts;
  for (const [k, v] of Object.entries(bounds)) {
    const limit = BOUND_LIMITS[k as keyof Bounds];
    if (!Number.isInteger(v) || v < 0 || v > limit)
      throw new Error(`the ${k} bound must be a whole number from 0 to ${limit}, not ${v}`);
  }
  const wanted = opts.properties ?? PROPERTY_IDS;
  const deepening = opts.deepening ?? true;
  const stopWhenAll = opts.stopWhenAllViolated ?? true;
  const max = opts.maxExecutions ?? Number.POSITIVE_INFINITY;
  const deadline = opts.maxMs === undefined ? undefined : started + opts.maxMs;
  const top = Math.min(
    opts.total ?? Number.POSITIVE_INFINITY,
    bounds.preemptions + bounds.events + bounds.branches,
  );
  const mem = memoryFor(spec);
  let reductions: Reductions = { ...(opts.reductions ?? DEFAULT_REDUCTIONS) };
  let symmetryGivenUp: string | undefined;
  let executions = 0;
  let resumed = 0;
  for (;;) {
    const findings = new Map<PropertyId, ExhaustiveFinding>();
    const hazards = new Map<PropertyId, ExhaustiveFinding>();
    const coverage = emptyCoverage();
    const pruned = { sleep: 0, placement: 0, cache: 0 };
    let states = 0;
    let judged = 0;
    let coverageRuns = 0;
    let level = -1;
    let complete = true;
    let restart = false;
    const levels = deepening ? Array.from({ length: top + 1 }, (_, i) => i) : [top];
    explore: for (const limit of levels) {
      const search = new ExhaustiveSearch(spec, bounds, reductions, limit, opts.resume ?? true);
      do {
        if (
          executions >= max ||
          (deadline !== undefined && (executions & 63) === 0 && performance.now() > deadline)
        ) {
          complete = false;
          states = Math.max(states, search.states);
          break explore;
        }
        const resuming = search.begin(mem);
        if (resuming) resumed++;
        const r = resuming
          ? continueSpec(mem, search.runCpus, search)
          : runSpec(spec, { scheduler: search }, mem);
        const end = search.end(r.status);
        executions++;
        if (end.kind === "error") throw new SearchRunError(r.error ?? "the run failed");
        if (reductions.symmetry && search.symmetryBroken) {
          symmetryGivenUp = search.symmetryBroken;
          reductions = { ...reductions, symmetry: false };
          restart = true;
          break explore;
        }
        if (end.kind !== "complete") {
          pruned[end.kind]++;
          // A run cut at a state explored before: its futures were judged there, but the situations
          // its prefix reached count for it (the vacuity witness reads the history).
          if (end.kind === "cache") {
            countSituations(coverage, situationsOf(spec, mem));
            coverageRuns++;
          }
          continue;
        }
        // A run with fewer choices was judged at an earlier level already.
        if (deepening && total(end.cost) < limit) continue;
        judged++;
        countSituations(coverage, situationsOf(spec, mem));
        coverageRuns++;
        const violations = evaluate(spec, mem);
        for (const v of violations) {
          // A violation only through a hazard (a second #MC, ...) is kept apart: the protocol's own
          // fault, if there is one within the bounds, is what the search reports first.
          const into = v.hazard ? hazards : findings;
          if (!wanted.includes(v.property) || into.has(v.property)) continue;
          into.set(v.property, {
            violation: v,
            tape: Array.from(mem.record.subarray(0, mem.header[H.recordLen])),
            cost: end.cost,
            minimal: deepening,
          });
        }
        opts.onExecution?.(
          mem,
          end.cost,
          violations.map((v) => v.property),
        );
        if (stopWhenAll && wanted.every((p) => findings.has(p))) {
          level = limit;
          states = Math.max(states, search.states);
          break explore;
        }
      } while (search.advance());
      level = limit;
      states = Math.max(states, search.states);
    }
    if (restart) continue;
    return {
      complete,
      bounds,
      cpus: spec.config.hardware.cpus,
      executions,
      judged,
      resumed,
      pruned,
      states,
      level,
      findings,
      hazards,
      coverage,
      coverageRuns,
      reductions,
      symmetryGivenUp,
      elapsedMs: performance.now() - started,
    };
  }
}
