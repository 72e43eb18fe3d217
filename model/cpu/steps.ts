// Routine steps: what each step of the step language (model/routine, SPEC §4) does on the CPU it runs
// on. Loads, stores and read-modify-writes of data words, code writes and reads, serialization, CLI
// and STI, IPIs and NMIs sent to other CPUs, IRET, int3, a call into real code, waits, MCIP, marks.

import { ContextKind, CrashKind, Ev, EventSource } from "../events.js";
import { CODE_BASE } from "../image.js";
import { C, type MachineMemory, ROUTINE_RETURN } from "../memory.js";
import { type Step, WAIT_OPS } from "../routine.js";
import { deliverBp, ipiArrives, iret, nmiArrives, serialize } from "./delivery.js";
import { writeCode } from "./fetch.js";
import { advance, type Context, type CpuState, crash, pushValue, routineOf, Shared } from "./state.js";

/** Whether a wait condition holds: `op` indexes WAIT_OPS (eq, ne, ge, lt). */
export function evalWait(mem: MachineMemory, word: number, op: number, value: number): boolean {
  const v = Atomics.load(mem.data, word);
  switch (op) {
    case 0:
      return v === value;
    case 1:
      return v !== value;
    case 2:
      return v >= value;
    default:
      return v < value;
  }
}

/**
 * Performs the step `s` the routine of `ctx` yielded. Most steps then hand the routine their result
 * (state.ts advance); iret, int3 and a call into real code leave the context to what they start.
 */
export function perform(cpu: CpuState, ctx: Context, s: Step): void {
  const mem = cpu.mem;
  const w = mem.cpu;
  const o = cpu.base;
  let result = 0;
  switch (s.k) {
    case "load":
      cpu.observer?.access(cpu.id, Shared.Data, s.word, false);
      result = Atomics.load(mem.data, s.word);
      break;
    case "store":
      cpu.observer?.access(cpu.id, Shared.Data, s.word, true);
      Atomics.store(mem.data, s.word, s.value);
      mem.logEvent(cpu.id, Ev.Store, s.word, s.value);
      break;
    case "rmw": {
      cpu.observer?.access(cpu.id, Shared.Data, s.word, true);
      const old = Atomics.load(mem.data, s.word);
      let value = old;
      if (s.op === "add") value = (old + s.value) | 0;
      else if (s.op === "xchg") value = s.value;
      else if (old === s.expected) value = s.value;
      Atomics.store(mem.data, s.word, value);
      if (value !== old) mem.logEvent(cpu.id, Ev.Store, s.word, value);
      result = s.discard ? 0 : old;
      break;
    }
    case "writeCode":
      writeCode(cpu, s.addr, s.bytes);
      break;
    case "readCode": {
      const i = mem.codeIndex(s.addr);
      if (i < 0)
        throw new Error(
          `${routineOf(cpu, ctx)} reads code at 0x${s.addr.toString(16)}, where no code is placed`,
        );
      cpu.observer?.access(cpu.id, Shared.Code, s.addr - CODE_BASE, false);
      result = mem.code[i];
      break;
    }
    case "serialize":
      // SDM §9.3: CPUID, SERIALIZE and IRET (Linux sync_core's iret_to_self) serialize (H4)
      serialize(cpu, s.how === "cpuid" ? 0 : s.how === "serialize" ? 1 : 2);
      // Linux sync_core.h: iret_to_self "unmasks NMIs" like any IRET (H3)
      if (s.how === "iret-to-self" && !cpu.spec.os.fred && w[o + C.nmiBlocked] === 1) {
        w[o + C.nmiBlocked] = 0;
        // The OS's own IRET let NMIs in: a nested NMI then names it (P3 "os"), not an earlier handler.
        if (w[o + C.nmiLiveDepth] > 0) w[o + C.nmiUnblockedBy] = ContextKind.Base;
      }
      break;
    case "cli":
      w[o + C.if] = 0;
      mem.logEvent(cpu.id, Ev.Cli);
      break;
    case "sti":
      w[o + C.if] = 1;
      // SDM Vol. 2 STI: the next instruction runs before an interrupt is recognised (the STI shadow)
      w[o + C.interruptShadow] = 1;
      mem.logEvent(cpu.id, Ev.Sti);
      break;
    case "ipi":
      for (const t of targets(cpu, s.target)) {
        cpu.observer?.access(cpu.id, Shared.Cpu, t, true);
        ipiArrives(mem, t, s.vector);
      }
      break;
    case "nmiIpi":
      for (const t of targets(cpu, s.target)) {
        cpu.observer?.access(cpu.id, Shared.Cpu, t, true);
        nmiArrives(mem, t, EventSource.Ipi);
      }
      break;
    case "iret":
      iret(cpu);
      return;
    case "int3":
      // A routine's own int3 (seed: "arch_livepatch_apply just calls 'int 3'"): #BP on this CPU.
      advance(cpu, ctx, 0);
      deliverBp(cpu, -1, { rip: 0, fromRealCode: false, interruptedIf: w[o + C.if] });
      return;
    case "call":
      if (mem.codeIndex(s.addr) < 0) {
        throw new Error(
          `${routineOf(cpu, ctx)} calls 0x${s.addr.toString(16)}, where no code is placed (outside the image, or a function the scenario does not reach)`,
        );
      }
      if (!pushValue(cpu, ROUTINE_RETURN)) return;
      ctx.real = { rip: s.addr, entrySlot: w[o + C.rsp] };
      w[o + C.rip] = s.addr;
      return; // the routine resumes when the real code returns
    case "wait": {
      // Scheduled only once a condition holds (model/schedule); re-check for safety.
      for (const c of s.conds) cpu.observer?.access(cpu.id, Shared.Data, c.word, false);
      const ok = s.conds.some((c) => evalWait(mem, c.word, WAIT_OPS.indexOf(c.op), c.value));
      if (!ok) throw new Error(`CPU ${cpu.id} was stepped while waiting on an unmet condition`);
      break;
    }
    case "clearMcip":
      // Linux mce_wrmsrq(MSR_IA32_MCG_STATUS, 0): the handler clears MCIP before it returns (H5)
      w[o + C.mcip] = 0;
      mem.logEvent(cpu.id, Ev.McipClear);
      serialize(cpu, 3); // WRMSR is serializing (H4)
      break;
    case "mark":
      mem.logEvent(cpu.id, Ev.Mark, 0, s.mark, s.value);
      break;
    case "unhandledBp":
      crash(cpu, CrashKind.UnhandledBp, ctx.rctx.frame.rip - 1);
      return;
  }
  advance(cpu, ctx, result);
}

function targets(cpu: CpuState, t: number | "others" | "all" | "self"): number[] {
  const n = cpu.spec.config.hardware.cpus;
  if (t === "self") return [cpu.id];
  if (t === "all") return Array.from({ length: n }, (_, i) => i);
  if (t === "others") return Array.from({ length: n }, (_, i) => i).filter((i) => i !== cpu.id);
  if (t < 0 || t >= n) throw new Error(`CPU ${cpu.id} sends an IPI to CPU ${t}, which does not exist`);
  return [t];
}
