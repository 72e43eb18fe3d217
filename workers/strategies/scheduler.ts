// The one interface between the engines (mechanism) and the strategies (policy), in the manner of
// shuttle's `Scheduler` trait and loom's `rt::Path`: at every scheduling point the engine lists the
// enabled actions (model/schedule enabledActions) and asks which one runs; inside a step the model asks
// for a value (a branch direction, a stale-fetch value) through the `Chooser` it is handed. Nothing
// here knows how a strategy decides: a tape, PCT priorities, or a depth-first exhaustive search.
import type { CpuSnapshot } from "../../model/cpu/snapshot.js";
import type { AccessObserver, Chooser } from "../../model/cpu/state.js";

export interface Scheduler extends Chooser {
  /**
   * Index into `actions[0..count)` of the action to take. `actions[0]` is the current CPU when it can
   * run, then the other runnable CPUs in order after it, then NMI and #MC arrivals (model/schedule).
   */
  pickAction(actions: Int32Array, count: number): number;
  /** Inherited from Chooser: `choose(count)` picks one of `count` values inside a step; 0 is the default. */
  /** Told of every access to shared state the CPUs make, when the strategy needs it (exhaustive search). */
  readonly observer?: AccessObserver;
  /** Handed the run's CPUs before it starts, when the strategy needs their whole state (state caching). */
  attach?(cpus: readonly CpuState[]): void;
}

/**
 * What a CPU can tell of its state beyond the buffer (model/cpu Cpu.fingerprint), and hand over to be
 * put back (Cpu.save, Cpu.restore: the exhaustive search resumes runs from snapshots).
 */
export interface CpuState {
  fingerprint(mix: (v: number) => void): void;
  save(): CpuSnapshot;
  restore(s: CpuSnapshot): void;
  step(): void;
}
