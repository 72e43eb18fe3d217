// The threaded engine (SPEC §9) against the inline reference: same buffers byte for byte on random
// tapes, and every way a run can go wrong (a routine throws, a worker dies, a routine never yields)
// ends that run with a clear error while the pool keeps working.
import { existsSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { H, RunStatus } from "../dist/model/memory.js";
import { PROGRESS_WORDS } from "../dist/model/progress.js";
import { PROTOCOLS } from "../dist/model/protocols/index.js";
import { SCENARIOS } from "../dist/model/scenarios/index.js";
import { FETCH_MODELS, type FetchModel, type RunConfig } from "../dist/model/types.js";
import { closeUnitEngines, default as runUnit } from "../dist/session/check-worker.js";
import { loadProtocolModules, threadSetup } from "../dist/session/modules.js";
import type { RunResult, Strategy } from "../dist/workers/engine.js";
import { runInline } from "../dist/workers/inline.js";
import { pctParams, sparseTape } from "../dist/workers/strategies/arbitraries.js";
import {
  createThreadedEngine,
  KEPT_CONFIGURATIONS,
  type ThreadedEngine,
  workerFile,
} from "../dist/workers/threaded.js";

const here = dirname(fileURLToPath(import.meta.url));
const BAD_PROTOCOLS = join(here, "fixtures", "bad-protocols.mjs");
const BUILT_IN = PROTOCOLS.map((p) => p.name); // before the fixture's protocols are registered
const STEP_BOUND = 3000;

function configOf(protocol: string, scenario: string, fetch: FetchModel, cpus: number): RunConfig {
  const s = SCENARIOS.find((x) => x.name === scenario);
  if (!s) throw new Error(`no scenario ${scenario}`);
  return { protocol, scenario, hardware: { cpus, fetch, nmis: s.nmis, mces: s.mces, stepBound: STEP_BOUND } };
}

/** Where two runs' outcomes first differ (region, index, values), or undefined when they are identical. */
function difference(a: RunResult, b: RunResult): string | undefined {
  if (a.status !== b.status) return `status ${a.status} vs ${b.status} (${a.error ?? b.error ?? ""})`;
  const sa = a.mem.snapshot();
  const sb = b.mem.snapshot();
  for (const region of ["header", "log", "cpu", "data", "code"] as const) {
    const x = sa[region];
    const y = sb[region];
    if (x.length !== y.length) return `${region}: ${x.length} vs ${y.length} entries`;
    for (let i = 0; i < x.length; i++) {
      if (x[i] !== y[i]) return `${region}[${i}]: ${x[i]} vs ${y[i]}`;
    }
  }
  return undefined;
}

async function expectSameAsInline(engine: ThreadedEngine, config: RunConfig, strategy: Strategy) {
  const threaded = await engine.run(config, strategy);
  const inline = runInline(config, strategy, true);
  expect(threaded.error, JSON.stringify(config)).toBeUndefined();
  expect(
    difference(threaded, inline),
    `${JSON.stringify(config)} ${JSON.stringify(strategy)}`,
  ).toBeUndefined();
  return threaded;
}

/** Tapes as check() makes them (sparse), dense small-valued tapes, and PCT parameters. */
function strategyArb(cpus: number, events: number, eventKinds: number): fc.Arbitrary<Strategy> {
  return fc.oneof(
    sparseTape(256, 24).map((tape) => ({ tape })),
    fc.array(fc.nat(30), { maxLength: 300 }).map((tape) => ({ tape })),
    pctParams(cpus, 3, 256, events, eventKinds).map((pct) => ({ pct })),
  );
}

let engine: ThreadedEngine;

/**
 * Sources newer than their compiled files: the workers would run other code than this thread, and
 * the engines would disagree for a reason that has nothing to do with the engine.
 */
function staleCompiledFiles(): string[] {
  const root = join(here, "..");
  const stale: string[] = [];
  for (const dir of ["model", "properties", "workers"]) {
    for (const file of readdirSync(join(root, dir), { recursive: true, encoding: "utf8" })) {
      if (!file.endsWith(".ts")) continue;
      const source = join(root, dir, file);
      const compiled = join(root, "dist", dir, file.replace(/\.ts$/, ".js"));
      if (!existsSync(compiled) || statSync(compiled).mtimeMs < statSync(source).mtimeMs) stale.push(source);
    }
  }
  return stale;
}

beforeAll(async () => {
  const worker = workerFile();
  if (!existsSync(worker)) {
    throw new Error(`${worker} is missing: the workers load the compiled engine; build first (npx tsc -p .)`);
  }
  const stale = staleCompiledFiles();
  if (stale.length > 0) {
    throw new Error(
      `dist/ is older than ${stale.join(", ")}: the workers run dist/, so build first (npx tsc -p .)`,
    );
  }
  await loadProtocolModules([BAD_PROTOCOLS]);
  engine = createThreadedEngine({
    parallel: 3,
    setup: threadSetup({ modules: [BAD_PROTOCOLS] }),
    watchdogMs: 3000,
  });
});

afterAll(async () => {
  await engine?.close();
});

describe("threaded engine gives the inline engine's answers", () => {
  for (const scenario of SCENARIOS) {
    for (const fetch of FETCH_MODELS) {
      it(`${scenario.name}, fetch ${fetch}: same log and final state on random tapes`, async () => {
        const arb = fc
          .record({ protocol: fc.constantFrom(...BUILT_IN), cpus: fc.integer({ min: 2, max: 4 }) })
          .chain(({ protocol, cpus }) =>
            strategyArb(cpus, scenario.nmis + scenario.mces, (scenario.mces > 0 ? 2 : 1) * cpus).map(
              (strategy) => ({ config: configOf(protocol, scenario.name, fetch, cpus), strategy }),
            ),
          );
        await fc.assert(
          fc.asyncProperty(arb, async ({ config, strategy }) => {
            await expectSameAsInline(engine, config, strategy);
          }),
          { numRuns: 18 },
        );
      });
    }
  }

  it("runs several machines at once, each with its own buffer", async () => {
    const cases = fc.sample(
      fc.record({
        protocol: fc.constantFrom(...BUILT_IN),
        scenario: fc.constantFrom(...SCENARIOS.map((s) => s.name)),
        fetch: fc.constantFrom(...FETCH_MODELS),
        cpus: fc.integer({ min: 2, max: 4 }),
        tape: sparseTape(256, 24),
      }),
      { numRuns: 10, seed: 11 },
    );
    const configs = cases.map((c) => configOf(c.protocol, c.scenario, c.fetch, c.cpus));
    // All at once: more runs than slots (parallel 3), so some wait for a slot and reuse threads.
    const results = await Promise.all(cases.map((c, i) => engine.run(configs[i], { tape: c.tape })));
    results.forEach((threaded, i) => {
      const inline = runInline(configs[i], { tape: cases[i].tape }, true);
      expect(threaded.error).toBeUndefined();
      expect(difference(threaded, inline), JSON.stringify(cases[i])).toBeUndefined();
    });
    // The buffers are distinct: each result still holds its own run after all of them ended.
    expect(new Set(results.map((r) => r.mem.buffer)).size).toBe(results.length);
  });

  it("keeps free buffers for a bounded number of configurations, however many run through it", async () => {
    // More configurations than are kept, one after the other (step bounds make them distinct).
    const count = KEPT_CONFIGURATIONS + 4;
    for (let i = 0; i < count; i++) {
      const config: RunConfig = { ...configOf("no-mask", "normal", "bytewise", 2) };
      config.hardware = { ...config.hardware, stepBound: 20_000 + i };
      const r = await engine.run(config, { tape: [] });
      expect(r.error).toBeUndefined();
    }
    const kept = engine.keptBuffers;
    expect(kept.configurations).toBe(KEPT_CONFIGURATIONS);
    expect(kept.buffers).toBeLessThanOrEqual(KEPT_CONFIGURATIONS * 3);
  });
});

describe("threaded engine failures", () => {
  const afterFailure = configOf("xen-4.8", "nmi-path", "bytewise", 4);

  it("a routine that throws ends the run with Error naming the CPU, the routine and the step", async () => {
    const config = configOf("test-throws", "nmi-path", "bytewise", 4);
    const threaded = await engine.run(config, { tape: [] });
    expect(threaded.status).toBe(RunStatus.Error);
    expect(threaded.mem.header[H.errorCpu]).toBe(3);
    expect(threaded.error).toMatch(
      /^CPU 3 at step \d+: deliberate failure in a protocol routine \(thrown at .*poll .*bad-protocols\.mjs:\d+/,
    );
    // The same routine throws in the inline engine at the same step.
    const inline = runInline(config, { tape: [] }, true);
    expect(inline.status).toBe(RunStatus.Error);
    const stepOf = (m: string | undefined) => m?.match(/at step (\d+)/)?.[1];
    expect(stepOf(threaded.error)).toBeDefined();
    expect(stepOf(threaded.error)).toBe(stepOf(inline.error));
    await expectSameAsInline(engine, afterFailure, { tape: [1, 0, 5, 2] });
  });

  it("a worker that dies ends the run with a clear error, and the next run works", async () => {
    const threaded = await engine.run(configOf("test-dies", "nmi-path", "bytewise", 4), { tape: [] });
    expect(threaded.status).toBe(RunStatus.Error);
    expect(threaded.error).toMatch(
      /^CPU 1's worker died at step \d+ \(CPU 1 held the token\): .*exited with code: 1/,
    );
    await expectSameAsInline(engine, afterFailure, { tape: [2, 0, 0, 6, 1] });
    await expectSameAsInline(engine, configOf("no-mask", "entry-pad", "stale", 3), { tape: [3, 3, 0, 1] });
  });

  it("a routine stuck in a loop is stopped by the watchdog, and the next run works", async () => {
    const threaded = await engine.run(configOf("test-spins", "nmi-path", "bytewise", 4), { tape: [] });
    expect(threaded.status).toBe(RunStatus.Error);
    expect(threaded.mem.header[H.errorCpu]).toBe(1);
    expect(threaded.error).toMatch(
      /^CPU 1 held the token at step \d+ and made no progress in \d+ ms of its own CPU time in routine 'poll' of protocol 'test-spins' .*the watchdog stopped the run/,
    );
    await expectSameAsInline(engine, afterFailure, { tape: [0, 4, 0, 1] });
    // Every CPU again: the terminated threads were replaced.
    await Promise.all([
      expectSameAsInline(engine, afterFailure, { tape: [] }),
      expectSameAsInline(engine, configOf("nmi-replay", "mce-path", "atomic", 4), { tape: [9, 1] }),
      expectSameAsInline(engine, configOf("linux-text-poke", "normal", "bytewise", 4), { tape: [5] }),
    ]);
  });

  it("rejects an unknown protocol before starting any thread, as the inline engine does", async () => {
    const config = configOf("no-such-protocol", "nmi-path", "bytewise", 2);
    await expect(engine.run(config, { tape: [] })).rejects.toThrow(/unknown protocol 'no-such-protocol'/);
  });
});

describe("confirmation of a counterexample on the threaded engine (session/check-worker)", () => {
  afterAll(async () => {
    await closeUnitEngines();
  });

  const confirmOne = async (protocol: string) => {
    const r = await runUnit({
      kind: "confirm",
      runs: [{ config: configOf(protocol, "normal", "bytewise", 4), tape: [] }],
      modules: [BAD_PROTOCOLS],
      progress: new SharedArrayBuffer(PROGRESS_WORDS * 4),
      watchdogMs: 3000,
    });
    if (r.kind !== "confirm") throw new Error(`expected confirmations, got ${r.kind}`);
    return r.confirmations[0];
  };

  it("finds the same log record for record, on a thread per CPU", async () => {
    const c = await confirmOne("xen-4.8");
    expect(c.difference).toBeUndefined();
    expect(c.threads).toBe(4);
    expect(c.records).toBeGreaterThan(0);
  });

  it("names the first record where the logs differ", async () => {
    // This thread is the main thread: the divergent master takes its extra step only on the workers.
    const c = await confirmOne("test-diverges");
    expect(c.difference).toMatch(/^record \d+ differs \(of \d+ inline, \d+ threaded\)$/);
  });
});
