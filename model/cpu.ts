// One simulated x86 CPU: the hardware rules of SPEC §3 (events, IRET, IST, the NMI latch, #MC/MCIP,
// serialization, the fetch view) and the interpreter of routine steps. This file and model/cpu/ are
// semantics only: who runs next is decided elsewhere (model/schedule for what is enabled,
// workers/strategies for the pick). The Cpu class owns the CPU's state and calls the rule families:
//   cpu/state.ts      the state beyond the buffer, routine contexts, stack pushes and pops, crashes
//   cpu/delivery.ts   event delivery and IRET (H1–H8), and what a CPU publishes to the others
//   cpu/fetch.ts      instruction fetch and code writes (H9–H11)
//   cpu/real-code.ts  executing real code: stack effects, call/ret/jmp, IRETQ, indirect branches
//   cpu/steps.ts      routine steps (the step language's `perform`)
//   cpu/snapshot.ts   fingerprint, save and restore (the exhaustive search)

import { deliverIrq, deliverMce, deliverNmi, pendingEvent, publish } from "./cpu/delivery.js";
import { fetchStep } from "./cpu/fetch.js";
import { indirectStep } from "./cpu/real-code.js";
import { type CpuSnapshot, cpuFingerprint, restoreCpu, saveCpu } from "./cpu/snapshot.js";
import { type AccessObserver, type Chooser, CpuState, pushContext, routineContext } from "./cpu/state.js";
import { perform } from "./cpu/steps.js";
import { ContextKind } from "./events.js";
import { C, type MachineMemory, stackTop } from "./memory.js";
import type { MachineSpec } from "./types.js";

export class Cpu {
  readonly id: number;
  private readonly state: CpuState;

  constructor(
    id: number,
    mem: MachineMemory,
    spec: MachineSpec,
    chooser: Chooser,
    observer?: AccessObserver,
  ) {
    this.id = id;
    this.state = new CpuState(id, mem, spec, chooser, observer);
  }

  /** Puts the CPU at its base routine, IF=1, no events; the buffer must have been reset. */
  start(): void {
    const cpu = this.state;
    const w = cpu.mem.cpu;
    const o = cpu.base;
    w[o + C.if] = 1;
    w[o + C.atBoundary] = 1;
    w[o + C.depth] = 1;
    w[o + C.rsp] = stackTop(cpu.id, 0);
    w[o + C.rbp] = 0;
    cpu.contexts = [];
    cpu.fetchLen = 0;
    cpu.pendingIndirect = null;
    const ctx = routineContext(cpu, { rip: 0, fromRealCode: false, interruptedIf: 1 });
    pushContext(cpu, ContextKind.Base, (c) => cpu.spec.baseRoutine(c), -1, ctx);
    publish(cpu);
  }

  /** Feeds `mix` this CPU's state beyond the buffer (state caching; cpu/snapshot.ts cpuFingerprint). */
  fingerprint(mix: (v: number) => void): void {
    cpuFingerprint(this.state, mix);
  }

  /** This CPU's state beyond the buffer, to resume from with restore (cpu/snapshot.ts saveCpu). */
  save(): CpuSnapshot {
    return saveCpu(this.state);
  }

  /** Puts the CPU back in the state `save` returned, on the path being resumed (cpu/snapshot.ts restoreCpu). */
  restore(s: CpuSnapshot): void {
    restoreCpu(this.state, s);
  }

  /** One step of this CPU: deliver a deliverable event, or perform the top context's next step. */
  step(): void {
    const cpu = this.state;
    // SDM §6.7.1 / §17.3 / §6.8.1: events are taken at instruction boundaries only (H1, H5, H7)
    const event = pendingEvent(cpu.mem, cpu.id);
    if (event !== null) {
      if (event === "mce") deliverMce(cpu);
      else if (event === "nmi") deliverNmi(cpu);
      else deliverIrq(cpu);
      return;
    }
    const top = cpu.contexts[cpu.contexts.length - 1];
    if (cpu.pendingIndirect && top.real) indirectStep(cpu, top.real, cpu.pendingIndirect);
    else if (top.real) fetchStep(cpu, top, top.real);
    else if (top.next) {
      // The STI shadow covers one instruction: a routine step counts as one (SDM Vol. 2 STI)
      cpu.mem.cpu[cpu.base + C.interruptShadow] = 0;
      perform(cpu, top, top.next);
    }
    publish(cpu);
  }
}
