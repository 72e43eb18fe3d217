// The one end-to-end run of the main job: it exits 0 (every verdict as declared), prints at most 80
// lines (the matrix, a line per counterexample, where the HTML report went), and its verdicts are the
// README's matrix: the table between the README's markers must be what scripts/readme-matrix.ts makes
// of the main job's JSON. The tokens listed in docs/tokens.md are replayed by
// test/readme-tokens.test.ts. In the slow tier: at the default depth (every run with ≤ 1 preemption
// and ≤ 1 event proven) the main job takes minutes of CPU.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { type MainJobJson, matrixOf, readmeMatrix } from "../../dist/scripts/readme-matrix.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

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
      timeout: 2_400_000,
    });
    return run;
  };

  it("exits 0: every verdict is the one its protocol declares", { timeout: 2_500_000 }, () => {
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
    timeout: 2_500_000,
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

  it("gives the README's matrix (npm run docs:matrix rewrites it)", { timeout: 2_500_000 }, () => {
    mainJob();
    const json = JSON.parse(readFileSync(jsonFile, "utf8")) as MainJobJson;
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    expect(matrixOf(readme)).toBe(readmeMatrix(json));
  });
});
