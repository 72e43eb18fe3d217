// The folders are layers (docs/design.md §1): code imports only from its own folder or a lower one,
// and no file imports itself back through others. This reads the import graph of the TypeScript
// sources and fails on an upward arrow or a cycle, naming the files.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");

/** Lowest first. bench/, scripts/ and test/ sit outside: they may import any layer, none imports them. */
const LAYERS = ["model", "workers", "properties", "report", "session", "api", "cli"] as const;
const OUTSIDE = ["bench", "scripts"];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(path));
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** Every relative import (static, dynamic, type-only and re-exports) of a file, as repository paths. */
function importsOf(file: string, text: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)"(\.{1,2}\/[^"]+)"/g;
  for (const m of text.matchAll(re)) {
    const target = relative(ROOT, resolve(ROOT, dirname(file), m[1])).replace(/\.js$/, ".ts");
    out.push(target);
  }
  return out;
}

function folderOf(path: string): string {
  return path.split("/")[0];
}

/** An upward arrow: `from` sits in a lower layer than what it imports (or imports bench/scripts). */
function upwardArrows(graph: Map<string, string[]>): string[] {
  const out: string[] = [];
  for (const [from, targets] of graph) {
    const a = LAYERS.indexOf(folderOf(from) as (typeof LAYERS)[number]);
    if (a < 0) continue;
    for (const to of targets) {
      const folder = folderOf(to);
      const b = LAYERS.indexOf(folder as (typeof LAYERS)[number]);
      if (b > a || OUTSIDE.includes(folder) || folder === "test") out.push(`${from} -> ${to}`);
    }
  }
  return out;
}

/** The cycles of the graph, each as the files around it (Tarjan's strongly connected components). */
function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    indexOf.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!indexOf.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, indexOf.get(w) as number));
    }
    if (low.get(v) === indexOf.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop() as string;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!indexOf.has(v)) visit(v);
  return out;
}

function sourceGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const folders = [...LAYERS, ...OUTSIDE].filter((d) => {
    try {
      readdirSync(join(ROOT, d));
      return true;
    } catch {
      return false;
    }
  });
  for (const dir of folders)
    for (const file of sources(dir)) graph.set(file, importsOf(file, readFileSync(join(ROOT, file), "utf8")));
  return graph;
}

describe("the import graph of the sources", () => {
  const graph = sourceGraph();

  it("reads the imports it must (the graph is not empty and sees type-only and dynamic imports)", () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(
      importsOf(
        "cli/x.ts",
        'import type { A } from "../model/a.js";\nconst m = await import("./b.js");\nexport * from "../report/c.js";',
      ),
    ).toEqual(["model/a.ts", "cli/b.ts", "report/c.ts"]);
  });

  it("finds an upward arrow and a cycle when there is one (the checks can fail)", () => {
    const bad = new Map([
      ["model/a.ts", ["model/b.ts", "report/r.ts"]],
      ["model/b.ts", ["model/a.ts"]],
      ["report/r.ts", ["model/a.ts"]],
    ]);
    expect(upwardArrows(bad)).toEqual(["model/a.ts -> report/r.ts"]);
    expect(cycles(bad)).toEqual([["model/a.ts", "model/b.ts", "report/r.ts"]]);
  });

  it(`has no import from a lower folder to a higher one (${LAYERS.join(" < ")})`, () => {
    expect(upwardArrows(graph)).toEqual([]);
  });

  it("has no import cycle", () => {
    expect(cycles(graph)).toEqual([]);
  });
});
