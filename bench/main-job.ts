// The main job (`npx livepatch-check`, the default matrix) as a user waits for it: wall time with one
// worker thread (every check on one core, the sequential run) and with two, their ratio, and the
// share of the wall time spent confirming counterexamples on the threaded engine. Run in this
// process through main(), with the same defaults as the command. Nothing here asserts on time.
import { availableParallelism, loadavg } from "node:os";
import { runCaptured } from "../cli/capture.js";

interface MainJob {
  wallMs: number;
  /** CPU time of this process, every thread included: cpuMs / wallMs is the cores the run got. */
  cpuMs: number;
  code: number;
  workers: number;
  confirmationMs: number;
  counterexamples: number;
  threads: number;
  checks: number;
}

async function mainJob(args: string[]): Promise<MainJob> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const { code, stdout, stderr } = await runCaptured([...args, "--json"]);
  const wallMs = performance.now() - started;
  const used = process.cpuUsage(cpu);
  const cpuMs = (used.user + used.system) / 1000;
  if (code === 2) throw new Error(`the main job failed: ${stderr.trim()}`);
  const json = JSON.parse(stdout) as {
    workers: number;
    verdicts: unknown[];
    confirmation: { counterexamples: number; threads: number; elapsedMs: number };
  };
  return {
    wallMs,
    cpuMs,
    code,
    workers: json.workers,
    confirmationMs: json.confirmation.elapsedMs,
    counterexamples: json.confirmation.counterexamples,
    threads: json.confirmation.threads,
    checks: json.verdicts.length,
  };
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export async function benchMainJob(): Promise<void> {
  console.log("main job: the default matrix, as `npx livepatch-check` runs it");
  const cores = availableParallelism();
  const jobs: MainJob[] = [];
  for (const workers of cores >= 2 ? [1, 2] : [1]) {
    // The machine may be shared: the load before each run says how far its figure can be trusted.
    const load = loadavg()[0];
    const job = await mainJob(["--parallel", String(workers)]);
    jobs.push(job);
    const verdicts =
      job.code === 0 ? "every verdict as declared" : "SOME VERDICTS DIFFER from the declared ones";
    console.log(
      `  ${workers} worker${workers === 1 ? " " : "s"}  ${seconds(job.wallMs).padStart(7)} wall  (${job.checks} checks, ${verdicts}); ` +
        `load average ${load.toFixed(1)} before, ${(job.cpuMs / job.wallMs).toFixed(2)} cores obtained (CPU time / wall); confirming ${job.counterexamples} counterexamples on ${job.threads} threads took ${seconds(job.confirmationMs)}, ` +
        `${((100 * job.confirmationMs) / job.wallMs).toFixed(1)}% of the wall time`,
    );
  }
  if (jobs.length === 2) {
    const ratio = jobs[0].wallMs / jobs[1].wallMs;
    console.log(
      `  scaling: 1 worker / 2 workers = ${ratio.toFixed(2)} (target >= 1.6 on an idle machine); ` +
        `the main job (inline engine, 2 workers) takes ${seconds(jobs[1].wallMs)} against ${seconds(jobs[0].wallMs)} single-core inline (--parallel 1)`,
    );
  }
  const last = jobs[jobs.length - 1];
  const share = last.confirmationMs / last.wallMs;
  console.log(
    `  confirmation: ${seconds(last.confirmationMs)} = ${(100 * share).toFixed(1)}% of the main job ` +
      `(target <= max(10% of the main job, 3 s): ${last.confirmationMs <= Math.max(0.1 * last.wallMs, 3000) ? "met" : "NOT met"})`,
  );
  if (cores < 2) console.log("  (one core here: no 2-worker figure)");
}
