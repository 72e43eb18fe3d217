// Bounded exhaustive search (SPEC §8): stateless, depth-first enumeration of every run within bounds,
// as CHESS (Musuvathi & Qadeer, "Iterative context bounding for systematic testing of multithreaded
// programs", PLDI 2007) and loom do. This file is the Scheduler that walks the search tree with the
// engine: it builds a node at each new scheduling point and closes each transition, and puts the
// parts together:
//   - search-tree.ts: the depth-first choice tree (nodes, branches, bounds and costs);
//   - reductions.ts: which branches need not be explored (sleep sets, event placement, symmetry,
//     state caching), and dpor.ts (DPOR, off by default);
//   - resume.ts: snapshots at branch points, from which later executions resume instead of
//     re-executing the machine from its start (begin).
//
// What is guaranteed: for every run within the bounds, the search judges a run that reaches the same
// final state and the same verdicts (up to swapping symmetric CPUs), itself within the bounds. Sleep
// sets, event placement and symmetry are argued in reductions.ts; for DPOR under the bound we rely on
// BPOR's conservative points. The soundness tests check the whole on generated machines against an
// unreduced enumeration of the same bounds (test/search-soundness.test.ts).

import { type AccessObserver, Shared, ValueKind } from "../../model/cpu/state.js";
import { C, CPU_WORDS, H, type MachineMemory, RunStatus } from "../../model/memory.js";
import type { MachineSpec } from "../../model/types.js";
import { Dpor } from "./dpor.js";
import { ALL_CPUS, eventTarget, Footprint } from "./footprint.js";
import {
  type Closed,
  DEFAULT_REDUCTIONS,
  pairAsleep,
  placementBroken,
  placementUseful,
  type Reductions,
  signatureOf,
  sleepSetOf,
  symmetricBelow,
} from "./reductions.js";
import { type LogMonitor, restore, Snapshots } from "./resume.js";
import type { CpuState, Scheduler } from "./scheduler.js";
import {
  ActionNode,
  advanceStack,
  type Bounds,
  type Cost,
  type ExecutionEnd,
  type ExecutionKind,
  entryOf,
  firstEntry,
  followOf,
  indexOf,
  type Node,
  nextEntry,
  noCost,
  type SleepEntry,
  spentOf,
  ValueNode,
  valueAlternatives,
} from "./search-tree.js";
import { BufferHash, hashWritten, PropertyHistory, StateCache, StateHasher } from "./state-cache.js";
import { Symmetry } from "./symmetry.js";
import { record } from "./tape.js";

/**
 * Thrown from the scheduler to stop an execution the search has found redundant. Not an Error: with
 * state caching most executions end this way, and an Error captures the stack at every throw (it
 * took 9% of a search's time). The engine's catch reads only `message` (inline.ts failed).
 */
class Pruned {
  constructor(readonly message: ExecutionKind) {}
}
/** One of each, made once: a throw allocates nothing. */
const PRUNED: Record<ExecutionKind, Pruned> = {
  complete: new Pruned("complete"),
  error: new Pruned("error"),
  sleep: new Pruned("sleep"),
  placement: new Pruned("placement"),
  cache: new Pruned("cache"),
};

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
  private used: Cost = noCost();
  /** The transition in progress: the node and branch it was chosen at, its actor (-1: an event). */
  private open: { node: ActionNode; entry: number; actor: number; target: number } | null = null;
  /** Step counter and the actor's boundary flag when the transition in progress was chosen. */
  private openStep = 0;
  private openAtBoundary = true;
  private fp = new Footprint();
  /** The footprint lastClosed holds, or a free one: close swaps it with fp. */
  private otherFp = new Footprint();
  private readonly targets: number[] = [];
  private pruned: ExecutionKind | null = null;
  /** The current CPU could run on right after its last step (switching away from it is a preemption). */
  private canContinue = true;
  /** Decisions before this one replay the previous execution: nothing new is learnt from them. */
  private firstFresh = 0;
  /** The transition that ended last, while it is needed to build the next node. */
  private lastClosed: Closed | null = null;
  private readonly symmetry: Symmetry | null;
  private readonly total: number;
  /** DPOR's trace of the execution in progress; its races are recorded only when DPOR is on. */
  private readonly dporTrace: Dpor;
  /** Transitions closed so far in the execution in progress. */
  private transitions = 0;
  /** DPOR is on (it is off with state caching: see state-cache.ts). */
  private readonly dpor: boolean;
  // State caching: the cache, the CPUs of the run in progress, the code bytes it wrote (sorted, as the
  // state hash takes them), the monitors.
  private readonly cache: StateCache | null;
  private readonly hasher = new StateHasher();
  private bufferHash: BufferHash | null = null;
  private cpuStates: readonly CpuState[] = [];
  private readonly written: number[] = [];
  private readonly history: PropertyHistory | null;
  /** Per position in the stack, the snapshot taken when its node was created (if it had branches). */
  private readonly snapshots = new Snapshots();
  /** Choice points with more than one value met inside steps, by kind (explore.ts shares one count). */
  valuePoints = { branch: 0, stale: 0 };
  /**
   * Some choice was left out only because of the total (iterative deepening's level), not because of
   * its own dimension's bound. When no choice was, the next level would explore the very same runs,
   * and deepening can stop (explore.ts).
   */
  totalBound = false;
  /** The caller's reader of the log, kept in step with the executions (resume.ts LogMonitor). */
  monitor: LogMonitor | null = null;

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
    /** The state cache's size limit in bytes (`--max-memory`; none by default). */
    maxCacheBytes = Number.POSITIVE_INFINITY,
  ) {
    this.cpus = spec.config.hardware.cpus;
    this.mceBroadcast = (spec.config.hardware.mceDelivery ?? "broadcast") === "broadcast";
    this.total = total;
    this.symmetry = reductions.symmetry && this.cpus > 2 ? new Symmetry(spec) : null;
    this.dpor = reductions.dpor && !reductions.stateCaching;
    this.cache = reductions.stateCaching ? new StateCache(maxCacheBytes) : null;
    this.history = reductions.stateCaching ? new PropertyHistory(spec) : null;
    this.dporTrace = new Dpor(this.cpus, (action) => this.targetOf(action));
    this.observer = {
      access: (cpu, region, index, write) => {
        this.fp.add(region, index, write);
        if (write && region === Shared.Code && this.cache) insertSorted(this.written, index);
        if (region === Shared.Cpu && cpu !== index) this.targets.push(index);
        this.symmetry?.access(cpu, region, index, write);
      },
    };
  }

  /** Distinct states the state cache holds (0 without state caching). */
  get states(): number {
    return this.cache?.states ?? 0;
  }

  /** The state cache reached its size limit: states met since were explored without being remembered. */
  get cacheFull(): boolean {
    return this.cache?.full ?? false;
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
    if (this.resume && this.cpuStates.length > 0) {
      const near = this.snapshots.nearest(this.stack);
      if (near) {
        // Puts the machine, the CPUs and this execution's state back to the snapshot.
        const { j, snap } = near;
        this.startAt(mem, j, snap.used, snap.canContinue, snap.transitions);
        this.dporTrace.lastCpuActor = snap.lastCpuActor;
        this.transitions = snap.transitions;
        if (snap.symmetry) this.symmetry?.restore(mem, snap.symmetry);
        this.written.length = 0;
        this.written.push(...snap.written);
        if (snap.history) this.history?.restore(snap.history);
        this.monitor?.restore(snap.monitor);
        restore(mem, this.cpuStates, snap);
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
    this.startAt(mem, 0, noCost(), true, keep);
    this.transitions = 0;
    this.symmetry?.begin(mem);
    this.written.length = 0;
    this.history?.reset();
    this.monitor?.reset();
    return false;
  }

  /**
   * What every execution starts with, from the start or resumed: the search's own state at stack
   * position `depth`, and the first `keep` transitions of the previous execution's trace (DPOR).
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
    this.dporTrace.restart(keep);
  }

  /** The CPUs of the run in progress (those a resumed execution goes on with). */
  get runCpus(): readonly CpuState[] {
    return this.cpuStates;
  }

  /** Closes the execution after the run returned; `status` is its RunStatus. */
  end(status: RunStatus): ExecutionEnd {
    if (this.pruned === null) {
      if (status === RunStatus.Error) return { kind: "error", cost: { ...this.used } };
      this.close(null, 0);
      if (this.dpor && status !== RunStatus.Finished)
        this.dporTrace.pendingRaces(this.mem as MachineMemory, status);
    }
    return { kind: this.pruned ?? "complete", cost: { ...this.used } };
  }

  /** Moves to the next unexplored branch; false when the whole tree has been explored. */
  advance(): boolean {
    return advanceStack(this.stack, (node) =>
      nextEntry(
        node,
        (e) => pairAsleep(node, e),
        (e) => this.useful(node, e),
      ),
    );
  }

  // ---- Scheduler ----

  pickAction(actions: Int32Array, count: number): number {
    const mem = this.mem as MachineMemory;
    this.close(actions, count);
    if (this.pruned !== null) throw PRUNED[this.pruned];
    let node: Node;
    if (this.depth < this.stack.length) {
      node = this.stack[this.depth];
      if (node.isValue || node.actions.length !== count) throw new Error("the machine is not deterministic");
    } else {
      const created = this.createActionNode(mem, actions, count);
      node = created;
      if (this.cache && this.visited(mem, created)) {
        this.pruned = "cache";
        throw PRUNED.cache;
      }
      this.stack.push(node);
      const first = firstEntry(created, this.forcedFollower(), (e) => this.useful(created, e));
      if (first < 0) {
        this.stack.pop();
        this.pruned = "sleep";
        throw PRUNED.sleep;
      }
      node.todo.add(first);
      node.chosen = first;
      node.done.push(first);
      if (!this.dpor) for (let i = 0; i < count; i++) if (created.allowed[i]) node.todo.add(entryOf(i, -1));
      // A node that may be branched at later: remember how to come back to it.
      if (this.resume && this.cpuStates.length > 0 && (this.dpor || node.todo.size > 1)) {
        this.monitor?.update(mem);
        this.snapshots.take(mem, this.cpuStates, this.depth, node, {
          used: { ...this.used },
          canContinue: this.canContinue,
          transitions: this.transitions,
          lastCpuActor: this.dporTrace.lastCpuActor,
          written: this.written.slice(),
          history: this.history?.save() ?? null,
          symmetry: this.symmetry?.save() ?? null,
          monitor: this.monitor?.save() ?? null,
        });
      }
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

  choose(count: number, kind: ValueKind): number {
    const mem = this.mem as MachineMemory;
    let node: Node;
    if (this.depth < this.stack.length) {
      node = this.stack[this.depth];
      if (!node.isValue || node.count !== count || node.kind !== kind)
        throw new Error("the machine is not deterministic");
    } else {
      node = new ValueNode(count, kind, valueAlternatives(count, kind, this.used, this.bounds, this.total));
      this.stack.push(node);
      if (count > 1) {
        if (kind === ValueKind.Stale) this.valuePoints.stale++;
        else this.valuePoints.branch++;
        const own =
          kind === ValueKind.Stale
            ? this.used.stale < this.bounds.stale
            : this.used.branches < this.bounds.branches;
        if (own && spentOf(this.used) >= this.total) this.totalBound = true;
      }
    }
    const v = node.alts[node.pos];
    if (v !== 0) {
      if (kind === ValueKind.Stale) this.used.stale++;
      else this.used.branches++;
    }
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
    // The buffer's words by difference from the last node hashed (state-cache.ts BufferHash), then
    // what is not in fixed places: the written code bytes, the CPUs' JavaScript side, the monitors.
    this.bufferHash ??= new BufferHash(mem);
    const buffer = this.bufferHash;
    buffer.update(mem);
    h.reset();
    h.mix(buffer.a);
    h.mix(buffer.b);
    h.mix(buffer.c);
    hashWritten(h, mem, this.written);
    for (const cpu of this.cpuStates) cpu.fingerprint(h.mix);
    h.mix(history.awaiting);
    h.mix(history.clobbers);
    h.mix(history.probing);
    h.mix(history.reached);
    h.mix(history.crash);
    h.mix(node.curRunnable ? 1 : 0);
    h.mix(node.mustFollow);
    h.mix(this.forcedFollower());
    const sleep = node.sleep.length === 0 ? NO_SLEEP : node.sleep.map(signatureOf);
    const used = node.used;
    return (this.cache as StateCache).covered(
      h,
      {
        preemptions: this.bounds.preemptions - used.preemptions,
        events: this.bounds.events - used.events,
        branches: this.bounds.branches - used.branches,
        stale: this.bounds.stale - used.stale,
        total: this.total - spentOf(used),
      },
      sleep,
    );
  }

  /** The CPU whose step must come next, after the event placement that just ran (-1: none). */
  private forcedFollower(): number {
    return this.lastClosed && this.lastClosed.actor < 0 ? followOf(this.lastClosed.entry) : -1;
  }

  /** The CPU an event action reaches, or ALL_CPUS (a broadcast #MC). */
  private targetOf(action: number): number {
    return eventTarget(action, this.cpus, this.mceBroadcast);
  }

  /** Whether exploring a branch can lead anywhere new (event placement; always when it is off). */
  private useful(node: ActionNode, entry: number): boolean {
    if (!this.reductions.eventPlacement) return true;
    const targetOf = (a: number) => this.targetOf(a);
    if (placementUseful(node, entry, this.bounds, this.total, this.cpus, targetOf)) return true;
    if (this.total !== Number.POSITIVE_INFINITY)
      if (placementUseful(node, entry, this.bounds, Number.POSITIVE_INFINITY, this.cpus, targetOf))
        this.totalBound = true;
    return false;
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
    if (this.dpor && this.transitions >= this.dporTrace.length)
      this.dporTrace.add(t.node, index, t.actor, t.target, this.fp, fresh, runEnded);
    this.transitions++;
    // The event-placement rule: the first transition after an event must depend on it.
    const k = t.node.mustFollow;
    if (k !== -1 && this.reductions.eventPlacement && t.actor >= 0) {
      if (placementBroken(k, t.actor, this.fp, actions, count, n)) this.pruned = "placement";
    }
    // The next node is new (built from this transition) once the replayed decisions are behind.
    // It takes this transition's footprint itself (only the next node's sleep set reads it, before
    // the next close); the next transition fills the other one, which the previous lastClosed held.
    if (this.depth >= this.stack.length) {
      const fp = this.fp;
      this.fp = this.otherFp;
      this.otherFp = fp;
      this.lastClosed = { node: t.node, entry: t.entry, actor: t.actor, target: t.target, fp };
    } else this.lastClosed = null;
    this.fp.clear();
    this.targets.length = 0;
    this.open = null;
  }

  /**
   * A new node at a scheduling point: its sleep set (sleep sets), the event whose placement its first
   * transition must honour, and per action whether it is within the bounds, awake and not a symmetric
   * twin (symmetry).
   */
  private createActionNode(mem: MachineMemory, actions: Int32Array, count: number): ActionNode {
    const n = this.cpus;
    const cur = mem.header[H.lastCpu];
    const curRunnable = this.canContinue && count > 0 && actions[0] === cur;
    const prev = this.depth > 0 ? this.lastClosed : null;
    const targetOf = (a: number) => this.targetOf(a);
    const sleep: SleepEntry[] =
      this.reductions.sleepSets && prev ? sleepSetOf(mem, prev, cur, n, targetOf) : [];
    const mustFollow = prev && prev.actor < 0 ? prev.target : -1;
    const used = { ...this.used };
    const spent = spentOf(this.used);
    const allowed = new Uint8Array(count);
    const awake = new Uint8Array(count);
    const rep = new Int16Array(count);
    const sym = this.symmetry;
    for (let i = 0; i < count; i++) {
      rep[i] = i;
      const a = actions[i];
      if (a < n) {
        const cost = curRunnable && a !== cur ? 1 : 0;
        if (used.preemptions + cost > this.bounds.preemptions) continue;
        if (spent + cost > this.total) {
          this.totalBound = true;
          continue;
        }
        if (sym && a > 1 && a !== cur) {
          const twin = symmetricBelow(sym, targetOf, actions, count, a, cur, sleep, mustFollow, false);
          if (twin >= 0) {
            rep[i] = twin;
            continue;
          }
        }
        awake[i] = 1;
        if (!sleep.some((z) => z.cpu === a && z.event < 0)) allowed[i] = 1;
      } else {
        if (used.events + 1 > this.bounds.events) continue;
        if (spent + 1 > this.total) {
          this.totalBound = true;
          continue;
        }
        const k = this.targetOf(a);
        if (sym && k > 1 && k !== cur) {
          const twin = symmetricBelow(sym, targetOf, actions, count, a, cur, sleep, mustFollow, true);
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
}

/** The signatures of an empty sleep set (StateCache.covered only reads them). */
const NO_SLEEP: string[] = [];

/** Adds x to the sorted list `list` unless it is there (the code bytes a run wrote: a few). */
function insertSorted(list: number[], x: number): void {
  let i = list.length;
  while (i > 0 && list[i - 1] > x) i--;
  if (i > 0 && list[i - 1] === x) return;
  list.splice(i, 0, x);
}

export { Pruned };
