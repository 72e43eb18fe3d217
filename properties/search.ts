// Bounded exhaustive exploration of one machine (workers/strategies/explore.ts runs the search's
// executions), judged for every property: a property that no explored run violates holds within the
// bounds, as a proof, when the search ran to its end. With iterative deepening over the total number
// of choices (preemptions, events and branch choices together), the first violation found of each
// property has the fewest choices of any run within the bounds that violates it: it is minimal.
import { H, type MachineMemory } from "../model/memory.js";
import type { MachineSpec } from "../model/types.js";
import { type ExploreOptions, type ExploreResult, explore } from "../workers/strategies/explore.js";
import type { Cost } from "../workers/strategies/search-tree.js";
import { type Coverage, countSituations, emptyCoverage, Situations } from "./coverage.js";
import { evaluate, PROPERTY_IDS, type PropertyId, type Violation } from "./invariants.js";

export interface ExhaustiveOptions extends ExploreOptions {
  properties?: readonly PropertyId[];
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

export interface ExhaustiveResult extends ExploreResult {
  bounds: ExploreOptions["bounds"];
  cpus: number;
  findings: Map<PropertyId, ExhaustiveFinding>;
  /** Violations found only through hazards, for properties with no finding of the protocol's own. */
  hazards: Map<PropertyId, ExhaustiveFinding>;
  coverage: Coverage;
  /** Runs whose situations `coverage` counts: those judged, and those cut at a state explored before. */
  coverageRuns: number;
  elapsedMs: number;
}

export function exhaustive(spec: MachineSpec, opts: ExhaustiveOptions): ExhaustiveResult {
  const started = performance.now();
  const wanted = opts.properties ?? PROPERTY_IDS;
  const deepening = opts.deepening ?? true;
  const stopWhenAll = opts.stopWhenAllViolated ?? true;
  let findings = new Map<PropertyId, ExhaustiveFinding>();
  let hazards = new Map<PropertyId, ExhaustiveFinding>();
  let coverage = emptyCoverage();
  let coverageRuns = 0;
  // The situations of the execution in progress, read from the log incrementally (the search keeps
  // it in step with resumed executions).
  const situations = new Situations(spec);
  const r = explore(spec, opts, {
    monitor: situations,
    start: () => {
      findings = new Map();
      hazards = new Map();
      coverage = emptyCoverage();
      coverageRuns = 0;
    },
    cached: (mem) => {
      // A run cut at a state explored before: its futures were judged there, but the situations
      // its prefix reached count for it (the vacuity witness reads the history).
      countSituations(coverage, situations.update(mem));
      coverageRuns++;
    },
    complete: (mem, cost) => {
      countSituations(coverage, situations.update(mem));
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
          cost,
          minimal: deepening,
        });
      }
      opts.onExecution?.(
        mem,
        cost,
        violations.map((v) => v.property),
      );
      return stopWhenAll && wanted.every((p) => findings.has(p));
    },
  });
  return {
    complete: r.complete,
    bounds: opts.bounds,
    cpus: spec.config.hardware.cpus,
    executions: r.executions,
    judged: r.judged,
    resumed: r.resumed,
    pruned: r.pruned,
    states: r.states,
    level: r.level,
    valuePoints: r.valuePoints,
    cacheFull: r.cacheFull,
    findings,
    hazards,
    coverage,
    coverageRuns,
    reductions: r.reductions,
    symmetryGivenUp: r.symmetryGivenUp,
    elapsedMs: performance.now() - started,
  };
}
