// The README's verdict matrix is generated (npm run docs:matrix), never copied by hand: the table
// between its markers must be what scripts/readme-matrix.ts makes of the main job's JSON now. This
// runs the main job once (about a minute on 2 quiet cores, several under load).
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  type JsonVerdict,
  type MainJobJson,
  matrixOf,
  readmeMatrix,
  replaceMatrix,
} from "../dist/scripts/readme-matrix.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));

const HOLDS: JsonVerdict = {
  protocol: "p",
  scenario: "s",
  verdict: "holds",
  cell: "holds",
  matchesExpected: true,
  proven: true,
  bounds: { preemptions: 1, events: 1, branches: 0, total: 1, cpus: 4 },
  sampled: { runs: 10, strategies: ["random", "pct"] },
};

describe("readmeMatrix", () => {
  it("writes protocol rows and scenario columns, each cell how its verdict was reached", () => {
    const json: MainJobJson = {
      mode: "matrix",
      verdicts: [
        HOLDS,
        { ...HOLDS, scenario: "t", verdict: "violated", cell: "P1 [P4(nested #MC)]", proven: false },
        { ...HOLDS, protocol: "q", verdict: "refused", cell: "refused", proven: undefined },
        { ...HOLDS, protocol: "q", scenario: "t", proven: false, matchesExpected: false },
      ],
    };
    const table = readmeMatrix(json).split("\n");
    expect(table.slice(0, 4)).toEqual([
      "| protocol | s | t |",
      "|---|---|---|",
      "| p | holds (✓ + random/PCT) | P1 [P4(nested #MC)] |",
      "| q | refused | holds (random/PCT) * |",
    ]);
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

describe("the README's matrix", () => {
  it("is the one the main job gives now (npm run docs:matrix rewrites it)", {
    timeout: 1_200_000,
  }, async () => {
    const { runMainJob } = await import("../dist/scripts/readme-matrix.js");
    const json = runMainJob(ROOT);
    expect(json.verdicts.length).toBe(48);
    // The main job's self-check: every verdict is the one its protocol declares.
    expect(json.verdicts.filter((v) => !v.matchesExpected).map((v) => `${v.protocol}/${v.scenario}`)).toEqual(
      [],
    );
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    expect(matrixOf(readme)).toBe(readmeMatrix(json));
  });
});
