// The search tree of the bounded exhaustive search (SPEC §8): a depth-first choice tree, as CHESS
// (Musuvathi & Qadeer, "Iterative context bounding for systematic testing of multithreaded programs",
// PLDI 2007) and loom keep it. Mechanism only: the nodes, their branches, the bounds and the order in
// which branches are taken. Which branches a node has at all is decided by the reductions
// (reductions.ts, dpor.ts), which fill a node's sets; exhaustive.ts walks the tree as the Scheduler.
//
// The choices of a run are the decisions of the Scheduler: at every scheduling point, which enabled
// action runs (a CPU's step, or an NMI or #MC arriving at CPU k) — an ActionNode; inside a step, a
// value (a branch direction, a stale-fetch value) — a ValueNode. The default continuation is the tape
// of zeros: keep the current CPU until it blocks or finishes, then the next runnable CPU in order, no
// events, value 0. Costs:
//   - a preemption: switching away from a current CPU that could still run (choosing among CPUs when
//     the current one cannot run is free, as in CHESS). Whether it can still run is judged right after
//     its last step: an NMI or #MC that arrives since does not make switching away a preemption (an
//     arrival would otherwise make the cost of the same schedule depend on where the event landed);
//   - an event: an NMI or #MC arrival;
//   - a branch choice: a non-zero value inside a step that picks a conditional branch's direction in
//     real code;
//   - a stale value: a non-zero value inside a step that picks an older value of a code byte for a
//     stale fetch (H10). It is a dimension of its own, so that a bound of 0 on branch directions (the
//     default) never silently removes stale fetch from a search under `fetch: "stale"`.
// A run is within bounds (K, E, B, S) when it has at most K preemptions, E events, B branch choices
// and S stale values, and, when a total is given, at most that many of the four together (iterative
// deepening).
//
// Interface: the stack of nodes from the root to the execution in progress; `advanceStack` moves it to
// the next unexplored branch (deepest first), asking `nextEntry` for an action node's next branch.
import { ValueKind } from "../../model/cpu/state.js";
import type { Footprint } from "./footprint.js";

export interface Bounds {
  preemptions: number;
  events: number;
  branches: number;
  stale: number;
}

export interface Cost {
  preemptions: number;
  events: number;
  branches: number;
  stale: number;
}

/** A cost of nothing yet. */
export function noCost(): Cost {
  return { preemptions: 0, events: 0, branches: 0, stale: 0 };
}

/** Preemptions, events, branch choices and stale values together. */
export function spentOf(c: Cost): number {
  return c.preemptions + c.events + c.branches + c.stale;
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

/** A transition asleep at a node (sleep sets, reductions.ts). */
export interface SleepEntry {
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

/** What followed an event placement explored from a node: the follower's footprint and flags. */
export interface Follower {
  fp: Footprint;
  blocks: boolean;
  endsRun: boolean;
}

/**
 * A branch of a node: an action index, and for an event the CPU whose step must come right after it
 * (-1: none), packed as index + STRIDE * (follow + 1).
 */
const STRIDE = 256;
export const entryOf = (index: number, follow: number) => index + STRIDE * (follow + 1);
export const indexOf = (entry: number) => entry % STRIDE;
export const followOf = (entry: number) => Math.floor(entry / STRIDE) - 1;

export class ActionNode {
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

export class ValueNode {
  readonly isValue = true;
  pos = 0;
  constructor(
    readonly count: number,
    readonly kind: ValueKind,
    readonly alts: number[],
  ) {}
}

export type Node = ActionNode | ValueNode;

/** Some CPU other than `cpu` is among the enabled actions. */
export function othersRunnable(actions: Int32Array, cpus: number, cpu: number): boolean {
  for (const a of actions) if (a < cpus && a !== cpu) return true;
  return false;
}

/**
 * The value alternatives of a new value node: 0, and the others while a choice of its kind (a branch
 * direction, a stale value) is affordable.
 */
export function valueAlternatives(
  count: number,
  kind: ValueKind,
  used: Cost,
  bounds: Bounds,
  total: number,
): number[] {
  const alts = [0];
  const affordable = kind === ValueKind.Stale ? used.stale < bounds.stale : used.branches < bounds.branches;
  if (affordable && spentOf(used) < total) for (let v = 1; v < count; v++) alts.push(v);
  return alts;
}

/** Every branch of a node without DPOR: each allowed action (events with no forced follower). */
export function allEntries(node: ActionNode): number[] {
  const out: number[] = [];
  for (let i = 0; i < node.actions.length; i++) if (node.allowed[i]) out.push(entryOf(i, -1));
  return out;
}

/**
 * The branch a new node takes first: `forced` (the follower CPU of the event that led here, -1: none)
 * when allowed, or the first allowed branch that is `useful`; -1 when there is none.
 */
export function firstEntry(node: ActionNode, forced: number, useful: (entry: number) => boolean): number {
  if (forced >= 0) {
    const i = node.actions.indexOf(forced);
    if (i >= 0 && node.allowed[i]) return entryOf(i, -1);
  }
  for (let i = 0; i < node.actions.length; i++) {
    if (!node.allowed[i]) continue;
    const e = entryOf(i, -1);
    if (useful(e)) return e;
  }
  return -1;
}

/**
 * The next branch to explore at a node (lowest first), or -1: one to explore (todo) that is allowed
 * and not `asleep`, or a conservative one that is awake ignoring sleep; in either case `useful`.
 */
export function nextEntry(
  node: ActionNode,
  asleep: (entry: number) => boolean,
  useful: (entry: number) => boolean,
): number {
  let best = -1;
  const consider = (e: number) => {
    if (node.done.includes(e) || (best >= 0 && e >= best)) return;
    const i = indexOf(e);
    const ok =
      (node.allowed[i] === 1 && !asleep(e)) || (node.conservative.has(e) && node.awakeOrNot[i] === 1);
    if (ok && useful(e)) best = e;
  };
  for (const e of node.todo) consider(e);
  for (const e of node.conservative) consider(e);
  return best;
}

/**
 * Moves the stack to the next unexplored branch, deepest first: the next value of a value node, or
 * the next branch of an action node (`next`); false, with the stack emptied, when the whole tree has
 * been explored.
 */
export function advanceStack(stack: Node[], next: (node: ActionNode) => number): boolean {
  for (let i = stack.length - 1; i >= 0; i--) {
    const node = stack[i];
    if (node.isValue) {
      node.pos++;
      if (node.pos < node.alts.length) {
        stack.length = i + 1;
        return true;
      }
      continue;
    }
    const e = next(node);
    if (e >= 0) {
      node.chosen = e;
      node.done.push(e);
      if (!node.todo.has(e)) node.onlyConservative.add(e);
      stack.length = i + 1;
      return true;
    }
  }
  stack.length = 0;
  return false;
}
