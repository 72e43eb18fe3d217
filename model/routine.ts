// The step language (SPEC §4): OS and protocol code is written as generators, and every `yield` is one
// atomic step of that CPU on shared state. Routines touch shared state only through steps, which is
// what makes them run identically in the inline engine and in a worker.

/** Comparison of a data word in a declarative wait (evaluated by any thread from the buffer). */
export type WaitOp = "eq" | "ne" | "ge" | "lt";
export interface WaitCond {
  word: number;
  op: WaitOp;
  value: number;
}
export const WAIT_OPS: WaitOp[] = ["eq", "ne", "ge", "lt"];

export type IpiTarget = number | "others" | "all" | "self";

export type Step =
  | { k: "load"; word: number }
  | { k: "store"; word: number; value: number }
  | {
      k: "rmw";
      word: number;
      op: "add" | "xchg" | "cmpxchg";
      value: number;
      expected?: number;
      /** The routine receives 0, not the old value (atomicAdd): see there. */
      discard?: true;
    }
  | { k: "writeCode"; addr: number; bytes: number[] }
  | { k: "readCode"; addr: number }
  | { k: "serialize"; how: "cpuid" | "serialize" | "iret-to-self" }
  | { k: "cli" }
  | { k: "sti" }
  | { k: "ipi"; target: IpiTarget; vector: number }
  | { k: "nmiIpi"; target: IpiTarget }
  | { k: "iret" }
  | { k: "int3" }
  | { k: "call"; addr: number }
  | { k: "wait"; conds: WaitCond[] }
  | { k: "clearMcip" }
  | { k: "unhandledBp" }
  | { k: "mark"; mark: Mark; value: number };

/** A routine: yields steps, receives each step's result (loads and read-modify-writes return a value). */
export type Routine<R = void> = Generator<Step, R, number>;

/** Points a routine marks in the event log; the invariants read them. */
export enum Mark {
  NmiService = 1, // the OS's real NMI service starts (P2)
  PatchBegin = 2,
  PatchEnd = 3,
  ProbeBegin = 4, // CPU 0 calls the patched function after the patch (P6)
  ProbeEnd = 5,
  NmiSwallowed = 6, // a mask callback consumed an NMI
  NmiRecorded = 7, // a mask callback recorded an NMI for replay
  BpSite = 8, // a #BP handler recognised a patch site
  RepeatNmi = 9, // Linux's nested-NMI guard repeats the outer handler
  McService = 10,
  Rendezvous = 11,
  EmbeddedBreakpoint = 12, // Xen do_int3 resumed past an int3 nobody claimed (value: its address)
  Int3Removed = 13, // a #BP handler found the int3 gone and backs up to it (value: its address)
  KprobeHit = 14, // kprobe_int3_handler: an int3 at the probe (value: where the CPU continues)
  GracePeriodBegin = 15, // synchronize_rcu_tasks() starts waiting
  GracePeriodEnd = 16, // every other CPU has passed a quiescent point since it began
}

export const load = (word: number): Step => ({ k: "load", word });
export const store = (word: number, value: number): Step => ({ k: "store", word, value });
/** atomic_fetch_add(): adds `value` and returns the word's old value to the routine. */
export const add = (word: number, value: number): Step => ({ k: "rmw", word, op: "add", value });
/**
 * atomic_add() / atomic_inc() / cpumask_set_cpu(): adds `value` and returns nothing (the routine
 * receives 0). Use it where the old value is not used: a routine's state is known to the search only
 * by what it was handed (model/cpu Context trail), so an ignored old value would still tell apart
 * runs that differ only in the order CPUs counted in, and state caching would explore each order.
 */
export const atomicAdd = (word: number, value: number): Step => ({
  k: "rmw",
  word,
  op: "add",
  value,
  discard: true,
});
export const xchg = (word: number, value: number): Step => ({ k: "rmw", word, op: "xchg", value });
export const cmpxchg = (word: number, expected: number, value: number): Step => ({
  k: "rmw",
  word,
  op: "cmpxchg",
  value,
  expected,
});
export const writeCode = (addr: number, bytes: number[]): Step => {
  if (![1, 2, 4, 8].includes(bytes.length)) {
    throw new Error(`a code store is 1, 2, 4 or 8 bytes wide, not ${bytes.length}: split it into stores`);
  }
  return { k: "writeCode", addr, bytes };
};
export const readCode = (addr: number): Step => ({ k: "readCode", addr });
export const cpuid = (): Step => ({ k: "serialize", how: "cpuid" });
export const syncCore = (): Step => ({ k: "serialize", how: "iret-to-self" });
export const cli = (): Step => ({ k: "cli" });
export const sti = (): Step => ({ k: "sti" });
export const sendIpi = (target: IpiTarget, vector: number): Step => ({ k: "ipi", target, vector });
export const sendNmi = (target: IpiTarget): Step => ({ k: "nmiIpi", target });
export const iret = (): Step => ({ k: "iret" });
export const int3 = (): Step => ({ k: "int3" });
export const call = (addr: number): Step => ({ k: "call", addr });
export const clearMcip = (): Step => ({ k: "clearMcip" });
/** The OS found no owner for an int3: Xen's debugger_trap_fatal, Linux's die() (P4). */
export const unhandledBp = (): Step => ({ k: "unhandledBp" });
export const mark = (m: Mark, value = 0): Step => ({ k: "mark", mark: m, value });
export const waitUntil = (...conds: WaitCond[]): Step => {
  if (conds.length < 1 || conds.length > 2) throw new Error("waitUntil takes one or two conditions");
  return { k: "wait", conds };
};
export const eq = (word: number, value: number): WaitCond => ({ word, op: "eq", value });
export const ne = (word: number, value: number): WaitCond => ({ word, op: "ne", value });
export const ge = (word: number, value: number): WaitCond => ({ word, op: "ge", value });

/** Byte-by-byte copy into code, one single-byte store per step (Xen's arch_livepatch_apply memcpy). */
export function* memcpyCode(addr: number, bytes: number[]): Routine {
  for (let i = 0; i < bytes.length; i++) yield writeCode(addr + i, [bytes[i]]);
}

const STEP_KINDS = new Set([
  "load",
  "store",
  "rmw",
  "writeCode",
  "readCode",
  "serialize",
  "cli",
  "sti",
  "ipi",
  "nmiIpi",
  "iret",
  "int3",
  "call",
  "wait",
  "clearMcip",
  "unhandledBp",
  "mark",
]);

/**
 * Rejects anything a routine yields that is not a step, naming what it was, and a step on a data word
 * the machine does not have (`dataWords` of them: 0 to dataWords-1). `where` names the routine, the CPU
 * and the step; it is called only to build the message.
 */
export function checkStep(value: unknown, dataWords: number, where: () => string): Step {
  if (typeof value === "object" && value !== null && STEP_KINDS.has((value as { k?: string }).k as string)) {
    const step = value as Step;
    const words =
      step.k === "load" || step.k === "store" || step.k === "rmw"
        ? [step.word]
        : step.k === "wait"
          ? step.conds.map((c) => c?.word)
          : [];
    for (const word of words) {
      if (Number.isInteger(word) && word >= 0 && word < dataWords) continue;
      throw new Error(
        `${where()} yielded a ${step.k} of data word ${String(word)}, which this machine does not have: its data words are 0 to ${dataWords - 1}, the common ones (ctx.spec.common) and those the protocol's setup allocates with WordTable.alloc`,
      );
    }
    return step;
  }
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  throw new Error(`${where()} yielded ${shown}, which is not a step (use the helpers of model/routine)`);
}

/** Named data words, allocated in a fixed order while a machine is built (same indices in every thread). */
export class WordTable {
  readonly names: string[] = [];
  readonly initial: number[] = [];
  /** Name to word: a duplicate is found without scanning the table, so allocation stays linear. */
  private readonly index = new Map<string, number>();
  alloc(name: string, initial = 0): number {
    if (this.index.has(name)) throw new Error(`data word '${name}' is allocated twice`);
    const word = this.names.length;
    this.index.set(name, word);
    this.names.push(name);
    this.initial.push(initial);
    return word;
  }
  /** One word per CPU: `name[i]`. */
  allocPerCpu(name: string, cpus: number, initial = 0): number[] {
    return Array.from({ length: cpus }, (_, i) => this.alloc(`${name}[${i}]`, initial));
  }
  /** The word allocated as `name` (`livepatch_handover.armed`, `nmi_callback`, ...). */
  word(name: string): number {
    const word = this.index.get(name);
    if (word === undefined)
      throw new Error(`no data word '${name}' on this machine; its words are: ${this.names.join(", ")}`);
    return word;
  }
  name(word: number): string {
    return this.names[word] ?? `word#${word}`;
  }
}
