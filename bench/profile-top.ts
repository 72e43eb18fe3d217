// `node dist/bench/profile-top.js FILE.cpuprofile [N]`: the top N functions of a V8 CPU profile
// (`node --cpu-prof`) by self time, with their share of the samples, as docs/measurements.md shows
// them, then the top N by total time (the function anywhere on the stack). Self time per function:
// samples whose top frame is the function, summed over its nodes.
import { readFileSync } from "node:fs";
import path from "node:path";

interface ProfileNode {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const [file, top = "25"] = process.argv.slice(2);
if (!file) {
  console.log("usage: node dist/bench/profile-top.js FILE.cpuprofile [N]");
  process.exit(1);
}
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const keyOf = (id: number): string => {
  const f = (byId.get(id) as ProfileNode).callFrame;
  const where = f.url ? ` ${path.basename(f.url)}:${f.lineNumber + 1}` : "";
  return `${f.functionName || "(anonymous)"}${where}`;
};
const self = new Map<string, number>();
const inclusive = new Map<string, number>();
let totalUs = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  totalUs += dt;
  const key = keyOf(id);
  self.set(key, (self.get(key) ?? 0) + dt);
  // Each function once per sample, however often it is on the stack (recursion).
  const seen = new Set<string>();
  for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) seen.add(keyOf(n));
  for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
});
const show = (title: string, m: Map<string, number>) => {
  console.log(title);
  for (const [key, us] of [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(top)))
    console.log(
      `${((100 * us) / totalUs).toFixed(1).padStart(5)}%  ${(us / 1e3).toFixed(0).padStart(6)} ms  ${key}`,
    );
};
console.log(`${(totalUs / 1e6).toFixed(1)} s sampled`);
show("self time", self);
show("total time", inclusive);
