// The `livepatch-check` command, run in-process through main(argv, io) with captured output.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { type CapturedRun, runCaptured } from "../dist/cli/capture.js";
import { PROTOCOLS } from "../dist/model/protocols/index.js";
import { SCENARIOS } from "../dist/model/scenarios/index.js";

type Outcome = CapturedRun;

const run = (...argv: string[]): Promise<Outcome> => runCaptured(argv);

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
    expect(r.stdout).toMatch(/token vN\/protocol\/scenario\/hardware\/tape/);
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
    const bad = await run(
      "replay",
      "v2/no-mask/nmi-path/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/1.x",
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("'x' is not a tape value");
  });

  it("rejects a 9 KB token of long zero runs at once, and a token from an older model", async () => {
    const zeros = Array.from({ length: 1000 }, () => "_1000000").join(".");
    const huge = await run(
      "replay",
      `v2/no-mask/nmi-path/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/${zeros}`,
    );
    expect(huge.code).toBe(2);
    expect(huge.stdout).toBe("");
    expect(huge.stderr).toContain("more than a run with step bound 20000 can consume");
    const old = await run("replay", "no-mask/nmi-path/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/_25.7");
    expect(old.code).toBe(2);
    expect(old.stderr).toContain("has no model version");
  });

  it("rejects a token that names an unknown protocol", async () => {
    const r = await run("replay", "v2/nope/nmi-path/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/-");
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

  it("puts commander's suggestion in the same sentence as the error", async () => {
    const r = await run("--engin", "inline");
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      "livepatch-check: unknown option '--engin' (did you mean --engine?). Run 'livepatch-check --help' for the options.\n",
    );
  });

  it("rejects extra arguments to list and replay", async () => {
    const list = await run("list", "extra");
    expect(list.code).toBe(2);
    expect(list.stdout).toBe("");
    expect(list.stderr).toContain("'list' takes no arguments, but was given 'extra'");
    const token = "v2/no-mask/nmi-path/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/-";
    const replay = await run("replay", token, "again");
    expect(replay.code).toBe(2);
    expect(replay.stdout).toBe("");
    expect(replay.stderr).toContain("'replay' takes one token, but was given 2 arguments");
  });

  it("applies options given before a command, and rejects those that do not apply to it", async () => {
    const broken = moduleFile("broken-before.mjs", 'throw new Error("broken before list");\n');
    const list = await run("--module", broken, "list");
    expect(list.code).toBe(2);
    expect(list.stderr).toContain("failed to load: broken before list");
    const good = moduleFile(
      "good-before.mjs",
      `export default {
        name: "cli-test-before", summary: "never writes the patch", origin: "cli test", os: "xen",
        expected: {}, *master() {},
      };\n`,
    );
    const listed = await run("--module", good, "list");
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^ {2}cli-test-before +never writes the patch$/m);
    const replay = await run(
      "--module",
      good,
      "replay",
      "v2/cli-test-before/normal/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/-",
    );
    expect(replay.stderr).toBe("");
    expect(replay.code).toBe(1);
    expect(replay.stdout).toMatch(/^✗ P6 patched \(not-patched\)/m);
    const stray = await run("--runs", "5", "list");
    expect(stray.code).toBe(2);
    expect(stray.stderr).toContain("--runs does not apply to 'list'");
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
    expect(token).toMatch(/^v2\/no-mask\/nmi-path\/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000\//);

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
    expect(p1?.token).toMatch(/^v2\/no-mask\/nmi-path\//);
    expect(v.properties.filter((p) => p.holds).map((p) => p.id)).toEqual(["P2", "P3", "P4", "P5", "P6"]);
  });

  it("writes the same JSON to --json-file while printing its report, and exits 2 when it cannot", async () => {
    const args = ["-p", "xen-4.8", "-s", "nmi-path", "--engine", "inline", "--runs", "50", "--seeds", "1"];
    const dir = mkdtempSync(join(tmpdir(), "livepatch-check-json-file-"));
    const file = join(dir, "verdicts.json");
    const both = await run(...args, "--json-file", file);
    const json = await run(...args, "--json");
    expect(both.code).toBe(1);
    expect(both.stdout).toContain("P2 nmi-replayed");
    // The verdicts without what depends on time: cells, and each property's result and token.
    const stable = (text: string) =>
      (
        JSON.parse(text) as {
          verdicts: Array<{
            cell: string;
            properties: Array<{ id: string; holds: boolean; token?: string }>;
          }>;
        }
      ).verdicts.map((v) => [v.cell, v.properties.map((p) => [p.id, p.holds, p.token])]);
    expect(stable(readFileSync(file, "utf8"))).toEqual(stable(json.stdout));
    const bad = await run(...args, "--json-file", join(dir, "missing", "verdicts.json"));
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toMatch(
      /--json-file: cannot write .*missing\/verdicts\.json.*Give a path in a folder that exists/,
    );
    const shard = await run(...args, "--shard", "1/2", "--json", "--json-file", file);
    expect(shard.code).toBe(2);
    expect(shard.stderr).toContain("--json-file does not apply to a shard");
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
    // The portfolio's exhaustive phase explored every run with ≤ 1 preemption and ≤ 1 event: each cell is proven.
    expect(r.stdout).toMatch(/^cli-test-lazy-right +P6 ✓ +P6 ✓ +P6 ✓ +P6 ✓$/m);
    expect(r.stdout).toMatch(
      /^✓ proven within bounds: every run with ≤ 1 preemption, ≤ 1 event \(of \d+ NMIs, 0 #MCs\), branch directions: none met, stale values: none \(bytewise fetch\), 4 CPUs explored/m,
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
    expect(r.stdout).toMatch(/^confirmed on 4 threads: the same log, record for record \(\d+ records\)$/m);
  });
});

describe("no protocol code can hang the command", () => {
  beforeAll(needBuild);
  // A protocol whose routine loops without yielding: JavaScript cannot interrupt it, so it must run
  // off the main thread, and the watchdog must stop it and say where it was.
  const protocolWith = (name: string, fields: string) =>
    moduleFile(
      `${name}.mjs`,
      `const store = (word, value) => ({ k: "store", word, value });
export default {
  name: "${name}", summary: "never yields", origin: "cli test", os: "xen", expected: {},
  *master(ctx) { yield store(ctx.spec.common.patchDone, 1); },
  ${fields}
};\n`,
    );
  const spinningMaster = () =>
    protocolWith(
      "cli-test-spins",
      "*master(ctx) { yield store(ctx.spec.common.patchDone, 0); for (;;) {} },",
    );

  it.each(["inline", "threaded"])(
    "a master that loops without yielding ends with exit 2 naming the CPU, the routine and the step (%s engine)",
    async (engine) => {
      const r = await run(
        "--module",
        spinningMaster(),
        "-p",
        "cli-test-spins",
        "-s",
        "normal",
        "--engine",
        engine,
        "--watchdog",
        "2",
      );
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      // The check's first run (the round-robin one that sizes its tapes) already loops.
      expect(r.stderr).toMatch(
        /the watchdog stopped the check: CPU 0 made no progress in \d+\.\d s of its own CPU time for cli-test-spins on normal, at step \d+ in routine 'master' of protocol 'cli-test-spins'.*Nothing was judged: fix the protocol module/,
      );
    },
  );

  it.each(["inline", "threaded"])(
    "a loop in some interleavings only (an NMI callback) is stopped at its first run, not shrunk (%s engine)",
    async (engine) => {
      const file = protocolWith(
        `cli-test-spins-on-nmi-${engine}`,
        `*master(ctx) {
    yield store(ctx.spec.common.nmiCallback, 1);
    for (let i = 0; i < 20; i++) yield store(ctx.spec.common.rendezvousWanted, 0);
    yield store(ctx.spec.common.nmiCallback, 0);
    yield store(ctx.spec.common.patchDone, 1);
  },
  *nmiCallback() { for (;;) {} },`,
      );
      const name = `cli-test-spins-on-nmi-${engine}`;
      const r = await run(
        "--module",
        file,
        "-p",
        name,
        "-s",
        "nmi-path",
        "--engine",
        engine,
        // Random tapes, so that the threaded engine runs the machine (the portfolio's exhaustive
        // phase runs in the check's own worker thread whatever the engine).
        "--strategy",
        "random",
        "--watchdog",
        "2",
      );
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      // Inline, the check pool's watchdog stops the worker; threaded, the engine's own stops the run.
      const where =
        engine === "inline"
          ? `CPU \\d made no progress in \\d+\\.\\d s of its own CPU time for ${name} on nmi-path, at step \\d+ in`
          : `CPU \\d held the token at step \\d+ and made no progress in \\d+ ms of its own CPU time in`;
      expect(r.stderr).toMatch(
        new RegExp(`${where} routine 'nmiCallback' of protocol '${name}' in the 'nmi' handler`),
      );
    },
  );

  it("a module whose top-level code never ends, and a setup that never returns, are stopped too", async () => {
    const forever = moduleFile("forever.mjs", "for (;;) {}\n");
    const load = await run("--module", forever, "list", "--watchdog", "1");
    expect(load.code).toBe(2);
    expect(load.stderr).toContain(`loading the protocol module '${forever}' made no progress in`);
    expect(load.stderr).toContain("its top-level code never ends");
    const setup = protocolWith("cli-test-setup-spins", "setup() { for (;;) {} },");
    const build = await run(
      "--module",
      setup,
      "-p",
      "cli-test-setup-spins",
      "-s",
      "normal",
      "--watchdog",
      "1",
    );
    expect(build.code).toBe(2);
    expect(build.stderr).toContain(
      "building the machine for cli-test-setup-spins on normal made no progress in",
    );
    expect(build.stderr).toContain("the protocol's setup never returns");
  });
});

describe("every core for the search", () => {
  beforeAll(needBuild);
  it("prints the same matrix and counterexamples with 1 worker as with 2", async () => {
    const args = [
      "-s",
      "nmi-path",
      "--runs",
      "30",
      "--seeds",
      "1",
      "--no-examples",
      "--max-executions",
      "3000",
    ];
    const one = await run(...args, "--parallel", "1");
    const two = await run(...args, "--parallel", "2");
    expect(one.code).toBe(two.code);
    // The time and the folder of the report differ between the runs; nothing else may.
    const stable = (text: string) => text.replace(/^\d+ checks, .*$/m, "").replace(/^Report .*$/m, "");
    expect(stable(two.stdout)).toBe(stable(one.stdout));
    // One check per protocol on nmi-path.
    const checks = PROTOCOLS.length;
    expect(one.stdout).toMatch(
      new RegExp(
        `^${checks} checks, \\d+ runs, [\\d.]+ s, inline engine on 1 worker; \\d+ counterexamples confirmed on 4 threads`,
        "m",
      ),
    );
    expect(two.stdout).toMatch(
      new RegExp(`^${checks} checks, \\d+ runs, [\\d.]+ s, inline engine on 2 workers`, "m"),
    );
  });

  it("confirms every counterexample on the threaded engine and says so", async () => {
    const r = await run("-p", "xen-4.8", "-s", "nmi-path", "--runs", "50", "--seeds", "1", "--json");
    expect(r.code).toBe(1);
    const parsed = JSON.parse(r.stdout) as {
      confirmation: { counterexamples: number; threads: number };
      verdicts: Array<{ properties: Array<{ id: string; holds: boolean; confirmedOnThreads?: number }> }>;
    };
    expect(parsed.confirmation.counterexamples).toBe(1);
    expect(parsed.confirmation.threads).toBe(4);
    expect(parsed.verdicts[0].properties.find((p) => p.id === "P2")?.confirmedOnThreads).toBe(4);
    const text = await run("-p", "xen-4.8", "-s", "nmi-path", "--runs", "50", "--seeds", "1");
    expect(text.stdout).toMatch(/^confirmed on 4 threads: the same log, record for record \(\d+ records\)$/m);
  });

  it("refuses more workers than the host has cores for", async () => {
    const r = await run("--parallel", "256");
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /--parallel must be a whole number from 1 to \d+ here, not 256: this host has \d+ cores?/,
    );
  });
});

describe("the command as a process", () => {
  beforeAll(needBuild);
  it("stops quietly with exit 0 when the reader of its output goes away (| true, | head -3)", async () => {
    const { spawnSync } = await import("node:child_process");
    const bin = join(import.meta.dirname, "..", "bin", "livepatch-check.js");
    // In a folder of its own: the matrix writes its HTML report to the working directory.
    const cwd = mkdtempSync(join(tmpdir(), "livepatch-check-cli-"));
    const piped = (args: string, reader: string) =>
      spawnSync(
        "bash",
        ["-c", `"${process.execPath}" "${bin}" ${args} | ${reader}; echo "exit \${PIPESTATUS[0]}" >&2`],
        {
          encoding: "utf8",
          timeout: 240_000,
          cwd,
        },
      );
    const list = piped("list", "true");
    expect(list.stderr).toBe("exit 0\n");
    // A single check that finds a violation (exit 1 when its report is read).
    const check = piped("-p no-mask -s nmi-path --engine inline --runs 100 --seeds 1", "true");
    expect(check.stderr).toBe("exit 0\n");
    // The mce-path column with --details prints about 200 KB, more than the pipe holds once head has gone:
    // its verdicts differ from the declared ones at this budget (exit 1), which stderr still says.
    const matrix = piped(
      "-s mce-path --engine inline --strategy random --runs 10 --seeds 1 --no-examples --details --no-html",
      "head -3",
    );
    expect(matrix.stdout.split("\n")).toHaveLength(4);
    const cells = PROTOCOLS.length;
    expect(matrix.stderr).toMatch(
      new RegExp(`^livepatch-check: \\d+ of ${cells} verdicts differ .*\\nexit 0\\n$`),
    );
  });

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
    expect(r.stdout).toMatch(/replay: npx livepatch-check replay v2\/xen-4\.8\/nmi-path\//);
  });
});

describe("the main job's terminal output", () => {
  beforeAll(needBuild);
  it("prints every timeline with --details, and writes no report with --no-html or --json", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "livepatch-check-main-"));
    const args = ["-s", "nmi-path", "--strategy", "random", "--runs", "30", "--seeds", "1"];
    const short = await runCaptured(args, { cwd });
    const details = await runCaptured([...args, "--details", "--no-html"], { cwd });
    expect(details.code).toBe(short.code);
    const count = Number(/^Counterexamples \((\d+)\):$/m.exec(short.stdout)?.[1]);
    expect(count).toBeGreaterThan(0);
    expect(details.stdout.match(/^━━ /gm)).toHaveLength(count);
    expect(details.stdout.match(/^replay: npx livepatch-check replay /gm)).toHaveLength(count);
    expect(details.stdout).not.toContain("Report with");
    // Each one-line counterexample's token is the one its full timeline ends with.
    const tokens = (text: string, re: RegExp) => [...text.matchAll(re)].map((m) => m[1]);
    expect(tokens(short.stdout, / — replay (\S+)$/gm)).toEqual(
      tokens(details.stdout, /^replay: npx livepatch-check replay (\S+)$/gm),
    );
    const none = mkdtempSync(join(tmpdir(), "livepatch-check-main-"));
    await runCaptured([...args, "--no-html"], { cwd: none });
    await runCaptured([...args, "--json"], { cwd: none });
    expect(existsSync(join(none, "livepatch-check-report.html"))).toBe(false);
    expect(existsSync(join(cwd, "livepatch-check-report.html"))).toBe(true);
  });
});
