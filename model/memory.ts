// The machine's shared state: one SharedArrayBuffer holding everything another CPU can observe
// (SPEC §2). There is no JavaScript-side copy of shared state: every engine reads and writes these
// views, so the inline and threaded engines see the same bytes.

import type { CodeImage } from "./image.js";

/**
 * The simulated stacks. Each CPU has a main stack and seven IST stacks (x86-64 TSS IST1..IST7) in its
 * own range of addresses, far from code, so a stack address is never mistaken for a return address.
 * A stack slot is 8 bytes (one Int32 in the buffer: the model's values fit in 32 bits).
 */
export const STACK_BASE = 0x4000_0000;
export const STACK_SPAN = 0x10_0000; // addresses per CPU
export const MAIN_STACK_SLOTS = 256;
export const IST_STACK_SLOTS = 64;
export const STACK_SLOTS = MAIN_STACK_SLOTS + 7 * IST_STACK_SLOTS;
/** Top (initial RSP) of a CPU's main stack (ist 0) or of IST stack 1..7. */
export function stackTop(cpu: number, ist: number): number {
  const base = STACK_BASE + cpu * STACK_SPAN;
  return ist <= 0 ? base + MAIN_STACK_SLOTS * 8 : base + (MAIN_STACK_SLOTS + ist * IST_STACK_SLOTS) * 8;
}
/** Values the model stores for what it does not track; none is a code or stack address. */
export const UNKNOWN_VALUE = 0x0bad_0000; // a register the model keeps abstract
export const UNWRITTEN_SLOT = 0x0bad_5107; // a stack slot nothing has written (`sub rsp, 16`)

/** The stack segments of one CPU, as slot ranges [low, high): the main stack, then IST1..IST7. */
export const STACK_SEGMENTS: ReadonlyArray<readonly [number, number]> = [
  [0, MAIN_STACK_SLOTS],
  ...Array.from({ length: 7 }, (_, k): [number, number] => [
    MAIN_STACK_SLOTS + k * IST_STACK_SLOTS,
    MAIN_STACK_SLOTS + (k + 1) * IST_STACK_SLOTS,
  ]),
];

/** The segment (index into STACK_SEGMENTS) of a slot of one CPU's stacks. */
export function stackSegmentOf(slot: number): number {
  return slot < MAIN_STACK_SLOTS ? 0 : 1 + Math.floor((slot - MAIN_STACK_SLOTS) / IST_STACK_SLOTS);
}

/** The return address a routine's `call` into real code pushes: `ret` to it resumes the routine. */
export const ROUTINE_RETURN = 0x7fff_f000;
/** The saved RIP of an event frame that interrupted a routine step, not real code. */
export const ROUTINE_RESUME = 0x7fff_e000;

/** Writes remembered per writable code byte for the stale-fetch model (H10). */
export const HISTORY_DEPTH = 4;

/** Int32 words of one event-log record: step, cpu, kind, addr, a, b, c, d. */
export const LOG_RECORD_WORDS = 8;

/** Header words (indices into the header Int32Array). */
export const H = {
  step: 0, // global step counter: one per action (CPU step or event arrival)
  writeSeq: 1, // global code-write sequence number (0 = the image as loaded)
  token: 2, // the CPU whose turn it is (threaded engine), or -1 when the run is over
  status: 3, // RunStatus
  logCount: 4,
  nmisSent: 5, // budgeted external NMIs sent so far
  mcesSent: 6,
  tapePos: 7, // next tape value to consume
  tapeLen: 8,
  recordLen: 9, // choices recorded so far (the replayable tape of this run)
  lastCpu: 10, // CPU that took the last step (0 = keep running it)
  stepBound: 11,
  nmiBudget: 12,
  mceBudget: 13,
  cpus: 14,
  strategy: 15, // StrategyKind
  errorCpu: 16, // CPU whose routine threw (threaded engine)
  mceBroadcast: 17, // 1: a machine check reaches every CPU (hardware option mceDelivery)
  stiShadow: 19, // 1: NMIs are held for one instruction after STI (hardware option stiShadow)
  endStep: 18,
  started: 21, // threaded engine: CPUs whose worker has started
} as const;
const HEADER_WORDS = 32;

export enum RunStatus {
  Running = 0,
  Finished = 1, // every CPU done, nothing deliverable
  Deadlock = 2, // no CPU can run but some are not done
  StepBound = 3, // the step bound was reached
  Crash = 4, // torn fetch, #UD, shutdown, unhandled #BP: the run ends there (SPEC §7)
  Error = 5, // a routine threw or a worker died: a bug in a protocol or the tool, not a verdict
}

/** Per-CPU hardware words (SPEC §2), a fixed-size block per CPU. */
export const C = {
  rip: 0,
  if: 1,
  nmiBlocked: 2,
  nmiPending: 3,
  mcePending: 4,
  mcip: 5,
  istLive: 6, // bit per IST stack holding a live frame
  depth: 7, // contexts on the CPU (1 = base only)
  lastSerializeSeq: 8,
  halted: 9,
  done: 10, // the CPU's base routine has finished
  atBoundary: 11, // 0 while an instruction fetch is in progress (no event delivery then, H1)
  waiting: 12, // the top context waits on waitWord0/1 (it is not schedulable while false)
  waitWord0: 13,
  waitOp0: 14,
  waitValue0: 15,
  waitWord1: 16,
  waitOp1: 17,
  waitValue1: 18,
  irqPending: 19, // bit per fixed IPI vector
  nmiUnblockedBy: 20, // ContextKind whose IRET last cleared nmiBlocked while an NMI frame was live
  nmiLiveDepth: 21, // NMI contexts on the stack
  pctPriority: 22,
  /** 1 when this CPU's next step touches state other CPUs write or observe (a scheduling point). */
  visible: 23,
  rsp: 24,
  rbp: 25,
  /** 1 for the instruction after STI: maskable interrupts (and NMIs with the stiShadow option) wait. */
  interruptShadow: 26,
} as const;
export const CPU_WORDS = 28;

/** A range of simulated code addresses. */
export interface CodeRange {
  address: number;
  length: number;
}

export interface MemoryLayout {
  cpus: number;
  dataWords: number;
  /**
   * The placed code (the image's segments, sorted): the buffer holds these bytes and no others, one
   * range after another, so its size follows what is placed, not the distance between functions.
   * Every thread derives the same ranges from the run's configuration (model/machine layoutFor).
   */
  code: readonly CodeRange[];
  /**
   * Where code writes may land (the sites, the functions a scenario declares writable), sorted and
   * apart, inside placed code: only these bytes keep a write history and are restored between runs.
   */
  writable: readonly CodeRange[];
  tapeMax: number;
  logMax: number;
  strategyWords: number;
}

/** A copy of what a run can change in a buffer (MachineMemory.saveRun), the log and record aside. */
export interface RunState {
  header: Int32Array;
  cpu: Int32Array;
  data: Int32Array;
  stack: Int32Array;
  stackLow: Int32Array;
  code: Uint8Array;
  history: Int32Array;
  historyCount: Uint8Array;
}

/** Typed views over one machine's buffer. Cheap to construct from a buffer in any thread. */
export class MachineMemory {
  readonly buffer: SharedArrayBuffer;
  readonly layout: MemoryLayout;
  readonly header: Int32Array;
  readonly cpu: Int32Array;
  readonly data: Int32Array;
  readonly tape: Int32Array;
  /** The choices actually made (the replayable tape of this run). */
  readonly record: Int32Array;
  readonly strategy: Int32Array;
  readonly log: Int32Array;
  /** Per CPU, STACK_SLOTS 8-byte slots (one Int32 each): the main stack, then IST1..IST7. */
  readonly stack: Int32Array;
  /**
   * Per CPU and stack segment, the lowest slot written since the last reset (the segment's end when
   * none). Kept in this thread only (not in the shared buffer): the state hash of the inline search
   * reads it; writeStack keeps it.
   */
  readonly stackLow: Int32Array;
  /** The placed code bytes, layout.code's ranges one after another (index with codeIndex). */
  readonly code: Uint8Array;
  /**
   * Per writable code byte (index with historyIndex): HISTORY_DEPTH entries of
   * (value | writerCpu+1 << 8, writeSeq), newest last.
   */
  readonly history: Int32Array;
  readonly historyCount: Uint8Array;
  // The code map, derived from the layout in every thread: start, end and buffer offset of each range.
  private readonly codeStart: Int32Array;
  private readonly codeEnd: Int32Array;
  private readonly codeOffset: Int32Array;
  /** The range the last lookup found: fetches run through one function at a time. */
  private lastRange = 0;
  private readonly writeStart: Int32Array;
  private readonly writeEnd: Int32Array;
  private readonly writeOffset: Int32Array;
  private readonly writeLow: number;
  private readonly writeHigh: number;
  /** The image whose bytes the buffer holds (reset loads it whole once, then restores only writes). */
  private loaded: CodeImage | undefined;

  static bytesFor(layout: MemoryLayout): number {
    const codeBytes = total(layout.code);
    const writableBytes = total(layout.writable);
    const words =
      HEADER_WORDS +
      layout.cpus * CPU_WORDS +
      layout.dataWords +
      layout.tapeMax * 2 +
      layout.strategyWords +
      layout.logMax * LOG_RECORD_WORDS +
      layout.cpus * STACK_SLOTS +
      writableBytes * HISTORY_DEPTH * 2;
    return words * 4 + codeBytes + writableBytes;
  }

  constructor(layout: MemoryLayout, buffer?: SharedArrayBuffer) {
    this.layout = layout;
    checkRanges("placed code", layout.code);
    checkRanges("writable code", layout.writable);
    const map = (ranges: readonly CodeRange[]) => {
      let at = 0;
      const offset = Int32Array.from(ranges, (r) => {
        const o = at;
        at += r.length;
        return o;
      });
      return [
        Int32Array.from(ranges, (r) => r.address),
        Int32Array.from(ranges, (r) => r.address + r.length),
        offset,
      ];
    };
    [this.codeStart, this.codeEnd, this.codeOffset] = map(layout.code);
    [this.writeStart, this.writeEnd, this.writeOffset] = map(layout.writable);
    this.writeLow = layout.writable.length > 0 ? this.writeStart[0] : 0;
    this.writeHigh = layout.writable.length > 0 ? this.writeEnd[layout.writable.length - 1] : 0;
    for (const w of layout.writable) {
      const i = this.codeIndex(w.address);
      if (i < 0 || this.codeIndex(w.address + w.length - 1) !== i + w.length - 1)
        throw new Error(
          `writable code at 0x${w.address.toString(16)}..0x${(w.address + w.length).toString(16)} is not inside one placed range`,
        );
    }
    const size = MachineMemory.bytesFor(layout);
    if (buffer && buffer.byteLength < size) {
      throw new Error(`machine buffer is ${buffer.byteLength} bytes but the layout needs ${size}`);
    }
    this.buffer = buffer ?? new SharedArrayBuffer(size);
    let off = 0;
    const ints = (n: number): Int32Array => {
      const v = new Int32Array(this.buffer, off, n);
      off += n * 4;
      return v;
    };
    this.header = ints(HEADER_WORDS);
    this.cpu = ints(layout.cpus * CPU_WORDS);
    this.data = ints(layout.dataWords);
    this.tape = ints(layout.tapeMax);
    this.record = ints(layout.tapeMax);
    this.strategy = ints(layout.strategyWords);
    this.log = ints(layout.logMax * LOG_RECORD_WORDS);
    this.stack = ints(layout.cpus * STACK_SLOTS);
    this.stackLow = new Int32Array(layout.cpus * STACK_SEGMENTS.length);
    this.clearStackLow();
    const writableBytes = total(layout.writable);
    this.history = ints(writableBytes * HISTORY_DEPTH * 2);
    this.code = new Uint8Array(this.buffer, off, total(layout.code));
    off += this.code.length;
    this.historyCount = new Uint8Array(this.buffer, off, writableBytes);
  }

  /** The index in `code` of the byte at a simulated address, or -1 where no code is placed. */
  codeIndex(address: number): number {
    const start = this.codeStart;
    const end = this.codeEnd;
    let k = this.lastRange;
    if (address >= start[k] && address < end[k]) return this.codeOffset[k] + address - start[k];
    for (k = 0; k < start.length; k++) {
      if (address >= start[k] && address < end[k]) {
        this.lastRange = k;
        return this.codeOffset[k] + address - start[k];
      }
    }
    return -1;
  }

  /** The index in `historyCount` (and, times HISTORY_DEPTH * 2, in `history`) of a writable byte, or -1. */
  historyIndex(address: number): number {
    if (address < this.writeLow || address >= this.writeHigh) return -1;
    const start = this.writeStart;
    for (let k = 0; k < start.length; k++) {
      if (address >= start[k] && address < this.writeEnd[k]) return this.writeOffset[k] + address - start[k];
    }
    return -1;
  }

  /** The code bytes now at [address, address+length) (a view); an error names an address not placed. */
  codeBytes(address: number, length: number): Uint8Array {
    const i = this.codeIndex(address);
    if (i < 0 || this.codeIndex(address + length - 1) !== i + length - 1)
      throw new Error(
        `no code is placed at 0x${address.toString(16)}..0x${(address + length).toString(16)} in this machine`,
      );
    return this.code.subarray(i, i + length);
  }

  cpuWord(cpu: number, word: number): number {
    return this.cpu[cpu * CPU_WORDS + word];
  }

  setCpuWord(cpu: number, word: number, value: number): void {
    this.cpu[cpu * CPU_WORDS + word] = value;
  }

  /**
   * Writes a stack slot of `cpu` (a slot stackSlot gave). Every stack write goes through here, so that `stackLow` stays true: the
   * search's state hash (workers/strategies/state-cache) reads each segment from its lowest written
   * slot up instead of scanning the unwritten slots below it.
   */
  writeStack(cpu: number, slot: number, value: number): void {
    this.stack[slot] = value;
    const k = cpu * STACK_SEGMENTS.length + stackSegmentOf(slot - cpu * STACK_SLOTS);
    if (slot < this.stackLow[k]) this.stackLow[k] = slot;
  }

  private clearStackLow(): void {
    for (let c = 0; c < this.layout.cpus; c++)
      STACK_SEGMENTS.forEach(([, hi], k) => {
        this.stackLow[c * STACK_SEGMENTS.length + k] = c * STACK_SLOTS + hi;
      });
  }

  /** The stack slot holding `address` on `cpu`'s stacks, or -1 if the address is not on them. */
  stackSlot(cpu: number, address: number): number {
    const off = address - (STACK_BASE + cpu * STACK_SPAN);
    if (off < 0 || off % 8 !== 0 || off >= STACK_SLOTS * 8) return -1;
    return cpu * STACK_SLOTS + off / 8;
  }

  /** Appends one event-log record; a full log ends the run as a step-bound overrun. */
  logEvent(cpu: number, kind: number, addr = 0, a = 0, b = 0, c = 0, d = 0): void {
    const n = this.header[H.logCount];
    if (n >= this.layout.logMax) {
      this.header[H.status] = RunStatus.StepBound;
      return;
    }
    const o = n * LOG_RECORD_WORDS;
    const log = this.log;
    log[o] = this.header[H.step];
    log[o + 1] = cpu;
    log[o + 2] = kind;
    log[o + 3] = addr;
    log[o + 4] = a;
    log[o + 5] = b;
    log[o + 6] = c;
    log[o + 7] = d;
    this.header[H.logCount] = n + 1;
  }

  /**
   * Prepares the buffer for a run of `image`, so one buffer serves many runs: the first time, loads
   * the image's placed code; after that, restores only what a run can have changed (the writable
   * ranges, the only ones Cpu.writeCode writes) and clears their history. Every other region is reset.
   */
  reset(image: CodeImage): void {
    if (this.loaded !== image) {
      const segments = image.segments.filter((g) => g.bytes.length > 0);
      const same =
        segments.length === this.layout.code.length &&
        segments.every(
          (g, k) => g.address === this.codeStart[k] && g.bytes.length === this.layout.code[k].length,
        );
      if (!same)
        throw new Error(
          `the image's placed code (${describe(segments.map((g) => ({ address: g.address, length: g.bytes.length })))}) is not this buffer's (${describe(this.layout.code)}): build the buffer from the same machine`,
        );
      segments.forEach((g, k) => {
        this.code.set(g.bytes, this.codeOffset[k]);
      });
      this.loaded = image;
    } else {
      for (const w of this.layout.writable)
        this.code.set(image.read(w.address, w.length), this.codeIndex(w.address));
    }
    this.header.fill(0);
    this.cpu.fill(0);
    this.data.fill(0);
    this.record.fill(0);
    this.stack.fill(UNWRITTEN_SLOT);
    this.clearStackLow();
    this.history.fill(0);
    this.historyCount.fill(0);
    this.header[H.cpus] = this.layout.cpus;
  }

  /** Room for this buffer's run state (saveRun, restoreRun), to be reused. */
  newRunState(): RunState {
    const writable = this.historyCount.length;
    return {
      header: new Int32Array(HEADER_WORDS),
      cpu: new Int32Array(this.cpu.length),
      data: new Int32Array(this.data.length),
      stack: new Int32Array(this.stack.length),
      stackLow: new Int32Array(this.stackLow.length),
      code: new Uint8Array(writable),
      history: new Int32Array(this.history.length),
      historyCount: new Uint8Array(writable),
    };
  }

  /**
   * Copies into `into` what a run can change, except the log and the record of choices: those only
   * grow, so a run resumed from this point on the same path finds them as they were up to the counts
   * the header keeps. Stacks are copied from their low-water marks up (below them every slot is
   * UNWRITTEN_SLOT), code and history only where code is writable.
   */
  saveRun(into: RunState): void {
    into.header.set(this.header);
    into.cpu.set(this.cpu);
    into.data.set(this.data);
    into.stackLow.set(this.stackLow);
    this.forEachStackSegment(this.stackLow, (low, end) => into.stack.set(this.stack.subarray(low, end), low));
    let at = 0;
    for (const w of this.layout.writable) {
      const i = this.codeIndex(w.address);
      into.code.set(this.code.subarray(i, i + w.length), at);
      at += w.length;
    }
    into.history.set(this.history);
    into.historyCount.set(this.historyCount);
  }

  /** Puts back what saveRun copied (the log and the record are cut back by the header's counts). */
  restoreRun(from: RunState): void {
    this.header.set(from.header);
    this.cpu.set(from.cpu);
    this.data.set(from.data);
    // Slots written since the snapshot, below its low-water marks, are unwritten again.
    this.forEachStackSegment(from.stackLow, (low, end, j) => {
      if (this.stackLow[j] < low) this.stack.fill(UNWRITTEN_SLOT, this.stackLow[j], low);
      this.stack.set(from.stack.subarray(low, end), low);
    });
    this.stackLow.set(from.stackLow);
    let at = 0;
    for (const w of this.layout.writable) {
      this.code.set(from.code.subarray(at, at + w.length), this.codeIndex(w.address));
      at += w.length;
    }
    this.history.set(from.history);
    this.historyCount.set(from.historyCount);
  }

  /**
   * Calls `f` for each stack segment of every CPU with its slots [low, end) from the low-water mark
   * `lows[j]` (j: the segment's index in stackLow; `lows` is stackLow or a copy of it) to its top.
   */
  forEachStackSegment(lows: Int32Array, f: (low: number, end: number, j: number) => void): void {
    const segments = STACK_SEGMENTS.length;
    for (let c = 0; c < this.layout.cpus; c++)
      for (let k = 0; k < segments; k++) {
        const j = c * segments + k;
        f(lows[j], c * STACK_SLOTS + STACK_SEGMENTS[k][1], j);
      }
  }

  /** Copies of the regions that define a run's outcome, for comparing engines byte for byte. */
  snapshot(): {
    log: Int32Array;
    cpu: Int32Array;
    data: Int32Array;
    stack: Int32Array;
    code: Uint8Array;
    header: Int32Array;
  } {
    return {
      stack: this.stack.slice(),
      log: this.log.slice(0, this.header[H.logCount] * LOG_RECORD_WORDS),
      cpu: this.cpu.slice(),
      data: this.data.slice(),
      code: this.code.slice(),
      header: this.header.slice(),
    };
  }
}

function total(ranges: readonly CodeRange[]): number {
  return ranges.reduce((n, r) => n + r.length, 0);
}

function describe(ranges: readonly CodeRange[]): string {
  return ranges.map((r) => `0x${r.address.toString(16)}+${r.length}`).join(", ") || "none";
}

/** Ranges of a layout must be sorted, apart and non-empty: the lookups rely on it. */
function checkRanges(what: string, ranges: readonly CodeRange[]): void {
  ranges.forEach((r, k) => {
    if (!Number.isInteger(r.address) || !Number.isInteger(r.length) || r.length <= 0)
      throw new Error(`${what}: the range at 0x${r.address.toString(16)} has length ${r.length}`);
    const prev = ranges[k - 1];
    if (prev && prev.address + prev.length > r.address)
      throw new Error(`${what}: the ranges ${describe([prev, r])} are not sorted and apart`);
  });
}
