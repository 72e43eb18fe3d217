// `node dist/bench/search.js SECTION [CELL...]`: figures of the exhaustive search and of the portfolio.
// Prints numbers; asserts nothing about time. Sections:
//   bounds      per cell: executions and time of exhaustive search at increasing bounds
//   reductions  per cell: executions with every reduction and without each one (reduction factors)
//   first       per violated cell and property: time and executions to the first counterexample for
//               exhaustive (iterative deepening), random, PCT and the portfolio, no declared examples
//   proofs      per holds cell of the default matrix: the bounds proven (K=2 E=0, K=1 E=1, then K=2 E=1 and up), each search
//               within a time cap (BUDGET_MS), with executions, distinct states, time and memory; RUNG=i runs
//               only the ladder's i-th rung (2: K=2 E=1), taking the rungs below it as proven by an earlier run
//   caching     one cell (default nmi-replay/nmi-path, K=1 E=1): every reduction with and without state
//               caching, and without caching and DPOR, side by side
//   resume      per cell (default: three), resuming executions from snapshots against re-executing each from
//               the start, side by side: executions (equal) and time (K, E, ROUNDS, BUDGET executions)
//   matrix      the default matrix's wall time without declared examples
//   spin        the cells compared with SPIN, at 3 CPUs: bounds K=0..2, E=0..1 (state caching on unless CACHING=0,
//               each search within BUDGET_MS), then the portfolio
//   variant     text_poke without its final sync (a two-choice bug) on entry-pad: what the default check
//               finds, and what the portfolio of one choice in all (the default before) said
//   speed       single-core speed of the exhaustive search (default reductions, iterative deepening): per
//               cell (default: six), executions, judged, pruned, distinct states, seconds and states/s at
//               K=1 E=1, then at K=2 E=1 within BUDGET_MS (K2=0: skip it); MAX_EXECUTIONS caps both (to
//               compare counts between versions quickly: equal counts, equal searches)
// CELL is protocol/scenario (default: every cell of the matrix; `first` takes the violated ones).
import os from "node:os";
import fc from "fast-check";
import { PROTOCOLS, registerProtocol } from "../model/protocols/index.js";
import { EVERY_TEXT_POKE_STEP, textPokeProtocol } from "../model/protocols/linux-text-poke.js";
import { SCENARIOS } from "../model/scenarios/index.js";
import type { Hardware, MachineSpec, RunConfig } from "../model/types.js";
import { check, resolveConfig, tapeSpan } from "../properties/check.js";
import { SITUATIONS } from "../properties/coverage.js";
import { evaluate, type PropertyId } from "../properties/invariants.js";
import { exhaustive } from "../properties/search.js";
import { runInline } from "../workers/inline.js";
import { type BufferStrategy, machineFor } from "../workers/setup.js";
import { pctParams, sparseChoices } from "../workers/strategies/arbitraries.js";
import {
  DEFAULT_REDUCTIONS,
  NO_REDUCTIONS,
  REDUCTION_NAMES,
  type Reductions,
} from "../workers/strategies/reductions.js";
import { type Bounds, spentOf } from "../workers/strategies/search-tree.js";

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.floor((s.length - 1) / 2)];
};
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function cells(args: string[]): Array<{ protocol: string; scenario: string }> {
  const all = PROTOCOLS.flatMap((p) => SCENARIOS.map((s) => ({ protocol: p.name, scenario: s.name })));
  return args.length === 0
    ? all
    : all.filter((c) => args.some((a) => `${c.protocol}/${c.scenario}`.includes(a)));
}

function specOf(protocol: string, scenario: string, hw: Partial<Hardware> = {}): MachineSpec | null {
  const spec = machineFor(resolveConfig(protocol, scenario, hw));
  return spec.refusal ? null : spec;
}

function declaredViolations(protocol: string, scenario: string): PropertyId[] {
  const e = PROTOCOLS.find((p) => p.name === protocol)?.expected[scenario];
  return e && "violated" in e ? (e.violated as PropertyId[]) : [];
}

const LADDER: Bounds[] = [
  { preemptions: 0, events: 0, branches: 0, stale: 0 },
  { preemptions: 1, events: 0, branches: 0, stale: 0 },
  { preemptions: 0, events: 1, branches: 0, stale: 0 },
  { preemptions: 2, events: 0, branches: 0, stale: 0 },
  { preemptions: 1, events: 1, branches: 0, stale: 0 },
  { preemptions: 2, events: 1, branches: 0, stale: 0 },
];
const b = (x: Bounds) => `K=${x.preemptions} E=${x.events} B=${x.branches}`;

function benchBounds(args: string[], budget: number): void {
  console.log(`exhaustive search at increasing bounds (budget ${budget} executions per search)`);
  for (const { protocol, scenario } of cells(args)) {
    const spec = specOf(protocol, scenario);
    if (!spec) continue;
    for (const bounds of LADDER) {
      const r = exhaustive(spec, {
        bounds,
        maxExecutions: budget,
        deepening: false,
        stopWhenAllViolated: false,
      });
      console.log(
        `  ${protocol}/${scenario}  ${b(bounds)}: ${r.executions} executions (${r.judged} complete runs), ${secs(r.elapsedMs)}${r.complete ? "" : ", stopped: incomplete"}${r.symmetryGivenUp ? "; symmetry given up" : ""}`,
      );
      if (!r.complete) break;
    }
  }
}

function benchReductions(args: string[], bounds: Bounds, budget: number): void {
  console.log(`reduction factors at ${b(bounds)} (budget ${budget} executions per search)`);
  for (const { protocol, scenario } of cells(args)) {
    const spec = specOf(protocol, scenario);
    if (!spec) continue;
    const base = exhaustive(spec, {
      bounds,
      maxExecutions: budget,
      deepening: false,
      stopWhenAllViolated: false,
    });
    const line = [
      `  ${protocol}/${scenario}: all ${base.executions}${base.complete ? "" : "+"} (${secs(base.elapsedMs)})`,
    ];
    for (const name of REDUCTION_NAMES) {
      const r = exhaustive(spec, {
        bounds,
        reductions: { ...DEFAULT_REDUCTIONS, [name]: false },
        maxExecutions: budget,
        deepening: false,
        stopWhenAllViolated: false,
      });
      const factor = r.executions / base.executions;
      line.push(
        `without ${name} ${r.executions}${r.complete ? "" : "+"} (×${factor.toFixed(1)}${r.complete ? "" : " at least"})`,
      );
    }
    const none = exhaustive(spec, {
      bounds,
      reductions: NO_REDUCTIONS,
      maxExecutions: budget,
      deepening: false,
      stopWhenAllViolated: false,
    });
    line.push(
      `none ${none.executions}${none.complete ? "" : "+"} (×${(none.executions / base.executions).toFixed(1)}${none.complete ? "" : " at least"})`,
    );
    console.log(line.join("; "));
  }
}

/** Runs to the first failing run of a property under a fast-check arbitrary (no shrinking), or null. */
function firstFailure<T>(
  config: RunConfig,
  spec: MachineSpec,
  property: PropertyId,
  arb: fc.Arbitrary<T>,
  strategy: (v: T) => BufferStrategy,
  seed: number,
  maxRuns: number,
): { runs: number; ms: number } | null {
  const t0 = performance.now();
  const d = fc.check(
    fc.property(arb, (v) => evaluate(spec, runInline(config, strategy(v)).mem, property).length === 0),
    { seed, numRuns: maxRuns, endOnFailure: true },
  );
  return d.failed ? { runs: d.numRuns, ms: performance.now() - t0 } : null;
}

async function benchFirst(args: string[], seeds: number, maxRuns: number, budget: number): Promise<void> {
  console.log(
    `first counterexample, declared examples off (median of ${seeds} seeds; random and PCT up to ${maxRuns} runs; exhaustive up to ${budget} executions, iterative deepening)`,
  );
  for (const { protocol, scenario } of cells(args)) {
    const spec = specOf(protocol, scenario);
    if (!spec) continue;
    const config = spec.config;
    const span = tapeSpan(config);
    const n = config.hardware.cpus;
    for (const property of declaredViolations(protocol, scenario)) {
      const out: string[] = [];
      const ex = exhaustive(spec, {
        bounds: { preemptions: 2, events: 2, branches: 0, stale: 0 },
        properties: [property],
        maxExecutions: budget,
      });
      const f = ex.findings.get(property);
      out.push(
        f
          ? `exhaustive ${ex.executions} executions ${secs(ex.elapsedMs)}, minimal ${spentOf(f.cost)} choices (${f.cost.preemptions}p ${f.cost.events}e)`
          : `exhaustive none within ${ex.executions} executions (complete to ${ex.level} choices)`,
      );
      const strategies: Array<[string, fc.Arbitrary<unknown>, (v: unknown) => BufferStrategy]> = [
        ["random", sparseChoices(span, 24), (v) => ({ tape: choicesToTapeAny(v) })],
        [
          "pct d=3",
          pctParams(
            n,
            3,
            span,
            config.hardware.nmis + config.hardware.mces,
            (config.hardware.mces > 0 ? 2 : 1) * n,
          ),
          (v) => ({ pct: v as never }),
        ],
      ];
      for (const [name, arb, strategy] of strategies) {
        const found: Array<{ runs: number; ms: number }> = [];
        for (let s = 1; s <= seeds; s++) {
          const r = firstFailure(config, spec, property, arb, strategy, s, maxRuns);
          if (r) found.push(r);
        }
        out.push(
          found.length === 0
            ? `${name} none in ${seeds}×${maxRuns} runs`
            : `${name} ${found.length}/${seeds} seeds, median ${median(found.map((x) => x.runs))} runs ${secs(median(found.map((x) => x.ms)))}`,
        );
      }
      const times: number[] = [];
      let decided = 0;
      for (let s = 1; s <= seeds; s++) {
        const t0 = performance.now();
        const v = await check({
          protocol,
          scenario,
          strategy: "portfolio",
          examples: false,
          seed: s,
          properties: [property],
        });
        if (v.kind === "violated") {
          decided++;
          times.push(performance.now() - t0);
        }
      }
      out.push(
        `portfolio ${decided}/${seeds} seeds, median ${secs(median(times))} to a verdict with a counterexample`,
      );
      console.log(`  ${protocol}/${scenario} ${property}: ${out.join("; ")}`);
    }
  }
}

function choicesToTapeAny(v: unknown): number[] {
  const pairs = v as Array<[number, number]>;
  const length = pairs.reduce((m, [p]) => Math.max(m, p + 1), 0);
  const tape = new Array<number>(length).fill(0);
  for (const [p, x] of pairs) tape[p] = x;
  return tape;
}

/** The bounds a holds cell is tried at, in order (each search given the time cap). */
// Each rung is tried only when every rung it extends was proven (a search that could not finish
// within the cap at K=1 E=1 will not at K=2 E=1).
const PROOF_LADDER: Array<{ bounds: Bounds; after: number[] }> = [
  { bounds: { preemptions: 2, events: 0, branches: 0, stale: 0 }, after: [] },
  { bounds: { preemptions: 1, events: 1, branches: 0, stale: 0 }, after: [] },
  { bounds: { preemptions: 2, events: 1, branches: 0, stale: 0 }, after: [0, 1] },
  { bounds: { preemptions: 3, events: 1, branches: 0, stale: 0 }, after: [2] },
  { bounds: { preemptions: 2, events: 2, branches: 0, stale: 0 }, after: [2] },
];

function benchProofs(args: string[], budgetMs: number): void {
  console.log(
    `holds cells of the default matrix: the bounds proven, every reduction on, state caching ${num("CACHING", 1) === 1 ? "on (DPOR off)" : "off"} (each search given ${secs(budgetMs)} at most); load ${loadAverage()}`,
  );
  for (const { protocol, scenario } of cells(args)) {
    if (declaredViolations(protocol, scenario).length > 0) continue;
    const spec = specOf(protocol, scenario);
    if (!spec) continue;
    const proven: string[] = [];
    const ok: boolean[] = [];
    const only = num("RUNG", -1);
    for (const [rung, { bounds, after }] of PROOF_LADDER.slice(
      0,
      num("RUNGS", PROOF_LADDER.length),
    ).entries()) {
      if (only >= 0 && rung !== only) {
        ok.push(true);
        continue;
      }
      if (!after.every((i) => ok[i])) {
        ok.push(false);
        continue;
      }
      const r = exhaustive(spec, {
        bounds,
        reductions: proofReductions(),
        deepening: false,
        stopWhenAllViolated: false,
        maxMs: budgetMs,
      });
      const reached = SITUATIONS.filter((_, i) => r.coverage[i] > 0).map((x) => x.id);
      console.log(
        `  ${protocol}/${scenario} ${b(bounds)}: ${r.complete ? (r.findings.size > 0 ? "violated" : "proven") : "stopped"}, ${r.executions} executions, ${r.states} distinct states, ${secs(r.elapsedMs)}, ${reached.length} of ${r.coverage.length} situations reached (${reached.join(", ") || "none"}); ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB resident; load ${loadAverage()}`,
      );
      ok.push(r.complete && r.findings.size === 0);
      if (r.complete && r.findings.size === 0) proven.push(b(bounds));
    }
    console.log(`  ${protocol}/${scenario}: proven at ${proven.join(", ") || "none of them"}`);
  }
}

/** The state cache's reduction factor on one cell: every reduction, with and without it, side by side. */
function benchCaching(args: string[], bounds: Bounds, budgetMs: number): void {
  const [cell = "nmi-replay/nmi-path"] = args;
  const [protocol, scenario] = cell.split("/");
  const spec = specOf(protocol, scenario);
  if (!spec) return;
  console.log(
    `state caching on ${cell} at ${b(bounds)} (each search given ${secs(budgetMs)} at most); load ${loadAverage()}`,
  );
  const configs: Array<[string, Reductions]> = [
    ["the default reductions with state caching", { ...DEFAULT_REDUCTIONS, stateCaching: true }],
    ["the default reductions and DPOR", { ...DEFAULT_REDUCTIONS, dpor: true }],
    ["the default reductions (no DPOR, no state caching)", { ...DEFAULT_REDUCTIONS }],
  ];
  for (const [name, reductions] of configs) {
    const r = exhaustive(spec, {
      bounds,
      reductions,
      deepening: false,
      stopWhenAllViolated: false,
      maxMs: budgetMs,
    });
    console.log(
      `  ${name}: ${r.complete ? "complete" : "stopped"}, ${r.executions} executions (${r.judged} judged; pruned ${JSON.stringify(r.pruned)}), ${r.states} distinct states, ${secs(r.elapsedMs)}, situations ${r.coverage.join("/")}`,
    );
  }
}

/**
 * Resuming executions from snapshots against re-executing each from the start, per cell, side by side
 * (interleaved, so that load affects both alike): executions must be equal; time is the figure.
 */
function benchResume(args: string[], bounds: Bounds, rounds: number): void {
  const list =
    args.length > 0 ? args : ["no-mask/normal", "nmi-replay/nmi-path", "int3-restartable/mce-path"];
  console.log(
    `resuming from snapshots vs re-executing from the start, ${b(bounds)}, every reduction with state caching, ${rounds} rounds interleaved; load ${loadAverage()}`,
  );
  for (const cell of list) {
    const [protocol, scenario] = cell.split("/");
    const spec = specOf(protocol, scenario);
    if (!spec) continue;
    const times: Record<string, number[]> = { resumed: [], restarted: [] };
    const counts = new Set<string>();
    let resumed = 0;
    for (let round = 0; round < rounds; round++)
      for (const resume of [true, false]) {
        const r = exhaustive(spec, {
          bounds,
          reductions: { ...DEFAULT_REDUCTIONS, stateCaching: true },
          deepening: false,
          stopWhenAllViolated: false,
          resume,
          maxExecutions: num("BUDGET", 100_000),
        });
        times[resume ? "resumed" : "restarted"].push(r.elapsedMs);
        counts.add(`${r.executions} executions, ${r.states} states, ${r.complete ? "complete" : "stopped"}`);
        if (resume) resumed = r.resumed;
      }
    const from = median(times.restarted);
    const to = median(times.resumed);
    console.log(
      `  ${cell}: ${[...counts].join(" / ")}${counts.size > 1 ? " (DIFFERENT)" : ""}; ${resumed} resumed; from the start ${secs(from)}, resumed ${secs(to)} (medians): ${(from / to).toFixed(2)}x`,
    );
  }
}

/** Every default reduction, with state caching unless CACHING=0 (the proofs and the SPIN comparison). */
const proofReductions = (): Reductions => ({ ...DEFAULT_REDUCTIONS, stateCaching: num("CACHING", 1) === 1 });

const loadAverage = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(" ");

async function benchMatrix(strategy: "portfolio" | "random"): Promise<void> {
  const t0 = performance.now();
  let mismatches = 0;
  for (const { protocol, scenario } of cells([])) {
    const v = await check({ protocol, scenario, strategy, examples: false, seed: 1 });
    if (v.kind === "refused") continue;
    const got = v.kind === "error" ? ["error"] : v.properties.filter((p) => !p.holds).map((p) => p.property);
    const want = declaredViolations(protocol, scenario);
    if (got.sort().join() !== [...want].sort().join()) {
      mismatches++;
      console.log(
        `  ${protocol}/${scenario}: got ${got.join(" ") || "holds"}, declared ${want.join(" ") || "holds"}`,
      );
    }
  }
  console.log(
    `the default matrix with ${strategy}, inline engine, no declared examples: ${secs(performance.now() - t0)}, ${mismatches} verdicts differ from the declared ones`,
  );
}

/** A protocol variant the project does not ship, through the default check and the old default's depth. */
async function benchVariant(): Promise<void> {
  const variant = textPokeProtocol(
    { name: "text-poke-without-final-sync", summary: "no sync after the first bytes", expected: {} },
    { ...EVERY_TEXT_POKE_STEP, syncAfterFirsts: false },
  );
  registerProtocol(variant);
  console.log(`text_poke without its final sync on entry-pad (bytewise fetch); load ${loadAverage()}`);
  const runs: Array<[string, Parameters<typeof check>[0]]> = [
    ["the default check (K1 E1, then random and PCT)", { protocol: variant.name, scenario: "entry-pad" }],
    [
      "one choice in all within 3,200 executions, then random and PCT (the default before)",
      { protocol: variant.name, scenario: "entry-pad", total: 1, maxExecutions: 3_200 },
    ],
  ];
  for (const [name, opts] of runs) {
    const t0 = performance.now();
    const v = await check(opts);
    const p4 = v.kind === "violated" ? v.properties.find((p) => p.property === "P4" && !p.holds) : undefined;
    const ex = v.kind === "refused" || v.kind === "error" ? undefined : v.search?.exhaustive;
    console.log(
      `  ${name}: ${v.kind}${p4 ? ` (P4 ${p4.violation?.kind} on CPU ${p4.violation?.cpu}, ${p4.how}${p4.cost ? `, ${p4.cost.preemptions} preemption + ${p4.cost.events} event${p4.minimal ? ", minimal" : ""}` : ""})` : ""}; ${ex ? `${ex.executions} executions${ex.complete ? ", complete" : `, stopped at level ${ex.level}`}; ` : ""}${v.kind === "refused" || v.kind === "error" ? "" : `${v.runs} runs in all; `}${secs(performance.now() - t0)}`,
    );
  }
}

async function benchSpin(): Promise<void> {
  console.log(
    `at 3 CPUs (SPIN on a hand model: int3-restartable/mce-path 27 s exhaustive, easy cells 0.6-1.8 s); every reduction, state caching ${num("CACHING", 1) === 1 ? "on" : "off"}, each search capped at ${secs(num("BUDGET_MS", 60_000))}; load ${loadAverage()}`,
  );
  for (const [protocol, scenario] of [
    ["int3-restartable", "mce-path"],
    ["xen-4.8", "nmi-path"],
    ["no-mask", "nmi-path"],
  ]) {
    const spec = specOf(protocol, scenario, { cpus: 3 });
    if (!spec) continue;
    for (const bounds of LADDER) {
      const r = exhaustive(spec, {
        bounds,
        reductions: proofReductions(),
        stopWhenAllViolated: false,
        maxExecutions: 2_000_000,
        maxMs: num("BUDGET_MS", 60_000),
      });
      const found = [...r.findings.entries()].map(([p, f]) => `${p}(${spentOf(f.cost)})`).join(" ");
      console.log(
        `  ${protocol}/${scenario} 3 CPUs ${b(bounds)}: ${r.executions} executions, ${r.states} distinct states, ${secs(r.elapsedMs)}${r.complete ? "" : " (stopped)"}; violated: ${found || "none"}`,
      );
    }
    const t0 = performance.now();
    const v = await check({
      protocol,
      scenario,
      strategy: "portfolio",
      examples: false,
      hardware: { cpus: 3 },
    });
    console.log(
      `  ${protocol}/${scenario} 3 CPUs portfolio: ${
        v.kind === "violated" || v.kind === "holds"
          ? v.properties
              .filter((p) => !p.holds)
              .map((p) => p.property)
              .join(" ") || "holds"
          : v.kind
      } in ${secs(performance.now() - t0)}`,
    );
  }
}

/**
 * Raw speed of one core: the searches of the default check's exhaustive part, timed one after the
 * other in this process. The counts (executions, judged, pruned, states, situations) are the search's
 * own and must not change with an optimization; the time and the states per second are the figure.
 */
function benchSpeed(args: string[], budgetMs: number): void {
  const list =
    args.length > 0
      ? args
      : [
          "nmi-replay/nmi-path",
          "no-mask/normal",
          "xen-4.8/nmi-path",
          "nmi-rendezvous/nmi-path",
          "xen-4.8/mce-path",
          "int3-restartable/mce-path",
        ];
  const maxExecutions = num("MAX_EXECUTIONS", Number.POSITIVE_INFINITY);
  console.log(
    `single-core speed, default reductions, iterative deepening${Number.isFinite(maxExecutions) ? `, at most ${maxExecutions} executions` : ""}; load ${loadAverage()}`,
  );
  const rungs: Array<{ bounds: Bounds; maxMs?: number }> = [
    { bounds: { preemptions: 1, events: 1, branches: 0, stale: 0 } },
  ];
  if (num("K2", 1) === 1)
    rungs.push({ bounds: { preemptions: 2, events: 1, branches: 0, stale: 0 }, maxMs: budgetMs });
  for (const cell of list) {
    const [protocol, scenario] = cell.split("/");
    const spec = specOf(protocol, scenario);
    if (!spec) continue;
    for (const { bounds, maxMs } of rungs) {
      // CPU time beside wall time: on a loaded machine the process's own time is the steadier figure.
      const cpu0 = process.cpuUsage();
      const r = exhaustive(spec, { bounds, stopWhenAllViolated: false, maxExecutions, maxMs });
      const used = process.cpuUsage(cpu0);
      const cpuS = (used.user + used.system) / 1e6;
      const s = r.elapsedMs / 1000;
      console.log(
        `  ${cell} ${b(bounds)}: ${r.complete ? "complete" : "stopped"}, ${r.executions} executions, ${r.judged} judged, ${r.resumed} resumed, pruned ${r.pruned.sleep}/${r.pruned.placement}/${r.pruned.cache}, ${r.states} states, situations ${r.coverage.join("/")}, violated ${[...r.findings.keys()].join(" ") || "none"}; ${s.toFixed(2)} s (${cpuS.toFixed(2)} s CPU), ${Math.round(r.states / s)} states/s (${Math.round(r.states / cpuS)} per CPU second), ${Math.round(r.executions / s)} executions/s; load ${loadAverage()}`,
      );
    }
  }
}

const [section = "", ...rest] = process.argv.slice(2);
const num = (name: string, fallback: number) => {
  const v = process.env[name];
  return v === undefined ? fallback : Number(v);
};
switch (section) {
  case "bounds":
    benchBounds(rest, num("BUDGET", 200_000));
    break;
  case "reductions":
    benchReductions(
      rest,
      { preemptions: num("K", 1), events: num("E", 0), branches: 0, stale: 0 },
      num("BUDGET", 200_000),
    );
    break;
  case "first":
    await benchFirst(rest, num("SEEDS", 5), num("RUNS", 20_000), num("BUDGET", 100_000));
    break;
  case "proofs":
    benchProofs(rest, num("BUDGET_MS", 300_000));
    break;
  case "caching":
    benchCaching(
      rest,
      { preemptions: num("K", 1), events: num("E", 1), branches: 0, stale: 0 },
      num("BUDGET_MS", 600_000),
    );
    break;
  case "resume":
    benchResume(
      rest,
      { preemptions: num("K", 1), events: num("E", 1), branches: 0, stale: 0 },
      num("ROUNDS", 3),
    );
    break;
  case "matrix":
    await benchMatrix(rest[0] === "random" ? "random" : "portfolio");
    break;
  case "spin":
    await benchSpin();
    break;
  case "variant":
    await benchVariant();
    break;
  case "speed":
    benchSpeed(rest, num("BUDGET_MS", 60_000));
    break;
  default:
    console.log(
      "sections: bounds, reductions, first, proofs, caching, resume, matrix, spin, variant, speed (see the head of bench/search.ts)",
    );
}
