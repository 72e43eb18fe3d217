// A harness for litmus machines: a tiny image, a per-CPU program, the protocol hooks a test needs,
// run on the inline engine with a given tape. Tests assert on the decoded event log and on the
// per-CPU words of the final state.
import { CONTEXT_NAMES, Ev } from "../../dist/model/events.js";
import type { DataDesc, FunctionDesc } from "../../dist/model/image.js";
import { defineMachine } from "../../dist/model/machine.js";
import type { MachineMemory, RunStatus } from "../../dist/model/memory.js";
import type { Routine } from "../../dist/model/routine.js";
import type {
  FetchModel,
  MachineSpec,
  MceDelivery,
  OsName,
  Protocol,
  RoutineContext,
  Scenario,
} from "../../dist/model/types.js";
import { hex } from "../../dist/model/x86.js";
import { type LogRecord, readLog } from "../../dist/properties/invariants.js";
import { runSpec } from "../../dist/workers/inline.js";
import { memoryFor } from "../../dist/workers/setup.js";

/** What a litmus program and its hooks can see: data words by name, code addresses, the buffer. */
export interface LitmusEnv {
  /** Data words allocated for the test, by name. */
  w: Record<string, number>;
  /** Address of a symbol (or `symbol+offset`) of the image. */
  addr(symbol: string): number;
  /** The run's buffer: tests may read it between steps to probe per-CPU words (inline engine only). */
  mem: MachineMemory;
  spec: MachineSpec;
}

export interface LitmusDef {
  /** Functions routines may write besides the site (default: every function of the image). */
  writable?: string[];
  cpus: number;
  fetch?: FetchModel;
  /** The OS model (NMI entry): xen by default. */
  os?: OsName;
  nmis?: number;
  mces?: number;
  /** Machine-check delivery: local (one CPU) by default in litmus machines, broadcast on request. */
  mceDelivery?: MceDelivery;
  stiShadow?: boolean;
  stepBound?: number;
  /** Functions added to the default image; one with a default's name replaces it. */
  functions?: FunctionDesc[];
  /** Data symbols (function pointers) of the image. */
  data?: DataDesc[];
  /** The patch site (P1 oracle) and its payload; by default the 5-byte NOP at `site`. */
  patch?: { target: string; payload: string };
  nmiService?: string;
  mceService?: string;
  /** Data words to allocate (all start at 0 unless given as [name, initial]). */
  words?: Array<string | [string, number]>;
  /** Installed as Xen's nmi_callback (the callback word starts non-zero); returns 1 to consume the NMI. */
  nmiCallback?: (ctx: RoutineContext, env: LitmusEnv) => Routine<number>;
  /** #BP hook: returns 1 to claim the int3. */
  bpHandler?: (ctx: RoutineContext, env: LitmusEnv) => Routine<number>;
  ipiHandler?: (ctx: RoutineContext, vector: number, env: LitmusEnv) => Routine;
  /** Each CPU's whole program (switch on ctx.cpu). */
  program: (ctx: RoutineContext, env: LitmusEnv) => Routine;
}

/**
 * The default image: an NMI service, a #MC service, a workload, a patch site (a 5-byte NOP followed
 * by `ret`) and a payload, so every machine has the symbols defineMachine requires.
 */
export const DEFAULT_FUNCTIONS: FunctionDesc[] = [
  { name: "nmi_service", code: ["nop", "ret"] },
  { name: "mce_service", code: ["nop", "ret"] },
  { name: "work", code: ["nop", "ret"] },
  { name: "site", code: ["nop5", "ret"] },
  { name: "payload", payload: true, code: ["nop", "ret"] },
];

export interface LitmusRun {
  spec: MachineSpec;
  mem: MachineMemory;
  status: RunStatus;
  error?: string;
  log: LogRecord[];
  w: Record<string, number>;
  /** Records of one kind, optionally of one CPU. */
  of(kind: Ev, cpu?: number): LogRecord[];
  /** Index in the log of the n-th record (0-based) of a kind on a CPU; -1 if there is none. */
  at(kind: Ev, cpu: number, n?: number): number;
  /** Per-CPU hardware word at the end of the run. */
  cpuWord(cpu: number, word: number): number;
  /** The log as text, for failure messages and for finding tapes. */
  dump(): string;
}

export interface Litmus {
  spec: MachineSpec;
  env: LitmusEnv;
  run(tape: readonly number[]): LitmusRun;
}

function mergeFunctions(extra: FunctionDesc[] = []): FunctionDesc[] {
  const names = new Set(extra.map((f) => f.name));
  return [...DEFAULT_FUNCTIONS.filter((f) => !names.has(f.name)), ...extra];
}

/** Builds a litmus machine; `run(tape)` runs it in a fresh buffer. */
export function litmus(def: LitmusDef): Litmus {
  const w: Record<string, number> = {};
  const env = { w } as LitmusEnv;
  const protocol: Protocol = {
    name: "litmus",
    summary: "litmus test",
    origin: "test",
    os: def.os ?? "xen",
    expected: {},
    setup(spec, table) {
      for (const entry of def.words ?? []) {
        const [name, initial] = typeof entry === "string" ? [entry, 0] : entry;
        w[name] = table.alloc(name, initial);
      }
      if (def.nmiCallback) table.initial[spec.common.nmiCallback] = 1;
      return undefined;
    },
    // biome-ignore lint/correctness/useYield: never run: the scenario's program replaces the default routine
    *master() {
      throw new Error("a litmus machine has no master routine");
    },
  };
  if (def.nmiCallback) {
    const hook = def.nmiCallback;
    protocol.nmiCallback = (ctx) => hook(ctx, env);
  }
  if (def.bpHandler) {
    const hook = def.bpHandler;
    protocol.bpHandler = (ctx) => hook(ctx, env);
  }
  if (def.ipiHandler) {
    const hook = def.ipiHandler;
    protocol.ipiHandler = (ctx, vector) => hook(ctx, vector, env);
  }
  const functions = mergeFunctions(def.functions);
  const scenario: Scenario = {
    name: "litmus",
    summary: "litmus test",
    functions,
    data: def.data,
    patch: def.patch ?? { target: "site", payload: "payload" },
    nmiService: def.nmiService ?? "nmi_service",
    mceService: [def.mceService ?? "mce_service"],
    workload: "work",
    eventRoots: [def.nmiService ?? "nmi_service", def.mceService ?? "mce_service"],
    annotatedBlacklist: [],
    // Litmus machines are tiny: every function may be written and every fetch is a scheduling point.
    writable: def.writable ?? functions.map((f) => f.name),
    iterations: 1,
    nmis: def.nmis ?? 0,
    mces: def.mces ?? 0,
    program: (ctx) => def.program(ctx, env),
  };
  const spec = defineMachine(
    {
      protocol: "litmus",
      scenario: "litmus",
      hardware: {
        cpus: def.cpus,
        fetch: def.fetch ?? "bytewise",
        nmis: def.nmis ?? 0,
        mces: def.mces ?? 0,
        stepBound: def.stepBound ?? 2000,
        os: def.os,
        mceDelivery: def.mceDelivery ?? "local",
        stiShadow: def.stiShadow,
      },
    },
    protocol,
    scenario,
  );
  env.spec = spec;
  env.addr = (symbol) => spec.image.resolve(symbol);
  return {
    spec,
    env,
    run(tape) {
      const mem = memoryFor(spec);
      env.mem = mem;
      const result = runSpec(spec, { tape }, mem);
      const log = readLog(mem);
      return {
        spec,
        mem,
        status: result.status,
        error: result.error,
        log,
        w,
        of: (kind, cpu) => log.filter((r) => r.kind === kind && (cpu === undefined || r.cpu === cpu)),
        at(kind, cpu, n = 0) {
          const hits = log.filter((r) => r.kind === kind && r.cpu === cpu);
          return hits[n]?.index ?? -1;
        },
        cpuWord: (cpu, word) => mem.cpuWord(cpu, word),
        dump: () => dumpLog(log),
      };
    },
  };
}

/** One line per record: index, step, CPU, kind and fields. */
export function dumpLog(log: LogRecord[]): string {
  return log
    .map((r) => {
      const kind = Ev[r.kind] ?? `kind${r.kind}`;
      let what = `addr=0x${r.addr.toString(16)} a=${r.a} b=${r.b} c=${r.c} d=${r.d}`;
      if (r.kind === Ev.Fetch) what = `0x${r.addr.toString(16)}: ${hex([r.a])} (writer ${r.b}, seq ${r.c})`;
      if (r.kind === Ev.Iret) what = `from ${CONTEXT_NAMES[r.a]} unblocked=${r.b} nmiLive=${r.c}`;
      return `#${r.index} step ${r.step} cpu ${r.cpu} ${kind} ${what}`;
    })
    .join("\n");
}

/** The kinds of a CPU's records, in order, keeping only `kinds` (to compare against an expected trace). */
export function trace(run: LitmusRun, cpu: number, kinds: Ev[]): string[] {
  return run.log.filter((r) => r.cpu === cpu && kinds.includes(r.kind)).map((r) => Ev[r.kind]);
}
