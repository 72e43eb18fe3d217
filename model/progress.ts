// Progress that another thread can read while the thread running a machine is stuck in user code.
// JavaScript cannot interrupt a routine that loops without yielding, so a watchdog on another thread
// watches this small shared block instead: a heartbeat that moves while work gets done, the phase of
// the work, and for each CPU the step and the routine it last entered, and whether it is inside that
// routine's code right now. When the heartbeat stops, the block names the CPU, the routine and the
// step; and only a silence inside routine code is a routine's: the checker's own work between two
// routine steps (a long search's bookkeeping, a garbage collection) is not. The block also holds the
// kernel id of each thread that writes it, so that the watchdog can count a silence in that thread's
// own CPU time (workers/thread-time), not in the time a busy host kept it off the cores. The model
// writes it (Cpu, inHook); the engines give each thread its block (reportProgressTo); nothing here
// reads the clock or starts threads.
import { ContextKind } from "./events.js";

/** The protocol routines (the Protocol fields) a CPU runs inside the OS's or the base routine. */
export const PROTOCOL_HOOKS = ["master", "poll", "nmiCallback", "bpHandler", "ipiHandler"] as const;
export type ProtocolHook = (typeof PROTOCOL_HOOKS)[number];

/** The routine of each context kind (model/events ContextKind): the base routine and the OS's handlers. */
const CONTEXT_ROUTINES: Record<ContextKind, string> = {
  [ContextKind.Base]: "base",
  [ContextKind.Nmi]: "nmi",
  [ContextKind.Mce]: "mce",
  [ContextKind.Bp]: "bp",
  [ContextKind.Irq]: "irq",
};

/** What a thread is doing, as the watchdog needs to explain a stop. */
export enum Phase {
  /** The thread has not started the task yet (a fresh thread still loads its code). */
  Starting = 0,
  /** Importing protocol modules: their top-level code runs. */
  Loading = 1,
  /** Building a machine: the protocol's setup runs. */
  Building = 2,
  /** Running machines: routines run, and the CPU slots say where. */
  Running = 3,
  /** Running a machine on the threaded engine, whose own watchdog watches it. */
  Threaded = 4,
}

/**
 * Header words of a progress block, then PROGRESS_CPU_WORDS per CPU. Besides what the watchdog reads,
 * the counts a progress line shows (cli/progress.ts): the part of the check running, machine runs and
 * exhaustive executions finished, and the sampling's judged runs out of those planned (0: unknown).
 * `thread` is the kernel id of the thread that reports into the block (0: unknown).
 */
export const PG = {
  beat: 0,
  phase: 1,
  cpu: 2,
  part: 3,
  runs: 4,
  executions: 5,
  sampled: 6,
  planned: 7,
  thread: 8,
} as const;
const PROGRESS_HEADER = 9;

/** The part of a check a thread is in (properties/check.ts), for the progress line. */
export enum Part {
  None = 0,
  Exhaustive = 1,
  Sampling = 2,
}
/**
 * Per CPU: the step and routine it last entered; `inRoutine` 1 while that routine's code runs (between
 * a step's result handed to it and its next yield); `thread` the kernel id of the thread that runs
 * the CPU, where CPUs have threads of their own (the threaded engine; 0: unknown).
 */
export const PG_CPU = { step: 0, context: 1, hook: 2, inRoutine: 3, thread: 4 } as const;
const PROGRESS_CPU_WORDS = 5;
/** The most CPUs a machine can have (model/machine defineMachine). */
const PROGRESS_CPUS = 16;
export const PROGRESS_WORDS = PROGRESS_HEADER + PROGRESS_CPUS * PROGRESS_CPU_WORDS;

/** The block this thread reports into (null: nobody watches). */
let sink: Int32Array | null = null;

/** This thread reports into `block` from now on; `thread` is its kernel id (workers/thread-time threadId). */
export function reportProgressTo(block: Int32Array | null, thread = 0): void {
  sink = block;
  if (block !== null) block[PG.thread] = thread;
}

/**
 * The thread of CPU `cpu` says who it is (the threaded engine: a thread per CPU, a block per machine).
 */
export function noteCpuThread(cpu: number, thread: number): void {
  if (sink === null || cpu >= PROGRESS_CPUS) return;
  sink[PROGRESS_HEADER + cpu * PROGRESS_CPU_WORDS + PG_CPU.thread] = thread;
}

export function progressBlock(
  buffer: SharedArrayBuffer = new SharedArrayBuffer(PROGRESS_WORDS * 4),
): Int32Array {
  return new Int32Array(buffer, 0, PROGRESS_WORDS);
}

/** A check enters a part; `planned`: the runs the sampling will judge at most (0: unknown). */
export function notePart(part: Part, planned = 0): void {
  if (sink === null) return;
  sink[PG.part] = part;
  sink[PG.sampled] = 0;
  sink[PG.planned] = Math.min(planned, 2 ** 31 - 1);
  sink[PG.beat]++;
}

/** A machine run ended: an execution of the exhaustive search, or another run. */
export function noteRun(): void {
  if (sink === null) return;
  sink[sink[PG.part] === Part.Exhaustive ? PG.executions : PG.runs]++;
  sink[PG.beat]++;
}

/** The sampling judged one more run (from its outcome memory or a new run). */
export function noteSampled(): void {
  if (sink !== null) sink[PG.sampled]++;
}

/** Work got done (a run ended, a routine advanced): the heartbeat moves. */
export function beat(): void {
  if (sink !== null) sink[PG.beat]++;
}

export function notePhase(phase: Phase): void {
  if (sink === null) return;
  sink[PG.phase] = phase;
  sink[PG.beat]++;
}

/**
 * A CPU is about to run its routine (context `kind`, inside protocol routine `hook`) at `step`: from
 * here until leaveRoutine, a silence is the routine's.
 */
export function noteRoutine(
  cpu: number,
  step: number,
  kind: ContextKind,
  hook: ProtocolHook | undefined,
): void {
  const w = sink;
  if (w === null || cpu >= PROGRESS_CPUS) return;
  const o = PROGRESS_HEADER + cpu * PROGRESS_CPU_WORDS;
  w[PG.beat]++;
  w[PG.cpu] = cpu;
  w[o + PG_CPU.step] = step;
  w[o + PG_CPU.context] = kind + 1;
  w[o + PG_CPU.hook] = hook === undefined ? 0 : PROTOCOL_HOOKS.indexOf(hook) + 1;
  w[o + PG_CPU.inRoutine] = 1;
}

/** The routine of CPU `cpu` yielded (or threw): what the thread does next is the checker's own work. */
export function leaveRoutine(cpu: number): void {
  const w = sink;
  if (w === null || cpu >= PROGRESS_CPUS) return;
  w[PROGRESS_HEADER + cpu * PROGRESS_CPU_WORDS + PG_CPU.inRoutine] = 0;
}

/** A CPU's routine enters (or returns to) a protocol routine without a step in between. */
export function noteHook(cpu: number, hook: ProtocolHook | undefined): void {
  const w = sink;
  if (w === null || cpu >= PROGRESS_CPUS) return;
  w[PG.cpu] = cpu;
  w[PROGRESS_HEADER + cpu * PROGRESS_CPU_WORDS + PG_CPU.hook] =
    hook === undefined ? 0 : PROTOCOL_HOOKS.indexOf(hook) + 1;
}

/**
 * How messages name a routine: a protocol routine by its Protocol field (with the handler it runs in,
 * when that is not the base routine), an OS routine by its context. One name in every message.
 */
export function routineLabel(kind: ContextKind, hook: ProtocolHook | undefined, protocol: string): string {
  const context = CONTEXT_ROUTINES[kind] ?? `context ${kind}`;
  if (hook === undefined) return `routine '${context}'`;
  const inside = kind === ContextKind.Base ? "" : ` in the '${context}' handler`;
  return `routine '${hook}' of protocol '${protocol}'${inside}`;
}

/**
 * Where a stuck machine is, read from its block: the CPU that reported last, its step and routine,
 * whether that routine's code is running, and the thread that runs the CPU (the block's own thread
 * when the CPU has none of its own; 0: unknown).
 */
export interface StuckAt {
  phase: Phase;
  cpu: number;
  step: number;
  kind?: ContextKind;
  hook?: ProtocolHook;
  inRoutine: boolean;
  thread: number;
}

export function readProgress(block: Int32Array, cpu: number = block[PG.cpu]): StuckAt {
  const o = PROGRESS_HEADER + cpu * PROGRESS_CPU_WORDS;
  const context = block[o + PG_CPU.context];
  const hook = block[o + PG_CPU.hook];
  return {
    phase: block[PG.phase] as Phase,
    cpu,
    step: block[o + PG_CPU.step],
    kind: context > 0 ? ((context - 1) as ContextKind) : undefined,
    hook: hook > 0 ? PROTOCOL_HOOKS[hook - 1] : undefined,
    inRoutine: block[o + PG_CPU.inRoutine] === 1,
    thread: block[o + PG_CPU.thread] || block[PG.thread],
  };
}
