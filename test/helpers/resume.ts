// Executions of the exhaustive search resumed from snapshots against the same executions re-run from
// the start (test/resume.test.ts, and the full-size comparison of test/slow/resume.test.ts).
import fc from "fast-check";
import { expect, it } from "vitest";
import { H, type MachineMemory } from "../../dist/model/memory.js";
import type { MachineSpec } from "../../dist/model/types.js";
import { exhaustive } from "../../dist/properties/search.js";
import type { Reductions } from "../../dist/workers/strategies/reductions.js";
import { DEFAULT_REDUCTIONS, NO_REDUCTIONS } from "../../dist/workers/strategies/reductions.js";
import type { Bounds } from "../../dist/workers/strategies/search-tree.js";
import { boundsArb, buildGenerated, machineArb } from "./generated.js";

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

export function same(spec: MachineSpec, bounds: Bounds, reductions: Reductions, max: number): number {
  const fromStart = executions(spec, bounds, reductions, false, max);
  const resumed = executions(spec, bounds, reductions, true, max);
  expect(fromStart.resumed).toBe(0);
  expect(resumed.counts).toEqual(fromStart.counts);
  expect(resumed.seen).toEqual(fromStart.seen);
  return resumed.resumed;
}

/**
 * Resuming gives the executions of re-running from the start on `machines` generated machines, for
 * each set of reductions; most of those executions (at least `minResumed`) were resumed.
 */
export function resumeOnGeneratedMachines(
  machines: number,
  minResumed: number,
  variants = RESUME_VARIANTS,
): void {
  for (const [name, reductions] of variants)
    it(`gives the executions of re-running from the start on ${machines} generated machines, ${name}`, () => {
      let resumed = 0;
      fc.assert(
        fc.property(machineArb, boundsArb, (d, bounds) => {
          resumed += same(buildGenerated(d), bounds, reductions, 3_000);
        }),
        { numRuns: machines, seed: 4242 },
      );
      // Not vacuous: most executions were resumed.
      expect(resumed).toBeGreaterThan(minResumed);
    });
}

export const RESUME_VARIANTS: Array<[string, Reductions]> = [
  ["no reduction", NO_REDUCTIONS],
  ["the default reductions", DEFAULT_REDUCTIONS],
  ["the default reductions and DPOR", { ...DEFAULT_REDUCTIONS, dpor: true }],
  ["the default reductions and state caching", { ...DEFAULT_REDUCTIONS, stateCaching: true }],
];
