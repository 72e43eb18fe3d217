// What may happen next, read from the buffer alone (so any CPU's thread can work it out): the enabled
// actions of SPEC §8, in their fixed order. Which one happens is the strategy's business (workers/strategies).
import { pendingEvent } from "./cpu/delivery.js";
import { evalWait } from "./cpu/steps.js";
import { C, CPU_WORDS, H, type MachineMemory } from "./memory.js";

/** A CPU can take a step: it has a deliverable event, or its top context is neither done nor waiting on a false condition. */
export function runnable(mem: MachineMemory, cpu: number): boolean {
  const w = mem.cpu;
  const o = cpu * CPU_WORDS;
  if (w[o + C.atBoundary] === 0) return true; // mid-instruction: the next byte (or pointer load) is due
  // SDM §6.7.1, §17.3, §6.8.1: what the CPU would take at this boundary (H1, H5, H7)
  if (pendingEvent(mem, cpu) !== null) return true;
  if (w[o + C.done] === 1 || w[o + C.halted] === 1) return false;
  if (w[o + C.waiting] === 1) {
    if (evalWait(mem, w[o + C.waitWord0], w[o + C.waitOp0], w[o + C.waitValue0])) return true;
    const w1 = w[o + C.waitWord1];
    return w1 >= 0 && evalWait(mem, w1, w[o + C.waitOp1], w[o + C.waitValue1]);
  }
  return true;
}

/**
 * Actions are numbers: 0..n-1 = step CPU i; n+k = an external NMI arrives at CPU k; 2n+k = a #MC
 * arrives at CPU k. Fills `out` with the enabled actions: the current CPU first (so choice 0 = keep running it), the other
 * runnable CPUs in order after it, then NMI and #MC arrivals while the budgets last. Returns the count,
 * and 0 when no CPU can run (events are offered only while some CPU runs).
 */
export function enabledActions(mem: MachineMemory, out: Int32Array): number {
  const n = mem.layout.cpus;
  const cur = mem.header[H.lastCpu];
  let count = 0;
  for (let i = 0; i < n; i++) {
    const c = (cur + i) % n;
    if (runnable(mem, c)) out[count++] = c;
  }
  if (count === 0) return 0;
  if (mem.header[H.nmisSent] < mem.header[H.nmiBudget]) for (let k = 0; k < n; k++) out[count++] = n + k;
  // A broadcast machine check reaches every CPU whichever saw it: one action, not n equivalent ones.
  const mceTargets = mem.header[H.mceBroadcast] === 1 ? 1 : n;
  if (mem.header[H.mcesSent] < mem.header[H.mceBudget])
    for (let k = 0; k < mceTargets; k++) out[count++] = 2 * n + k;
  return count;
}

/** Who waits on what, for a deadlock report. */
export function waiters(mem: MachineMemory, wordName: (w: number) => string): string[] {
  const out: string[] = [];
  const ops = ["==", "!=", ">=", "<"];
  for (let c = 0; c < mem.layout.cpus; c++) {
    const o = c * CPU_WORDS;
    if (mem.cpu[o + C.done] === 1) continue;
    if (mem.cpu[o + C.waiting] === 1) {
      let what = `${wordName(mem.cpu[o + C.waitWord0])} ${ops[mem.cpu[o + C.waitOp0]]} ${mem.cpu[o + C.waitValue0]}`;
      const w1 = mem.cpu[o + C.waitWord1];
      if (w1 >= 0) what += ` or ${wordName(w1)} ${ops[mem.cpu[o + C.waitOp1]]} ${mem.cpu[o + C.waitValue1]}`;
      out.push(`CPU ${c} waits until ${what} (now ${mem.data[mem.cpu[o + C.waitWord0]]})`);
    } else if (mem.cpu[o + C.halted] === 1) {
      out.push(`CPU ${c} is halted with no deliverable event`);
    }
  }
  return out;
}
