// Event delivery and IRET, the hardware rules H1–H8 of SPEC §3: which event a CPU takes at an
// instruction boundary, the NMI latch and NMI blocking, IRET's unblocking and serialization, #MC and
// MCIP, int3's #BP, IF and fixed-vector IPIs, the IST stacks. Each rule carries its source (SDM
// section, Xen or Linux function). Also what a CPU publishes to the others after a step.

import { ContextKind, CrashKind, Ev, type EventSource } from "../events.js";
import { C, CPU_WORDS, H, type MachineMemory, ROUTINE_RESUME, stackTop, UNKNOWN_VALUE } from "../memory.js";
import { Mark, type Routine, WAIT_OPS } from "../routine.js";
import type { Frame, RoutineContext } from "../types.js";
import {
  advance,
  type Context,
  type CpuState,
  crash,
  mixA,
  mixB,
  pushContext,
  pushValue,
  rflags,
  routineContext,
  routineOf,
  Shared,
} from "./state.js";

/** The variant of an NMI handler restarted by Linux's repeat_nmi (any value no IRQ vector takes). */
const REPEAT_VARIANT = 0x5245_5054;

/**
 * The event a CPU takes at its next instruction boundary, by priority (SDM Vol. 3A §6.9: machine
 * check before NMI before maskable interrupts): "mce", "nmi", "irq" or null. One function for the
 * CPU, the scheduler and the visibility test, so they can never disagree.
 */
export function pendingEvent(mem: MachineMemory, cpu: number): "mce" | "nmi" | "irq" | null {
  const w = mem.cpu;
  const o = cpu * CPU_WORDS;
  if (w[o + C.atBoundary] !== 1) return null;
  if (w[o + C.mcePending] === 1) return "mce";
  // SDM Vol. 2 STI: after STI, NMI delivery "may be inhibited" for one instruction (model-specific: an option)
  const nmiShadowed = w[o + C.interruptShadow] === 1 && mem.header[H.stiShadow] === 1;
  if (w[o + C.nmiPending] === 1 && w[o + C.nmiBlocked] === 0 && !nmiShadowed) return "nmi";
  // SDM Vol. 2 STI: maskable interrupts are recognised only after the instruction that follows STI
  if (w[o + C.irqPending] !== 0 && w[o + C.if] === 1 && w[o + C.interruptShadow] === 0) return "irq";
  return null;
}

/** An NMI arrives at `cpu` (H1, H2): it sets the one-deep latch; a second one while latched coalesces. */
export function nmiArrives(mem: MachineMemory, cpu: number, source: EventSource): void {
  const o = cpu * CPU_WORDS;
  // SDM Vol. 3A §6.7.1 + Linux nmi.c "the latch is binary": at most one NMI pending (H2)
  const coalesced = mem.cpu[o + C.nmiPending];
  mem.cpu[o + C.nmiPending] = 1;
  mem.logEvent(cpu, Ev.NmiArrive, 0, source, coalesced);
}

/**
 * A machine check arrives at `cpu`; it is delivered at the CPU's next instruction boundary. Without
 * LMCE, Intel signals a machine check to every CPU (SDM Vol. 3B §17.3.1.4 / §16 "LMCE"; AMD and LMCE
 * deliver it locally): with the broadcast option every CPU gets one.
 */
export function mceArrives(mem: MachineMemory, cpu: number): void {
  // SDM Vol. 3B §17 (MCG_EXT_CTL.LMCE_EN): without LMCE a machine check is broadcast to all logical processors
  const broadcast = mem.header[H.mceBroadcast] === 1;
  for (let c = 0; c < mem.layout.cpus; c++) {
    if (c !== cpu && !broadcast) continue;
    mem.cpu[c * CPU_WORDS + C.mcePending] = 1;
    mem.logEvent(c, Ev.McArrive, 0, broadcast ? 1 : 0, cpu);
  }
}

/** A fixed-vector IPI arrives: one IRR bit per vector, so a second one while pending coalesces. */
export function ipiArrives(mem: MachineMemory, cpu: number, vector: number): void {
  mem.cpu[cpu * CPU_WORDS + C.irqPending] |= 1 << vector;
  mem.logEvent(cpu, Ev.IpiArrive, 0, vector);
}

// ---- taking an event ----

function frameOfTop(cpu: CpuState): Frame {
  const top = cpu.contexts[cpu.contexts.length - 1];
  const interruptedIf = cpu.mem.cpu[cpu.base + C.if];
  return top.real
    ? { rip: top.real.rip, fromRealCode: true, interruptedIf }
    : { rip: 0, fromRealCode: false, interruptedIf };
}

function recomputeIst(cpu: CpuState): void {
  let live = 0;
  let nmis = 0;
  for (const c of cpu.contexts) {
    if (c.ist >= 0) live |= 1 << c.ist;
    if (c.kind === ContextKind.Nmi) nmis++;
  }
  cpu.mem.cpu[cpu.base + C.istLive] = live;
  cpu.mem.cpu[cpu.base + C.nmiLiveDepth] = nmis;
}

/** Pushes an event's handler, checking its IST stack first (H8). */
function enterHandler(
  cpu: CpuState,
  kind: ContextKind,
  ist: number,
  make: (ctx: RoutineContext) => Routine<unknown>,
  variant = 0,
): void {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  // Xen traps.c / Linux entry_64.S: NMI and #MC run on IST stacks; a second frame on a live one clobbers it (H8)
  if (ist >= 0 && (w[o + C.istLive] & (1 << ist)) !== 0) {
    cpu.mem.logEvent(cpu.id, Ev.IstClobber, w[o + C.rip], ist, w[o + C.nmiUnblockedBy], kind);
  }
  const ctx = routineContext(cpu, frameOfTop(cpu));
  w[o + C.halted] = 0;
  const interruptedRsp = w[o + C.rsp];
  const frameRsp = pushEventFrame(cpu, ist, ctx.frame);
  pushContext(cpu, kind, make, ist, ctx, variant);
  const top = cpu.contexts[cpu.contexts.length - 1];
  top.savedRsp = interruptedRsp;
  top.frameRsp = frameRsp;
  recomputeIst(cpu);
  publish(cpu);
}

/**
 * SDM Vol. 3A §6.14.2 (64-bit mode stack frame): the CPU switches to the IST stack if the gate names
 * one, else stays on the current stack aligned to 16 bytes, and pushes SS, RSP, RFLAGS, CS, RIP.
 * Returns the address of the saved-RIP slot (the handler's RSP). The saved values the model's IRET
 * uses are kept with the context too, so a clobbered frame (P3) is reported rather than followed.
 */
function pushEventFrame(cpu: CpuState, ist: number, frame: Frame): number {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  const interruptedRsp = w[o + C.rsp];
  w[o + C.rsp] = ist > 0 ? stackTop(cpu.id, ist) : interruptedRsp & ~15;
  pushValue(cpu, UNKNOWN_VALUE); // SS
  pushValue(cpu, interruptedRsp);
  pushValue(cpu, rflags(frame.interruptedIf));
  pushValue(cpu, UNKNOWN_VALUE); // CS
  pushValue(cpu, frame.fromRealCode ? frame.rip : ROUTINE_RESUME);
  return w[o + C.rsp];
}

export function deliverNmi(cpu: CpuState): void {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  const os = cpu.spec.os;
  w[o + C.nmiPending] = 0;
  // SDM Vol. 3A §6.7.1: delivering an NMI blocks further NMIs until the next IRET (H1)
  w[o + C.nmiBlocked] = 1;
  const nested = w[o + C.nmiLiveDepth] > 0 ? 1 : 0;
  if (nested && os.nestedNmiGuard) {
    // Linux entry_64.S nested_nmi: the nested NMI rewrites the outer "iret" frame to repeat_nmi and
    // IRETs straight back, so the outer handler runs again; its IRET unblocks NMIs once more (H3).
    const outer = cpu.contexts.findLast((c: Context) => c.kind === ContextKind.Nmi) as Context;
    outer.rctx.repeatNmi = true;
    w[o + C.nmiBlocked] = 0;
    cpu.mem.logEvent(cpu.id, Ev.NmiNested, w[o + C.rip]);
    publish(cpu);
    return;
  }
  cpu.mem.logEvent(cpu.id, Ev.NmiDeliver, w[o + C.rip], os.istNmi, nested);
  // SDM §6.7.1: an NMI is taken through an interrupt gate: IF is cleared (NMIs ignore IF, H1/H7)
  enterHandler(cpu, ContextKind.Nmi, os.istNmi, (ctx) => os.nmiHandler(ctx));
  w[o + C.if] = 0;
}

export function deliverMce(cpu: CpuState): void {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  w[o + C.mcePending] = 0;
  // SDM §17.3.1.2 MCG_STATUS.MCIP: a machine check while MCIP is set shuts the processor down (H5)
  if (w[o + C.mcip] === 1) {
    crash(cpu, CrashKind.Shutdown, w[o + C.rip]);
    return;
  }
  w[o + C.mcip] = 1;
  cpu.mem.logEvent(cpu.id, Ev.McDeliver, w[o + C.rip], cpu.spec.os.istMce);
  // #MC is not blocked by NMI blocking and does not set it (H5)
  enterHandler(cpu, ContextKind.Mce, cpu.spec.os.istMce, (ctx) => cpu.spec.os.mceHandler(ctx));
  w[o + C.if] = 0;
}

export function deliverIrq(cpu: CpuState): void {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  const pending = w[o + C.irqPending];
  const vector = 31 - Math.clz32(pending & -pending);
  w[o + C.irqPending] = pending & ~(1 << vector);
  cpu.mem.logEvent(cpu.id, Ev.IrqDeliver, w[o + C.rip], vector);
  // SDM §6.8.1: maskable interrupts only with IF=1; the interrupt gate clears IF (H7)
  enterHandler(cpu, ContextKind.Irq, -1, (ctx) => cpu.spec.os.irqHandler(ctx, vector), vector + 1);
  w[o + C.if] = 0;
}

export function deliverBp(cpu: CpuState, address: number, frame: Frame): void {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  cpu.mem.logEvent(cpu.id, Ev.BpDeliver, address);
  const ctx = routineContext(cpu, frame);
  const interruptedRsp = w[o + C.rsp];
  const frameRsp = pushEventFrame(cpu, -1, frame);
  pushContext(cpu, ContextKind.Bp, (c) => cpu.spec.os.bpHandler(c), -1, ctx);
  const top = cpu.contexts[cpu.contexts.length - 1];
  top.savedRsp = interruptedRsp;
  top.frameRsp = frameRsp;
  // SDM Vol. 2 INT3 + Linux idt.c SYSG / Xen set_swint_gate: #BP through an interrupt gate clears IF (H6)
  if (cpu.spec.os.bpClearsIf) w[o + C.if] = 0;
}

// ---- IRET and serialization ----

/** IRET: pops the top context (H3, H4). */
export function iret(cpu: CpuState): void {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  const top = cpu.contexts[cpu.contexts.length - 1];
  if (top.kind === ContextKind.Nmi && top.rctx.repeatNmi) {
    // Linux entry_64.S: a nested NMI rewrote this handler's "iret" frame to repeat_nmi, so the IRET
    // (which unblocks NMIs, H3) lands back at the start of the NMI handler with the frame kept.
    top.rctx.repeatNmi = false;
    top.real = null;
    w[o + C.rsp] = top.frameRsp;
    w[o + C.nmiBlocked] = 0;
    cpu.mem.logEvent(cpu.id, Ev.Iret, w[o + C.rip], ContextKind.Nmi, 1, 1);
    serialize(cpu, 3);
    cpu.mem.logEvent(cpu.id, Ev.Mark, 0, Mark.RepeatNmi, 0);
    top.make = (c) => cpu.spec.os.nmiHandler(c);
    top.routine = top.make(top.rctx);
    top.inputs = [];
    top.initialFrame = { ...top.rctx.frame };
    // A new generator: its trail starts again, marked as a repeat (a fresh routine state).
    top.trailA = mixA(0x811c9dc5, REPEAT_VARIANT);
    top.trailB = mixB(0x01000193, REPEAT_VARIANT);
    advance(cpu, top, 0);
    return;
  }
  const ctx = cpu.contexts.pop() as Context;
  if (ctx.kind === ContextKind.Base || cpu.contexts.length === 0) {
    throw new Error(`${routineOf(cpu, ctx)}: IRET with no event frame to return to`);
  }
  const wasBlocked = w[o + C.nmiBlocked];
  // SDM §6.7.1: any IRET clears NMI blocking, even one ending a #BP inside an NMI handler (H3);
  // FRED: ERETS unblocks NMIs only when it returns from the NMI itself
  if (!cpu.spec.os.fred || ctx.kind === ContextKind.Nmi) w[o + C.nmiBlocked] = 0;
  recomputeIst(cpu);
  const nmiStillLive = w[o + C.nmiLiveDepth] > 0 ? 1 : 0;
  const unblocked = wasBlocked === 1 && w[o + C.nmiBlocked] === 0 ? 1 : 0;
  if (unblocked && nmiStillLive) w[o + C.nmiUnblockedBy] = ctx.kind;
  if (w[o + C.nmiLiveDepth] === 0) w[o + C.nmiUnblockedBy] = 0;
  w[o + C.if] = ctx.savedIf;
  w[o + C.rsp] = ctx.savedRsp;
  cpu.mem.logEvent(cpu.id, Ev.Iret, w[o + C.rip], ctx.kind, unblocked, nmiStillLive);
  // SDM §9.3: IRET is serializing (H4)
  serialize(cpu, 3);
  const under = cpu.contexts[cpu.contexts.length - 1];
  if (under.real) {
    under.real.rip = ctx.rctx.frame.rip;
    w[o + C.rip] = ctx.rctx.frame.rip;
  }
}

export function serialize(cpu: CpuState, how: number): void {
  cpu.observer?.access(cpu.id, Shared.WriteSeq, 0, false);
  // SDM §9.3: after a serializing instruction the CPU fetches afresh (ends H10 staleness)
  cpu.mem.cpu[cpu.base + C.lastSerializeSeq] = cpu.mem.header[H.writeSeq];
  if (how !== 3) cpu.mem.logEvent(cpu.id, Ev.Serialize, 0, how);
}

// ---- what the other CPUs see of this one ----

/** Mirrors what others must see of this CPU into its block: wait condition, depth, RIP. */
export function publish(cpu: CpuState): void {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  const top = cpu.contexts[cpu.contexts.length - 1];
  w[o + C.depth] = cpu.contexts.length;
  if (top.real) w[o + C.rip] = top.real.rip;
  const next = top.real ? null : top.next;
  if (next && next.k === "wait") {
    w[o + C.waiting] = 1;
    const [c0, c1] = next.conds;
    w[o + C.waitWord0] = c0.word;
    w[o + C.waitOp0] = WAIT_OPS.indexOf(c0.op);
    w[o + C.waitValue0] = c0.value;
    w[o + C.waitWord1] = c1 ? c1.word : -1;
    w[o + C.waitOp1] = c1 ? WAIT_OPS.indexOf(c1.op) : 0;
    w[o + C.waitValue1] = c1 ? c1.value : 0;
  } else {
    w[o + C.waiting] = 0;
  }
  // The base routine has finished and nothing runs above it: the CPU idles (it still takes events).
  w[o + C.done] = cpu.contexts.length === 1 && top.next === null && top.real === null ? 1 : 0;
  w[o + C.visible] = nextIsVisible(cpu, top) ? 1 : 0;
}

/**
 * Whether the next step can interact with another CPU: a routine step on shared state, or a fetch
 * from code that is (or may be) written. Fetching code nobody writes is CPU-private, so the engine
 * does not offer a choice before it (a partial-order reduction; event delivery is always visible).
 */
function nextIsVisible(cpu: CpuState, top: Context): boolean {
  if (pendingEvent(cpu.mem, cpu.id) !== null) return true;
  // Inside an event handler every boundary is a place where a further event matters (P3).
  if (cpu.contexts.length > 1) return true;
  // The load of an indirect branch's target word reads shared data.
  if (cpu.pendingIndirect) return true;
  if (top.real) {
    const address = cpu.fetchLen > 0 ? cpu.fetchStart + cpu.fetchLen : top.real.rip;
    return cpu.spec.siteOracle.writable(address);
  }
  const next = top.next;
  return next !== null && next.k !== "mark" && next.k !== "call";
}
