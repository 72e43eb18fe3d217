// Time to the first counterexample, and how far shrinking takes it, per engine: the median over 5
// seeds of check() restricted to one property, for the seed's two headline failures.
import { check } from "../properties/check.js";
import type { PropertyId } from "../properties/invariants.js";
import { type Engine, inlineEngine } from "../workers/engine.js";
import { createThreadedEngine } from "../workers/threaded.js";

const CASES: Array<[string, string, PropertyId]> = [
  ["xen-4.8", "nmi-path", "P2"],
  ["no-mask", "nmi-path", "P1"],
];
const SEEDS = [1, 2, 3, 4, 5];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function benchCounterexamples(): Promise<void> {
  console.log(
    "time to a shrunk counterexample, random search (median of 5 seeds; examples off, one property)",
  );
  const threaded = createThreadedEngine({ parallel: 1 });
  try {
    // Warm the pool (thread start and iced-x86 load are paid once per process, not per check).
    await check({
      protocol: "xen-4.8",
      scenario: "normal",
      engine: threaded,
      strategy: "random",
      runs: 5,
      seeds: 1,
      properties: ["P6"],
    });
    for (const [protocol, scenario, property] of CASES) {
      for (const engine of [inlineEngine, threaded] as Engine[]) {
        const times: number[] = [];
        const lengths: number[] = [];
        const choices: number[] = [];
        const runs: number[] = [];
        for (const seed of SEEDS) {
          const t0 = performance.now();
          const v = await check({
            protocol,
            scenario,
            engine,
            strategy: "random",
            seed,
            seeds: 1,
            properties: [property],
            examples: false,
          });
          times.push(performance.now() - t0);
          const r = v.kind === "violated" ? v.properties[0] : undefined;
          if (!r || r.holds) {
            console.log(
              `  ${protocol}/${scenario} ${property} ${engine.name}: seed ${seed} found no counterexample`,
            );
            continue;
          }
          lengths.push(r.shrunkTapeLength ?? 0);
          choices.push(r.shrunkChoices ?? 0);
          runs.push(r.runs);
        }
        console.log(
          `  ${`${protocol}/${scenario} ${property}`.padEnd(24)} ${engine.name.padEnd(8)} ` +
            `${median(times).toFixed(0).padStart(6)} ms  shrunk tape ${median(lengths)} values, ` +
            `${median(choices)} non-zero choices  (${median(runs)} runs incl. shrinking)`,
        );
      }
    }
  } finally {
    await threaded.close();
  }
}
