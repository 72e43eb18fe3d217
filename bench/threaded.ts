// Threaded engine costs, measured side by side in one process (nothing here asserts on time):
//  (a) the handoff floor: 4 bare worker threads pass a token round-robin through Atomics.wait/notify
//      on a SharedArrayBuffer, with the engine's wake-up pattern (per-thread doorbells), and nothing else;
//  (b) the engine on a 4-CPU machine: wall time per step, and the cost of one switch (a handoff of the
//      token to a different CPU). A run also has a fixed cost (n Piscina tasks out and back) and the
//      model's own work per step, so the switch cost is the slope between two sets of tapes that differ
//      in how often they switch: Δ(threaded − inline time) / Δ(switches). Switches are counted by the
//      workers (ThreadedRunResult.switches), not stored in the machine's buffer;
//  (c) the ratio switch cost / floor;
//  (d) runs per second of the threaded and the inline engine on the same 50 tapes.
// Rounds alternate floor and engine so that both see the same machine load; medians are printed.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import fc from "fast-check";
import { DEFAULT_HARDWARE } from "../model/machine.js";
import { H } from "../model/memory.js";
import { findScenario } from "../model/scenarios/index.js";
import type { RunConfig } from "../model/types.js";
import { runInline } from "../workers/inline.js";
import { sparseTape } from "../workers/strategies/arbitraries.js";
import { createThreadedEngine, type ThreadedEngine } from "../workers/threaded.js";

const THREADS = 4;
const FLOOR_HANDOFFS = 20_000;
const ROUNDS = 5;
/** Runs of each tape set per round (the engine measurement). */
const RUNS_PER_SET = 100;

type FloorKind = "bells" | "one word";

/**
 * One bare thread of the floor: waits until the token names it, passes it to the next thread, and
 * stops after its share of handoffs. "bells" is the engine's pattern (workers/cpu-worker): each thread
 * sleeps on its own doorbell word, and a handoff stores the token, bumps the next thread's bell and
 * notifies it. "one word" sleeps on the token itself, so every handoff wakes every waiting thread;
 * it is printed for comparison only.
 */
const FLOOR_THREAD = `
const { workerData, parentPort } = require("node:worker_threads");
const { sab, me, threads, handoffs, bells } = workerData;
const w = new Int32Array(sab); // [0] token, [1 + i] thread i's bell
parentPort.on("message", () => {
  let done = 0;
  while (done < handoffs) {
    const bell = Atomics.load(w, 1 + me);
    const t = Atomics.load(w, 0);
    if (t !== me) {
      if (bells) Atomics.wait(w, 1 + me, bell, 50);
      else Atomics.wait(w, 0, t, 50);
      continue;
    }
    const next = (me + 1) % threads;
    Atomics.store(w, 0, next);
    if (bells) {
      Atomics.add(w, 1 + next, 1);
      Atomics.notify(w, 1 + next);
    } else {
      Atomics.notify(w, 0);
    }
    done++;
  }
  parentPort.postMessage(done);
});
`;

interface Floor {
  workers: Worker[];
  words: Int32Array;
}

async function startFloor(kind: FloorKind): Promise<Floor> {
  const sab = new SharedArrayBuffer(4 * (THREADS + 1));
  const words = new Int32Array(sab);
  const workers = Array.from(
    { length: THREADS },
    (_, me) =>
      new Worker(FLOOR_THREAD, {
        eval: true,
        workerData: {
          sab,
          me,
          threads: THREADS,
          handoffs: FLOOR_HANDOFFS / THREADS,
          bells: kind === "bells",
        },
      }),
  );
  await Promise.all(workers.map((w) => new Promise((resolve) => w.once("online", resolve))));
  return { workers, words };
}

/** µs per handoff of one floor round. */
async function floorRound(f: Floor): Promise<number> {
  Atomics.store(f.words, 0, -1); // nobody's turn until every thread is listening
  const done = f.workers.map((w) => new Promise((resolve) => w.once("message", resolve)));
  for (const w of f.workers) w.postMessage("go");
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  Atomics.store(f.words, 0, 0);
  Atomics.notify(f.words, 0); // the "one word" threads sleep on the token
  for (let i = 1; i <= THREADS; i++) {
    Atomics.add(f.words, i, 1); // the "bells" threads sleep on their bells
    Atomics.notify(f.words, i);
  }
  await Promise.all(done);
  return ((performance.now() - t0) * 1000) / FLOOR_HANDOFFS;
}

interface TapeSet {
  tapes: number[][];
  steps: number;
  switches: number;
}

/** Mean ms per run of the threaded engine over a tape set, run after run (one machine at a time). */
async function threadedMs(engine: ThreadedEngine, config: RunConfig, set: TapeSet): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < RUNS_PER_SET; i++) await engine.run(config, { tape: set.tapes[i % set.tapes.length] });
  return (performance.now() - t0) / RUNS_PER_SET;
}

function inlineMs(config: RunConfig, set: TapeSet): number {
  const t0 = performance.now();
  for (let i = 0; i < RUNS_PER_SET; i++) runInline(config, { tape: set.tapes[i % set.tapes.length] });
  return (performance.now() - t0) / RUNS_PER_SET;
}

/** Steps and switches per run of a tape set (the same in either engine: runs are deterministic). */
async function measureSet(engine: ThreadedEngine, config: RunConfig, tapes: number[][]): Promise<TapeSet> {
  let steps = 0;
  let switches = 0;
  for (let i = 0; i < RUNS_PER_SET; i++) {
    const r = await engine.run(config, { tape: tapes[i % tapes.length] });
    steps += r.mem.header[H.step];
    switches += r.switches;
  }
  return { tapes, steps: steps / RUNS_PER_SET, switches: switches / RUNS_PER_SET };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function cell(protocol: string, scenario: string, cpus: number): RunConfig {
  const s = findScenario(scenario);
  return { protocol, scenario, hardware: { ...DEFAULT_HARDWARE, cpus, nmis: s.nmis, mces: s.mces } };
}

export async function benchThreaded(): Promise<void> {
  console.log(`threaded engine (${THREADS} CPUs, xen-4.8/nmi-path, bytewise fetch)`);
  const config = cell("xen-4.8", "nmi-path", THREADS);
  const engine = createThreadedEngine({ parallel: 1 });
  const floor = await startFloor("bells");
  const oneWord = await startFloor("one word");
  try {
    // Both sets send the 3 budgeted NMIs first (choices 4, 5, 6 pick "NMI to CPU k"), so that the runs
    // have many scheduling points (inside a handler every boundary is one). Then the empty tape's fair
    // round-robin switches at every scheduling point, while zeros keep the current CPU running.
    const many = await measureSet(engine, config, [[4, 5, 6]]);
    const few = await measureSet(engine, config, [[4, 5, 6, ...new Array<number>(3000).fill(0)]]);
    for (let i = 0; i < 3; i++) {
      // warm-up: the threads' JIT and decode caches, and the inline engine's
      await measureSet(engine, config, many.tapes);
      await measureSet(engine, config, few.tapes);
      inlineMs(config, many);
      inlineMs(config, few);
    }

    const floors: number[] = [];
    const oneWordFloors: number[] = [];
    const perSwitch: number[] = [];
    const perStep: number[] = [];
    const perRunFixed: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      floors.push(await floorRound(floor));
      oneWordFloors.push(await floorRound(oneWord));
      const tFew = await threadedMs(engine, config, few);
      const tMany = await threadedMs(engine, config, many);
      const iFew = inlineMs(config, few);
      const iMany = inlineMs(config, many);
      const slope = (tMany - iMany - (tFew - iFew)) / (many.switches - few.switches); // ms per switch
      perSwitch.push(slope * 1000);
      perStep.push((tMany * 1000) / many.steps);
      perRunFixed.push((tFew - iFew - slope * few.switches) * 1000);
    }
    const floorUs = median(floors);
    const switchUs = median(perSwitch);
    console.log(
      `  (a) handoff floor (${THREADS} bare threads, Atomics.wait/notify on per-thread doorbells):` +
        ` ${floorUs.toFixed(2)} µs/handoff  [one shared word, waking every thread: ${median(oneWordFloors).toFixed(2)} µs]`,
    );
    console.log(
      `  (b) engine: ${switchUs.toFixed(2)} µs/switch, ${median(perStep).toFixed(2)} µs/step` +
        ` (NMIs then round-robin: ${many.steps.toFixed(0)} steps, ${many.switches.toFixed(0)} switches per run;` +
        ` NMIs then zeros: ${few.steps.toFixed(0)} steps, ${few.switches.toFixed(0)} switches);` +
        ` fixed cost per run ${(median(perRunFixed) / 1000).toFixed(2)} ms`,
    );
    const ratio = switchUs / floorUs;
    console.log(
      `  (c) switch cost / floor: ${ratio.toFixed(2)} (target ≤ 1.5): ${ratio <= 1.5 ? "met" : "NOT met"}` +
        `  [medians of ${ROUNDS} rounds]`,
    );

    // (d) the same 50 tapes in both engines; the threaded engine one machine at a time and, with a
    // second engine, as many machines at once as there are cores.
    const tapes = fc.sample(sparseTape(512, 24), { numRuns: 50, seed: 7 });
    for (const tape of tapes) runInline(config, { tape }); // warm up
    let t0 = performance.now();
    for (const tape of tapes) runInline(config, { tape });
    const inlineRate = tapes.length / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    let steps = 0;
    let switches = 0;
    for (const tape of tapes) {
      const r = await engine.run(config, { tape });
      steps += r.mem.header[H.step];
      switches += r.switches;
    }
    const threadedRate = tapes.length / ((performance.now() - t0) / 1000);
    // Machines at once as the CLI runs them: one lane per slot, each lane's runs one after another.
    const lanes = availableParallelism();
    const wide = createThreadedEngine({ parallel: lanes });
    const inLanes = async () => {
      let next = 0;
      const lane = async () => {
        while (next < tapes.length) await wide.run(config, { tape: tapes[next++] });
      };
      await Promise.all(Array.from({ length: lanes }, lane));
    };
    let wideRate = 0;
    try {
      await inLanes(); // pool start-up and warm-up
      t0 = performance.now();
      await inLanes();
      wideRate = tapes.length / ((performance.now() - t0) / 1000);
    } finally {
      await wide.close();
    }
    console.log(
      `  (d) runs/s on 50 tapes: inline ${inlineRate.toFixed(0)}, threaded ${threadedRate.toFixed(0)}` +
        ` (one machine at a time), threaded ${wideRate.toFixed(0)} (${lanes} machines at once);` +
        ` ${(steps / tapes.length).toFixed(0)} steps, ${(switches / tapes.length).toFixed(0)} switches per run`,
    );
  } finally {
    await Promise.all([...floor.workers, ...oneWord.workers].map((w) => w.terminate()));
    await engine.close();
  }
}
