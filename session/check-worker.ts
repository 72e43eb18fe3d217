// The Piscina worker of the check pool (session/check-pool): every unit of work that runs protocol
// code runs here, off the main thread — loading protocol modules (their top-level code), building a
// machine (the protocol's setup), exploring one matrix cell with check(), and replaying a
// counterexample for its report and its confirmation on the threaded engine. JavaScript cannot
// interrupt code that never yields; a watchdog on the main thread can still stop this thread, and
// reads where it was from the task's progress block (model/progress), which the model writes.
import { H, RunStatus } from "../model/memory.js";
import { notePhase, noteRun, Phase, progressBlock, reportProgressTo } from "../model/progress.js";
import { PROTOCOLS } from "../model/protocols/index.js";
import { SCENARIOS } from "../model/scenarios/index.js";
import type { Expected, Hardware, RunConfig } from "../model/types.js";
import { type CheckOptions, check, resolveConfig, type Verdict } from "../properties/check.js";
import type { PropertyId, Violation } from "../properties/invariants.js";
import { buildReportModel, type ReportModel, renderReport, replayTape, statusName } from "../report/index.js";
import { type Engine, type EngineName, inlineEngine } from "../workers/engine.js";
import { runInline } from "../workers/inline.js";
import { machineFor } from "../workers/setup.js";
import { threadId } from "../workers/thread-time.js";
import { createThreadedEngine, type ThreadedEngine } from "../workers/threaded.js";
import {
  loadProtocolModules,
  loadScenarioSources,
  originOf,
  type ScenarioSource,
  threadSetup,
} from "./modules.js";

/** What the main thread needs to know of a protocol, as plain data (no routines). */
export interface ProtocolInfo {
  name: string;
  summary: string;
  expected: Record<string, Expected>;
  /** "built-in", or the path of the module that exported it. */
  origin: string;
}

/** What the main thread needs to know of a scenario. */
export interface ScenarioInfo {
  name: string;
  summary: string;
  /** The scenario's own event budgets (the hardware defaults a run configuration starts from). */
  nmis: number;
  mces: number;
  /** "built-in", or the path of the module that exported it. */
  origin: string;
}

interface TaskBase {
  /** User protocol modules (absolute paths), loaded before anything else. */
  modules: string[];
  /** Scenarios defined on the command line, built after the modules (none when left out). */
  scenarioSources?: ScenarioSource[];
  /** The task's progress block (model/progress), watched by the main thread. */
  progress: SharedArrayBuffer;
  /** The threaded engine's own watchdog, for the machines this task runs on it. */
  watchdogMs: number;
}

/** The options of one check, as check() takes them, without the engine (named instead). */
export type UnitCheckOptions = Omit<CheckOptions, "engine" | "hardware"> & { hardware: Partial<Hardware> };

export type UnitTask =
  | (TaskBase & { kind: "describe" })
  | (TaskBase & { kind: "check"; options: UnitCheckOptions; engine: EngineName })
  | (TaskBase & {
      kind: "report";
      config: RunConfig;
      tape: number[];
      /** Judge only this property (a counterexample's); every property otherwise. */
      property?: PropertyId;
      color: boolean;
      /** Also answer with the report's model, for an HTML page. */
      html?: boolean;
      /** The --module files and --elf options the replay command needs (report/model replayCommand). */
      replayArguments?: string;
    })
  /** Runs each tape on the threaded engine and compares its log with the inline engine's, in turn. */
  | (TaskBase & { kind: "confirm"; runs: Array<{ config: RunConfig; tape: number[] }> });

/** How a counterexample fared on the threaded engine (a worker thread per simulated CPU). */
export interface Confirmation {
  threads: number;
  /** Log records compared, all identical unless `difference` says otherwise. */
  records: number;
  ms: number;
  /** Where the threaded engine's log first differs from the inline engine's, or why it has none. */
  difference?: string;
}

export type UnitResult =
  | { kind: "describe"; protocols: ProtocolInfo[]; scenarios: ScenarioInfo[] }
  | { kind: "check"; verdict: Verdict }
  /** The machine could not be built (a setup that throws, hardware it refuses): nothing was run. */
  | { kind: "build-error"; message: string }
  /** A protocol module failed to load (it throws, exports no protocol, or an invalid one). */
  | { kind: "module-error"; message: string }
  | {
      kind: "report";
      text: string;
      status: string;
      violations: Violation[];
      error?: string;
      tapeLength: number;
      /** The report's model (asked for with `html`): the text above is printed from it. */
      model?: ReportModel;
    }
  | { kind: "confirm"; confirmations: Confirmation[] };

/** This thread's threaded engine, made on first use and kept for the thread's life. */
let threaded: { key: string; engine: ThreadedEngine } | undefined;

function threadedEngine(task: TaskBase): ThreadedEngine {
  const { modules, scenarioSources, watchdogMs } = task;
  const key = JSON.stringify([modules, scenarioSources, watchdogMs]);
  if (threaded?.key !== key) {
    void threaded?.engine.close();
    threaded = {
      key,
      engine: createThreadedEngine({
        setup: threadSetup({ modules, scenarioSources }),
        parallel: 1,
        watchdogMs,
      }),
    };
  }
  return threaded.engine;
}

/** Ends this thread's threaded engine (the pool's threads end with their own; tests call this). */
export async function closeUnitEngines(): Promise<void> {
  const t = threaded;
  threaded = undefined;
  await t?.engine.close();
}

/**
 * The threaded engine as check() sees it, with the phase set while a machine runs: its own watchdog
 * watches the machine then (this thread only waits) and moves this thread's heartbeat as the
 * machine's steps move, and each finished run moves it too.
 */
function watchedThreaded(task: TaskBase): Engine {
  const engine = threadedEngine(task);
  return {
    name: "threaded",
    run: async (config, strategy) => {
      notePhase(Phase.Threaded);
      try {
        return await engine.run(config, strategy);
      } finally {
        notePhase(Phase.Running);
        noteRun(); // the run's CPUs ran in other threads: count it here, for the progress line
      }
    },
    close: async () => {},
  };
}

export default async function runUnit(task: UnitTask): Promise<UnitResult> {
  // With this thread's id in the block, the pool's watchdog counts a silence in its CPU time.
  reportProgressTo(progressBlock(task.progress), threadId());
  try {
    notePhase(Phase.Loading);
    try {
      await loadProtocolModules(task.modules);
      loadScenarioSources(task.scenarioSources);
    } catch (e) {
      return { kind: "module-error", message: (e as Error).message };
    }
    if (task.kind === "describe") {
      return {
        kind: "describe",
        protocols: PROTOCOLS.map((p) => ({
          name: p.name,
          summary: p.summary,
          expected: p.expected,
          origin: originOf("protocol", p.name),
        })),
        scenarios: SCENARIOS.map((x) => ({
          name: x.name,
          summary: x.summary,
          nmis: x.nmis,
          mces: x.mces,
          origin: originOf("scenario", x.name),
        })),
      };
    }
    if (task.kind === "check") return await checkUnit(task);
    if (task.kind === "confirm") return await confirmUnit(task);
    return await reportUnit(task);
  } finally {
    reportProgressTo(null);
  }
}

async function checkUnit(task: Extract<UnitTask, { kind: "check" }>): Promise<UnitResult> {
  const { options } = task;
  notePhase(Phase.Building);
  try {
    machineFor(resolveConfig(options.protocol, options.scenario, options.hardware));
  } catch (e) {
    return { kind: "build-error", message: (e as Error).message };
  }
  notePhase(Phase.Running);
  const engine = task.engine === "threaded" ? watchedThreaded(task) : inlineEngine;
  return { kind: "check", verdict: await check({ ...options, engine }) };
}

async function reportUnit(task: Extract<UnitTask, { kind: "report" }>): Promise<UnitResult> {
  const { tape } = task;
  notePhase(Phase.Building);
  let config: RunConfig;
  try {
    config = resolveConfig(task.config.protocol, task.config.scenario, task.config.hardware);
    machineFor(config);
  } catch (e) {
    return { kind: "build-error", message: (e as Error).message };
  }
  notePhase(Phase.Running);
  const rep = replayTape(config, tape, task.property);
  const model = buildReportModel(rep, task.property, task.replayArguments);
  return {
    kind: "report",
    text: renderReport(model, task.color),
    ...(task.html ? { model } : {}),
    status: statusName(rep.status),
    violations: rep.violations,
    error: rep.error,
    tapeLength: tape.length,
  };
}

/**
 * Confirmation, one run after the other on this thread's threaded engine: one engine (a thread per
 * simulated CPU) serves every counterexample of a command.
 */
async function confirmUnit(task: Extract<UnitTask, { kind: "confirm" }>): Promise<UnitResult> {
  const confirmations: Confirmation[] = [];
  for (const { config, tape } of task.runs) {
    notePhase(Phase.Building);
    machineFor(config);
    notePhase(Phase.Running);
    confirmations.push(await confirm(config, tape, task));
  }
  return { kind: "confirm", confirmations };
}

/** Runs the tape on the threaded engine and compares its log with the inline engine's, word for word. */
async function confirm(config: RunConfig, tape: number[], task: TaskBase): Promise<Confirmation> {
  const inline = runInline(config, { tape }, true).mem;
  const expected = inline.log.subarray(0, inline.header[H.logCount] * 8);
  const engine = threadedEngine(task);
  const threads = config.hardware.cpus;
  const started = performance.now();
  notePhase(Phase.Threaded);
  const r = await engine.run(config, { tape });
  notePhase(Phase.Running);
  const ms = performance.now() - started;
  const records = expected.length / 8;
  if (r.status === RunStatus.Error)
    return {
      threads,
      records: 0,
      ms,
      difference: `the threaded run failed: ${r.error ?? "no reason given"}`,
    };
  const got = r.mem.log.subarray(0, r.mem.header[H.logCount] * 8);
  for (let i = 0; i < Math.max(got.length, expected.length); i += 8) {
    for (let k = 0; k < 8; k++) {
      if (got[i + k] === expected[i + k]) continue;
      return {
        threads,
        records,
        ms,
        difference: `record ${i / 8} differs (of ${records} inline, ${got.length / 8} threaded)`,
      };
    }
  }
  return { threads, records, ms };
}
