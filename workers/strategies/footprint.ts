// What a transition touched, and when two transitions are dependent: the conservative dependency
// relation of the partial-order reductions in exhaustive.ts. A transition is one CPU's visible step
// together with the CPU-private steps that follow it before the next scheduling point (model/cpu
// nextIsVisible), or one external event (an NMI or #MC arriving at a CPU).
//
// Two steps of different CPUs are dependent when they touch a common data word or code byte and at
// least one writes it, when one sends an IPI or NMI to the other's CPU, when both touch the global
// code-write sequence and one advances it (a code write against a serializing step), or when either
// crashed the machine (which ends the run, whatever the other was about to do). Steps of one CPU are
// always dependent. An event for CPU k is dependent with every step of k, with every step that sends
// an IPI or NMI to k, with every other event (they share the hardware budget), and with a step after
// which no CPU could run (that step ends the run, so the event could not come after it); a step of k
// that is one byte fetch in the middle of an instruction does not look at k's pending events.
import { Shared } from "../../model/cpu/state.js";

/** The target of an event that reaches every CPU: a broadcast machine check (model/cpu mceArrives). */
export const ALL_CPUS = -2;

/**
 * The CPU an event action reaches (model/schedule enabledActions: n+k an NMI for k, 2n+k an #MC for
 * k), or ALL_CPUS for the one broadcast #MC action.
 */
export function eventTarget(action: number, cpus: number, mceBroadcast: boolean): number {
  if (action >= 2 * cpus && mceBroadcast) return ALL_CPUS;
  return (action - cpus) % cpus;
}

/** A location: region in the top byte, index below. */
export function location(region: Shared, index: number): number {
  return (region << 24) | index;
}

export class Footprint {
  /** Locations read and locations written (a read-modify-write is a write). */
  readonly reads: number[] = [];
  readonly writes: number[] = [];
  /** The transition crashed the machine. */
  crashed = false;
  /**
   * Some step of the transition began at an instruction boundary, where the CPU looks at its pending
   * events (SDM §6.7.1: events are taken at boundaries only). A transition that is one byte fetch in
   * the middle of an instruction does not: an NMI or #MC arriving commutes with it.
   */
  boundary = true;

  add(region: Shared, index: number, write: boolean): void {
    if (region === Shared.RunEnd) {
      this.crashed = true;
      return;
    }
    const loc = location(region, index);
    const list = write ? this.writes : this.reads;
    if (!list.includes(loc)) list.push(loc);
  }

  /** Adds everything `other` touched (the footprint of a transition over all its value choices). */
  merge(other: Footprint): void {
    for (const l of other.reads) if (!this.reads.includes(l)) this.reads.push(l);
    for (const l of other.writes) if (!this.writes.includes(l)) this.writes.push(l);
    this.crashed ||= other.crashed;
    this.boundary ||= other.boundary;
  }

  /** Sends an IPI or NMI to `cpu` (writes its hardware block). */
  targets(cpu: number): boolean {
    return this.writes.includes(location(Shared.Cpu, cpu));
  }

  writesData(word: number): boolean {
    return this.writes.includes(location(Shared.Data, word));
  }

  clear(): void {
    this.reads.length = 0;
    this.writes.length = 0;
    this.crashed = false;
    this.boundary = true;
  }

  copy(): Footprint {
    // A footprint holds no location twice: its lists are copied as they are (merging them into an
    // empty one looked every location up in the lists being built).
    const f = new Footprint();
    for (const l of this.reads) f.reads.push(l);
    for (const l of this.writes) f.writes.push(l);
    f.crashed = this.crashed;
    f.boundary = this.boundary;
    return f;
  }
}

/** Dependency of two CPU transitions (CPU a with footprint fa, CPU b with fb). */
export function stepsDependent(a: number, fa: Footprint, b: number, fb: Footprint): boolean {
  if (a === b || fa.crashed || fb.crashed) return true;
  if (fa.targets(b) || fb.targets(a)) return true;
  for (const w of fa.writes) if (fb.writes.includes(w) || fb.reads.includes(w)) return true;
  for (const w of fb.writes) if (fa.reads.includes(w)) return true;
  return false;
}

/** The transition writes some CPU's hardware block (an IPI or NMI to it). */
function targetsAnyCpu(fb: Footprint): boolean {
  for (const l of fb.writes) if (l >>> 24 === Shared.Cpu) return true;
  return false;
}

/**
 * Dependency of an event for CPU k (or ALL_CPUS) with a CPU transition (CPU b, footprint fb);
 * `endsRun`: no CPU could run after that transition, had the event not come. A broadcast event
 * reaches b too, so it depends on b's steps at a boundary and on an IPI or NMI to any CPU.
 */
export function eventDependent(k: number, b: number, fb: Footprint, endsRun: boolean): boolean {
  if (fb.crashed || endsRun) return true;
  if (k === ALL_CPUS) return fb.boundary || targetsAnyCpu(fb);
  return (b === k && fb.boundary) || fb.targets(k);
}
