// Bounded exhaustive search (SPEC §8): stateless, depth-first enumeration of every run within bounds,
// as CHESS (Musuvathi & Qadeer, "Iterative context bounding for systematic testing of multithreaded
// programs", PLDI 2007) and loom do; but rather than re-executing the machine from its start for each
// branch, an execution resumes from a snapshot taken where its branch point was created (begin,
// resumeFrom; the CPUs' routines are made again from their inputs, model/cpu Cpu.restore).
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
// A transition is one CPU's visible step with the CPU-private steps that follow it, or one event; the
// dependency relation is footprint.ts's. Reductions (each can be switched off, to measure it and as
// the unreduced reference of the soundness tests):
//
// 1. Sleep sets (Godefroid, "Partial-order methods for the verification of concurrent systems", LNCS
//    1032, 1996), made bound-aware because a bound makes otherwise independent transitions dependent
//    (Coons, Musuvathi & McKinley, "Bounded partial-order reduction", OOPSLA 2013). A transition explored
//    from a node sleeps in a later sibling's subtree until something dependent runs; here only a
//    transition whose move to the front never costs more preemptions may sleep: the current CPU's own
//    step when it could continue (the default), or a step after which its CPU cannot run. Moving such a
//    transition t to the front of u·σ·t·rest gives t·u·σ·rest with no more preemptions, provided t never
//    changed whether a CPU the schedule switched away from could run; so t also wakes at a node when it
//    writes a word the current CPU waits on or sends it an IPI. A sleeping step that could end the run
//    (no other CPU could run) is dependent with an event, which needs some CPU running. Events never
//    sleep (see 2).
//
// 2. Event placement. An event for CPU k commutes with every transition it is independent of, and
//    moving it later never costs anything (arrivals do not count in preemptions). So an event need
//    only be explored immediately before a transition dependent with it (a step of k, an IPI to k,
//    another event, a step after which nothing could run): a run whose event is followed by an
//    independent transition is dropped as redundant (its equivalent, with the event one transition
//    later, is explored from the sibling branch). SPEC §8's baseline (events at scheduling points) stays.
//
// 3. DPOR (Flanagan & Godefroid, "Dynamic partial-order reduction for model checking software", POPL
//    2005), bounded as BPOR (Coons et al., OOPSLA 2013). A node explores first its default, then only
//    the alternatives that the races of the runs through it call for: when a CPU p's transition races
//    with an earlier transition T_i (dependent, of another actor, and not already ordered before p's
//    previous transition by happens-before, computed with vector clocks), p is added at the node before
//    T_i (every enabled CPU, when p could not run there), and, conservatively, at the last node before
//    it where the run switched CPUs, where scheduling p costs no preemption more than the run already
//    paid; conservative alternatives ignore sleep sets and do not put anything to sleep. An event is
//    added at every node whose transition depends on it, and is then followed by that transition.
//
// 4. Symmetry of CPUs 1..n-1 (symmetry.ts): of two such CPUs in identical states, when nothing else at
//    the node tells them apart (neither is current, no sleeping transition or pending event placement
//    involves them), only the lower one's step, and only events to the lower one, are explored.
//    Outcomes are then equal up to swapping the two CPUs.
//
// 5. State caching (state-cache.ts): a node whose whole state (buffer, the CPUs' JavaScript side, the
//    property monitors) was explored already, with budgets at least as large, an equal current-CPU
//    status and a sleep set no larger, is not explored again. DPOR is off with it (it would need the
//    visible operations of pruned subtrees propagated: Yang et al., SPIN 2008): every node explores
//    every allowed branch, and sleep sets, event placement and symmetry stay.
//
// What is guaranteed: for every run within the bounds, the search judges a run that reaches the same
// final state and the same verdicts (up to swapping symmetric CPUs), itself within the bounds. Sleep
// sets, event placement and symmetry are argued above; for DPOR under the bound we rely on BPOR's
// conservative points. The soundness tests check the whole on generated machines against an unreduced
// enumeration of the same bounds (test/search-soundness.test.ts).

import type { CpuSnapshot } from "../../model/cpu/snapshot.js";
import { type AccessObserver, Shared } from "../../model/cpu/state.js";
import { C, CPU_WORDS, H, type MachineMemory, type RunState, RunStatus } from "../../model/memory.js";
import type { MachineSpec } from "../../model/types.js";
import { ALL_CPUS, eventDependent, eventTarget, Footprint, location, stepsDependent } from "./footprint.js";
import type { CpuState, Scheduler } from "./scheduler.js";
import { hashBuffer, PropertyHistory, StateCache, StateHasher } from "./state-cache.js";
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
  dpor: boolean;
  symmetry: boolean;
  stateCaching: boolean;
}

/**
 * The reductions a search uses unless told otherwise: those the soundness tests find sound (sleep
 * sets, event placement, symmetry and state caching). DPOR is not among them: under a preemption
 * bound it misses outcomes of the unreduced enumeration on generated machines
 * (test/search-soundness.test.ts names two), so it is used only when named (and without state
 * caching, which switches it off).
 */
export const DEFAULT_REDUCTIONS: Reductions = {
  sleepSets: true,
  eventPlacement: true,
  dpor: false,
  symmetry: true,
  stateCaching: true,
};
export const NO_REDUCTIONS: Reductions = {
  sleepSets: false,
  eventPlacement: false,
  dpor: false,
  symmetry: false,
  stateCaching: false,
};
export const REDUCTION_NAMES: Array<keyof Reductions> = [
  "sleepSets",
  "eventPlacement",
  "dpor",
  "symmetry",
  "stateCaching",
];

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
  | "placement" // an event was followed by a transition independent of it (explored one step later elsewhere)
  | "cache"; // reached a state already explored with budgets at least as large (state-cache.ts)

export interface ExecutionEnd {
  kind: ExecutionKind;
  cost: Cost;
}

interface SleepEntry {
  cpu: number;
  fp: Footprint;
  /** No CPU could run after this transition (when it was explored). */
  endsRun: boolean;
  /**
   * -1: the step of `cpu` sleeps. Otherwise an event action: the pair "this event, then the step of
   * `cpu`" sleeps (an explored event placement), and only that pair.
   */
  event: number;
  /**
   * Its signature in the state cache's visits, made once: an entry is shared down the tree, and its
   * footprint is final by then (a branch sleeps only after its own subtree was explored).
   */
  signature?: string;
}

/** A sleep entry as the state cache compares sleep sets: everything that decides what it wakes on. */
function signatureOf(z: SleepEntry): string {
  z.signature ??=
    `${z.cpu}/${z.event}/${z.endsRun ? 1 : 0}/${z.fp.crashed ? 1 : 0}${z.fp.boundary ? 1 : 0}/` +
    `${[...z.fp.reads].sort((x, y) => x - y).join(",")}/${[...z.fp.writes].sort((x, y) => x - y).join(",")}`;
  return z.signature;
}

/** What followed an event placement explored from a node: the follower's footprint and flags. */
interface Follower {
  fp: Footprint;
  blocks: boolean;
  endsRun: boolean;
}

/**
 * A branch of a node: an action index, and for an event the CPU whose step must come right after it
 * (-1: none), packed as index + STRIDE * (follow + 1).
 */
const STRIDE = 256;
const entryOf = (index: number, follow: number) => index + STRIDE * (follow + 1);
const indexOf = (entry: number) => entry % STRIDE;
const followOf = (entry: number) => Math.floor(entry / STRIDE) - 1;

class ActionNode {
  readonly isValue = false;
  /** Branches to explore (DPOR's backtrack set), those added conservatively, and those explored, in order. */
  readonly todo = new Set<number>();
  readonly conservative = new Set<number>();
  readonly done: number[] = [];
  /** Branches explored only because a conservative point asked for them: they put nothing to sleep. */
  readonly onlyConservative = new Set<number>();
  chosen = -1;
  /** Position of this node's transition in the trace of the execution in progress (DPOR). */
  traceIndex = -1;
  /** For event branches explored from here (with a follower): what the follower touched. */
  readonly followers = new Map<number, Follower>();
  /** When this node comes right after an event placement: where that event was chosen. */
  eventOf: { node: ActionNode; entry: number } | null = null;
  /** What was explored from each action index: footprint (over all value choices), and flags. */
  readonly fps: (Footprint | undefined)[];
  readonly blocks: boolean[];
  readonly endsRun: boolean[];
  constructor(
    readonly actions: Int32Array,
    readonly cur: number,
    readonly curRunnable: boolean,
    /** Per action index: within the bounds, awake and not a symmetric twin; and the same ignoring sleep. */
    readonly allowed: Uint8Array,
    readonly awakeOrNot: Uint8Array,
    /** Per action index: the action index of its symmetric representative (itself if none). */
    readonly rep: Int16Array,
    readonly sleep: SleepEntry[],
    /** The event target whose arrival this node's first transition must depend on (-1: none; ALL_CPUS). */
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

/** One transition of the execution in progress, for happens-before and races (DPOR). */
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

/** Some CPU other than `cpu` is among the enabled actions. */
function othersRunnable(actions: Int32Array, cpus: number, cpu: number): boolean {
  for (const a of actions) if (a < cpus && a !== cpu) return true;
  return false;
}

/**
 * A point of the execution in progress to resume later ones from: taken as a node with more than one
 * branch is created, before its transition runs. Holds the buffer's run state, the CPUs' states and
 * the search's own state of the execution there.
 */
interface Snapshot {
  node: ActionNode;
  run: RunState;
  cpus: CpuSnapshot[];
  used: Cost;
  canContinue: boolean;
  transitions: number;
  lastCpuActor: number;
  written: number[];
  history: number[] | null;
  symmetry: Uint32Array | null;
}

/** Thrown from the scheduler to stop an execution the search has found redundant. */
class Pruned extends Error {}

const EVENTS_KEY = location(Shared.RunEnd, 1);

/**
 * The search tree and, for the execution in progress, the Scheduler that follows it. Use:
 * `begin(mem)`, run the machine with this as its scheduler, `end(status)`, then `advance()` to the
 * next execution until it returns false.
 */
export class ExhaustiveSearch implements Scheduler {
  readonly observer: AccessObserver;
  readonly cpus: number;
  /** A machine check reaches every CPU: its one action's target is ALL_CPUS. */
  private readonly mceBroadcast: boolean;
  private readonly stack: Node[] = [];
  private mem: MachineMemory | null = null;
  private depth = 0;
  private used: Cost = { preemptions: 0, events: 0, branches: 0 };
  /** The transition in progress: the node and branch it was chosen at, its actor (-1: an event). */
  private open: { node: ActionNode; entry: number; actor: number; target: number } | null = null;
  /** Step counter and the actor's boundary flag when the transition in progress was chosen. */
  private openStep = 0;
  private openAtBoundary = true;
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
    entry: number;
    actor: number;
    target: number;
    fp: Footprint;
  } | null = null;
  private readonly symmetry: Symmetry | null;
  private readonly total: number;
  // DPOR bookkeeping of the execution in progress.
  private readonly trace: Transition[] = [];
  private readonly lastWrite = new Map<number, number>();
  private readonly readsSince = new Map<number, number[]>();
  private readonly lastOfSlot: Int32Array;
  private lastCpuActor = 0;
  /** Transitions closed so far in the execution in progress. */
  private transitions = 0;
  /** DPOR is on (it is off with state caching: see state-cache.ts). */
  private readonly dpor: boolean;
  // State caching: the cache, the CPUs of the run in progress, the code bytes it wrote, the monitors.
  private readonly cache: StateCache | null;
  private readonly hasher = new StateHasher();
  private cpuStates: readonly CpuState[] = [];
  private readonly written: number[] = [];
  private readonly history: PropertyHistory | null;
  /** Per position in the stack, the snapshot taken when its node was created (if it had branches). */
  private readonly snapshots: Array<Snapshot | undefined> = [];

  constructor(
    spec: MachineSpec,
    readonly bounds: Bounds,
    readonly reductions: Reductions = DEFAULT_REDUCTIONS,
    /** At most this many preemptions, events and branch choices together (iterative deepening). */
    total = Number.POSITIVE_INFINITY,
    /**
     * Resume each execution from the snapshot nearest above its branch point instead of re-executing
     * it from the start (the same executions either way: a test compares them).
     */
    readonly resume = true,
  ) {
    this.cpus = spec.config.hardware.cpus;
    this.mceBroadcast = (spec.config.hardware.mceDelivery ?? "broadcast") === "broadcast";
    this.total = total;
    this.symmetry = reductions.symmetry && this.cpus > 2 ? new Symmetry(spec) : null;
    this.dpor = reductions.dpor && !reductions.stateCaching;
    this.cache = reductions.stateCaching ? new StateCache() : null;
    this.history = reductions.stateCaching ? new PropertyHistory(spec) : null;
    this.lastOfSlot = new Int32Array(this.cpus + 1);
    this.observer = {
      access: (cpu, region, index, write) => {
        this.fp.add(region, index, write);
        if (write && region === Shared.Code && this.cache && !this.written.includes(index))
          this.written.push(index);
        if (region === Shared.Cpu && cpu !== index) this.targets.push(index);
        this.symmetry?.access(cpu, region, index, write);
      },
    };
  }

  /** Distinct states the state cache holds (0 without state caching). */
  get states(): number {
    return this.cache?.states ?? 0;
  }

  /** The CPUs of the run about to start (their JavaScript-side state is part of a node's state). */
  attach(cpus: readonly CpuState[]): void {
    this.cpuStates = cpus;
  }

  /** Why symmetry had to be given up (the program tells CPUs 1..n-1 apart), or null. */
  get symmetryBroken(): string | null {
    return this.symmetry?.broken ?? null;
  }

  /**
   * Prepares the next execution. Returns true when it resumed it from a snapshot: the buffer and the
   * attached CPUs are then as they were at that point, and the run goes on from there (inline
   * continueSpec); false: run it from the start (runSpec).
   */
  begin(mem: MachineMemory): boolean {
    if (this.resume && this.cpuStates.length > 0)
      for (let j = this.stack.length - 1; j >= 0; j--) {
        const snap = this.snapshots[j];
        if (snap && snap.node === this.stack[j]) {
          this.resumeFrom(mem, j, snap);
          return true;
        }
      }
    // The transitions before the branch point are those of the previous execution: keep them.
    let keep = 0;
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const node = this.stack[i];
      if (!node.isValue) {
        keep = Math.max(0, node.traceIndex);
        break;
      }
    }
    this.startAt(mem, 0, { preemptions: 0, events: 0, branches: 0 }, true, keep);
    this.transitions = 0;
    this.symmetry?.begin(mem);
    this.written.length = 0;
    this.history?.reset();
    return false;
  }

  /** Puts the machine, the CPUs and this execution's state back to snapshot `snap`, at stack position j. */
  private resumeFrom(mem: MachineMemory, j: number, snap: Snapshot): void {
    this.startAt(mem, j, snap.used, snap.canContinue, snap.transitions);
    this.lastCpuActor = snap.lastCpuActor;
    this.transitions = snap.transitions;
    if (snap.symmetry) this.symmetry?.restore(mem, snap.symmetry);
    this.written.length = 0;
    this.written.push(...snap.written);
    if (snap.history) this.history?.restore(snap.history);
    mem.restoreRun(snap.run);
    this.cpuStates.forEach((cpu, i) => {
      cpu.restore(snap.cpus[i]);
    });
  }

  /**
   * What every execution starts with, from the start or resumed: the search's own state at stack
   * position `depth`, and the first `keep` transitions of the previous execution's trace, with their
   * vector clocks, and the last-access maps rebuilt from them (DPOR).
   */
  private startAt(mem: MachineMemory, depth: number, used: Cost, canContinue: boolean, keep: number): void {
    this.mem = mem;
    this.depth = depth;
    this.used = { ...used };
    this.open = null;
    this.fp.clear();
    this.targets.length = 0;
    this.pruned = null;
    this.canContinue = canContinue;
    this.lastClosed = null;
    this.firstFresh = Math.max(0, this.stack.length - 1);
    this.trace.length = Math.min(this.trace.length, keep);
    this.lastWrite.clear();
    this.readsSince.clear();
    this.lastOfSlot.fill(-1);
    this.lastCpuActor = 0;
    for (let me = 0; me < this.trace.length; me++) this.remember(me);
  }

  /** The CPUs of the run in progress (those a resumed execution goes on with). */
  get runCpus(): readonly CpuState[] {
    return this.cpuStates;
  }

  /** Takes the snapshot of the node just created at stack position j (the pool keeps one per position). */
  private snapshot(mem: MachineMemory, j: number, node: ActionNode): void {
    const run = this.snapshots[j]?.run ?? mem.newRunState();
    mem.saveRun(run);
    this.snapshots[j] = {
      node,
      run,
      cpus: this.cpuStates.map((cpu) => cpu.save()),
      used: { ...this.used },
      canContinue: this.canContinue,
      transitions: this.transitions,
      lastCpuActor: this.lastCpuActor,
      written: this.written.slice(),
      history: this.history?.save() ?? null,
      symmetry: this.symmetry?.save() ?? null,
    };
  }

  /** Closes the execution after the run returned; `status` is its RunStatus. */
  end(status: RunStatus): ExecutionEnd {
    if (this.pruned === null) {
      if (status === RunStatus.Error) return { kind: "error", cost: { ...this.used } };
      this.close(null, 0);
      if (this.dpor && status !== RunStatus.Finished) this.pendingRaces(status);
    }
    return { kind: this.pruned ?? "complete", cost: { ...this.used } };
  }

  /** Moves to the next unexplored branch; false when the whole tree has been explored. */
  advance(): boolean {
    for (let i = this.stack.length - 1; i >= 0; i--) {
      const node = this.stack[i];
      if (node.isValue) {
        node.pos++;
        if (node.pos < node.alts.length) {
          this.stack.length = i + 1;
          return true;
        }
        continue;
      }
      const next = this.nextEntry(node);
      if (next >= 0) {
        node.chosen = next;
        node.done.push(next);
        if (!node.todo.has(next)) node.onlyConservative.add(next);
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
      if (this.cache && this.visited(mem, node)) {
        this.pruned = "cache";
        throw new Pruned("cache");
      }
      this.stack.push(node);
      const first = this.firstEntry(node);
      if (first < 0) {
        this.stack.pop();
        this.pruned = "sleep";
        throw new Pruned("sleep");
      }
      node.todo.add(first);
      node.chosen = first;
      node.done.push(first);
      if (!this.dpor) for (const e of this.allEntries(node)) node.todo.add(e);
      // A node that may be branched at later: remember how to come back to it.
      if (this.resume && this.cpuStates.length > 0 && (this.dpor || node.todo.size > 1))
        this.snapshot(mem, this.depth, node);
    }
    const entry = node.chosen;
    const index = indexOf(entry);
    const action = actions[index];
    node.traceIndex = this.transitions;
    this.openStep = mem.header[H.step];
    if (action < this.cpus) {
      if (node.curRunnable && action !== node.cur) this.used.preemptions++;
      this.open = { node, entry, actor: action, target: -1 };
      this.openAtBoundary = mem.cpu[action * CPU_WORDS + C.atBoundary] === 1;
    } else {
      this.used.events++;
      const target = this.targetOf(action);
      this.open = { node, entry, actor: -1, target };
      const tag = action < 2 * this.cpus ? 0x4e4d49 : 0x4d4345;
      if (target === ALL_CPUS) for (let c = 0; c < this.cpus; c++) this.symmetry?.mix(c, tag);
      else this.symmetry?.mix(target, tag);
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

  /**
   * State caching: whether this new node's state was explored already with budgets at least as large
   * and a sleep set no larger (then it is pruned); otherwise the visit is remembered.
   */
  private visited(mem: MachineMemory, node: ActionNode): boolean {
    const h = this.hasher;
    const history = this.history as PropertyHistory;
    history.update(mem);
    h.reset();
    hashBuffer(h, mem, this.written);
    for (const cpu of this.cpuStates) cpu.fingerprint(h.mix);
    h.mix(history.awaiting);
    h.mix(history.clobbers);
    h.mix(history.probing);
    h.mix(history.reached);
    h.mix(history.crash);
    h.mix(node.curRunnable ? 1 : 0);
    h.mix(node.mustFollow);
    h.mix(this.lastClosed && this.lastClosed.actor < 0 ? followOf(this.lastClosed.entry) : -1);
    const sleep = node.sleep.map(signatureOf);
    const used = node.used;
    return (this.cache as StateCache).covered(
      h,
      {
        preemptions: this.bounds.preemptions - used.preemptions,
        events: this.bounds.events - used.events,
        branches: this.bounds.branches - used.branches,
        total: this.total - (used.preemptions + used.events + used.branches),
      },
      sleep,
    );
  }

  /** The CPU an event action reaches, or ALL_CPUS (a broadcast #MC). */
  private targetOf(action: number): number {
    return eventTarget(action, this.cpus, this.mceBroadcast);
  }

  private spent(): number {
    return this.used.preemptions + this.used.events + this.used.branches;
  }

  /** Every branch of a node without DPOR: each allowed action (events with no forced follower). */
  private allEntries(node: ActionNode): number[] {
    const out: number[] = [];
    for (let i = 0; i < node.actions.length; i++) if (node.allowed[i]) out.push(entryOf(i, -1));
    return out;
  }

  /** The branch a new node takes first: the follower of the event that led here, or the first allowed. */
  private firstEntry(node: ActionNode): number {
    const forced = this.lastClosed && this.lastClosed.actor < 0 ? followOf(this.lastClosed.entry) : -1;
    if (forced >= 0) {
      const i = node.actions.indexOf(forced);
      if (i >= 0 && node.allowed[i]) return entryOf(i, -1);
    }
    for (let i = 0; i < node.actions.length; i++) {
      if (!node.allowed[i]) continue;
      const e = entryOf(i, -1);
      if (this.useful(node, e)) return e;
    }
    return -1;
  }

  /** The next branch to explore at a node (lowest first), or -1. */
  private nextEntry(node: ActionNode): number {
    let best = -1;
    const consider = (e: number) => {
      if (node.done.includes(e) || (best >= 0 && e >= best)) return;
      const i = indexOf(e);
      const ok =
        (node.allowed[i] === 1 && !this.pairAsleep(node, e)) ||
        (node.conservative.has(e) && node.awakeOrNot[i] === 1);
      if (ok && this.useful(node, e)) best = e;
    };
    for (const e of node.todo) consider(e);
    for (const e of node.conservative) consider(e);
    return best;
  }

  /** An event placement whose pair (the event, then its follower) sleeps at this node. */
  private pairAsleep(node: ActionNode, entry: number): boolean {
    const x = followOf(entry);
    if (x < 0 || node.sleep.length === 0) return false;
    const a = node.actions[indexOf(entry)];
    return node.sleep.some((z) => z.event === a && z.cpu === x);
  }

  /** Adds a branch to a node; `conservative` ones ignore its sleep set. */
  private addEntry(node: ActionNode, index: number, follow: number, conservative: boolean): void {
    const e = entryOf(node.rep[index], follow);
    if (conservative) node.conservative.add(e);
    else node.todo.add(e);
  }

  /** Adds CPU `p` at a node, or every enabled CPU when p cannot run there (DPOR). */
  private addCpu(node: ActionNode, p: number, conservative: boolean): void {
    const i = node.actions.indexOf(p);
    if (i >= 0) {
      this.addEntry(node, i, -1, conservative);
      return;
    }
    for (let j = 0; j < node.actions.length; j++)
      if (node.actions[j] < this.cpus) this.addEntry(node, j, -1, conservative);
  }

  /**
   * Ends the transition in progress: what it touched is added to its node, its races are recorded
   * (DPOR), and the event-placement rule is checked. `actions` is null when the run has ended.
   */
  private close(actions: Int32Array | null, count: number): void {
    const t = this.open;
    if (!t) return;
    const n = this.cpus;
    const runEnded = actions === null;
    const index = indexOf(t.entry);
    const mem = this.mem as MachineMemory;
    // One step begun in the middle of an instruction: no boundary in this transition.
    if (t.actor >= 0) this.fp.boundary = this.openAtBoundary || mem.header[H.step] - this.openStep > 1;
    if (t.actor >= 0) this.canContinue = !runEnded && count > 0 && (actions as Int32Array)[0] === t.actor;
    const fresh = this.depth - 1 >= this.firstFresh;
    if (t.actor >= 0 && fresh) {
      const node = t.node;
      const known = node.fps[index];
      if (known) known.merge(this.fp);
      else node.fps[index] = this.fp.copy();
      const runnableAfter = !runEnded && count > 0 && (actions as Int32Array)[0] === t.actor;
      if (runnableAfter) node.blocks[index] = false;
      if (runEnded) node.endsRun[index] = true;
    }
    if (t.actor >= 0) {
      this.symmetry?.targets(t.actor, this.targets);
      this.symmetry?.block(t.actor);
    }
    // The first transition after an event placement with a follower: remember it at the event's node.
    const ev = t.node.eventOf;
    if (ev && t.actor >= 0 && fresh && followOf(ev.entry) === t.actor) {
      const runnableAfter = !runEnded && count > 0 && (actions as Int32Array)[0] === t.actor;
      const known = ev.node.followers.get(ev.entry);
      if (known) {
        known.fp.merge(this.fp);
        known.blocks &&= !runnableAfter;
        known.endsRun ||= runEnded;
      } else
        ev.node.followers.set(ev.entry, { fp: this.fp.copy(), blocks: !runnableAfter, endsRun: runEnded });
    }
    if (this.dpor && this.transitions >= this.trace.length)
      this.races(t.node, index, t.actor, t.target, fresh, runEnded);
    this.transitions++;
    // The event-placement rule: the first transition after an event must depend on it.
    const k = t.node.mustFollow;
    if (k !== -1 && this.reductions.eventPlacement && t.actor >= 0) {
      let othersCanRun = false;
      if (actions)
        for (let i = 0; i < count; i++) if (actions[i] < n && actions[i] !== k) othersCanRun = true;
      if (!eventDependent(k, t.actor, this.fp, !othersCanRun)) this.pruned = "placement";
    }
    // The next node is new (built from this transition) once the replayed decisions are behind.
    this.lastClosed =
      this.depth >= this.stack.length
        ? { node: t.node, entry: t.entry, actor: t.actor, target: t.target, fp: this.fp.copy() }
        : null;
    this.fp.clear();
    this.targets.length = 0;
    this.open = null;
  }

  /**
   * DPOR: adds the transition to the happens-before relation (vector clocks), and when it is new in
   * this execution, the branches its races call for and the events that may come right before it.
   */
  private races(
    node: ActionNode,
    index: number,
    actor: number,
    target: number,
    fresh: boolean,
    runEnded: boolean,
  ): void {
    const n = this.cpus;
    const fp = this.fp;
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
      if (dependent) this.addEntry(node, i, actor, false);
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
   * DPOR at the end of a run that did not finish: the transitions that CPUs still had pending never
   * ran, so their races are found here (Flanagan & Godefroid look at every CPU's next transition in
   * every state). A CPU waiting in a deadlock races with the last write of what it waits on; after a
   * crash or the step bound, a CPU that had not finished races with the last transition that is not
   * ordered before its own last one.
   */
  private pendingRaces(status: RunStatus): void {
    const mem = this.mem as MachineMemory;
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
   * Tries CPU p before transition `race` (DPOR), and conservatively at the last node at or before it
   * where scheduling p costs no more preemptions than the run paid there: BPOR's point, the last
   * context switch, generalised to this cost (a node where the current CPU could not continue, or
   * where the run preempted it anyway, or where p is the current CPU).
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
      for (const e of parent.done) {
        if (e === prev.entry) break;
        // Explored only conservatively: it puts nothing to sleep (BPOR).
        if (parent.onlyConservative.has(e)) continue;
        const i = indexOf(e);
        const a = parent.actions[i];
        if (a >= n) {
          // An event placement with its follower X sleeps as a pair: moving the event costs nothing,
          // and moving X's step is bound-safe on the same terms as a step alone.
          const x = followOf(e);
          const f = parent.followers.get(e);
          if (x < 0 || !f || f.fp.crashed) continue;
          if ((x === parent.cur && parent.curRunnable) || f.blocks)
            candidates.push({ cpu: x, fp: f.fp, endsRun: f.endsRun, event: a });
          continue;
        }
        const fp = parent.fps[i];
        if (!fp || fp.crashed) continue;
        // Bound-aware eligibility: the default step, or a step after which its CPU cannot run.
        if ((a === parent.cur && parent.curRunnable) || parent.blocks[i])
          candidates.push({ cpu: a, fp, endsRun: parent.endsRun[i], event: -1 });
      }
      for (const z of candidates) {
        // A sleeping step ends the run when no other CPU could run beside it: it would then disable
        // the event (events come only while some CPU runs), whatever it ended with where explored.
        let dependent: boolean;
        if (prev.actor < 0)
          dependent =
            z.event >= 0 ||
            eventDependent(prev.target, z.cpu, z.fp, z.endsRun || !othersRunnable(parent.actions, n, z.cpu));
        else
          dependent =
            stepsDependent(z.cpu, z.fp, prev.actor, prev.fp) ||
            (z.event >= 0 && eventDependent(this.targetOf(z.event), prev.actor, prev.fp, false));
        if (!dependent && !sleep.some((s) => s.cpu === z.cpu && s.event === z.event)) sleep.push(z);
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
    const allowed = new Uint8Array(count);
    const awake = new Uint8Array(count);
    const rep = new Int16Array(count);
    const sym = this.symmetry;
    for (let i = 0; i < count; i++) {
      rep[i] = i;
      const a = actions[i];
      if (a < n) {
        const cost = curRunnable && a !== cur ? 1 : 0;
        if (used.preemptions + cost > this.bounds.preemptions || spent + cost > this.total) continue;
        if (sym && a > 1 && a !== cur) {
          const twin = this.symmetricBelow(actions, count, a, cur, sleep, mustFollow, false);
          if (twin >= 0) {
            rep[i] = twin;
            continue;
          }
        }
        awake[i] = 1;
        if (!sleep.some((z) => z.cpu === a && z.event < 0)) allowed[i] = 1;
      } else {
        if (used.events + 1 > this.bounds.events || spent + 1 > this.total) continue;
        const k = this.targetOf(a);
        if (sym && k > 1 && k !== cur) {
          const twin = this.symmetricBelow(actions, count, a, cur, sleep, mustFollow, true);
          if (twin >= 0) {
            rep[i] = twin;
            continue;
          }
        }
        awake[i] = 1;
        allowed[i] = 1;
      }
    }
    const node = new ActionNode(
      actions.slice(0, count),
      cur,
      curRunnable,
      allowed,
      awake,
      rep,
      sleep,
      mustFollow,
      used,
    );
    if (prev && prev.actor < 0) node.eventOf = { node: prev.node, entry: prev.entry };
    return node;
  }

  /**
   * The action index of a symmetric twin of a lower CPU for action `a` (a step of CPU a, or an event
   * for CPU k), so that `a` need not be explored; -1 if there is none.
   */
  private symmetricBelow(
    actions: Int32Array,
    count: number,
    a: number,
    cur: number,
    sleep: SleepEntry[],
    mustFollow: number,
    isEvent: boolean,
  ): number {
    const n = this.cpus;
    const sym = this.symmetry as Symmetry;
    const q = isEvent ? (a - n) % n : a;
    const base = isEvent ? a - q : 0;
    if (q === mustFollow || this.involves(sleep, q)) return -1;
    for (let i = 0; i < count; i++) {
      const b = actions[i];
      const p = b - base;
      if (p < 1 || p >= q || b >= base + n) continue;
      if (p === cur || p === mustFollow || this.involves(sleep, p)) continue;
      if (sym.identical(p, q)) return i;
    }
    return -1;
  }

  /** A sleeping transition belongs to CPU c or touches something of c's own. */
  private involves(sleep: SleepEntry[], c: number): boolean {
    const sym = this.symmetry as Symmetry;
    for (const z of sleep) {
      if (z.cpu === c || z.fp.targets(c)) return true;
      if (z.event >= 0 && [c, ALL_CPUS].includes(this.targetOf(z.event))) return true;
      for (const l of z.fp.reads) if (l >> 24 === Shared.Data && sym.ownsWord(c, l & 0xffffff)) return true;
      for (const l of z.fp.writes) if (l >> 24 === Shared.Data && sym.ownsWord(c, l & 0xffffff)) return true;
    }
    return false;
  }

  /**
   * Whether exploring a branch can lead anywhere new. Always, for a CPU's step; for an event, only
   * when its placement rule can be met: a transition dependent with it can come next within the bounds.
   */
  private useful(node: ActionNode, entry: number): boolean {
    const n = this.cpus;
    const index = indexOf(entry);
    const a = node.actions[index];
    if (a < n || !this.reductions.eventPlacement) return true;
    const k = this.targetOf(a);
    // A broadcast event depends on every CPU's next step at a boundary: assume it may be followed.
    if (k === ALL_CPUS) return true;
    const { preemptions, events } = node.used;
    const spent = preemptions + events + node.used.branches + 1; // this event included
    const follow = followOf(entry);
    if (follow >= 0) {
      // The follower must be affordable after the event.
      if (follow === node.cur || !node.curRunnable) return true;
      return preemptions + 1 <= this.bounds.preemptions && spent + 1 <= this.total;
    }
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

export { Pruned };
