// State caching for the exhaustive search (exhaustive.ts, reduction 5): a node of the search tree
// whose whole state was already explored, with budgets at least as large, is not explored again.
//
// The state of a node, canonicalized (two runs that agree on it have the same futures and the same
// verdicts for every future):
//   - the buffer, minus what differs between equivalent runs and that nothing reads back during a
//     run: the event log, the tape and the record of choices, the engine's bookkeeping (token, log
//     count, end step, started); the step counter stays (the step bound ends runs at a fixed step),
//     and so do the write sequence numbers (the stale-fetch model compares them; every code write is
//     dependent with every other, so equivalent runs agree on them). Code bytes and their write
//     history are hashed only where some transition of the run wrote code: elsewhere they are the image;
//   - the JavaScript side of each CPU (model/cpu fingerprint): per context its kind, IST stack, saved
//     IF and RSP, event frame, real-code position and routine trail (every result handed to the
//     generator, which fixes its position and locals), and the half-done fetch;
//   - the property monitors: what properties/invariants judges from the history rather than from the
//     final state (PropertyHistory below): per CPU whether an external NMI awaits its service (P2),
//     the IST clobbers so far (P3), what CPU 0's probe has executed (P6), a crash (P1, P4);
//   - the search's own view of the node: whether the current CPU could continue (the cost of the
//     next switch depends on it), the event whose placement the next transition must depend on, and
//     the step forced after an event placement.
// A visit is remembered with its budgets left (preemptions, events, branch choices, total) and its
// sleep set. A later node with the same state is pruned when a remembered visit had at least its
// budgets in every dimension and a sleep set contained in its own (Godefroid, "Partial-order methods
// for the verification of concurrent systems", LNCS 1032, 1996, ch. 6: sleep sets with state
// caching are sound when the cached visit slept on no more than the current one): every run from
// the later node is then, up to the reductions' equivalence, a run from the earlier one within the
// same bounds, and its verdicts equal one explored there.
//
// DPOR with caching needs the visible operations of a pruned subtree propagated to the nodes above
// it (Yang, Chen, Gopalakrishnan & Kirby, "Efficient stateful dynamic partial order reduction",
// SPIN 2008); the search does not do that: with state caching on, DPOR is switched off and every
// node explores every allowed branch (sleep sets, event placement and symmetry stay).
//
// The state is kept as a 96-bit hash (three 32-bit lanes), as SPIN's hash compaction does: two
// different states are taken as one with a probability of about n^2 / 2^97 for n states stored.
import { Ev, EventSource } from "../../model/events.js";
import {
  H,
  HISTORY_DEPTH,
  LOG_RECORD_WORDS,
  type MachineMemory,
  STACK_SEGMENTS,
  STACK_SLOTS,
} from "../../model/memory.js";
import { Mark } from "../../model/routine.js";
import type { MachineSpec } from "../../model/types.js";

/** Header words that are state (the others are the engine's bookkeeping or the tape's position). */
const HEADER_STATE = [
  H.step,
  H.writeSeq,
  H.status,
  H.nmisSent,
  H.mcesSent,
  H.lastCpu,
  H.stepBound,
  H.nmiBudget,
  H.mceBudget,
  H.cpus,
  H.strategy,
  H.mceBroadcast,
  H.stiShadow,
];

/**
 * What the properties judge from a run's history rather than from its final state
 * (properties/invariants evaluate), kept up to date from the event log as it grows. Whoever makes a
 * property read more of the log adds it here, or caching would merge runs the property tells apart.
 */
export class PropertyHistory {
  private cursor = 0;
  /** P2: bit per CPU: an external NMI arrived after the CPU's last NMI service mark. */
  awaiting = 0;
  /** P3: hash of every IST clobber so far (CPU, IST, the IRET that unblocked NMIs, event kind), in order. */
  clobbers = 0;
  /** P6: the site CPU 0 is probing (-1: none), and bit per site: its probe executed its payload. */
  probing = -1;
  reached = 0;
  /** P1, P4: hash of the crash record, 0 if none. */
  crash = 0;
  private readonly payloads: Array<{ lo: number; hi: number }>;

  constructor(spec: MachineSpec) {
    this.payloads = spec.sites.map((site) => {
      const s = spec.image.symbol(site.payload);
      return { lo: s.address, hi: s.address + s.size };
    });
  }

  reset(): void {
    this.cursor = 0;
    this.awaiting = 0;
    this.clobbers = 0;
    this.probing = -1;
    this.reached = 0;
    this.crash = 0;
  }

  /** Reads the records logged since the last call. */
  update(mem: MachineMemory): void {
    const log = mem.log;
    const count = mem.header[H.logCount];
    for (; this.cursor < count; this.cursor++) {
      const o = this.cursor * LOG_RECORD_WORDS;
      const cpu = log[o + 1];
      const kind = log[o + 2];
      const addr = log[o + 3];
      const a = log[o + 4];
      switch (kind) {
        case Ev.NmiArrive:
          if (a === EventSource.External) this.awaiting |= 1 << cpu;
          break;
        case Ev.Mark:
          if (a === Mark.NmiService) this.awaiting &= ~(1 << cpu);
          if (cpu === 0 && a === Mark.ProbeBegin) this.probing = log[o + 5];
          if (cpu === 0 && a === Mark.ProbeEnd) this.probing = -1;
          break;
        case Ev.Exec: {
          const p = this.probing >= 0 ? this.payloads[this.probing] : undefined;
          if (cpu === 0 && p && addr >= p.lo && addr < p.hi) this.reached |= 1 << this.probing;
          break;
        }
        case Ev.IstClobber:
          for (const v of [cpu, a, log[o + 5], log[o + 6]])
            this.clobbers = Math.imul(this.clobbers ^ v, 0x01000193);
          this.clobbers = (this.clobbers | 1) >>> 0;
          break;
        case Ev.Crash:
          for (let k = 1; k < LOG_RECORD_WORDS; k++)
            this.crash = Math.imul(this.crash ^ log[o + k], 0x01000193);
          this.crash = (this.crash | 1) >>> 0;
          break;
      }
    }
  }
}

/** A visit of a state: the rest of its hash, the budgets it had left and its sleep set (sorted signatures). */
interface Visit {
  /** The hash bits the map key leaves out: lane b's top 11 bits and lane c. */
  bHigh: number;
  c: number;
  preemptions: number;
  events: number;
  branches: number;
  total: number;
  sleep: string[];
}

export interface Budgets {
  preemptions: number;
  events: number;
  branches: number;
  total: number;
}

/** Three-lane hash of a node's state, fed word by word. */
export class StateHasher {
  a = 0;
  b = 0;
  c = 0;
  readonly mix = (v: number): void => {
    this.a = Math.imul(this.a ^ v, 0x01000193);
    this.b = Math.imul(this.b ^ (v + 0x9e3779b9), 0x85ebca6b);
    this.c = Math.imul((this.c ^ v) + 0x27d4eb2f, 0xc2b2ae35);
  };
  reset(): void {
    this.a = 0x811c9dc5;
    this.b = 0x01000193;
    this.c = 0x3c6ef372;
  }
  mixArray(v: Int32Array): void {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      this.a = Math.imul(this.a ^ x, 0x01000193);
      this.b = Math.imul(this.b ^ (x + 0x9e3779b9), 0x85ebca6b);
      this.c = Math.imul((this.c ^ x) + 0x27d4eb2f, 0xc2b2ae35);
    }
  }
}

/** Visit `v` covers visit `w`: budgets at least as large in every dimension, a sleep set contained in w's. */
function covers(v: Visit, w: Visit): boolean {
  return (
    v.preemptions >= w.preemptions &&
    v.events >= w.events &&
    v.branches >= w.branches &&
    v.total >= w.total &&
    v.sleep.every((s) => w.sleep.includes(s))
  );
}

/** 2^21: lane a and the low 21 bits of lane b make a map key of 53 bits (an exact double). */
const LOW_B = 0x20_0000;

export class StateCache {
  /** By 53 bits of the hash; the visit holds the other 43. */
  private readonly visits = new Map<number, Visit[]>();
  private count = 0;
  /** Distinct states stored. */
  get states(): number {
    return this.count;
  }

  /**
   * True when a remembered visit of the state `h` hashes covers this one (budgets at least as large
   * in every dimension, sleep set contained in this one's); otherwise remembers this visit and
   * returns false.
   */
  covered(h: StateHasher, budgets: Budgets, sleep: string[]): boolean {
    const a = h.a >>> 0;
    const b = h.b >>> 0;
    const c = h.c >>> 0;
    const key = a * LOW_B + (b % LOW_B);
    const bHigh = Math.floor(b / LOW_B);
    const list = this.visits.get(key);
    const visit: Visit = { bHigh, c, ...budgets, sleep };
    const sameState = (v: Visit) => v.bHigh === bHigh && v.c === c;
    let same = false;
    for (const v of list ?? []) {
      if (!sameState(v)) continue;
      same = true;
      if (covers(v, visit)) return true;
    }
    if (!same) this.count++;
    if (!list) {
      this.visits.set(key, [visit]);
      return false;
    }
    // A visit of the same state that this one covers is no longer needed.
    const kept = list.filter((v) => !sameState(v) || !covers(visit, v));
    kept.push(visit);
    this.visits.set(key, kept);
    return false;
  }
}

/**
 * Hashes the buffer's state regions (see the header): header words that are state, every CPU block,
 * the data words, the stacks, and the written code bytes with their write history. A stack grows
 * down from its top, so below the lowest slot ever written every slot is UNWRITTEN_SLOT: each
 * segment is hashed from its lowest written slot (and that slot's index, kept by
 * MachineMemory.writeStack) to its top.
 */
export function hashBuffer(h: StateHasher, mem: MachineMemory, written: readonly number[]): void {
  for (const i of HEADER_STATE) h.mix(mem.header[i]);
  h.mixArray(mem.cpu);
  h.mixArray(mem.data);
  const stack = mem.stack;
  const segments = STACK_SEGMENTS.length;
  for (let c = 0; c < mem.layout.cpus; c++) {
    const base = c * STACK_SLOTS;
    for (let k = 0; k < segments; k++) {
      const end = base + STACK_SEGMENTS[k][1];
      let i = mem.stackLow[c * segments + k];
      h.mix(i);
      for (; i < end; i++) h.mix(stack[i]);
    }
  }
  const sorted = written.length > 1 ? [...written].sort((x, y) => x - y) : written;
  for (const i of sorted) {
    h.mix(i);
    h.mix(mem.code[i]);
    h.mix(mem.historyCount[i]);
    for (let k = 0; k < HISTORY_DEPTH * 2; k++) h.mix(mem.history[i * HISTORY_DEPTH * 2 + k]);
  }
}
