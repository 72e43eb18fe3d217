// Every default of a check, in one place: what the command, the library's check() and the vitest
// helper use when an option is left out. The values are defined beside the code they tune (the
// check's budget in properties/check, the machine in model/machine, the watchdog in workers/threaded);
// this object gathers them, so that one place says them all.
import { DEFAULT_HARDWARE } from "../model/machine.js";
import { DEFAULT_RUNS, DEFAULT_SEEDS, DEFAULT_STRATEGY } from "../properties/check.js";
import type { EngineName } from "../workers/engine.js";
import {
  DEFAULT_BOUNDS,
  DEFAULT_MAX_EXECUTIONS,
  DEFAULT_PCT_DEPTH,
  PORTFOLIO_BOUNDS,
  PORTFOLIO_MAX_EXECUTIONS,
} from "../workers/strategies/portfolio.js";
import { DEFAULT_REDUCTIONS } from "../workers/strategies/reductions.js";
import { DEFAULT_WATCHDOG_MS } from "../workers/threaded.js";

export const DEFAULTS = {
  /** How the runs are chosen: exhaustive within small bounds, then random and PCT (`--strategy`). */
  strategy: DEFAULT_STRATEGY,
  /** Runs per property and seed for random, bounded, PCT and the portfolio's sampling (`--runs`). */
  runs: DEFAULT_RUNS,
  /** Seeds tried in turn per property until one finds a violation (`--seeds`). */
  seeds: DEFAULT_SEEDS,
  /** The first fast-check seed (`--seed`). */
  seed: 1,
  /** PCT's bug depth when none is given (`--bound` with `--strategy pct`). */
  pctDepth: DEFAULT_PCT_DEPTH,
  /**
   * The machine: CPUs, fetch model, NMI and #MC budgets (a scenario's own budgets replace these two)
   * and the step bound of a run (`--cpus`, `--fetch`, `--nmis`, `--mces`, `--step-bound`).
   */
  hardware: DEFAULT_HARDWARE,
  /**
   * The exhaustive search's bounds: preemptions, events, branch directions, stale values
   * (`--preemptions`, `--events`, `--branches`, `--stale`).
   */
  bounds: DEFAULT_BOUNDS,
  /** Executions an exhaustive search may take before it stops, incomplete (`--max-executions`). */
  maxExecutions: DEFAULT_MAX_EXECUTIONS,
  /** The exhaustive search's reductions (`--reductions`). */
  reductions: DEFAULT_REDUCTIONS,
  /** The portfolio's exhaustive phase: its bounds and its budget of executions. */
  portfolio: { bounds: PORTFOLIO_BOUNDS, maxExecutions: PORTFOLIO_MAX_EXECUTIONS },
  /** The engine that runs the machines (`--engine`). */
  engine: "inline" as EngineName,
  /**
   * How much of its thread's own CPU time (not time waiting for a core) a unit (a check, a machine)
   * may spend without progress before it is stopped (`--watchdog`).
   */
  watchdogMs: DEFAULT_WATCHDOG_MS,
  /**
   * Units at once (`--parallel`): not a number but a rule, session/check-pool defaultWorkers: one per
   * core for the inline engine, as many machines as the cores hold threads for with the threaded one,
   * never more than half the memory holds.
   */
  workers: "defaultWorkers(engine, cpus)",
} as const;
