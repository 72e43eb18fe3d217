// Instruction fetch and code writes, the hardware rules H9–H11 of SPEC §3: a fetch reads one byte
// per step, so other CPUs' stores land between the bytes of one instruction (H9); with the stale
// model a byte may read any value it held since this CPU last serialized (H10); an invalid encoding
// or ud2 is #UD (H11). A routine's code write is one step, never torn, and keeps the write history
// H10 reads. Each rule carries its source.

import { CrashKind, Ev } from "../events.js";
import { CODE_BASE } from "../image.js";
import { C, H, HISTORY_DEPTH } from "../memory.js";
import { type Decoded, decodeAt, FETCH_START, nextByte } from "../x86.js";
import { execute } from "./real-code.js";
import { type Context, type CpuState, crash, MAX_INSN, type RealCode, Shared, ValueKind } from "./state.js";

/**
 * The value this CPU's fetch reads at `address`, placed at `i` in the buffer's code and, if it is
 * writable, at `h` in its history (H9 bytewise; H10 may return an older value).
 */
function fetchByte(cpu: CpuState, address: number, i: number, h: number): number {
  const mem = cpu.mem;
  cpu.observer?.access(cpu.id, Shared.Code, address - CODE_BASE, false);
  // Only writable bytes have a history: any other byte holds the image's value.
  if (h < 0) return mem.code[i];
  const count = mem.historyCount[h];
  if (!cpu.stale || count === 0) return mem.code[i];
  // SDM Vol. 3A §9.1.3: unsynchronized cross-modifying code may see any value the byte held since
  // this CPU last serialized (H10); but a CPU always sees its own stores.
  const since = mem.cpu[cpu.base + C.lastSerializeSeq];
  const kept = Math.min(count, HISTORY_DEPTH);
  const candidates: number[] = [mem.code[i]];
  for (let k = kept - 1; k >= 0; k--) {
    const slot = ((count - kept + k) % HISTORY_DEPTH) * 2;
    const entry = mem.history[h * HISTORY_DEPTH * 2 + slot];
    const seq = mem.history[h * HISTORY_DEPTH * 2 + slot + 1];
    const writer = (entry >> 8) - 1;
    if (writer === cpu.id) break;
    if (seq <= since) break;
    // The value before this write: the previous entry's, or the image's (unknown once the ring dropped it).
    if (k > 0)
      candidates.push(
        mem.history[h * HISTORY_DEPTH * 2 + ((count - kept + k - 1) % HISTORY_DEPTH) * 2] & 0xff,
      );
    else if (count === kept) candidates.push(cpu.original[h]);
  }
  if (candidates.length === 1) return candidates[0];
  return candidates[cpu.chooser.choose(candidates.length, ValueKind.Stale)];
}

/** Who wrote the current value of a code byte (history index `h`, -1: not writable), and at which write sequence (for the trace). */
function lastWrite(cpu: CpuState, h: number): [number, number] {
  if (h < 0) return [-1, 0];
  const count = cpu.mem.historyCount[h];
  if (count === 0) return [-1, 0];
  const slot = ((count - 1) % HISTORY_DEPTH) * 2;
  const base = h * HISTORY_DEPTH * 2;
  return [(cpu.mem.history[base + slot] >> 8) - 1, cpu.mem.history[base + slot + 1]];
}

/**
 * One step of fetching the top context's real code: one byte (H9), or the whole instruction with the
 * atomic fetch model. Once the bytes decode, a torn instruction at a site is a crash (P1), an invalid
 * one is #UD (H11), and any other executes (real-code.ts).
 */
export function fetchStep(cpu: CpuState, ctx: Context, real: RealCode): void {
  const w = cpu.mem.cpu;
  const o = cpu.base;
  const mem = cpu.mem;
  if (cpu.fetchLen === 0) {
    cpu.fetchStart = real.rip;
    cpu.fetchCursor = FETCH_START;
  }
  let d: Decoded;
  do {
    const address = cpu.fetchStart + cpu.fetchLen;
    const i = mem.codeIndex(address);
    if (i < 0) {
      // No code is placed there (outside the image, or a function the scenario does not reach).
      crash(cpu, CrashKind.OutOfCode, address);
      return;
    }
    const h = mem.historyIndex(address);
    // AMD APM via LKML: instruction bytes may be read more than once, so other CPUs' stores can land
    // between the bytes of one fetch: each byte is its own step (H9)
    const value = fetchByte(cpu, address, i, h);
    const [writer, seq] = lastWrite(cpu, h);
    mem.logEvent(cpu.id, Ev.Fetch, address, value, writer, seq);
    cpu.fetchBuf[cpu.fetchLen++] = value;
    cpu.fetchCursor = nextByte(cpu.fetchCursor, value);
    d = decodeAt(cpu.fetchCursor, cpu.fetchBuf, cpu.fetchLen);
    if (!d.complete && cpu.fetchLen === MAX_INSN)
      d = { ...d, complete: true, invalid: true, length: MAX_INSN };
  } while (!d.complete && cpu.atomicFetch);
  if (!d.complete) {
    w[o + C.atBoundary] = 0;
    return;
  }
  const address = cpu.fetchStart;
  const length = cpu.fetchLen;
  cpu.fetchLen = 0;
  w[o + C.atBoundary] = 1;
  const oracle = cpu.spec.siteOracle;
  if (oracle.overlaps(address, length) && !oracle.valid(address, cpu.fetchBuf, length)) {
    // The bytes fetched, zero past the instruction's length: what the buffer holds there is left
    // from earlier fetches, which the record must not depend on.
    const b = (k: number) => (k < length ? cpu.fetchBuf[k] : 0);
    const pack = (k: number) => (b(k) | (b(k + 1) << 8) | (b(k + 2) << 16) | (b(k + 3) << 24)) >>> 0;
    crash(cpu, CrashKind.Torn, address, length, pack(0) | 0, pack(4) | 0);
    return;
  }
  cpu.mem.logEvent(cpu.id, Ev.Exec, address, length, d.mnemonic, ctx.kind);
  // The STI shadow ends with the instruction after STI (SDM Vol. 2 STI); STI itself sets it anew.
  w[o + C.interruptShadow] = 0;
  // SDM Vol. 2: an invalid encoding or ud2 raises #UD; the model treats it as a crash (H11)
  if (d.invalid || d.isUd2) {
    crash(cpu, CrashKind.InvalidOpcode, address, d.length);
    return;
  }
  execute(cpu, ctx, real, address, d);
}

/** A store of 1, 2, 4 or 8 bytes: one step, never torn (H9); one write sequence number. */
export function writeCode(cpu: CpuState, address: number, bytes: number[]): void {
  const mem = cpu.mem;
  const oracle = cpu.spec.siteOracle;
  if (!oracle.writable(address) || !oracle.writable(address + bytes.length - 1)) {
    // Scheduling points are taken only where code may change (nextIsVisible), and P1 judges only
    // sites: a write anywhere else would be a race the checker could neither schedule nor judge.
    throw new Error(
      `CPU ${cpu.id} writes code at ${cpu.spec.image.symbolize(address)}, outside the patch site: a protocol may write only its sites (a scenario may declare more writable functions)`,
    );
  }
  cpu.observer?.access(cpu.id, Shared.WriteSeq, 0, true);
  const seq = mem.header[H.writeSeq] + 1;
  mem.header[H.writeSeq] = seq;
  for (let k = 0; k < bytes.length; k++) {
    cpu.observer?.access(cpu.id, Shared.Code, address + k - CODE_BASE, true);
    // Only the writable ranges have a write history and are restored between runs (MachineMemory.reset).
    const h = mem.historyIndex(address + k);
    const i = mem.codeIndex(address + k);
    if (h < 0 || i < 0) {
      throw new Error(
        `CPU ${cpu.id} writes code at 0x${(address + k).toString(16)}, outside the machine's writable code (${mem.layout.writable.map((w) => `0x${w.address.toString(16)}+${w.length}`).join(", ")})`,
      );
    }
    const count = mem.historyCount[h];
    const slot = (count % HISTORY_DEPTH) * 2;
    mem.history[h * HISTORY_DEPTH * 2 + slot] = (bytes[k] & 0xff) | ((cpu.id + 1) << 8);
    mem.history[h * HISTORY_DEPTH * 2 + slot + 1] = seq;
    // The count only needs to stay congruent modulo HISTORY_DEPTH once the ring is full.
    mem.historyCount[h] = count + 1 > 252 ? count + 1 - HISTORY_DEPTH : count + 1;
    mem.code[i] = bytes[k] & 0xff;
    mem.logEvent(cpu.id, Ev.CodeWrite, address + k, bytes[k] & 0xff, seq, bytes.length);
  }
}
