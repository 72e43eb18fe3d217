// A CPU's state beyond the buffer as the exhaustive search sees it: its fingerprint (state caching)
// and a snapshot to resume a run from (save, restore).

import type { Routine, Step } from "../routine.js";
import type { Frame, RoutineContext } from "../types.js";
import { FETCH_START, nextByte } from "../x86.js";
import { type Context, type CpuState, type PendingIndirect, type RealCode, routineContext } from "./state.js";

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

/**
 * Feeds `mix` everything of this CPU's state that is not in the buffer: per context (innermost
 * last) its kind, IST stack, saved IF and RSP, frame, routine trail, real-code position and event
 * frame, and the half-done fetch and pending indirect branch. With the buffer, this is the CPU's
 * whole state: two runs that agree on both behave alike from here (the search's state caching).
 */
export function cpuFingerprint(cpu: CpuState, mix: (v: number) => void): void {
  mix(cpu.contexts.length);
  for (const c of cpu.contexts) {
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
  mix(cpu.fetchLen);
  if (cpu.fetchLen > 0) {
    mix(cpu.fetchStart);
    for (let i = 0; i < cpu.fetchLen; i++) mix(cpu.fetchBuf[i]);
  }
  const p = cpu.pendingIndirect;
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
export function saveCpu(cpu: CpuState): CpuSnapshot {
  return {
    contexts: cpu.contexts.map((c) => ({
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
    pendingIndirect: cpu.pendingIndirect ? { ...cpu.pendingIndirect } : null,
    fetch: cpu.fetchBuf.slice(0, cpu.fetchLen),
    fetchStart: cpu.fetchStart,
  };
}

/**
 * Puts the CPU back in the state `save` returned. The snapshot must be of this run's past on the
 * path being resumed: a context's routine that took inputs since is to be made again and handed its
 * first `taken` inputs (the later ones are dropped). That is done only when the routine is next
 * advanced (`replaying`): most resumed executions end a few steps later at a state explored before,
 * before most CPUs step again, and re-making every routine at every resume was a tenth of a search.
 */
export function restoreCpu(cpu: CpuState, s: CpuSnapshot): void {
  const contexts = cpu.contexts;
  contexts.length = s.contexts.length;
  for (let i = 0; i < s.contexts.length; i++) {
    const k = s.contexts[i];
    const c = k.context;
    contexts[i] = c;
    if (c.routine !== k.routine || c.inputs !== k.inputs || c.inputs.length !== k.taken) {
      k.inputs.length = k.taken;
      c.make = k.make;
      c.inputs = k.inputs;
      c.initialFrame = k.initialFrame;
      c.routine = replaying(cpu, c);
      k.routine = c.routine;
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
  }
  cpu.pendingIndirect = s.pendingIndirect ? { ...s.pendingIndirect } : null;
  cpu.fetchBuf.set(s.fetch);
  cpu.fetchLen = s.fetch.length;
  cpu.fetchCursor = s.fetch.reduce(nextByte, FETCH_START);
  cpu.fetchStart = s.fetchStart;
}

/**
 * A stand-in for context c's routine, to be made again from what made it: on its first `next(v)`
 * (state.ts advance, which has just appended v to c.inputs), the routine is made from the frame it
 * was made with and handed every earlier input, as restoreCpu did at once before: it is then in the
 * state it had, and rewrote its frame as it did then. What the context's routine context holds now
 * (frame, repeatNmi, hook: the snapshot's, and what happened since) is put back on the new one.
 */
function replaying(cpu: CpuState, c: Context): Routine<unknown> {
  const stand = {
    next(v: number): IteratorResult<Step, unknown> {
      const now = c.rctx;
      const frame = { ...now.frame };
      const rctx = routineContext(cpu, { ...c.initialFrame });
      const routine = c.make(rctx);
      const inputs = c.inputs;
      for (let i = 0; i < inputs.length - 1; i++) routine.next(inputs[i]);
      Object.assign(rctx.frame, frame);
      rctx.repeatNmi = now.repeatNmi;
      rctx.hook = now.hook;
      c.rctx = rctx;
      c.routine = routine;
      return routine.next(v);
    },
  };
  return stand as unknown as Routine<unknown>;
}
