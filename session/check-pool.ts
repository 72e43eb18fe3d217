// The check pool: a Piscina pool of worker threads (session/check-worker) that run every unit of work
// touching protocol code — module loading, machine building, a matrix cell's exploration, a
// counterexample's report and its confirmation — so that the main thread stays free to watch them.
// Units run in parallel, one per thread. A watchdog here reads each running unit's progress block
// (model/progress); when its heartbeat stops for the watchdog time, the unit's thread is terminated
// and the unit fails with a StuckError naming the CPU, the routine and the step it was at. The time
// is the unit thread's own CPU time (workers/thread-time), not the wall clock's: on a busy host a
// thread can wait for a core for seconds, through no fault of the protocol. And only a silence
// inside routine code is a routine's: the checker's own work between routine steps (a long search's
// bookkeeping, a garbage collection) gets a much longer time, and is not blamed on a protocol
// should it ever exceed it.
import { existsSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import {
  PG,
  Phase,
  PROGRESS_WORDS,
  progressBlock,
  readProgress,
  routineLabel,
  type StuckAt,
} from "../model/progress.js";
import { PROTOCOLS } from "../model/protocols/index.js";
import type { EngineName } from "../workers/engine.js";
import { QuietMeter, seconds } from "../workers/thread-time.js";
import { DEFAULT_WATCHDOG_MS } from "../workers/threaded.js";
import type { UnitResult, UnitTask } from "./check-worker.js";
import type { ScenarioSource } from "./modules.js";

/** A task as the caller gives it: the pool adds the progress block, the modules and the watchdog. */
export type UnitRequest = UnitTask extends infer T
  ? T extends UnitTask
    ? Omit<T, "progress" | "modules" | "scenarioSources" | "watchdogMs">
    : never
  : never;

/** What a unit is about, for the watchdog's message. */
export interface UnitLabel {
  protocol?: string;
  scenario?: string;
}

export interface CheckPoolOptions {
  /** Units at once: one worker thread each. */
  workers: number;
  /** User protocol modules (absolute paths), loaded by every task before anything else. */
  modules?: string[];
  /** Scenarios defined on the command line, built by every task after the modules. */
  scenarioSources?: ScenarioSource[];
  /** A unit whose heartbeat stands still for this much of its thread's own CPU time is stopped. */
  watchdogMs?: number;
}

/**
 * Whose code made no progress: a user module's (its top-level code, a protocol's setup or routine),
 * or livepatch-check's own (a built-in protocol, the OS routines, the checker's work): a bug to report.
 */
export type Culprit = "module" | "checker";

/** A unit stopped by the watchdog. `at` is where its thread was; the message says it in words. */
export class StuckError extends Error {
  constructor(
    message: string,
    readonly at: StuckAt,
    readonly culprit: Culprit,
  ) {
    super(message);
  }
}

const TICK_MS = 50;
/**
 * A fresh thread first loads the model and iced-x86, which takes a second or so of CPU time. A unit
 * not yet started by its thread gets this much of the process's CPU time (the thread has not said
 * which it is yet).
 */
const STARTUP_MS = 30_000;
/**
 * Between two routine steps the thread does the checker's own work: a search's bookkeeping (doubling
 * a state cache of millions of states takes seconds), judging a run, a garbage collection. It is not
 * a routine's, and gets this many times the watchdog time (a minute at least) before it is taken for
 * a bug of the checker.
 */
const OWN_WORK_FACTOR = 12;
const OWN_WORK_MS = 60_000;
/** The built-in protocols' names (this thread loads no module: any other name is a module's). */
const BUILT_IN_PROTOCOLS = new Set(PROTOCOLS.map((p) => p.name));

/** Memory a worker thread of the check pool may take (V8 heap, machine buffers of every cell). */
const WORKER_BYTES = 256 * 2 ** 20;
/** And each thread of a threaded-engine machine inside it. */
const CPU_THREAD_BYTES = 64 * 2 ** 20;

/**
 * How much quiet time (workers/thread-time) a unit's thread may have where its progress block says
 * it is, with the watchdog time `watchdogMs`.
 */
export function quietLimit(at: Pick<StuckAt, "phase" | "inRoutine">, watchdogMs: number): number {
  switch (at.phase) {
    case Phase.Starting:
      return Math.max(STARTUP_MS, watchdogMs);
    case Phase.Threaded:
      // The threaded machine's own watchdog ends the run with a message; this is the last resort
      // should this thread itself not come back to notice.
      return STARTUP_MS + 2 * watchdogMs;
    case Phase.Running:
      return at.inRoutine ? watchdogMs : Math.max(OWN_WORK_MS, OWN_WORK_FACTOR * watchdogMs);
    default:
      return watchdogMs;
  }
}

/**
 * The most workers that pay on this host: one per core (the work is CPU-bound; more threads than
 * cores only take turns), and no more than half the memory holds. With the threaded engine each
 * worker also runs a thread per simulated CPU.
 */
export function maxWorkers(engine: EngineName, cpus: number): { max: number; why: string } {
  const cores = availableParallelism();
  const each = WORKER_BYTES + (engine === "threaded" ? cpus * CPU_THREAD_BYTES : 0);
  const byMemory = Math.max(1, Math.floor(totalmem() / 2 / each));
  const max = Math.max(1, Math.min(cores, byMemory));
  const gib = (totalmem() / 2 ** 30).toFixed(1);
  return {
    max,
    why: `this host has ${cores} core${cores === 1 ? "" : "s"}, and half its ${gib} GiB of memory holds ${byMemory} worker${byMemory === 1 ? "" : "s"} of about ${Math.round(each / 2 ** 20)} MiB`,
  };
}

/**
 * Workers by default: every core for inline machines. A threaded machine keeps about one core busy
 * (its CPUs take turns) but its handoffs suffer when threads outnumber cores, so as many machines as
 * the cores hold threads for.
 */
export function defaultWorkers(engine: EngineName, cpus: number): number {
  const { max } = maxWorkers(engine, cpus);
  if (engine === "inline") return max;
  return Math.max(1, Math.min(max, Math.floor(availableParallelism() / cpus)));
}

/** The compiled worker, beside this file in dist/ (everything, the tests included, runs from dist/). */
export function checkWorkerFile(): string {
  return join(dirname(fileURLToPath(import.meta.url)), "check-worker.js");
}

interface Running {
  kind: UnitRequest["kind"];
  startedMs: number;
  block: Int32Array;
  controller: AbortController;
  label: UnitLabel;
  beat: number;
  /** The time the unit's thread has had since its heartbeat last moved. */
  quiet: QuietMeter;
  stuck?: StuckError;
}

export class CheckPool {
  readonly workers: number;
  private readonly modules: string[];
  private readonly scenarioSources: ScenarioSource[];
  private readonly watchdogMs: number;
  private readonly pool: Piscina<UnitTask, UnitResult>;
  private readonly running = new Set<Running>();
  private readonly waiting: Array<{ start: () => void; cancel: (e: Error) => void }> = [];
  private active = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: CheckPoolOptions) {
    this.workers = opts.workers;
    this.modules = [...(opts.modules ?? [])];
    this.scenarioSources = [...(opts.scenarioSources ?? [])];
    this.watchdogMs = opts.watchdogMs ?? DEFAULT_WATCHDOG_MS;
    if (!Number.isInteger(this.workers) || this.workers < 1)
      throw new Error(`workers must be a whole number, at least 1, not ${this.workers}`);
    if (!(this.watchdogMs > 0))
      throw new Error(`watchdogMs must be a positive number, not ${this.watchdogMs}`);
    const file = checkWorkerFile();
    if (!existsSync(file))
      throw new Error(
        `the check pool's worker ${file} is missing: build with 'npm run build' (npx tsc -p .)`,
      );
    // Threads start as units need them: a single check or a replay starts one.
    this.pool = new Piscina<UnitTask, UnitResult>({
      filename: file,
      minThreads: 1,
      maxThreads: this.workers,
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
    });
  }

  /**
   * Runs one unit on a worker thread. Rejects with a StuckError when the watchdog stopped it, or with
   * the worker's own error.
   */
  async run(request: UnitRequest, label: UnitLabel = {}): Promise<UnitResult> {
    await this.slot();
    const progress = new SharedArrayBuffer(PROGRESS_WORDS * 4);
    const entry: Running = {
      kind: request.kind,
      startedMs: performance.now(),
      block: progressBlock(progress),
      controller: new AbortController(),
      label,
      beat: -1,
      quiet: new QuietMeter(),
    };
    this.running.add(entry);
    this.watch();
    try {
      const task = {
        ...request,
        progress,
        modules: this.modules,
        scenarioSources: this.scenarioSources,
        watchdogMs: this.watchdogMs,
      } as UnitTask;
      return await this.pool.run(task, { signal: entry.controller.signal });
    } catch (e) {
      throw entry.stuck ?? e;
    } finally {
      this.running.delete(entry);
      this.active--;
      this.waiting.shift()?.start();
      if (this.running.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }
  }

  /**
   * The units running now, with their progress blocks, which their threads write as they go (runs,
   * executions, the part of the check): what a progress line shows (cli/progress.ts).
   */
  runningUnits(): Array<{
    kind: UnitRequest["kind"];
    label: UnitLabel;
    block: Int32Array;
    startedMs: number;
  }> {
    return [...this.running].map(({ kind, label, block, startedMs }) => ({ kind, label, block, startedMs }));
  }

  /** Ends the threads (a unit still running is stopped). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const r of this.running) r.controller.abort("the check pool was closed");
    for (const w of this.waiting.splice(0)) w.cancel(new Error("the check pool was closed"));
    await this.pool.destroy().catch(() => {});
  }

  /** Waits until fewer units than workers run: a queued unit's clock must not run while it waits. */
  private slot(): Promise<void> {
    if (this.closed) return Promise.reject(new Error("the check pool was closed"));
    if (this.active < this.workers) {
      this.active++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) =>
      this.waiting.push({
        start: () => {
          this.active++;
          resolve();
        },
        cancel: reject,
      }),
    );
  }

  private watch(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  private tick(): void {
    for (const r of this.running) {
      if (r.stuck) continue;
      const beat = Atomics.load(r.block, PG.beat);
      if (beat !== r.beat) {
        r.beat = beat;
        r.quiet.reset();
        continue;
      }
      const at = readProgress(r.block);
      // A thread that has not started the unit has not said which it is: the process's time counts.
      if (at.phase === Phase.Starting) r.quiet.sampleProcess();
      else r.quiet.sampleThread(at.thread);
      // A thread that runs a threaded machine waits for the machine's threads: its waiting is no
      // sign of a stuck wait (that machine's watchdog watches them, and moves this heartbeat as they
      // progress).
      const limit = quietLimit(at, this.watchdogMs);
      if (!r.quiet.over(limit, at.phase === Phase.Threaded)) continue;
      r.stuck = new StuckError(this.describe(at, r.label, r.quiet, limit), at, this.culprit(at, r.label));
      r.controller.abort(r.stuck);
    }
  }

  private culprit(at: StuckAt, label: UnitLabel): Culprit {
    if (this.modules.length === 0) return "checker";
    const moduleProtocol = label.protocol === undefined || !BUILT_IN_PROTOCOLS.has(label.protocol);
    switch (at.phase) {
      case Phase.Loading:
        return "module";
      case Phase.Building:
        return moduleProtocol ? "module" : "checker";
      case Phase.Running:
        // The OS routines around a protocol's hooks are the checker's.
        return at.inRoutine && at.hook !== undefined && moduleProtocol ? "module" : "checker";
      default:
        return "checker";
    }
  }

  private describe(at: StuckAt, label: UnitLabel, meter: QuietMeter, limit: number): string {
    const quiet = meter.words(seconds, limit);
    const cell = label.protocol && label.scenario ? ` for ${label.protocol} on ${label.scenario}` : "";
    switch (at.phase) {
      case Phase.Starting:
        return `a worker thread did not start its work${cell} ${quiet}`;
      case Phase.Loading:
        return `loading the protocol module${this.modules.length === 1 ? "" : "s"} ${this.modules.map((m) => `'${m}'`).join(", ")} made no progress ${quiet}: its top-level code never ends`;
      case Phase.Building:
        return `building the machine${cell} made no progress ${quiet}: the protocol's setup never returns`;
      case Phase.Threaded:
        return `the thread that waits for a machine on the threaded engine${cell} made no progress ${quiet}, and the engine's own watchdog did not stop the run`;
      default: {
        if (!at.inRoutine)
          return `the check${cell} made no progress ${quiet} in livepatch-check's own work between routine steps (CPU ${at.cpu} last entered a routine at step ${at.step})`;
        const routine =
          at.kind !== undefined
            ? routineLabel(at.kind, at.hook, label.protocol ?? "?")
            : "an unknown routine";
        return `CPU ${at.cpu} made no progress ${quiet}${cell}, at step ${at.step} in ${routine}: a routine that loops without yielding never gives the CPU back`;
      }
    }
  }
}
