// check() as a library call: a run that fails with an error ends the check at once, unshrunk; and the
// memory of run outcomes it keeps while exploring is bounded, whatever the number of runs.
import { describe, expect, it } from "vitest";
import { DEFAULT_HARDWARE } from "../dist/model/machine.js";
import { RunStatus } from "../dist/model/memory.js";
import { registerProtocol } from "../dist/model/protocols/index.js";
import { store } from "../dist/model/routine.js";
import type { Protocol } from "../dist/model/types.js";
import { check, OUTCOME_MEMORY } from "../dist/properties/check.js";
import type { Engine } from "../dist/workers/engine.js";
import { runInline } from "../dist/workers/inline.js";

// The master installs an NMI callback for a while; the callback throws. Only runs in which an NMI
// reaches a CPU during that window fail, so the error depends on the interleaving.
const sometimesThrows: Protocol = {
  name: "check-test-sometimes-throws",
  summary: "its NMI callback throws",
  origin: "check test",
  os: "xen",
  expected: {},
  *master(ctx) {
    yield store(ctx.spec.common.nmiCallback, 1);
    for (let i = 0; i < 20; i++) yield store(ctx.spec.common.rendezvousWanted, 0);
    yield store(ctx.spec.common.nmiCallback, 0);
  },
  // biome-ignore lint/correctness/useYield: it throws before its first step, on purpose
  *nmiCallback() {
    throw new Error("deliberate failure in an NMI callback");
  },
};
registerProtocol(sometimesThrows);

/** The inline engine, counting its runs and those that ended in an error. */
function countingEngine() {
  const counts = { runs: 0, errors: 0 };
  const engine: Engine = {
    name: "inline",
    run: async (config, strategy) => {
      const r = runInline(config, strategy);
      counts.runs++;
      if (r.status === RunStatus.Error) counts.errors++;
      return r;
    },
    close: async () => {},
  };
  return { engine, counts };
}

describe("a run that ends in an error", () => {
  it("ends the check with that error after the one run: errors are not shrunk", async () => {
    // Without an NMI the callback never runs: the error belongs to some interleavings only.
    const quiet = runInline(
      { protocol: sometimesThrows.name, scenario: "nmi-path", hardware: { ...DEFAULT_HARDWARE, nmis: 3 } },
      { tape: [] },
    );
    expect(quiet.status).toBe(RunStatus.Finished);
    const { engine, counts } = countingEngine();
    const v = await check({
      protocol: sometimesThrows.name,
      scenario: "nmi-path",
      engine,
      // The sampling loop is what is under test (the portfolio's exhaustive phase runs inline).
      strategy: "random",
      runs: 500,
      seeds: 3,
    });
    expect(v.kind).toBe("error");
    if (v.kind !== "error") return;
    expect(v.message).toMatch(
      /^check-test-sometimes-throws\/nmi-path: CPU \d at step \d+: deliberate failure in an NMI callback/,
    );
    // One run failed and none after it: no shrinking of the failing tape, no further seed.
    expect(counts.errors).toBe(1);
    expect(counts.runs).toBeLessThan(500);
  });
});

describe("the memory of run outcomes", () => {
  /** check() on a cell that holds, with the largest Map of run outcomes it kept (keyed by a run's JSON). */
  async function watched(runs: number, outcomeMemory?: number) {
    let largest = 0;
    const set = Map.prototype.set;
    Map.prototype.set = function (this: Map<unknown, unknown>, key: unknown, value: unknown) {
      // Outcomes are keyed by the generated value: a random tape's (position, value) pairs.
      if (typeof key === "string" && key.startsWith("[")) largest = Math.max(largest, this.size + 1);
      return set.call(this, key, value);
    };
    try {
      const verdict = await check({
        protocol: "no-mask",
        scenario: "normal",
        // The random space alone, so that every outcome is keyed by its tape (the portfolio adds PCT).
        strategy: "random",
        runs,
        seeds: 3,
        examples: false,
        properties: ["P1", "P2"],
        outcomeMemory,
      });
      return { verdict, largest };
    } finally {
      Map.prototype.set = set;
    }
  }

  it("is bounded by default, with room for every tape of the default budget", async () => {
    const { verdict, largest } = await watched(20);
    expect(verdict.kind).toBe("holds");
    expect(largest).toBeGreaterThan(40);
    expect(largest).toBeLessThanOrEqual(OUTCOME_MEMORY);
    expect(OUTCOME_MEMORY).toBeGreaterThanOrEqual(3 * 1000 * 2);
  });

  it("stays within its bound when the runs exceed it, and the verdict is the same", async () => {
    const kept = await watched(150);
    const bounded = await watched(150, 100);
    // 3 seeds x 150 tapes, more than 100: the memory stopped growing at its bound.
    expect(kept.largest).toBeGreaterThan(100);
    expect(bounded.largest).toBe(100);
    // The same verdict; only runs that were not remembered are made again.
    const summary = (v: typeof kept.verdict) =>
      v.kind === "holds" ? v.properties.map((p) => [p.property, p.holds, p.runs]) : v.kind;
    expect(summary(bounded.verdict)).toEqual(summary(kept.verdict));
    expect(summary(bounded.verdict)).toEqual([
      ["P1", true, 450],
      ["P2", true, 450],
    ]);
    if (kept.verdict.kind !== "holds" || bounded.verdict.kind !== "holds") return;
    expect(bounded.verdict.distinctLogs).toBe(kept.verdict.distinctLogs);
    expect(bounded.verdict.runs).toBeGreaterThan(kept.verdict.runs);
  });
});
