// The Piscina worker of the threaded engine (SPEC §9): one simulated CPU of one machine, stepping
// only while the token in the machine's buffer names it. The CPU that holds the token also works out
// who runs next (workers/turn) and hands the token straight to that CPU with Atomics.store +
// Atomics.notify; the main thread is not involved in a handoff. Each CPU sleeps on its own doorbell
// word (a small buffer beside the machine's) rather than on the token itself, so that a handoff wakes
// the one thread that is due and not every waiting CPU. The order of everything that touches
// the buffer is the inline engine's (workers/inline.ts): all CPUs start, then nextTurn / step
// alternate, so both engines write the same bytes.
import { Cpu } from "../model/cpu.js";
import { H, RunStatus } from "../model/memory.js";
import { noteCpuThread, progressBlock, readProgress, reportProgressTo } from "../model/progress.js";
import type { RunConfig } from "../model/types.js";
import { machineFor, memoryFor, prepareThread, type ThreadSetup } from "./setup.js";
import { bufferScheduler } from "./strategies/tape.js";
import { QuietMeter, seconds, threadId } from "./thread-time.js";
import { nextTurn } from "./turn.js";

export interface CpuTask {
  /** The machine's buffer, prepared by the main thread (workers/setup prepare) before the task. */
  buffer: SharedArrayBuffer;
  cpu: number;
  config: RunConfig;
  /** What makes user protocols and scenarios known here as in the main thread (none: built-ins only). */
  setup?: ThreadSetup;
  /**
   * Doorbells, one Int32 per CPU: whoever changes the token bumps the bell of the CPU concerned (every
   * bell when the run ends) and notifies on it. Engine bookkeeping only; the token itself is H.token.
   */
  bells: SharedArrayBuffer;
  /** The machine's progress block (model/progress): the routine each CPU runs, for the watchdog. */
  progress: SharedArrayBuffer;
}

export interface CpuTaskResult {
  /** Times this CPU handed the token to a different CPU. */
  switches: number;
  /** Set when this CPU's routine (or the engine code it ran) threw: the run has status Error. */
  error?: string;
}

/**
 * How long one Atomics.wait lasts before the worker looks at the status word again. A peer that dies
 * or a watchdog that stops the run sets status Error and token -1 (and notifies), so this slice only
 * bounds how long a missed notification could keep a worker asleep.
 */
const WAIT_SLICE_MS = 50;

/**
 * With neither the token nor the step counter moving while the CPU holding the token has had this
 * much of its own CPU time (workers/thread-time: not the time a busy host kept it waiting for a
 * core), a waiting worker stops on its own. The engine's watchdog normally stops such a run within
 * seconds; this is the last resort when it cannot (the event loop of its thread is blocked), so that
 * no thread waits forever.
 */
const GIVE_UP_MS = 120_000;

/** Header words the worker touches before it has built the machine's views (indices from model/memory H). */
const RAW_HEADER_WORDS = Math.max(...Object.values(H)) + 1;

export default async function runCpu(task: CpuTask): Promise<CpuTaskResult> {
  const me = task.cpu;
  // A raw view of the header, so that a failure before the machine is built can still end the run.
  const header = new Int32Array(task.buffer, 0, RAW_HEADER_WORDS);
  const bells = new Int32Array(task.bells);
  let switches = 0;
  let phase = "start";
  // Pairs with the main thread's atomic store after prepare(): the prepared buffer is visible from here.
  Atomics.load(header, H.token);
  const progress = progressBlock(task.progress);
  reportProgressTo(progress);
  // Which thread runs this CPU: the engine's watchdog counts the token holder's silence in its time.
  noteCpuThread(me, threadId());
  try {
    await prepareThread(task.setup);
    const spec = machineFor(task.config);
    const mem = memoryFor(spec, task.buffer); // new views over the same bytes; prepare() already ran
    const h = mem.header;
    const cpus = spec.config.hardware.cpus;
    const actions = new Int32Array(3 * cpus);
    const scheduler = bufferScheduler(mem);
    const cpu = new Cpu(me, mem, spec, scheduler);
    // Starting writes only this CPU's block and consumes no tape, so the CPUs may start concurrently.
    cpu.start();
    phase = "run";
    // The last CPU to start makes the first choice, as the inline engine does after starting them all.
    // Atomics.add orders every other CPU's start before this point.
    if (Atomics.add(h, H.started, 1) === cpus - 1) pass(h, bells, nextTurn(mem, actions, scheduler));

    let seenToken = Atomics.load(h, H.token);
    let seenStep = Atomics.load(h, H.step);
    const quiet = new QuietMeter();
    for (;;) {
      // The bell before the token: a handoff stores the token, then bumps the bell, so a token read
      // that misses the handoff is followed by a wait that returns at once.
      const bell = Atomics.load(bells, me);
      const token = Atomics.load(h, H.token);
      if (token === -1) return { switches };
      if (token !== me) {
        Atomics.wait(bells, me, bell, WAIT_SLICE_MS);
        if (Atomics.load(h, H.status) === RunStatus.Error) return { switches };
        const step = Atomics.load(h, H.step);
        if (token !== seenToken || step !== seenStep) {
          seenToken = token;
          seenStep = step;
          quiet.reset();
          continue;
        }
        // Before the first choice (token -2) no one CPU holds the token: the process's time counts.
        if (token >= 0) quiet.sampleThread(readProgress(progress, token).thread);
        else quiet.sampleProcess();
        if (quiet.over(GIVE_UP_MS)) {
          const who = token >= 0 ? `CPU ${token} held the token at step ${step} and` : "the machine";
          throw new StallError(
            `${who} made no progress ${quiet.words(seconds, GIVE_UP_MS)}: CPU ${me}'s worker stopped waiting`,
          );
        }
        continue;
      }
      // This CPU holds the token: step until another CPU is due. Same CPU again means no handoff.
      for (;;) {
        cpu.step();
        const next = nextTurn(mem, actions, scheduler);
        if (next === me) continue;
        if (next >= 0) switches++;
        pass(h, bells, next);
        break;
      }
    }
  } catch (e) {
    // Error and errorCpu before the token: a peer woken by its bell finds the run over and why.
    const step = Atomics.load(header, H.step);
    Atomics.store(header, H.status, RunStatus.Error);
    Atomics.store(header, H.errorCpu, me);
    pass(header, bells, -1);
    const where = phase === "start" ? `CPU ${me} while starting` : `CPU ${me} at step ${step}`;
    return { switches, error: `${where}: ${describe(e)}` };
  } finally {
    reportProgressTo(null);
  }
}

/** Hands the token to `next` and rings its bell; -1 ends the run and rings every bell. */
export function pass(h: Int32Array, bells: Int32Array, next: number): void {
  Atomics.store(h, H.token, next);
  if (next >= 0) {
    Atomics.add(bells, next, 1);
    Atomics.notify(bells, next);
    return;
  }
  for (let c = 0; c < bells.length; c++) {
    Atomics.add(bells, c, 1);
    Atomics.notify(bells, c);
  }
}

class StallError extends Error {}

/** The error's message and where it was thrown (the routine's own source line, for a protocol bug). */
function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  if (e instanceof StallError) return e.message;
  const frame = e.stack
    ?.split("\n")
    .map((l) => l.trim())
    .find((l) => l.startsWith("at "));
  return frame ? `${e.message} (thrown ${frame})` : e.message;
}
