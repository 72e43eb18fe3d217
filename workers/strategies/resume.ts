// Resuming executions of the exhaustive search (SPEC §8): rather than re-executing the machine from
// its start for each branch of the search tree (search-tree.ts), an execution resumes from a snapshot
// taken where its branch point was created (the CPUs' routines are made again from their inputs,
// model/cpu Cpu.restore; the buffer's run state is MachineMemory.saveRun/restoreRun). The executions
// are the same either way: test/resume.test.ts compares them.
//
// Interface: `take` as a node with more than one branch is created, before its transition runs;
// `nearest` as the next execution begins (the deepest snapshot still on the stack, if any); `restore`
// puts the buffer and the CPUs back. The search's own state at the snapshot (`SearchAt`) is kept here
// and handed back; the search (exhaustive.ts) puts it back itself.
import type { CpuSnapshot } from "../../model/cpu/snapshot.js";
import type { MachineMemory, RunState } from "../../model/memory.js";
import type { CpuState } from "./scheduler.js";
import type { ActionNode, Cost, Node } from "./search-tree.js";

/**
 * A reader of the run's event log that the caller of the search keeps (properties/coverage
 * Situations): the search keeps it in step with its executions, reset for a run from the start,
 * read up to the log's end and saved at each snapshot, restored with it.
 */
export interface LogMonitor {
  reset(): void;
  update(mem: MachineMemory): void;
  save(): unknown;
  restore(saved: unknown): void;
}

/** The search's own state of the execution in progress at a snapshot. */
export interface SearchAt {
  used: Cost;
  canContinue: boolean;
  transitions: number;
  lastCpuActor: number;
  written: number[];
  history: number[] | null;
  symmetry: Uint32Array | null;
  monitor: unknown;
}

/**
 * A point of the execution in progress to resume later ones from: the node it was taken at, the
 * buffer's run state, the CPUs' states and the search's own state there.
 */
export interface Snapshot extends SearchAt {
  node: ActionNode;
  run: RunState;
  cpus: CpuSnapshot[];
}

/** Per position in the search's stack, the snapshot taken when its node was created (if it had branches). */
export class Snapshots {
  private readonly at: Array<Snapshot | undefined> = [];

  /** Takes the snapshot of the node just created at stack position j (one run state kept per position). */
  take(mem: MachineMemory, cpus: readonly CpuState[], j: number, node: ActionNode, search: SearchAt): void {
    const run = this.at[j]?.run ?? mem.newRunState();
    mem.saveRun(run);
    this.at[j] = { node, run, cpus: cpus.map((cpu) => cpu.save()), ...search };
  }

  /** The deepest snapshot whose node is still on the stack, with its position; null if there is none. */
  nearest(stack: readonly Node[]): { j: number; snap: Snapshot } | null {
    for (let j = stack.length - 1; j >= 0; j--) {
      const snap = this.at[j];
      if (snap && snap.node === stack[j]) return { j, snap };
    }
    return null;
  }
}

/** Puts the buffer's run state and the CPUs back to a snapshot's. */
export function restore(mem: MachineMemory, cpus: readonly CpuState[], snap: Snapshot): void {
  mem.restoreRun(snap.run);
  cpus.forEach((cpu, i) => {
    cpu.restore(snap.cpus[i]);
  });
}
