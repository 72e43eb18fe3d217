// What a replayed run fetched: the log records that make up each fetched instruction, the provenance
// of each byte fetched at a patch site (old, new, who wrote it and when), and P1's judgement of it.
import { ContextKind, CrashKind, Ev } from "../model/events.js";
import { Mark } from "../model/routine.js";
import type { MachineSpec, Site } from "../model/types.js";
import { hex } from "../model/x86.js";
import type { LogRecord } from "../properties/invariants.js";

export interface FetchedByte {
  record: LogRecord;
  address: number;
  value: number;
  /** Writer CPU of the byte's latest write (-1: the byte is as the image was loaded). */
  writer: number;
  seq: number;
}

export interface Instruction {
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

export function collectInstructions(spec: MachineSpec, log: LogRecord[]): Map<LogRecord, Instruction> {
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
      text: bytes.length > 0 ? spec.image.disassemble(values, address) : "(nothing fetched)",
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
export function isRepeat(log: LogRecord[], iret: LogRecord): boolean {
  for (let i = iret.index + 1; i < log.length && log[i].step === iret.step; i++) {
    const r = log[i];
    if (r.cpu === iret.cpu && r.kind === Ev.Mark && r.a === Mark.RepeatNmi) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------
// Byte provenance: old, new, who wrote it and when.

export interface Provenance {
  /** "old", "new", "int3", "old value", "written", "stale" */
  label: string;
  detail: string;
}

export function siteOf(spec: MachineSpec, address: number): Site | undefined {
  return spec.sites.find((s) => address >= s.address && address < s.address + s.newBytes.length);
}

export function writeIndex(log: LogRecord[]): Map<string, LogRecord> {
  const m = new Map<string, LogRecord>();
  for (const r of log) if (r.kind === Ev.CodeWrite) m.set(`${r.addr}:${r.b}`, r);
  return m;
}

export function provenance(spec: MachineSpec, writes: Map<string, LogRecord>, b: FetchedByte): Provenance {
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
export function classify(spec: MachineSpec, insn: Instruction): "old" | "new" | "int3" | "torn" | "crash" {
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
