// The vacuity witness: which interesting situations the runs of a check reached. A "holds" over runs
// that never reached the racy window proves nothing, so every check reports these counts and names
// the situations it never reached. Judged on a finished run's event log, like the properties.
import { ContextKind, Ev } from "../model/events.js";
import { H, LOG_RECORD_WORDS, type MachineMemory } from "../model/memory.js";
import { Mark } from "../model/routine.js";
import type { MachineSpec } from "../model/types.js";

export const SITUATIONS = [
  { id: "site-mid-write", text: "a CPU fetched the site while a write to it was in progress" },
  { id: "handler-site-mid-write", text: "a handler fetched the site while a write to it was in progress" },
  { id: "event-during-patch", text: "an NMI or #MC arrived while the patch was being applied" },
  { id: "event-in-handler", text: "an event was delivered inside a handler" },
  { id: "int3-from-handler", text: "the int3 at the site was hit from a handler" },
] as const;
export type SituationId = (typeof SITUATIONS)[number]["id"];

/** Runs that reached each situation (index as in SITUATIONS). */
export type Coverage = number[];

export function emptyCoverage(): Coverage {
  return SITUATIONS.map(() => 0);
}

export function addCoverage(into: Coverage, from: Coverage): void {
  for (let i = 0; i < into.length; i++) into[i] += from[i] ?? 0;
}

/** The situations one run reached, as a bit mask (bit i = SITUATIONS[i]). */
export function situationsOf(spec: MachineSpec, mem: MachineMemory): number {
  return new Situations(spec).update(mem);
}

/**
 * The situations of the run in progress, read from its event log as it grows: `update` reads only
 * the records logged since its last call. The exhaustive search keeps one in step with its executions
 * (workers/strategies/resume.ts LogMonitor): reset for a run from the start, saved at a snapshot and
 * restored with it, so that an execution resumed there does not read its prefix's log again (reading
 * the whole log at every execution cut by the state cache took 8% of a search's time).
 */
export class Situations {
  private readonly lo: number;
  private readonly hi: number;
  private readonly oldBytes: number[];
  private readonly newBytes: number[];
  private readonly cpus: number;
  private cursor = 0;
  private found = 0;
  private readonly now: number[];
  private written = false;
  private done = false;
  private patching = false;
  /** Context kinds on each CPU, innermost last (base not included). */
  private readonly stacks: number[][];

  constructor(spec: MachineSpec) {
    const site = spec.sites[0];
    this.lo = site.address;
    this.hi = site.address + site.newBytes.length;
    this.oldBytes = site.oldBytes;
    this.newBytes = site.newBytes;
    this.now = site.oldBytes.slice();
    this.cpus = spec.config.hardware.cpus;
    this.stacks = Array.from({ length: this.cpus }, () => []);
  }

  reset(): void {
    this.cursor = 0;
    this.found = 0;
    for (let i = 0; i < this.now.length; i++) this.now[i] = this.oldBytes[i];
    this.written = false;
    this.done = false;
    this.patching = false;
    for (const s of this.stacks) s.length = 0;
  }

  /** Its state, to come back to with restore (the log up to the cursor must be kept as it is). */
  save(): number[] {
    const out = [this.cursor, this.found, this.written ? 1 : 0, this.done ? 1 : 0, this.patching ? 1 : 0];
    out.push(...this.now);
    for (const s of this.stacks) out.push(s.length, ...s);
    return out;
  }

  restore(saved: unknown): void {
    const s = saved as number[];
    this.cursor = s[0];
    this.found = s[1];
    this.written = s[2] === 1;
    this.done = s[3] === 1;
    this.patching = s[4] === 1;
    let at = 5;
    for (let i = 0; i < this.now.length; i++) this.now[i] = s[at++];
    for (const stack of this.stacks) {
      const n = s[at++];
      stack.length = 0;
      for (let k = 0; k < n; k++) stack.push(s[at++]);
    }
  }

  /** Reads the records logged since the last call; returns the situations reached so far. */
  update(mem: MachineMemory): number {
    const { lo, hi, now, stacks } = this;
    let found = this.found;
    const log = mem.log;
    const count = mem.header[H.logCount];
    for (let r = this.cursor; r < count; r++) {
      const o = r * LOG_RECORD_WORDS;
      const cpu = log[o + 1];
      const kind = log[o + 2];
      const addr = log[o + 3];
      const a = log[o + 4];
      switch (kind) {
        case Ev.CodeWrite:
          if (addr >= lo && addr < hi) {
            now[addr - lo] = a;
            this.written = true;
            this.done = now.every((b, i) => b === this.newBytes[i]);
          }
          break;
        case Ev.Fetch:
          if (addr >= lo && addr < hi && this.written && !this.done) {
            found |= 1 << 0;
            if (stacks[cpu].some((k) => k === ContextKind.Nmi || k === ContextKind.Mce)) found |= 1 << 1;
          }
          break;
        case Ev.NmiArrive:
        case Ev.McArrive:
          if (this.patching) found |= 1 << 2;
          break;
        case Ev.NmiDeliver:
        case Ev.McDeliver:
        case Ev.IrqDeliver:
          if (stacks[cpu].length > 0) found |= 1 << 3;
          stacks[cpu].push(
            kind === Ev.NmiDeliver
              ? ContextKind.Nmi
              : kind === Ev.McDeliver
                ? ContextKind.Mce
                : ContextKind.Irq,
          );
          break;
        case Ev.NmiNested:
          found |= 1 << 3;
          break;
        case Ev.BpDeliver:
          if (addr === lo && stacks[cpu].some((k) => k === ContextKind.Nmi || k === ContextKind.Mce))
            found |= 1 << 4;
          stacks[cpu].push(ContextKind.Bp);
          break;
        case Ev.Iret:
          stacks[cpu].pop();
          break;
        case Ev.Mark:
          if (a === Mark.PatchBegin) this.patching = true;
          else if (a === Mark.PatchEnd) this.patching = false;
          else if (a === Mark.RepeatNmi) stacks[cpu].push(ContextKind.Nmi); // the IRET did not pop the frame
          break;
      }
    }
    this.cursor = Math.max(this.cursor, count);
    this.found = found;
    return found;
  }
}

/** Adds one run's situations to the counts. */
export function countSituations(into: Coverage, mask: number): void {
  for (let i = 0; i < into.length; i++) if (mask & (1 << i)) into[i]++;
}

/** The situations never reached, as text. */
export function unreached(coverage: Coverage): string[] {
  return SITUATIONS.filter((_, i) => (coverage[i] ?? 0) === 0).map((s) => s.text);
}
