// The README's verdict matrix, generated from the main job's JSON (`livepatch-check --json`), never
// copied by hand. `npm run docs:matrix` runs the main job and writes the table between the README's
// `<!-- matrix:start -->` and `<!-- matrix:end -->` markers; `node dist/scripts/readme-matrix.js
// FILE.json` takes a saved output instead. `readmeMatrix` is the pure part (JSON -> Markdown), which
// test/main-job.test.ts compares with the README.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const MATRIX_START = "<!-- matrix:start -->";
export const MATRIX_END = "<!-- matrix:end -->";

/** What the generator reads of one verdict of the main job's `--json` (cli/main.ts, verdictJson). */
export interface JsonVerdict {
  protocol: string;
  scenario: string;
  verdict: "holds" | "violated" | "incomplete" | "refused" | "error";
  /** The violated properties as the terminal matrix prints them, hazards in brackets. */
  cell: string;
  matchesExpected: boolean;
  /** The exhaustive part ran to its end: every property not violated is proven within `bounds`. */
  proven?: boolean;
  bounds?: {
    preemptions: number;
    events: number;
    branches: number;
    stale: number;
    total: number;
    cpus: number;
  } | null;
  hardware?: { fetch: string; nmis: number; mces: number };
  /** The exhaustive part: every run with at most `completeUpToChoices` choices in all was explored. */
  exhaustive?: { executions: number; maxExecutions?: number; completeUpToChoices: number } | null;
  sampled?: { runs: number; strategies: readonly string[] } | null;
}

/** What the generator reads of the main job's `--json`. */
export interface MainJobJson {
  mode: string;
  verdicts: JsonVerdict[];
}

function plural(n: number, one: string): string {
  return `${n} ${one}${n === 1 ? "" : "s"}`;
}

function boundsWords(v: JsonVerdict): string {
  const b = v.bounds as NonNullable<JsonVerdict["bounds"]>;
  const sum = b.preemptions + b.events + b.branches + b.stale;
  const all = b.total < sum ? `, at most ${b.total} of them in all` : "";
  const stale =
    v.hardware && v.hardware.fetch !== "stale"
      ? `no stale value (${v.hardware.fetch} fetch)`
      : plural(b.stale, "stale value");
  return `at most ${plural(b.preemptions, "preemption")}, ${plural(b.events, "event")}, ${plural(b.branches, "branch direction")} other than the default and ${stale}${all}, ${b.cpus} CPUs`;
}

/** " ✓" proven within the bounds, " ✓≤L" only for every run with at most L choices in all, or "". */
function provenMark(v: JsonVerdict): string {
  if (v.proven) return "✓";
  const level = v.exhaustive?.completeUpToChoices ?? -1;
  return level >= 1 ? `✓≤${level}` : "";
}

/** "random/PCT": the strategies that drew runs. */
function strategyWords(strategies: readonly string[]): string {
  return strategies.map((s) => (s === "pct" ? "PCT" : s)).join("/");
}

/** One cell: the failing properties, "holds" with how it was obtained, or "refused". */
export function matrixCell(v: JsonVerdict): string {
  const sampled = v.sampled && v.sampled.runs > 0 ? strategyWords(v.sampled.strategies) : undefined;
  let text: string;
  if (v.verdict === "refused" || v.verdict === "error") text = v.verdict;
  else if (v.verdict === "incomplete") text = "incomplete";
  else if (v.verdict === "holds") {
    const how = [provenMark(v) || undefined, sampled].filter((x) => x !== undefined).join(" + ");
    text = how ? `holds (${how})` : "holds";
  } else text = `${v.cell}${provenMark(v) ? ` ${provenMark(v)}` : ""}`;
  return v.matchesExpected ? text : `${text} *`;
}

/** The verdict matrix as Markdown: protocol rows × scenario columns, in the main job's order, and its legend. */
export function readmeMatrix(json: MainJobJson): string {
  if (!Array.isArray(json?.verdicts) || json.verdicts.length === 0)
    throw new Error("the main job's JSON has no verdicts: run `livepatch-check --json` without --protocol");
  const protocols: string[] = [];
  const scenarios: string[] = [];
  const at = new Map<string, JsonVerdict>();
  for (const v of json.verdicts) {
    if (!protocols.includes(v.protocol)) protocols.push(v.protocol);
    if (!scenarios.includes(v.scenario)) scenarios.push(v.scenario);
    at.set(`${v.protocol}\0${v.scenario}`, v);
  }
  const escapePipes = (s: string) => s.replace(/\|/g, "\\|");
  const lines = [
    `| protocol | ${scenarios.join(" | ")} |`,
    `|---|${scenarios.map(() => "---").join("|")}|`,
    ...protocols.map((p) => {
      const cells = scenarios.map((s) => {
        const v = at.get(`${p}\0${s}`);
        return v ? escapePipes(matrixCell(v)) : "";
      });
      return `| ${p} | ${cells.join(" | ")} |`;
    }),
  ];
  const legend: string[] = [];
  const proven = json.verdicts.filter((v) => v.proven && v.bounds);
  const bounds = [...new Set(proven.map(boundsWords))];
  if (bounds.length > 0)
    legend.push(
      `✓: proven by exhaustive search for every run with ${bounds.join("; or ")} (the properties not violated, in a violated cell).`,
    );
  const partly = json.verdicts.filter(
    (v) => v.verdict !== "refused" && v.verdict !== "error" && !v.proven && provenMark(v) !== "",
  );
  if (partly.length > 0) {
    const budgets = [
      ...new Set(partly.map((v) => (v.exhaustive?.maxExecutions ?? 0).toLocaleString("en-US"))),
    ];
    legend.push(
      `✓≤L: proven only for every run with at most L choices in all; the next level did not fit the budget of ${budgets.join(" / ")} executions: \`--min-bound 1,1 --max-executions N\` demands the rest.`,
    );
  }
  const strategies = [
    ...new Set(json.verdicts.flatMap((v) => (v.sampled && v.sampled.runs > 0 ? v.sampled.strategies : []))),
  ];
  if (strategies.length > 0)
    legend.push(
      `${strategyWords(strategies)}: runs drawn by ${strategies.map((x) => (x === "pct" ? "PCT" : x)).join(" and ")} search (after the exhaustive part, where there is one) found no violation: evidence, not a proof.`,
    );
  if (json.verdicts.some((v) => v.verdict === "violated" && v.cell.includes("[")))
    legend.push(
      "[ ]: violated only through hazards of the hardware or the OS's entry code (a second #MC; an NMI let in by an #MC handler's IRET), not the protocol's.",
    );
  const differing = json.verdicts.filter((v) => !v.matchesExpected);
  if (differing.length > 0)
    legend.push(
      `*: differs from the verdict its protocol declares (${differing.map((v) => `${v.protocol} on ${v.scenario}`).join(", ")}).`,
    );
  return `${[...lines, ...(legend.length > 0 ? ["", ...legend.map((l) => `- ${l}`)] : [])].join("\n")}\n`;
}

/** The README with the text between its matrix markers replaced by `matrix`. */
export function replaceMatrix(readme: string, matrix: string): string {
  const start = readme.indexOf(MATRIX_START);
  const end = readme.indexOf(MATRIX_END);
  if (start < 0 || end < start)
    throw new Error(`README.md has no '${MATRIX_START}' ... '${MATRIX_END}' markers, in that order`);
  return `${readme.slice(0, start + MATRIX_START.length)}\n${matrix}${readme.slice(end)}`;
}

/** The text between the README's matrix markers (what replaceMatrix wrote there). */
export function matrixOf(readme: string): string {
  const start = readme.indexOf(MATRIX_START);
  const end = readme.indexOf(MATRIX_END);
  if (start < 0 || end < start)
    throw new Error(`README.md has no '${MATRIX_START}' ... '${MATRIX_END}' markers, in that order`);
  return readme.slice(start + MATRIX_START.length + 1, end);
}

/** Runs the main job (`bin/livepatch-check.js --json`) and returns its parsed output. */
export function runMainJob(root: string): MainJobJson {
  const run = spawnSync(process.execPath, [`${root}/bin/livepatch-check.js`, "--json"], {
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    stdio: ["ignore", "pipe", "inherit"],
  });
  // Exit 0: every verdict as declared; 1: some differ (they are marked in the matrix). 2: nothing ran.
  if (run.status !== 0 && run.status !== 1)
    throw new Error(`the main job failed (exit ${run.status ?? run.signal}): nothing to write`);
  return JSON.parse(run.stdout) as MainJobJson;
}

function main(): void {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const file = process.argv[2];
  const json = file ? (JSON.parse(readFileSync(file, "utf8")) as MainJobJson) : runMainJob(root);
  const readmePath = `${root}/README.md`;
  const before = readFileSync(readmePath, "utf8");
  const after = replaceMatrix(before, readmeMatrix(json));
  writeFileSync(readmePath, after);
  const differing = json.verdicts.filter((v) => !v.matchesExpected).length;
  process.stdout.write(
    `README.md: the matrix of ${json.verdicts.length} verdicts ${after === before ? "is unchanged" : "was rewritten"}${differing > 0 ? `; ${differing} differ from the declared verdict (marked *)` : ""}\n`,
  );
  if (differing > 0) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
