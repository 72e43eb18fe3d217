// The executions of a bounded exhaustive search (SPEC §8) over the inline engine: each one begun by
// the search (exhaustive.ts), run from the start (runSpec) or resumed from a snapshot (continueSpec),
// ended, and the search advanced to the next, until the tree is explored or a budget runs out. With
// iterative deepening over the total number of choices (preemptions, events and branch choices
// together), level after level: the first violation found of each property has the fewest choices of
// any run within the bounds that violates it. When a run shows that the program tells CPUs 1..n-1
// apart, the search starts again without symmetry.
//
// What the runs mean is not known here: the caller judges each complete execution (a visitor), as
// properties/search.ts does for the properties.
import type { MachineMemory } from "../../model/memory.js";
import type { MachineSpec } from "../../model/types.js";
import { continueSpec, runSpec } from "../inline.js";
import { memoryFor } from "../setup.js";
import { ExhaustiveSearch } from "./exhaustive.js";
import { DEFAULT_REDUCTIONS, type Reductions } from "./reductions.js";
import type { LogMonitor } from "./resume.js";
import { type Bounds, type Cost, spentOf } from "./search-tree.js";

/** Upper limits of the bounds a search accepts (beyond them a search would not end in any useful time). */
export const BOUND_LIMITS: Bounds = { preemptions: 8, events: 8, branches: 8, stale: 8 };

export interface ExploreOptions {
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
  /** Iterative deepening over the total of choices (default true): counterexamples are then minimal. */
  deepening?: boolean;
  /** At most this many choices in total (preemptions, events, branch choices), besides each bound. */
  total?: number;
  /**
   * Iterative deepening starts a level only when the executions left in the budget are at least this
   * many times those of the levels before it (the portfolio: a level it cannot be expected to finish
   * is left to the random and PCT runs, which use the time better than a search cut short). Off by
   * default.
   */
  levelGrowth?: number;
  /**
   * The state cache's size limit in bytes (`--max-memory`): past it, states are explored without
   * being remembered (sound, slower), and the result says so (cacheFull).
   */
  maxCacheBytes?: number;
}

/** What the caller makes of the executions. */
export interface ExploreVisitor {
  /** The search starts, or starts again without symmetry: forget what earlier attempts saw. */
  start(): void;
  /**
   * A complete execution, new at its level (the buffer holds its end): judge it. True stops the
   * search (every wanted property is violated).
   */
  complete(mem: MachineMemory, cost: Cost): boolean;
  /** An execution cut at a state explored before: its prefix's situations count (the buffer holds it). */
  cached(mem: MachineMemory): void;
  /** A reader of the log the search keeps in step with its executions, resumed ones too. */
  monitor?: LogMonitor;
}

export interface ExploreResult {
  /** Every run within the bounds was explored (up to the reductions' equivalence), or the visitor stopped it. */
  complete: boolean;
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
  /** Choice points with more than one value met inside steps, by kind (all levels together). */
  valuePoints: { branch: number; stale: number };
  /** The state cache reached its size limit at some level (maxCacheBytes). */
  cacheFull: boolean;
  reductions: Reductions;
  /** Why symmetry reduction was given up (the program tells CPUs 1..n-1 apart), if it was. */
  symmetryGivenUp?: string;
}

export class SearchRunError extends Error {}

/** Runs the search's executions, level by level, handing each to the visitor. */
export function explore(spec: MachineSpec, opts: ExploreOptions, visitor: ExploreVisitor): ExploreResult {
  const started = performance.now();
  const { bounds } = opts;
  for (const [k, v] of Object.entries(bounds)) {
    const limit = BOUND_LIMITS[k as keyof Bounds];
    if (!Number.isInteger(v) || v < 0 || v > limit)
      throw new Error(`the ${k} bound must be a whole number from 0 to ${limit}, not ${v}`);
  }
  const deepening = opts.deepening ?? true;
  const max = opts.maxExecutions ?? Number.POSITIVE_INFINITY;
  const deadline = opts.maxMs === undefined ? undefined : started + opts.maxMs;
  const top = Math.min(opts.total ?? Number.POSITIVE_INFINITY, spentOf(bounds));
  const mem = memoryFor(spec);
  let reductions: Reductions = { ...(opts.reductions ?? DEFAULT_REDUCTIONS) };
  let symmetryGivenUp: string | undefined;
  let executions = 0;
  let resumed = 0;
  const valuePoints = { branch: 0, stale: 0 };
  let cacheFull = false;
  for (;;) {
    visitor.start();
    const pruned = { sleep: 0, placement: 0, cache: 0 };
    let states = 0;
    let judged = 0;
    let level = -1;
    let complete = true;
    let restart = false;
    const levels = deepening ? Array.from({ length: top + 1 }, (_, i) => i) : [top];
    levelLoop: for (const limit of levels) {
      if (opts.levelGrowth !== undefined && limit > 0 && executions * opts.levelGrowth > max - executions) {
        complete = false;
        break;
      }
      const search = new ExhaustiveSearch(
        spec,
        bounds,
        reductions,
        limit,
        opts.resume ?? true,
        opts.maxCacheBytes,
      );
      search.valuePoints = valuePoints;
      search.monitor = visitor.monitor ?? null;
      do {
        if (
          executions >= max ||
          (deadline !== undefined && (executions & 63) === 0 && performance.now() > deadline)
        ) {
          complete = false;
          states = Math.max(states, search.states);
          cacheFull ||= search.cacheFull;
          break levelLoop;
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
          break levelLoop;
        }
        if (end.kind !== "complete") {
          pruned[end.kind]++;
          if (end.kind === "cache") visitor.cached(mem);
          continue;
        }
        // A run with fewer choices was judged at an earlier level already.
        if (deepening && spentOf(end.cost) < limit) continue;
        judged++;
        if (visitor.complete(mem, end.cost)) {
          level = limit;
          states = Math.max(states, search.states);
          cacheFull ||= search.cacheFull;
          break levelLoop;
        }
      } while (search.advance());
      level = limit;
      states = Math.max(states, search.states);
      cacheFull ||= search.cacheFull;
      // No choice was left out for want of total: a higher level would explore the same runs (a
      // dimension with no choice points, such as stale values under bytewise fetch, adds nothing).
      if (!search.totalBound) {
        level = top;
        break;
      }
    }
    if (restart) continue;
    return {
      complete,
      executions,
      judged,
      resumed,
      pruned,
      states,
      level,
      valuePoints,
      cacheFull,
      reductions,
      symmetryGivenUp,
    };
  }
}
