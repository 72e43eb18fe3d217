// Shard balance on the default matrix: runs every shard of `--shard i/n` one after the other (as n CI
// jobs would run side by side) and prints each shard's wall time and the largest over the mean (the
// target is at most 1.5), then checks that merge gives every verdict as declared. With --measure it
// runs the matrix once and prints a cost table for cli/shard-costs.ts instead. Nothing asserts on time.
//   node dist/bench/shards.js [n ...]      (default: 2 4)
//   node dist/bench/shards.js --measure
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCaptured } from "../cli/capture.js";

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function measure(): Promise<void> {
  const r = await runCaptured(["--json"]);
  if (r.code === 2) throw new Error(`the main job failed: ${r.stderr.trim()}`);
  const json = JSON.parse(r.stdout) as {
    verdicts: Array<{
      protocol: string;
      scenario: string;
      elapsedMs?: number;
      exhaustive?: { elapsedMs: number };
    }>;
  };
  console.log("export const CELL_COSTS: Readonly<Record<string, readonly [number, number]>> = {");
  for (const v of json.verdicts)
    console.log(
      `  "${v.protocol}/${v.scenario}": [${Math.max(50, v.elapsedMs ?? 0)}, ${v.exhaustive?.elapsedMs ?? 0}],`,
    );
  console.log("};");
}

export async function benchShards(counts: readonly number[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "livepatch-check-shards-"));
  for (const n of counts) {
    console.log(`shards: the default matrix as ${n} shards (each run alone, one after the other)`);
    const walls: number[] = [];
    const files: string[] = [];
    for (let i = 1; i <= n; i++) {
      const started = performance.now();
      const r = await runCaptured(["--shard", `${i}/${n}`, "--json"]);
      const wall = performance.now() - started;
      if (r.code !== 0) throw new Error(`shard ${i}/${n} failed: ${r.stderr.trim()}`);
      const file = join(dir, `shard-${n}-${i}.json`);
      writeFileSync(file, r.stdout);
      files.push(file);
      walls.push(wall);
      const json = JSON.parse(r.stdout) as { results: unknown[]; workers: number };
      console.log(
        `  shard ${i}/${n}: ${seconds(wall).padStart(7)} wall, ${json.results.length} checks on ${json.workers} workers`,
      );
    }
    const mean = walls.reduce((a, b) => a + b, 0) / n;
    console.log(
      `  largest / mean = ${(Math.max(...walls) / mean).toFixed(2)} (target <= 1.5); sum ${seconds(n * mean)}`,
    );
    const started = performance.now();
    const merged = await runCaptured(["merge", ...files]);
    console.log(
      `  merge: exit ${merged.code} (${merged.code === 0 ? "every verdict as declared" : "SOME VERDICTS DIFFER"}) in ${seconds(performance.now() - started)}, reports and confirmation included`,
    );
  }
}

const args = process.argv.slice(2);
if (args.includes("--measure")) await measure();
else await benchShards(args.length > 0 ? args.map(Number) : [2, 4]);
