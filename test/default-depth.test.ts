// The default check's depth (issue: a two-choice bug must not pass as holds). The portfolio proves
// every run with ≤ 1 preemption AND ≤ 1 event before it samples, so a bug that needs a preemption
// race and an NMI inside it is found by search, minimal, on a protocol the project does not ship;
// `--min-bound K,E` makes a check that cannot finish that proof incomplete (exit 1), and every
// dimension of the bounds is named in the verdict, a dimension met with a bound of 0 included.
import { beforeAll, describe, expect, it } from "vitest";
import { runCaptured } from "../dist/cli/capture.js";
import { registerProtocol } from "../dist/model/protocols/index.js";
import { EVERY_TEXT_POKE_STEP, textPokeProtocol } from "../dist/model/protocols/linux-text-poke.js";
import { check, resolveConfig } from "../dist/properties/check.js";
import { evaluate } from "../dist/properties/invariants.js";
import { exhaustive } from "../dist/properties/search.js";
import { decodeToken } from "../dist/properties/token.js";
import { holdsText } from "../dist/report/matrix.js";
import { runInline } from "../dist/workers/inline.js";
import { machineFor } from "../dist/workers/setup.js";

const run = (...argv: string[]) => runCaptured(argv);

// smp_text_poke_batch_process() without the smp_text_poke_sync_each_cpu() after the first bytes
// (the refcount drain kept): a CPU that fetched the int3 before byte 0 was written takes its #BP after
// the drain and finds no reference to take.
const withoutFinalSync = textPokeProtocol(
  {
    name: "text-poke-without-final-sync",
    summary: "text_poke_bp without the sync after the first bytes",
    expected: { "entry-pad": { violated: ["P4"] } },
  },
  { ...EVERY_TEXT_POKE_STEP, syncAfterFirsts: false },
);

describe("the default check proves every run with one preemption and one event", () => {
  beforeAll(() => registerProtocol(withoutFinalSync));

  it("finds text_poke without its final sync crash on an unclaimed int3, minimal at one preemption and one NMI", async () => {
    const v = await check({ protocol: withoutFinalSync.name, scenario: "entry-pad" });
    expect(v.kind).toBe("violated");
    if (v.kind !== "violated") return;
    const p4 = v.properties.find((p) => p.property === "P4");
    expect(p4?.holds).toBe(false);
    expect(p4?.how).toBe("exhaustive");
    expect(p4?.minimal).toBe(true);
    expect(p4?.cost).toEqual({ preemptions: 1, events: 1, branches: 0, stale: 0 });
    expect(p4?.violation?.kind).toBe("unhandled-int3");
    expect(p4?.violation?.cpu).toBe(1);
    expect(p4?.violation?.message).toMatch(/^CPU 1 hit an int3 at watchdog_touch that no handler claimed/);
    // Every other property is proven within the bounds, and the token replays the crash.
    expect(v.search?.exhaustive?.complete).toBe(true);
    expect(v.properties.filter((p) => p.holds).every((p) => p.how === "exhaustive" && !p.undecided)).toBe(
      true,
    );
    const { config, tape } = decodeToken(p4?.token as string);
    const again = evaluate(machineFor(config), runInline(config, { tape }).mem, "P4");
    expect(again.map((x) => [x.kind, x.cpu, x.step])).toEqual([
      [p4?.violation?.kind, p4?.violation?.cpu, p4?.violation?.step],
    ]);
  });

  it("needs both choices: every run with one choice in all leaves the variant unviolated", async () => {
    const v = await check({
      protocol: withoutFinalSync.name,
      scenario: "entry-pad",
      strategy: "exhaustive",
      bounds: { preemptions: 1, events: 1 },
      total: 1,
      properties: ["P4"],
    });
    expect(v.kind).toBe("holds");
    if (v.kind !== "holds") return;
    expect(v.search?.exhaustive?.complete).toBe(true);
  });

  it("proves the real text_poke_bp at one preemption and one event, and says which bounds", async () => {
    const v = await check({ protocol: "linux-text-poke", scenario: "entry-pad" });
    expect(v.kind).toBe("holds");
    if (v.kind !== "holds") return;
    const ex = v.search?.exhaustive;
    expect(ex?.complete).toBe(true);
    expect(ex?.bounds).toMatchObject({ preemptions: 1, events: 1 });
    expect(holdsText(v)).toMatch(
      /^holds \(exhaustive: all \d+ executions with ≤ 1 preemption, ≤ 1 event \(of 3 NMIs, 0 #MCs\), branch directions: none met, stale values: none \(bytewise fetch\), 4 CPUs; random and PCT: no violation in \d+ runs more; not exhaustive\)$/,
    );
  });
});

describe("stale values are a dimension of their own", () => {
  it("explores stale values by default under stale fetch, and names the points a bound of 0 left out", async () => {
    const base = {
      protocol: "xen-4.8",
      scenario: "nmi-path",
      strategy: "exhaustive" as const,
      hardware: { fetch: "stale" as const },
      bounds: { preemptions: 0, events: 1 },
      properties: ["P3" as const],
    };
    const byDefault = await check(base);
    const ex =
      byDefault.kind === "refused" || byDefault.kind === "error" ? undefined : byDefault.search?.exhaustive;
    expect(ex?.bounds.stale).toBe(1);
    expect(ex?.valuePoints.stale).toBeGreaterThan(0);
    const none = await check({ ...base, bounds: { ...base.bounds, stale: 0 } });
    expect(holdsText(none)).toMatch(
      /stale values: the default only \(\d+ stale-fetch points met; --stale explores the others\)/,
    );
    // The stale values were explored, not only counted: judged runs took one, and a bound of 0 on
    // branch directions does not bound them.
    const spec = machineFor(resolveConfig(base.protocol, base.scenario, base.hardware));
    const staleRuns = (bounds: { branches: number; stale: number }) => {
      let n = 0;
      exhaustive(spec, {
        bounds: { preemptions: 0, events: 1, ...bounds },
        stopWhenAllViolated: false,
        onExecution: (_mem, cost) => {
          if (cost.stale > 0) n++;
        },
      });
      return n;
    };
    expect(staleRuns({ branches: 0, stale: 1 })).toBeGreaterThan(0);
    expect(staleRuns({ branches: 1, stale: 0 })).toBe(0);
  });

  it("costs nothing where no choice of the dimension exists: deepening stops at the level that left nothing out", async () => {
    const base = {
      protocol: "no-mask",
      scenario: "normal",
      strategy: "exhaustive" as const,
      properties: ["P1" as const],
    };
    const withStale = await check({ ...base, bounds: { preemptions: 2, events: 0, stale: 1 } });
    const without = await check({ ...base, bounds: { preemptions: 2, events: 0, stale: 0 } });
    if (withStale.kind !== "holds" || without.kind !== "holds") throw new Error("expected holds");
    expect(withStale.search?.exhaustive?.executions).toBe(without.search?.exhaustive?.executions);
    expect(withStale.search?.exhaustive?.level).toBe(3);
    expect(withStale.search?.exhaustive?.complete).toBe(true);
  });
});

describe("the portfolio's budget", () => {
  it("does not begin a deepening level that its budget cannot be expected to finish", async () => {
    const v = await check({
      protocol: "no-mask",
      scenario: "normal",
      maxExecutions: 1000,
      seeds: 1,
      runs: 10,
    });
    if (v.kind !== "holds") throw new Error(`expected holds, got ${v.kind}`);
    const ex = v.search?.exhaustive;
    // One choice in all takes a few hundred executions; K1 E1 would need 8 times that left, so it is
    // not begun: the budget is not spent on a level cut short.
    expect(ex?.level).toBe(1);
    expect(ex?.complete).toBe(false);
    expect(ex?.executions).toBeLessThan(1000);
    expect((ex?.executions ?? 0) * 9).toBeGreaterThan(1000);
  });
});

describe("--max-memory", () => {
  it("keeps the verdict when the state cache is full, explores more, and says the cache was full", async () => {
    const base = {
      protocol: "no-mask",
      scenario: "nmi-path",
      strategy: "exhaustive" as const,
      bounds: { preemptions: 2, events: 0 },
    };
    const free = await check(base);
    // 64 KiB: a table of 2,048 rows, full at 1,536 of the search's 7,119 states.
    const capped = await check({ ...base, maxMemoryMb: 1 / 16 });
    if (free.kind !== "holds" || capped.kind !== "holds") throw new Error("expected holds both times");
    expect(capped.properties.map((p) => [p.property, p.holds, p.cost])).toEqual(
      free.properties.map((p) => [p.property, p.holds, p.cost]),
    );
    expect(free.search?.exhaustive?.cacheFull).toBe(false);
    expect(capped.search?.exhaustive?.cacheFull).toBe(true);
    expect(capped.search?.exhaustive?.executions).toBeGreaterThan(free.search?.exhaustive?.executions ?? 0);
    expect(holdsText(capped)).toContain(
      "the state cache was full (--max-memory) and later states were explored without being remembered",
    );
  });
});

describe("--min-bound", () => {
  it("fails a check whose proof does not finish within the budget, as incomplete (exit 1)", async () => {
    const r = await run("-p", "no-mask", "-s", "normal", "--min-bound", "1,1", "--max-executions", "50");
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^no-mask on normal: no property violated, but incomplete \(exhaustive: stopped after 50 executions of 50 within ≤ 1 preemption, ≤ 1 event .*; random and PCT: no violation in \d+ runs more; not exhaustive\)/m,
    );
    // Without --min-bound the same budget rests on the runs drawn at random: holds, exit 0.
    const sampled = await run("-p", "no-mask", "-s", "normal", "--max-executions", "50");
    expect(sampled.code).toBe(0);
    expect(sampled.stdout).toMatch(
      /^no-mask on normal: every property holds \(exhaustive: stopped after 50/m,
    );
  });

  it("passes a check whose proof finishes (exit 0)", async () => {
    const r = await run("-p", "no-mask", "-s", "normal", "--min-bound", "1,1");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /every property holds \(exhaustive: all \d+ executions with ≤ 1 preemption, ≤ 1 event/,
    );
  });

  it("refuses a malformed bound, naming the form", async () => {
    const r = await run("-p", "no-mask", "-s", "normal", "--min-bound", "1");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--min-bound takes K,E");
    const random = await run("-p", "no-mask", "-s", "normal", "--strategy", "random", "--min-bound", "1,1");
    expect(random.code).toBe(2);
    expect(random.stderr).toContain(
      "--min-bound applies to '--strategy exhaustive' or '--strategy portfolio'",
    );
  });
});
