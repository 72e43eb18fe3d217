// The engine's one piece of mechanism shared by every engine: after a CPU's step, work out what
// happens next — apply event arrivals, end the run, or name the CPU that steps next. It reads and
// writes only the buffer, so the CPU that holds the token can run it in its own thread.
import { mceArrives, nmiArrives } from "../model/cpu/delivery.js";
import { Ev, EventSource } from "../model/events.js";
import { C, CPU_WORDS, H, type MachineMemory, RunStatus } from "../model/memory.js";
import { enabledActions, runnable } from "../model/schedule.js";
import type { Scheduler } from "./strategies/scheduler.js";

/** The CPU to step next, or -1 when the run is over (status says why). */
export function nextTurn(mem: MachineMemory, actions: Int32Array, scheduler: Scheduler): number {
  const h = mem.header;
  const n = mem.layout.cpus;
  for (;;) {
    if (h[H.status] !== RunStatus.Running) return end(mem, h[H.status]);
    if (h[H.step] >= h[H.stepBound]) return end(mem, RunStatus.StepBound);
    // CPU-private work of the current CPU runs on without a choice (model/cpu nextIsVisible).
    const current = h[H.lastCpu];
    if (h[H.step] > 0 && mem.cpu[current * CPU_WORDS + C.visible] === 0 && runnable(mem, current)) {
      h[H.step]++;
      return current;
    }
    const count = enabledActions(mem, actions);
    if (count === 0) {
      let allDone = true;
      for (let c = 0; c < n; c++) if (mem.cpu[c * CPU_WORDS + C.done] !== 1) allDone = false;
      return end(mem, allDone ? RunStatus.Finished : RunStatus.Deadlock);
    }
    const action = actions[scheduler.pickAction(actions, count)];
    h[H.step]++;
    if (action < n) {
      h[H.lastCpu] = action;
      return action;
    }
    const target = (action - n) % n;
    if (action < 2 * n) {
      h[H.nmisSent]++;
      nmiArrives(mem, target, EventSource.External);
    } else {
      h[H.mcesSent]++;
      mceArrives(mem, target);
    }
    // When the target can take the event at its next boundary, delivering it is its next step, and
    // event delivery is a scheduling point (model/cpu nextIsVisible): the flag it published is stale.
    const o = target * CPU_WORDS;
    if (mem.cpu[o + C.atBoundary] === 1 && (action >= 2 * n || mem.cpu[o + C.nmiBlocked] === 0))
      mem.cpu[o + C.visible] = 1;
  }
}

function end(mem: MachineMemory, status: RunStatus): number {
  if (mem.header[H.endStep] === 0) {
    mem.header[H.status] = status;
    mem.header[H.endStep] = mem.header[H.step] + 1;
    mem.logEvent(-1, Ev.End, 0, status);
  }
  return -1;
}
