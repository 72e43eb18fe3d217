import { writeFileSync } from "node:fs";
// What a run prints: the verdict matrix (or a single check's summary), a line per counterexample
// or, with --details, its full timeline, where the HTML report went, or JSON.
import type { Expected } from "../../model/types.js";
import type { PropertyResult, Verdict } from "../../properties/check.js";
import { SITUATIONS } from "../../properties/coverage.js";
import { PROPERTIES } from "../../properties/invariants.js";
import { encodeToken } from "../../properties/token.js";
import {
  coverageLines,
  expectedCell,
  foundText,
  holdsText,
  matchesExpected,
  proven,
  type ReportModel,
  renderVerdictMatrix,
  replayCommand,
  verdictCell,
} from "../../report/index.js";
import type { Confirmation, ProtocolInfo } from "../../session/check-worker.js";
import type { CheckerSession } from "../../session/session.js";
import type { EngineName } from "../../workers/engine.js";
import { EXIT_OK, EXIT_VIOLATION, type Io, UsageError, usage } from "../io.js";
import { confirmAll, counterexampleReport } from "../pool.js";
import { counterexampleId, htmlMatrix, writeHtml } from "./html.js";

/** Writes the --json-file; a write that fails is the user's to fix (a path that cannot be written). */
function writeJsonFile(path: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (e) {
    throw new UsageError(
      `--json-file: cannot write ${path}: ${(e as Error).message}. Give a path in a folder that exists and can be written.`,
    );
  }
}

/** How the verdicts of a run (or of merged shards) are reported. */
export interface ReportContext {
  session: CheckerSession;
  protocols: readonly ProtocolInfo[];
  single: boolean;
  json: boolean;
  color: boolean;
  engine: EngineName;
  started: number;
  io: Io;
  print: (t: string) => void;
  /** Merged shards: their number and times, said in the summary line and the JSON. */
  shards?: { count: number; elapsedMs: Array<number | undefined>; missing: number[] };
  /** Also write the report as one HTML page to this file. */
  html?: string;
  /** Also write the verdicts as JSON (what --json prints) to this file. */
  jsonFile?: string;
  /**
   * Print each counterexample's full timeline (a single check, --details); otherwise one line each,
   * and where the full report went.
   */
  details: boolean;
  /**
   * Scenarios built from --elf, on which no protocol declares a verdict: their cells show what each
   * protocol gets, and are not judged against a declaration.
   */
  surveyed?: ReadonlySet<string>;
  /** What `replay` needs besides a token: the --module files and the --elf options (replayArgumentsOf). */
  replayArguments?: string;
}

/**
 * The verdicts' report, as the main job prints it: every counterexample re-run in a worker for its
 * report and confirmed on the threaded engine, the matrix (or the single check's summary) and the
 * counterexamples, or JSON. Returns the exit code: the main job's, or the single check's.
 */
export async function reportVerdicts(verdicts: Verdict[], ctx: ReportContext): Promise<number> {
  const { session, protocols, single, color, started, io, print, html } = ctx;
  const opts = { json: ctx.json, engine: ctx.engine };
  const errors = verdicts.filter((v): v is Extract<Verdict, { kind: "error" }> => v.kind === "error");
  if (errors.length > 0) {
    throw new UsageError(
      `a run failed, so nothing was judged: ${errors[0].message}. A protocol routine that throws or never yields is a bug in that protocol (check the module given with --module); otherwise replay with --engine inline to see whether the engine is at fault.`,
    );
  }
  // Every counterexample is re-run in a worker for its report, and confirmed on the threaded engine.
  const failing = verdicts.flatMap((v) =>
    v.kind === "violated" ? v.properties.filter((p) => !p.holds).map((p) => ({ v, p })) : [],
  );
  const confirmation = confirmAll(
    session,
    failing.map(({ v, p }) => ({ config: v.config, property: p.property, tape: p.tape ?? [] })),
  );
  const reports = await Promise.all(
    failing.map(({ v, p }) =>
      counterexampleReport(
        session,
        v.config,
        p,
        color && !opts.json,
        html !== undefined,
        ctx.replayArguments,
      ),
    ),
  );
  const { confirmations, ms: confirmMs } = await confirmation;
  const elapsed = (performance.now() - started) / 1000;
  const expectedFor = (protocol: string, scenario: string) =>
    protocols.find((p) => p.name === protocol)?.expected[scenario];
  const judged = (protocol: string, scenario: string) =>
    expectedFor(protocol, scenario) !== undefined || !ctx.surveyed?.has(scenario);
  const mismatches = verdicts.filter(
    (v) =>
      judged(v.config.protocol, v.config.scenario) &&
      !matchesExpected(v, expectedFor(v.config.protocol, v.config.scenario)),
  );
  const violated = verdicts.some((v) => v.kind === "violated");
  const threads = confirmations[0]?.threads ?? 0;
  const confirmed = (v: Verdict, p: PropertyResult) =>
    confirmations[failing.findIndex((f) => f.v === v && f.p === p)];

  // The JSON of the verdicts: on stdout with --json, and in a file with --json-file (the terminal then
  // keeps the matrix for people, the file the verdicts for CI).
  const jsonText = (): string =>
    `${JSON.stringify(
      {
        mode: single ? "single" : "matrix",
        ok: single ? !violated : mismatches.length === 0,
        engine: opts.engine,
        workers: session.workers,
        elapsedMs: Math.round(elapsed * 1000),
        ...(ctx.shards
          ? {
              shards: {
                count: ctx.shards.count,
                missing: ctx.shards.missing,
                elapsedMs: ctx.shards.elapsedMs.map((ms) => (ms === undefined ? null : Math.round(ms))),
              },
            }
          : {}),
        confirmation: { counterexamples: failing.length, threads, elapsedMs: Math.round(confirmMs) },
        verdicts: verdicts.map((v) =>
          verdictJson(
            v,
            expectedFor(v.config.protocol, v.config.scenario),
            (p) => confirmed(v, p),
            ctx.replayArguments,
          ),
        ),
      },
      null,
      2,
    )}\n`;
  if (ctx.jsonFile !== undefined) writeJsonFile(ctx.jsonFile, jsonText());
  if (opts.json) {
    print(jsonText());
  } else {
    if (single && ctx.shards && ctx.shards.missing.length > 0)
      print(
        `${verdicts[0].config.protocol} on ${verdicts[0].config.scenario}: incomplete: shard ${ctx.shards.missing.map((i) => `${i}/${ctx.shards?.count}`).join(", ")} missing, whose runs may violate any property\n`,
      );
    else if (single) print(singleSummary(verdicts[0], expectedFor));
    else {
      print(renderVerdictMatrix(verdicts, expectedFor, { color, judged }));
      for (const s of ctx.surveyed ?? [])
        print(
          `\nNo protocol declares a verdict on ${s}, built from your file: its column shows what each protocol gets.\n`,
        );
    }
    const runs = verdicts.reduce((n, v) => n + (v.kind === "refused" || v.kind === "error" ? 0 : v.runs), 0);
    const confirmation =
      failing.length > 0
        ? `; ${failing.length} counterexample${failing.length === 1 ? "" : "s"} confirmed on ${threads} threads in ${(confirmMs / 1000).toFixed(1)} s`
        : "";
    const where = ctx.shards
      ? `merged from ${ctx.shards.count} shard${ctx.shards.count === 1 ? "" : "s"} (${ctx.shards.elapsedMs
          .map((ms, i) => `${i + 1}: ${ms === undefined ? "missing" : `${(ms / 1000).toFixed(1)} s`}`)
          .join(", ")}); reports`
      : `${opts.engine} engine`;
    print(
      `\n${verdicts.length} check${verdicts.length === 1 ? "" : "s"}, ${runs} runs, ${elapsed.toFixed(1)} s, ${where} on ${session.workers} worker${session.workers === 1 ? "" : "s"}${confirmation}\n`,
    );
    if (failing.length > 0) print(`\nCounterexamples (${failing.length}):\n`);
    if (ctx.details)
      failing.forEach(({ v, p }, i) => {
        print(`\n${counterexampleTitle(v, p)}\n${reports[i].text}${confirmationLine(confirmations[i])}`);
      });
    else {
      for (const { v, p } of failing) print(`${counterexampleLine(v, p, ctx.replayArguments)}\n`);
      const timelines =
        failing.length > 0 ? ` with the timeline of every counterexample (--details prints them here)` : "";
      print(
        html !== undefined
          ? `\nReport${timelines}: ${html}\n`
          : failing.length > 0
            ? "\nNo HTML report written (--no-html): --details prints every counterexample's timeline here.\n"
            : "",
      );
    }
  }
  if (html !== undefined) {
    const counterexamples = failing.map(({ v, p }, i) => ({
      id: counterexampleId(i),
      title: counterexampleTitle(v, p).replace(/^━━ /, ""),
      model: reports[i].model as ReportModel,
      note: confirmationLine(confirmations[i]).trim(),
    }));
    const sections = failing.map(({ v, p }) => ({ ...v.config, property: p.property }));
    writeHtml(
      html,
      {
        title: single
          ? `${verdicts[0].config.protocol} on ${verdicts[0].config.scenario}`
          : "livepatch-check: verdicts",
        summary: single ? singleSummary(verdicts[0], expectedFor).trimEnd().split("\n") : [],
        ...(single ? {} : { matrix: htmlMatrix(verdicts, expectedFor, counterexamples, sections, judged) }),
        counterexamples,
      },
      usage,
    );
  }
  // A single check passes only on "holds": "incomplete" (a search stopped by its budget with nothing
  // else to vouch, or short of --min-bound) is no proof for CI to rest on.
  if (single) return violated || verdicts[0].kind === "incomplete" ? EXIT_VIOLATION : EXIT_OK;
  if (mismatches.length > 0) {
    io.stderr(
      `livepatch-check: ${mismatches.length} of ${verdicts.length} verdicts differ from what their protocol declares: ${mismatches
        .map(
          (v) =>
            `${v.config.protocol} on ${v.config.scenario} (got ${verdictCell(v)}, expected ${expectedCell(expectedFor(v.config.protocol, v.config.scenario))})`,
        )
        .join("; ")}.\n`,
    );
    return EXIT_VIOLATION;
  }
  return EXIT_OK;
}

export function confirmationLine(c: Confirmation | undefined): string {
  return c
    ? `confirmed on ${c.threads} threads: the same log, record for record (${c.records} records)\n`
    : "";
}

export function singleSummary(
  v: Verdict,
  expectedFor: (protocol: string, scenario: string) => Expected | undefined,
): string {
  const { protocol, scenario } = v.config;
  const head = `${protocol} on ${scenario}: `;
  const expected = expectedFor(protocol, scenario);
  const declared = expected ? ` (the protocol declares: ${expectedCell(expected)})` : "";
  if (v.kind === "refused") return `${head}refused: ${v.reason}${declared}\n`;
  if (v.kind === "error") return `${head}error: ${v.message}\n`;
  const how = holdsText(v);
  const lines = [
    `${head}${
      v.kind === "holds"
        ? `every property ${how}`
        : v.kind === "incomplete"
          ? `no property violated, but ${how}`
          : `violated: ${verdictCell(v)}`
    }${declared}`,
  ];
  for (const p of v.properties) {
    const name = PROPERTIES.find((x) => x.id === p.property)?.name ?? "";
    lines.push(
      p.holds
        ? `  ${p.property} ${name}: ${p.undecided ? "undecided (not violated in the runs explored)" : "holds"}`
        : `  ${p.property} ${name}: violated (${p.violation?.kind})${p.violation?.hazard ? `, only through a hazard: ${p.violation.hazard}` : ""}, ${foundText(p)}`,
    );
  }
  if (v.kind === "violated" && v.properties.some((p) => p.holds && !p.undecided))
    lines.push(`  the properties not violated: ${how}`);
  lines.push(...coverageLines(v).map((l) => `  ${l}`));
  return `${lines.join("\n")}\n`;
}

/**
 * A counterexample in one line, as the matrix lists them: the cell, the property, the CPU and step
 * of the violation, its reason and the replay token.
 */
export function counterexampleLine(
  v: Extract<Verdict, { properties: PropertyResult[] }>,
  p: PropertyResult,
  replayArguments: string | undefined,
): string {
  const name = PROPERTIES.find((x) => x.id === p.property)?.name ?? "";
  const w = p.violation;
  // A deadlock is no one CPU's (cpu -1); a violation found at the end of a run has no step.
  const where = w
    ? [w.cpu >= 0 ? `CPU ${w.cpu}` : "", w.step >= 0 ? `step ${w.step}` : ""].filter(Boolean)
    : [];
  const at = where.length > 0 ? `, ${where.join(" ")}` : "";
  const why = w ? ` (${w.kind})${at}: ${w.message.replace(/\s*\n\s*/g, " ")}` : "";
  const token = encodeToken(v.config, p.tape ?? []);
  return `  ${v.config.protocol} on ${v.config.scenario}: ${p.property} ${name}${why} — replay ${token}${replayArguments ? ` ${replayArguments}` : ""}`;
}

export function counterexampleTitle(
  v: Extract<Verdict, { properties: PropertyResult[] }>,
  p: PropertyResult,
): string {
  const name = PROPERTIES.find((x) => x.id === p.property)?.name ?? "";
  const shrink =
    p.how === "exhaustive" || p.how === "example"
      ? `; ${foundText(p)}`
      : p.originalTapeLength !== undefined && p.shrunkTapeLength !== undefined
        ? `; ${p.shrinks ?? 0} shrinks took it from ${p.originalChoices} to ${p.shrunkChoices} choices (tape of ${p.originalTapeLength} to ${p.shrunkTapeLength} values)`
        : "";
  const hazard = p.violation?.hazard
    ? ` only through a hazard (${p.violation.hazard}), not the protocol's`
    : "";
  return `━━ ${v.config.protocol} on ${v.config.scenario}: ${p.property} ${name} violated${hazard} (${p.runs} runs${p.how === "exhaustive" ? "" : ", shrinking included"}${shrink})`;
}

export function verdictJson(
  v: Verdict,
  expected: Expected | undefined,
  confirmed: (p: PropertyResult) => Confirmation | undefined,
  replayArguments: string | undefined,
): unknown {
  const base = {
    protocol: v.config.protocol,
    scenario: v.config.scenario,
    hardware: v.config.hardware,
    verdict: v.kind,
    cell: verdictCell(v),
    expected: expected ?? null,
    matchesExpected: matchesExpected(v, expected),
  };
  if (v.kind === "refused") return { ...base, reason: v.reason };
  if (v.kind === "error") return { ...base, error: v.message };
  const ex = v.search?.exhaustive;
  return {
    ...base,
    how: holdsText(v),
    complete: ex?.complete ?? false,
    proven: proven(v),
    bounds: ex ? { ...ex.bounds, total: ex.total, cpus: ex.cpus } : null,
    exhaustive: ex
      ? {
          maxExecutions: ex.maxExecutions,
          executions: ex.executions,
          judged: ex.judged,
          completeUpToChoices: ex.level,
          valuePoints: ex.valuePoints,
          cacheFull: ex.cacheFull,
          reductions: ex.reductions,
          symmetryGivenUp: ex.symmetryGivenUp ?? null,
          elapsedMs: Math.round(ex.elapsedMs),
        }
      : null,
    sampled: v.search?.sampled ?? null,
    coverage: v.search
      ? {
          runs: v.search.coverageRuns,
          situations: SITUATIONS.map((s, i) => ({
            id: s.id,
            text: s.text,
            runs: v.search?.coverage[i] ?? 0,
          })),
        }
      : null,
    runs: v.runs,
    distinctLogs: v.distinctLogs,
    elapsedMs: Math.round(v.elapsedMs),
    properties: v.properties.map((p) => ({
      id: p.property,
      name: PROPERTIES.find((x) => x.id === p.property)?.name,
      holds: p.holds,
      ...(p.undecided ? { undecided: true } : {}),
      runs: p.runs,
      ...(p.holds
        ? {}
        : {
            how: p.how,
            ...(p.how === "exhaustive" ? { minimal: p.minimal === true, cost: p.cost } : {}),
            violation: p.violation,
            token: p.token,
            replay: p.token ? replayCommand(p.token, replayArguments).replace(/^replay: /, "") : undefined,
            tapeLength: p.shrunkTapeLength,
            originalTapeLength: p.originalTapeLength,
            choices: p.shrunkChoices,
            originalChoices: p.originalChoices,
            shrinks: p.shrinks,
            confirmedOnThreads: confirmed(p)?.threads,
          }),
    })),
  };
}
