// Sharding for CI: `--shard i/n` runs the i-th of n deterministic parts of the work, so that n jobs of a
// CI matrix explore the whole space once and `livepatch-check merge` (cli/merge.ts) puts their --json
// outputs together into the verdicts of one unsharded run.
//
// The work is split into units. When there are at least as many cells (protocol, scenario) as shards,
// a unit is a whole cell: a cell's properties share their runs (one seed draws the same tapes for each
// property, and a run's outcome is judged for all), so splitting a cell would repeat those runs. With
// fewer cells than shards (a single check, or `-p NAME` on 2 shards of 8), each cell is split into its
// parts (properties/check.ts CheckParts): the exhaustive phase and each sampling round (one seed of one
// search space). Units are assigned by a deterministic greedy (longest first, each to the least loaded
// shard, ties to the lower shard) over the measured costs in cli/shard-costs.ts.

import type { CheckParts } from "../properties/check.js";
import type { StrategyName } from "../workers/strategies/arbitraries.js";
import { sampleRounds } from "../workers/strategies/portfolio.js";
import { CELL_COSTS } from "./shard-costs.js";

/** The shards a run may be split into: more than a CI matrix has jobs is a typo. */
export const MAX_SHARDS = 256;

/** Shard `index` (1-based, as CI matrices count) of `count`. */
export interface Shard {
  index: number;
  count: number;
}

/** `--shard i/n`: i from 1 to n; anything else is refused, saying what is wrong and what to write. */
export function parseShard(text: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m)
    throw new Error(
      `--shard takes i/n, the i-th of n shards counted from 1 (e.g. --shard 2/4), not '${text}'`,
    );
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_SHARDS)
    throw new Error(`--shard ${text}: the number of shards must be from 1 to ${MAX_SHARDS}, not ${m[2]}`);
  if (!Number.isSafeInteger(index) || index < 1 || index > count)
    throw new Error(
      `--shard ${text}: the shard must be from 1 to ${count} (shards are counted from 1), not ${m[1]}`,
    );
  return { index, count };
}

/** One unit of work: a whole cell (parts undefined) or some parts of it. */
export interface WorkUnit {
  /** protocol/scenario for a whole cell; with #exhaustive or #round-K for a part. */
  id: string;
  protocol: string;
  scenario: string;
  parts?: CheckParts;
  /** Estimated cost (ms of one core at the default budget), from the cost table. */
  cost: number;
}

/** A unit as the plan records it: which shard runs it (1-based). */
export interface PlannedUnit {
  id: string;
  protocol: string;
  scenario: string;
  parts: CheckParts | null;
  shard: number;
}

/** What decides the split besides the cells: the strategy's parts. */
export interface PlanOptions {
  strategy: StrategyName;
  seeds: number;
}

/** A cell's cost and its exhaustive phase's share, from the table; the table's mean for unknown cells. */
function cellCost(protocol: string, scenario: string): { total: number; exhaustive: number } {
  const known = CELL_COSTS[`${protocol}/${scenario}`];
  if (known) return { total: known[0], exhaustive: known[1] };
  const all = Object.values(CELL_COSTS);
  const mean = all.reduce((s, [t]) => s + t, 0) / Math.max(1, all.length);
  return { total: mean, exhaustive: 0 };
}

/** The units of `cells` for `count` shards, in the cells' order (see the header). */
export function workUnits(
  cells: ReadonlyArray<{ protocol: string; scenario: string }>,
  count: number,
  opts: PlanOptions,
): WorkUnit[] {
  const whole = cells.length >= count;
  const rounds = sampleRounds(opts.strategy, opts.seeds);
  const exhaustivePart = opts.strategy === "exhaustive" || opts.strategy === "portfolio";
  const units: WorkUnit[] = [];
  for (const { protocol, scenario } of cells) {
    const cost = cellCost(protocol, scenario);
    const cell = `${protocol}/${scenario}`;
    if (whole) {
      units.push({ id: cell, protocol, scenario, cost: cost.total });
      continue;
    }
    const exhaustive = exhaustivePart ? Math.min(cost.exhaustive, cost.total) : 0;
    if (exhaustivePart)
      units.push({
        id: `${cell}#exhaustive`,
        protocol,
        scenario,
        parts: { exhaustive: true, rounds: [] },
        cost: rounds === 0 ? cost.total : exhaustive,
      });
    for (let k = 0; k < rounds; k++)
      units.push({
        id: `${cell}#round-${k}`,
        protocol,
        scenario,
        parts: { exhaustive: false, rounds: [k] },
        cost: (cost.total - exhaustive) / rounds,
      });
  }
  return units;
}

/**
 * The shard (1-based) of each unit: longest first, each to the shard with the least estimated cost so
 * far, ties to the lower shard; equal costs keep the units' order. Deterministic: every shard of a CI
 * matrix computes the same plan from the same options.
 */
export function assignShards(units: readonly WorkUnit[], count: number): number[] {
  const order = units.map((_, i) => i).sort((a, b) => units[b].cost - units[a].cost || a - b);
  const load = new Array<number>(count).fill(0);
  const shard = new Array<number>(units.length).fill(0);
  for (const i of order) {
    let best = 0;
    for (let s = 1; s < count; s++) if (load[s] < load[best]) best = s;
    load[best] += units[i].cost;
    shard[i] = best + 1;
  }
  return shard;
}

/** The plan of a sharded run: every unit with its shard. */
export function planShards(
  cells: ReadonlyArray<{ protocol: string; scenario: string }>,
  count: number,
  opts: PlanOptions,
): PlannedUnit[] {
  const units = workUnits(cells, count, opts);
  const shards = assignShards(units, count);
  return units.map((u, i) => ({
    id: u.id,
    protocol: u.protocol,
    scenario: u.scenario,
    parts: u.parts ?? null,
    shard: shards[i],
  }));
}

/**
 * The checks one shard runs: its units grouped by cell, so that parts of one cell in the same shard
 * run as one check and share their runs. In the cells' order.
 */
export function shardChecks(
  plan: readonly PlannedUnit[],
  index: number,
): Array<{ protocol: string; scenario: string; parts?: CheckParts; units: string[] }> {
  const out: Array<{ protocol: string; scenario: string; parts?: CheckParts; units: string[] }> = [];
  for (const u of plan) {
    if (u.shard !== index) continue;
    const same = out.find((c) => c.protocol === u.protocol && c.scenario === u.scenario);
    if (!same) {
      out.push({
        protocol: u.protocol,
        scenario: u.scenario,
        parts: u.parts === null ? undefined : { exhaustive: u.parts.exhaustive, rounds: [...u.parts.rounds] },
        units: [u.id],
      });
      continue;
    }
    same.units.push(u.id);
    if (same.parts && u.parts)
      same.parts = {
        exhaustive: same.parts.exhaustive || u.parts.exhaustive,
        rounds: [...same.parts.rounds, ...u.parts.rounds].sort((a, b) => a - b),
      };
  }
  return out;
}
