// Counterexample -> text (SPEC §7, §8): the violation, a per-CPU timeline of the run, the disassembly of
// every instruction fetched at a patch site with the provenance of each byte, and the replay token. Also
// the protocol × scenario verdict matrix of SPEC §10. Reports are built from a fresh inline re-run of
// the tape, which is deterministic, so a report printed from a token is the report of the original run.
import pc from "picocolors";
import { CONTEXT_NAMES, ContextKind, CrashKind, Ev, EventSource } from "../model/events.js";
import { H, RunStatus } from "../model/memory.js";
import { Mark } from "../model/routine.js";
import type { Expected, MachineSpec, RunConfig, Site } from "../model/types.js";
import { disassemble, hex } from "../model/x86.js";
import { runInline } from "../workers/inline.js";
import { machineFor } from "../workers/setup.js";
import type { Bounds } from "../workers/strategies/exhaustive.js";
import type { PropertyResult, Verdict } from "./check.js";
import { SITUATIONS, unreached } from "./coverage.js";
import {
  evaluate,
  type LogRecord,
  PROPERTIES,
  type PropertyId,
  readLog,
  type Violation,
} from "./invariants.js";
import { encodeToken } from "./token.js";

type Colors = ReturnType<typeof pc.createColors>;

export interface ReportOptions {
  color: boolean;
  /** Judge only this property (the one a counterexample was shrunk for); all of them otherwise. */
  property?: PropertyId;
}

/** A re-run of a tape with everything a report needs. */
export interface Replay {
  config: RunConfig;
  tape: number[];
  spec: MachineSpec;
  log: LogRecord[];
  status: RunStatus;
  /** Set when the run itself failed (a routine threw): a bug, not a verdict. */
  error?: string;
  violations: Violation[];
  /** The CPU that took each step (absent for steps where the world sent an event), when known. */
  actors: Int32Array | null;
  /** The step at which the tape ran out and the fair round-robin took over (-1: it never ran out). */
  tapeEndStep: number;
}

const STATUS_NAMES: Record<number, string> = {
  [RunStatus.Running]: "still running",
  [RunStatus.Finished]: "every CPU finished",
  [RunStatus.Deadlock]: "deadlock",
  [RunStatus.StepBound]: "step bound reached",
  [RunStatus.Crash]: "crash",
  [RunStatus.Error]: "error",
};

export function statusName(status: RunStatus): string {
  return STATUS_NAMES[status] ?? String(status);
}

/**
 * Re-runs `tape` inline and judges it (every property, or only `property`). The log does not say which
 * CPU took a step that logs nothing (a load, a wait) or that only makes another CPU's record (sending an
 * IPI), so the run notes who took each step as the engine decides it.
 */
export function replayTape(config: RunConfig, tape: readonly number[], property?: PropertyId): Replay {
  const spec = machineFor(config);
  const actors = new Int32Array(config.hardware.stepBound + 2).fill(-1);
  let tapeEndStep = -1;
  const r = runInline(config, { tape }, true, (cpu, mem) => {
    if (tapeEndStep < 0 && mem.header[H.tapePos] >= mem.header[H.tapeLen]) tapeEndStep = mem.header[H.step];
    if (cpu >= 0) actors[mem.header[H.step]] = cpu;
  });
  const log = readLog(r.mem);
  const violations = r.error ? [] : evaluate(spec, r.mem, property);
  return {
    config,
    tape: [...tape],
    spec,
    log,
    status: r.status,
    error: r.error,
    violations,
    actors: r.error ? null : actors,
    tapeEndStep,
  };
}

// ---------------------------------------------------------------------------------------------------
// Instructions: which log records make up each fetched instruction.

interface FetchedByte {
  record: LogRecord;
  address: number;
  value: number;
  /** Writer CPU of the byte's latest write (-1: the byte is as the image was loaded). */
  writer: number;
  seq: number;
}

interface Instruction {
  cpu: number;
  address: number;
  bytes: FetchedByte[];
  firstStep: number;
  lastStep: number;
  /** Context kind the instruction ran in. */
  context: number;
  /** The fetch tore (P1) or the run crashed on it. */
  crash?: LogRecord;
  atSite: boolean;
  text: string;
}

const textCache = new WeakMap<object, Map<string, string>>();

/** Intel-syntax text with near-branch targets named by symbol (payload symbols included). */
function insnText(spec: MachineSpec, bytes: number[], address: number): string {
  // A long run fetches the same few instructions thousands of times; iced-x86 is asked once for each.
  let cache = textCache.get(spec.image);
  if (!cache) {
    cache = new Map();
    textCache.set(spec.image, cache);
  }
  const key = `${address}:${hex(bytes)}`;
  let text = cache.get(key);
  if (text === undefined) {
    text = symbolizeTargets(spec, disassemble(bytes, address));
    cache.set(key, text);
  }
  return text;
}

function symbolizeTargets(spec: MachineSpec, text: string): string {
  if (!/^(j\w+|call|loop\w*|jrcxz)\s/.test(text)) return text;
  // iced-x86 prints near-branch targets as 16 hex digits with an h suffix: name them.
  return text.replace(/\b([0-9A-F]{8,16})h\b/g, (_m, h: string) => {
    const target = Number.parseInt(h, 16);
    if (!Number.isSafeInteger(target)) return `0x${h.toLowerCase().replace(/^0+/, "")}`;
    return spec.image.functionAt(target) ? spec.image.symbolize(target) : `0x${target.toString(16)}`;
  });
}

function collectInstructions(spec: MachineSpec, log: LogRecord[]): Map<LogRecord, Instruction> {
  const byRecord = new Map<LogRecord, Instruction>();
  const pending = new Map<number, FetchedByte[]>();
  const contextOf = new Map<number, number[]>();
  const top = (cpu: number) => {
    const s = contextOf.get(cpu);
    return s && s.length > 0 ? s[s.length - 1] : ContextKind.Base;
  };
  const finish = (cpu: number, end: LogRecord, crash?: LogRecord) => {
    const bytes = pending.get(cpu) ?? [];
    pending.delete(cpu);
    const address = bytes.length > 0 ? bytes[0].address : end.addr;
    const values = bytes.map((b) => b.value);
    const insn: Instruction = {
      cpu,
      address,
      bytes,
      firstStep: bytes.length > 0 ? bytes[0].record.step : end.step,
      lastStep: end.step,
      context: end.kind === Ev.Exec ? end.c : top(cpu),
      crash,
      atSite: bytes.length > 0 && spec.siteOracle.overlaps(address, bytes.length),
      text: bytes.length > 0 ? insnText(spec, values, address) : "(nothing fetched)",
    };
    for (const b of bytes) byRecord.set(b.record, insn);
    byRecord.set(end, insn);
  };
  for (const r of log) {
    switch (r.kind) {
      case Ev.Fetch: {
        const list = pending.get(r.cpu) ?? [];
        list.push({ record: r, address: r.addr, value: r.a, writer: r.b, seq: r.c });
        pending.set(r.cpu, list);
        break;
      }
      case Ev.Exec:
        finish(r.cpu, r);
        break;
      case Ev.Crash:
        if (pending.has(r.cpu)) finish(r.cpu, r, r);
        break;
      case Ev.NmiDeliver:
      case Ev.McDeliver:
      case Ev.IrqDeliver:
      case Ev.BpDeliver: {
        const s = contextOf.get(r.cpu) ?? [];
        s.push(deliveredKind(r.kind));
        contextOf.set(r.cpu, s);
        break;
      }
      case Ev.Iret:
        if (!(r.a === ContextKind.Nmi && r.b === 1 && r.c === 1 && isRepeat(log, r)))
          contextOf.get(r.cpu)?.pop();
        break;
    }
  }
  return byRecord;
}

function deliveredKind(kind: Ev): ContextKind {
  if (kind === Ev.NmiDeliver) return ContextKind.Nmi;
  if (kind === Ev.McDeliver) return ContextKind.Mce;
  if (kind === Ev.IrqDeliver) return ContextKind.Irq;
  return ContextKind.Bp;
}

/** Linux's repeat_nmi: an IRET that lands back at the start of the NMI handler does not pop it. */
function isRepeat(log: LogRecord[], iret: LogRecord): boolean {
  for (let i = iret.index + 1; i < log.length && log[i].step === iret.step; i++) {
    const r = log[i];
    if (r.cpu === iret.cpu && r.kind === Ev.Mark && r.a === Mark.RepeatNmi) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------
// Byte provenance: old, new, who wrote it and when.

interface Provenance {
  /** "old", "new", "int3", "old value", "written", "stale" */
  label: string;
  detail: string;
}

function siteOf(spec: MachineSpec, address: number): Site | undefined {
  return spec.sites.find((s) => address >= s.address && address < s.address + s.newBytes.length);
}

function writeIndex(log: LogRecord[]): Map<string, LogRecord> {
  const m = new Map<string, LogRecord>();
  for (const r of log) if (r.kind === Ev.CodeWrite) m.set(`${r.addr}:${r.b}`, r);
  return m;
}

function provenance(spec: MachineSpec, writes: Map<string, LogRecord>, b: FetchedByte): Provenance {
  const site = siteOf(spec, b.address);
  const off = site ? b.address - site.address : -1;
  if (b.writer < 0) return { label: "old", detail: "as loaded (image)" };
  const w = writes.get(`${b.address}:${b.seq}`);
  const when = w ? ` at step ${w.step}` : "";
  const by = `written by CPU ${b.writer}${when} (write #${b.seq})`;
  // H10: a stale fetch returns an older value while the trace names the latest write.
  if (w && w.a !== b.value)
    return { label: "stale", detail: `an older value; the latest write is ${hex([w.a])}, ${by}` };
  if (site && b.value === site.newBytes[off] && b.value !== site.oldBytes[off])
    return { label: "new", detail: by };
  if (b.value === 0xcc) return { label: "int3", detail: by };
  if (site && b.value === site.oldBytes[off]) return { label: "old value", detail: by };
  return { label: "written", detail: by };
}

/** old instruction / new instruction / transient int3 / torn (P1's judgement of what was decoded). */
function classify(spec: MachineSpec, insn: Instruction): "old" | "new" | "int3" | "torn" | "crash" {
  if (insn.crash && insn.crash.a === CrashKind.Torn) return "torn";
  if (insn.crash) return "crash";
  const values = insn.bytes.map((b) => b.value);
  const expect = spec.siteOracle.expectation(insn.address);
  const same = (x: number[] | null) =>
    x !== null && x.length === values.length && x.every((v, i) => v === values[i]);
  if (same(expect.old)) return "old";
  if (same(expect.new)) return "new";
  if (values.length === 1 && values[0] === 0xcc) return "int3";
  return "old";
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

interface Row {
  step: number;
  cpu: number;
  text: string;
  kind: "event" | "site" | "plain" | "fold" | "end" | "bad";
}

function renderTimeline(rep: Replay, c: Colors): string[] {
  const { spec, log } = rep;
  const n = spec.config.hardware.cpus;
  const sym = (a: number) => spec.image.symbolize(a);
  const insns = collectInstructions(spec, log);
  const writes = writeIndex(log);

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
  const stack: Array<Array<{ kind: ContextKind; real: boolean; depth: number }>> = Array.from(
    { length: n },
    () => [{ kind: ContextKind.Base, real: false, depth: 0 }],
  );
  const ctxTop = (cpu: number) => stack[cpu][stack[cpu].length - 1];

  const rows: Row[] = [];
  for (const cell of cells) {
    if (cell.cpu < 0) {
      for (const r of cell.records)
        if (r.kind === Ev.End)
          rows.push({ step: r.step, cpu: -1, text: `run ends: ${STATUS_NAMES[r.a] ?? r.a}`, kind: "end" });
      continue;
    }
    const parts: string[] = [];
    let kind: Row["kind"] = cell.plain ? "plain" : "event";
    const contextLabel = () => {
      const k = ctxTop(cell.cpu).kind;
      return k === ContextKind.Base ? "" : `[${CONTEXT_NAMES[k]}] `;
    };
    const label = contextLabel();
    const where = (rip: number) => {
      const t = ctxTop(cell.cpu);
      return t.real ? `at ${sym(rip)}` : "between routine steps";
    };
    // What this CPU sent to others in this step.
    if (rep.actors?.[cell.step] === cell.cpu) {
      const sent = (ipiArrivals.get(cell.step) ?? []).filter((r) => r.cpu !== cell.cpu);
      const nmiTargets = sent.filter((r) => r.kind === Ev.NmiArrive).map((r) => r.cpu);
      if (nmiTargets.length > 0) parts.push(`sends NMI IPI to CPU ${nmiTargets.join(",")}`);
      const vectors = new Map<number, number[]>();
      for (const r of sent.filter((r) => r.kind === Ev.IpiArrive))
        vectors.set(r.a, [...(vectors.get(r.a) ?? []), r.cpu]);
      for (const [v, targets] of vectors) parts.push(`sends IPI vector ${v} to CPU ${targets.join(",")}`);
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
          parts.push(`fetch ${sym(r.addr)} = ${hex([r.a])} (${p.label})`);
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
            parts.push(`${sym(insn.address)}  ${insn.text}  ◆ site, ${note}${span}`);
          } else parts.push(`${sym(insn.address)}  ${insn.text}`);
          break;
        }
        case Ev.CodeWrite:
          codeWrites.push(r);
          break;
        case Ev.NmiArrive: {
          const from =
            r.a === EventSource.External
              ? "external"
              : rep.actors && rep.actors[r.step] >= 0
                ? rep.actors[r.step] === r.cpu
                  ? "self-NMI"
                  : `NMI IPI from CPU ${rep.actors[r.step]}`
                : "NMI IPI";
          parts.push(`⚡ NMI arrives (${from})${r.b === 1 ? ", coalesced into the pending one (H2)" : ""}`);
          break;
        }
        case Ev.NmiDeliver:
          parts.push(
            `→ NMI handler entered on IST ${r.a}, ${where(r.addr)}${r.b === 1 ? ", nested under a live NMI frame" : ""}`,
          );
          stack[cell.cpu].push({ kind: ContextKind.Nmi, real: false, depth: 0 });
          break;
        case Ev.NmiNested:
          parts.push("⚡ nested NMI: the guard makes the outer handler repeat");
          break;
        case Ev.McArrive:
          parts.push("⚡ #MC arrives");
          break;
        case Ev.McDeliver:
          parts.push(`→ #MC handler entered on IST ${r.a}, ${where(r.addr)}`);
          stack[cell.cpu].push({ kind: ContextKind.Mce, real: false, depth: 0 });
          break;
        case Ev.BpDeliver:
          parts.push(
            r.addr === -1
              ? "→ #BP handler (the routine's own int3)"
              : `→ #BP handler for the int3 at ${sym(r.addr)}`,
          );
          stack[cell.cpu].push({ kind: ContextKind.Bp, real: false, depth: 0 });
          break;
        case Ev.IpiArrive: {
          const a = rep.actors?.[r.step] ?? -1;
          parts.push(
            `⚡ IPI vector ${r.a} arrives${a >= 0 ? (a === r.cpu ? " (self)" : ` from CPU ${a}`) : ""}`,
          );
          break;
        }
        case Ev.IrqDeliver:
          parts.push(`→ IPI handler (vector ${r.a}) entered, ${where(r.addr)}`);
          stack[cell.cpu].push({ kind: ContextKind.Irq, real: false, depth: 0 });
          break;
        case Ev.Iret: {
          const what = `IRET from the ${CONTEXT_NAMES[r.a]} handler`;
          const effect =
            r.b === 1
              ? r.c === 1
                ? c.yellow("unblocks NMIs while an NMI frame is still live (H3)")
                : "unblocks NMIs"
              : "NMI blocking unchanged";
          parts.push(`← ${what}: ${effect}`);
          if (
            !(r.a === ContextKind.Nmi && r.b === 1 && r.c === 1 && isRepeat(log, r)) &&
            stack[cell.cpu].length > 1
          )
            stack[cell.cpu].pop();
          break;
        }
        case Ev.Serialize:
          parts.push(SERIALIZE_TEXT[r.a] ?? "serializes");
          break;
        case Ev.Store:
          parts.push(`${spec.words.name(r.addr)} := ${r.a}`);
          break;
        case Ev.Mark:
          parts.push(`• ${MARK_TEXT[r.a] ?? `mark ${r.a}`}${markValue(spec, r)}`);
          break;
        case Ev.IstClobber:
          kind = "bad";
          parts.push(
            r.c === ContextKind.Mce
              ? `‼ #MC delivered on IST ${r.a}, which holds the live frame of the previous #MC (MCIP was already cleared): a hardware hazard`
              : `‼ ${CONTEXT_NAMES[r.c]} delivered on IST ${r.a}, which holds a live NMI frame (NMIs were unblocked by ${r.b === ContextKind.Base ? "the OS's own IRET" : `the ${CONTEXT_NAMES[r.b]} handler's IRET`})`,
          );
          break;
        case Ev.Crash:
          kind = "bad";
          parts.push(crashText(spec, r, insn));
          break;
        case Ev.Cli:
          parts.push("cli");
          break;
        case Ev.Sti:
          parts.push("sti");
          break;
        case Ev.McipClear:
          parts.push("clears MCIP");
          break;
      }
    }
    if (codeWrites.length > 0) {
      kind = kind === "bad" ? kind : "site";
      const first = codeWrites[0];
      const bytes = codeWrites.map((w) => w.a);
      parts.unshift(
        `✎ writes ${hex(bytes)} at ${sym(first.addr)} (${first.c}-byte store, write #${first.b})`,
      );
    }
    if (parts.length === 0) continue;
    rows.push({
      step: cell.step,
      cpu: cell.cpu,
      text: `${cell.switched ? "» " : ""}${label}${parts.join("; ")}`,
      kind,
    });
  }
  return layoutRows(spec, foldPlainRows(rows, spec, cells, insns), c, rep);
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
      return `✗ fetch at 0x${r.addr.toString(16)}, outside the image: crash`;
    default:
      return `✗ crash (${r.a}) at ${sym(r.addr)}`;
  }
}

/** Runs shorter than this stay as they are; longer ones become one "… N steps in f …" row. */
const FOLD_MIN = 4;

/**
 * Folds each CPU's runs of plain rows (fetches and instructions outside patch sites). A run ends at any
 * row that is shown, whoever's it is, so a folded row never hides the order of anything shown.
 */
function foldPlainRows(
  rows: Row[],
  spec: MachineSpec,
  cells: Cell[],
  insns: Map<LogRecord, Instruction>,
): Row[] {
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
  const out: Array<Row | null> = [];
  const open = new Map<number, number[]>(); // cpu -> indices into `out` of its current run
  const close = (cpu: number) => {
    const run = open.get(cpu);
    open.delete(cpu);
    if (!run || run.length < FOLD_MIN) return;
    const first = out[run[0]] as Row;
    const last = out[run[run.length - 1]] as Row;
    const fns: string[] = [];
    for (const i of run) {
      const row = out[i] as Row;
      for (const f of fnsOfStep.get(`${row.step}:${row.cpu}`) ?? []) if (!fns.includes(f)) fns.push(f);
    }
    const where =
      fns.length > 3 ? `${fns.slice(0, 3).join(", ")} and ${fns.length - 3} more` : fns.join(", ");
    const switched = run.some((i) => (out[i] as Row).text.startsWith("» "));
    out[run[0]] = {
      step: first.step,
      cpu: cpu,
      text: `${switched ? "» " : ""}… ${run.length} fetch steps (${first.step}–${last.step}) in ${where || "real code"} …`,
      kind: "fold",
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
  return out.filter((r): r is Row => r !== null);
}

function layoutRows(spec: MachineSpec, rows: Row[], c: Colors, rep: Replay): string[] {
  const n = spec.config.hardware.cpus;
  const lane = Math.max(10, Math.min(26, Math.floor(104 / n)));
  const stepWidth = Math.max(4, String(rows.length > 0 ? rows[rows.length - 1].step : 0).length);
  const lines: string[] = [];
  const header = Array.from({ length: n }, (_, i) => `CPU ${i}`.padEnd(lane)).join("");
  lines.push(c.bold(`${"step".padStart(stepWidth)}  ${header}`.trimEnd()));
  let tapeNoted = rep.tapeEndStep < 0;
  let prevStep = -1;
  for (const row of rows) {
    if (!tapeNoted && row.step > rep.tapeEndStep) {
      lines.push(
        c.dim(
          `${"".padStart(stepWidth)}  ┄┄ the tape ends at step ${rep.tapeEndStep}: a fair round-robin finishes the run, with no further events ┄┄`,
        ),
      );
      tapeNoted = true;
    }
    const stepText = row.step === prevStep ? "".padStart(stepWidth) : String(row.step).padStart(stepWidth);
    prevStep = row.step;
    if (row.cpu < 0) {
      lines.push(`${stepText}  ${c.bold(`── ${row.text} ──`)}`);
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
    lines.push(`${stepText}  ${guides}${paint(row.text)}`);
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------------
// Patch-site disassembly.

function renderSiteFetches(rep: Replay, c: Colors): string[] {
  const { spec, log } = rep;
  const sym = (a: number) => spec.image.symbolize(a);
  const insns = collectInstructions(spec, log);
  const writes = writeIndex(log);
  const lines: string[] = [];
  for (const site of spec.sites) {
    const end = site.address + site.newBytes.length;
    lines.push(
      c.bold(
        `Patch site ${sym(site.address)} (0x${site.address.toString(16)}), ${site.newBytes.length} bytes:`,
      ),
    );
    const oldList: string[] = [];
    const newList: string[] = [];
    for (let a = site.address; a < end; a++) {
      const e = spec.siteOracle.expectation(a);
      if (e.old) oldList.push(`${sym(a)}: ${insnText(spec, e.old, a)}`);
      if (e.new) newList.push(`${sym(a)}: ${insnText(spec, e.new, a)}`);
    }
    lines.push(`  old bytes ${hex(site.oldBytes)}   ${oldList.join("; ")}`);
    lines.push(`  new bytes ${hex(site.newBytes)}   ${newList.join("; ")}`);
  }
  const seen = new Set<Instruction>();
  const atSite: Instruction[] = [];
  for (const r of log) {
    const insn = insns.get(r);
    if (insn?.atSite && !seen.has(insn)) {
      seen.add(insn);
      atSite.push(insn);
    }
  }
  lines.push("");
  if (atSite.length === 0) {
    lines.push("No CPU fetched an instruction at a patch site in this run.");
    return lines;
  }
  lines.push(c.bold("Every instruction fetched at a patch site (iced-x86):"));
  const symWidth = Math.max(...atSite.flatMap((i) => i.bytes.map((b) => sym(b.address).length)));
  const stepsOf = (insn: Instruction) =>
    insn.firstStep === insn.lastStep ? `step ${insn.firstStep}` : `steps ${insn.firstStep}–${insn.lastStep}`;
  const ctxOf = (insn: Instruction) =>
    insn.context === ContextKind.Base ? "" : ` [${CONTEXT_NAMES[insn.context]}]`;
  // Fetches of the untouched old code say nothing about the patch one by one: long runs of them are
  // summarised (with every distinct instruction named); anything with a written byte is shown in full.
  let untouched: Instruction[] = [];
  const flush = () => {
    if (untouched.length >= FOLD_MIN) {
      const first = untouched[0];
      const last = untouched[untouched.length - 1];
      const cpus = [...new Set(untouched.map((i) => i.cpu))].sort((a, b) => a - b);
      const texts = [...new Set(untouched.map((i) => `${sym(i.address)}: ${i.text}`))];
      lines.push(
        c.dim(
          `  steps ${first.firstStep}–${last.lastStep}, CPU ${cpus.join(",")}: ${untouched.length} fetches of old instructions, every byte as loaded (${texts.join("; ")})`,
        ),
      );
    } else {
      for (const insn of untouched) {
        lines.push(
          `  ${stepsOf(insn)}, CPU ${insn.cpu}${ctxOf(insn)}: ${sym(insn.address)}  ${c.bold(insn.text)}  (${hex(insn.bytes.map((b) => b.value))})  old instruction, every byte as loaded`,
        );
      }
    }
    untouched = [];
  };
  for (const insn of atSite) {
    const cls = classify(spec, insn);
    if (cls === "old" && insn.bytes.every((b) => b.writer < 0)) {
      untouched.push(insn);
      continue;
    }
    flush();
    const verdict =
      cls === "torn"
        ? c.red("TORN: neither an old nor a new instruction (P1)")
        : cls === "new"
          ? "new instruction"
          : cls === "int3"
            ? "transient int3"
            : cls === "crash"
              ? c.red("crashed")
              : "old instruction";
    lines.push(
      `  ${stepsOf(insn)}, CPU ${insn.cpu}${ctxOf(insn)}: ${sym(insn.address)}  ${c.bold(insn.text)}  (${hex(insn.bytes.map((b) => b.value))})  ${verdict}`,
    );
    const expect = spec.siteOracle.expectation(insn.address);
    for (let i = 0; i < insn.bytes.length; i++) {
      const b = insn.bytes[i];
      const p = provenance(spec, writes, b);
      let note = "";
      if (cls === "torn" && siteOf(spec, b.address)) {
        const oldB = expect.old?.[i];
        const newB = expect.new?.[i];
        const parts: string[] = [];
        if (oldB !== undefined && oldB !== b.value) parts.push(`old code has ${hex([oldB])}`);
        if (newB !== undefined && newB !== b.value) parts.push(`new code has ${hex([newB])}`);
        if (parts.length > 0) note = `; ${parts.join(", ")}`;
      }
      const label = p.label === "new" ? c.green(p.label.padEnd(9)) : p.label.padEnd(9);
      lines.push(
        `      byte ${i}  ${sym(b.address).padEnd(symWidth)}  ${hex([b.value])}  ${label} ${p.detail}, fetched at step ${b.record.step}${note}`,
      );
    }
    if (cls === "torn") {
      const show = (bytes: number[] | null) =>
        bytes ? `${insnText(spec, bytes, insn.address)} (${hex(bytes)})` : "no instruction starting here";
      lines.push(`      expected: old ${show(expect.old)}, or new ${show(expect.new)}`);
    }
  }
  flush();
  return lines;
}

// ---------------------------------------------------------------------------------------------------

const PROPERTY_NAME = new Map<string, string>(PROPERTIES.map((p) => [p.id, p.name]));

/** One line per violation: `P1 atomic-patch (torn-fetch) at step 262: …`. */
export function violationLine(v: Violation): string {
  const at = v.step >= 0 ? ` at step ${v.step}` : "";
  return `${v.property} ${PROPERTY_NAME.get(v.property) ?? ""} (${v.kind})${at}: ${v.message}`;
}

export function replayCommand(token: string): string {
  return `replay: npx livepatch-check replay ${token}`;
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
  const c = pc.createColors(opts.color);
  const hw = rep.config.hardware;
  const token = encodeToken(rep.config, rep.tape);
  const lines: string[] = [];
  const nonZero = rep.tape.filter((v) => v !== 0).length;
  lines.push(
    c.bold(`${rep.config.protocol} on ${rep.config.scenario}`) +
      `  (cpus=${hw.cpus}, fetch=${hw.fetch}, nmis=${hw.nmis}, mces=${hw.mces}, step bound ${hw.stepBound}, os=${hw.os ?? rep.spec.protocol.os}${hw.mces > 0 ? `, #MC ${hw.mceDelivery ?? "broadcast"}` : ""}${hw.stiShadow ? ", STI shadow holds NMIs" : ""})`,
  );
  lines.push(
    `tape: ${rep.tape.length} values, ${nonZero} of them non-zero (preemptions, events, branch choices); the run ends after step ${lastStep(rep)}: ${STATUS_NAMES[rep.status] ?? rep.status}`,
  );
  lines.push("");
  if (rep.error) {
    lines.push(c.red(`The run failed: ${rep.error}`));
  } else if (rep.violations.length === 0) {
    lines.push(
      c.green(
        opts.property
          ? `${opts.property} ${PROPERTY_NAME.get(opts.property)} holds on this run.`
          : "Every property holds on this run.",
      ),
    );
  } else {
    for (const v of rep.violations) lines.push(c.red(`✗ ${violationLine(v)}`));
  }
  lines.push("");
  lines.push(
    c.bold("Timeline") +
      c.dim("  (» = the scheduler switched to this CPU; ◆ = at a patch site; [NMI] = context)"),
  );
  if (!rep.actors)
    lines.push(
      c.dim("(who took silent steps is unknown: the step-by-step re-run differed; shown from the log alone)"),
    );
  lines.push(...renderTimeline(rep, c));
  lines.push("");
  lines.push(...renderSiteFetches(rep, c));
  lines.push("");
  lines.push(`token:  ${token}`);
  lines.push(replayCommand(token));
  return `${lines.join("\n")}\n`;
}

function lastStep(rep: Replay): number {
  return rep.log.length > 0 ? rep.log[rep.log.length - 1].step : 0;
}

// ---------------------------------------------------------------------------------------------------
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
  opts: { color?: boolean } = {},
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
    const differs = !matchesExpected(v, expectedFor(p, s));
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
