// A CPU's state beyond the shared buffer, and what every family of rules in model/cpu/ does with it:
// the routine contexts and how a routine is advanced, pushes and pops on the CPU's stacks, IF, crashes.
// The Cpu class (model/cpu.ts) owns one CpuState and hands it to the rule files' functions.

import { type ContextKind, CrashKind, Ev } from "../events.js";
import { C, CPU_WORDS, H, type MachineMemory, RunStatus } from "../memory.js";
import { leaveRoutine, noteRoutine, routineLabel } from "../progress.js";
import { checkStep, type Routine, type Step } from "../routine.js";
import type { Frame, MachineSpec, RoutineContext } from "../types.js";
import { FETCH_START, type FetchCursor } from "../x86.js";

/**
 * What a value chosen inside a step stands for: the direction of a conditional branch in real code,
 * or which of the values a code byte held a stale fetch returns (H10). The tape records only the
 * value; the exhaustive search bounds the two kinds apart (SPEC §8), so that a bound on one never
 * silently removes the other.
 */
export enum ValueKind {
  Branch = 0,
  Stale = 1,
}

/** Choices inside a step (branch direction, stale-fetch value), drawn from the run's tape. */
export interface Chooser {
  choose(count: number, kind: ValueKind): number;
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
 * through Shared.Cpu when another CPU's is written. Whoever adds a shared access to model/cpu/ reports it.
 */
export interface AccessObserver {
  access(cpu: number, region: Shared, index: number, write: boolean): void;
}

/** Real x86 code running in a context, entered by a routine's `call` step. */
export interface RealCode {
  rip: number;
  /** Address of the stack slot holding the ROUTINE_RETURN the routine's call pushed. */
  entrySlot: number;
}

/** An indirect call or jump whose target word is loaded in a step of its own (a shared-memory read). */
export interface PendingIndirect {
  word: number;
  call: boolean;
  /** Address of the next instruction (the return address of a call). */
  next: number;
  address: number;
}

/** One routine running on the CPU: the base routine, or an event handler above what it interrupted. */
export interface Context {
  kind: ContextKind;
  routine: Routine<unknown>;
  /** What made the routine, from its context: a snapshot's restore makes it again (snapshot.ts). */
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

/** The longest x86 instruction, in bytes: a fetch that has not decoded one by then is invalid (fetch.ts). */
export const MAX_INSN = 15;

/**
 * What one CPU holds beyond the buffer. Only the Cpu class and the files of model/cpu/ touch it:
 * its fields are open to them so that each family of rules can be a plain function on the hot path.
 */
export class CpuState {
  readonly id: number;
  readonly mem: MachineMemory;
  readonly spec: MachineSpec;
  readonly chooser: Chooser;
  /** This CPU's first word in the buffer's per-CPU block (id * CPU_WORDS). */
  readonly base: number;
  /** The routine contexts, innermost last: the base routine, then each event handler above it. */
  contexts: Context[] = [];
  pendingIndirect: PendingIndirect | null = null;
  readonly fetchBuf = new Uint8Array(MAX_INSN);
  fetchLen = 0;
  /** The bytes fetched so far, as the decode cache's cursor (model/x86 FetchCursor). */
  fetchCursor: FetchCursor = FETCH_START;
  fetchStart = 0;
  /** Per writable byte (by historyIndex), what the image holds there before any write (H10's oldest candidate). */
  readonly original: Uint8Array;
  readonly stale: boolean;
  readonly atomicFetch: boolean;
  readonly observer: AccessObserver | undefined;

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
}

/** One step of a two-lane FNV-style hash (the lanes differ in offset and multiplier). */
export function mixA(h: number, v: number): number {
  return Math.imul(h ^ v, 0x01000193) >>> 0;
}
export function mixB(h: number, v: number): number {
  return Math.imul(h ^ (v + 0x9e3779b9), 0x85ebca6b) >>> 0;
}

/** RFLAGS as PUSHF stores it: bit 1 is always set, IF is bit 9 (SDM Vol. 1 §3.4.3). */
export function rflags(interruptFlag: number): number {
  return 0x2 | (interruptFlag << 9);
}

// ---- routine contexts ----

export function routineContext(cpu: CpuState, frame: Frame): RoutineContext {
  return { cpu: cpu.id, cpus: cpu.spec.config.hardware.cpus, spec: cpu.spec, frame, repeatNmi: false };
}

export function pushContext(
  cpu: CpuState,
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
    savedIf: cpu.mem.cpu[cpu.base + C.if],
    savedRsp: cpu.mem.cpu[cpu.base + C.rsp],
    frameRsp: -1,
    trailA: mixA(0x811c9dc5, variant),
    trailB: mixB(0x01000193, variant),
  };
  cpu.contexts.push(ctx);
  advance(cpu, ctx, 0);
}

/**
 * Runs the routine up to its next yield (CPU-private computation between two steps). It first says
 * where, for a watchdog in another thread: a routine that never yields cannot be stopped otherwise.
 * It says too when the routine's code is done, so that the watchdog does not take the checker's own
 * work after it (a search's bookkeeping, a garbage collection) for the routine's.
 */
export function advance(cpu: CpuState, ctx: Context, result: number): void {
  noteRoutine(cpu.id, cpu.mem.header[H.step], ctx.kind, ctx.rctx.hook);
  ctx.trailA = mixA(ctx.trailA, result);
  ctx.trailB = mixB(ctx.trailB, result);
  ctx.inputs.push(result);
  let r: IteratorResult<Step, unknown>;
  try {
    r = ctx.routine.next(result);
  } finally {
    leaveRoutine(cpu.id);
  }
  ctx.next = r.done
    ? null
    : checkStep(
        r.value,
        cpu.spec.words.names.length,
        () => `${routineOf(cpu, ctx)} at step ${cpu.mem.header[H.step]}`,
      );
}

/** How messages name the routine of a context on this CPU (model/progress routineLabel). */
export function routineOf(cpu: CpuState, ctx: Context): string {
  return `${routineLabel(ctx.kind, ctx.rctx.hook, cpu.spec.protocol.name)} on CPU ${cpu.id}`;
}

// ---- the CPU's stacks, IF, crashes ----

/** Pushes one 8-byte value; false (and a crash) when RSP leaves this CPU's stacks. */
export function pushValue(cpu: CpuState, value: number): boolean {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  const rsp = w[o + C.rsp] - 8;
  const slot = cpu.mem.stackSlot(cpu.id, rsp);
  if (slot < 0) {
    crash(cpu, CrashKind.StackFault, w[o + C.rip], rsp);
    return false;
  }
  w[o + C.rsp] = rsp;
  cpu.mem.writeStack(cpu.id, slot, value);
  return true;
}

/** Pops one 8-byte value, or null (and a crash) when RSP is not on this CPU's stacks. */
export function popValue(cpu: CpuState): number | null {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  const rsp = w[o + C.rsp];
  const slot = cpu.mem.stackSlot(cpu.id, rsp);
  if (slot < 0) {
    crash(cpu, CrashKind.StackFault, w[o + C.rip], rsp);
    return null;
  }
  w[o + C.rsp] = rsp + 8;
  return cpu.mem.stack[slot];
}

export function setIf(cpu: CpuState, value: number): void {
  cpu.mem.cpu[cpu.base + C.if] = value;
  cpu.mem.logEvent(cpu.id, value === 1 ? Ev.Sti : Ev.Cli);
}

export function crash(cpu: CpuState, kind: CrashKind, address: number, a = 0, b = 0, c = 0): void {
  cpu.observer?.access(cpu.id, Shared.RunEnd, 0, true);
  cpu.mem.logEvent(cpu.id, Ev.Crash, address, kind, a, b, c);
  cpu.mem.header[H.status] = RunStatus.Crash;
}
