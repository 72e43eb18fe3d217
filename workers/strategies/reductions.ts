// The reductions of the bounded exhaustive search (SPEC §8): which branches of a node of the search
// tree (search-tree.ts) need not be explored. Policy only: functions of a node and what was explored
// from its parent; exhaustive.ts calls them as it builds nodes and closes transitions. A transition is
// one CPU's visible step with the CPU-private steps that follow it, or one event; the dependency
// relation is footprint.ts's. Each reduction can be switched off, to measure it and as the unreduced
// reference of the soundness tests:
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
//    sleep (see 2). (sleepSetOf, pairAsleep)
//
// 2. Event placement. An event for CPU k commutes with every transition it is independent of, and
//    moving it later never costs anything (arrivals do not count in preemptions). So an event need
//    only be explored immediately before a transition dependent with it (a step of k, an IPI to k,
//    another event, a step after which nothing could run): a run whose event is followed by an
//    independent transition is dropped as redundant (its equivalent, with the event one transition
//    later, is explored from the sibling branch). SPEC §8's baseline (events at scheduling points) stays.
//    (placementUseful, placementBroken)
//
// 3. DPOR (Flanagan & Godefroid, POPL 2005), bounded as BPOR (Coons et al., OOPSLA 2013): dpor.ts.
//
// 4. Symmetry of CPUs 1..n-1 (symmetry.ts): of two such CPUs in identical states, when nothing else at
//    the node tells them apart (neither is current, no sleeping transition or pending event placement
//    involves them), only the lower one's step, and only events to the lower one, are explored.
//    Outcomes are then equal up to swapping the two CPUs. (symmetricBelow)
//
// 5. State caching (state-cache.ts): a node whose whole state (buffer, the CPUs' JavaScript side, the
//    property monitors) was explored already, with budgets at least as large, an equal current-CPU
//    status and a sleep set no larger, is not explored again. DPOR is off with it (it would need the
//    visible operations of pruned subtrees propagated: Yang et al., SPIN 2008): every node explores
//    every allowed branch, and sleep sets, event placement and symmetry stay. (exhaustive.ts visited)

import { Shared } from "../../model/cpu/state.js";
import { C, CPU_WORDS, type MachineMemory } from "../../model/memory.js";
import { ALL_CPUS, eventDependent, type Footprint, stepsDependent } from "./footprint.js";
import {
  type ActionNode,
  type Bounds,
  followOf,
  indexOf,
  othersRunnable,
  type SleepEntry,
  spentOf,
} from "./search-tree.js";
import type { Symmetry } from "./symmetry.js";

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

/** A sleep entry as the state cache compares sleep sets: everything that decides what it wakes on. */
export function signatureOf(z: SleepEntry): string {
  z.signature ??=
    `${z.cpu}/${z.event}/${z.endsRun ? 1 : 0}/${z.fp.crashed ? 1 : 0}${z.fp.boundary ? 1 : 0}/` +
    `${[...z.fp.reads].sort((x, y) => x - y).join(",")}/${[...z.fp.writes].sort((x, y) => x - y).join(",")}`;
  return z.signature;
}

/** The transition that led to a new node: the node and branch it was chosen at, and what it touched. */
export interface Closed {
  node: ActionNode;
  entry: number;
  /** The CPU, or -1 for an event. */
  actor: number;
  /** The event's target (-1 for a CPU's step). */
  target: number;
  fp: Footprint;
}

/**
 * Sleep sets: the sleep set of a new node reached by `prev` with `cur` the current CPU: the parent's,
 * and the parent's eligible explored siblings, that are independent of the transition that led here.
 */
export function sleepSetOf(
  mem: MachineMemory,
  prev: Closed,
  cur: number,
  cpus: number,
  targetOf: (action: number) => number,
): SleepEntry[] {
  const n = cpus;
  const sleep: SleepEntry[] = [];
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
        (z.event >= 0 && eventDependent(targetOf(z.event), prev.actor, prev.fp, false));
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
  return sleep;
}

/** Sleep sets: an event placement whose pair (the event, then its follower) sleeps at this node. */
export function pairAsleep(node: ActionNode, entry: number): boolean {
  const x = followOf(entry);
  if (x < 0 || node.sleep.length === 0) return false;
  const a = node.actions[indexOf(entry)];
  return node.sleep.some((z) => z.event === a && z.cpu === x);
}

/**
 * Event placement: whether exploring a branch can lead anywhere new. Always, for a CPU's step; for an
 * event, only when its placement rule can be met: a transition dependent with it can come next within
 * the bounds (and `total`).
 */
export function placementUseful(
  node: ActionNode,
  entry: number,
  bounds: Bounds,
  total: number,
  cpus: number,
  targetOf: (action: number) => number,
): boolean {
  const n = cpus;
  const index = indexOf(entry);
  const a = node.actions[index];
  if (a < n) return true;
  const k = targetOf(a);
  // A broadcast event depends on every CPU's next step at a boundary: assume it may be followed.
  if (k === ALL_CPUS) return true;
  const { preemptions, events } = node.used;
  const spent = spentOf(node.used) + 1; // this event included
  const follow = followOf(entry);
  if (follow >= 0) {
    // The follower must be affordable after the event.
    if (follow === node.cur || !node.curRunnable) return true;
    return preemptions + 1 <= bounds.preemptions && spent + 1 <= total;
  }
  // Another event next (all events are dependent).
  if (events + 2 <= bounds.events && spent + 1 <= total) return true;
  // k's own step next: free when k is current or the current CPU cannot run, else a preemption.
  if (node.cur === k || !node.curRunnable) return true;
  if (preemptions + 1 <= bounds.preemptions && spent + 1 <= total) return true;
  // The current CPU's step next (no preemption), when it depends on the event.
  const i = node.actions.indexOf(node.cur);
  const fp = i >= 0 ? node.fps[i] : undefined;
  if (!fp) return true; // not explored from here: assume it may
  return eventDependent(k, node.cur, fp, node.endsRun[i]);
}

/**
 * Event placement: the first transition after an event for `k` (CPU `actor`'s step, which touched
 * `fp`) breaks the rule when it is independent of the event. `actions` are the actions enabled after
 * it (null: the run ended).
 */
export function placementBroken(
  k: number,
  actor: number,
  fp: Footprint,
  actions: Int32Array | null,
  count: number,
  cpus: number,
): boolean {
  let othersCanRun = false;
  if (actions) for (let i = 0; i < count; i++) if (actions[i] < cpus && actions[i] !== k) othersCanRun = true;
  return !eventDependent(k, actor, fp, !othersCanRun);
}

/**
 * Symmetry: the action index of a symmetric twin of a lower CPU for action `a` (a step of CPU a, or an
 * event for CPU k), so that `a` need not be explored; -1 if there is none.
 */
export function symmetricBelow(
  sym: Symmetry,
  targetOf: (action: number) => number,
  actions: Int32Array,
  count: number,
  a: number,
  cur: number,
  sleep: SleepEntry[],
  mustFollow: number,
  isEvent: boolean,
): number {
  const n = sym.cpus;
  const q = isEvent ? (a - n) % n : a;
  const base = isEvent ? a - q : 0;
  if (q === mustFollow || involves(sym, targetOf, sleep, q)) return -1;
  for (let i = 0; i < count; i++) {
    const b = actions[i];
    const p = b - base;
    if (p < 1 || p >= q || b >= base + n) continue;
    if (p === cur || p === mustFollow || involves(sym, targetOf, sleep, p)) continue;
    if (sym.identical(p, q)) return i;
  }
  return -1;
}

/** A sleeping transition belongs to CPU c or touches something of c's own. */
function involves(
  sym: Symmetry,
  targetOf: (action: number) => number,
  sleep: SleepEntry[],
  c: number,
): boolean {
  for (const z of sleep) {
    if (z.cpu === c || z.fp.targets(c)) return true;
    if (z.event >= 0 && [c, ALL_CPUS].includes(targetOf(z.event))) return true;
    for (const l of z.fp.reads) if (l >> 24 === Shared.Data && sym.ownsWord(c, l & 0xffffff)) return true;
    for (const l of z.fp.writes) if (l >> 24 === Shared.Data && sym.ownsWord(c, l & 0xffffff)) return true;
  }
  return false;
}
