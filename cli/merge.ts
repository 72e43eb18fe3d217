// `livepatch-check merge a.json b.json ...`: the --json outputs of the shards of one run (cli/shard.ts)
// put together into the verdicts the unsharded run gives. Shards must come from the same model version
// and the same options; a shard given twice is refused; a missing one leaves its cells incomplete,
// never "holds". When several shards found a counterexample for the same property, the one shown is
// chosen as the check itself chooses, then by a fixed rule: a violation the protocol is answerable for
// before a hazard, an exhaustive (minimal) one before a sampled one, then the fewest choices, then the
// tape's order (value by value, a prefix first).
import { readFileSync } from "node:fs";
import type { RunConfig } from "../model/types.js";
import { MODEL_VERSION } from "../model/version.js";
import type { CheckParts, PropertyResult, SearchSummary, Verdict } from "../properties/check.js";
import { addCoverage, emptyCoverage } from "../properties/coverage.js";
import type { PlannedUnit } from "./shard.js";

/** The layout of a shard's --json output; bumped when it changes, so old files are refused. */
export const SHARD_FORMAT = 1;

/** One unit's result in a shard's output. */
export interface ShardUnitResult {
  /** The plan's units this check covered (several parts of one cell run as one check). */
  units: string[];
  protocol: string;
  scenario: string;
  parts: CheckParts | null;
  verdict: Verdict;
}

/** A shard's --json output (mode "shard"). */
export interface ShardOutput {
  mode: "shard";
  format: number;
  modelVersion: number;
  shard: { index: number; count: number };
  /** The options that decide the verdicts, in a fixed form: every shard of a run must have the same. */
  options: Record<string, unknown>;
  plan: PlannedUnit[];
  results: ShardUnitResult[];
  workers: number;
  elapsedMs: number;
}

/** A merge that cannot be made: the message names the file and what to do. */
export class MergeError extends Error {}

/** Reads and checks the shard files; refuses any that another run, version or format wrote. */
export function readShards(paths: readonly string[]): Array<{ path: string; shard: ShardOutput }> {
  if (paths.length === 0)
    throw new MergeError(
      "merge needs the --json outputs of the shards: livepatch-check merge shard-1.json shard-2.json ...",
    );
  const out: Array<{ path: string; shard: ShardOutput }> = [];
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (e) {
      throw new MergeError(`cannot read '${path}': ${(e as Error).message}`);
    }
    let data: Partial<ShardOutput>;
    try {
      data = JSON.parse(text) as Partial<ShardOutput>;
    } catch {
      throw new MergeError(
        `'${path}' is not JSON: give the files that 'livepatch-check --shard i/n --json' wrote`,
      );
    }
    if (data?.mode !== "shard")
      throw new MergeError(
        `'${path}' is not a shard's output (it has no "mode": "shard"): run each shard with --shard i/n --json and merge those files`,
      );
    if (data.modelVersion !== MODEL_VERSION)
      throw new MergeError(
        `'${path}' comes from model version ${data.modelVersion}, and this livepatch-check has model version ${MODEL_VERSION}: its runs may mean other traces here. Run every shard with the same livepatch-check as the merge`,
      );
    if (data.format !== SHARD_FORMAT)
      throw new MergeError(
        `'${path}' has shard format ${data.format}, and this livepatch-check reads format ${SHARD_FORMAT}: run every shard with the same livepatch-check as the merge`,
      );
    out.push({ path, shard: data as ShardOutput });
  }
  const first = out[0];
  for (const { path, shard } of out.slice(1)) {
    if (shard.shard.count !== first.shard.shard.count)
      throw new MergeError(
        `'${path}' is shard ${shard.shard.index}/${shard.shard.count}, but '${first.path}' is shard ${first.shard.shard.index}/${first.shard.shard.count}: merge the shards of one run, all with the same n`,
      );
    const differs = optionDifference(first.shard.options, shard.options);
    if (differs)
      throw new MergeError(
        `'${path}' was run with other options than '${first.path}' (${differs}): the shards of one run must have the same options`,
      );
    if (JSON.stringify(shard.plan) !== JSON.stringify(first.shard.plan))
      throw new MergeError(
        `'${path}' split the work otherwise than '${first.path}' (other protocols or scenarios): merge the shards of one run`,
      );
  }
  const seen = new Map<number, string>();
  for (const { path, shard } of out) {
    const earlier = seen.get(shard.shard.index);
    if (earlier !== undefined)
      throw new MergeError(
        `shard ${shard.shard.index}/${shard.shard.count} is given twice ('${earlier}' and '${path}'): give each shard once`,
      );
    seen.set(shard.shard.index, path);
  }
  return out;
}

/** The first option whose value differs, as "name: a vs b", or undefined. */
function optionDifference(a: Record<string, unknown>, b: Record<string, unknown>): string | undefined {
  for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = JSON.stringify(a[key] ?? null);
    const y = JSON.stringify(b[key] ?? null);
    if (x !== y) return `${key}: ${x} vs ${y}`;
  }
  return undefined;
}

export interface Merged {
  /** One verdict per cell, in the plan's order. */
  verdicts: Verdict[];
  /** Shards (1-based) whose output was not given. */
  missing: number[];
  /** Cells left incomplete because a shard holding some of their units is missing. */
  incompleteCells: string[];
  count: number;
  /** The shards' own times, by shard index (undefined: missing). */
  shardMs: Array<number | undefined>;
}

/** Puts the shards' results together, cell by cell. */
export function mergeShards(shards: ReadonlyArray<{ shard: ShardOutput }>): Merged {
  const plan = shards[0].shard.plan;
  const count = shards[0].shard.shard.count;
  const given = new Set(shards.map((s) => s.shard.shard.index));
  const missing = Array.from({ length: count }, (_, i) => i + 1).filter((i) => !given.has(i));
  const results = shards.flatMap((s) => s.shard.results);
  const cells: Array<{ protocol: string; scenario: string }> = [];
  for (const u of plan)
    if (!cells.some((c) => c.protocol === u.protocol && c.scenario === u.scenario))
      cells.push({ protocol: u.protocol, scenario: u.scenario });
  const verdicts: Verdict[] = [];
  const incompleteCells: string[] = [];
  for (const { protocol, scenario } of cells) {
    const units = plan.filter((u) => u.protocol === protocol && u.scenario === scenario);
    const parts = results.filter((r) => r.protocol === protocol && r.scenario === scenario);
    const covered = new Set(parts.flatMap((r) => r.units));
    const complete = units.every((u) => covered.has(u.id));
    if (!complete) incompleteCells.push(`${protocol}/${scenario}`);
    verdicts.push(mergeCell(parts, complete, { protocol, scenario }));
  }
  const shardMs = Array.from(
    { length: count },
    (_, i) => shards.find((s) => s.shard.shard.index === i + 1)?.shard.elapsedMs,
  );
  return { verdicts, missing, incompleteCells, count, shardMs };
}

/** The round a part result stands for last (for which sampling space a holds names). */
function lastRound(r: ShardUnitResult): number {
  return r.parts === null ? Number.POSITIVE_INFINITY : Math.max(-1, ...r.parts.rounds);
}

/**
 * One cell's verdict from its parts' verdicts. With a part missing, nothing the missing part might
 * have found is known: the cell is incomplete, whatever the others found.
 */
export function mergeCell(
  parts: readonly ShardUnitResult[],
  complete: boolean,
  cell: { protocol: string; scenario: string },
): Verdict {
  const verdicts = parts.map((p) => p.verdict);
  const refused = verdicts.find((v) => v.kind === "refused");
  if (refused) return refused;
  const error = verdicts.find((v) => v.kind === "error");
  if (error) return error;
  const explored = parts.filter(
    (p): p is ShardUnitResult & { verdict: Extract<Verdict, { properties: PropertyResult[] }> } =>
      "properties" in p.verdict,
  );
  if (explored.length === 0 || !complete) return incompleteCell(explored, cell);
  const ids = explored[0].verdict.properties.map((p) => p.property);
  const properties = ids.map((id) => {
    const found = explored
      .map((p) => ({ part: p, result: p.verdict.properties.find((r) => r.property === id) }))
      .filter(
        (x): x is { part: (typeof explored)[number]; result: PropertyResult } => x.result !== undefined,
      );
    const violations = found.filter((x) => !x.result.holds).map((x) => x.result);
    if (violations.length > 0) return [...violations].sort(counterexampleOrder)[0];
    const runs = found.reduce((n, x) => n + x.result.runs, 0);
    const undecided = found.every((x) => x.result.undecided);
    const proof = found.find((x) => x.result.how === "exhaustive" && !x.result.undecided);
    const sampled = found
      .filter((x) => x.result.how !== undefined && x.result.how !== "exhaustive")
      .sort((a, b) => lastRound(b.part) - lastRound(a.part))[0];
    const how = proof ? "exhaustive" : (sampled?.result.how ?? found[0]?.result.how);
    const merged: PropertyResult = { property: id, holds: true, runs };
    if (undecided) merged.undecided = true;
    if (how !== undefined) merged.how = how;
    return merged;
  });
  const violated = properties.some((p) => !p.holds);
  const incomplete = !violated && properties.some((p) => p.undecided);
  return {
    kind: violated ? "violated" : incomplete ? "incomplete" : "holds",
    config: explored[0].verdict.config,
    properties,
    runs: explored.reduce((n, p) => n + p.verdict.runs, 0),
    // Summed over parts: parts in different shards do not share runs, so this is an upper bound.
    distinctLogs: explored.reduce((n, p) => n + p.verdict.distinctLogs, 0),
    elapsedMs: explored.reduce((n, p) => n + p.verdict.elapsedMs, 0),
    search: mergeSearch(explored.map((p) => p.verdict.search)),
  };
}

/** A cell some of whose units are missing: every property undecided, so that it never says holds. */
function incompleteCell(
  explored: ReadonlyArray<{ verdict: Extract<Verdict, { properties: PropertyResult[] }> }>,
  cell: { protocol: string; scenario: string },
): Verdict {
  const known = explored[0]?.verdict;
  const config: RunConfig = known?.config ?? {
    protocol: cell.protocol,
    scenario: cell.scenario,
    hardware: {} as RunConfig["hardware"],
  };
  return {
    kind: "incomplete",
    config,
    properties: (known?.properties ?? []).map((p) => ({
      property: p.property,
      holds: true,
      runs: 0,
      undecided: true,
    })),
    runs: explored.reduce((n, p) => n + p.verdict.runs, 0),
    distinctLogs: 0,
    elapsedMs: explored.reduce((n, p) => n + p.verdict.elapsedMs, 0),
  };
}

/**
 * Which counterexample of a property is shown: one the protocol is answerable for before a hazard
 * (as the check prefers), an exhaustive one (minimal) before a sampled one, then the fewest choices,
 * then the tape's order.
 */
export function counterexampleOrder(a: PropertyResult, b: PropertyResult): number {
  const hazard = (p: PropertyResult) => (p.violation?.hazard ? 1 : 0);
  const exhaustive = (p: PropertyResult) => (p.how === "exhaustive" ? 0 : 1);
  const choices = (p: PropertyResult) => p.shrunkChoices ?? (p.tape ?? []).filter((x) => x !== 0).length;
  return (
    hazard(a) - hazard(b) ||
    exhaustive(a) - exhaustive(b) ||
    choices(a) - choices(b) ||
    tapeOrder(a.tape ?? [], b.tape ?? [])
  );
}

/** Tapes compared value by value; a prefix comes first. */
export function tapeOrder(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** The search summaries of a cell's parts as one: the exhaustive phase's, and the sampling summed. */
function mergeSearch(parts: ReadonlyArray<SearchSummary | undefined>): SearchSummary | undefined {
  const present = parts.filter((s): s is SearchSummary => s !== undefined);
  if (present.length === 0) return undefined;
  const coverage = emptyCoverage();
  for (const s of present) addCoverage(coverage, s.coverage);
  const sampledParts = present.filter((s) => s.sampled);
  const merged: SearchSummary = {
    strategy: present[0].strategy,
    coverage,
    coverageRuns: present.reduce((n, s) => n + s.coverageRuns, 0),
  };
  const exhaustive = present.find((s) => s.exhaustive)?.exhaustive;
  if (exhaustive) merged.exhaustive = exhaustive;
  if (sampledParts.length > 0)
    merged.sampled = {
      runs: sampledParts.reduce((n, s) => n + (s.sampled?.runs ?? 0), 0),
      strategies: sampledParts[0].sampled?.strategies ?? [],
    };
  return merged;
}
