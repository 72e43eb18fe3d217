// Preparing a buffer for one run, the same way for every engine.

import { buildMachine, layoutFor } from "../model/machine.js";
import { H, MachineMemory, RunStatus } from "../model/memory.js";
import type { MachineSpec, RunConfig } from "../model/types.js";
import type { Scheduler } from "./strategies/scheduler.js";
import { loadPct, loadTape, type PctParams } from "./strategies/tape.js";

/**
 * What decides a run's choices: a tape or PCT parameters (loaded into the buffer, so every engine can
 * run them), or a live Scheduler object (the inline engine only: it lives in this thread).
 */
export type Strategy = BufferStrategy | { scheduler: Scheduler };
/** A strategy that lives in the buffer: a tape, or PCT parameters. */
export type BufferStrategy = { tape: readonly number[] } | { pct: PctParams };

const specs = new Map<string, MachineSpec>();

/** Builds (once per thread and configuration) the machine for a run configuration. */
export function machineFor(config: RunConfig): MachineSpec {
  const key = JSON.stringify(config);
  let spec = specs.get(key);
  if (!spec) {
    spec = buildMachine(config);
    specs.set(key, spec);
  }
  return spec;
}

/** Resets `mem` for a run of `spec` under `strategy`. */
export function prepare(mem: MachineMemory, spec: MachineSpec, strategy: Strategy): void {
  const hw = spec.config.hardware;
  mem.reset(spec.image);
  mem.data.set(spec.words.initial);
  const h = mem.header;
  h[H.stepBound] = hw.stepBound;
  h[H.nmiBudget] = hw.nmis;
  h[H.mceBudget] = hw.mces;
  h[H.mceBroadcast] = (hw.mceDelivery ?? "broadcast") === "broadcast" ? 1 : 0;
  h[H.stiShadow] = hw.stiShadow ? 1 : 0;
  h[H.status] = RunStatus.Running;
  h[H.token] = -2;
  if ("tape" in strategy) loadTape(mem, strategy.tape);
  else if ("pct" in strategy) loadPct(mem, strategy.pct);
  else loadTape(mem, []);
}

export function memoryFor(spec: MachineSpec, buffer?: SharedArrayBuffer): MachineMemory {
  return new MachineMemory(layoutFor(spec), buffer);
}
