// Bounded exhaustive search (SPEC §8): stateless, depth-first enumeration of every run within bounds,
// re-executing the machine from its start for each branch, as CHESS (Musuvathi & Qadeer, "Iterative
// context bounding for systematic testing of multithreaded programs", PLDI 2007) and loom do.
//
// The choices of a run are the decisions of the Scheduler: at every scheduling point, which enabled
// action runs (a CPU's step, or an NMI or #MC arriving at CPU k); inside a step, a value (a branch
// direction, a stale-fetch value). The default continuation is the tape of zeros: keep the current CPU
// until it blocks or finishes, then the next runnable CPU in order, no events, value 0. Costs:
//   - a preemption: switching away from a current CPU that could still run (choosing among CPUs when
//     the current one cannot run is free, as in CHESS). Whether it can still run is judged right after
//     its last step: an NMI or #MC that arrives since does not make switching away a preemption (an
//     arrival would otherwise make the cost of the same schedule depend on where the event landed);
//   - an event: an NMI or #MC arrival;
//   - a branch choice: a non-zero value inside a step.
// A run is within bounds (K, E, B) when it has at most K preemptions, E events and B branch choices,
// and, when a total is given, at most that many of the three together (iterative deepening).
//
// Reductions (each can be switched off, to measure it and as the unreduced reference of the tests):
//
// 1. Sleep sets (Godefroid, "Partial-order methods for the verification of concurrent systems", LNCS
//    1032, 1996), made bound-aware as Coons, Musuvathi & McKinley show is needed ("Bounded partial-order
//    reduction", OOPSLA 2013: a bound makes otherwise independent transitions dependent). A transition
//    explored from a node sleeps in a later sibling's subtree until something dependent runs; here only
//    a transition whose move to the front never costs more preemptions may sleep: the current CPU's own
//    step (the default), or a step after which its CPU cannot run. Moving such a transition t to the
//    front of u·σ·t·rest gives t·u·σ·rest with no more preemptions, provided t never changed whether a
//    CPU the schedule switched away from could run; so t also wakes when it writes a word the current
//    CPU waits on or sends it an IPI. Events never sleep (see 2). This is the guarantee: every run within
//    the bounds is equivalent (same final state, same verdicts) to an explored run within the bounds.
//    We do not implement DPOR's backtracking sets: plain DPOR is incomplete under a preemption bound,
//    and BPOR's conservative points are not needed for the guarantee above, which sleep sets alone keep.
//
// 2. Event placement. An event for CPU k commutes with every transition it is independent of, and
//    moving it later never costs a preemption (an arrival only makes k runnable). So an event need only
//    be explored immediately before a transition dependent with it (a step of k, an IPI to k, another
//    event, a step after which nothing could run): a run whose event is followed by an independent
//    transition is dropped as redundant (its equivalent, with the event one transition later, is
//    explored from the sibling branch). SPEC §8's baseline (events only at scheduling points) stays.
//
// 3. Symmetry of CPUs 1..n-1 (symmetry.ts): of two such CPUs in identical states, when nothing else in
//    the node tells them apart (neither is current, none of the sleeping transitions or a pending event
//    placement involves them), only the lower one's step, and only events to the lower one, are explored.
//    Outcomes are then equal up to swapping the two CPUs.
import { type AccessObserver, Shared } from "../../model/cpu.js";
import { C, CPU_WORDS, H, type MachineMemory, RunStatus } from "../../model/memory.js";
import type { MachineSpec } from "../../model/types.js";
import { eventDependent, Footprint, location, stepsDependent } from "./footprint.js";
import type { Scheduler } from "./scheduler.js";
import { Symmetry } from "./symmetry.js";
import { record } from "./tape.js";

export interface Bounds {
  preemptions: number;
  events: number;
  branches: number;
}

export interface Reductions {
  sleepSets: boolean;
  eventPlacement: boolean;
  symmetry: boolean;
}

export const ALL_REDUCTIONS: Reductions = { sleepSets: true, eventPlacement: true, symmetry: true };
export const NO_REDUCTIONS: Reductions = { sleepSets: false, eventPlacement: false, symmetry: false };

export interface Cost {
  preemptions: number;
  events: number;
  branches: number;
}

/** How one execution ended, as far as the search is concerned. */
export type ExecutionKind =
  | "complete" // ran to its end within the bounds: judge it
  | "error" // the run itself failed (a routine threw): its own error says why
  | "sleep" // every continuation within the bounds was asleep (an equivalent run is explored elsewhere)
  | "placement"; // an event was followed by a transition independent of it (explored one step later elsewhere)

export interface ExecutionEnd {
  kind: ExecutionKind;
  cost: Cost;
}

interface SleepEntry {
  cpu: number;
  fp: Footprint;
  /** No CPU could run after this transition (when it was explored). */
  endsRun: boolean;
}

class ActionNode {
  readonly isValue = false;
  /** What was explored from each action index: footprint (over all value choices), and flags. */
  readonly fps: (Footprint | undefined)[];
  readonly blocks: boolean[];
  readonly endsRun: boolean[];
  pos = 0;
  constructor(
    readonly actions: Int32Array,
    readonly cur: number,
    readonly curRunnable: boolean,
    readonly alts: number[],
    readonly sleep: SleepEntry[],
    /** The event target whose arrival this node's first transition must depend on (-1: none). */
    readonly mustFollow: number,
    readonly used: Cost,
  ) {
    this.fps = new Array(actions.length);
    this.blocks = new Array(actions.length).fill(true);
    this.endsRun = new Array(actions.length).fill(false);
  }
}

class ValueNode {
  readonly isValue = true;
  pos = 0;
  constructor(
    readonly count: number,
    readonly alts: number[],
  ) {}
}

type Node = ActionNode | ValueNode;

/** Some CPU other than `cpu` is among the enabled actions. */
function othersRunnable(actions: Int32Array, cpus: number, cpu: number): boolean {
  for (const a of actions) if (a < cpus && a !== cpu) return true;
  return false;
}

/** Thrown from the scheduler to stop an execution the search has found redundant. */
class Pruned extends Error {}

/**
 * The search tree and, for the execution in progress, the Scheduler that follows it. Use:
 * `begin(mem)`, run the machine with this as its scheduler, `end(status)`, then `advance()` to the
 * next execution until it returns false.
 */
export class ExhaustiveSearch implements Scheduler {
  readonly observer: AccessObserver;
  readonly cpus: number;
  private readonly stack: Node[] = [];
  private mem: MachineMemory | null = null;
  private depth = 0;
  private used: Cost = { preemptions: 0, events: 0, branches: 0 };
  /** The transition in progress: the node and action index it was chosen at, its actor (-1: an event). */
  private open: { node: ActionNode; index: number; actor: number; target: number } | null = null;
  private readonly fp = new Footprint();
  private readonly targets: number[] = [];
  private pruned: ExecutionKind | null = null;
  /** The current CPU could run on right after its last step (switching away from it is a preemption). */
  private canContinue = true;
  /** Decisions before this one replay the previous execution: nothing new is learnt from them. */
  private firstFresh = 0;
  /** The transition that ended last, while it is needed to build the next node. */
  private lastClosed: {
    node: ActionNode;
    index: number;
    actor: number;
    target: number;
    fp: Footprint;
  } | null = null;
  private readonly symmetry: Symmetry | null;
  private readonly total: number;

  constructor(
    spec: MachineSpec,
    readonly bounds: Bounds,
    readonly reductions: Reductions = ALL_REDUCTIONS,
    /** At most this many preemptions, events and branch choices together (iterative deepening). */
    total = Number.POSITIVE_INFINITY,
  ) {
    this.cpus = spec.config.hardware.cpus;
    this.total = total;
    this.symmetry = reductions.symmetry && this.cpus > 2 ? new Symmetry(spec) : null;
    this.observer = {
      access: (cpu, region, index, write) => {
        this.fp.add(region, index, write);
        if (region === Shared.Cpu && cpu !== index) this.targets.push(index);
        this.symmetry?.access(cpu, region, index, write);
      },
    };
  }

  /** Why symmetry had to be given up (the program tells CPUs 1..n-1 apart), or null. */
  get symmetryBroken(): string | null {
    return this.symmetry?.broken ?? null;
  }

  begin(mem: MachineMemory): void {
    this.mem = mem;
    this.depth = 0;
    this.used = { preemptions: 0, events: 0, branches: 0 };
    this.open = null;
    this.fp.clear();
    this.targets.length = 0;
    this.pruned = null;
    this.canContinue = true;
    this.lastClosed = null;
    this.firstFresh = Math.max(0, this.stack.length - 1);
    this.symmetry?.begin(mem);
  }

  /** Closes the execution after the run returned; `status` is its RunStatus. */
  end(status: RunStatus): ExecutionEnd {
    if (this.pruned === null) {
      if (status === RunStatus.Error) return { kind: "error", cost: { ...this.used } };
      this.close(null, 0);
    }
    return { kind: this.pruned ?? "complete", cost: { ...this.used } };
  }

  /** Moves to the next unexplored branch; false when the whole tree has been explored. */
  advance(): boolean {
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const node = this.stack[i];
      node.pos++;
      if (!node.isValue)
        while (node.pos < node.alts.length && !this.usefulEvent(node, node.alts[node.pos])) node.pos++;
      if (node.pos < node.alts.length) {
        this.stack.length = i + 1;
        return true;
      }
    }
    this.stack.length = 0;
    return false;
  }

  // ---- Scheduler ----

  pickAction(actions: Int32Array, count: number): number {
    const mem = this.mem as MachineMemory;
    this.close(actions, count);
    if (this.pruned !== null) throw new Pruned(this.pruned);
    let node: Node;
    if (this.depth < this.stack.length) {
      node = this.stack[this.depth];
      if (node.isValue || node.actions.length !== count) throw new Error("the machine is not deterministic");
    } else {
      node = this.createActionNode(mem, actions, count);
      this.stack.push(node);
      let pos = 0;
      while (pos < node.alts.length && !this.usefulEvent(node, node.alts[pos])) pos++;
      node.pos = pos;
      if (pos >= node.alts.length) {
        this.stack.pop();
        this.pruned = "sleep";
        throw new Pruned("sleep");
      }
    }
    const index = node.alts[node.pos];
    const action = actions[index];
    if (action < this.cpus) {
      if (node.curRunnable && action !== node.cur) this.used.preemptions++;
      this.open = { node, index, actor: action, target: -1 };
    } else {
      this.used.events++;
      const target = (action - this.cpus) % this.cpus;
      this.open = { node, index, actor: -1, target };
      this.symmetry?.mix(target, action < 2 * this.cpus ? 0x4e4d49 : 0x4d4345);
    }
    this.depth++;
    return record(mem, index);
  }

  choose(count: number): number {
    const mem = this.mem as MachineMemory;
    let node: Node;
    if (this.depth < this.stack.length) {
      node = this.stack[this.depth];
      if (!node.isValue || node.count !== count) throw new Error("the machine is not deterministic");
    } else {
      const alts = [0];
      if (this.used.branches < this.bounds.branches && this.spent() < this.total)
        for (let v = 1; v < count; v++) alts.push(v);
      node = new ValueNode(count, alts);
      this.stack.push(node);
    }
    const v = node.alts[node.pos];
    if (v !== 0) this.used.branches++;
    if (this.open && this.open.actor >= 0) this.symmetry?.mix(this.open.actor, 0x56000000 | v);
    this.depth++;
    return record(mem, v);
  }

  // ---- internals ----

  private spent(): number {
    return this.used.preemptions + this.used.events + this.used.branches;
  }

  /**
   * Ends the transition in progress: what it touched is added to its node; the event-placement rule
   * is checked. `actions` is null when the run has ended.
   */
  private close(actions: Int32Array | null, count: number): void {
    const t = this.open;
    if (!t) return;
    const runEnded = actions === null;
    if (t.actor >= 0) this.canContinue = !runEnded && count > 0 && (actions as Int32Array)[0] === t.actor;
    const fresh = this.depth - 1 >= this.firstFresh;
    if (t.actor >= 0 && fresh) {
      const node = t.node;
      const known = node.fps[t.index];
      if (known) known.merge(this.fp);
      else node.fps[t.index] = this.fp.copy();
      const runnableAfter = !runEnded && count > 0 && actions[0] === t.actor;
      if (runnableAfter) node.blocks[t.index] = false;
      if (runEnded) node.endsRun[t.index] = true;
    }
    if (t.actor >= 0) {
      this.symmetry?.targets(t.actor, this.targets);
      this.symmetry?.block(t.actor);
    }
    // The event-placement rule: the first transition after an event must depend on it.
    const k = t.node.mustFollow;
    if (k >= 0 && this.reductions.eventPlacement && t.actor >= 0) {
      let othersCanRun = false;
      if (actions)
        for (let i = 0; i < count; i++) if (actions[i] < this.cpus && actions[i] !== k) othersCanRun = true;
      if (!eventDependent(k, t.actor, this.fp, !othersCanRun)) this.pruned = "placement";
    }
    // The next node is new (built from this transition) once the replayed decisions are behind.
    this.lastClosed =
      this.depth >= this.stack.length
        ? { node: t.node, index: t.index, actor: t.actor, target: t.target, fp: this.fp.copy() }
        : null;
    this.fp.clear();
    this.targets.length = 0;
    this.open = null;
  }

  private createActionNode(mem: MachineMemory, actions: Int32Array, count: number): ActionNode {
    const n = this.cpus;
    const cur = mem.header[H.lastCpu];
    const curRunnable = this.canContinue && count > 0 && actions[0] === cur;
    const prev = this.depth > 0 ? this.lastClosed : null;
    // The sleep set of this node: the parent's, and the parent's eligible explored siblings, that
    // are independent of the transition that led here.
    const sleep: SleepEntry[] = [];
    if (this.reductions.sleepSets && prev) {
      const parent = prev.node;
      const candidates: SleepEntry[] = [...parent.sleep];
      const chosen = parent.alts.indexOf(prev.index);
      for (let j = 0; j < chosen; j++) {
        const i = parent.alts[j];
        const a = parent.actions[i];
        const fp = parent.fps[i];
        if (a >= n || !fp || fp.crashed) continue;
        // Bound-aware eligibility: the default step, or a step after which its CPU cannot run.
        if ((a === parent.cur && parent.curRunnable) || parent.blocks[i])
          candidates.push({ cpu: a, fp, endsRun: parent.endsRun[i] });
      }
      for (const z of candidates) {
        // A sleeping step ends the run when no other CPU could run beside it: it would then disable
        // the event (events come only while some CPU runs), whatever it ended with where explored.
        const dependent =
          prev.actor >= 0
            ? stepsDependent(z.cpu, z.fp, prev.actor, prev.fp)
            : eventDependent(
                prev.target,
                z.cpu,
                z.fp,
                z.endsRun || !othersRunnable(parent.actions, n, z.cpu),
              );
        if (!dependent && !sleep.some((s) => s.cpu === z.cpu)) sleep.push(z);
      }
      // Wake what could change whether the current CPU can run (a preemption's cost depends on it).
      const o = cur * CPU_WORDS;
      const waiting = mem.cpu[o + C.waiting] === 1;
      for (let i = sleep.length - 1; i >= 0; i--) {
        const z = sleep[i];
        if (z.cpu === cur) continue;
        const touches =
          z.fp.targets(cur) ||
          (waiting &&
            (z.fp.writesData(mem.cpu[o + C.waitWord0]) ||
              (mem.cpu[o + C.waitWord1] >= 0 && z.fp.writesData(mem.cpu[o + C.waitWord1]))));
        if (touches) sleep.splice(i, 1);
      }
    }
    const mustFollow = prev && prev.actor < 0 ? prev.target : -1;
    const used = { ...this.used };
    const spent = this.spent();
    const alts: number[] = [];
    const sym = this.symmetry;
    for (let i = 0; i < count; i++) {
      const a = actions[i];
      if (a < n) {
        const cost = curRunnable && a !== cur ? 1 : 0;
        if (used.preemptions + cost > this.bounds.preemptions || spent + cost > this.total) continue;
        if (sleep.some((z) => z.cpu === a)) continue;
        if (
          sym &&
          a > 1 &&
          a !== cur &&
          this.symmetricBelow(actions, count, a, cur, sleep, mustFollow, false)
        )
          continue;
        alts.push(i);
      } else {
        if (used.events + 1 > this.bounds.events || spent + 1 > this.total) continue;
        const k = (a - n) % n;
        if (sym && k > 1 && k !== cur && this.symmetricBelow(actions, count, a, cur, sleep, mustFollow, true))
          continue;
        alts.push(i);
      }
    }
    return new ActionNode(actions.slice(0, count), cur, curRunnable, alts, sleep, mustFollow, used);
  }

  /**
   * Whether action `a` (a step of CPU a, or an event for CPU k) has a symmetric twin of a lower CPU
   * among the actions, so that `a` need not be explored.
   */
  private symmetricBelow(
    actions: Int32Array,
    count: number,
    a: number,
    cur: number,
    sleep: SleepEntry[],
    mustFollow: number,
    isEvent: boolean,
  ): boolean {
    const n = this.cpus;
    const sym = this.symmetry as Symmetry;
    const q = isEvent ? (a - n) % n : a;
    const base = isEvent ? a - q : 0;
    if (q === mustFollow || this.involves(sleep, q)) return false;
    for (let i = 0; i < count; i++) {
      const b = actions[i];
      const p = b - base;
      if (p < 1 || p >= q || b >= base + n) continue;
      if (p === cur || p === mustFollow || this.involves(sleep, p)) continue;
      if (sym.identical(p, q)) return true;
    }
    return false;
  }

  /** A sleeping transition belongs to CPU c or touches something of c's own. */
  private involves(sleep: SleepEntry[], c: number): boolean {
    const sym = this.symmetry as Symmetry;
    for (const z of sleep) {
      if (z.cpu === c || z.fp.targets(c)) return true;
      for (const l of z.fp.reads) if (l >> 24 === Shared.Data && sym.ownsWord(c, l & 0xffffff)) return true;
      for (const l of z.fp.writes) if (l >> 24 === Shared.Data && sym.ownsWord(c, l & 0xffffff)) return true;
    }
    return false;
  }

  /**
   * Whether exploring alternative `index` of `node` can lead anywhere new. Always, for a CPU's step;
   * for an event, only when its placement rule can be met: some transition dependent with it can come
   * next within the bounds.
   */
  private usefulEvent(node: Node, index: number): boolean {
    if (node.isValue) return true;
    const n = this.cpus;
    const a = node.actions[index];
    if (a < n || !this.reductions.eventPlacement) return true;
    const k = (a - n) % n;
    const { preemptions, events } = node.used;
    const spent = preemptions + events + node.used.branches + 1; // this event included
    // Another event next (all events are dependent).
    if (events + 2 <= this.bounds.events && spent + 1 <= this.total) return true;
    // k's own step next: free when k is current or the current CPU cannot run, else a preemption.
    if (node.cur === k || !node.curRunnable) return true;
    if (preemptions + 1 <= this.bounds.preemptions && spent + 1 <= this.total) return true;
    // The current CPU's step next (no preemption), when it depends on the event.
    const i = node.actions.indexOf(node.cur);
    const fp = i >= 0 ? node.fps[i] : undefined;
    if (!fp) return true; // not explored from here: assume it may
    return eventDependent(k, node.cur, fp, node.endsRun[i]);
  }
}

export { location, Pruned };
