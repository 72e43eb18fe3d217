// The watchdog counts a silent thread's own CPU time (workers/thread-time), not the wall clock's: a
// check starved by a busy machine is not stopped, and its built-in protocol is not blamed, while a
// routine that never yields is still stopped and named. The load: the command under `nice -n 19`
// beside 8 busy processes. They are busy 1.5 s of every 2 s, all in the same phase: against 8
// processes busy all the time, a nice-19 process gets well under 1% of a core and even a small check
// would take minutes; in their bursts it gets next to nothing for 1.5 s at a time, longer than the
// 1 s watchdog, and between them it runs. The wall-clock watchdog stopped the built-in check here
// with exit 2 ("building the machine ... the protocol's setup never returns", "CPU 2 made no progress
// for 1.5 s ... in routine 'nmi'"), blaming a protocol module that was never given. Linux only:
// elsewhere the watchdog counts wall-clock time.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { commandErrors } from "../dist/cli/pool.js";
import { ContextKind } from "../dist/model/events.js";
import {
  leaveRoutine,
  noteCpuThread,
  noteRoutine,
  Phase,
  progressBlock,
  readProgress,
  reportProgressTo,
} from "../dist/model/progress.js";
import { quietLimit } from "../dist/session/check-pool.js";
import { loadProtocolModules } from "../dist/session/modules.js";
import { SessionError } from "../dist/session/session.js";
import { runInline } from "../dist/workers/inline.js";
import { parseThreadStat, QuietMeter, threadId, threadTimes } from "../dist/workers/thread-time.js";

const here = dirname(fileURLToPath(import.meta.url));
const BIN = join(here, "..", "bin", "livepatch-check.js");
const LINUX = existsSync("/proc/thread-self");
const BAD_PROTOCOLS = join(here, "fixtures", "bad-protocols.mjs");

/** A busy process: it spins until it is stopped (SIGSTOP) or ended. */
const BUSY = "for (;;) {}";

/**
 * Starts 8 busy processes and the command under `nice -n 19`, passes its output on, and ends them
 * when it ends. The busy processes run 1.5 s and are stopped 0.5 s in turn, all together (SIGSTOP and
 * SIGCONT from here, by timers: nothing reads the clock), so the niced command is starved for long
 * stretches but still gets the cores now and then. It runs in a session of its own (detached): the
 * scheduler shares the cores between sessions first (autogroups), so the busy processes starve the
 * command, not the other test files that run meanwhile, and those do not starve the command further.
 */
const LOADED = `
const { spawn } = require("node:child_process");
const [busy, ...command] = JSON.parse(process.argv[1]);
const hogs = Array.from({ length: 8 }, () => spawn(process.execPath, ["-e", busy], { stdio: "ignore" }));
let timer;
const run = () => {
  for (const h of hogs) h.kill("SIGCONT");
  timer = setTimeout(pause, 1500);
};
const pause = () => {
  for (const h of hogs) h.kill("SIGSTOP");
  timer = setTimeout(run, 500);
};
timer = setTimeout(pause, 1500);
const child = spawn("nice", ["-n", "19", process.execPath, ...command], { stdio: "inherit" });
child.on("close", (code) => {
  clearTimeout(timer);
  for (const h of hogs) h.kill("SIGKILL");
  process.exitCode = code ?? 1;
});`;

/** The sessions still running (a test that times out leaves its own unended). */
const sessions = new Set<ChildProcess>();
afterEach(() => {
  for (const p of sessions) if (p.pid !== undefined && p.exitCode === null) process.kill(-p.pid, "SIGKILL");
  sessions.clear();
});

/** The command with a 1 s watchdog, niced, while 8 busy processes compete with it. */
async function underLoad(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const command = [BIN, ...args, "--watchdog", "1", "--no-html"];
  const session = spawn(process.execPath, ["-e", LOADED, JSON.stringify([BUSY, ...command])], {
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  sessions.add(session);
  let stdout = "";
  let stderr = "";
  session.stdout.on("data", (d) => {
    stdout += d;
  });
  session.stderr.on("data", (d) => {
    stderr += d;
  });
  const code = await new Promise<number | null>((resolve) => session.on("close", resolve));
  sessions.delete(session);
  return { code, stdout, stderr };
}

describe.skipIf(!LINUX)("the watchdog on a busy machine", () => {
  it("lets a built-in protocol's check finish with its verdict, however long it waits for a core", async () => {
    const r = await underLoad([
      "check",
      "-p",
      "nmi-rendezvous",
      "-s",
      "normal",
      "--strategy",
      "exhaustive",
      "--preemptions",
      "1",
      "--events",
      "0",
    ]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^nmi-rendezvous on normal: every property holds \(exhaustive: all \d+ executions/,
    );
  });

  // The threaded engine runs the random runs' machines (its watchdog watches the thread of the CPU
  // that holds the token); an exhaustive search runs inline, in the check's thread.
  it.each([
    ["inline", ["--strategy", "exhaustive", "--preemptions", "0", "--events", "0"]],
    ["threaded", ["--strategy", "random", "--runs", "2", "--seeds", "1", "--no-examples"]],
  ])(
    "does not stop a routine that computes for half a second between two steps while it waits for a core (%s engine)",
    async (engine, strategy) => {
      // nmi-rendezvous, whose master first spends 0.5 s of CPU time (once per thread): within the
      // 1 s watchdog in CPU time, however long the busy processes keep it from a core.
      const dir = mkdtempSync(join(tmpdir(), "livepatch-check-watchdog-"));
      const module = join(dir, "slow-master.mjs");
      const api = pathToFileURL(join(here, "..", "dist", "api", "index.js")).href;
      writeFileSync(
        module,
        `import { nmiRendezvous } from ${JSON.stringify(api)};
let computed = false;
export default {
  ...nmiRendezvous,
  name: "watchdog-slow-master",
  *master(ctx) {
    if (!computed) {
      computed = true;
      const start = process.cpuUsage();
      for (;;) {
        const used = process.cpuUsage(start);
        if (used.user + used.system >= 500_000) break;
      }
    }
    return yield* nmiRendezvous.master(ctx);
  },
};
`,
      );
      const r = await underLoad([
        "check",
        "--module",
        module,
        "-p",
        "watchdog-slow-master",
        "-s",
        "normal",
        "--engine",
        engine,
        ...strategy,
      ]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^watchdog-slow-master on normal: every property holds/);
    },
  );

  it("still stops a routine that never yields, naming the CPU and the routine", async () => {
    const dir = mkdtempSync(join(tmpdir(), "livepatch-check-watchdog-"));
    const module = join(dir, "spins.mjs");
    writeFileSync(
      module,
      `const store = (word, value) => ({ k: "store", word, value });
export default {
  name: "watchdog-spins", summary: "never yields", origin: "watchdog test", os: "xen", expected: {},
  *master(ctx) { yield store(ctx.spec.common.patchDone, 0); for (;;) {} },
};\n`,
    );
    const r = await underLoad(["check", "--module", module, "-p", "watchdog-spins", "-s", "normal"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(
      /the watchdog stopped the check: CPU 0 made no progress in \d+\.\d s of its own CPU time for watchdog-spins on normal, at step \d+ in routine 'master' of protocol 'watchdog-spins'.*Nothing was judged: fix the protocol module/,
    );
  });
});

describe("a thread's own time (workers/thread-time)", () => {
  it("reads utime and stime after the thread's name, whatever the name holds", () => {
    const line = "4242 (node (a) b) S 1 2 3 0 -1 4194368 10 0 0 0 250 30 0 0 20 0 9 0 100 0 0";
    expect(parseThreadStat(line)).toEqual({ cpuMs: 2800, blocked: true });
    expect(parseThreadStat(line.replace(") S ", ") R "))).toEqual({ cpuMs: 2800, blocked: false });
    expect(parseThreadStat("garbage")).toBeUndefined();
  });

  it.skipIf(!LINUX)("counts the CPU time of a thread that spins, and nothing of it as blocked", () => {
    const tid = threadId();
    expect(tid).toBeGreaterThan(0);
    const meter = new QuietMeter();
    meter.sampleThread(tid);
    const start = threadTimes(tid)?.cpuMs ?? 0;
    while ((threadTimes(tid)?.cpuMs ?? Number.POSITIVE_INFINITY) < start + 100) {
      // spin: this thread's own CPU time grows
    }
    meter.sampleThread(tid);
    expect(meter.ms.cpu).toBeGreaterThanOrEqual(100);
    expect(meter.ms.blocked).toBe(0);
    expect(meter.ms.wall).toBe(0);
    expect(meter.words((ms) => `${ms} ms`)).toMatch(/^in \d+ ms of its own CPU time$/);
  });

  it.skipIf(!LINUX)("counts the time a thread sits blocked, which is not waiting for a core", async () => {
    const signal = new Int32Array(new SharedArrayBuffer(8));
    const worker = new Worker(
      `const { workerData, parentPort } = require("node:worker_threads");
const { readlinkSync } = require("node:fs");
const s = new Int32Array(workerData);
Atomics.store(s, 1, Number(/task\\/(\\d+)$/.exec(readlinkSync("/proc/thread-self"))[1]));
Atomics.notify(s, 1);
Atomics.wait(s, 0, 0);
parentPort.postMessage("done");`,
      { eval: true, workerData: signal.buffer },
    );
    try {
      while (Atomics.load(signal, 1) === 0) await new Promise((r) => setTimeout(r, 10));
      const tid = Atomics.load(signal, 1);
      const meter = new QuietMeter();
      meter.sampleThread(tid);
      // Until the kernel has it asleep in its wait, and the baseline taken there.
      while (!threadTimes(tid)?.blocked) await new Promise((r) => setTimeout(r, 10));
      meter.reset();
      meter.sampleThread(tid);
      await new Promise((r) => setTimeout(r, 300));
      meter.sampleThread(tid);
      expect(meter.ms.blocked).toBeGreaterThan(meter.ms.cpu);
      // Blocked time is not the watchdog's time: a thread blocks too while its process's helper
      // threads, as starved as itself on a busy host, do its garbage collection or compiling.
      expect(meter.total()).toBe(meter.ms.cpu);
    } finally {
      Atomics.store(signal, 0, 1);
      Atomics.notify(signal, 0);
      await worker.terminate();
    }
  });
});

describe("what the watchdog counts, and whom it blames", () => {
  it("takes a thread for stuck in a wait only after far longer than the watchdog time", () => {
    const meter = new QuietMeter();
    meter.ms.cpu = 900;
    meter.ms.blocked = 299_000;
    expect(meter.over(1000)).toBe(false);
    meter.ms.blocked = 300_000;
    expect(meter.over(1000)).toBe(true);
    // A thread that is meant to wait (for a threaded machine's threads) is never stuck in its wait.
    expect(meter.over(1000, true)).toBe(false);
    expect(meter.words((ms) => `${ms / 1000} s`, 1000)).toBe(
      "for 300 s blocked, in a wait that never ends (with 0.9 s of its own CPU time)",
    );
    meter.ms.cpu = 1000;
    expect(meter.words((ms) => `${ms / 1000} s`, 1000)).toBe("in 1 s of its own CPU time");
    meter.reset();
    expect(meter.total()).toBe(0);
  });

  it("gives the checker's own work between routine steps far longer than a routine", () => {
    const running = (inRoutine: boolean) => ({ phase: Phase.Running, inRoutine });
    expect(quietLimit(running(true), 1000)).toBe(1000);
    expect(quietLimit(running(false), 1000)).toBe(60_000);
    expect(quietLimit(running(false), 10_000)).toBe(120_000);
    expect(quietLimit({ phase: Phase.Building, inRoutine: false }, 1000)).toBe(1000);
    expect(quietLimit({ phase: Phase.Loading, inRoutine: false }, 1000)).toBe(1000);
  });

  it("blames a protocol module only for its own code, and otherwise asks for a report", async () => {
    const stuck = (culprit: "module" | "checker") =>
      commandErrors(Promise.reject(new SessionError("stuck", "CPU 3 made no progress", undefined, culprit)));
    await expect(stuck("module")).rejects.toThrow(
      "the watchdog stopped the check: CPU 3 made no progress. Nothing was judged: fix the protocol module",
    );
    const builtIn = stuck("checker");
    await expect(builtIn).rejects.toThrow("livepatch-check's own, not a protocol module's: please report it");
    await expect(builtIn).rejects.not.toThrow("fix the protocol module");
  });

  it("a progress block says which thread writes it, and whether routine code runs now", async () => {
    await loadProtocolModules([BAD_PROTOCOLS]);
    const block = progressBlock();
    reportProgressTo(block, 77);
    try {
      noteRoutine(2, 10, ContextKind.Nmi, "nmiCallback");
      expect(readProgress(block)).toMatchObject({ cpu: 2, step: 10, inRoutine: true, thread: 77 });
      leaveRoutine(2);
      expect(readProgress(block).inRoutine).toBe(false);
      noteCpuThread(2, 99);
      expect(readProgress(block).thread).toBe(99);
      // A routine that throws is left too: what the thread does next is not the routine's.
      const config = {
        protocol: "test-throws",
        scenario: "normal",
        hardware: { cpus: 4, fetch: "bytewise" as const, nmis: 0, mces: 0, stepBound: 3000 },
      };
      expect(runInline(config, { tape: [] }, true).error).toMatch(/deliberate failure/);
      const last = readProgress(block);
      expect(last.cpu).toBe(3);
      expect(last.step).toBeGreaterThan(0);
      for (let cpu = 0; cpu < 4; cpu++) expect(readProgress(block, cpu).inRoutine).toBe(false);
    } finally {
      reportProgressTo(null);
    }
  });
});
