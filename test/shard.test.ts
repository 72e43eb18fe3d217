// Sharding for CI (cli/shard.ts) and merging the shards' outputs (cli/merge.ts): the shards of a run
// together give the unsharded run's verdicts; a missing shard leaves checks incomplete, a duplicate or a
// shard from another model version or other options is refused.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCaptured } from "../dist/cli/capture.js";
import { counterexampleOrder, mergeShards, type ShardOutput } from "../dist/cli/merge.js";
import { assignShards, parseShard, planShards, shardChecks, workUnits } from "../dist/cli/shard.js";
import { CELL_COSTS } from "../dist/cli/shard-costs.js";
import { PROTOCOLS } from "../dist/model/protocols/index.js";
import { SCENARIOS } from "../dist/model/scenarios/index.js";
import { MODEL_VERSION } from "../dist/model/version.js";
import type { PropertyResult } from "../dist/properties/check.js";

const dir = mkdtempSync(join(tmpdir(), "livepatch-check-shard-"));

/** Runs the command and saves its stdout as a shard file. */
async function shardFile(name: string, argv: string[]): Promise<string> {
  const r = await runCaptured([...argv, "--json"]);
  expect(r.stderr).toBe("");
  expect(r.code).toBe(0);
  const file = join(dir, name);
  writeFileSync(file, r.stdout);
  return file;
}

/** The verdicts of a --json matrix or single check, without what depends on time or sharing runs. */
function verdictsOf(stdout: string): unknown[] {
  const json = JSON.parse(stdout) as { verdicts: Array<Record<string, unknown>> };
  return json.verdicts.map(({ protocol, scenario, verdict, cell, matchesExpected, properties }) => ({
    protocol,
    scenario,
    verdict,
    cell,
    matchesExpected,
    properties: (properties as Array<Record<string, unknown>> | undefined)?.map((p) => ({
      id: p.id,
      holds: p.holds,
      token: p.token,
    })),
  }));
}

const CELLS = PROTOCOLS.flatMap((p) => SCENARIOS.map((s) => ({ protocol: p.name, scenario: s.name })));

describe("--shard i/n", () => {
  it("accepts i/n with i from 1 to n, and refuses anything else saying what to write", () => {
    expect(parseShard("2/4")).toEqual({ index: 2, count: 4 });
    expect(() => parseShard("0/4")).toThrow(/must be from 1 to 4 \(shards are counted from 1\), not 0/);
    expect(() => parseShard("5/4")).toThrow(/must be from 1 to 4/);
    expect(() => parseShard("2of4")).toThrow(/--shard takes i\/n/);
    expect(() => parseShard("1/0")).toThrow(/number of shards must be from 1 to 256, not 0/);
  });

  it("the command refuses a bad --shard, and a shard without --json, with exit 2", async () => {
    const bad = await runCaptured(["--shard", "3/2"]);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toMatch(/--shard 3\/2: the shard must be from 1 to 2/);
    const text = await runCaptured(["-p", "xen-4.8", "-s", "normal", "--shard", "1/2"]);
    expect(text.code).toBe(2);
    expect(text.stderr).toMatch(/add --json and save stdout to a file/);
  });

  it("puts every unit of the default matrix in exactly one shard, and each shard's checks cover its units", () => {
    for (const count of [1, 2, 3, 4, 7]) {
      const plan = planShards(CELLS, count, { strategy: "portfolio", seeds: 3 });
      expect(plan.map((u) => u.id)).toEqual(CELLS.map((c) => `${c.protocol}/${c.scenario}`));
      const covered = Array.from({ length: count }, (_, i) => shardChecks(plan, i + 1)).flatMap((checks) =>
        checks.flatMap((c) => c.units),
      );
      expect([...covered].sort()).toEqual(plan.map((u) => u.id).sort());
    }
  });

  it("splits a single check into its exhaustive phase and sampling rounds, each in one shard", () => {
    const cell = [{ protocol: "no-mask", scenario: "nmi-path" }];
    const plan = planShards(cell, 4, { strategy: "portfolio", seeds: 3 });
    expect(plan.map((u) => u.id)).toEqual([
      "no-mask/nmi-path#exhaustive",
      ...[0, 1, 2, 3, 4, 5].map((k) => `no-mask/nmi-path#round-${k}`),
    ]);
    const parts = [1, 2, 3, 4].flatMap((i) => shardChecks(plan, i).map((c) => c.parts));
    expect(parts.filter((p) => p?.exhaustive)).toHaveLength(1);
    expect(parts.flatMap((p) => p?.rounds ?? []).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    // Random search has no exhaustive phase: one unit per seed.
    expect(planShards(cell, 2, { strategy: "random", seeds: 3 }).map((u) => u.id)).toEqual([
      "no-mask/nmi-path#round-0",
      "no-mask/nmi-path#round-1",
      "no-mask/nmi-path#round-2",
    ]);
  });

  it("balances the default matrix by the measured costs: no shard above 1.5 times the mean", () => {
    for (const count of [2, 3, 4, 8]) {
      const units = workUnits(CELLS, count, { strategy: "portfolio", seeds: 3 });
      const shards = assignShards(units, count);
      const load = new Array<number>(count).fill(0);
      units.forEach((u, i) => {
        load[shards[i] - 1] += u.cost;
      });
      const mean = load.reduce((a, b) => a + b, 0) / count;
      expect(Math.max(...load) / mean).toBeLessThanOrEqual(1.5);
    }
    // Every cell of the default matrix has a measured cost: none falls back to the mean.
    expect(CELLS.filter((c) => CELL_COSTS[`${c.protocol}/${c.scenario}`] === undefined)).toEqual([]);
  });
});

describe("merge", () => {
  it("two shards of a reduced matrix merge into the unsharded run's verdicts and exit code", async () => {
    const argv = ["-s", "nmi-path", "--strategy", "random", "--runs", "40", "--seeds", "1"];
    const whole = await runCaptured([...argv, "--json"]);
    expect(whole.code).not.toBe(2);
    const a = await shardFile("matrix-1.json", [...argv, "--shard", "1/2"]);
    const b = await shardFile("matrix-2.json", [...argv, "--shard", "2/2"]);
    const merged = await runCaptured(["merge", b, a, "--json"]);
    expect(merged.stderr).toBe(whole.stderr);
    expect(merged.code).toBe(whole.code);
    expect(verdictsOf(merged.stdout)).toEqual(verdictsOf(whole.stdout));
    // The text report has the same matrix table as the unsharded run.
    const table = (s: string) => s.split("\n\n")[0].split("\n");
    const wholeText = await runCaptured(argv);
    const mergedText = await runCaptured(["merge", a, b]);
    expect(table(mergedText.stdout)).toEqual(table(wholeText.stdout));
    expect(table(mergedText.stdout)).toHaveLength(14); // a header, a rule and the 12 protocols
    expect(mergedText.stdout).toMatch(/merged from 2 shards \(1: [\d.]+ s, 2: [\d.]+ s\)/);
    // merge --html: the page of the merged verdicts, with a section per counterexample of the run.
    const page = join(dir, "merged.html");
    const html = await runCaptured(["merge", a, b, "--html", page]);
    expect(html.code).toBe(whole.code);
    const data = /<script type="application\/json" id="report-data">([^<]*)<\/script>/.exec(
      readFileSync(page, "utf8"),
    );
    if (!data) throw new Error("merge --html wrote no report data");
    const embedded = JSON.parse(data[1]) as {
      matrix?: { rows: Array<{ protocol: string; cells: Array<{ links: unknown[] }> }> };
      counterexamples: unknown[];
    };
    const failing = (
      JSON.parse(whole.stdout) as { verdicts: Array<{ properties?: Array<{ holds: boolean }> }> }
    ).verdicts.flatMap((v) => (v.properties ?? []).filter((p) => !p.holds));
    expect(embedded.counterexamples).toHaveLength(failing.length);
    expect(embedded.matrix?.rows).toHaveLength(12);
    const links = embedded.matrix?.rows.flatMap((r) => r.cells.flatMap((c) => c.links)) ?? [];
    expect(links).toHaveLength(failing.length);
  });

  it("a check split into parts over three shards gives the unsharded verdict and its minimal counterexample", async () => {
    const argv = ["-p", "no-mask", "-s", "nmi-path", "--runs", "50", "--seeds", "1"];
    const whole = await runCaptured([...argv, "--json"]);
    const files = await Promise.all(
      [1, 2, 3].map((i) => shardFile(`single-${i}.json`, [...argv, "--shard", `${i}/3`])),
    );
    const merged = await runCaptured(["merge", ...files, "--json"]);
    expect(merged.code).toBe(1);
    expect(merged.code).toBe(whole.code);
    const got = verdictsOf(merged.stdout) as Array<{ cell: string; properties: Array<{ token?: string }> }>;
    expect(got[0].cell).toBe("P1");
    // The exhaustive phase's minimal counterexample is the one shown, as in the unsharded check.
    expect(got).toEqual(verdictsOf(whole.stdout));
  });

  it("a missing shard leaves its checks incomplete, never holds, with exit 1 naming the shard", async () => {
    const argv = ["-p", "xen-4.8", "--strategy", "random", "--runs", "20", "--seeds", "1"];
    const a = await shardFile("missing-1.json", [...argv, "--shard", "1/2"]);
    const r = await runCaptured(["merge", a, "--json"]);
    expect(r.code).toBe(1);
    const shard = JSON.parse(readFileSync(a, "utf8")) as ShardOutput;
    const absent = shard.plan.filter((u) => u.shard === 2).map((u) => `${u.protocol}/${u.scenario}`);
    expect(absent.length).toBeGreaterThan(0);
    expect(r.stderr).toContain(
      `merge: shard 2/2 is missing, so ${absent.length} check${absent.length === 1 ? " is" : "s are"} incomplete (${absent.join(", ")})`,
    );
    const verdicts = JSON.parse(r.stdout).verdicts as Array<{
      protocol: string;
      scenario: string;
      verdict: string;
    }>;
    for (const v of verdicts)
      expect(v.verdict === "incomplete").toBe(absent.includes(`${v.protocol}/${v.scenario}`));
    // The same with the single check split in parts: the check says incomplete.
    const single = ["-p", "xen-4.8", "-s", "normal", "--runs", "20", "--seeds", "1"];
    const s2 = await shardFile("missing-single-2.json", [...single, "--shard", "2/2"]);
    const one = await runCaptured(["merge", s2]);
    expect(one.code).toBe(1);
    expect(one.stdout).toMatch(/^xen-4\.8 on normal: incomplete: shard 1\/2 missing/);
  });

  it("refuses a duplicate shard, a shard of another model version and one run with other options", async () => {
    const argv = ["-p", "xen-4.8", "-s", "normal", "--strategy", "random", "--runs", "20", "--seeds", "2"];
    const a = await shardFile("refuse-1.json", [...argv, "--shard", "1/2"]);
    const b = await shardFile("refuse-2.json", [...argv, "--shard", "2/2"]);
    const twice = await runCaptured(["merge", a, b, a]);
    expect(twice.code).toBe(2);
    expect(twice.stdout).toBe("");
    expect(twice.stderr).toMatch(/shard 1\/2 is given twice \('.*refuse-1\.json' and '.*refuse-1\.json'\)/);

    const old = join(dir, "refuse-old.json");
    writeFileSync(
      old,
      JSON.stringify({ ...JSON.parse(readFileSync(b, "utf8")), modelVersion: MODEL_VERSION - 1 }),
    );
    const version = await runCaptured(["merge", a, old]);
    expect(version.code).toBe(2);
    expect(version.stderr).toContain(
      `'${old}' comes from model version ${MODEL_VERSION - 1}, and this livepatch-check has model version ${MODEL_VERSION}`,
    );

    const other = await shardFile("refuse-other.json", [...argv.slice(0, -1), "3", "--shard", "2/2"]);
    const options = await runCaptured(["merge", a, other]);
    expect(options.code).toBe(2);
    expect(options.stderr).toMatch(/was run with other options than .* \(seeds: 2 vs 3\)/);

    const notShard = join(dir, "not-a-shard.json");
    writeFileSync(notShard, (await runCaptured([...argv, "--json"])).stdout);
    const plain = await runCaptured(["merge", notShard]);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/is not a shard's output/);
  });

  it("shows the counterexample the check prefers: the protocol's before a hazard, exhaustive, fewest choices, tape order", () => {
    const base: PropertyResult = { property: "P1", holds: false, runs: 1 };
    const v = (hazard?: string) => ({
      property: "P1" as const,
      kind: "torn-fetch",
      cpu: 0,
      step: 1,
      message: "",
      hazard,
    });
    const hazard = {
      ...base,
      how: "exhaustive" as const,
      violation: v("a second machine check"),
      shrunkChoices: 1,
      tape: [1],
    };
    const sampledFew = { ...base, how: "random" as const, violation: v(), shrunkChoices: 1, tape: [0, 2] };
    const sampledLater = { ...base, how: "pct" as const, violation: v(), shrunkChoices: 1, tape: [0, 3] };
    const sampledMany = { ...base, how: "random" as const, violation: v(), shrunkChoices: 2, tape: [1, 1] };
    const exhaustive = {
      ...base,
      how: "exhaustive" as const,
      violation: v(),
      shrunkChoices: 3,
      tape: [5, 5, 5],
    };
    const sorted = [hazard, sampledMany, sampledLater, exhaustive, sampledFew].sort(counterexampleOrder);
    expect(sorted).toEqual([exhaustive, sampledFew, sampledLater, sampledMany, hazard]);
  });

  it("merges a cell's parts: a violation anywhere wins, a holds needs every part", () => {
    const plan = planShards([{ protocol: "p", scenario: "s" }], 2, { strategy: "random", seeds: 2 });
    const config = { protocol: "p", scenario: "s", hardware: {} } as never;
    const result = (shard: number, holds: boolean): ShardOutput => ({
      mode: "shard",
      format: 1,
      modelVersion: MODEL_VERSION,
      shard: { index: shard, count: 2 },
      options: {},
      plan,
      results: shardChecks(plan, shard).map((c) => ({
        units: c.units,
        protocol: "p",
        scenario: "s",
        parts: c.parts ?? null,
        verdict: {
          kind: holds ? "holds" : "violated",
          config,
          runs: 10,
          distinctLogs: 1,
          elapsedMs: 1,
          properties: [
            holds
              ? { property: "P2", holds: true, runs: 10, how: "random" }
              : { property: "P2", holds: false, runs: 4, how: "random", tape: [0, 1], shrunkChoices: 1 },
          ],
        },
      })),
      workers: 1,
      elapsedMs: 1,
    });
    const both = mergeShards([{ shard: result(1, true) }, { shard: result(2, false) }]);
    expect(both.verdicts[0].kind).toBe("violated");
    const holds = mergeShards([{ shard: result(1, true) }, { shard: result(2, true) }]);
    expect(holds.verdicts[0]).toMatchObject({
      kind: "holds",
      runs: 20,
      properties: [{ holds: true, runs: 20 }],
    });
    const missing = mergeShards([{ shard: result(1, true) }]);
    expect(missing.missing).toEqual([2]);
    expect(missing.verdicts[0]).toMatchObject({ kind: "incomplete", properties: [{ undecided: true }] });
  });
});
