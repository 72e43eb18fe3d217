// The model of a replayed counterexample (SPEC §7, §8), built once from a re-run of its tape: the
// violations, a per-CPU timeline of the run (steps, the contexts each CPU ran in with their IST stack,
// events, scheduler switches, folded CPU-private stretches), every instruction fetched at a patch site
// with the bytes it saw and each byte's writer, the writes to the sites, and the replay token. It is
// plain data (JSON): the terminal renderer prints it and the HTML page embeds it and draws it, so the
// two can never disagree.
import { CONTEXT_NAMES, ContextKind, CrashKind, Ev, EventSource } from "../model/events.js";
import { Mark } from "../model/routine.js";
import type { MachineSpec } from "../model/types.js";
import { hex } from "../model/x86.js";
import { type LogRecord, PROPERTIES, type PropertyId, type Violation } from "../properties/invariants.js";
import { encodeToken } from "../properties/token.js";
import {
  classify,
  collectInstructions,
  type FetchedByte,
  type Instruction,
  isRepeat,
  provenance,
  siteOf,
  writeIndex,
} from "./instructions.js";
import { type Replay, STATUS_NAMES } from "./replay.js";

/** A context a CPU is in beyond its base level: an event handler, on the IST stack it was delivered on. */
export interface ContextFrame {
  /** "NMI", "#MC", "#BP", "IRQ" (CONTEXT_NAMES). */
  kind: string;
  /** The IST stack the handler runs on (-1: none, the current stack). */
  ist: number;
}

/** What a piece of a timeline row says. */
export type PartTag =
  | "send"
  | "fetch"
  | "insn"
  | "site"
  | "write"
  | "arrive"
  | "enter"
  | "iret"
  | "serialize"
  | "store"
  | "mark"
  | "clobber"
  | "crash"
  | "flag"
  | "fold";

/** One thing a CPU did in a step; `warn` is a clause that follows `text` and is worth a warning colour. */
export interface RowPart {
  tag: PartTag;
  text: string;
  warn?: string;
}

export type RowKind = "event" | "site" | "plain" | "fold" | "end" | "bad";

/** One row of the timeline: what one CPU did in one step (or a folded stretch of its steps). */
export interface TimelineRow {
  step: number;
  /** -1: the run's end (no CPU). */
  cpu: number;
  kind: RowKind;
  /** The scheduler switched to this CPU at or before this step (since its previous shown row). */
  switched: boolean;
  /** The context named in front of the row ("NMI", ...), or null at base level and on folded rows. */
  context: string | null;
  /** The CPU's contexts when the row starts and when it ends, outermost first (base level: empty). */
  contexts: ContextFrame[];
  contextsAfter: ContextFrame[];
  /** An event happens in the row: an arrival, a handler entered, an IRET, an IST clobber or a crash. */
  event: boolean;
  parts: RowPart[];
  /** A folded row: the rows it stands for. */
  folded?: TimelineRow[];
}

/** A byte of a write (one store may write several): the index in `writes` and where it sits. */
export interface SiteWrite {
  /** The write's number in this model (0, 1, ...), in log order. */
  index: number;
  cpu: number;
  step: number;
  /** Size of the store in bytes. */
  size: number;
  bytes: Array<{
    address: number;
    symbol: string;
    value: number;
    /** Per-address write number (`write #n`), as the machine counts them. */
    seq: number;
    /** "new", "int3", "old value" or "written", by comparison with the site's old and new bytes. */
    label: string;
  }>;
}

/** A byte fetched at a patch site and where it came from. */
export interface FetchedSiteByte {
  address: number;
  symbol: string;
  value: number;
  /** "old", "new", "int3", "old value", "written", "stale" */
  label: string;
  detail: string;
  fetchStep: number;
  /** The write that produced the byte (null: as the image was loaded). */
  writer: { cpu: number; step: number; seq: number; write: number } | null;
  /** For a torn instruction: what the old and new code have at this byte instead. */
  note: string;
}

export type FetchClass = "old" | "new" | "int3" | "torn" | "crash";

/** An instruction fetched at a patch site. */
export interface SiteFetch {
  cpu: number;
  firstStep: number;
  lastStep: number;
  context: string | null;
  address: number;
  symbol: string;
  text: string;
  values: number[];
  cls: FetchClass;
  /** Old code with every byte as loaded: says nothing about the patch by itself. */
  untouched: boolean;
  bytes: FetchedSiteByte[];
  /** For a torn instruction: the old and new instructions that start at its address. */
  expected?: { old: string; new: string };
}

export interface SiteModel {
  address: number;
  symbol: string;
  oldBytes: number[];
  newBytes: number[];
  /** `symbol: instruction` of the old and the new code. */
  oldCode: string[];
  newCode: string[];
  /** Symbol of each byte of the site. */
  byteSymbols: string[];
}

export interface ViolationModel extends Violation {
  name: string;
  /** The one-line sentence of the report: `P1 atomic-patch (torn-fetch) at step 262: …`. */
  line: string;
  /**
   * The timeline row of the violation: its CPU's row at its step, or the last row before it (of its
   * CPU if it has one); `folded` is the index among a folded row's rows when it is one of them.
   */
  at: { row: number; folded?: number } | null;
}

/** Everything a report of a replayed counterexample shows. */
export interface ReportModel {
  protocol: string;
  scenario: string;
  /** The hardware, as the report's first line gives it. */
  settings: string;
  cpus: number;
  tapeLength: number;
  tapeNonZero: number;
  lastStep: number;
  status: string;
  /** Set when the run itself failed. */
  error?: string;
  /** The property judged alone, if any. */
  property?: PropertyId;
  propertyName?: string;
  violations: ViolationModel[];
  /** Whether the CPU of every step is known (silent steps included). */
  actorsKnown: boolean;
  tapeEndStep: number;
  timeline: TimelineRow[];
  sites: SiteModel[];
  writes: SiteWrite[];
  fetches: SiteFetch[];
  token: string;
  replayCommand: string;
}

const PROPERTY_NAME = new Map<string, string>(PROPERTIES.map((p) => [p.id, p.name]));

/** One line per violation: `P1 atomic-patch (torn-fetch) at step 262: …`. */
export function violationLine(v: Violation): string {
  const at = v.step >= 0 ? ` at step ${v.step}` : "";
  return `${v.property} ${PROPERTY_NAME.get(v.property) ?? ""} (${v.kind})${at}: ${v.message}`;
}

/**
 * The command that replays a token; `replayArguments`: what the token cannot be replayed without, the
 * --module files that define its protocol or scenario and the options that built a scenario from an
 * ELF file (`--elf FILE --site ...`).
 */
export function replayCommand(token: string, replayArguments?: string): string {
  return `replay: npx livepatch-check replay ${token}${replayArguments ? ` ${replayArguments}` : ""}`;
}

/** The model of the report of a replay (every property judged, or only `property`). */
export function buildReportModel(rep: Replay, property?: PropertyId, replayArguments?: string): ReportModel {
  const hw = rep.config.hardware;
  const token = encodeToken(rep.config, rep.tape);
  const insns = collectInstructions(rep.spec, rep.log);
  const writes = writeIndex(rep.log);
  const site = siteModel(rep, insns, writes);
  const timeline = timelineOf(rep, insns, writes);
  return {
    protocol: rep.config.protocol,
    scenario: rep.config.scenario,
    settings: `cpus=${hw.cpus}, fetch=${hw.fetch}, nmis=${hw.nmis}, mces=${hw.mces}, step bound ${hw.stepBound}, os=${hw.os ?? rep.spec.protocol.os}${hw.mces > 0 ? `, #MC ${hw.mceDelivery ?? "broadcast"}` : ""}${hw.stiShadow ? ", STI shadow holds NMIs" : ""}`,
    cpus: hw.cpus,
    tapeLength: rep.tape.length,
    tapeNonZero: rep.tape.filter((v) => v !== 0).length,
    lastStep: rep.log.length > 0 ? rep.log[rep.log.length - 1].step : 0,
    status: STATUS_NAMES[rep.status] ?? String(rep.status),
    ...(rep.error !== undefined ? { error: rep.error } : {}),
    ...(property ? { property, propertyName: PROPERTY_NAME.get(property) } : {}),
    violations: rep.violations.map((v) => ({
      ...v,
      name: PROPERTY_NAME.get(v.property) ?? "",
      line: violationLine(v),
      at: rowOf(timeline, v),
    })),
    actorsKnown: rep.actors !== null,
    tapeEndStep: rep.tapeEndStep,
    timeline,
    ...site,
    token,
    replayCommand: replayCommand(token, replayArguments),
  };
}

/** Where a violation shows in the timeline (see ViolationModel.at). */
function rowOf(timeline: TimelineRow[], v: Violation): ViolationModel["at"] {
  let best: ViolationModel["at"] = null;
  let bestOwn: ViolationModel["at"] = null;
  const step = v.step >= 0 ? v.step : Number.POSITIVE_INFINITY;
  timeline.forEach((row, i) => {
    const rows = row.folded ?? [row];
    rows.forEach((r, j) => {
      if (r.step > step) return;
      const at = row.folded ? { row: i, folded: j } : { row: i };
      best = at;
      if (r.cpu === v.cpu) bestOwn = at;
    });
  });
  return bestOwn ?? best ?? (timeline.length > 0 ? { row: 0 } : null);
}

// ---------------------------------------------------------------------------------------------------
// The timeline.

const MARK_TEXT: Record<number, string> = {
  [Mark.NmiService]: "real NMI service starts",
  [Mark.PatchBegin]: "patch begins",
  [Mark.PatchEnd]: "patch ends",
  [Mark.ProbeBegin]: "probe: calls the patched function",
  [Mark.ProbeEnd]: "probe returns",
  [Mark.NmiSwallowed]: "NMI swallowed by the mask callback",
  [Mark.NmiRecorded]: "NMI recorded for replay",
  [Mark.BpSite]: "#BP handler: the int3 is at a patch site",
  [Mark.RepeatNmi]: "nested-NMI guard: the NMI handler runs again",
  [Mark.McService]: "#MC service starts",
  [Mark.Rendezvous]: "rendezvous",
  [Mark.EmbeddedBreakpoint]: 'do_int3: "Hit embedded breakpoint", resumes after the int3',
  [Mark.Int3Removed]: "#BP handler: the int3 was removed after the trap; backs up to run what is there",
  [Mark.KprobeHit]: "kprobe_int3_handler: int3 at the probe, continues at",
  [Mark.GracePeriodBegin]: "synchronize_rcu_tasks() begins",
  [Mark.GracePeriodEnd]: "grace period ends: every other CPU passed a quiescent point",
};

const SERIALIZE_TEXT = ["cpuid (serializing)", "serialize", "sync_core (iret-to-self, serializing)"];

interface Cell {
  step: number;
  cpu: number;
  records: LogRecord[];
  /** Plain fetches and instructions outside patch sites: may be folded into a "… N steps …" row. */
  plain: boolean;
  /** The scheduler switched to this CPU at or before this step (since its previous shown row). */
  switched: boolean;
}

interface StackFrame {
  kind: ContextKind;
  ist: number;
  /** The CPU has run real code in this context (so an event interrupts it at an address). */
  real: boolean;
  depth: number;
}

const frames = (stack: StackFrame[]): ContextFrame[] =>
  stack.slice(1).map((f) => ({ kind: CONTEXT_NAMES[f.kind], ist: f.ist }));

function timelineOf(
  rep: Replay,
  insns: Map<LogRecord, Instruction>,
  writes: Map<string, LogRecord>,
): TimelineRow[] {
  const { spec, log } = rep;
  const n = spec.config.hardware.cpus;
  const sym = (a: number) => spec.image.symbolize(a);

  // Group records into cells (step, cpu), in log order.
  const cells: Cell[] = [];
  const cellAt = new Map<string, Cell>();
  const cellFor = (step: number, cpu: number): Cell => {
    const key = `${step}:${cpu}`;
    let cell = cellAt.get(key);
    if (!cell) {
      cell = { step, cpu, records: [], plain: true, switched: false };
      cellAt.set(key, cell);
      cells.push(cell);
    }
    return cell;
  };
  for (const r of log) {
    const arrivalFromIpi = (r.kind === Ev.NmiArrive && r.a === EventSource.Ipi) || r.kind === Ev.IpiArrive;
    const actor = rep.actors && r.step < rep.actors.length ? rep.actors[r.step] : -1;
    // The sender of an IPI logs nothing itself: give it a cell naming what it sent.
    if (arrivalFromIpi && actor >= 0 && actor !== r.cpu) cellFor(r.step, actor).plain = false;
    const cell = cellFor(r.step, r.cpu);
    cell.records.push(r);
    const insn = insns.get(r);
    if (!((r.kind === Ev.Fetch || r.kind === Ev.Exec) && insn && !insn.atSite)) cell.plain = false;
  }
  cells.sort((a, b) => a.step - b.step || (a.cpu < 0 ? 1 : b.cpu < 0 ? -1 : 0));
  const ipiArrivals = new Map<number, LogRecord[]>();
  for (const r of log) {
    if ((r.kind === Ev.NmiArrive && r.a === EventSource.Ipi) || r.kind === Ev.IpiArrive)
      ipiArrivals.set(r.step, [...(ipiArrivals.get(r.step) ?? []), r]);
  }

  // Scheduler switches: a cell is marked when its CPU was not the one that took the previous step.
  if (rep.actors) {
    const actors = rep.actors;
    // Walk cells in order, tracking each CPU's switch steps between its shown cells.
    const switches: number[][] = Array.from({ length: n }, () => []);
    let prevActor = -1;
    for (let s = 0; s < actors.length; s++) {
      const a = actors[s];
      if (a < 0) continue;
      if (prevActor >= 0 && a !== prevActor) switches[a].push(s);
      prevActor = a;
    }
    // Cells come in step order, so one cursor per CPU walks its switch steps once.
    const cursor = new Array<number>(n).fill(0);
    for (const cell of cells) {
      if (cell.cpu < 0) continue;
      const list = switches[cell.cpu];
      let i = cursor[cell.cpu];
      while (i < list.length && list[i] <= cell.step) i++;
      cell.switched = i > cursor[cell.cpu] && actors[cell.step] === cell.cpu;
      cursor[cell.cpu] = i;
    }
  }

  const compact = compactSiteFetches(insns, cells);

  // Per-CPU context stack, to name the context each cell runs in and where an event interrupted.
  const stack: StackFrame[][] = Array.from({ length: n }, () => [
    { kind: ContextKind.Base, ist: -1, real: false, depth: 0 },
  ]);
  const ctxTop = (cpu: number) => stack[cpu][stack[cpu].length - 1];

  const rows: TimelineRow[] = [];
  for (const cell of cells) {
    if (cell.cpu < 0) {
      for (const r of cell.records)
        if (r.kind === Ev.End)
          rows.push({
            step: r.step,
            cpu: -1,
            kind: "end",
            switched: false,
            context: null,
            contexts: [],
            contextsAfter: [],
            event: false,
            parts: [{ tag: "flag", text: `run ends: ${STATUS_NAMES[r.a] ?? r.a}` }],
          });
      continue;
    }
    const parts: RowPart[] = [];
    const add = (tag: PartTag, text: string, warn?: string) =>
      parts.push(warn === undefined ? { tag, text } : { tag, text, warn });
    let kind: RowKind = cell.plain ? "plain" : "event";
    const topKind = ctxTop(cell.cpu).kind;
    const context = topKind === ContextKind.Base ? null : CONTEXT_NAMES[topKind];
    const contexts = frames(stack[cell.cpu]);
    let event = false;
    const where = (rip: number) => {
      const t = ctxTop(cell.cpu);
      return t.real ? `at ${sym(rip)}` : "between routine steps";
    };
    // What this CPU sent to others in this step.
    if (rep.actors?.[cell.step] === cell.cpu) {
      const sent = (ipiArrivals.get(cell.step) ?? []).filter((r) => r.cpu !== cell.cpu);
      const nmiTargets = sent.filter((r) => r.kind === Ev.NmiArrive).map((r) => r.cpu);
      if (nmiTargets.length > 0) add("send", `sends NMI IPI to CPU ${nmiTargets.join(",")}`);
      const vectors = new Map<number, number[]>();
      for (const r of sent.filter((r) => r.kind === Ev.IpiArrive))
        vectors.set(r.a, [...(vectors.get(r.a) ?? []), r.cpu]);
      for (const [v, targets] of vectors) add("send", `sends IPI vector ${v} to CPU ${targets.join(",")}`);
    }
    const codeWrites: LogRecord[] = [];
    for (const r of cell.records) {
      const insn = insns.get(r);
      switch (r.kind) {
        case Ev.Fetch: {
          const t = ctxTop(cell.cpu);
          if (!t.real) {
            t.real = true;
            t.depth = 0;
          }
          if (!insn?.atSite) break;
          kind = "site";
          if (compact.has(insn)) break;
          // A byte of a site instruction fetched in its own step: the window where a store can land.
          const isLast = insn.bytes[insn.bytes.length - 1]?.record === r;
          if (isLast && cell.records.some((x) => x.kind === Ev.Exec || x.kind === Ev.Crash)) break;
          const fb = insn.bytes.find((b) => b.record === r) as FetchedByte;
          const p = provenance(spec, writes, fb);
          add("fetch", `fetch ${sym(r.addr)} = ${hex([r.a])} (${p.label})`);
          break;
        }
        case Ev.Exec: {
          if (!insn) break;
          const t = ctxTop(cell.cpu);
          if (/^call\b/.test(insn.text)) t.depth++;
          else if (/^ret/.test(insn.text)) {
            if (t.depth === 0) t.real = false;
            else t.depth--;
          }
          if (insn.atSite) {
            kind = "site";
            const cls = classify(spec, insn);
            const written = insn.bytes.filter((b) => b.writer >= 0).length;
            const note =
              cls === "old" && written === 0 ? "old" : cls === "new" ? "new" : cls === "int3" ? "int3" : cls;
            const span = compact.has(insn) ? ` (fetched in steps ${insn.firstStep}–${insn.lastStep})` : "";
            add("site", `${sym(insn.address)}  ${insn.text}  ◆ site, ${note}${span}`);
          } else add("insn", `${sym(insn.address)}  ${insn.text}`);
          break;
        }
        case Ev.CodeWrite:
          codeWrites.push(r);
          break;
        case Ev.NmiArrive: {
          event = true;
          const from =
            r.a === EventSource.External
              ? "external"
              : rep.actors && rep.actors[r.step] >= 0
                ? rep.actors[r.step] === r.cpu
                  ? "self-NMI"
                  : `NMI IPI from CPU ${rep.actors[r.step]}`
                : "NMI IPI";
          add(
            "arrive",
            `⚡ NMI arrives (${from})${r.b === 1 ? ", coalesced into the pending one (H2)" : ""}`,
          );
          break;
        }
        case Ev.NmiDeliver:
          event = true;
          add(
            "enter",
            `→ NMI handler entered on IST ${r.a}, ${where(r.addr)}${r.b === 1 ? ", nested under a live NMI frame" : ""}`,
          );
          stack[cell.cpu].push({ kind: ContextKind.Nmi, ist: r.a, real: false, depth: 0 });
          break;
        case Ev.NmiNested:
          event = true;
          add("arrive", "⚡ nested NMI: the guard makes the outer handler repeat");
          break;
        case Ev.McArrive:
          event = true;
          add("arrive", "⚡ #MC arrives");
          break;
        case Ev.McDeliver:
          event = true;
          add("enter", `→ #MC handler entered on IST ${r.a}, ${where(r.addr)}`);
          stack[cell.cpu].push({ kind: ContextKind.Mce, ist: r.a, real: false, depth: 0 });
          break;
        case Ev.BpDeliver:
          event = true;
          add(
            "enter",
            r.addr === -1
              ? "→ #BP handler (the routine's own int3)"
              : `→ #BP handler for the int3 at ${sym(r.addr)}`,
          );
          stack[cell.cpu].push({ kind: ContextKind.Bp, ist: -1, real: false, depth: 0 });
          break;
        case Ev.IpiArrive: {
          event = true;
          const a = rep.actors?.[r.step] ?? -1;
          add(
            "arrive",
            `⚡ IPI vector ${r.a} arrives${a >= 0 ? (a === r.cpu ? " (self)" : ` from CPU ${a}`) : ""}`,
          );
          break;
        }
        case Ev.IrqDeliver:
          event = true;
          add("enter", `→ IPI handler (vector ${r.a}) entered, ${where(r.addr)}`);
          stack[cell.cpu].push({ kind: ContextKind.Irq, ist: -1, real: false, depth: 0 });
          break;
        case Ev.Iret: {
          event = true;
          const what = `← IRET from the ${CONTEXT_NAMES[r.a]} handler: `;
          // H3: an IRET unblocks NMIs even while an NMI frame is still live (SDM §6.7.1).
          if (r.b === 1 && r.c === 1)
            add("iret", what, "unblocks NMIs while an NMI frame is still live (H3)");
          else add("iret", `${what}${r.b === 1 ? "unblocks NMIs" : "NMI blocking unchanged"}`);
          if (
            !(r.a === ContextKind.Nmi && r.b === 1 && r.c === 1 && isRepeat(log, r)) &&
            stack[cell.cpu].length > 1
          )
            stack[cell.cpu].pop();
          break;
        }
        case Ev.Serialize:
          add("serialize", SERIALIZE_TEXT[r.a] ?? "serializes");
          break;
        case Ev.Store:
          add("store", `${spec.words.name(r.addr)} := ${r.a}`);
          break;
        case Ev.Mark:
          add("mark", `• ${MARK_TEXT[r.a] ?? `mark ${r.a}`}${markValue(spec, r)}`);
          break;
        case Ev.IstClobber:
          event = true;
          kind = "bad";
          add(
            "clobber",
            r.c === ContextKind.Mce
              ? `‼ #MC delivered on IST ${r.a}, which holds the live frame of the previous #MC (MCIP was already cleared): a hardware hazard`
              : `‼ ${CONTEXT_NAMES[r.c]} delivered on IST ${r.a}, which holds a live NMI frame (NMIs were unblocked by ${r.b === ContextKind.Base ? "the OS's own IRET" : `the ${CONTEXT_NAMES[r.b]} handler's IRET`})`,
          );
          break;
        case Ev.Crash:
          event = true;
          kind = "bad";
          add("crash", crashText(spec, r, insn));
          break;
        case Ev.Cli:
          add("flag", "cli");
          break;
        case Ev.Sti:
          add("flag", "sti");
          break;
        case Ev.McipClear:
          add("flag", "clears MCIP");
          break;
      }
    }
    if (codeWrites.length > 0) {
      kind = kind === "bad" ? kind : "site";
      const first = codeWrites[0];
      const bytes = codeWrites.map((w) => w.a);
      parts.unshift({
        tag: "write",
        text: `✎ writes ${hex(bytes)} at ${sym(first.addr)} (${first.c}-byte store, write #${first.b})`,
      });
    }
    if (parts.length === 0) continue;
    rows.push({
      step: cell.step,
      cpu: cell.cpu,
      kind,
      switched: cell.switched,
      context,
      contexts,
      contextsAfter: frames(stack[cell.cpu]),
      event,
      parts,
    });
  }
  return foldPlainRows(rows, spec, cells, insns);
}

/** A mark's value: the site address for BpSite, otherwise the number (if any). */
function markValue(spec: MachineSpec, r: LogRecord): string {
  if (r.b === 0) return "";
  const addressed = [Mark.BpSite, Mark.EmbeddedBreakpoint, Mark.Int3Removed, Mark.KprobeHit];
  if (addressed.includes(r.a) && spec.image.functionAt(r.b)) return ` (${spec.image.symbolize(r.b)})`;
  return ` (${r.b})`;
}

/**
 * Site instructions whose byte-by-byte fetch needs no row per byte: every byte was still the image's
 * and no other CPU did anything between the first byte and the last, so nothing could have landed in
 * between. Their one row names the steps. Any other site fetch keeps a row per byte.
 */
function compactSiteFetches(insns: Map<LogRecord, Instruction>, cells: Cell[]): Set<Instruction> {
  const out = new Set<Instruction>();
  const steps = cells.map((c) => c.step);
  for (const insn of new Set(insns.values())) {
    if (!insn.atSite || insn.crash || insn.bytes.length < 2 || insn.bytes.some((b) => b.writer >= 0))
      continue;
    // First cell after the instruction's first byte (cells are sorted by step).
    let lo = 0;
    let hi = steps.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (steps[mid] <= insn.firstStep) lo = mid + 1;
      else hi = mid;
    }
    let quiet = true;
    for (let i = lo; i < cells.length && cells[i].step <= insn.lastStep; i++) {
      if (cells[i].cpu !== insn.cpu) {
        quiet = false;
        break;
      }
    }
    if (quiet) out.add(insn);
  }
  return out;
}

function crashText(spec: MachineSpec, r: LogRecord, insn: Instruction | undefined): string {
  const sym = (a: number) => spec.image.symbolize(a);
  switch (r.a) {
    case CrashKind.Torn:
      return `✗ TORN FETCH at ${sym(r.addr)}: decoded \`${insn?.text ?? "?"}\` (${insn ? hex(insn.bytes.map((b) => b.value)) : "?"}), neither old nor new code`;
    case CrashKind.InvalidOpcode:
      return `✗ #UD at ${sym(r.addr)}: crash`;
    case CrashKind.Shutdown:
      return `✗ a second #MC while MCIP is set at ${sym(r.addr)}: shutdown (a hardware hazard)`;
    case CrashKind.UnhandledBp:
      return `✗ unhandled int3 at ${sym(r.addr)}: crash`;
    case CrashKind.OutOfCode:
      return `✗ fetch at 0x${r.addr.toString(16)}, where no code is placed: crash`;
    default:
      return `✗ crash (${r.a}) at ${sym(r.addr)}`;
  }
}

/** Runs shorter than this stay as they are; longer ones become one "… N steps in f …" row. */
export const FOLD_MIN = 4;

/**
 * Folds each CPU's runs of plain rows (fetches and instructions outside patch sites). A run ends at any
 * row that is shown, whoever's it is, so a folded row never hides the order of anything shown.
 */
function foldPlainRows(
  rows: TimelineRow[],
  spec: MachineSpec,
  cells: Cell[],
  insns: Map<LogRecord, Instruction>,
): TimelineRow[] {
  const fnsOfStep = new Map<string, string[]>();
  for (const cell of cells) {
    if (!cell.plain) continue;
    const names: string[] = [];
    for (const r of cell.records) {
      const insn = insns.get(r);
      const fn = insn ? spec.image.functionAt(insn.address)?.name : undefined;
      if (fn && !names.includes(fn)) names.push(fn);
    }
    fnsOfStep.set(`${cell.step}:${cell.cpu}`, names);
  }
  const out: Array<TimelineRow | null> = [];
  const open = new Map<number, number[]>(); // cpu -> indices into `out` of its current run
  const close = (cpu: number) => {
    const run = open.get(cpu);
    open.delete(cpu);
    if (!run || run.length < FOLD_MIN) return;
    const hidden = run.map((i) => out[i] as TimelineRow);
    const first = hidden[0];
    const last = hidden[hidden.length - 1];
    const fns: string[] = [];
    for (const row of hidden) {
      for (const f of fnsOfStep.get(`${row.step}:${row.cpu}`) ?? []) if (!fns.includes(f)) fns.push(f);
    }
    const where =
      fns.length > 3 ? `${fns.slice(0, 3).join(", ")} and ${fns.length - 3} more` : fns.join(", ");
    out[run[0]] = {
      step: first.step,
      cpu: cpu,
      kind: "fold",
      switched: hidden.some((row) => row.switched),
      context: null,
      contexts: first.contexts,
      contextsAfter: last.contextsAfter,
      event: false,
      parts: [
        {
          tag: "fold",
          text: `… ${run.length} fetch steps (${first.step}–${last.step}) in ${where || "real code"} …`,
        },
      ],
      folded: hidden,
    };
    for (const i of run.slice(1)) out[i] = null;
  };
  for (const row of rows) {
    if (row.kind === "plain") {
      const run = open.get(row.cpu) ?? [];
      run.push(out.length);
      open.set(row.cpu, run);
      out.push(row);
      continue;
    }
    for (const cpu of [...open.keys()]) close(cpu);
    out.push(row);
  }
  for (const cpu of [...open.keys()]) close(cpu);
  return out.filter((r): r is TimelineRow => r !== null);
}

// ---------------------------------------------------------------------------------------------------
// The patch sites: their code, the writes to them, and every instruction fetched there.

function siteModel(
  rep: Replay,
  insns: Map<LogRecord, Instruction>,
  writes: Map<string, LogRecord>,
): { sites: SiteModel[]; writes: SiteWrite[]; fetches: SiteFetch[] } {
  const { spec, log } = rep;
  const sym = (a: number) => spec.image.symbolize(a);
  const sites: SiteModel[] = spec.sites.map((site) => {
    const end = site.address + site.newBytes.length;
    const oldCode: string[] = [];
    const newCode: string[] = [];
    const byteSymbols: string[] = [];
    for (let a = site.address; a < end; a++) {
      const e = spec.siteOracle.expectation(a);
      if (e.old) oldCode.push(`${sym(a)}: ${spec.image.disassemble(e.old, a)}`);
      if (e.new) newCode.push(`${sym(a)}: ${spec.image.disassemble(e.new, a)}`);
      byteSymbols.push(sym(a));
    }
    return {
      address: site.address,
      symbol: sym(site.address),
      oldBytes: [...site.oldBytes],
      newBytes: [...site.newBytes],
      oldCode,
      newCode,
      byteSymbols,
    };
  });

  // Each store is one write, whatever its size: its bytes are the records of one CPU in one step.
  const siteWrites: SiteWrite[] = [];
  const writeOf = new Map<string, number>();
  for (const r of log) {
    if (r.kind !== Ev.CodeWrite) continue;
    let w = siteWrites[siteWrites.length - 1];
    if (!w || w.step !== r.step || w.cpu !== r.cpu || w.bytes.length >= w.size) {
      w = { index: siteWrites.length, cpu: r.cpu, step: r.step, size: r.c, bytes: [] };
      siteWrites.push(w);
    }
    const site = siteOf(spec, r.addr);
    const off = site ? r.addr - site.address : -1;
    const label =
      site && r.a === site.newBytes[off] && r.a !== site.oldBytes[off]
        ? "new"
        : r.a === 0xcc
          ? "int3"
          : site && r.a === site.oldBytes[off]
            ? "old value"
            : "written";
    w.bytes.push({ address: r.addr, symbol: sym(r.addr), value: r.a, seq: r.b, label });
    writeOf.set(`${r.addr}:${r.b}`, w.index);
  }

  const seen = new Set<Instruction>();
  const fetches: SiteFetch[] = [];
  for (const r of log) {
    const insn = insns.get(r);
    if (!insn?.atSite || seen.has(insn)) continue;
    seen.add(insn);
    const cls = classify(spec, insn);
    const expect = spec.siteOracle.expectation(insn.address);
    const bytes: FetchedSiteByte[] = insn.bytes.map((b, i) => {
      const p = provenance(spec, writes, b);
      let note = "";
      if (cls === "torn" && siteOf(spec, b.address)) {
        const oldB = expect.old?.[i];
        const newB = expect.new?.[i];
        const notes: string[] = [];
        if (oldB !== undefined && oldB !== b.value) notes.push(`old code has ${hex([oldB])}`);
        if (newB !== undefined && newB !== b.value) notes.push(`new code has ${hex([newB])}`);
        if (notes.length > 0) note = `; ${notes.join(", ")}`;
      }
      const w = writes.get(`${b.address}:${b.seq}`);
      return {
        address: b.address,
        symbol: sym(b.address),
        value: b.value,
        label: p.label,
        detail: p.detail,
        fetchStep: b.record.step,
        writer:
          b.writer < 0
            ? null
            : {
                cpu: b.writer,
                step: w ? w.step : -1,
                seq: b.seq,
                write: writeOf.get(`${b.address}:${b.seq}`) ?? -1,
              },
        note,
      };
    });
    const show = (code: number[] | null) =>
      code ? `${spec.image.disassemble(code, insn.address)} (${hex(code)})` : "no instruction starting here";
    fetches.push({
      cpu: insn.cpu,
      firstStep: insn.firstStep,
      lastStep: insn.lastStep,
      context: insn.context === ContextKind.Base ? null : CONTEXT_NAMES[insn.context],
      address: insn.address,
      symbol: sym(insn.address),
      text: insn.text,
      values: insn.bytes.map((b) => b.value),
      cls,
      untouched: cls === "old" && insn.bytes.every((b) => b.writer < 0),
      bytes,
      ...(cls === "torn" ? { expected: { old: show(expect.old), new: show(expect.new) } } : {}),
    });
  }
  return { sites, writes: siteWrites, fetches };
}
