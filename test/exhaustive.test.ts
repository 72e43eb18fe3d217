// Bounded exhaustive search through check() and the command: honest verdict words, minimal
// counterexamples that replay, a budget that runs out says incomplete (never holds), bounds out of
// range are refused with exit code 2, and the coverage witness names what was never reached.
import { describe, expect, it } from "vitest";
import { runCaptured } from "../dist/cli/capture.js";
import { check } from "../dist/properties/check.js";
import { SITUATIONS } from "../dist/properties/coverage.js";
import { evaluate } from "../dist/properties/invariants.js";
import { decodeToken } from "../dist/properties/token.js";
import { runInline } from "../dist/workers/inline.js";
import { machineFor } from "../dist/workers/setup.js";

const run = (...argv: string[]) => runCaptured(argv);

describe("check() with the exhaustive strategy", () => {
  it("proves a holds within its bounds, says so, and counts what the runs reached", async () => {
    const v = await check({
      protocol: "no-mask",
      scenario: "normal",
      strategy: "exhaustive",
      bounds: { preemptions: 1, events: 0, branches: 0, stale: 0 },
    });
    expect(v.kind).toBe("holds");
    if (v.kind !== "holds") return;
    const ex = v.search?.exhaustive;
    expect(ex?.complete).toBe(true);
    expect(ex?.bounds).toEqual({ preemptions: 1, events: 0, branches: 0, stale: 0 });
    expect(v.properties.every((p) => p.holds && !p.undecided && p.how === "exhaustive")).toBe(true);
    // No event within the bounds: no NMI can reach a handler, and the witness says so.
    expect(v.search?.coverage[SITUATIONS.findIndex((s) => s.id === "event-in-handler")]).toBe(0);
  });

  it("counts the witness over the runs it counted, those cut at a state explored before among them", async () => {
    const v = await check({
      protocol: "nmi-replay",
      scenario: "nmi-path",
      strategy: "exhaustive",
      bounds: { preemptions: 1, events: 1, branches: 0, stale: 0 },
    });
    expect(v.kind).toBe("holds");
    if (v.kind !== "holds" || !v.search) return;
    const { coverage, coverageRuns } = v.search;
    // The cache cut runs here, and each of them counts: more runs than were judged to their end.
    expect(coverageRuns).toBeGreaterThan(0);
    expect(Math.max(...coverage)).toBeGreaterThan(0);
    for (const n of coverage) expect(n).toBeLessThanOrEqual(coverageRuns);
  });

  it("finds no-mask's torn fetch on nmi-path with one event, minimal, and its token replays it", async () => {
    const v = await check({
      protocol: "no-mask",
      scenario: "nmi-path",
      strategy: "exhaustive",
      bounds: { preemptions: 0, events: 1, branches: 0, stale: 0 },
      properties: ["P1"],
    });
    expect(v.kind).toBe("violated");
    if (v.kind !== "violated") return;
    const p1 = v.properties[0];
    expect(p1.how).toBe("exhaustive");
    expect(p1.minimal).toBe(true);
    expect(p1.cost).toEqual({ preemptions: 0, events: 1, branches: 0, stale: 0 });
    expect(p1.violation?.kind).toBe("torn-fetch");
    const { config, tape } = decodeToken(p1.token as string);
    const replayed = evaluate(machineFor(config), runInline(config, { tape }).mem, "P1")[0];
    expect(replayed).toEqual(p1.violation);
  });

  it("a search stopped by its budget is incomplete, never holds", async () => {
    const v = await check({
      protocol: "no-mask",
      scenario: "normal",
      strategy: "exhaustive",
      bounds: { preemptions: 2, events: 1, branches: 0, stale: 0 },
      maxExecutions: 50,
    });
    expect(v.kind).toBe("incomplete");
    if (v.kind !== "incomplete") return;
    expect(v.search?.exhaustive?.complete).toBe(false);
    expect(v.search?.exhaustive?.executions).toBe(50);
    expect(v.properties.every((p) => p.undecided)).toBe(true);
  });
});

describe("livepatch-check --strategy exhaustive", () => {
  it("prints how a holds was obtained", async () => {
    const r = await run(
      "-p",
      "no-mask",
      "-s",
      "normal",
      "--strategy",
      "exhaustive",
      "--preemptions",
      "1",
      "--events",
      "0",
      "--engine",
      "inline",
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /no-mask on normal: every property holds \(exhaustive: all \d+ executions with ≤ 1 preemption, ≤ 0 events \(of 3 NMIs, 0 #MCs\), branch directions: none met, stale values: none \(bytewise fetch\), 4 CPUs\)/,
    );
    expect(r.stdout).toContain("never reached: an event was delivered inside a handler");
  });

  it("says incomplete when the budget runs out, with exit code 1 in the matrix self-check", async () => {
    const single = await run(
      "-p",
      "no-mask",
      "-s",
      "normal",
      "--strategy",
      "exhaustive",
      "--max-executions",
      "20",
      "--engine",
      "inline",
      "--json",
    );
    const json = JSON.parse(single.stdout);
    expect(json.verdicts[0].verdict).toBe("incomplete");
    expect(json.verdicts[0].complete).toBe(false);
    expect(json.verdicts[0].bounds).toEqual({
      preemptions: 2,
      events: 1,
      branches: 0,
      stale: 1,
      total: 4,
      cpus: 4,
    });
    expect(json.verdicts[0].how).toMatch(/^incomplete \(exhaustive: stopped after 20 executions/);
    const matrix = await run(
      "-p",
      "no-mask",
      "--strategy",
      "exhaustive",
      "--max-executions",
      "20",
      "--engine",
      "inline",
    );
    expect(matrix.code).toBe(1);
    expect(matrix.stderr).toContain("no-mask on normal (got incomplete, expected holds)");
  });

  it.each([
    [["--preemptions", "9"], /--preemptions must be a whole number from 0 to 8/],
    [["--events", "-1"], /--events must be a whole number from 0 to 8/],
    [["--branches", "x"], /--branches must be a whole number from 0 to 8/],
    [["--max-executions", "0"], /--max-executions must be a whole number from 1 to 1000000000/],
    [["--reductions", "sleep-sets,dpr"], /unknown reduction 'dpr'/],
  ])("refuses %j with exit code 2 and nothing on stdout", async (args, message) => {
    const r = await run("-p", "no-mask", "-s", "normal", "--strategy", "exhaustive", ...args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(message);
  });

  it("refuses exhaustive bounds with a strategy that draws tapes", async () => {
    const r = await run("-p", "no-mask", "-s", "normal", "--strategy", "random", "--preemptions", "1");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--preemptions applies to '--strategy exhaustive' or '--strategy portfolio'");
  });

  it("runs a user's --example token first, and refuses one recorded for other hardware", async () => {
    const token = "v2/no-mask/nmi-path/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/_25.7._6.7._23.1";
    const r = await run(
      "-p",
      "no-mask",
      "-s",
      "nmi-path",
      "--strategy",
      "random",
      "--runs",
      "1",
      "--seeds",
      "1",
      "--no-examples",
      "--example",
      token,
      "--engine",
      "inline",
      "--json",
    );
    const p1 = JSON.parse(r.stdout).verdicts[0].properties.find((p: { id: string }) => p.id === "P1");
    expect(p1.holds).toBe(false);
    const other = await run("-p", "no-mask", "-s", "nmi-path", "--cpus", "3", "--example", token);
    expect(other.code).toBe(2);
    expect(other.stderr).toContain("--example: the token was recorded with hardware cpus=4");
    const elsewhere = await run("-p", "no-mask", "-s", "normal", "--example", token);
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toContain("which this command does not check");
  });
});
