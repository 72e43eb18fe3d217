// A counterexample re-run for its report (SPEC §7, §8). Reports are built from a fresh inline re-run of
// the tape, which is deterministic, so a report printed from a token is the report of the original run.
import { H, RunStatus } from "../model/memory.js";
import type { MachineSpec, RunConfig } from "../model/types.js";
import {
  evaluate,
  type LogRecord,
  type PropertyId,
  readLog,
  type Violation,
} from "../properties/invariants.js";
import { runInline } from "../workers/inline.js";
import { machineFor } from "../workers/setup.js";

/** A re-run of a tape with everything a report needs. */
export interface Replay {
  config: RunConfig;
  tape: number[];
  spec: MachineSpec;
  log: LogRecord[];
  status: RunStatus;
  /** Set when the run itself failed (a routine threw): a bug, not a verdict. */
  error?: string;
  violations: Violation[];
  /** The CPU that took each step (absent for steps where the world sent an event), when known. */
  actors: Int32Array | null;
  /** The step at which the tape ran out and the fair round-robin took over (-1: it never ran out). */
  tapeEndStep: number;
}

export const STATUS_NAMES: Record<number, string> = {
  [RunStatus.Running]: "still running",
  [RunStatus.Finished]: "every CPU finished",
  [RunStatus.Deadlock]: "deadlock",
  [RunStatus.StepBound]: "step bound reached",
  [RunStatus.Crash]: "crash",
  [RunStatus.Error]: "error",
};

export function statusName(status: RunStatus): string {
  return STATUS_NAMES[status] ?? String(status);
}

/**
 * Re-runs `tape` inline and judges it (every property, or only `property`). The log does not say which
 * CPU took a step that logs nothing (a load, a wait) or that only makes another CPU's record (sending an
 * IPI), so the run notes who took each step as the engine decides it.
 */
export function replayTape(config: RunConfig, tape: readonly number[], property?: PropertyId): Replay {
  const spec = machineFor(config);
  const actors = new Int32Array(config.hardware.stepBound + 2).fill(-1);
  let tapeEndStep = -1;
  const r = runInline(config, { tape }, true, (cpu, mem) => {
    if (tapeEndStep < 0 && mem.header[H.tapePos] >= mem.header[H.tapeLen]) tapeEndStep = mem.header[H.step];
    if (cpu >= 0) actors[mem.header[H.step]] = cpu;
  });
  const log = readLog(r.mem);
  const violations = r.error ? [] : evaluate(spec, r.mem, property);
  return {
    config,
    tape: [...tape],
    spec,
    log,
    status: r.status,
    error: r.error,
    violations,
    actors: r.error ? null : actors,
    tapeEndStep,
  };
}
