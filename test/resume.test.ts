// The exhaustive search resumes each execution from a snapshot taken where its branch point was
// created (buffer run state, each CPU's contexts with their routines made again from their inputs,
// the search's own state), instead of re-executing the run from the start. That must change nothing
// but the work done: the same executions in the same order, each with the same choices, event log
// and final state, and the same counts and verdicts.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { H, type MachineMemory } from "../dist/model/memory.js";
import type { MachineSpec } from "../dist/model/types.js";
import { resolveConfig } from "../dist/properties/check.js";
import { exhaustive } from "../dist/properties/search.js";
import { machineFor } from "../dist/workers/setup.js";
import { DEFAULT_REDUCTIONS, NO_REDUCTIONS, type Reductions } from "../dist/workers/strategies/reductions.js";
import type { Bounds } from "../dist/workers/strategies/search-tree.js";
import { boundsArb, buildGenerated, machineArb } from "./helpers/generated.js";

/** A digest of everything a run leaves in the buffer: log, CPU blocks, data, stacks, code, header. */
function digest(mem: MachineMemory): string {
  let h = 0x811c9dc5;
  for (const region of Object.values(mem.snapshot()))
    for (let i = 0; i < region.length; i++) h = Math.imul(h ^ region[i], 0x01000193);
  return (h >>> 0).toString(16);
}

/** Every execution of the search, in order: its choices, status, violations and final buffer. */
function executions(spec: MachineSpec, bounds: Bounds, reductions: Reductions, resume: boolean, max: number) {
  const seen: string[] = [];
  const r = exhaustive(spec, {
    bounds,
    reductions,
    deepening: true,
    stopWhenAllViolated: false,
    maxExecutions: max,
    resume,
    onExecution: (mem, cost, violated) =>
      seen.push(
        `${mem.record.subarray(0, mem.header[H.recordLen]).join(".")} ${JSON.stringify(cost)} ${violated.join(",")} ${digest(mem)}`,
      ),
  });
  const counts = {
    executions: r.executions,
    judged: r.judged,
    pruned: r.pruned,
    states: r.states,
    complete: r.complete,
    coverage: r.coverage,
    findings: [...r.findings.entries()].map(([p, f]) => `${p}=${f.tape.join(".")}`),
    hazards: [...r.hazards.keys()],
  };
  return { seen, counts, resumed: r.resumed };
}

function same(spec: MachineSpec, bounds: Bounds, reductions: Reductions, max: number): number {
  const fromStart = executions(spec, bounds, reductions, false, max);
  const resumed = executions(spec, bounds, reductions, true, max);
  expect(fromStart.resumed).toBe(0);
  expect(resumed.counts).toEqual(fromStart.counts);
  expect(resumed.seen).toEqual(fromStart.seen);
  return resumed.resumed;
}

describe("resuming executions from snapshots", () => {
  const variants: Array<[string, Reductions]> = [
    ["no reduction", NO_REDUCTIONS],
    ["the default reductions", DEFAULT_REDUCTIONS],
    ["the default reductions and DPOR", { ...DEFAULT_REDUCTIONS, dpor: true }],
    ["the default reductions and state caching", { ...DEFAULT_REDUCTIONS, stateCaching: true }],
  ];
  for (const [name, reductions] of variants)
    it(`gives the executions of re-running from the start on generated machines, ${name}`, () => {
      let resumed = 0;
      fc.assert(
        fc.property(machineArb, boundsArb, (d, bounds) => {
          resumed += same(buildGenerated(d), bounds, reductions, 3_000);
        }),
        { numRuns: 25, seed: 4242 },
      );
      // Not vacuous: most executions were resumed.
      expect(resumed).toBeGreaterThan(1_000);
    });

  it("with stale fetch and branch choices on a built-in cell (value choices inside steps)", () => {
    const spec = machineFor(resolveConfig("no-mask", "nmi-path", { fetch: "stale" }));
    const resumed = same(spec, { preemptions: 1, events: 1, branches: 1 }, DEFAULT_REDUCTIONS, 1_500);
    expect(resumed).toBeGreaterThan(1_000);
  });

  it("on a Linux cell whose int3 handler rewrites its frame's return address, with state caching", () => {
    // A routine made again must start from the frame it was first made with, not the one it rewrote.
    const spec = machineFor(resolveConfig("linux-optprobe", "normal", {}));
    const resumed = same(
      spec,
      { preemptions: 1, events: 1, branches: 0 },
      { ...DEFAULT_REDUCTIONS, stateCaching: true },
      3_000,
    );
    expect(resumed).toBeGreaterThan(1_000);
  });

  it("on a broadcast #MC cell with IST frames and state caching", () => {
    const spec = machineFor(resolveConfig("int3-restartable", "mce-path", {}));
    const resumed = same(
      spec,
      { preemptions: 1, events: 2, branches: 0 },
      { ...DEFAULT_REDUCTIONS, stateCaching: true },
      1_500,
    );
    expect(resumed).toBeGreaterThan(1_000);
  });
});
