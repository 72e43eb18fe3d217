// The threaded engine (SPEC §9): CPU i of a machine runs in Piscina worker i (workers/cpu-worker)
// over the machine's SharedArrayBuffer, and the token passes from CPU to CPU with Atomics, never
// through this thread. This thread prepares the buffer, submits one task per CPU, and watches the run:
// a routine that throws, a worker that dies, or a machine that stops making progress ends the run with
// status Error and a message, and the pool stays usable for the next run.
import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Piscina } from "piscina";
import { H, type MachineMemory, RunStatus } from "../model/memory.js";
import { beat, PROGRESS_WORDS, progressBlock, readProgress, routineLabel } from "../model/progress.js";
import type { MachineSpec, RunConfig } from "../model/types.js";
import { type CpuTask, type CpuTaskResult, pass } from "./cpu-worker.js";
import type { Engine, RunResult, Strategy } from "./engine.js";
import { machineFor, memoryFor, prepare, prepareThread, type ThreadSetup } from "./setup.js";
import { QuietMeter } from "./thread-time.js";

export interface ThreadedOptions {
  /** Machines that may run at once; each has its own buffer and its own threads. */
  parallel?: number;
  /**
   * What makes user protocols and scenarios known (workers/setup ThreadSetup), run in this thread and
   * in every CPU worker before a machine is built; none for the built-in catalog.
   */
  setup?: ThreadSetup;
  /**
   * A run whose step counter stands still while the CPU holding the token has this much of its own
   * CPU time (not time it waited for a core) is stopped as stuck.
   */
  watchdogMs?: number;
}

export interface ThreadedRunResult extends RunResult {
  /** Token handoffs between different CPUs in this run (the engine's unit of cost). */
  switches: number;
}

export interface ThreadedEngine extends Engine {
  run(config: RunConfig, strategy: Strategy): Promise<ThreadedRunResult>;
  /** Free buffers the engine keeps for reuse, over all configurations (memory held between runs). */
  readonly keptBuffers: { configurations: number; buffers: number };
}

/**
 * How long a machine (or a check) may make no progress before it is stopped, counted in the silent
 * thread's own CPU time (workers/thread-time).
 */
export const DEFAULT_WATCHDOG_MS = 5000;
const WATCHDOG_TICK_MS = 50;
/**
 * Configurations whose free machine buffers the engine keeps (the most recently used). A library user
 * may run many configurations through one engine; each buffer is ~2.6 MiB, so memory stays bounded.
 */
export const KEPT_CONFIGURATIONS = 8;
/**
 * Until every CPU has started, the watchdog allows at least this much of the process's CPU time: a
 * fresh pool's threads first load the model (iced-x86) and build the machine, which with many
 * threads takes seconds.
 */
const STARTUP_MS = 30_000;
/** After a stuck run is marked Error, healthy workers get this long to return before they are stopped too. */
const ABORT_GRACE_MS = 200;

/** The compiled worker, beside this file in dist/ (everything, the tests included, runs from dist/). */
export function workerFile(): string {
  return join(dirname(fileURLToPath(import.meta.url)), "cpu-worker.js");
}

interface FreeBuffer {
  mem: MachineMemory;
  /** Only run() calls made at or after this call number may reuse it (see takeBuffer). */
  after: number;
}

interface Waiter {
  cpus: number;
  resolve: (pool: Piscina<CpuTask, CpuTaskResult>) => void;
}

/** What a run ended with, as far as the threads are concerned. */
interface Outcome {
  error?: string;
  switches: number;
  /** A thread was terminated: it may have been stopped mid-write, so the buffer is not reused. */
  aborted: boolean;
  /** A thread was terminated or died (the pool is expected to replace it). */
  lostThread: boolean;
}

export function createThreadedEngine(opts: ThreadedOptions = {}): ThreadedEngine {
  return new Threaded(opts);
}

class Threaded implements ThreadedEngine {
  readonly name = "threaded" as const;
  private readonly parallel: number;
  private readonly setup: ThreadSetup | undefined;
  private readonly watchdogMs: number;
  private pool: Piscina<CpuTask, CpuTaskResult> | undefined;
  /** CPUs per machine the pool is sized for (the most seen so far). */
  private poolCpus = 0;
  /** The pool lost threads it did not replace: rebuild it once the running machines have ended. */
  private poolBroken = false;
  private active = 0;
  private readonly queue: Waiter[] = [];
  private readonly free = new Map<string, FreeBuffer[]>();
  private calls = 0;
  private workerFound = false;
  private readonly retiring = new Set<Promise<void>>();
  /** Each machine buffer's doorbells (workers/cpu-worker CpuTask.bells), kept with the buffer. */
  private readonly bells = new WeakMap<SharedArrayBuffer, SharedArrayBuffer>();
  /** Each machine buffer's progress block (model/progress), where its CPUs say which routine they run. */
  private readonly progress = new WeakMap<SharedArrayBuffer, SharedArrayBuffer>();

  constructor(opts: ThreadedOptions) {
    this.parallel = opts.parallel ?? availableParallelism();
    this.setup = opts.setup;
    this.watchdogMs = opts.watchdogMs ?? DEFAULT_WATCHDOG_MS;
    if (!Number.isInteger(this.parallel) || this.parallel < 1)
      throw new Error(`parallel must be a whole number of machines, at least 1, not ${this.parallel}`);
    if (!(this.watchdogMs > 0))
      throw new Error(`watchdogMs must be a positive number, not ${this.watchdogMs}`);
  }

  async run(config: RunConfig, strategy: Strategy): Promise<ThreadedRunResult> {
    if ("scheduler" in strategy) {
      throw new Error(
        "a live scheduler (exhaustive search) runs on the inline engine only: its state is in this thread, not in the buffer",
      );
    }
    const call = this.calls++;
    await prepareThread(this.setup);
    const spec = machineFor(config); // unknown names and bad CPU counts throw here, as inline
    if (!this.workerFound) {
      const worker = workerFile();
      if (!existsSync(worker)) {
        throw new Error(`the threaded engine's worker ${worker} is missing: build with 'npx tsc -p .'`);
      }
      this.workerFound = true;
    }
    const pool = await this.admit(config.hardware.cpus);
    const key = JSON.stringify(config);
    let mem: MachineMemory | undefined;
    let reusable = true;
    try {
      mem = this.takeBuffer(key, spec, call);
      prepare(mem, spec, strategy);
      // prepare() wrote plain stores; this atomic store of the token it set publishes them to the
      // workers, which load the token atomically before they read anything else.
      Atomics.store(mem.header, H.token, -2);
      const outcome = await this.execute(pool, mem, config);
      // The workers' last act on the buffer is an atomic store of the token: loading it atomically
      // makes everything they wrote visible here.
      Atomics.load(mem.header, H.token);
      reusable = !outcome.aborted;
      // Piscina starts a new thread for each one terminated or dead; should it not, rebuild the pool.
      if (outcome.lostThread && pool === this.pool && pool.threads.length < this.poolCpus * this.parallel)
        this.poolBroken = true;
      const h = mem.header;
      if (outcome.error !== undefined || h[H.status] === RunStatus.Error) {
        h[H.status] = RunStatus.Error;
        return {
          mem,
          status: RunStatus.Error,
          error: outcome.error ?? "the run failed",
          switches: outcome.switches,
        };
      }
      // The token and the start count are this engine's own bookkeeping: put them back as prepare
      // left them, so that the buffer is byte for byte the inline engine's.
      h[H.token] = -2;
      h[H.started] = 0;
      return { mem, status: h[H.status] as RunStatus, switches: outcome.switches };
    } finally {
      if (mem && reusable) this.giveBack(key, mem);
      this.active--;
      this.pump();
    }
  }

  /** Ends the threads. A later run() starts a new pool, which needs another close(). */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    this.poolCpus = 0;
    if (pool) this.retire(pool);
    await Promise.all([...this.retiring]);
  }

  /** Waits for a slot (at most `parallel` machines at once) on a pool with a thread for every CPU. */
  private admit(cpus: number): Promise<Piscina<CpuTask, CpuTaskResult>> {
    return new Promise((resolve) => {
      this.queue.push({ cpus, resolve });
      this.pump();
    });
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0];
      if (!this.pool || head.cpus > this.poolCpus || this.poolBroken) {
        // A bigger machine needs a bigger pool (or the pool lost threads); the running machines keep
        // their threads until they end.
        if (this.active > 0) return;
        if (this.pool) this.retire(this.pool);
        this.poolCpus = Math.max(head.cpus, this.poolCpus);
        this.pool = this.newPool(this.poolCpus * this.parallel);
        this.poolBroken = false;
      }
      if (this.active >= this.parallel) return;
      this.queue.shift();
      this.active++;
      head.resolve(this.pool);
    }
  }

  private newPool(threads: number): Piscina<CpuTask, CpuTaskResult> {
    // One thread per CPU of every machine that may run at once: a CPU whose task sat in the queue
    // behind a busy thread would leave its machine waiting for it forever.
    return new Piscina<CpuTask, CpuTaskResult>({
      filename: workerFile(),
      minThreads: threads,
      maxThreads: threads,
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
    });
  }

  private retire(pool: Piscina<CpuTask, CpuTaskResult>): void {
    const done: Promise<void> = pool
      .destroy()
      .catch(() => {})
      .finally(() => this.retiring.delete(done));
    this.retiring.add(done);
  }

  /**
   * A free buffer of this configuration, or a new one. A buffer goes back to the free list when its
   * run ends, and only calls made after that may take it: the result of a run stays intact while its
   * caller holds it, as long as the caller makes no further run() call (the inline engine's contract),
   * also when many runs were started at once with Promise.all.
   */
  private takeBuffer(key: string, spec: MachineSpec, call: number): MachineMemory {
    const list = this.free.get(key);
    const i = list ? list.findIndex((f) => f.after <= call) : -1;
    if (list && i >= 0) return list.splice(i, 1)[0].mem;
    return memoryFor(spec);
  }

  private giveBack(key: string, mem: MachineMemory): void {
    const list = this.free.get(key) ?? [];
    // Re-inserted, so that the Map's order is the order of last use.
    this.free.delete(key);
    this.free.set(key, list);
    // Keep as many as can be in use at once; a burst of concurrent calls leaves the rest to the GC.
    if (list.length < this.parallel) list.push({ mem, after: this.calls });
    // Only the most recently used configurations keep their buffers (the rest go to the GC).
    while (this.free.size > KEPT_CONFIGURATIONS) this.free.delete(this.free.keys().next().value as string);
  }

  /** Free buffers the engine keeps for reuse, over all configurations (memory held between runs). */
  get keptBuffers(): { configurations: number; buffers: number } {
    let buffers = 0;
    for (const list of this.free.values()) buffers += list.length;
    return { configurations: this.free.size, buffers };
  }

  /** Runs the prepared machine: one task per CPU, the watchdog, and the failure of any of them. */
  private async execute(
    pool: Piscina<CpuTask, CpuTaskResult>,
    mem: MachineMemory,
    config: RunConfig,
  ): Promise<Outcome> {
    const h = mem.header;
    const n = config.hardware.cpus;
    const controllers = Array.from({ length: n }, () => new AbortController());
    const settled = new Array<boolean>(n).fill(false);
    let bellBuffer = this.bells.get(mem.buffer);
    if (!bellBuffer) {
      bellBuffer = new SharedArrayBuffer(4 * n);
      this.bells.set(mem.buffer, bellBuffer);
    }
    const bells = new Int32Array(bellBuffer);
    let progressBuffer = this.progress.get(mem.buffer);
    if (!progressBuffer) {
      progressBuffer = new SharedArrayBuffer(PROGRESS_WORDS * 4);
      this.progress.set(mem.buffer, progressBuffer);
    }
    const progress = progressBlock(progressBuffer);
    progress.fill(0);
    let failure: string | undefined;
    let aborted = false;
    let lostThread = false;

    /** Ends the run for every worker: status Error, then token -1, which wakes the waiting ones. */
    const stopRun = (cpu: number): void => {
      // The first cause stays recorded (a later watchdog stop does not overwrite a death).
      if (Atomics.exchange(h, H.status, RunStatus.Error) !== RunStatus.Error)
        Atomics.store(h, H.errorCpu, cpu);
      pass(h, bells, -1);
    };
    const abortTask = (i: number, why: string): void => {
      if (settled[i] || controllers[i].signal.aborted) return;
      aborted = true;
      controllers[i].abort(why);
    };

    const tasks = controllers.map((c, cpu) =>
      pool
        .run(
          {
            buffer: mem.buffer,
            bells: bellBuffer,
            progress: progressBuffer,
            cpu,
            config,
            setup: this.setup,
          },
          { signal: c.signal },
        )
        .then(
          (r) => {
            settled[cpu] = true;
            return r;
          },
          (e: unknown) => {
            settled[cpu] = true;
            // A task we aborted ourselves already has its explanation; anything else is a dead worker
            // (process.exit, an uncaught error, a module that failed to load in the worker).
            lostThread = true;
            if (!c.signal.aborted) {
              const step = Atomics.load(h, H.step);
              const holder = Atomics.load(h, H.token);
              failure ??=
                `CPU ${cpu}'s worker died at step ${step}${holder >= 0 ? ` (CPU ${holder} held the token)` : ""}: ` +
                `${e instanceof Error ? e.message : String(e)}`;
              stopRun(cpu);
            }
            return undefined;
          },
        ),
    );

    // Watchdog: the step counter (or, while starting, the start count) must keep moving. Its silence
    // is counted in the CPU time of the thread that holds the token (workers/thread-time): on a busy
    // host that thread may wait for a core for seconds, which is no fault of its routine.
    let lastStep = Atomics.load(h, H.step);
    let lastStarted = Atomics.load(h, H.started);
    const quiet = new QuietMeter();
    let watched = -1;
    let grace: NodeJS.Timeout | undefined;
    let fired = false;
    // It keeps watching after a worker died: should a thread then still not return, it is stopped too.
    const watchdog = setInterval(() => {
      if (fired) return;
      const step = Atomics.load(h, H.step);
      const started = Atomics.load(h, H.started);
      if (step !== lastStep || started !== lastStarted) {
        lastStep = step;
        lastStarted = started;
        quiet.reset();
        // This thread only waits while the machine runs: the machine's progress is its progress, for
        // a watchdog that watches this thread (the check pool's, when a check runs the machine).
        beat();
        return;
      }
      const starting = started < n;
      const holder = Atomics.load(h, H.token);
      if (holder !== watched) {
        watched = holder;
        quiet.reset();
      }
      // Starting, no one CPU holds the token yet: the process's CPU time counts.
      if (starting || holder < 0) quiet.sampleProcess();
      else quiet.sampleThread(readProgress(progress, holder).thread);
      const limit = starting ? Math.max(this.watchdogMs, STARTUP_MS) : this.watchdogMs;
      if (!quiet.over(limit)) return;
      const words = quiet.words((ms) => `${Math.round(ms)} ms`, limit);
      fired = true;
      const at = holder >= 0 ? readProgress(progress, holder) : undefined;
      const routine = at?.kind !== undefined ? ` in ${routineLabel(at.kind, at.hook, config.protocol)}` : "";
      failure ??=
        holder >= 0 && !starting
          ? `CPU ${holder} held the token at step ${step} and made no progress ${words}${routine} ` +
            "(a routine stuck in a loop that never yields?): the watchdog stopped the run"
          : `the machine made no progress ${words} while starting (${started} of ${n} CPUs started): ` +
            "the watchdog stopped the run";
      stopRun(holder >= 0 ? holder : -1);
      // The holder cannot be interrupted but by terminating its thread; the others were told to stop
      // and get a moment to return on their own before they are terminated as well.
      const why = failure;
      if (holder >= 0) abortTask(holder, why);
      grace = setTimeout(() => {
        for (let i = 0; i < n; i++) abortTask(i, why);
      }, ABORT_GRACE_MS);
    }, WATCHDOG_TICK_MS);

    try {
      const results = await Promise.all(tasks);
      let switches = 0;
      let reported: string | undefined;
      for (const r of results) {
        if (!r) continue;
        switches += r.switches;
        reported ??= r.error;
      }
      // A routine's own error names its cause best; after a watchdog stop or a death, workers report nothing.
      return { error: reported ?? failure, switches, aborted, lostThread };
    } finally {
      clearInterval(watchdog);
      if (grace) clearTimeout(grace);
    }
  }
}
