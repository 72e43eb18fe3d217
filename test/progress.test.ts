// The live progress line (cli/output/progress.ts): on a terminal a line per running check appears and is
// cleared at the end; piped, or with --json, nothing of it is printed.
import { describe, expect, it } from "vitest";
import { runCaptured } from "../dist/cli/capture.js";
import { ProgressDisplay, progressLine } from "../dist/cli/output/progress.js";
import { Part, PG, progressBlock } from "../dist/model/progress.js";

// biome-ignore lint/suspicious/noControlCharactersInRegex: looking for ANSI escapes is the point
const ANSI = /\x1b\[/;
const CHECK = ["-p", "no-mask", "-s", "nmi-path", "--runs", "400", "--seeds", "1"];

/** The command with stderr a (fake) terminal. */
function onTerminal(argv: string[]) {
  return runCaptured(argv, { stderrIsTTY: true, stderrColumns: 200 });
}

describe("progress on a terminal", () => {
  it("draws a line per running check with its counts, and clears it at the end", async () => {
    const r = await onTerminal(CHECK);
    expect(r.code).toBe(1); // no-mask violates P1 on nmi-path
    expect(r.stderr).toMatch(
      /\[0\/1\] checks done\n {2}no-mask on nmi-path · [\d,]+ executions?, [\d,]+ runs? .*· [\d,]+\/s/,
    );
    // Redrawn in place: back up over the check's line, erase, draw again.
    expect(r.stderr).toContain("\x1b[1A\r\x1b[J[0/1] checks done\n  no-mask on nmi-path");
    // The last thing written erases it all; the report itself (stdout) has none of it.
    expect(
      r.stderr.endsWith("\x1b[1A\r\x1b[J") || r.stderr.endsWith("\r\x1b[J[1/1] checks done\r\x1b[J"),
    ).toBe(true);
    expect(r.stdout).not.toMatch(ANSI);
    expect(r.stdout).toMatch(/^no-mask on nmi-path: violated: P1/);
  });

  it("prints nothing of it with --json, even on a terminal", async () => {
    const r = await onTerminal([...CHECK, "--json"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout).verdicts[0].cell).toBe("P1");
  });

  it("prints nothing of it when stderr is piped", async () => {
    const r = await runCaptured(CHECK);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("");
  });
});

describe("progress lines", () => {
  it("say the executions, runs, rate and, in the sampling, an upper bound on the time left", () => {
    const block = progressBlock();
    const check = { label: "p on s", block, startedMs: 0 };
    block[PG.part] = Part.Exhaustive;
    block[PG.executions] = 1;
    expect(progressLine(check, 1000)).toBe("p on s · 1 execution, 0 runs · 1/s · 1 s");
    block[PG.part] = Part.Sampling;
    block[PG.executions] = 1999;
    block[PG.runs] = 2000;
    block[PG.planned] = 1000;
    block[PG.sampled] = 500;
    const seen = {};
    // The rate of judged runs is measured over a second of sampling before a time left is given.
    expect(progressLine(check, 2000, seen)).toBe(
      "p on s · 1,999 executions, 2,000 runs (500/1,000 judged) · 2,000/s · 2 s",
    );
    block[PG.sampled] = 700;
    expect(progressLine(check, 4000, seen)).toBe(
      "p on s · 1,999 executions, 2,000 runs (700/1,000 judged) · 1,000/s · ≤ 3 s left · 4 s",
    );
  });

  it("the display redraws over the lines it drew, cuts them to the terminal's width, and erases them", () => {
    let out = "";
    const block = progressBlock();
    const checks = [
      { label: "a on s", block, startedMs: 0 },
      { label: "b on a scenario with a long name", block: progressBlock(), startedMs: 0 },
    ];
    const d = new ProgressDisplay(
      (t) => {
        out += t;
      },
      () => checks,
      () => "[0/2] checks done",
      30,
    );
    d.update(1000);
    expect(out).toBe(
      "\r\x1b[J[0/2] checks done\n  a on s · 0 runs · 0/s · 1 s\n  b on a scenario with a lon…",
    );
    out = "";
    d.update(2000);
    expect(out.startsWith("\x1b[2A\r\x1b[J[0/2] checks done\n")).toBe(true);
    out = "";
    d.clear();
    expect(out).toBe("\x1b[2A\r\x1b[J");
  });
});
