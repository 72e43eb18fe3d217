// The inline engine: every CPU of a machine in this thread. The reference for determinism: the
// threaded engine must produce the same buffer, byte for byte.
import { Cpu } from "../model/cpu.js";
import { H, type MachineMemory, RunStatus } from "../model/memory.js";
import { noteRun } from "../model/progress.js";
import type { MachineSpec, RunConfig } from "../model/types.js";
import { machineFor, memoryFor, prepare, type Strategy } from "./setup.js";
import type { Scheduler } from "./strategies/scheduler.js";
import { bufferScheduler } from "./strategies/tape.js";
import { nextTurn } from "./turn.js";

export interface RunResult {
  mem: MachineMemory;
  status: RunStatus;
  /** What went wrong when status is Error. */
  error?: string;
}

const pool = new Map<string, MachineMemory>();

/** Called after each turn is decided: the CPU about to step, or -1 when the run is over. */
export type TurnObserver = (cpu: number, mem: MachineMemory) => void;

/** Runs one machine to its end. Reuses one buffer per configuration unless `fresh`. */
export function runInline(
  config: RunConfig,
  strategy: Strategy,
  fresh = false,
  onTurn?: TurnObserver,
): RunResult {
  const spec = machineFor(config);
  const key = JSON.stringify(config);
  let mem = fresh ? undefined : pool.get(key);
  if (!mem) {
    mem = memoryFor(spec);
    if (!fresh) pool.set(key, mem);
  }
  return runSpec(spec, strategy, mem, onTurn);
}

/** Runs a machine built by defineMachine (user or litmus machines) in a fresh buffer or `mem`. */
export function runSpec(
  spec: MachineSpec,
  strategy: Strategy,
  mem: MachineMemory = memoryFor(spec),
  onTurn?: TurnObserver,
): RunResult {
  const config = spec.config;
  prepare(mem, spec, strategy);
  const scheduler = "scheduler" in strategy ? strategy.scheduler : bufferScheduler(mem);
  const cpus = Array.from(
    { length: config.hardware.cpus },
    (_, i) => new Cpu(i, mem, spec, scheduler, scheduler.observer),
  );
  scheduler.attach?.(cpus);
  try {
    for (const cpu of cpus) cpu.start();
  } catch (e) {
    return failed(mem, -1, e);
  }
  return drive(mem, cpus, scheduler, onTurn);
}

/**
 * Goes on with a run whose buffer and CPUs a scheduler has put back to a point of an earlier run
 * (the exhaustive search's snapshots): the same loop as runSpec, without the reset and the start.
 */
export function continueSpec(
  mem: MachineMemory,
  cpus: readonly { step(): void }[],
  scheduler: Scheduler,
): RunResult {
  return drive(mem, cpus, scheduler);
}

function drive(
  mem: MachineMemory,
  cpus: readonly { step(): void }[],
  scheduler: Scheduler,
  onTurn?: TurnObserver,
): RunResult {
  const actions = new Int32Array(3 * cpus.length);
  let current = -1;
  try {
    for (;;) {
      current = nextTurn(mem, actions, scheduler);
      onTurn?.(current, mem);
      if (current < 0) break;
      cpus[current].step();
    }
  } catch (e) {
    return failed(mem, current, e);
  }
  noteRun();
  return { mem, status: mem.header[H.status] as RunStatus };
}

function failed(mem: MachineMemory, current: number, e: unknown): RunResult {
  mem.header[H.status] = RunStatus.Error;
  const where = current >= 0 ? `CPU ${current} at step ${mem.header[H.step]}` : "machine start";
  return { mem, status: RunStatus.Error, error: `${where}: ${(e as Error).message}` };
}
