// Small generated machines for the soundness tests of the search's reductions: 2-3 CPUs, CPU 0 runs one
// generated program and CPUs 1..n-1 another (the same for all of them, touching their own per-CPU
// word), an NMI callback that runs generated steps inside the NMI handler, and an event budget. The
// programs store, load, add (with or without the old value) and wait on data words, hold a loaded
// value across steps (keepingMachineArb), write bytes of the patch site, call it (fetching
// the bytes being written, from normal context or from the handler), send NMIs, and run code with a
// conditional branch (a branch choice). Handlers end in IRET (the OS's NMI and #MC entry).
import fc from "fast-check";
import { expect } from "vitest";
import type { FunctionDesc } from "../../dist/model/image.js";
import { C, CPU_WORDS, type MachineMemory } from "../../dist/model/memory.js";
import {
  add,
  atomicAdd,
  call,
  cli,
  cpuid,
  ge,
  load,
  type Routine,
  sendNmi,
  sti,
  store,
  waitUntil,
  writeCode,
} from "../../dist/model/routine.js";
import type { FetchModel, MachineSpec, MceDelivery, RoutineContext } from "../../dist/model/types.js";
import { exhaustive } from "../../dist/properties/search.js";
import { NO_REDUCTIONS, type Reductions } from "../../dist/workers/strategies/reductions.js";
import type { Bounds } from "../../dist/workers/strategies/search-tree.js";
import { type LitmusEnv, litmus } from "./litmus.js";

export type Op =
  | { k: "store"; word: number; value: number } // word -1: the CPU's own per-CPU word
  | { k: "load"; word: number }
  | { k: "add"; word: number }
  | { k: "atomicAdd"; word: number } // the routine does not receive the old value
  | { k: "keep"; word: number } // load the word and keep the value in the routine (not in the buffer)
  | { k: "put" } // store the last kept value into the CPU's own word
  | { k: "wait"; word: number; value: number } // until word >= value (may deadlock: a P5 outcome)
  | { k: "write"; offset: number } // the new byte at site+offset (0xCC when offset is 5: int3 at 0)
  | { k: "call" } // call the site: fetches of the bytes being written
  | { k: "branchy" } // call code with a conditional jump: a branch choice
  | { k: "nmi"; target: "self" | "others" | "all" | 0 }
  | { k: "cli" }
  | { k: "sti" }
  | { k: "cpuid" };

export interface MachineDesc {
  cpus: number;
  fetch: FetchModel;
  nmis: number;
  mces: number;
  /** How a machine check reaches the CPUs: every CPU (broadcast) or one (local). */
  mceDelivery: MceDelivery;
  master: Op[];
  others: Op[];
  handler: Op[];
}

const SHARED = 2; // shared words w0, w1

/**
 * Steps of a generated program. `keeps` adds the steps whose effect lies in what the routine was
 * handed (keep and put: a loaded value held across steps; atomicAdd: an old value not handed over), so that
 * a state cache that ignores the routines' trails is told apart from the right one. It is a separate
 * generator so that the machines the fixed seeds of the other tests draw stay as they were.
 */
const opArb = (inHandler: boolean, keeps = false): fc.Arbitrary<Op> =>
  fc.oneof(
    ...(keeps
      ? [
          fc.record({ k: fc.constant("keep" as const), word: fc.integer({ min: 0, max: SHARED - 1 }) }),
          fc.constant({ k: "put" as const }),
          fc.record({ k: fc.constant("atomicAdd" as const), word: fc.integer({ min: 0, max: SHARED - 1 }) }),
        ]
      : []),
    fc.record({
      k: fc.constant("store" as const),
      word: fc.integer({ min: -1, max: SHARED - 1 }),
      value: fc.integer({ min: 1, max: 2 }),
    }),
    fc.record({ k: fc.constant("load" as const), word: fc.integer({ min: -1, max: SHARED - 1 }) }),
    fc.record({ k: fc.constant("add" as const), word: fc.integer({ min: 0, max: SHARED - 1 }) }),
    ...(inHandler
      ? []
      : [
          fc.record({
            k: fc.constant("wait" as const),
            word: fc.integer({ min: 0, max: SHARED - 1 }),
            value: fc.integer({ min: 1, max: 2 }),
          }),
          fc.record({ k: fc.constant("write" as const), offset: fc.integer({ min: 0, max: 5 }) }),
          fc.record({
            k: fc.constant("nmi" as const),
            target: fc.constantFrom("self" as const, "others" as const, "all" as const, 0 as const),
          }),
          fc.constantFrom({ k: "cli" as const }, { k: "sti" as const }, { k: "cpuid" as const }),
        ]),
    fc.constant({ k: "call" as const }),
    fc.constant({ k: "branchy" as const }),
  );

const machineArbOf = (keeps: boolean): fc.Arbitrary<MachineDesc> =>
  fc.record({
    cpus: fc.integer({ min: 2, max: 3 }),
    fetch: fc.constantFrom<FetchModel>("bytewise", "bytewise", "stale"),
    nmis: fc.integer({ min: 0, max: 1 }),
    mces: fc.integer({ min: 0, max: 1 }),
    mceDelivery: fc.constantFrom<MceDelivery>("broadcast", "local"),
    master: fc.array(opArb(false, keeps), { minLength: 1, maxLength: 4 }),
    others: fc.array(opArb(false, keeps), { minLength: 1, maxLength: 3 }),
    handler: fc.array(opArb(true, keeps), { maxLength: 2 }),
  });

export const machineArb: fc.Arbitrary<MachineDesc> = machineArbOf(false);

/** A hand-written machine: 2 CPUs, bytewise fetch, no events, no handler steps unless given. */
export function machineOf(parts: Pick<MachineDesc, "master" | "others"> & Partial<MachineDesc>): MachineDesc {
  return { cpus: 2, fetch: "bytewise", nmis: 0, mces: 0, mceDelivery: "local", handler: [], ...parts };
}
/** Machines whose programs also hold loaded values (keep, put) and discard old values (atomicAdd). */
export const keepingMachineArb: fc.Arbitrary<MachineDesc> = machineArbOf(true);

const FUNCTIONS: FunctionDesc[] = [
  // jz +1; nop; ret: the direction of the jz is a branch choice.
  { name: "branchy", bytes: [0x74, 0x01, 0x90, 0xc3] },
];

function* runOps(ops: Op[], ctx: RoutineContext, env: LitmusEnv): Routine {
  const site = ctx.spec.sites[0];
  const word = (w: number) => (w < 0 ? env.w[`own[${ctx.cpu}]`] : env.w[`w${w}`]);
  let kept = 0;
  for (const op of ops) {
    switch (op.k) {
      case "store":
        yield store(word(op.word), op.value);
        break;
      case "load":
        yield load(word(op.word));
        break;
      case "add":
        yield add(word(op.word), 1);
        break;
      case "atomicAdd":
        yield atomicAdd(word(op.word), 1);
        break;
      case "keep":
        kept = yield load(word(op.word));
        break;
      case "put":
        yield store(word(-1), kept);
        break;
      case "wait":
        yield waitUntil(ge(word(op.word), op.value));
        break;
      case "write":
        yield op.offset === 5
          ? writeCode(site.address, [0xcc])
          : writeCode(site.address + op.offset, [site.newBytes[op.offset]]);
        break;
      case "call":
        yield call(site.address);
        break;
      case "branchy":
        yield call(env.addr("branchy"));
        break;
      case "nmi":
        yield sendNmi(op.target);
        break;
      case "cli":
        yield cli();
        break;
      case "sti":
        yield sti();
        break;
      case "cpuid":
        yield cpuid();
        break;
    }
  }
}

/** Builds a generated machine; CPUs 1..n-1 run `others` with their own `own[i]` word. */
export function buildGenerated(d: MachineDesc): MachineSpec {
  const words: Array<string | [string, number]> = [];
  for (let i = 0; i < SHARED; i++) words.push(`w${i}`);
  for (let c = 0; c < d.cpus; c++) words.push(`own[${c}]`);
  const m = litmus({
    cpus: d.cpus,
    fetch: d.fetch,
    nmis: d.nmis,
    mces: d.mces,
    mceDelivery: d.mceDelivery,
    stepBound: 5000,
    functions: FUNCTIONS,
    writable: ["site"],
    words,
    *nmiCallback(ctx, env) {
      yield* runOps(d.handler, ctx, env);
      return 0;
    },
    *program(ctx, env) {
      yield* runOps(ctx.cpu === 0 ? d.master : d.others, ctx, env);
    },
  });
  return m.spec;
}

/**
 * The outcome of a run: final data words, the site's bytes, each CPU's hardware flags and per-CPU
 * word, and the violated properties. With `symmetric`, CPUs 1..n-1 are sorted, so that runs that
 * differ by swapping two of them have the same outcome.
 */
export function outcomeOf(
  spec: MachineSpec,
  mem: MachineMemory,
  violated: readonly string[],
  symmetric: boolean,
): string {
  const names = spec.words.names;
  const n = spec.config.hardware.cpus;
  // Per-CPU words (`name[i]`, one per CPU: `own[i]`, the #MC path's softirq_pending.MACHINE_CHECK[i])
  // belong to their CPU's state, so that outcomes compared up to swapping CPUs swap them too.
  const perCpu = new Map<string, number[]>();
  names.forEach((name, w) => {
    const m = /^(.*)\[(\d+)\]$/.exec(name);
    if (!m || Number(m[2]) >= n) return;
    const list = perCpu.get(m[1]) ?? [];
    list[Number(m[2])] = w;
    perCpu.set(m[1], list);
  });
  const arrays = [...perCpu.values()].filter((l) => l.length === n && !l.includes(undefined as never));
  const owned = new Set(arrays.flat());
  const shared = names.map((_, w) => w).filter((w) => !owned.has(w));
  const site = spec.sites[0];
  const code = Array.from(mem.codeBytes(site.address, 5));
  const flags = [
    C.if,
    C.nmiBlocked,
    C.nmiPending,
    C.mcePending,
    C.mcip,
    C.istLive,
    C.depth,
    C.halted,
    C.done,
  ];
  const cpus: string[] = [];
  for (let c = 0; c < n; c++) {
    const t = flags.map((i) => mem.cpu[c * CPU_WORDS + i]);
    for (const list of arrays) t.push(mem.data[list[c]]);
    cpus.push(t.join(","));
  }
  const rest = cpus.slice(1);
  if (symmetric) rest.sort();
  return JSON.stringify([shared.map((w) => mem.data[w]), code, cpus[0], rest, [...violated].sort()]);
}

/** Unreduced enumerations larger than this are skipped (the soundness property tests stay quick). */
export const ENUMERATION_LIMIT = 15_000;

/** The distinct outcomes (outcomeOf) of every run an exhaustive search within `bounds` judges. */
export function searchOutcomes(d: MachineDesc, bounds: Bounds, reductions: Reductions, symmetric: boolean) {
  const spec = buildGenerated(d);
  const set = new Set<string>();
  const r = exhaustive(spec, {
    bounds,
    reductions,
    deepening: false,
    stopWhenAllViolated: false,
    maxExecutions: ENUMERATION_LIMIT,
    onExecution: (mem, _cost, violated) => set.add(outcomeOf(spec, mem, violated, symmetric)),
  });
  return { set, r };
}

/**
 * Bounds of the soundness comparisons: up to 2 preemptions, 2 events, 1 branch choice and as many
 * stale values (one draw for both, as when one bound covered both kinds: the same machines and
 * bounds for the same seed).
 */
export const boundsArb: fc.Arbitrary<Bounds> = fc
  .record({
    preemptions: fc.integer({ min: 0, max: 2 }),
    events: fc.integer({ min: 0, max: 2 }),
    branches: fc.integer({ min: 0, max: 1 }),
  })
  .map((b) => ({ ...b, stale: b.branches }));

/**
 * Over `numRuns` generated machines and bounds, the search with `reductions` reaches exactly the
 * outcomes of the unreduced enumeration (up to swapping CPUs 1..n-1 when symmetry is among them).
 * Counts the machines compared and those on which state caching pruned a run.
 */
export function sameOutcomes(
  reductions: Reductions,
  numRuns: number,
  seed: number,
  machines: fc.Arbitrary<MachineDesc> = machineArb,
  from?: number,
) {
  let compared = 0;
  let cached = 0;
  fc.assert(
    fc.property(machines, boundsArb, (d, bounds) => {
      const full = searchOutcomes(d, bounds, NO_REDUCTIONS, reductions.symmetry);
      fc.pre(full.r.complete);
      const reduced = searchOutcomes(d, bounds, reductions, reductions.symmetry);
      expect(reduced.r.complete).toBe(true);
      const missing = [...full.set].filter((o) => !reduced.set.has(o));
      const extra = [...reduced.set].filter((o) => !full.set.has(o));
      expect({ missing, extra }).toEqual({ missing: [], extra: [] });
      compared++;
      if (reduced.r.pruned.cache > 0) cached++;
    }),
    // `from`: start at the seed's machine of that index (fast-check's replay path), and report the first
    // failure as it is, unshrunk, so that a window of a large sample fails fast.
    from === undefined ? { numRuns, seed } : { numRuns, seed, path: String(from), endOnFailure: true },
  );
  return { compared, cached };
}

/** A machine with races: CPU 0 writes the site's second byte, stores and calls it; CPUs 1.. call it. */
export const RACY_MACHINE: MachineDesc = {
  cpus: 3,
  fetch: "bytewise",
  nmis: 1,
  mces: 0,
  mceDelivery: "local",
  master: [{ k: "write", offset: 1 }, { k: "store", word: 0, value: 1 }, { k: "call" }],
  others: [{ k: "call" }, { k: "add", word: 1 }],
  handler: [{ k: "call" }],
};
