// Runs a list of checks on the checker session: the main job, a single check and a shard's part of
// the plan all come through here (cli/commands/check.ts, cli/commands/shard.ts).
import type { Hardware } from "../model/types.js";
import type { CheckParts, Verdict } from "../properties/check.js";
import { DEFAULTS } from "../session/defaults.js";
import type { CellCheck, CheckerSession } from "../session/session.js";
import type { Reductions } from "../workers/strategies/reductions.js";
import type { Bounds } from "../workers/strategies/search-tree.js";
import type { Io } from "./io.js";
import type { ExploreOptions } from "./options.js";
import { ProgressDisplay } from "./output/progress.js";
import { commandErrors } from "./pool.js";

/**
 * Runs the checks on the session, a unit per cell, as many at once as it has workers. The verdicts come
 * back in the order of `pairs` whatever order they finish in, so the output is a sequential run's.
 */
export async function runChecks(
  pairs: Array<{ protocol: string; scenario: string; parts?: CheckParts }>,
  opts: ExploreOptions,
  hardware: Partial<Hardware>,
  session: CheckerSession,
  io: Io,
  search: {
    bounds: Partial<Bounds>;
    reductions: Partial<Reductions> | undefined;
    examples: Map<string, number[][]>;
  },
): Promise<Verdict[]> {
  // A live line per running check, on a terminal only, and never with --json (cli/output/progress.ts).
  let done = 0;
  const display =
    io.stderrIsTTY && !opts.json && pairs.length > 0
      ? new ProgressDisplay(
          io.stderr,
          () =>
            session
              .runningUnits()
              .filter((u) => u.kind === "check")
              .map((u) => ({ ...u, label: `${u.label.protocol} on ${u.label.scenario}` })),
          () => `[${done}/${pairs.length}] checks done`,
          io.stderrColumns,
        )
      : undefined;
  const show = () => display?.update();
  const one = ({
    protocol,
    scenario,
    parts,
  }: {
    protocol: string;
    scenario: string;
    parts?: CheckParts;
  }): CellCheck => ({
    protocol,
    scenario,
    hardware,
    strategy: opts.strategy,
    runs: opts.runs ?? DEFAULTS.runs,
    seeds: opts.seeds ?? DEFAULTS.seeds,
    examples: opts.examples,
    seed: opts.seed,
    bound: opts.bound,
    exampleTapes: search.examples.get(`${protocol}/${scenario}`),
    bounds: search.bounds,
    maxExecutions: opts.maxExecutions,
    minBound: opts.minBound,
    maxMemoryMb: opts.maxMemory,
    reductions: search.reductions,
    parts,
  });
  display?.start();
  try {
    return await commandErrors(
      session.checks(pairs.map(one), () => {
        done++;
        show();
      }),
    );
  } finally {
    display?.clear();
  }
}
