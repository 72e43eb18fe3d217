// The protocol × scenario verdict matrix of SPEC §10, and how each verdict was reached (honest words:
// a proof within bounds, or runs drawn at random).
import pc from "picocolors";
import type { Expected } from "../model/types.js";
import type { PropertyResult, Verdict } from "../properties/check.js";
import { SITUATIONS, unreached } from "../properties/coverage.js";
import { type Bounds, spentOf } from "../workers/strategies/search-tree.js";

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
    return { text: `${verdictCell(v)}${provenMark(v)}${differs ? " *" : ""}`, differs };
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
        : text.startsWith("holds")
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
    const bounds = new Set(provenCells.map(verdictBoundsText));
    lines.push("");
    lines.push(`✓ proven within bounds: every run with ${[...bounds].join(" / ")} explored`);
  }
  const partly = verdicts.filter((v) => !proven(v) && provenMark(v) !== "");
  if (partly.length > 0) {
    const budgets = new Set(
      partly.map((v) =>
        v.kind !== "refused" && v.kind !== "error" ? (v.search?.exhaustive?.maxExecutions ?? 0) : 0,
      ),
    );
    if (provenCells.length === 0) lines.push("");
    lines.push(
      `✓≤L proven only for every run with ≤ L choices in all: the next level did not fit its budget of ${[...budgets].join(" / ")} executions (--max-executions raises it, --min-bound demands it)`,
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

/** What the bounds' words need of a check beyond its bounds: the machine, and what the search met. */
export interface BoundsContext {
  /** The external NMIs and machine checks a run may have (the events are drawn from them). */
  nmis: number;
  mces: number;
  fetch: string;
  /** Choice points met inside steps, by kind (absent: not known, as in an older shard file). */
  valuePoints?: { branch: number; stale: number };
}

/**
 * Every dimension of nondeterminism a search bounds, with its bound: "≤ 1 preemption, ≤ 1 event (of
 * 3 NMIs, 2 #MCs), branch directions: none met, stale values: none (bytewise fetch), 4 CPUs". A
 * dimension whose bound is 0 is named with what it left out, never dropped: the choice points of that
 * kind the search met and took only the default at.
 */
export function boundsText(b: Bounds, cpus: number, total?: number, ctx?: BoundsContext): string {
  const all = total !== undefined && total < spentOf(b) ? `, ≤ ${total} of them in all` : "";
  const events = ctx ? ` (of ${plural(ctx.nmis, "NMI")}, ${plural(ctx.mces, "#MC")})` : "";
  const points = (met: number | undefined, kind: string) =>
    met === undefined ? "" : met === 0 ? "none met" : `${plural(met, `${kind} point`)} met`;
  const dimension = (bound: number, name: string, met: number | undefined, kind: string, option: string) => {
    const seen = points(met, kind);
    if (met === 0) return `${name}: ${seen}`;
    if (bound === 0)
      return `${name}: the default only${seen ? ` (${seen}; ${option} explores the others)` : ""}`;
    return `≤ ${plural(bound, name.replace(/s$/, ""))}${seen ? ` (${seen})` : ""}`;
  };
  const branch = dimension(b.branches, "branch directions", ctx?.valuePoints?.branch, "branch", "--branches");
  const stale =
    ctx && ctx.fetch !== "stale"
      ? `stale values: none (${ctx.fetch} fetch)`
      : dimension(b.stale, "stale values", ctx?.valuePoints?.stale, "stale-fetch", "--stale");
  return `≤ ${plural(b.preemptions, "preemption")}, ≤ ${plural(b.events, "event")}${events}, ${branch}, ${stale}${all}, ${cpus} CPUs`;
}

/** The bounds' words of a verdict's exhaustive part. */
export function verdictBoundsText(v: Verdict): string {
  if (v.kind !== "holds" && v.kind !== "violated" && v.kind !== "incomplete") return "";
  const ex = v.search?.exhaustive;
  if (!ex) return "";
  const hw = v.config.hardware;
  return boundsText(ex.bounds, ex.cpus, ex.total, {
    nmis: hw.nmis,
    mces: hw.mces,
    fetch: hw.fetch,
    valuePoints: ex.valuePoints,
  });
}

/** Whether the exhaustive part of a verdict proved every property that is not violated. */
export function proven(v: Verdict): boolean {
  if (v.kind !== "holds" && v.kind !== "violated") return false;
  return v.search?.exhaustive?.complete === true;
}

/**
 * The matrix's mark of how far a verdict's exhaustive part went: " ✓" proven within its bounds,
 * " ✓≤L" proven only for every run with at most L choices in all (the search stopped at its budget
 * in the next level), "" nothing proven.
 */
export function provenMark(v: Verdict): string {
  if (proven(v)) return " ✓";
  if (v.kind !== "holds" && v.kind !== "violated" && v.kind !== "incomplete") return "";
  const level = v.search?.exhaustive?.level ?? -1;
  return level >= 1 ? ` ✓≤${level}` : "";
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
    const within = `${verdictBoundsText(v)}${ex.cacheFull ? "; the state cache was full (--max-memory) and later states were explored without being remembered" : ""}`;
    if (ex.complete) parts.push(`exhaustive: all ${plural(ex.executions, "execution")} with ${within}`);
    else
      parts.push(
        `exhaustive: stopped after ${plural(ex.executions, "execution")} of ${ex.maxExecutions ?? "its"} within ${within}; ${ex.level >= 0 ? `every run with ≤ ${plural(ex.level, "choice")} in all explored` : "not one level explored to its end"}`,
      );
  }
  if (s.sampled && s.sampled.runs > 0) {
    const names = s.sampled.strategies.map((n) => (n === "pct" ? "PCT" : n)).join(" and ");
    parts.push(
      `${names}: no violation in ${plural(s.sampled.runs, "run")}${ex ? " more" : ""}; not exhaustive`,
    );
  }
  const word =
    v.kind === "incomplete" || (ex && !ex.complete && !(s.sampled && s.sampled.runs > 0))
      ? "incomplete"
      : "holds";
  return `${word} (${parts.join("; ")})`;
}

/** What a counterexample is: how it was found, and for an exhaustive one, whether it is minimal. */
export function foundText(p: PropertyResult): string {
  if (p.how === "exhaustive" && p.cost) {
    const { preemptions, events, branches, stale } = p.cost;
    const total = spentOf(p.cost);
    const of = [
      plural(preemptions, "preemption"),
      plural(events, "event"),
      ...(branches > 0 ? [plural(branches, "branch direction")] : []),
      ...((stale ?? 0) > 0 ? [plural(stale, "stale value")] : []),
    ].join(", ");
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
