// Executing real code (SPEC §4, at the control-flow level): what a decoded instruction does to RIP,
// RSP, RBP and IF. Stack effects of straight-line instructions, call/ret/jmp and conditional
// branches, int3, IRETQ in real code (an event frame's IRET, or a frame the code built itself), and
// indirect branches through a function-pointer data word.

import { FlowControl } from "iced-x86";
import { ContextKind, CrashKind, Ev } from "../events.js";
import { C, ROUTINE_RETURN, UNKNOWN_VALUE } from "../memory.js";
import type { Decoded } from "../x86.js";
import { deliverBp, iret, serialize } from "./delivery.js";
import {
  advance,
  type Context,
  type CpuState,
  crash,
  type PendingIndirect,
  popValue,
  pushValue,
  type RealCode,
  rflags,
  Shared,
  setIf,
  ValueKind,
} from "./state.js";

/**
 * Runs one decoded instruction of real code (fetch.ts has ended the STI shadow and taken an invalid
 * one as #UD): int3, direct and conditional branches, calls and returns, indirect branches, and the
 * stack and IF effects of straight-line instructions.
 */
export function execute(cpu: CpuState, ctx: Context, real: RealCode, address: number, d: Decoded): void {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  const next = address + d.length;
  if (d.isInt3) {
    // SDM Vol. 2 INT3: #BP is a trap; the saved RIP is the address after the int3 (H6)
    real.rip = next;
    deliverBp(cpu, address, { rip: next, fromRealCode: true, interruptedIf: w[o + C.if] });
    return;
  }
  real.rip = next;
  switch (d.flow) {
    case FlowControl.UnconditionalBranch:
      real.rip = address + d.relTarget;
      break;
    case FlowControl.ConditionalBranch: // direction from the tape
      if (cpu.chooser.choose(2, ValueKind.Branch) === 1) real.rip = address + d.relTarget;
      break;
    case FlowControl.Call:
      // SDM Vol. 2 CALL: push the return address, then jump
      if (!pushValue(cpu, next)) return;
      real.rip = address + d.relTarget;
      break;
    case FlowControl.IndirectBranch:
    case FlowControl.IndirectCall:
      startIndirect(cpu, address, next, d);
      return;
    case FlowControl.Return:
      if (d.stack.k === "iret") iretInRealCode(cpu, ctx, real, address);
      else if (d.stack.k === "ret") ret(cpu, ctx, real, address, d.stack.release);
      return;
    default:
      if (!applyStackEffect(cpu, d)) return;
      if (d.isSerializing) serialize(cpu, 3);
      if (d.isHlt) w[o + C.halted] = 1;
  }
}

/** RSP, RBP and IF effects of a straight-line instruction (SDM Vol. 2, each instruction's Operation). */
function applyStackEffect(cpu: CpuState, d: Decoded): boolean {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  const e = d.stack;
  switch (e.k) {
    case "none":
      return true;
    case "push": {
      const value =
        e.what === "rbp"
          ? w[o + C.rbp]
          : e.what === "rsp"
            ? w[o + C.rsp]
            : e.what === "imm"
              ? e.imm
              : e.what === "flags"
                ? rflags(w[o + C.if])
                : UNKNOWN_VALUE;
      return pushValue(cpu, value);
    }
    case "pop": {
      const value = popValue(cpu);
      if (value === null) return false;
      if (e.into === "rbp") w[o + C.rbp] = value;
      // SDM Vol. 2 POPF: at CPL 0 POPF loads IF (bit 9) from the popped value
      if (e.into === "flags") setIf(cpu, (value >> 9) & 1);
      return true;
    }
    case "leave": {
      // SDM Vol. 2 LEAVE: RSP := RBP, then POP RBP
      w[o + C.rsp] = w[o + C.rbp];
      const value = popValue(cpu);
      if (value === null) return false;
      w[o + C.rbp] = value;
      return true;
    }
    case "set": {
      const src = e.src === "rsp" ? w[o + C.rsp] : e.src === "rbp" ? w[o + C.rbp] : UNKNOWN_VALUE;
      const value = e.src === "unknown" ? UNKNOWN_VALUE : (src + e.disp) | 0;
      w[o + (e.dest === "rsp" ? C.rsp : C.rbp)] = value;
      return true;
    }
    case "cli":
      setIf(cpu, 0);
      return true;
    case "sti":
      // SDM Vol. 2 STI: interrupts are recognised only after the next instruction (the STI shadow)
      setIf(cpu, 1);
      w[o + C.interruptShadow] = 1;
      return true;
    case "unmodelled":
      throw new Error(
        `CPU ${cpu.id} executes \`${e.what}\` at ${cpu.spec.image.symbolize(w[o + C.rip])}, which changes RSP in a way the model does not follow (it tracks push, pop, call, ret, leave, and mov/lea/add/sub of RSP and RBP)`,
      );
    default:
      return true;
  }
}

/**
 * SDM Vol. 2 RET: pop the return address (and release `release` more bytes). A routine's ROUTINE_RETURN
 * ends the real code; a value that is not an address in the image is a crash naming it (P4).
 */
function ret(cpu: CpuState, ctx: Context, real: RealCode, address: number, release: number): void {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  const slotAddress = w[o + C.rsp];
  const value = popValue(cpu);
  if (value === null) return;
  w[o + C.rsp] += release;
  if (value === ROUTINE_RETURN && slotAddress === real.entrySlot) {
    ctx.real = null; // back to the routine that called into real code
    advance(cpu, ctx, 0);
    return;
  }
  if (!inImage(cpu, value)) {
    crash(cpu, CrashKind.BadReturn, address, value, slotAddress);
    return;
  }
  real.rip = value;
}

/** Whether code is placed at `address` (a return address into the image). */
function inImage(cpu: CpuState, address: number): boolean {
  return cpu.mem.codeIndex(address) >= 0;
}

/**
 * IRETQ in real code (SDM Vol. 2 IRET; §6.7.1): with RSP at the top event frame it is that handler's
 * IRET, exactly as the routine step (H3, H4). Anywhere else it pops a frame the code built itself
 * (Linux sync_core's iret_to_self): RIP, CS, RFLAGS, RSP, SS; it unblocks NMIs and serializes too.
 */
function iretInRealCode(cpu: CpuState, ctx: Context, real: RealCode, address: number): void {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  if (cpu.contexts.length > 1 && w[o + C.rsp] === ctx.frameRsp) {
    ctx.real = null;
    iret(cpu);
    return;
  }
  const at = w[o + C.rsp];
  const rip = popValue(cpu);
  popValue(cpu); // CS
  const flags = popValue(cpu);
  const rsp = popValue(cpu);
  popValue(cpu); // SS
  if (rip === null || flags === null || rsp === null) return;
  if (!inImage(cpu, rip)) {
    crash(cpu, CrashKind.BadReturn, address, rip, at);
    return;
  }
  if (cpu.mem.stackSlot(cpu.id, rsp) < 0 && rsp !== stackEnd(cpu, rsp)) {
    crash(cpu, CrashKind.StackFault, address, rsp);
    return;
  }
  real.rip = rip;
  w[o + C.rsp] = rsp;
  setIf(cpu, (flags >> 9) & 1);
  const wasBlocked = w[o + C.nmiBlocked];
  // SDM §6.7.1: any IRET clears NMI blocking (H3); FRED's ERETS does only from the NMI itself
  if (!cpu.spec.os.fred) w[o + C.nmiBlocked] = 0;
  const unblocked = wasBlocked === 1 && w[o + C.nmiBlocked] === 0 ? 1 : 0;
  // The code's own IRET let NMIs in: a nested NMI then names the OS (P3 "os"), as sync_core's does.
  if (unblocked && w[o + C.nmiLiveDepth] > 0) w[o + C.nmiUnblockedBy] = ContextKind.Base;
  cpu.mem.logEvent(cpu.id, Ev.Iret, address, ContextKind.Base, unblocked, w[o + C.nmiLiveDepth] > 0 ? 1 : 0);
  // SDM §9.3: IRET is serializing (H4)
  serialize(cpu, 3);
}

/** A stack top is one past the last slot: a valid RSP with nothing pushed. */
function stackEnd(cpu: CpuState, rsp: number): number {
  return cpu.mem.stackSlot(cpu.id, rsp - 8) >= 0 ? rsp : -1;
}

/** An indirect call/jump: resolve its pointer to a data word now, load it in the next step. */
function startIndirect(cpu: CpuState, address: number, next: number, d: Decoded): void {
  const pointer = cpu.spec.image.indirectPointer(address, d);
  const call = d.flow === FlowControl.IndirectCall;
  if ("unresolved" in pointer) {
    throw new Error(
      `CPU ${cpu.id}: the indirect ${call ? "call" : "jump"} at ${cpu.spec.image.symbolize(address)} (\`${d.text}\`) takes its target ${pointer.unresolved}: the model cannot resolve it; branch through a function-pointer data symbol of the scenario (\`call [name]\`)`,
    );
  }
  cpu.pendingIndirect = { word: cpu.spec.dataWords[pointer.ordinal], call, next, address };
  // Mid-instruction: no event is taken between the fetch and the load of the pointer (H1).
  cpu.mem.cpu[cpu.base + C.atBoundary] = 0;
}

/** Loads the pointer (a step of its own: the word is shared data) and branches to it. */
export function indirectStep(cpu: CpuState, real: RealCode, p: PendingIndirect): void {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  cpu.pendingIndirect = null;
  w[o + C.atBoundary] = 1;
  const target = Atomics.load(cpu.mem.data, p.word);
  cpu.observer?.access(cpu.id, Shared.Data, p.word, false);
  cpu.mem.logEvent(cpu.id, Ev.Load, p.word, target, p.address);
  if (p.call && !pushValue(cpu, p.next)) return;
  real.rip = target;
  w[o + C.rip] = target;
}
