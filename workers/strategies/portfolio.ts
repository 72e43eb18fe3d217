// The strategies a check runs, in turn, each with its budget (SPEC §8), in the manner of shuttle's
// PortfolioRunner: a strategy name stands for a list of phases. `exhaustive` is one exhaustive phase
// (explore.ts) to the given bounds; `random`, `bounded` and `pct` one sampling phase (fast-check over
// arbitraries.ts's tapes or PCT parameters); the portfolio is an exhaustive phase to small bounds
// within a budget of executions, then a sampling phase that alternates random and PCT seed by seed
// for what it left open. The check (properties/check.ts) runs the phases and judges their runs.
import type { StrategyName } from "./arbitraries.js";
import type { Bounds } from "./search-tree.js";

/**
 * `--strategy exhaustive` without bounds: at most 2 preemptions, 1 event, no branch direction other
 * than the default, 1 stale value (under `fetch: "stale"`; no other fetch model makes stale choices).
 */
export const DEFAULT_BOUNDS: Bounds = { preemptions: 2, events: 1, branches: 0, stale: 1 };
/**
 * Executions an exhaustive search may take before it stops, incomplete. Every holds cell of the
 * built-in matrix is proven at DEFAULT_BOUNDS within it (the largest, the nmi-rendezvous ones, take
 * 3.4-4.3 million executions and 20-22 minutes: `npm run bench:search proofs`).
 */
export const DEFAULT_MAX_EXECUTIONS = 5_000_000;
/**
 * The portfolio's exhaustive phase: every run with at most one preemption AND one event (two choices:
 * a preemption race and an NMI or #MC inside it, the shape of most patching bugs), one stale value
 * under stale fetch, by iterative deepening (every run with one choice first), within a budget of
 * executions; then random and PCT interleaved for what it leaves open. No total besides the bounds.
 */
export const PORTFOLIO_BOUNDS: Bounds = { preemptions: 1, events: 1, branches: 0, stale: 1 };
// Measured on the default matrix with the default reductions (bench:search k1e1): every cell but the
// mce-path ones is proven at K=1 E=1 within 62,000 executions (the nmi-rendezvous cells take the most);
// on mce-path a broadcast #MC sends every CPU into its handler and K=1 E=1 takes 510,000-540,000
// executions. The budget keeps the main job within its minute: those cells are proven to one choice
// in all and say where their K=1 E=1 search stopped (`--min-bound 1,1 --max-executions N` demands more).
export const PORTFOLIO_MAX_EXECUTIONS = 80_000;
/**
 * The portfolio starts a level of its iterative deepening only when the budget left is at least this
 * many times the executions of the levels before it. Every cell measured costs 28 to 78 times more at
 * K=1 E=1 than at one choice in all (nmi-rendezvous/normal 942 to 73,529; linux-optprobe/normal 2,891
 * to more than 80,000; xen-4.8/mce-path 10,269 to 518,576): a level predicted not to fit is not begun.
 */
export const PORTFOLIO_LEVEL_GROWTH = 8;
/** PCT's bug depth when none is given. */
export const DEFAULT_PCT_DEPTH = 3;
/** `bounded` without a bound: at most this many non-zero choices; `random`: at most RANDOM_CHOICES. */
export const DEFAULT_BOUNDED_CHOICES = 3;
export const RANDOM_CHOICES = 24;

/** A sampling strategy: what fast-check generates (sparse tapes, or PCT parameters). */
export type SampledName = "random" | "bounded" | "pct";

/** One phase of a check: a strategy and its budget. */
export type Phase =
  | {
      kind: "exhaustive";
      bounds: Bounds;
      /** At most this many choices in all besides each bound (undefined: the bounds' sum). */
      total: number | undefined;
      maxExecutions: number;
      /** Start a deepening level only with this many times the executions so far left (portfolio). */
      levelGrowth: number | undefined;
    }
  | {
      kind: "sampling";
      /** Alternated seed by seed (round k is space k mod spaces.length). */
      spaces: SampledName[];
      /** PCT's bug depth. */
      pctDepth: number;
      /** Non-zero choices of a sparse tape, at most. */
      maxChoices: number;
    };

/** What a check was told that decides its phases' budgets. */
export interface PhaseOptions {
  bounds?: Partial<Bounds>;
  /**
   * The least bounds the exhaustive phase must prove (`--min-bound K,E`): its bounds are raised to
   * them, and a check whose exhaustive phase does not complete is incomplete, whatever it sampled.
   */
  minBound?: MinBound;
  total?: number;
  maxExecutions?: number;
  /** bounded: at most this many non-zero choices; pct: the bug depth d. */
  bound?: number;
}

/** The preemptions and events a proof must reach at least (`--min-bound K,E`). */
export interface MinBound {
  preemptions: number;
  events: number;
}

/** The exhaustive bounds of a check, with the defaults filled in and raised to the least bounds. */
export function resolveBounds(
  bounds: Partial<Bounds> = {},
  base: Bounds = DEFAULT_BOUNDS,
  min?: MinBound,
): Bounds {
  const given = Object.fromEntries(Object.entries(bounds).filter(([, v]) => v !== undefined));
  const b: Bounds = { ...base, ...given };
  if (min) {
    b.preemptions = Math.max(b.preemptions, min.preemptions);
    b.events = Math.max(b.events, min.events);
  }
  return b;
}

/** The phases a strategy name stands for, in the order they run. */
export function phasesOf(strategy: StrategyName, opts: PhaseOptions): Phase[] {
  const phases: Phase[] = [];
  if (strategy === "exhaustive" || strategy === "portfolio") {
    phases.push({
      kind: "exhaustive",
      bounds:
        strategy === "exhaustive"
          ? resolveBounds(opts.bounds, DEFAULT_BOUNDS, opts.minBound)
          : resolveBounds(opts.bounds, PORTFOLIO_BOUNDS, opts.minBound),
      total: opts.total,
      maxExecutions:
        opts.maxExecutions ?? (strategy === "exhaustive" ? DEFAULT_MAX_EXECUTIONS : PORTFOLIO_MAX_EXECUTIONS),
      levelGrowth: strategy === "portfolio" ? PORTFOLIO_LEVEL_GROWTH : undefined,
    });
  }
  if (strategy !== "exhaustive")
    phases.push({
      kind: "sampling",
      spaces: strategy === "pct" ? ["pct"] : strategy === "portfolio" ? ["random", "pct"] : [strategy],
      pctDepth: strategy === "pct" ? (opts.bound ?? DEFAULT_PCT_DEPTH) : DEFAULT_PCT_DEPTH,
      maxChoices: strategy === "bounded" ? (opts.bound ?? DEFAULT_BOUNDED_CHOICES) : RANDOM_CHOICES,
    });
  return phases;
}

/**
 * The sampling rounds of a check: fast-check runs of `runs` runs each, one per seed and search space
 * (the portfolio alternates random and PCT seed by seed). None for exhaustive search.
 */
export function sampleRounds(strategy: StrategyName, seeds: number): number {
  const sampling = phasesOf(strategy, {}).find((p) => p.kind === "sampling");
  return sampling?.kind === "sampling" ? seeds * sampling.spaces.length : 0;
}
