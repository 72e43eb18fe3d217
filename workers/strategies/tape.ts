// The choice tape (SPEC §8): all nondeterminism of a run is drawn from one tape of small integers,
// consumed in order. This file is policy only: given the enabled actions (model/schedule), which one?
// Tape and PCT strategies live in the buffer, so whichever thread holds the token can make the next
// choice: bufferScheduler(mem) is the Scheduler any thread builds over a prepared buffer.
import { C, CPU_WORDS, H, type MachineMemory } from "../../model/memory.js";
import type { Scheduler } from "./scheduler.js";

export enum StrategyKind {
  /** Replay a tape; when it runs out, a fair round-robin finishes the run with no further events. */
  Tape = 0,
  /** PCT (Burckhardt et al., ASPLOS 2010): priorities, d-1 change points, planned events. */
  Pct = 1,
}

/** Layout of the strategy region for PCT. */
const S = { kind: 0, changePoints: 1, changeCount: 9, eventCount: 10, events: 11 } as const;
export const PCT_MAX_CHANGES = 8;
export const PCT_MAX_EVENTS = 24;

export interface PctParams {
  /** Initial priority of each CPU (higher runs first); distinct. */
  priorities: number[];
  /** Choice points at which the running CPU drops below every initial priority (d-1 of them). */
  changePoints: number[];
  /** Planned external events: at choice point `step`, the event (NMI to k = k, #MC to k = n+k). */
  events: Array<{ step: number; event: number }>;
}

export function loadTape(mem: MachineMemory, tape: readonly number[]): void {
  if (tape.length > mem.tape.length) {
    throw new Error(`the tape has ${tape.length} values but this run holds at most ${mem.tape.length}`);
  }
  mem.strategy[S.kind] = StrategyKind.Tape;
  mem.tape.set(tape);
  mem.header[H.tapeLen] = tape.length;
  mem.header[H.strategy] = StrategyKind.Tape;
}

export function loadPct(mem: MachineMemory, p: PctParams): void {
  mem.header[H.strategy] = StrategyKind.Pct;
  mem.strategy[S.kind] = StrategyKind.Pct;
  const changes = p.changePoints.slice(0, PCT_MAX_CHANGES);
  changes.forEach((s, i) => {
    mem.strategy[S.changePoints + i] = s;
  });
  mem.strategy[S.changeCount] = changes.length;
  const events = p.events.slice(0, PCT_MAX_EVENTS);
  mem.strategy[S.eventCount] = events.length;
  events.forEach((e, i) => {
    mem.strategy[S.events + 2 * i] = e.step;
    mem.strategy[S.events + 2 * i + 1] = e.event;
  });
  for (let c = 0; c < mem.layout.cpus; c++) mem.cpu[c * CPU_WORDS + C.pctPriority] = p.priorities[c] ?? 0;
}

/** Appends a choice to the run's record (the replayable tape of the run). */
export function record(mem: MachineMemory, index: number): number {
  const n = mem.header[H.recordLen];
  if (n < mem.record.length) {
    mem.record[n] = index;
    mem.header[H.recordLen] = n + 1;
  }
  return index;
}

function nextTapeValue(mem: MachineMemory): number {
  const pos = mem.header[H.tapePos];
  if (pos >= mem.header[H.tapeLen]) return -1;
  mem.header[H.tapePos] = pos + 1;
  return mem.tape[pos];
}

/** Picks one of `count` enabled actions (`actions[0]` is the current CPU when it can run). */
export function pickAction(mem: MachineMemory, actions: Int32Array, count: number): number {
  if (mem.header[H.strategy] === StrategyKind.Pct) return record(mem, pickPct(mem, actions, count));
  const v = nextTapeValue(mem);
  if (v >= 0) return record(mem, v % count);
  // Tape exhausted: fair round-robin over the runnable CPUs, no more events.
  const cpus = mem.layout.cpus;
  const rotate = count > 1 && actions[1] < cpus && actions[0] === mem.header[H.lastCpu] ? 1 : 0;
  return record(mem, rotate);
}

/** A choice inside a step (branch direction, stale-fetch value): 0 once the tape is exhausted. */
export function pickValue(mem: MachineMemory, count: number): number {
  if (mem.header[H.strategy] === StrategyKind.Pct) return record(mem, 0);
  const v = nextTapeValue(mem);
  return record(mem, v >= 0 ? v % count : 0);
}

/** The tape or PCT strategy that prepare() loaded into the buffer, as a Scheduler for any thread. */
export function bufferScheduler(mem: MachineMemory): Scheduler {
  return {
    pickAction: (actions, count) => pickAction(mem, actions, count),
    choose: (count) => pickValue(mem, count),
  };
}

function pickPct(mem: MachineMemory, actions: Int32Array, count: number): number {
  const cpus = mem.layout.cpus;
  // PCT's clock counts scheduling points (choices), the unit of tape positions and of the spans
  // the arbitraries draw from; steps without a choice (model/cpu nextIsVisible) do not tick it.
  const step = mem.header[H.recordLen];
  const st = mem.strategy;
  // A planned event, if it is enabled now.
  for (let i = 0; i < st[S.eventCount]; i++) {
    if (st[S.events + 2 * i] !== step) continue;
    const action = cpus + st[S.events + 2 * i + 1];
    for (let k = 0; k < count; k++) if (actions[k] === action) return k;
  }
  // At a change point the running CPU drops below every initial priority (d-1-i).
  for (let i = 0; i < st[S.changeCount]; i++) {
    if (st[S.changePoints + i] === step) {
      mem.cpu[mem.header[H.lastCpu] * CPU_WORDS + C.pctPriority] = -1 - i;
    }
  }
  let best = 0;
  let bestPriority = Number.NEGATIVE_INFINITY;
  for (let k = 0; k < count; k++) {
    if (actions[k] >= cpus) break;
    const p = mem.cpu[actions[k] * CPU_WORDS + C.pctPriority];
    if (p > bestPriority) {
      bestPriority = p;
      best = k;
    }
  }
  return best;
}
