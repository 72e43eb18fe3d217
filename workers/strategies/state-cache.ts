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
  UNWRITTEN_SLOT,
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

  /** Its state, for a run resumed from a snapshot (restore). */
  save(): number[] {
    return [this.cursor, this.awaiting, this.clobbers, this.probing, this.reached, this.crash];
  }

  restore(s: readonly number[]): void {
    [this.cursor, this.awaiting, this.clobbers, this.probing, this.reached, this.crash] = s;
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

export interface Budgets {
  preemptions: number;
  events: number;
  branches: number;
  stale: number;
  total: number;
}

/** Words the hasher buffers before it hashes them (fed one at a time through `mix`). */
const PENDING = 4096;

/**
 * Three-lane hash of a node's state, fed word by word. The words fed through `mix` are buffered and
 * hashed in one loop over local lanes when the lanes are read (or the buffer fills): a call per word
 * that read and wrote three fields took a quarter of the search's time. The lanes are exactly those
 * of mixing each word as it comes, in order.
 */
export class StateHasher {
  private la = 0;
  private lb = 0;
  private lc = 0;
  private readonly pending = new Int32Array(PENDING);
  private n = 0;
  readonly mix = (v: number): void => {
    if (this.n === PENDING) this.flush();
    this.pending[this.n++] = v;
  };
  get a(): number {
    this.flush();
    return this.la;
  }
  set a(v: number) {
    this.flush();
    this.la = v;
  }
  get b(): number {
    this.flush();
    return this.lb;
  }
  set b(v: number) {
    this.flush();
    this.lb = v;
  }
  get c(): number {
    this.flush();
    return this.lc;
  }
  set c(v: number) {
    this.flush();
    this.lc = v;
  }
  reset(): void {
    this.n = 0;
    this.la = 0x811c9dc5;
    this.lb = 0x01000193;
    this.lc = 0x3c6ef372;
  }
  mixArray(v: Int32Array): void {
    this.mixRange(v, 0, v.length);
  }
  /** Mixes v[from..to) in order. */
  mixRange(v: Int32Array, from: number, to: number): void {
    if (this.n + (to - from) > PENDING) {
      this.flush();
      if (to - from > PENDING) {
        this.lanes(v, from, to);
        return;
      }
    }
    const p = this.pending;
    let n = this.n;
    for (let i = from; i < to; i++) p[n++] = v[i];
    this.n = n;
  }
  private flush(): void {
    if (this.n === 0) return;
    const n = this.n;
    this.n = 0;
    this.lanes(this.pending, 0, n);
  }
  private lanes(v: Int32Array, from: number, to: number): void {
    let a = this.la;
    let b = this.lb;
    let c = this.lc;
    for (let i = from; i < to; i++) {
      const x = v[i];
      a = Math.imul(a ^ x, 0x01000193);
      b = Math.imul(b ^ (x + 0x9e3779b9), 0x85ebca6b);
      c = Math.imul((c ^ x) + 0x27d4eb2f, 0xc2b2ae35);
    }
    this.la = a;
    this.lb = b;
    this.lc = c;
  }
}

/**
 * The visits remembered, in a table of typed arrays (open addressing, linear probing), a row of
 * ROW words per visit: the three hash lanes, the budgets left packed in one word (with the
 * occupied bit), and the id of its sleep set: 20 bytes a row, at most 3/4 of the rows used. An
 * object per visit took ~300 bytes of node's heap and ran it out of memory at a few million states. A state has as many rows as visits kept; a visit covered by a
 * later one of the same state is overwritten by it.
 */
const ROW = 5;
const OCCUPIED = 0x8000_0000;
/**
 * The budgets left, packed in one word: preemptions, events, branch choices and stale values a
 * nibble each (every bound is at most 8: explore.ts BOUND_LIMITS), the total a byte (an unbounded
 * total, Infinity, is 255), and the occupied bit.
 */
const nibble = (x: number): number => Math.min(15, Math.max(0, x));
const budgetByte = (x: number): number => Math.min(255, Math.max(0, x));
const packBudgets = (b: Budgets): number =>
  (OCCUPIED |
    (nibble(b.preemptions) << 20) |
    (nibble(b.events) << 16) |
    (nibble(b.branches) << 12) |
    (nibble(b.stale) << 8) |
    budgetByte(b.total)) >>>
  0;
/** Packed budgets `v` are at least `w` in every field (the occupied bit aside). */
function budgetsCover(v: number, w: number): boolean {
  return (
    ((v >>> 20) & 0xf) >= ((w >>> 20) & 0xf) &&
    ((v >>> 16) & 0xf) >= ((w >>> 16) & 0xf) &&
    ((v >>> 12) & 0xf) >= ((w >>> 12) & 0xf) &&
    ((v >>> 8) & 0xf) >= ((w >>> 8) & 0xf) &&
    (v & 0xff) >= (w & 0xff)
  );
}
const INITIAL_ROWS = 1 << 16;

export class StateCache {
  /**
   * The table's size limit in bytes (`--max-memory`): at it the table stops growing and new states
   * are explored without being remembered. The search stays sound (a state not remembered is only
   * explored again), it only takes longer; the verdict says the cache was full.
   */
  constructor(private readonly maxBytes = Number.POSITIVE_INFINITY) {
    // A limit below the usual first table starts with the largest table within it.
    while (this.rows > 16 && this.rows * ROW * 4 > maxBytes) this.rows /= 2;
    this.table = new Uint32Array(this.rows * ROW);
  }
  /** The table reached maxBytes: states met since were not remembered. */
  full = false;
  private rows = INITIAL_ROWS;
  private table: Uint32Array;
  private used = 0;
  private count = 0;
  /** Sleep sets by id (id 0: the empty set), and the ids by their sorted signatures joined. */
  private readonly sleepSets: Array<ReadonlySet<string>> = [new Set()];
  private readonly sleepIds = new Map<string, number>([["", 0]]);
  /** Distinct states stored. */
  get states(): number {
    return this.count;
  }
  /** Bytes the table takes. */
  get bytes(): number {
    return this.table.byteLength;
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
    const packed = packBudgets(budgets);
    const sleepId = this.sleepIdOf(sleep);
    const mine = this.sleepSets[sleepId];
    const t = this.table;
    const mask = this.rows - 1;
    let same = false;
    /** A row of the same state that this visit covers: overwritten by it. */
    let replace = -1;
    let i = a & mask;
    for (; ; i = (i + 1) & mask) {
      const o = i * ROW;
      const w = t[o + 3];
      if (w === 0) break;
      if (t[o] !== a || t[o + 1] !== b || t[o + 2] !== c) continue;
      same = true;
      const theirs = this.sleepSets[t[o + 4]];
      if (budgetsCover(w, packed) && isSubset(theirs, mine)) return true;
      if (replace < 0 && budgetsCover(packed, w) && isSubset(mine, theirs)) replace = i;
    }
    if (replace >= 0) {
      const o = replace * ROW;
      t[o + 3] = packed;
      t[o + 4] = sleepId;
      return false;
    }
    // Full: the row stays empty (a lookup still ends at it), and the visit is not remembered.
    if ((this.used + 1) * 4 > this.rows * 3 && this.table.byteLength * 2 > this.maxBytes) {
      this.full = true;
      return false;
    }
    if (!same) this.count++;
    const o = i * ROW;
    t[o] = a;
    t[o + 1] = b;
    t[o + 2] = c;
    t[o + 3] = packed;
    t[o + 4] = sleepId;
    if (++this.used * 4 > this.rows * 3) this.grow();
    return false;
  }

  private sleepIdOf(sleep: string[]): number {
    if (sleep.length === 0) return 0;
    const key = [...sleep].sort().join("\n");
    let id = this.sleepIds.get(key);
    if (id === undefined) {
      id = this.sleepSets.length;
      this.sleepSets.push(new Set(sleep));
      this.sleepIds.set(key, id);
    }
    return id;
  }

  /** Doubles the table and re-inserts every row (the order of a state's rows does not matter). */
  private grow(): void {
    const old = this.table;
    const oldRows = this.rows;
    this.rows *= 2;
    this.table = new Uint32Array(this.rows * ROW);
    const t = this.table;
    const mask = this.rows - 1;
    for (let r = 0; r < oldRows; r++) {
      const o = r * ROW;
      if (old[o + 3] === 0) continue;
      let i = old[o] & mask;
      while (t[i * ROW + 3] !== 0) i = (i + 1) & mask;
      t.set(old.subarray(o, o + ROW), i * ROW);
    }
  }
}

function isSubset(x: ReadonlySet<string>, y: ReadonlySet<string>): boolean {
  if (x.size === 0) return true;
  if (x.size > y.size) return false;
  for (const s of x) if (!y.has(s)) return false;
  return true;
}

/** One lane's share of word `v` at position `pos` of BufferHash's words (a murmur3-style finalizer). */
function share(pos: number, v: number, seed: number): number {
  let x = Math.imul(v ^ seed, 0xcc9e2d51);
  x ^= x >>> 15;
  x = Math.imul(x + Math.imul(pos, 0x9e3779b1), 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return x ^ (x >>> 16);
}
const SEED_A = 0x2545f491;
const SEED_B = 0x6a09e667;
const SEED_C = 0x3c6ef372;

/**
 * The buffer's part of the state hash (hashBuffer's regions but the written code) kept up to date by
 * difference, as Zobrist hashing does: per lane, the sum modulo 2^32 of a mix of each word with its
 * position, over the header words that are state, every CPU block, the data words, the stacks' low-
 * water marks and every stack slot. A sum does not depend on the order words change in, so `update`
 * compares the buffer with the words it summed last time and changes the sums by the words that
 * differ only: between two nodes a transition changes a few words of some hundreds, and rehashing
 * them all at every node was a fifth of a search's time.
 *
 * The same words as hashBuffer, so the same states: a stack slot below its segment's low-water mark
 * is UNWRITTEN_SLOT in every state (MachineMemory.writeStack, restoreRun, reset), so summing every
 * slot with the marks tells states apart exactly as hashing each segment from its mark does; and
 * slots below the marks both of the buffer and of the words summed last are equal, so they are not
 * compared.
 */
export class BufferHash {
  /** The words summed: header words that are state, CPU blocks, data, the stack marks, the stacks. */
  private readonly words: Int32Array;
  private readonly cpuAt: number;
  private readonly dataAt: number;
  private readonly lowAt: number;
  private readonly stackAt: number;
  a = 0;
  b = 0;
  c = 0;

  /** Starts from the words of a buffer just reset (MachineMemory.reset), summed in full once. */
  constructor(mem: MachineMemory) {
    this.cpuAt = HEADER_STATE.length;
    this.dataAt = this.cpuAt + mem.cpu.length;
    this.lowAt = this.dataAt + mem.data.length;
    this.stackAt = this.lowAt + mem.stackLow.length;
    this.words = new Int32Array(this.stackAt + mem.stack.length);
    const segments = STACK_SEGMENTS.length;
    for (let cpu = 0, j = 0; cpu < mem.layout.cpus; cpu++)
      for (let k = 0; k < segments; k++, j++)
        this.words[this.lowAt + j] = cpu * STACK_SLOTS + STACK_SEGMENTS[k][1];
    this.words.fill(UNWRITTEN_SLOT, this.stackAt);
    for (let pos = 0; pos < this.words.length; pos++) {
      const v = this.words[pos];
      this.a = (this.a + share(pos, v, SEED_A)) | 0;
      this.b = (this.b + share(pos, v, SEED_B)) | 0;
      this.c = (this.c + share(pos, v, SEED_C)) | 0;
    }
  }

  /** Word `pos` is `v` now: its share changes in every lane. */
  private set(pos: number, v: number): void {
    const old = this.words[pos];
    this.words[pos] = v;
    this.a = (this.a - share(pos, old, SEED_A) + share(pos, v, SEED_A)) | 0;
    this.b = (this.b - share(pos, old, SEED_B) + share(pos, v, SEED_B)) | 0;
    this.c = (this.c - share(pos, old, SEED_C) + share(pos, v, SEED_C)) | 0;
  }

  /** Brings the sums to the buffer's words now. */
  update(mem: MachineMemory): void {
    const words = this.words;
    const header = mem.header;
    for (let i = 0; i < HEADER_STATE.length; i++) {
      const v = header[HEADER_STATE[i]];
      if (words[i] !== v) this.set(i, v);
    }
    this.region(mem.cpu, this.cpuAt);
    this.region(mem.data, this.dataAt);
    const lows = mem.stackLow;
    const stack = mem.stack;
    const segments = STACK_SEGMENTS.length;
    for (let cpu = 0, j = 0; cpu < mem.layout.cpus; cpu++)
      for (let k = 0; k < segments; k++, j++) {
        const low = lows[j];
        const before = words[this.lowAt + j];
        const end = cpu * STACK_SLOTS + STACK_SEGMENTS[k][1];
        for (let i = Math.min(low, before), pos = this.stackAt + i; i < end; i++, pos++)
          if (words[pos] !== stack[i]) this.set(pos, stack[i]);
        if (before !== low) this.set(this.lowAt + j, low);
      }
  }

  private region(from: Int32Array, at: number): void {
    const words = this.words;
    for (let i = 0, pos = at; i < from.length; i++, pos++) if (words[pos] !== from[i]) this.set(pos, from[i]);
  }
}

/** The written code bytes with their write history, in address order (`written` sorted): hashBuffer's last part. */
export function hashWritten(h: StateHasher, mem: MachineMemory, written: readonly number[]): void {
  for (const i of written) {
    h.mix(i);
    h.mix(mem.code[i]);
    h.mix(mem.historyCount[i]);
    h.mixRange(mem.history, i * HISTORY_DEPTH * 2, (i + 1) * HISTORY_DEPTH * 2);
  }
}

/**
 * Hashes the buffer's state regions (see the header): header words that are state, every CPU block,
 * the data words, the stacks, and the written code bytes with their write history. A stack grows
 * down from its top, so below the lowest slot ever written every slot is UNWRITTEN_SLOT: each
 * segment is hashed from its lowest written slot (and that slot's index, kept by
 * MachineMemory.writeStack) to its top. `written` (the code bytes written) must be sorted.
 */
export function hashBuffer(h: StateHasher, mem: MachineMemory, written: readonly number[]): void {
  const header = mem.header;
  for (let i = 0; i < HEADER_STATE.length; i++) h.mix(header[HEADER_STATE[i]]);
  h.mixArray(mem.cpu);
  h.mixArray(mem.data);
  const stack = mem.stack;
  const lows = mem.stackLow;
  const segments = STACK_SEGMENTS.length;
  for (let cpu = 0, j = 0; cpu < mem.layout.cpus; cpu++)
    for (let k = 0; k < segments; k++, j++) {
      const low = lows[j];
      h.mix(low);
      h.mixRange(stack, low, cpu * STACK_SLOTS + STACK_SEGMENTS[k][1]);
    }
  hashWritten(h, mem, written);
}
