// The README's verdict matrix is generated from the main job's JSON (npm run docs:matrix), never
// copied by hand: these are the generator's pure parts (scripts/readme-matrix.ts). The end-to-end run
// of the main job, whose verdicts must be the README's, is in the slow tier
// (test/slow/main-job.test.ts): at the default depth it takes minutes of CPU.
import { describe, expect, it } from "vitest";
import {
  type JsonVerdict,
  type MainJobJson,
  matrixOf,
  readmeMatrix,
  replaceMatrix,
} from "../dist/scripts/readme-matrix.js";

const HOLDS: JsonVerdict = {
  protocol: "p",
  scenario: "s",
  verdict: "holds",
  cell: "holds",
  matchesExpected: true,
  proven: true,
  bounds: { preemptions: 1, events: 1, branches: 0, stale: 1, total: 3, cpus: 4 },
  hardware: { fetch: "bytewise", nmis: 3, mces: 0 },
  exhaustive: { executions: 100, completeUpToChoices: 3 },
  sampled: { runs: 10, strategies: ["random", "pct"] },
};

describe("readmeMatrix", () => {
  it("writes protocol rows and scenario columns, each cell how its verdict was reached", () => {
    const json: MainJobJson = {
      mode: "matrix",
      verdicts: [
        HOLDS,
        {
          ...HOLDS,
          scenario: "t",
          verdict: "violated",
          cell: "P1 [P4(nested #MC)]",
          proven: false,
          exhaustive: null,
        },
        { ...HOLDS, protocol: "q", verdict: "refused", cell: "refused", proven: undefined },
        {
          ...HOLDS,
          protocol: "q",
          scenario: "t",
          proven: false,
          matchesExpected: false,
          exhaustive: { executions: 12_000, maxExecutions: 80_000, completeUpToChoices: 1 },
        },
        {
          ...HOLDS,
          protocol: "r",
          scenario: "t",
          proven: false,
          exhaustive: { executions: 3, completeUpToChoices: 0 },
        },
      ],
    };
    const table = readmeMatrix(json).split("\n");
    expect(table.slice(0, 5)).toEqual([
      "| protocol | s | t |",
      "|---|---|---|",
      "| p | holds (✓ + random/PCT) | P1 [P4(nested #MC)] |",
      "| q | refused | holds (✓≤1 + random/PCT) * |",
      "| r |  | holds (random/PCT) |",
    ]);
    expect(table.join("\n")).toContain(
      "✓: proven by exhaustive search for every run with at most 1 preemption, 1 event, 0 branch directions other than the default and no stale value (bytewise fetch), 4 CPUs",
    );
    expect(table.join("\n")).toContain(
      "✓≤L: proven only for every run with at most L choices in all; the next level did not fit the budget of 80,000 executions",
    );
    expect(table.join("\n")).toContain("*: differs from the verdict its protocol declares (q on t)");
  });

  it("replaces only what lies between the markers", () => {
    const readme = "a\n<!-- matrix:start -->\nold\n<!-- matrix:end -->\nb\n";
    const after = replaceMatrix(readme, "| new |\n");
    expect(after).toBe("a\n<!-- matrix:start -->\n| new |\n<!-- matrix:end -->\nb\n");
    expect(matrixOf(after)).toBe("| new |\n");
    expect(() => replaceMatrix("no markers", "x")).toThrow(/markers/);
  });
});
