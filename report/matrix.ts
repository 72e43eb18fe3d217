// The protocol × scenario verdict matrix of SPEC §10, and how each verdict was reached (honest words:
// a proof within bounds, or runs drawn at random).
import pc from "picocolors";
import type { Expected } from "../model/types.js";
import type { PropertyResult, Verdict } from "../properties/check.js";
import { SITUATIONS, unreached } from "../properties/coverage.js";
import type { Bounds } from "../workers/strategies/search-tree.js";

// The verdict matrix.

/** The ids of the violated properties, P3 annotated with the IRET that let the nested event in. */
export function verdictCell(v: Verdict): string {
  if (v.kind === "refused") return "refused";
  if (v.kind === "error") return "error";
  const failing = v.properties.filter((p) => !p.holds);
  if (failing.length === 0) return v.kind === "incomplete" ? "incomplete" : "holds";
  const cell = (p: (typeof failing)[number]) => {
    const cause =
      p.property === "P3" || p.violation?.hazard ? /\((.*)\)$/.exec(p.violation?.kind ?? "")?.[1] : undefined;
    return cause ? `${p.property}(${cause})` : p.property;
  };
  const faults = failing.filter((p) => !p.violation?.hazard).map(cell);
  const hazards = failing.filter((p) => p.violation?.hazard).map(cell);
  // Brackets: properties violated only through hazards of the hardware or the OS's entry code.
  return [...faults, ...(hazards.length > 0 ? [`[${hazards.join(" ")}]`] : [])].join(" ");
}

export function expectedCell(e: Expected | undefined): string {
  if (!e) return "(none declared)";
  if ("refused" in e) return "refused";
  const hazards = e.hazards ?? [];
  if (e.violated.length === 0 && hazards.length === 0) return "holds";
  return [
    ...[...e.violated].sort(),
    ...(hazards.length > 0 ? [`[${[...hazards].sort().join(" ")}]`] : []),
  ].join(" ");
}

/**
 * Whether a verdict is what the protocol declares: the same properties violated by the protocol, the
 * same ones violated only through hazards, or a refusal.
 */
export function matchesExpected(v: Verdict, e: Expected | undefined): boolean {
  if (!e || v.kind === "error") return false;
  if ("refused" in e) return v.kind === "refused";
  if (v.kind === "refused") return false;
  // An exhaustive search stopped by its budget decides nothing it did not violate.
  if (v.kind === "incomplete" || v.properties.some((p) => p.undecided)) return false;
  const failing = v.properties.filter((p) => !p.holds);
  const same = (got: string[], want: string[]) =>
    got.length === want.length && got.every((p) => want.includes(p));
  return (
    same(
      failing.filter((p) => !p.violation?.hazard).map((p) => p.property),
      e.violated,
    ) &&
    same(
      failing.filter((p) => p.violation?.hazard).map((p) => p.property),
      e.hazards ?? [],
    )
  );
}

function visibleLength(s: string): number {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour sequences are not visible
  return s.replace(/\x1b\[[0-9;]*m/g, "").length;
}

function pad(s: string, width: number): string {
  return s + " ".repeat(Math.max(0, width - visibleLength(s)));
}

/**
 * The protocol × scenario table of SPEC §10. Cells that differ from the protocol's declared verdict
 * carry a `*` and are listed under the table with what was expected.
 */
export function renderVerdictMatrix(
  verdicts: readonly Verdict[],
  expectedFor: (protocol: string, scenario: string) => Expected | undefined,
  opts: {
    color?: boolean;
    /** Whether a cell is judged against its declared verdict (default: every cell). */
    judged?: (protocol: string, scenario: string) => boolean;
  } = {},
): string {
  const c = pc.createColors(opts.color ?? false);
  const protocols: string[] = [];
  const scenarios: string[] = [];
  const at = new Map<string, Verdict>();
  for (const v of verdicts) {
    const { protocol, scenario } = v.config;
    if (!protocols.includes(protocol)) protocols.push(protocol);
    if (!scenarios.includes(scenario)) scenarios.push(scenario);
    at.set(`${protocol}\0${scenario}`, v);
  }
  const cellOf = (p: string, s: string): { text: string; differs: boolean } => {
    const v = at.get(`${p}\0${s}`);
    if (!v) return { text: "", differs: false };
    const differs = (opts.judged?.(p, s) ?? true) && !matchesExpected(v, expectedFor(p, s));
    return { text: `${verdictCell(v)}${proven(v) ? " ✓" : ""}${differs ? " *" : ""}`, differs };
  };
  const firstWidth = Math.max("protocol".length, ...protocols.map((p) => p.length));
  const widths = scenarios.map((s) => Math.max(s.length, ...protocols.map((p) => cellOf(p, s).text.length)));
  const lines: string[] = [];
  lines.push(
    c.bold([pad("protocol", firstWidth), ...scenarios.map((s, i) => pad(s, widths[i]))].join("  ").trimEnd()),
  );
  lines.push([firstWidth, ...widths].map((w) => "─".repeat(w)).join("  "));
  const differing: string[] = [];
  for (const p of protocols) {
    const cells = scenarios.map((s, i) => {
      const { text, differs } = cellOf(p, s);
      const v = at.get(`${p}\0${s}`);
      if (differs && v) {
        const got = v.kind === "error" ? `error (${v.message})` : verdictCell(v);
        differing.push(`${p} on ${s}: got ${got}, expected ${expectedCell(expectedFor(p, s))}`);
      }
      const painted = differs
        ? c.red(text)
        : text === "holds" || text === "holds ✓"
          ? c.green(text)
          : text === "refused"
            ? c.yellow(text)
            : text;
      return pad(painted, widths[i]);
    });
    lines.push([pad(p, firstWidth), ...cells].join("  ").trimEnd());
  }
  if (verdicts.some((v) => v.kind !== "refused" && v.kind !== "error" && verdictCell(v).includes("["))) {
    lines.push("");
    lines.push(
      "[ ] violated only through hazards of the hardware or the OS's entry code (a second #MC; an NMI let in by an #MC handler's IRET), not the protocol's",
    );
  }
  const provenCells = verdicts.filter(proven);
  if (provenCells.length > 0) {
    const bounds = new Set(
      provenCells.map((v) => {
        const ex = v.kind === "holds" || v.kind === "violated" ? v.search?.exhaustive : undefined;
        return ex ? boundsText(ex.bounds, ex.cpus, ex.total) : "";
      }),
    );
    lines.push("");
    lines.push(
      `✓ proven within bounds: every run with ${[...bounds].join(" / ")} explored; the other verdicts rest on runs drawn at random`,
    );
  }
  if (differing.length > 0) {
    lines.push("");
    lines.push(`* differs from the protocol's expected verdict (${differing.length}):`);
    for (const d of differing) lines.push(`  ${d}`);
  }
  return `${lines.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------------------
// How a verdict was reached (honest words: a proof within bounds, or runs drawn at random).

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "≤ 2 preemptions, ≤ 1 event, ≤ 0 branch choices, 4 CPUs", and the total when it is lower than their sum. */
export function boundsText(b: Bounds, cpus: number, total?: number): string {
  const all =
    total !== undefined && total < b.preemptions + b.events + b.branches ? `, ≤ ${total} of them in all` : "";
  return `≤ ${b.preemptions} preemption${b.preemptions === 1 ? "" : "s"}, ≤ ${b.events} event${b.events === 1 ? "" : "s"}, ≤ ${b.branches} branch choice${b.branches === 1 ? "" : "s"}${all}, ${cpus} CPUs`;
}

/** Whether the exhaustive part of a verdict proved every property that is not violated. */
export function proven(v: Verdict): boolean {
  if (v.kind !== "holds" && v.kind !== "violated") return false;
  return v.search?.exhaustive?.complete === true;
}

/**
 * How a "holds" was obtained, in the words of the verdict: `holds (exhaustive: all N executions with
 * ≤ K preemptions, ...)`, `holds (random: no violation in N runs; not exhaustive)`, or the portfolio's
 * two parts; `incomplete (...)` when an exhaustive search stopped before its end with nothing else.
 */
export function holdsText(v: Verdict): string {
  if (v.kind !== "holds" && v.kind !== "violated" && v.kind !== "incomplete") return "";
  const s = v.search;
  if (!s) return `holds (no violation in ${plural(v.runs, "run")}; not exhaustive)`;
  const parts: string[] = [];
  const ex = s.exhaustive;
  if (ex) {
    if (ex.complete)
      parts.push(
        `exhaustive: all ${plural(ex.executions, "execution")} with ${boundsText(ex.bounds, ex.cpus, ex.total)}`,
      );
    else
      parts.push(
        `exhaustive: stopped after ${plural(ex.executions, "execution")} within ${boundsText(ex.bounds, ex.cpus, ex.total)}; ${ex.level >= 0 ? `every run with ≤ ${plural(ex.level, "choice")} in total explored` : "not one level explored to its end"}`,
      );
  }
  if (s.sampled && s.sampled.runs > 0) {
    const names = s.sampled.strategies.map((n) => (n === "pct" ? "PCT" : n)).join(" and ");
    parts.push(
      `${names}: no violation in ${plural(s.sampled.runs, "run")}${ex ? " more" : ""}; not exhaustive`,
    );
  }
  const word = ex && !ex.complete && !(s.sampled && s.sampled.runs > 0) ? "incomplete" : "holds";
  return `${word} (${parts.join("; ")})`;
}

/** What a counterexample is: how it was found, and for an exhaustive one, whether it is minimal. */
export function foundText(p: PropertyResult): string {
  if (p.how === "exhaustive" && p.cost) {
    const { preemptions, events, branches } = p.cost;
    const total = preemptions + events + branches;
    const of = `${plural(preemptions, "preemption")}, ${plural(events, "event")}, ${plural(branches, "branch choice")}`;
    return p.minimal
      ? `found by exhaustive search, minimal: ${plural(total, "choice")} (${of}); no run with fewer within the bounds violates it`
      : `found by exhaustive search with ${plural(total, "choice")} (${of})`;
  }
  if (p.how === "example") return "found by an example tape";
  const by = p.how === "pct" ? "PCT" : p.how === "bounded" ? "preemption-bounded search" : "random search";
  return `found by ${by}, shrunk`;
}

/** The coverage witness: what the runs reached, and what they never reached. */
export function coverageLines(v: Verdict): string[] {
  if ((v.kind !== "holds" && v.kind !== "violated" && v.kind !== "incomplete") || !v.search) return [];
  const { coverage, coverageRuns } = v.search;
  const reached = SITUATIONS.map((s, i) => ({ text: s.text, n: coverage[i] ?? 0 })).filter((x) => x.n > 0);
  const lines = [`coverage over ${plural(coverageRuns, "run")}:`];
  for (const r of reached) lines.push(`  reached in ${plural(r.n, "run")}: ${r.text}`);
  const never = unreached(coverage);
  for (const t of never) lines.push(`  never reached: ${t}`);
  return lines;
}
