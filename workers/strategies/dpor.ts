// DPOR (Flanagan & Godefroid, "Dynamic partial-order reduction for model checking software", POPL
// 2005), bounded as BPOR (Coons et al., OOPSLA 2013), one of the reductions of the exhaustive search
// (SPEC §8; reductions.ts lists them). A node of the search tree (search-tree.ts) explores first its
// default, then only the alternatives that the races of the runs through it call for: when a CPU p's
// transition races with an earlier transition T_i (dependent, of another actor, and not already
// ordered before p's previous transition by happens-before, computed with vector clocks), p is added at
// the node before T_i (every enabled CPU, when p could not run there), and, conservatively, at the
// last node before it where the run switched CPUs, where scheduling p costs no preemption more than
// the run already paid; conservative alternatives ignore sleep sets and do not put anything to sleep.
// An event is added at every node whose transition depends on it, and is then followed by that
// transition.
//
// Interface: `restart(keep)` as an execution starts (keeping the transitions it replays), `add` as
// each transition closes, `pendingRaces` at the end of a run that did not finish. It writes only the
// nodes' `todo` and `conservative` sets.
import { Shared } from "../../model/cpu/state.js";
import { C, CPU_WORDS, type MachineMemory, RunStatus } from "../../model/memory.js";
import { ALL_CPUS, eventDependent, type Footprint, location } from "./footprint.js";
import { type ActionNode, entryOf } from "./search-tree.js";

const EVENTS_KEY = location(Shared.RunEnd, 1);

/** One transition of the execution in progress, for happens-before and races. */
interface Transition {
  node: ActionNode;
  index: number;
  /** CPU, or -1 for an event. */
  actor: number;
  /** Vector-clock slot: the CPU, or `cpus` for the events (all events are dependent, so one slot). */
  slot: number;
  reads: number[];
  writes: number[];
  vc: Int32Array;
  fresh: boolean;
  /** The CPU of the last CPU transition before this one (0, the first current CPU, if none). */
  prevCpu: number;
}

export class Dpor {
  private readonly trace: Transition[] = [];
  private readonly lastWrite = new Map<number, number>();
  private readonly readsSince = new Map<number, number[]>();
  private readonly lastOfSlot: Int32Array;
  /** The CPU of the last CPU transition so far (a snapshot keeps it: resume.ts). */
  lastCpuActor = 0;

  constructor(
    readonly cpus: number,
    private readonly targetOf: (action: number) => number,
  ) {
    this.lastOfSlot = new Int32Array(cpus + 1);
  }

  /** Transitions recorded in the execution in progress. */
  get length(): number {
    return this.trace.length;
  }

  /**
   * As an execution starts: keeps the first `keep` transitions of the previous execution's trace,
   * with their vector clocks, and rebuilds the last-access maps from them.
   */
  restart(keep: number): void {
    this.trace.length = Math.min(this.trace.length, keep);
    this.lastWrite.clear();
    this.readsSince.clear();
    this.lastOfSlot.fill(-1);
    this.lastCpuActor = 0;
    for (let me = 0; me < this.trace.length; me++) this.remember(me);
  }

  /**
   * Adds a closed transition (chosen at `node`, action index `index`; it touched `fp`) to the
   * happens-before relation (vector clocks), and when it is new in this execution (`fresh`), the
   * branches its races call for and the events that may come right before it.
   */
  add(
    node: ActionNode,
    index: number,
    actor: number,
    target: number,
    fp: Footprint,
    fresh: boolean,
    runEnded: boolean,
  ): void {
    const n = this.cpus;
    const reads = fp.reads.slice();
    const writes = fp.writes.slice();
    const slot = actor >= 0 ? actor : n;
    if (actor >= 0) writes.push(location(Shared.Cpu, actor));
    else if (target === ALL_CPUS) {
      for (let c = 0; c < n; c++) writes.push(location(Shared.Cpu, c));
      writes.push(EVENTS_KEY);
    } else writes.push(location(Shared.Cpu, target), EVENTS_KEY);
    // The transitions this one depends on: the last writer of what it touches, and for a write, the
    // readers since; a crash depends on everything.
    const deps: number[] = [];
    const prev = this.lastOfSlot[slot];
    if (prev >= 0) deps.push(prev);
    if (fp.crashed) for (let i = 0; i < this.trace.length; i++) deps.push(i);
    for (const key of reads) {
      const w = this.lastWrite.get(key);
      if (w !== undefined) deps.push(w);
    }
    for (const key of writes) {
      const w = this.lastWrite.get(key);
      if (w !== undefined) deps.push(w);
      const rs = this.readsSince.get(key);
      if (rs) for (const r of rs) deps.push(r);
    }
    const vc = new Int32Array(n + 1);
    for (const d of deps) {
      const other = this.trace[d].vc;
      for (let s = 0; s <= n; s++) if (other[s] > vc[s]) vc[s] = other[s];
    }
    vc[slot]++;
    const me = this.trace.length;
    this.trace.push({ node, index, actor, slot, reads, writes, vc, fresh, prevCpu: this.lastCpuActor });
    this.remember(me);
    if (!fresh) return;
    // Events that may come right before this transition: those it depends on (event placement).
    for (let i = 0; i < node.actions.length; i++) {
      const a = node.actions[i];
      if (a < n) continue;
      const dependent = actor < 0 || eventDependent(this.targetOf(a), actor, fp, runEnded);
      if (dependent) addEntry(node, i, actor, false);
    }
    if (actor < 0) return;
    // The last transition of another actor that this one races with: not ordered before this CPU's
    // previous transition. This CPU's step is then tried before it.
    const before = prev >= 0 ? this.trace[prev].vc : null;
    let race = -1;
    for (const d of deps) {
      if (d === prev || d <= race) continue;
      const other = this.trace[d];
      if (other.actor === actor) continue;
      const ordered = before !== null && before[other.slot] >= other.vc[other.slot];
      if (!ordered) race = d;
    }
    if (race >= 0) this.reverse(race, actor);
  }

  /** Adds trace entry `me` to the last-access maps. */
  private remember(me: number): void {
    const t = this.trace[me];
    for (const key of t.reads) {
      const rs = this.readsSince.get(key);
      if (rs) rs.push(me);
      else this.readsSince.set(key, [me]);
    }
    for (const key of t.writes) {
      this.lastWrite.set(key, me);
      this.readsSince.delete(key);
    }
    this.lastOfSlot[t.slot] = me;
    if (t.actor >= 0) this.lastCpuActor = t.actor;
  }

  /**
   * At the end of a run that did not finish: the transitions that CPUs still had pending never ran,
   * so their races are found here (Flanagan & Godefroid look at every CPU's next transition in every
   * state). A CPU waiting in a deadlock races with the last write of what it waits on; after a crash
   * or the step bound, a CPU that had not finished races with the last transition that is not ordered
   * before its own last one.
   */
  pendingRaces(mem: MachineMemory, status: RunStatus): void {
    const n = this.cpus;
    for (let p = 0; p < n; p++) {
      const o = p * CPU_WORDS;
      if (mem.cpu[o + C.done] === 1 && mem.cpu[o + C.nmiPending] === 0 && mem.cpu[o + C.mcePending] === 0)
        continue;
      const prev = this.lastOfSlot[p];
      const before = prev >= 0 ? this.trace[prev].vc : null;
      const unordered = (i: number) => {
        const t = this.trace[i];
        return t.actor !== p && !(before !== null && before[t.slot] >= t.vc[t.slot]);
      };
      let race = -1;
      if (status === RunStatus.Deadlock) {
        if (mem.cpu[o + C.waiting] !== 1) continue;
        for (const w of [mem.cpu[o + C.waitWord0], mem.cpu[o + C.waitWord1]]) {
          if (w < 0) continue;
          const i = this.lastWrite.get(location(Shared.Data, w));
          if (i !== undefined && i > race && unordered(i)) race = i;
        }
      } else {
        for (let i = this.trace.length - 1; i >= 0 && race < 0; i--) if (unordered(i)) race = i;
      }
      if (race >= 0) this.reverse(race, p);
    }
  }

  /**
   * Tries CPU p before transition `race`, and conservatively at the last node at or before it where
   * scheduling p costs no more preemptions than the run paid there: BPOR's point, the last context
   * switch, generalised to this cost (a node where the current CPU could not continue, or where the
   * run preempted it anyway, or where p is the current CPU).
   */
  private reverse(race: number, p: number): void {
    const at = this.trace[race];
    this.addCpu(at.node, p, false);
    for (let c = race; c >= 0; c--) {
      const tc = this.trace[c];
      const node = tc.node;
      if (!node.curRunnable || node.cur === p || (tc.actor >= 0 && tc.actor !== node.cur)) {
        this.addCpu(node, p, true);
        break;
      }
    }
  }

  /** Adds CPU `p` at a node, or every enabled CPU when p cannot run there. */
  private addCpu(node: ActionNode, p: number, conservative: boolean): void {
    const i = node.actions.indexOf(p);
    if (i >= 0) {
      addEntry(node, i, -1, conservative);
      return;
    }
    for (let j = 0; j < node.actions.length; j++)
      if (node.actions[j] < this.cpus) addEntry(node, j, -1, conservative);
  }
}

/** Adds a branch to a node (its symmetric representative); `conservative` ones ignore its sleep set. */
function addEntry(node: ActionNode, index: number, follow: number, conservative: boolean): void {
  const e = entryOf(node.rep[index], follow);
  if (conservative) node.conservative.add(e);
  else node.todo.add(e);
}
