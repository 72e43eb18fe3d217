// The `livepatch-check` command, run in-process through main(argv, io) with captured output.
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { main } from "../cli/main.js";
import { PROTOCOLS } from "../model/protocols/index.js";
import { SCENARIOS } from "../model/scenarios/index.js";

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(...argv: string[]): Promise<Outcome> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    stdoutIsTTY: false,
    stderrIsTTY: false,
    env: {},
  });
  return { code, stdout, stderr };
}

const BUILT_IN = PROTOCOLS.map((p) => p.name);
const TOKEN_LINE = /^replay: npx livepatch-check replay (\S+)$/m;
// biome-ignore lint/suspicious/noControlCharactersInRegex: looking for ANSI escapes is the point
const ANSI = /\x1b\[/;

/** A protocol module written for these tests, so that they do not depend on another test's fixtures. */
function moduleFile(name: string, source: string): string {
  const dir = mkdtempSync(join(tmpdir(), "livepatch-check-cli-"));
  const file = join(dir, name);
  writeFileSync(file, source);
  return file;
}

// A protocol that never writes the patch: every finished run violates P6 and nothing else (no #MC, so
// no P3 from Xen's entry code). One declares that truthfully, one declares "holds" on nmi-path.
const LAZY = `
const lazy = (name, nmiPath) => ({
  name,
  summary: "never writes the patch",
  origin: "cli test",
  os: "xen",
  expected: {
    "nmi-path": { violated: nmiPath },
    "mce-path": { violated: ["P6"] },
    normal: { violated: ["P6"] },
    "entry-pad": { violated: ["P6"] },
  },
  *master() {},
});
export const protocols = [lazy("cli-test-lazy-right", ["P6"]), lazy("cli-test-lazy-wrong", [])];
`;

describe("livepatch-check list", () => {
  it("prints every protocol and every scenario with its summary", async () => {
    const r = await run("list");
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    for (const p of PROTOCOLS.filter((x) => BUILT_IN.includes(x.name))) {
      expect(r.stdout).toMatch(
        new RegExp(`^  ${p.name.replace(/[.]/g, "\\.")} +${escapeRegExp(p.summary)}$`, "m"),
      );
    }
    for (const s of SCENARIOS) expect(r.stdout).toContain(`  ${s.name}`);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

describe("livepatch-check --help", () => {
  it("documents the options, the commands, the exit codes and the token format", async () => {
    const r = await run("--help");
    expect(r.code).toBe(0);
    for (const option of [
      "--protocol",
      "--runs",
      "--engine",
      "--strategy",
      "--bound",
      "--fetch",
      "--cpus",
      "--nmis",
      "--mces",
      "--step-bound",
      "--os",
      "--module",
      "--json",
    ])
      expect(r.stdout).toContain(option);
    expect(r.stdout).toMatch(/^ {2}replay \[options\] <token>/m);
    expect(r.stdout).toMatch(/^Exit codes:$/m);
    expect(r.stdout).toMatch(/^ {2}2 {2}nothing was checked/m);
    expect(r.stdout).toMatch(/token protocol\/scenario\/hardware\/tape/);
  });
});

describe("bad input: exit 2, a message on stderr, nothing on stdout", () => {
  it("names an unknown protocol and lists the known ones", async () => {
    const r = await run("--protocol", "no-such-protocol", "--engine", "inline");
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("unknown protocol 'no-such-protocol'");
    for (const name of BUILT_IN) expect(r.stderr).toContain(name);
  });

  it("names an unknown scenario", async () => {
    const r = await run("--scenario", "warp-drive", "--engine", "inline");
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("unknown scenario 'warp-drive'");
    expect(r.stderr).toContain("nmi-path");
  });

  it("rejects a malformed replay token", async () => {
    const r = await run("replay", "xen-4.8/nmi-path");
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/malformed replay token 'xen-4.8\/nmi-path'/);
    const bad = await run("replay", "no-mask/nmi-path/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/1.x");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("'x' is not a tape value");
  });

  it("rejects a token that names an unknown protocol", async () => {
    const r = await run("replay", "nope/nmi-path/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/-");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown protocol 'nope'");
  });

  it("rejects out-of-range numbers, naming the option and the range", async () => {
    for (const [args, text] of [
      [["--cpus", "1"], /--cpus must be a whole number from 2 to 16/],
      [["--cpus", "17"], /--cpus must be a whole number from 2 to 16/],
      [["--runs", "0"], /--runs must be a whole number from 1/],
      [["--step-bound", "5"], /--step-bound must be a whole number from 100/],
      [["--cpus", "four"], /--cpus must be a whole number/],
    ] as const) {
      const r = await run(...args, "--engine", "inline");
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(text);
    }
  });

  it("rejects an unknown choice, an unknown command and a misplaced --bound", async () => {
    const engine = await run("--engine", "warp");
    expect(engine.code).toBe(2);
    expect(engine.stderr).toContain("Allowed choices are inline, threaded");
    const command = await run("chekc");
    expect(command.code).toBe(2);
    expect(command.stderr).toContain("unknown command 'chekc'");
    const bound = await run("--bound", "3", "--engine", "inline");
    expect(bound.code).toBe(2);
    expect(bound.stderr).toContain("--bound applies to '--strategy bounded' or '--strategy pct'");
  });

  it("reports a protocol module that is missing, fails to load, or throws while running", async () => {
    const missing = await run("--module", "/nonexistent/protocols.mjs", "--engine", "inline");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("/nonexistent/protocols.mjs");

    const broken = moduleFile("broken.mjs", 'throw new Error("broken on purpose");\n');
    const load = await run("--module", broken, "--engine", "inline");
    expect(load.code).toBe(2);
    expect(load.stdout).toBe("");
    expect(load.stderr).toContain("failed to load: broken on purpose");

    const throwing = moduleFile(
      "throws.mjs",
      `export default {
        name: "cli-test-throws", summary: "its master throws", origin: "cli test", os: "xen", expected: {},
        *master() { throw new Error("master exploded"); },
      };\n`,
    );
    const runs = await run(
      "--module",
      throwing,
      "-p",
      "cli-test-throws",
      "-s",
      "normal",
      "--engine",
      "inline",
      "--runs",
      "3",
    );
    expect(runs.code).toBe(2);
    expect(runs.stdout).toBe("");
    expect(runs.stderr).toContain("master exploded");
  });
});

describe("a single check (--protocol and --scenario)", () => {
  it("finds and reports no-mask's torn fetch on nmi-path, with a token that replays it", async () => {
    const r = await run(
      "--protocol",
      "no-mask",
      "--scenario",
      "nmi-path",
      "--engine",
      "inline",
      "--runs",
      "300",
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^no-mask on nmi-path: violated: P1 /m);
    const violation = /^✗ P1 atomic-patch \(torn-fetch\) at step \d+: .*$/m.exec(r.stdout);
    expect(violation).not.toBeNull();
    expect(r.stdout).toMatch(/TORN: neither an old nor a new instruction \(P1\)/);
    expect(r.stdout).not.toMatch(ANSI);
    const token = TOKEN_LINE.exec(r.stdout)?.[1] as string;
    expect(token).toMatch(/^no-mask\/nmi-path\/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000\//);

    const again = await run("replay", token);
    expect(again.code).toBe(1);
    expect(again.stdout).toContain((violation as RegExpExecArray)[0]);
    expect(TOKEN_LINE.exec(again.stdout)?.[1]).toBe(token);
    // The report of the replay is the report under the check: same timeline, same disassembly.
    const body = (text: string) => text.slice(text.indexOf("\nTimeline"), text.indexOf("\ntoken:"));
    const checked = r.stdout.slice(r.stdout.indexOf("━━ no-mask on nmi-path: P1"));
    expect(body(again.stdout)).toBe(body(checked));
  });

  it("exits 0 when every property holds, and when the patch is refused", async () => {
    const holds = await run("-p", "no-mask", "-s", "normal", "--engine", "inline", "--runs", "20");
    expect(holds.code).toBe(0);
    expect(holds.stdout).toMatch(/^no-mask on normal: every property holds/m);
    const refused = await run("-p", "blacklist-callgraph", "-s", "nmi-path", "--engine", "inline");
    expect(refused.code).toBe(0);
    expect(refused.stdout).toMatch(/^blacklist-callgraph on nmi-path: refused: /m);
  });

  it("prints JSON and nothing else with --json", async () => {
    const r = await run("-p", "no-mask", "-s", "nmi-path", "--engine", "inline", "--runs", "300", "--json");
    expect(r.code).toBe(1);
    const parsed = JSON.parse(r.stdout) as {
      mode: string;
      ok: boolean;
      verdicts: Array<{
        protocol: string;
        verdict: string;
        cell: string;
        properties: Array<{ id: string; holds: boolean; token?: string; violation?: { kind: string } }>;
      }>;
    };
    expect(parsed.mode).toBe("single");
    expect(parsed.ok).toBe(false);
    expect(parsed.verdicts).toHaveLength(1);
    const v = parsed.verdicts[0];
    expect(v.verdict).toBe("violated");
    expect(v.cell).toBe("P1");
    const p1 = v.properties.find((p) => p.id === "P1");
    expect(p1?.holds).toBe(false);
    expect(p1?.violation?.kind).toBe("torn-fetch");
    expect(p1?.token).toMatch(/^no-mask\/nmi-path\//);
    expect(v.properties.filter((p) => p.holds).map((p) => p.id)).toEqual(["P2", "P3", "P4", "P5", "P6"]);
  });
});

describe("the matrix compares verdicts with the declared ones", () => {
  // One file for both tests: a protocol name may be registered once per process.
  let lazyFile: string | undefined;
  const lazy = () => {
    lazyFile ??= moduleFile("lazy.mjs", LAZY);
    return lazyFile;
  };
  it("exits 0 when every verdict is the declared one", async () => {
    const file = lazy();
    const r = await run(
      "--module",
      file,
      "-p",
      "cli-test-lazy-right",
      "--mces",
      "0",
      "--engine",
      "inline",
      "--runs",
      "5",
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    // The portfolio's exhaustive phase explored every run with at most one choice: each cell is proven.
    expect(r.stdout).toMatch(/^cli-test-lazy-right +P6 ✓ +P6 ✓ +P6 ✓ +P6 ✓$/m);
    expect(r.stdout).toMatch(
      /^✓ proven within bounds: every run with ≤ 1 preemption, ≤ 1 event, ≤ 0 branch choices, ≤ 1 of them in all, 4 CPUs explored/m,
    );
  });

  it("exits 1 and names each verdict that differs", async () => {
    const file = lazy();
    const r = await run(
      "--module",
      file,
      "-p",
      "cli-test-lazy-wrong",
      "--mces",
      "0",
      "--engine",
      "inline",
      "--runs",
      "5",
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^cli-test-lazy-wrong +P6 ✓ \* +P6 ✓ +P6 ✓ +P6 ✓$/m);
    expect(r.stdout).toContain("cli-test-lazy-wrong on nmi-path: got P6, expected holds");
    expect(r.stderr).toContain("1 of 4 verdicts differ");
    expect(r.stderr).toContain("cli-test-lazy-wrong on nmi-path (got P6, expected holds)");
  });
});

// The threaded engine's workers load the compiled files: this needs `npm run build` first.
const built = existsSync(join(import.meta.dirname, "..", "dist", "workers", "cpu-worker.js"));

/** These need dist/ (npm test builds it first): say so rather than skip. */
function needBuild(): void {
  if (!built) throw new Error("dist/ is missing: run `npm run build` (npm test does) before these tests");
}

describe("the threaded engine", () => {
  beforeAll(needBuild);
  it("replays a token on worker threads with the same log as inline", async () => {
    const found = await run("-p", "no-mask", "-s", "nmi-path", "--engine", "inline", "--runs", "300");
    const token = TOKEN_LINE.exec(found.stdout)?.[1] as string;
    expect(token).toBeDefined();
    const r = await run("replay", token, "--engine", "threaded");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^threaded engine: the same log, record for record \(\d+ records\)$/m);
  });
});

describe("the command as a process", () => {
  beforeAll(needBuild);
  it("exits on its own after a threaded check, with exit code 1 and a counterexample", async () => {
    // No timer or worker may keep the process alive once the last run is done (the pool is closed).
    const { spawnSync } = await import("node:child_process");
    const bin = join(import.meta.dirname, "..", "bin", "livepatch-check.js");
    const r = spawnSync(
      process.execPath,
      [
        bin,
        "-p",
        "xen-4.8",
        "-s",
        "nmi-path",
        "--engine",
        "threaded",
        "--runs",
        "50",
        "--seeds",
        "1",
        "--no-color",
      ],
      { encoding: "utf8", timeout: 120_000 },
    );
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/P2 nmi-replayed \(nmi-lost\)/);
    expect(r.stdout).toMatch(/replay: npx livepatch-check replay xen-4\.8\/nmi-path\//);
  });
});
