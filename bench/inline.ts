// Inline engine throughput: simulated steps per second on 4-CPU machines running real code, over the
// same random tapes the checker generates; and the size of one machine's buffer.
import fc from "fast-check";
import { layoutFor } from "../model/machine.js";
import { H, MachineMemory } from "../model/memory.js";
import { resolveConfig, tapeSpan } from "../properties/check.js";
import { runInline } from "../workers/inline.js";
import { machineFor } from "../workers/setup.js";
import { sparseTape } from "../workers/strategies/arbitraries.js";

const CELLS: Array<[string, string]> = [
  ["xen-4.8", "nmi-path"],
  ["int3-restartable", "entry-pad"],
  ["linux-text-poke", "normal"],
];

export function benchInline(): void {
  console.log("inline engine: steps per second (4 CPUs, bytewise fetch, random sparse tapes)");
  const rates: number[] = [];
  for (const [protocol, scenario] of CELLS) {
    const config = resolveConfig(protocol, scenario, { cpus: 4 });
    const tapes = fc.sample(sparseTape(tapeSpan(config), 24), { numRuns: 2000, seed: 7 });
    for (const tape of tapes.slice(0, 100)) runInline(config, { tape }); // warm up: JIT and decode cache
    let steps = 0;
    const t0 = performance.now();
    for (const tape of tapes) steps += runInline(config, { tape }).mem.header[H.step];
    const seconds = (performance.now() - t0) / 1000;
    const rate = steps / seconds;
    rates.push(rate);
    const bytes = MachineMemory.bytesFor(layoutFor(machineFor(config)));
    console.log(
      `  ${`${protocol}/${scenario}`.padEnd(30)} ${Math.round(rate).toLocaleString("en-US").padStart(11)} steps/s` +
        `  ${(tapes.length / seconds).toFixed(0).padStart(6)} runs/s  ${(steps / tapes.length).toFixed(0)} steps/run` +
        `  buffer ${(bytes / 1024).toFixed(0)} KiB`,
    );
  }
  const worst = Math.min(...rates);
  console.log(
    `  slowest: ${Math.round(worst).toLocaleString("en-US")} steps/s (target 250,000): ${worst >= 250_000 ? "met" : "NOT met"}`,
  );
}
