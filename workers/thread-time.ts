// The clock the watchdogs count a silent thread's time on. Wall-clock time blames a thread for the
// machine being busy: on a loaded host a thread can wait seconds for a core and make no progress
// through no fault of its own. A routine that loops without yielding, on the other hand, keeps its
// thread on a core whenever it gets one. So a silent thread's time is counted in its own CPU time,
// which Linux gives per thread in /proc/self/task/TID/stat (proc(5)); each thread learns its TID from
// /proc/thread-self and publishes it in its progress block (model/progress), where a watchdog in
// another thread reads it. Without /proc the meters fall back to wall-clock time, as before.
//
// The time a thread sits blocked is kept apart, and counts only against a much longer limit. A
// thread stuck in a wait that never ends (a module's top-level await on a promise that never
// settles) uses no CPU at all; but a thread also blocks while it waits for the helper threads of its
// own process (the garbage collector's, the compilers', the file reads'), which a busy host starves
// as much as the thread itself: measured on 2 cores beside 8 busy processes, building a machine sat
// blocked for most of 1.9 s.
import { readFileSync, readlinkSync } from "node:fs";

/**
 * The unit of utime and stime in /proc: USER_HZ, which the kernel fixes at 100 on every architecture
 * Node runs on (sysconf(_SC_CLK_TCK); `getconf CLK_TCK` says 100), whatever the kernel's own HZ.
 */
const USER_HZ = 100;

/** This thread's TID, read once (each worker thread has its own copy of this module). */
let ownTid: number | undefined;

/** The kernel's id of the calling thread, for /proc/self/task/TID; 0 when there is no /proc. */
export function threadId(): number {
  if (ownTid === undefined) {
    try {
      // "PID/task/TID" (Linux 3.17 and later).
      const m = /\/task\/(\d+)$/.exec(readlinkSync("/proc/thread-self"));
      ownTid = m ? Number(m[1]) : 0;
    } catch {
      ownTid = 0;
    }
  }
  return ownTid;
}

/** What /proc says of a thread: its CPU time so far (user and system) and whether it is blocked. */
export interface ThreadTimes {
  cpuMs: number;
  /**
   * Sleeping (state S, or D: waiting for I/O): the thread waits for something other than a core. R
   * is running or runnable, which on a busy host may mean waiting for a core.
   */
  blocked: boolean;
}

/**
 * Reads a line of /proc/.../stat. The second field, the thread's name in parentheses, may itself hold
 * spaces and parentheses, so the fields are counted from the last ')': state is field 3, utime and
 * stime fields 14 and 15 (proc(5)).
 */
export function parseThreadStat(text: string): ThreadTimes | undefined {
  const close = text.lastIndexOf(")");
  if (close < 0) return undefined;
  const fields = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  const state = fields[0];
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!state || !Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return { cpuMs: ((utime + stime) * 1000) / USER_HZ, blocked: state === "S" || state === "D" };
}

/** The times of thread `tid` of this process, or undefined (no /proc, an unknown or ended thread). */
export function threadTimes(tid: number): ThreadTimes | undefined {
  if (!(tid > 0)) return undefined;
  try {
    return parseThreadStat(readFileSync(`/proc/self/task/${tid}/stat`, "latin1"));
  } catch {
    return undefined;
  }
}

/**
 * The parts a quiet time is made of: `cpu` the watched thread ran on a core; `blocked` it slept (kept
 * apart: see the header); `process` the whole process's CPU time (while no one thread can be watched
 * yet); `wall` wall-clock time, where the thread's times cannot be read.
 */
export interface QuietParts {
  cpu: number;
  blocked: number;
  process: number;
  wall: number;
}

type Sample =
  | { clock: "thread"; tid: number; wall: number; times: ThreadTimes | undefined }
  | { clock: "process"; wall: number; cpuMs: number };

/**
 * A thread that has sat blocked this many times the watchdog time (and at least BLOCKED_MS) with no
 * progress is taken for stuck in a wait that never ends.
 */
const BLOCKED_FACTOR = 60;
const BLOCKED_MS = 300_000;

/**
 * How long a heartbeat has been quiet, counted on the watched thread's own time: call `reset` when the
 * heartbeat moves, and `sampleThread` (or `sampleProcess`) at every tick while it does not. Each
 * sample adds the time since the one before; the first after a reset is the baseline.
 */
export class QuietMeter {
  readonly ms: QuietParts = { cpu: 0, blocked: 0, process: 0, wall: 0 };
  private last: Sample | undefined;

  reset(): void {
    this.ms.cpu = 0;
    this.ms.blocked = 0;
    this.ms.process = 0;
    this.ms.wall = 0;
    this.last = undefined;
  }

  /**
   * Adds the time thread `tid` (0: unknown) consumed since the last sample: its CPU time, and, when it
   * is blocked now, the rest of the interval as blocked time. Time it spent waiting for a core is not
   * counted. When /proc cannot say, the interval counts whole (wall-clock).
   */
  sampleThread(tid: number, now: number = performance.now()): void {
    const times = threadTimes(tid);
    const prev = this.last;
    this.last = { clock: "thread", tid, wall: now, times };
    if (prev?.clock !== "thread" || prev.tid !== tid) return;
    const interval = Math.max(0, now - prev.wall);
    if (!times || !prev.times) {
      this.ms.wall += interval;
      return;
    }
    const cpu = Math.max(0, times.cpuMs - prev.times.cpuMs);
    this.ms.cpu += cpu;
    if (times.blocked) this.ms.blocked += Math.max(0, interval - cpu);
  }

  /**
   * Adds the CPU time of the whole process since the last sample: for a stretch in which the thread
   * to watch is not known yet (a thread still starting). A process starved by a busy host consumes
   * little of it.
   */
  sampleProcess(now: number = performance.now()): void {
    const u = process.cpuUsage();
    const cpuMs = (u.user + u.system) / 1000;
    const prev = this.last;
    this.last = { clock: "process", wall: now, cpuMs };
    if (prev?.clock !== "process") return;
    this.ms.process += Math.max(0, cpuMs - prev.cpuMs);
  }

  /** The quiet time counted against the watchdog time: CPU time (or wall-clock time without /proc). */
  total(): number {
    const m = this.ms;
    return m.cpu + m.process + m.wall;
  }

  /**
   * Whether the quiet time has reached `limit`; or, unless the thread is meant to wait (`waits`), its
   * blocked time the much longer limit of a wait that never ends.
   */
  over(limit: number, waits = false): boolean {
    return this.total() >= limit || (!waits && this.ms.blocked >= blockedLimit(limit));
  }

  /**
   * The quiet time in words, on the clock that counted it, e.g. "in 5.0 s of its own CPU time", or
   * the blocked time when that is what went over its limit; `amount` formats milliseconds.
   */
  words(amount: (ms: number) => string, limit = Number.POSITIVE_INFINITY): string {
    const m = this.ms;
    if (this.total() < limit && m.blocked >= blockedLimit(limit))
      return `for ${amount(m.blocked)} blocked, in a wait that never ends (with ${amount(m.cpu)} of its own CPU time)`;
    const total = amount(this.total());
    if (m.wall > 0 && m.wall >= m.cpu + m.process) return `for ${total}`;
    if (m.process > m.cpu) return `in ${total} of the process's CPU time`;
    return `in ${total} of its own CPU time`;
  }
}

function blockedLimit(limit: number): number {
  return Math.max(BLOCKED_MS, BLOCKED_FACTOR * limit);
}

/** Milliseconds as seconds with one decimal, as the watchdogs' messages say them. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
