// One simulated x86 CPU: the hardware rules of SPEC §3 (events, IRET, IST, the NMI latch, #MC/MCIP,
// serialization, the fetch view) and the interpreter of routine steps. This file is semantics only:
// who runs next is decided elsewhere (model/schedule for what is enabled, workers/strategies for the pick).

import { FlowControl } from "iced-x86";
import { ContextKind, CrashKind, Ev, EventSource } from "./events.js";
import { CODE_BASE } from "./image.js";
import {
  C,
  CPU_WORDS,
  H,
  HISTORY_DEPTH,
  type MachineMemory,
  ROUTINE_RESUME,
  ROUTINE_RETURN,
  RunStatus,
  stackTop,
  UNKNOWN_VALUE,
} from "./memory.js";
import { noteRoutine, routineLabel } from "./progress.js";
import { checkStep, Mark, type Routine, type Step, WAIT_OPS } from "./routine.js";
import type { Frame, MachineSpec, RoutineContext } from "./types.js";
import { type Decoded, decodeAt, FETCH_START, type FetchCursor, nextByte } from "./x86.js";

/** Choices inside a step (branch direction, stale-fetch value), drawn from the run's tape. */
export interface Chooser {
  choose(count: number): number;
}

/** Shared state a step can touch, as far as the order of two CPUs' steps is concerned. */
export enum Shared {
  Data = 0, // a data word
  Code = 1, // a code byte (fetch, readCode, writeCode)
  Cpu = 2, // another CPU's hardware block (an IPI or NMI sent to it)
  WriteSeq = 3, // the global code-write sequence (code writes advance it, serializing reads it)
  RunEnd = 4, // the step crashed the machine: the run ends, whatever the other CPUs were about to do
}

/**
 * Told of every access a step makes to shared state (SPEC §2): a search that reorders steps builds
 * its dependency relation from these (workers/strategies). Steps report their own CPU's block only
 * through Shared.Cpu when another CPU's is written. Whoever adds a shared access to this file reports it.
 */
export interface AccessObserver {
  access(cpu: number, region: Shared, index: number, write: boolean): void;
}

/** Real x86 code running in a context, entered by a routine's `call` step. */
interface RealCode {
  rip: number;
  /** Address of the stack slot holding the ROUTINE_RETURN the routine's call pushed. */
  entrySlot: number;
}

/** An indirect call or jump whose target word is loaded in a step of its own (a shared-memory read). */
interface PendingIndirect {
  word: number;
  call: boolean;
  /** Address of the next instruction (the return address of a call). */
  next: number;
  address: number;
}

interface Context {
  kind: ContextKind;
  routine: Routine<unknown>;
  /** What made the routine, from its context: a snapshot's restore makes it again (Cpu.restore). */
  make: (rctx: RoutineContext) => Routine<unknown>;
  /** Every result handed to the routine, in order (the first is the 0 that starts it). */
  inputs: number[];
  /** The event frame as the routine was made: routines rewrite theirs (an int3 handler's return RIP). */
  initialFrame: Frame;
  /** The step the routine yielded and that this context performs next (null: routine finished). */
  next: Step | null;
  real: RealCode | null;
  ist: number;
  /** What the routine sees, including its event frame (Linux's nested-NMI guard sets its repeatNmi). */
  rctx: RoutineContext;
  /** IF of the interrupted context, restored by IRET. */
  savedIf: number;
  /** RSP of the interrupted context, restored by IRET. */
  savedRsp: number;
  /** Address of the event frame's saved-RIP slot (RSP as the handler starts); -1 for the base context. */
  frameRsp: number;
  /**
   * Two hash lanes of what made the routine: its variant (an IRQ's vector) and every result handed to
   * it. A generator's position and locals are a function of these, so equal trails mean equal routine
   * states (the search's state caching compares them; the generator itself cannot be inspected).
   */
  trailA: number;
  trailB: number;
}

/** A CPU's state beyond the buffer (Cpu.save), opaque to everyone but Cpu.restore. */
export interface CpuSnapshot {
  readonly contexts: ReadonlyArray<{
    readonly context: Context;
    /** The generator the context had, and what made it; `taken` of its inputs had been handed to it. */
    routine: Routine<unknown>;
    readonly make: (rctx: RoutineContext) => Routine<unknown>;
    readonly inputs: number[];
    readonly taken: number;
    readonly initialFrame: Frame;
    readonly next: Step | null;
    readonly real: RealCode | null;
    readonly ist: number;
    readonly frame: Frame;
    readonly repeatNmi: boolean;
    readonly hook: RoutineContext["hook"];
    readonly savedIf: number;
    readonly savedRsp: number;
    readonly frameRsp: number;
    readonly trailA: number;
    readonly trailB: number;
  }>;
  readonly pendingIndirect: PendingIndirect | null;
  readonly fetch: Uint8Array;
  readonly fetchStart: number;
}

/** The variant of an NMI handler restarted by Linux's repeat_nmi (any value no IRQ vector takes). */
const REPEAT_VARIANT = 0x5245_5054;

/** One step of a two-lane FNV-style hash (the lanes differ in offset and multiplier). */
function mixA(h: number, v: number): number {
  return Math.imul(h ^ v, 0x01000193) >>> 0;
}
function mixB(h: number, v: number): number {
  return Math.imul(h ^ (v + 0x9e3779b9), 0x85ebca6b) >>> 0;
}

/** RFLAGS as PUSHF stores it: bit 1 is always set, IF is bit 9 (SDM Vol. 1 §3.4.3). */
export function rflags(interruptFlag: number): number {
  return 0x2 | (interruptFlag << 9);
}

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

const MAX_INSN = 15;

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
function ipiArrives(mem: MachineMemory, cpu: number, vector: number): void {
  mem.cpu[cpu * CPU_WORDS + C.irqPending] |= 1 << vector;
  mem.logEvent(cpu, Ev.IpiArrive, 0, vector);
}

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

export class Cpu {
  readonly id: number;
  private readonly mem: MachineMemory;
  private readonly spec: MachineSpec;
  private readonly chooser: Chooser;
  private readonly base: number;
  private contexts: Context[] = [];
  private pendingIndirect: PendingIndirect | null = null;
  private fetchBuf = new Uint8Array(MAX_INSN);
  private fetchLen = 0;
  /** The bytes fetched so far, as the decode cache's cursor (model/x86 FetchCursor). */
  private fetchCursor: FetchCursor = FETCH_START;
  private fetchStart = 0;
  /** Per writable byte (by historyIndex), what the image holds there before any write (H10's oldest candidate). */
  private readonly original: Uint8Array;
  private readonly stale: boolean;
  private readonly atomicFetch: boolean;
  private readonly observer: AccessObserver | undefined;

  constructor(
    id: number,
    mem: MachineMemory,
    spec: MachineSpec,
    chooser: Chooser,
    observer?: AccessObserver,
  ) {
    this.id = id;
    this.mem = mem;
    this.spec = spec;
    this.chooser = chooser;
    this.observer = observer;
    this.base = id * CPU_WORDS;
    this.original = new Uint8Array(mem.historyCount.length);
    for (const w of mem.layout.writable)
      this.original.set(spec.image.read(w.address, w.length), mem.historyIndex(w.address));
    this.stale = spec.config.hardware.fetch === "stale";
    this.atomicFetch = spec.config.hardware.fetch === "atomic";
  }

  /** Puts the CPU at its base routine, IF=1, no events; the buffer must have been reset. */
  start(): void {
    const w = this.mem.cpu;
    const o = this.base;
    w[o + C.if] = 1;
    w[o + C.atBoundary] = 1;
    w[o + C.depth] = 1;
    w[o + C.rsp] = stackTop(this.id, 0);
    w[o + C.rbp] = 0;
    this.contexts = [];
    this.fetchLen = 0;
    this.pendingIndirect = null;
    const ctx = this.routineContext({ rip: 0, fromRealCode: false, interruptedIf: 1 });
    this.push(ContextKind.Base, (c) => this.spec.baseRoutine(c), -1, ctx);
    this.publish();
  }

  /**
   * Feeds `mix` everything of this CPU's state that is not in the buffer: per context (innermost
   * last) its kind, IST stack, saved IF and RSP, frame, routine trail, real-code position and event
   * frame, and the half-done fetch and pending indirect branch. With the buffer, this is the CPU's
   * whole state: two runs that agree on both behave alike from here (the search's state caching).
   */
  fingerprint(mix: (v: number) => void): void {
    mix(this.contexts.length);
    for (const c of this.contexts) {
      mix(c.kind);
      mix(c.ist);
      mix(c.savedIf);
      mix(c.savedRsp);
      mix(c.frameRsp);
      mix(c.trailA);
      mix(c.trailB);
      mix(c.next === null ? 0 : 1);
      mix(c.real ? c.real.rip : -1);
      mix(c.real ? c.real.entrySlot : -1);
      const f = c.rctx.frame;
      mix(f.rip);
      mix(f.fromRealCode ? 1 : 0);
      mix(f.interruptedIf);
      mix(c.rctx.repeatNmi ? 1 : 0);
    }
    mix(this.fetchLen);
    if (this.fetchLen > 0) {
      mix(this.fetchStart);
      for (let i = 0; i < this.fetchLen; i++) mix(this.fetchBuf[i]);
    }
    const p = this.pendingIndirect;
    if (p) {
      mix(p.word);
      mix(p.call ? 1 : 0);
      mix(p.next);
      mix(p.address);
    } else mix(-1);
  }

  /**
   * This CPU's state beyond the buffer, to come back to with restore (the exhaustive search resumes a
   * run from a snapshot instead of re-executing it from the start). A context's routine is kept as
   * what made it and how many of its inputs it had taken: a generator cannot be copied, but one made
   * again and handed the same inputs is in the same state, as routines compute only from their
   * inputs and their context (the determinism every engine relies on).
   */
  save(): CpuSnapshot {
    return {
      contexts: this.contexts.map((c) => ({
        context: c,
        routine: c.routine,
        make: c.make,
        inputs: c.inputs,
        taken: c.inputs.length,
        initialFrame: c.initialFrame,
        next: c.next,
        real: c.real ? { rip: c.real.rip, entrySlot: c.real.entrySlot } : null,
        ist: c.ist,
        frame: { ...c.rctx.frame },
        repeatNmi: c.rctx.repeatNmi,
        hook: c.rctx.hook,
        savedIf: c.savedIf,
        savedRsp: c.savedRsp,
        frameRsp: c.frameRsp,
        trailA: c.trailA,
        trailB: c.trailB,
      })),
      pendingIndirect: this.pendingIndirect ? { ...this.pendingIndirect } : null,
      fetch: this.fetchBuf.slice(0, this.fetchLen),
      fetchStart: this.fetchStart,
    };
  }

  /**
   * Puts the CPU back in the state `save` returned. The snapshot must be of this run's past on the
   * path being resumed: a context's routine that took inputs since is made again and handed its
   * first `taken` inputs (the later ones are dropped).
   */
  restore(s: CpuSnapshot): void {
    this.contexts = s.contexts.map((k) => {
      const c = k.context;
      if (c.routine !== k.routine || c.inputs !== k.inputs || c.inputs.length !== k.taken) {
        // Made again from the frame it was made with: handed the same inputs, it rewrites the frame
        // as it did then.
        const rctx = this.routineContext({ ...k.initialFrame });
        const routine = k.make(rctx);
        k.inputs.length = k.taken;
        for (const v of k.inputs) routine.next(v);
        c.routine = routine;
        c.rctx = rctx;
        c.make = k.make;
        c.inputs = k.inputs;
        c.initialFrame = k.initialFrame;
        k.routine = routine;
      }
      Object.assign(c.rctx.frame, k.frame);
      c.next = k.next;
      c.real = k.real ? { rip: k.real.rip, entrySlot: k.real.entrySlot } : null;
      c.ist = k.ist;
      c.rctx.repeatNmi = k.repeatNmi;
      c.rctx.hook = k.hook;
      c.savedIf = k.savedIf;
      c.savedRsp = k.savedRsp;
      c.frameRsp = k.frameRsp;
      c.trailA = k.trailA;
      c.trailB = k.trailB;
      return c;
    });
    this.pendingIndirect = s.pendingIndirect ? { ...s.pendingIndirect } : null;
    this.fetchBuf.set(s.fetch);
    this.fetchLen = s.fetch.length;
    this.fetchCursor = s.fetch.reduce(nextByte, FETCH_START);
    this.fetchStart = s.fetchStart;
  }

  private routineContext(frame: Frame): RoutineContext {
    return { cpu: this.id, cpus: this.spec.config.hardware.cpus, spec: this.spec, frame, repeatNmi: false };
  }

  private push(
    kind: ContextKind,
    make: (rctx: RoutineContext) => Routine<unknown>,
    ist: number,
    rctx: RoutineContext,
    variant = 0,
  ): void {
    const ctx: Context = {
      kind,
      routine: make(rctx),
      make,
      inputs: [],
      initialFrame: { ...rctx.frame },
      next: null,
      real: null,
      ist,
      rctx,
      savedIf: this.mem.cpu[this.base + C.if],
      savedRsp: this.mem.cpu[this.base + C.rsp],
      frameRsp: -1,
      trailA: mixA(0x811c9dc5, variant),
      trailB: mixB(0x01000193, variant),
    };
    this.contexts.push(ctx);
    this.advance(ctx, 0);
  }

  /**
   * Runs the routine up to its next yield (CPU-private computation between two steps). It first says
   * where, for a watchdog in another thread: a routine that never yields cannot be stopped otherwise.
   */
  private advance(ctx: Context, result: number): void {
    noteRoutine(this.id, this.mem.header[H.step], ctx.kind, ctx.rctx.hook);
    ctx.trailA = mixA(ctx.trailA, result);
    ctx.trailB = mixB(ctx.trailB, result);
    ctx.inputs.push(result);
    const r = ctx.routine.next(result);
    ctx.next = r.done
      ? null
      : checkStep(
          r.value,
          this.spec.words.names.length,
          () => `${this.routineOf(ctx)} at step ${this.mem.header[H.step]}`,
        );
  }

  /** How messages name the routine of a context on this CPU (model/progress routineLabel). */
  private routineOf(ctx: Context): string {
    return `${routineLabel(ctx.kind, ctx.rctx.hook, this.spec.protocol.name)} on CPU ${this.id}`;
  }

  /** One step of this CPU: deliver a deliverable event, or perform the top context's next step. */
  step(): void {
    // SDM §6.7.1 / §17.3 / §6.8.1: events are taken at instruction boundaries only (H1, H5, H7)
    const event = pendingEvent(this.mem, this.id);
    if (event !== null) {
      if (event === "mce") this.deliverMce();
      else if (event === "nmi") this.deliverNmi();
      else this.deliverIrq();
      return;
    }
    const top = this.contexts[this.contexts.length - 1];
    if (this.pendingIndirect && top.real) this.indirectStep(top.real, this.pendingIndirect);
    else if (top.real) this.fetchStep(top, top.real);
    else if (top.next) {
      // The STI shadow covers one instruction: a routine step counts as one (SDM Vol. 2 STI)
      this.mem.cpu[this.base + C.interruptShadow] = 0;
      this.perform(top, top.next);
    }
    this.publish();
  }

  /** Mirrors what others must see of this CPU into its block: wait condition, depth, RIP. */
  private publish(): void {
    const w = this.mem.cpu;
    const o = this.base;
    const top = this.contexts[this.contexts.length - 1];
    w[o + C.depth] = this.contexts.length;
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
    w[o + C.done] = this.contexts.length === 1 && top.next === null && top.real === null ? 1 : 0;
    w[o + C.visible] = this.nextIsVisible(top) ? 1 : 0;
  }

  /**
   * Whether the next step can interact with another CPU: a routine step on shared state, or a fetch
   * from code that is (or may be) written. Fetching code nobody writes is CPU-private, so the engine
   * does not offer a choice before it (a partial-order reduction; event delivery is always visible).
   */
  private nextIsVisible(top: Context): boolean {
    if (pendingEvent(this.mem, this.id) !== null) return true;
    // Inside an event handler every boundary is a place where a further event matters (P3).
    if (this.contexts.length > 1) return true;
    // The load of an indirect branch's target word reads shared data.
    if (this.pendingIndirect) return true;
    if (top.real) {
      const address = this.fetchLen > 0 ? this.fetchStart + this.fetchLen : top.real.rip;
      return this.spec.siteOracle.writable(address);
    }
    const next = top.next;
    return next !== null && next.k !== "mark" && next.k !== "call";
  }

  private frameOfTop(): Frame {
    const top = this.contexts[this.contexts.length - 1];
    const interruptedIf = this.mem.cpu[this.base + C.if];
    return top.real
      ? { rip: top.real.rip, fromRealCode: true, interruptedIf }
      : { rip: 0, fromRealCode: false, interruptedIf };
  }

  private recomputeIst(): void {
    let live = 0;
    let nmis = 0;
    for (const c of this.contexts) {
      if (c.ist >= 0) live |= 1 << c.ist;
      if (c.kind === ContextKind.Nmi) nmis++;
    }
    this.mem.cpu[this.base + C.istLive] = live;
    this.mem.cpu[this.base + C.nmiLiveDepth] = nmis;
  }

  /** Pushes an event's handler, checking its IST stack first (H8). */
  private enterHandler(
    kind: ContextKind,
    ist: number,
    make: (ctx: RoutineContext) => Routine<unknown>,
    variant = 0,
  ): void {
    const w = this.mem.cpu;
    const o = this.base;
    // Xen traps.c / Linux entry_64.S: NMI and #MC run on IST stacks; a second frame on a live one clobbers it (H8)
    if (ist >= 0 && (w[o + C.istLive] & (1 << ist)) !== 0) {
      this.mem.logEvent(this.id, Ev.IstClobber, w[o + C.rip], ist, w[o + C.nmiUnblockedBy], kind);
    }
    const ctx = this.routineContext(this.frameOfTop());
    w[o + C.halted] = 0;
    const interruptedRsp = w[o + C.rsp];
    const frameRsp = this.pushEventFrame(ist, ctx.frame);
    this.push(kind, make, ist, ctx, variant);
    const top = this.contexts[this.contexts.length - 1];
    top.savedRsp = interruptedRsp;
    top.frameRsp = frameRsp;
    this.recomputeIst();
    this.publish();
  }

  /**
   * SDM Vol. 3A §6.14.2 (64-bit mode stack frame): the CPU switches to the IST stack if the gate names
   * one, else stays on the current stack aligned to 16 bytes, and pushes SS, RSP, RFLAGS, CS, RIP.
   * Returns the address of the saved-RIP slot (the handler's RSP). The saved values the model's IRET
   * uses are kept with the context too, so a clobbered frame (P3) is reported rather than followed.
   */
  private pushEventFrame(ist: number, frame: Frame): number {
    const w = this.mem.cpu;
    const o = this.base;
    const interruptedRsp = w[o + C.rsp];
    w[o + C.rsp] = ist > 0 ? stackTop(this.id, ist) : interruptedRsp & ~15;
    this.pushValue(UNKNOWN_VALUE); // SS
    this.pushValue(interruptedRsp);
    this.pushValue(rflags(frame.interruptedIf));
    this.pushValue(UNKNOWN_VALUE); // CS
    this.pushValue(frame.fromRealCode ? frame.rip : ROUTINE_RESUME);
    return w[o + C.rsp];
  }

  /** Pushes one 8-byte value; false (and a crash) when RSP leaves this CPU's stacks. */
  private pushValue(value: number): boolean {
    const w = this.mem.cpu;
    const o = this.base;
    const rsp = w[o + C.rsp] - 8;
    const slot = this.mem.stackSlot(this.id, rsp);
    if (slot < 0) {
      this.crash(CrashKind.StackFault, w[o + C.rip], rsp);
      return false;
    }
    w[o + C.rsp] = rsp;
    this.mem.writeStack(this.id, slot, value);
    return true;
  }

  /** Pops one 8-byte value, or null (and a crash) when RSP is not on this CPU's stacks. */
  private popValue(): number | null {
    const w = this.mem.cpu;
    const o = this.base;
    const rsp = w[o + C.rsp];
    const slot = this.mem.stackSlot(this.id, rsp);
    if (slot < 0) {
      this.crash(CrashKind.StackFault, w[o + C.rip], rsp);
      return null;
    }
    w[o + C.rsp] = rsp + 8;
    return this.mem.stack[slot];
  }

  private deliverNmi(): void {
    const w = this.mem.cpu;
    const o = this.base;
    const os = this.spec.os;
    w[o + C.nmiPending] = 0;
    // SDM Vol. 3A §6.7.1: delivering an NMI blocks further NMIs until the next IRET (H1)
    w[o + C.nmiBlocked] = 1;
    const nested = w[o + C.nmiLiveDepth] > 0 ? 1 : 0;
    if (nested && os.nestedNmiGuard) {
      // Linux entry_64.S nested_nmi: the nested NMI rewrites the outer "iret" frame to repeat_nmi and
      // IRETs straight back, so the outer handler runs again; its IRET unblocks NMIs once more (H3).
      const outer = this.contexts.findLast((c: Context) => c.kind === ContextKind.Nmi) as Context;
      outer.rctx.repeatNmi = true;
      w[o + C.nmiBlocked] = 0;
      this.mem.logEvent(this.id, Ev.NmiNested, w[o + C.rip]);
      this.publish();
      return;
    }
    this.mem.logEvent(this.id, Ev.NmiDeliver, w[o + C.rip], os.istNmi, nested);
    // SDM §6.7.1: an NMI is taken through an interrupt gate: IF is cleared (NMIs ignore IF, H1/H7)
    this.enterHandler(ContextKind.Nmi, os.istNmi, (ctx) => os.nmiHandler(ctx));
    w[o + C.if] = 0;
  }

  private deliverMce(): void {
    const w = this.mem.cpu;
    const o = this.base;
    w[o + C.mcePending] = 0;
    // SDM §17.3.1.2 MCG_STATUS.MCIP: a machine check while MCIP is set shuts the processor down (H5)
    if (w[o + C.mcip] === 1) {
      this.crash(CrashKind.Shutdown, w[o + C.rip]);
      return;
    }
    w[o + C.mcip] = 1;
    this.mem.logEvent(this.id, Ev.McDeliver, w[o + C.rip], this.spec.os.istMce);
    // #MC is not blocked by NMI blocking and does not set it (H5)
    this.enterHandler(ContextKind.Mce, this.spec.os.istMce, (ctx) => this.spec.os.mceHandler(ctx));
    w[o + C.if] = 0;
  }

  private deliverIrq(): void {
    const w = this.mem.cpu;
    const o = this.base;
    const pending = w[o + C.irqPending];
    const vector = 31 - Math.clz32(pending & -pending);
    w[o + C.irqPending] = pending & ~(1 << vector);
    this.mem.logEvent(this.id, Ev.IrqDeliver, w[o + C.rip], vector);
    // SDM §6.8.1: maskable interrupts only with IF=1; the interrupt gate clears IF (H7)
    this.enterHandler(ContextKind.Irq, -1, (ctx) => this.spec.os.irqHandler(ctx, vector), vector + 1);
    w[o + C.if] = 0;
  }

  private deliverBp(address: number, frame: Frame): void {
    const w = this.mem.cpu;
    const o = this.base;
    this.mem.logEvent(this.id, Ev.BpDeliver, address);
    const ctx = this.routineContext(frame);
    const interruptedRsp = w[o + C.rsp];
    const frameRsp = this.pushEventFrame(-1, frame);
    this.push(ContextKind.Bp, (c) => this.spec.os.bpHandler(c), -1, ctx);
    const top = this.contexts[this.contexts.length - 1];
    top.savedRsp = interruptedRsp;
    top.frameRsp = frameRsp;
    // SDM Vol. 2 INT3 + Linux idt.c SYSG / Xen set_swint_gate: #BP through an interrupt gate clears IF (H6)
    if (this.spec.os.bpClearsIf) w[o + C.if] = 0;
  }

  /** IRET: pops the top context (H3, H4). */
  private iret(): void {
    const w = this.mem.cpu;
    const o = this.base;
    const top = this.contexts[this.contexts.length - 1];
    if (top.kind === ContextKind.Nmi && top.rctx.repeatNmi) {
      // Linux entry_64.S: a nested NMI rewrote this handler's "iret" frame to repeat_nmi, so the IRET
      // (which unblocks NMIs, H3) lands back at the start of the NMI handler with the frame kept.
      top.rctx.repeatNmi = false;
      top.real = null;
      w[o + C.rsp] = top.frameRsp;
      w[o + C.nmiBlocked] = 0;
      this.mem.logEvent(this.id, Ev.Iret, w[o + C.rip], ContextKind.Nmi, 1, 1);
      this.serialize(3);
      this.mem.logEvent(this.id, Ev.Mark, 0, Mark.RepeatNmi, 0);
      top.make = (c) => this.spec.os.nmiHandler(c);
      top.routine = top.make(top.rctx);
      top.inputs = [];
      top.initialFrame = { ...top.rctx.frame };
      // A new generator: its trail starts again, marked as a repeat (a fresh routine state).
      top.trailA = mixA(0x811c9dc5, REPEAT_VARIANT);
      top.trailB = mixB(0x01000193, REPEAT_VARIANT);
      this.advance(top, 0);
      return;
    }
    const ctx = this.contexts.pop() as Context;
    if (ctx.kind === ContextKind.Base || this.contexts.length === 0) {
      throw new Error(`${this.routineOf(ctx)}: IRET with no event frame to return to`);
    }
    const wasBlocked = w[o + C.nmiBlocked];
    // SDM §6.7.1: any IRET clears NMI blocking, even one ending a #BP inside an NMI handler (H3);
    // FRED: ERETS unblocks NMIs only when it returns from the NMI itself
    if (!this.spec.os.fred || ctx.kind === ContextKind.Nmi) w[o + C.nmiBlocked] = 0;
    this.recomputeIst();
    const nmiStillLive = w[o + C.nmiLiveDepth] > 0 ? 1 : 0;
    const unblocked = wasBlocked === 1 && w[o + C.nmiBlocked] === 0 ? 1 : 0;
    if (unblocked && nmiStillLive) w[o + C.nmiUnblockedBy] = ctx.kind;
    if (w[o + C.nmiLiveDepth] === 0) w[o + C.nmiUnblockedBy] = 0;
    w[o + C.if] = ctx.savedIf;
    w[o + C.rsp] = ctx.savedRsp;
    this.mem.logEvent(this.id, Ev.Iret, w[o + C.rip], ctx.kind, unblocked, nmiStillLive);
    // SDM §9.3: IRET is serializing (H4)
    this.serialize(3);
    const under = this.contexts[this.contexts.length - 1];
    if (under.real) {
      under.real.rip = ctx.rctx.frame.rip;
      w[o + C.rip] = ctx.rctx.frame.rip;
    }
  }

  private serialize(how: number): void {
    this.observer?.access(this.id, Shared.WriteSeq, 0, false);
    // SDM §9.3: after a serializing instruction the CPU fetches afresh (ends H10 staleness)
    this.mem.cpu[this.base + C.lastSerializeSeq] = this.mem.header[H.writeSeq];
    if (how !== 3) this.mem.logEvent(this.id, Ev.Serialize, 0, how);
  }

  private crash(kind: CrashKind, address: number, a = 0, b = 0, c = 0): void {
    this.observer?.access(this.id, Shared.RunEnd, 0, true);
    this.mem.logEvent(this.id, Ev.Crash, address, kind, a, b, c);
    this.mem.header[H.status] = RunStatus.Crash;
  }

  // ---- instruction fetch (H9, H10, H11) ----

  /**
   * The value this CPU's fetch reads at `address`, placed at `i` in the buffer's code and, if it is
   * writable, at `h` in its history (H9 bytewise; H10 may return an older value).
   */
  private fetchByte(address: number, i: number, h: number): number {
    const mem = this.mem;
    this.observer?.access(this.id, Shared.Code, address - CODE_BASE, false);
    // Only writable bytes have a history: any other byte holds the image's value.
    if (h < 0) return mem.code[i];
    const count = mem.historyCount[h];
    if (!this.stale || count === 0) return mem.code[i];
    // SDM Vol. 3A §9.1.3: unsynchronized cross-modifying code may see any value the byte held since
    // this CPU last serialized (H10); but a CPU always sees its own stores.
    const since = mem.cpu[this.base + C.lastSerializeSeq];
    const kept = Math.min(count, HISTORY_DEPTH);
    const candidates: number[] = [mem.code[i]];
    for (let k = kept - 1; k >= 0; k--) {
      const slot = ((count - kept + k) % HISTORY_DEPTH) * 2;
      const entry = mem.history[h * HISTORY_DEPTH * 2 + slot];
      const seq = mem.history[h * HISTORY_DEPTH * 2 + slot + 1];
      const writer = (entry >> 8) - 1;
      if (writer === this.id) break;
      if (seq <= since) break;
      // The value before this write: the previous entry's, or the image's (unknown once the ring dropped it).
      if (k > 0)
        candidates.push(
          mem.history[h * HISTORY_DEPTH * 2 + ((count - kept + k - 1) % HISTORY_DEPTH) * 2] & 0xff,
        );
      else if (count === kept) candidates.push(this.original[h]);
    }
    if (candidates.length === 1) return candidates[0];
    return candidates[this.chooser.choose(candidates.length)];
  }

  /** Who wrote the current value of a code byte (history index `h`, -1: not writable), and at which write sequence (for the trace). */
  private lastWrite(h: number): [number, number] {
    if (h < 0) return [-1, 0];
    const count = this.mem.historyCount[h];
    if (count === 0) return [-1, 0];
    const slot = ((count - 1) % HISTORY_DEPTH) * 2;
    const base = h * HISTORY_DEPTH * 2;
    return [(this.mem.history[base + slot] >> 8) - 1, this.mem.history[base + slot + 1]];
  }

  private fetchStep(ctx: Context, real: RealCode): void {
    const w = this.mem.cpu;
    const o = this.base;
    const mem = this.mem;
    if (this.fetchLen === 0) {
      this.fetchStart = real.rip;
      this.fetchCursor = FETCH_START;
    }
    let d: Decoded;
    do {
      const address = this.fetchStart + this.fetchLen;
      const i = mem.codeIndex(address);
      if (i < 0) {
        // No code is placed there (outside the image, or a function the scenario does not reach).
        this.crash(CrashKind.OutOfCode, address);
        return;
      }
      const h = mem.historyIndex(address);
      // AMD APM via LKML: instruction bytes may be read more than once, so other CPUs' stores can land
      // between the bytes of one fetch: each byte is its own step (H9)
      const value = this.fetchByte(address, i, h);
      const [writer, seq] = this.lastWrite(h);
      mem.logEvent(this.id, Ev.Fetch, address, value, writer, seq);
      this.fetchBuf[this.fetchLen++] = value;
      this.fetchCursor = nextByte(this.fetchCursor, value);
      d = decodeAt(this.fetchCursor, this.fetchBuf, this.fetchLen);
      if (!d.complete && this.fetchLen === MAX_INSN)
        d = { ...d, complete: true, invalid: true, length: MAX_INSN };
    } while (!d.complete && this.atomicFetch);
    if (!d.complete) {
      w[o + C.atBoundary] = 0;
      return;
    }
    const address = this.fetchStart;
    const length = this.fetchLen;
    this.fetchLen = 0;
    w[o + C.atBoundary] = 1;
    const oracle = this.spec.siteOracle;
    if (oracle.overlaps(address, length) && !oracle.valid(address, this.fetchBuf, length)) {
      // The bytes fetched, zero past the instruction's length: what the buffer holds there is left
      // from earlier fetches, which the record must not depend on.
      const b = (k: number) => (k < length ? this.fetchBuf[k] : 0);
      const pack = (k: number) => (b(k) | (b(k + 1) << 8) | (b(k + 2) << 16) | (b(k + 3) << 24)) >>> 0;
      this.crash(CrashKind.Torn, address, length, pack(0) | 0, pack(4) | 0);
      return;
    }
    this.mem.logEvent(this.id, Ev.Exec, address, length, d.mnemonic, ctx.kind);
    this.execute(ctx, real, address, d);
  }

  // ---- executing real code (SPEC §4: control-flow level) ----

  private execute(ctx: Context, real: RealCode, address: number, d: Decoded): void {
    const w = this.mem.cpu;
    const o = this.base;
    const next = address + d.length;
    // The STI shadow ends with the instruction after STI (SDM Vol. 2 STI); STI itself sets it anew.
    w[o + C.interruptShadow] = 0;
    // SDM Vol. 2: an invalid encoding or ud2 raises #UD; the model treats it as a crash (H11)
    if (d.invalid || d.isUd2) {
      this.crash(CrashKind.InvalidOpcode, address, d.length);
      return;
    }
    if (d.isInt3) {
      // SDM Vol. 2 INT3: #BP is a trap; the saved RIP is the address after the int3 (H6)
      real.rip = next;
      this.deliverBp(address, { rip: next, fromRealCode: true, interruptedIf: w[o + C.if] });
      return;
    }
    real.rip = next;
    switch (d.flow) {
      case FlowControl.UnconditionalBranch:
        real.rip = address + d.relTarget;
        break;
      case FlowControl.ConditionalBranch: // direction from the tape
        if (this.chooser.choose(2) === 1) real.rip = address + d.relTarget;
        break;
      case FlowControl.Call:
        // SDM Vol. 2 CALL: push the return address, then jump
        if (!this.pushValue(next)) return;
        real.rip = address + d.relTarget;
        break;
      case FlowControl.IndirectBranch:
      case FlowControl.IndirectCall:
        this.startIndirect(address, next, d);
        return;
      case FlowControl.Return:
        if (d.stack.k === "iret") this.iretInRealCode(ctx, real, address);
        else if (d.stack.k === "ret") this.ret(ctx, real, address, d.stack.release);
        return;
      default:
        if (!this.applyStackEffect(d)) return;
        if (d.isSerializing) this.serialize(3);
        if (d.isHlt) w[o + C.halted] = 1;
    }
  }

  /** RSP, RBP and IF effects of a straight-line instruction (SDM Vol. 2, each instruction's Operation). */
  private applyStackEffect(d: Decoded): boolean {
    const w = this.mem.cpu;
    const o = this.base;
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
        return this.pushValue(value);
      }
      case "pop": {
        const value = this.popValue();
        if (value === null) return false;
        if (e.into === "rbp") w[o + C.rbp] = value;
        // SDM Vol. 2 POPF: at CPL 0 POPF loads IF (bit 9) from the popped value
        if (e.into === "flags") this.setIf((value >> 9) & 1);
        return true;
      }
      case "leave": {
        // SDM Vol. 2 LEAVE: RSP := RBP, then POP RBP
        w[o + C.rsp] = w[o + C.rbp];
        const value = this.popValue();
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
        this.setIf(0);
        return true;
      case "sti":
        // SDM Vol. 2 STI: interrupts are recognised only after the next instruction (the STI shadow)
        this.setIf(1);
        w[o + C.interruptShadow] = 1;
        return true;
      case "unmodelled":
        throw new Error(
          `CPU ${this.id} executes \`${e.what}\` at ${this.spec.image.symbolize(w[o + C.rip])}, which changes RSP in a way the model does not follow (it tracks push, pop, call, ret, leave, and mov/lea/add/sub of RSP and RBP)`,
        );
      default:
        return true;
    }
  }

  private setIf(value: number): void {
    this.mem.cpu[this.base + C.if] = value;
    this.mem.logEvent(this.id, value === 1 ? Ev.Sti : Ev.Cli);
  }

  /**
   * SDM Vol. 2 RET: pop the return address (and release `release` more bytes). A routine's ROUTINE_RETURN
   * ends the real code; a value that is not an address in the image is a crash naming it (P4).
   */
  private ret(ctx: Context, real: RealCode, address: number, release: number): void {
    const w = this.mem.cpu;
    const o = this.base;
    const slotAddress = w[o + C.rsp];
    const value = this.popValue();
    if (value === null) return;
    w[o + C.rsp] += release;
    if (value === ROUTINE_RETURN && slotAddress === real.entrySlot) {
      ctx.real = null; // back to the routine that called into real code
      this.advance(ctx, 0);
      return;
    }
    if (!this.inImage(value)) {
      this.crash(CrashKind.BadReturn, address, value, slotAddress);
      return;
    }
    real.rip = value;
  }

  /** Whether code is placed at `address` (a return address into the image). */
  private inImage(address: number): boolean {
    return this.mem.codeIndex(address) >= 0;
  }

  /**
   * IRETQ in real code (SDM Vol. 2 IRET; §6.7.1): with RSP at the top event frame it is that handler's
   * IRET, exactly as the routine step (H3, H4). Anywhere else it pops a frame the code built itself
   * (Linux sync_core's iret_to_self): RIP, CS, RFLAGS, RSP, SS; it unblocks NMIs and serializes too.
   */
  private iretInRealCode(ctx: Context, real: RealCode, address: number): void {
    const w = this.mem.cpu;
    const o = this.base;
    if (this.contexts.length > 1 && w[o + C.rsp] === ctx.frameRsp) {
      ctx.real = null;
      this.iret();
      return;
    }
    const at = w[o + C.rsp];
    const rip = this.popValue();
    this.popValue(); // CS
    const flags = this.popValue();
    const rsp = this.popValue();
    this.popValue(); // SS
    if (rip === null || flags === null || rsp === null) return;
    if (!this.inImage(rip)) {
      this.crash(CrashKind.BadReturn, address, rip, at);
      return;
    }
    if (this.mem.stackSlot(this.id, rsp) < 0 && rsp !== this.stackEnd(rsp)) {
      this.crash(CrashKind.StackFault, address, rsp);
      return;
    }
    real.rip = rip;
    w[o + C.rsp] = rsp;
    this.setIf((flags >> 9) & 1);
    const wasBlocked = w[o + C.nmiBlocked];
    // SDM §6.7.1: any IRET clears NMI blocking (H3); FRED's ERETS does only from the NMI itself
    if (!this.spec.os.fred) w[o + C.nmiBlocked] = 0;
    const unblocked = wasBlocked === 1 && w[o + C.nmiBlocked] === 0 ? 1 : 0;
    // The code's own IRET let NMIs in: a nested NMI then names the OS (P3 "os"), as sync_core's does.
    if (unblocked && w[o + C.nmiLiveDepth] > 0) w[o + C.nmiUnblockedBy] = ContextKind.Base;
    this.mem.logEvent(
      this.id,
      Ev.Iret,
      address,
      ContextKind.Base,
      unblocked,
      w[o + C.nmiLiveDepth] > 0 ? 1 : 0,
    );
    // SDM §9.3: IRET is serializing (H4)
    this.serialize(3);
  }

  /** A stack top is one past the last slot: a valid RSP with nothing pushed. */
  private stackEnd(rsp: number): number {
    return this.mem.stackSlot(this.id, rsp - 8) >= 0 ? rsp : -1;
  }

  /** An indirect call/jump: resolve its pointer to a data word now, load it in the next step. */
  private startIndirect(address: number, next: number, d: Decoded): void {
    const pointer = this.spec.image.indirectPointer(address, d);
    const call = d.flow === FlowControl.IndirectCall;
    if ("unresolved" in pointer) {
      throw new Error(
        `CPU ${this.id}: the indirect ${call ? "call" : "jump"} at ${this.spec.image.symbolize(address)} (\`${d.text}\`) takes its target ${pointer.unresolved}: the model cannot resolve it; branch through a function-pointer data symbol of the scenario (\`call [name]\`)`,
      );
    }
    this.pendingIndirect = { word: this.spec.dataWords[pointer.ordinal], call, next, address };
    // Mid-instruction: no event is taken between the fetch and the load of the pointer (H1).
    this.mem.cpu[this.base + C.atBoundary] = 0;
  }

  /** Loads the pointer (a step of its own: the word is shared data) and branches to it. */
  private indirectStep(real: RealCode, p: PendingIndirect): void {
    const w = this.mem.cpu;
    const o = this.base;
    this.pendingIndirect = null;
    w[o + C.atBoundary] = 1;
    const target = Atomics.load(this.mem.data, p.word);
    this.observer?.access(this.id, Shared.Data, p.word, false);
    this.mem.logEvent(this.id, Ev.Load, p.word, target, p.address);
    if (p.call && !this.pushValue(p.next)) return;
    real.rip = target;
    w[o + C.rip] = target;
  }

  // ---- routine steps ----

  private perform(ctx: Context, s: Step): void {
    const mem = this.mem;
    const w = mem.cpu;
    const o = this.base;
    let result = 0;
    switch (s.k) {
      case "load":
        this.observer?.access(this.id, Shared.Data, s.word, false);
        result = Atomics.load(mem.data, s.word);
        break;
      case "store":
        this.observer?.access(this.id, Shared.Data, s.word, true);
        Atomics.store(mem.data, s.word, s.value);
        mem.logEvent(this.id, Ev.Store, s.word, s.value);
        break;
      case "rmw": {
        this.observer?.access(this.id, Shared.Data, s.word, true);
        const old = Atomics.load(mem.data, s.word);
        let value = old;
        if (s.op === "add") value = (old + s.value) | 0;
        else if (s.op === "xchg") value = s.value;
        else if (old === s.expected) value = s.value;
        Atomics.store(mem.data, s.word, value);
        if (value !== old) mem.logEvent(this.id, Ev.Store, s.word, value);
        result = s.discard ? 0 : old;
        break;
      }
      case "writeCode":
        this.writeCode(s.addr, s.bytes);
        break;
      case "readCode": {
        const i = mem.codeIndex(s.addr);
        if (i < 0)
          throw new Error(
            `${this.routineOf(ctx)} reads code at 0x${s.addr.toString(16)}, where no code is placed`,
          );
        this.observer?.access(this.id, Shared.Code, s.addr - CODE_BASE, false);
        result = mem.code[i];
        break;
      }
      case "serialize":
        // SDM §9.3: CPUID, SERIALIZE and IRET (Linux sync_core's iret_to_self) serialize (H4)
        this.serialize(s.how === "cpuid" ? 0 : s.how === "serialize" ? 1 : 2);
        // Linux sync_core.h: iret_to_self "unmasks NMIs" like any IRET (H3)
        if (s.how === "iret-to-self" && !this.spec.os.fred && w[o + C.nmiBlocked] === 1) {
          w[o + C.nmiBlocked] = 0;
          // The OS's own IRET let NMIs in: a nested NMI then names it (P3 "os"), not an earlier handler.
          if (w[o + C.nmiLiveDepth] > 0) w[o + C.nmiUnblockedBy] = ContextKind.Base;
        }
        break;
      case "cli":
        w[o + C.if] = 0;
        mem.logEvent(this.id, Ev.Cli);
        break;
      case "sti":
        w[o + C.if] = 1;
        // SDM Vol. 2 STI: the next instruction runs before an interrupt is recognised (the STI shadow)
        w[o + C.interruptShadow] = 1;
        mem.logEvent(this.id, Ev.Sti);
        break;
      case "ipi":
        for (const t of this.targets(s.target)) {
          this.observer?.access(this.id, Shared.Cpu, t, true);
          ipiArrives(mem, t, s.vector);
        }
        break;
      case "nmiIpi":
        for (const t of this.targets(s.target)) {
          this.observer?.access(this.id, Shared.Cpu, t, true);
          nmiArrives(mem, t, EventSource.Ipi);
        }
        break;
      case "iret":
        this.iret();
        return;
      case "int3":
        // A routine's own int3 (seed: "arch_livepatch_apply just calls 'int 3'"): #BP on this CPU.
        this.advance(ctx, 0);
        this.deliverBp(-1, { rip: 0, fromRealCode: false, interruptedIf: w[o + C.if] });
        return;
      case "call":
        if (mem.codeIndex(s.addr) < 0) {
          throw new Error(
            `${this.routineOf(ctx)} calls 0x${s.addr.toString(16)}, where no code is placed (outside the image, or a function the scenario does not reach)`,
          );
        }
        if (!this.pushValue(ROUTINE_RETURN)) return;
        ctx.real = { rip: s.addr, entrySlot: w[o + C.rsp] };
        w[o + C.rip] = s.addr;
        return; // the routine resumes when the real code returns
      case "wait": {
        // Scheduled only once a condition holds (model/schedule); re-check for safety.
        for (const c of s.conds) this.observer?.access(this.id, Shared.Data, c.word, false);
        const ok = s.conds.some((c) => evalWait(mem, c.word, WAIT_OPS.indexOf(c.op), c.value));
        if (!ok) throw new Error(`CPU ${this.id} was stepped while waiting on an unmet condition`);
        break;
      }
      case "clearMcip":
        // Linux mce_wrmsrq(MSR_IA32_MCG_STATUS, 0): the handler clears MCIP before it returns (H5)
        w[o + C.mcip] = 0;
        mem.logEvent(this.id, Ev.McipClear);
        this.serialize(3); // WRMSR is serializing (H4)
        break;
      case "mark":
        mem.logEvent(this.id, Ev.Mark, 0, s.mark, s.value);
        break;
      case "unhandledBp":
        this.crash(CrashKind.UnhandledBp, ctx.rctx.frame.rip - 1);
        return;
    }
    this.advance(ctx, result);
  }

  private targets(t: number | "others" | "all" | "self"): number[] {
    const n = this.spec.config.hardware.cpus;
    if (t === "self") return [this.id];
    if (t === "all") return Array.from({ length: n }, (_, i) => i);
    if (t === "others") return Array.from({ length: n }, (_, i) => i).filter((i) => i !== this.id);
    if (t < 0 || t >= n) throw new Error(`CPU ${this.id} sends an IPI to CPU ${t}, which does not exist`);
    return [t];
  }

  /** A store of 1, 2, 4 or 8 bytes: one step, never torn (H9); one write sequence number. */
  private writeCode(address: number, bytes: number[]): void {
    const mem = this.mem;
    const oracle = this.spec.siteOracle;
    if (!oracle.writable(address) || !oracle.writable(address + bytes.length - 1)) {
      // Scheduling points are taken only where code may change (nextIsVisible), and P1 judges only
      // sites: a write anywhere else would be a race the checker could neither schedule nor judge.
      throw new Error(
        `CPU ${this.id} writes code at ${this.spec.image.symbolize(address)}, outside the patch site: a protocol may write only its sites (a scenario may declare more writable functions)`,
      );
    }
    this.observer?.access(this.id, Shared.WriteSeq, 0, true);
    const seq = mem.header[H.writeSeq] + 1;
    mem.header[H.writeSeq] = seq;
    for (let k = 0; k < bytes.length; k++) {
      this.observer?.access(this.id, Shared.Code, address + k - CODE_BASE, true);
      // Only the writable ranges have a write history and are restored between runs (MachineMemory.reset).
      const h = mem.historyIndex(address + k);
      const i = mem.codeIndex(address + k);
      if (h < 0 || i < 0) {
        throw new Error(
          `CPU ${this.id} writes code at 0x${(address + k).toString(16)}, outside the machine's writable code (${mem.layout.writable.map((w) => `0x${w.address.toString(16)}+${w.length}`).join(", ")})`,
        );
      }
      const count = mem.historyCount[h];
      const slot = (count % HISTORY_DEPTH) * 2;
      mem.history[h * HISTORY_DEPTH * 2 + slot] = (bytes[k] & 0xff) | ((this.id + 1) << 8);
      mem.history[h * HISTORY_DEPTH * 2 + slot + 1] = seq;
      // The count only needs to stay congruent modulo HISTORY_DEPTH once the ring is full.
      mem.historyCount[h] = count + 1 > 252 ? count + 1 - HISTORY_DEPTH : count + 1;
      mem.code[i] = bytes[k] & 0xff;
      mem.logEvent(this.id, Ev.CodeWrite, address + k, bytes[k] & 0xff, seq, bytes.length);
    }
  }
}
