// The fast tier's one end-to-end run of the main job: it exits 0 (every verdict as declared), prints at
// most 80 lines (the matrix, a line per counterexample, where the HTML report went), and its verdicts
// are the README's matrix, which is generated (npm run docs:matrix), never copied by hand: the table
// between the README's markers must be what scripts/readme-matrix.ts makes of the main job's JSON.
// The tokens listed in docs/tokens.md are replayed by test/readme-tokens.test.ts.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
        { ...HOLDS, scenario: "t", verdict: "violated", cell: "P1 [P4(nested #MC)]", proven: false },
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

describe("the main job, run once as a user runs it (npx livepatch-check, default options)", () => {
  // One run of the whole matrix at the default budget, in a folder of its own (the HTML report is
  // written there), with the verdicts also written as JSON: about a minute on 2 quiet cores.
  const cwd = mkdtempSync(join(tmpdir(), "livepatch-check-main-job-"));
  const jsonFile = join(cwd, "verdicts.json");
  let run: { status: number | null; stdout: string; stderr: string } | undefined;
  const mainJob = () => {
    run ??= spawnSync(process.execPath, [join(ROOT, "bin", "livepatch-check.js"), "--json-file", jsonFile], {
      cwd,
      encoding: "utf8",
      env: { ...process.env, NO_COLOR: "1" },
      timeout: 1_100_000,
    });
    return run;
  };

  it("exits 0: every verdict is the one its protocol declares", { timeout: 1_200_000 }, () => {
    const r = mainJob();
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const json = JSON.parse(readFileSync(jsonFile, "utf8")) as MainJobJson;
    expect(json.verdicts.length).toBe(48);
    expect(json.verdicts.filter((v) => !v.matchesExpected).map((v) => `${v.protocol}/${v.scenario}`)).toEqual(
      [],
    );
  });

  it("prints at most 80 lines: the matrix, a line per counterexample with its token, where the report went", {
    timeout: 1_200_000,
  }, () => {
    const r = mainJob();
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines.length).toBeLessThanOrEqual(80);
    expect(r.stdout).not.toContain("━━ ");
    const count = Number(/^Counterexamples \((\d+)\):$/m.exec(r.stdout)?.[1]);
    const json = JSON.parse(readFileSync(jsonFile, "utf8")) as {
      verdicts: Array<{ properties?: Array<{ holds: boolean; token?: string }> }>;
    };
    const tokens = json.verdicts
      .flatMap((v) => (v.properties ?? []).filter((p) => !p.holds))
      .map((p) => p.token);
    expect(count).toBe(tokens.length);
    const listed = lines.filter((l) => / — replay v\d+\/\S+$/.test(l)).map((l) => l.split(" — replay ")[1]);
    expect(listed.sort()).toEqual([...tokens].sort());
    const report = join(cwd, "livepatch-check-report.html");
    expect(r.stdout).toContain(`${report}\n`);
    expect(existsSync(report)).toBe(true);
  });

  it("gives the README's matrix (npm run docs:matrix rewrites it)", { timeout: 1_200_000 }, () => {
    mainJob();
    const json = JSON.parse(readFileSync(jsonFile, "utf8")) as MainJobJson;
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    expect(matrixOf(readme)).toBe(readmeMatrix(json));
  });
});
