// `npm run mutate`: applies each mutation of scripts/mutations.ts, one at a time, to a scratch copy of
// the repository (its files as they are in the working tree, node_modules linked), builds it, runs the
// mutation's test files and prints whether a test failed (killed) or none did (survived). The unmutated
// copy must pass the same tests first, or a failing test would prove nothing. A mutation whose find
// text is missing (the source moved) or that does not compile is an error, never a kill. Exit status:
// 0 when every mutation was killed, 1 when one survived or was in error, 2 for bad input.
//
//   npm run mutate                        every mutation
//   npm run mutate -- --only H5,P6-old-body-not-reported   ids, or rules/properties, to run
//   npm run mutate -- --list              the mutations, without running anything
//   npm run mutate -- --timeout 300       seconds allowed per test run (default 240)
//   npm run mutate -- --keep              keep the scratch copy (its path is printed)
import { spawn, spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { listProblems, mutantFiles } from "./mutation-checks.js";
import { MUTATIONS, type Mutation } from "./mutations.js";

type Outcome =
  | { status: "killed"; by: string[]; note?: string }
  | { status: "survived" }
  | { status: "error"; why: string };

interface Options {
  only: string[] | null;
  list: boolean;
  keep: boolean;
  timeoutMs: number;
}

/** The repository: this file runs as dist/scripts/mutate.js. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

function parseArgs(argv: string[]): Options {
  const o: Options = { only: null, list: false, keep: false, timeoutMs: 240_000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--list") o.list = true;
    else if (a === "--keep") o.keep = true;
    else if (a === "--only") {
      const v = argv[++i];
      if (!v) usage("--only needs a comma-separated list of mutation ids, rules (H1) or properties (P5)");
      o.only = v.split(",").filter((s) => s !== "");
    } else if (a === "--timeout") {
      const s = Number(argv[++i]);
      if (!Number.isInteger(s) || s < 10) usage("--timeout needs a whole number of seconds, at least 10");
      o.timeoutMs = s * 1000;
    } else usage(`unknown argument '${a}'`);
  }
  return o;
}

function usage(message: string): never {
  process.stderr.write(
    `mutate: ${message}\nusage: npm run mutate -- [--only ID|RULE,...] [--list] [--timeout SECONDS] [--keep]\n`,
  );
  process.exit(2);
}

/**
 * The repository's files as they are now: tracked ones with their uncommitted edits, and new ones git
 * does not ignore (a test being written); node_modules linked entry by entry.
 */
function scratchCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), "livepatch-check-mutate-"));
  const ls = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  if (ls.status !== 0) throw new Error(`git ls-files failed in ${ROOT}: ${ls.stderr}`);
  for (const file of ls.stdout.split("\0").filter((f) => f !== "")) {
    const from = join(ROOT, file);
    if (!existsSync(from)) continue; // deleted in the working tree
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    cpSync(from, join(dir, file));
  }
  // Linking each package rather than node_modules itself keeps vite's cache (node_modules/.vite) in
  // the scratch copy.
  const modules = join(ROOT, "node_modules");
  if (!existsSync(modules)) throw new Error("node_modules is missing: run `npm ci` first");
  mkdirSync(join(dir, "node_modules"));
  for (const entry of readdirSync(modules)) {
    if (entry === ".vite") continue;
    symlinkSync(join(modules, entry), join(dir, "node_modules", entry));
  }
  return dir;
}

interface Proc {
  code: number | null;
  output: string;
  timedOut: boolean;
}

/** Runs node with `args` in `cwd`, in its own process group so that a timeout ends all of it. */
function runNode(args: string[], cwd: string, timeoutMs: number): Promise<Proc> {
  return new Promise((done) => {
    const child = spawn(process.execPath, args, {
      cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
    });
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      done({ code, output, timedOut });
    });
  });
}

/** tsc into the copy's dist/; incremental, so that a one-file mutant re-checks only what it touches. */
async function build(dir: string): Promise<Proc> {
  const tsc = join(dir, "node_modules", "typescript", "bin", "tsc");
  const info = join(dir, ".mutate.tsbuildinfo");
  return runNode([tsc, "-p", "tsconfig.json", "--incremental", "--tsBuildInfoFile", info], dir, 300_000);
}

interface JsonReport {
  testResults?: Array<{
    name: string;
    status: string;
    message?: string;
    assertionResults?: Array<{ ancestorTitles: string[]; title: string; status: string }>;
  }>;
}

/** Runs vitest on `tests`; returns the failing tests ("file > describe > test"), or why none ran. */
async function runTests(
  dir: string,
  tests: string[],
  timeoutMs: number,
): Promise<{ failed: string[]; problem?: string; timedOut: boolean }> {
  const report = join(dir, ".mutate-report.json");
  rmSync(report, { force: true });
  const p = await runNode(
    [
      join(dir, "node_modules", "vitest", "vitest.mjs"),
      "run",
      ...tests,
      // The first failing test kills the mutant: the rest need not run (a mutant can make them slow).
      "--bail=1",
      "--reporter=json",
      `--outputFile=${report}`,
    ],
    dir,
    timeoutMs,
  );
  if (p.timedOut) return { failed: [], timedOut: true };
  if (!existsSync(report)) return { failed: [], problem: tail(p.output), timedOut: false };
  const json = JSON.parse(readFileSync(report, "utf8")) as JsonReport;
  const failed: string[] = [];
  const ran = new Set<string>();
  for (const file of json.testResults ?? []) {
    const rel = file.name.startsWith(dir) ? file.name.slice(dir.length + 1) : file.name;
    ran.add(rel);
    for (const a of file.assertionResults ?? [])
      if (a.status === "failed") failed.push([rel, ...a.ancestorTitles, a.title].join(" > "));
    if (file.status === "failed" && !(file.assertionResults ?? []).some((a) => a.status === "failed"))
      failed.push(`${rel} (failed to run: ${firstLine(file.message ?? "")})`);
  }
  const missing = tests.filter((t) => !ran.has(t));
  if (failed.length === 0 && missing.length > 0)
    return { failed, problem: `no tests ran from ${missing.join(", ")}`, timedOut: false };
  if (failed.length === 0 && p.code !== 0) return { failed, problem: tail(p.output), timedOut: false };
  return { failed, timedOut: false };
}

const firstLine = (s: string) => s.split("\n").find((l) => l.trim() !== "") ?? "";
const tail = (s: string) =>
  s
    .trim()
    .split("\n")
    .slice(-3)
    .map((l) => l.trim())
    .join(" | ");

async function mutateAndTest(dir: string, m: Mutation, timeoutMs: number): Promise<Outcome> {
  const mutant = mutantFiles(m, (file) => readFileSync(join(dir, file), "utf8"));
  if ("error" in mutant) return { status: "error", why: mutant.error };
  const originals = new Map<string, string>();
  try {
    for (const [file, text] of mutant.files) {
      originals.set(file, readFileSync(join(dir, file), "utf8"));
      writeFileSync(join(dir, file), text);
    }
    const b = await build(dir);
    if (b.code !== 0) {
      const first = b.output.split("\n").find((l) => /error TS\d+/.test(l)) ?? tail(b.output);
      return { status: "error", why: `the mutant does not compile: ${first.trim()}` };
    }
    const r = await runTests(dir, m.tests, timeoutMs);
    if (r.timedOut)
      return { status: "killed", by: m.tests, note: `the tests ran over ${timeoutMs / 1000} s` };
    if (r.failed.length > 0) return { status: "killed", by: r.failed };
    if (r.problem) return { status: "error", why: `vitest failed without a failing test: ${r.problem}` };
    return { status: "survived" };
  } finally {
    for (const [file, text] of originals) writeFileSync(join(dir, file), text);
  }
}

function seconds(ms: number): string {
  const s = ms / 1000;
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const problems = listProblems(MUTATIONS, (path) => existsSync(join(ROOT, path)));
  if (problems.length > 0) {
    process.stderr.write(
      `mutate: scripts/mutations.ts has problems:\n${problems.map((p) => `  ${p}\n`).join("")}`,
    );
    return 2;
  }
  let selected = MUTATIONS;
  if (opts.only) {
    const wanted = opts.only;
    const unknown = wanted.filter((w) => !MUTATIONS.some((m) => m.id === w || m.breaks === w));
    if (unknown.length > 0) usage(`no mutation or rule named ${unknown.join(", ")} (see --list)`);
    selected = MUTATIONS.filter((m) => wanted.includes(m.id) || wanted.includes(m.breaks));
  }
  const width = Math.max(...selected.map((m) => m.id.length));
  if (opts.list) {
    for (const m of selected)
      process.stdout.write(`${m.id.padEnd(width)}  ${m.file}  -> ${m.tests.join(" ")}\n`);
    return 0;
  }

  const started = performance.now();
  const dir = scratchCopy();
  process.stdout.write(`scratch copy: ${dir}\n`);
  try {
    const tests = [...new Set(selected.flatMap((m) => m.tests))];
    process.stdout.write(`baseline: building and running ${tests.join(" ")} without mutations\n`);
    const b = await build(dir);
    if (b.code !== 0) {
      process.stderr.write(`mutate: the unmutated copy does not build:\n${b.output}`);
      return 2;
    }
    const base = await runTests(dir, tests, opts.timeoutMs * 2);
    if (base.timedOut || base.failed.length > 0 || base.problem) {
      const why = base.timedOut ? "timed out" : base.failed.join("\n  ") || base.problem;
      process.stderr.write(
        `mutate: the tests fail without any mutation, so no mutant can be judged:\n  ${why}\n`,
      );
      return 2;
    }
    process.stdout.write(`baseline: passes (${seconds(performance.now() - started)})\n\n`);

    const outcomes: Array<{ m: Mutation; o: Outcome }> = [];
    for (const m of selected) {
      const t0 = performance.now();
      const o = await mutateAndTest(dir, m, opts.timeoutMs);
      outcomes.push({ m, o });
      const time = seconds(performance.now() - t0).padStart(7);
      const head = `${m.id.padEnd(width)}  ${m.breaks.padEnd(3)}`;
      let what: string;
      if (o.status === "killed") {
        const more = o.by.length > 1 ? ` (+${o.by.length - 1} more)` : "";
        what = `killed    ${o.note ? `${o.note}: ${o.by.join(" ")}` : `${o.by[0]}${more}`}`;
      } else if (o.status === "survived") what = `SURVIVED  ${m.tests.join(" ")} all pass`;
      else what = `ERROR     ${o.why}`;
      process.stdout.write(`${head}  ${time}  ${what}\n`);
    }

    const count = (s: Outcome["status"]) => outcomes.filter((x) => x.o.status === s).length;
    const rules = [...new Set(selected.map((m) => m.breaks))];
    const unkilled = rules.filter((r) => !outcomes.some((x) => x.m.breaks === r && x.o.status === "killed"));
    process.stdout.write(
      `\n${outcomes.length} mutations: ${count("killed")} killed, ${count("survived")} survived, ${count("error")} errors\n`,
    );
    process.stdout.write(
      unkilled.length === 0
        ? `every rule and property selected (${rules.join(" ")}) has a killed mutation\n`
        : `no killed mutation for ${unkilled.join(" ")}\n`,
    );
    const load = loadavg()
      .map((l) => l.toFixed(1))
      .join(" ");
    process.stdout.write(
      `total time ${seconds(performance.now() - started)} on ${cpus().length} cores (load average now ${load})\n`,
    );
    return count("survived") + count("error") === 0 ? 0 : 1;
  } finally {
    if (opts.keep) process.stdout.write(`kept ${dir}\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
