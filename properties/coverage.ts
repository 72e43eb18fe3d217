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
  const site = spec.sites[0];
  const lo = site.address;
  const hi = site.address + site.newBytes.length;
  const now = site.oldBytes.slice();
  let written = false;
  let done = false;
  let patching = false;
  const cpus = spec.config.hardware.cpus;
  // Context kinds on each CPU, innermost last (base not included).
  const stacks: number[][] = Array.from({ length: cpus }, () => []);
  let found = 0;
  const log = mem.log;
  const count = mem.header[H.logCount];
  for (let r = 0; r < count; r++) {
    const o = r * LOG_RECORD_WORDS;
    const cpu = log[o + 1];
    const kind = log[o + 2];
    const addr = log[o + 3];
    const a = log[o + 4];
    switch (kind) {
      case Ev.CodeWrite:
        if (addr >= lo && addr < hi) {
          now[addr - lo] = a;
          written = true;
          done = now.every((b, i) => b === site.newBytes[i]);
        }
        break;
      case Ev.Fetch:
        if (addr >= lo && addr < hi && written && !done) {
          found |= 1 << 0;
          if (stacks[cpu].some((k) => k === ContextKind.Nmi || k === ContextKind.Mce)) found |= 1 << 1;
        }
        break;
      case Ev.NmiArrive:
      case Ev.McArrive:
        if (patching) found |= 1 << 2;
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
        if (a === Mark.PatchBegin) patching = true;
        else if (a === Mark.PatchEnd) patching = false;
        else if (a === Mark.RepeatNmi) stacks[cpu].push(ContextKind.Nmi); // the IRET did not pop the frame
        break;
    }
  }
  return found;
}

/** Adds one run's situations to the counts. */
export function countSituations(into: Coverage, mask: number): void {
  for (let i = 0; i < into.length; i++) if (mask & (1 << i)) into[i]++;
}

/** The situations never reached, as text. */
export function unreached(coverage: Coverage): string[] {
  return SITUATIONS.filter((_, i) => (coverage[i] ?? 0) === 0).map((s) => s.text);
}
