// Preparing a thread for machines (its catalog of protocols and scenarios) and a buffer for one run,
// the same way for every engine.

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

/**
 * What a thread runs before it builds a machine, so that the protocols and scenarios a machine names
 * are known there: the module `module` (a file URL) is imported and its `setupThread(data)` export
 * called. The layer that loads user modules (session/modules) makes these; the engines only carry
 * them to their threads, so that this folder does not depend on it.
 */
export interface ThreadSetup {
  module: string;
  data: unknown;
}

/** Runs `setup` in this thread (its module's setupThread makes the thread's catalog; it is idempotent). */
export async function prepareThread(setup: ThreadSetup | undefined): Promise<void> {
  if (!setup) return;
  const mod = (await import(setup.module)) as { setupThread?: (data: unknown) => Promise<void> | void };
  if (typeof mod.setupThread !== "function")
    throw new Error(`thread setup module ${setup.module} has no setupThread export`);
  await mod.setupThread(setup.data);
}

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
