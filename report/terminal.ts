// The terminal renderer of a counterexample's report (SPEC §7, §8): the violation, a per-CPU timeline
// of the run, the disassembly of every instruction fetched at a patch site with the provenance of each
// byte, and the replay token, all printed from the report model (report/model).
import pc from "picocolors";
import type { RunConfig } from "../model/types.js";
import { hex } from "../model/x86.js";
import type { PropertyId } from "../properties/invariants.js";
import { buildReportModel, FOLD_MIN, type ReportModel, type SiteFetch, type TimelineRow } from "./model.js";
import { type Replay, replayTape } from "./replay.js";

type Colors = ReturnType<typeof pc.createColors>;

export interface ReportOptions {
  color: boolean;
  /** Judge only this property (the one a counterexample was shrunk for); all of them otherwise. */
  property?: PropertyId;
}

/** The report of a counterexample: violations, per-CPU timeline, patch-site disassembly, replay token. */
export function renderCounterexample(
  config: RunConfig,
  tape: readonly number[],
  opts: ReportOptions,
): string {
  return renderReplay(replayTape(config, tape, opts.property), opts);
}

/** The report of a replay already made (the CLI reuses one run for the report and its exit code). */
export function renderReplay(rep: Replay, opts: ReportOptions): string {
  return renderReport(buildReportModel(rep, opts.property), opts.color);
}

/** The report of a model already built. */
export function renderReport(m: ReportModel, color: boolean): string {
  const c = pc.createColors(color);
  const lines: string[] = [];
  lines.push(`${c.bold(`${m.protocol} on ${m.scenario}`)}  (${m.settings})`);
  lines.push(
    `tape: ${m.tapeLength} values, ${m.tapeNonZero} of them non-zero (preemptions, events, branch choices); the run ends after step ${m.lastStep}: ${m.status}`,
  );
  lines.push("");
  if (m.error !== undefined) {
    lines.push(c.red(`The run failed: ${m.error}`));
  } else if (m.violations.length === 0) {
    lines.push(
      c.green(
        m.property
          ? `${m.property} ${m.propertyName} holds on this run.`
          : "Every property holds on this run.",
      ),
    );
  } else {
    for (const v of m.violations) lines.push(c.red(`✗ ${v.line}`));
  }
  lines.push("");
  lines.push(
    c.bold("Timeline") +
      c.dim("  (» = the scheduler switched to this CPU; ◆ = at a patch site; [NMI] = context)"),
  );
  if (!m.actorsKnown)
    lines.push(
      c.dim("(who took silent steps is unknown: the step-by-step re-run differed; shown from the log alone)"),
    );
  lines.push(...layoutRows(m, c));
  lines.push("");
  lines.push(...renderSiteFetches(m, c));
  lines.push("");
  lines.push(`token:  ${m.token}`);
  lines.push(m.replayCommand);
  return `${lines.join("\n")}\n`;
}

/** A row's text: the switch mark, the context, then what the CPU did, separated by semicolons. */
function rowText(row: TimelineRow, c: Colors): string {
  if (row.cpu < 0) return row.parts.map((p) => p.text).join("; ");
  const parts = row.parts.map((p) => (p.warn === undefined ? p.text : `${p.text}${c.yellow(p.warn)}`));
  return `${row.switched ? "» " : ""}${row.context ? `[${row.context}] ` : ""}${parts.join("; ")}`;
}

function layoutRows(m: ReportModel, c: Colors): string[] {
  const n = m.cpus;
  const rows = m.timeline;
  const lane = Math.max(10, Math.min(26, Math.floor(104 / n)));
  const stepWidth = Math.max(4, String(rows.length > 0 ? rows[rows.length - 1].step : 0).length);
  const lines: string[] = [];
  const header = Array.from({ length: n }, (_, i) => `CPU ${i}`.padEnd(lane)).join("");
  lines.push(c.bold(`${"step".padStart(stepWidth)}  ${header}`.trimEnd()));
  let tapeNoted = m.tapeEndStep < 0;
  let prevStep = -1;
  for (const row of rows) {
    if (!tapeNoted && row.step > m.tapeEndStep) {
      lines.push(
        c.dim(
          `${"".padStart(stepWidth)}  ┄┄ the tape ends at step ${m.tapeEndStep}: a fair round-robin finishes the run, with no further events ┄┄`,
        ),
      );
      tapeNoted = true;
    }
    const stepText = row.step === prevStep ? "".padStart(stepWidth) : String(row.step).padStart(stepWidth);
    prevStep = row.step;
    const text = rowText(row, c);
    if (row.cpu < 0) {
      lines.push(`${stepText}  ${c.bold(`── ${text} ──`)}`);
      continue;
    }
    const guides = Array.from({ length: row.cpu }, () => c.dim("│".padEnd(lane))).join("");
    const paint =
      row.kind === "bad"
        ? c.red
        : row.kind === "site"
          ? c.cyan
          : row.kind === "fold"
            ? c.dim
            : (s: string) => s;
    lines.push(`${stepText}  ${guides}${paint(text)}`);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------------
// Patch-site disassembly.

function renderSiteFetches(m: ReportModel, c: Colors): string[] {
  const lines: string[] = [];
  for (const site of m.sites) {
    lines.push(
      c.bold(`Patch site ${site.symbol} (0x${site.address.toString(16)}), ${site.newBytes.length} bytes:`),
    );
    lines.push(`  old bytes ${hex(site.oldBytes)}   ${site.oldCode.join("; ")}`);
    lines.push(`  new bytes ${hex(site.newBytes)}   ${site.newCode.join("; ")}`);
  }
  const atSite = m.fetches;
  lines.push("");
  if (atSite.length === 0) {
    lines.push("No CPU fetched an instruction at a patch site in this run.");
    return lines;
  }
  lines.push(c.bold("Every instruction fetched at a patch site (iced-x86):"));
  const symWidth = Math.max(...atSite.flatMap((i) => i.bytes.map((b) => b.symbol.length)));
  const stepsOf = (f: SiteFetch) =>
    f.firstStep === f.lastStep ? `step ${f.firstStep}` : `steps ${f.firstStep}–${f.lastStep}`;
  const ctxOf = (f: SiteFetch) => (f.context === null ? "" : ` [${f.context}]`);
  // Fetches of the untouched old code say nothing about the patch one by one: long runs of them are
  // summarised (with every distinct instruction named); anything with a written byte is shown in full.
  let untouched: SiteFetch[] = [];
  const flush = () => {
    if (untouched.length >= FOLD_MIN) {
      const first = untouched[0];
      const last = untouched[untouched.length - 1];
      const cpus = [...new Set(untouched.map((i) => i.cpu))].sort((a, b) => a - b);
      const texts = [...new Set(untouched.map((i) => `${i.symbol}: ${i.text}`))];
      lines.push(
        c.dim(
          `  steps ${first.firstStep}–${last.lastStep}, CPU ${cpus.join(",")}: ${untouched.length} fetches of old instructions, every byte as loaded (${texts.join("; ")})`,
        ),
      );
    } else {
      for (const f of untouched) {
        lines.push(
          `  ${stepsOf(f)}, CPU ${f.cpu}${ctxOf(f)}: ${f.symbol}  ${c.bold(f.text)}  (${hex(f.values)})  old instruction, every byte as loaded`,
        );
      }
    }
    untouched = [];
  };
  for (const f of atSite) {
    if (f.untouched) {
      untouched.push(f);
      continue;
    }
    flush();
    const verdict =
      f.cls === "torn"
        ? c.red("TORN: neither an old nor a new instruction (P1)")
        : f.cls === "new"
          ? "new instruction"
          : f.cls === "int3"
            ? "transient int3"
            : f.cls === "crash"
              ? c.red("crashed")
              : "old instruction";
    lines.push(
      `  ${stepsOf(f)}, CPU ${f.cpu}${ctxOf(f)}: ${f.symbol}  ${c.bold(f.text)}  (${hex(f.values)})  ${verdict}`,
    );
    f.bytes.forEach((b, i) => {
      const label = b.label === "new" ? c.green(b.label.padEnd(9)) : b.label.padEnd(9);
      lines.push(
        `      byte ${i}  ${b.symbol.padEnd(symWidth)}  ${hex([b.value])}  ${label} ${b.detail}, fetched at step ${b.fetchStep}${b.note}`,
      );
    });
    if (f.expected) lines.push(`      expected: old ${f.expected.old}, or new ${f.expected.new}`);
  }
  flush();
  return lines;
}
