// SPEC §8: the same configuration and tape give the same event log and final state. Checked on the
// built-in protocols and scenarios, every fetch model and OS, over random tapes: two runs in fresh
// buffers, a run in a reused (dirty) buffer, and a replay of the choices the run recorded.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { H, type MachineMemory } from "../dist/model/memory.js";
import { PROTOCOLS } from "../dist/model/protocols/index.js";
import { SCENARIOS } from "../dist/model/scenarios/index.js";
import { FETCH_MODELS, OS_NAMES, type RunConfig } from "../dist/model/types.js";
import { type RunResult, runInline } from "../dist/workers/inline.js";

type Snapshot = ReturnType<MachineMemory["snapshot"]>;

/** The first difference between two typed arrays, as text ("" when byte-identical). */
function diff(name: string, a: ArrayLike<number>, b: ArrayLike<number>): string {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return `${name}[${i}]: ${a[i]} vs ${b[i]} (lengths ${a.length}, ${b.length})`;
  }
  return "";
}

function bytesOf(v: Int32Array | Uint8Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** Byte-for-byte comparison of the regions that define a run's outcome. */
function compare(a: Snapshot, b: Snapshot, regions: Array<keyof Snapshot>): string {
  for (const k of regions) {
    if (!bytesOf(a[k]).equals(bytesOf(b[k]))) return diff(k, a[k], b[k]) || `${k} differs`;
  }
  return "";
}

const ALL: Array<keyof Snapshot> = ["log", "cpu", "data", "code", "header"];

const protocols = PROTOCOLS.map((p) => p.name);
const scenarios = SCENARIOS.map((s) => s.name);

const configArb = fc
  .record({
    protocol: fc.constantFrom(...protocols),
    scenario: fc.constantFrom(...scenarios),
    fetch: fc.constantFrom(...FETCH_MODELS),
    cpus: fc.integer({ min: 2, max: 4 }),
    os: fc.option(fc.constantFrom(...OS_NAMES), { nil: undefined }),
  })
  .map(({ protocol, scenario, fetch, cpus, os }): RunConfig => {
    const s = SCENARIOS.find((x) => x.name === scenario) ?? SCENARIOS[0];
    const hardware = { cpus, fetch, nmis: s.nmis, mces: s.mces, stepBound: 4000 };
    return { protocol, scenario, hardware: os ? { ...hardware, os } : hardware };
  });

const tapeArb = fc.array(fc.nat(40), { maxLength: 120 });

function recorded(r: RunResult): number[] {
  return Array.from(r.mem.record.subarray(0, r.mem.header[H.recordLen]));
}

describe("determinism", () => {
  it("same configuration and tape: byte-identical log and final state, fresh or reused buffer", () => {
    fc.assert(
      fc.property(configArb, tapeArb, tapeArb, (config, tape, other) => {
        const a = runInline(config, { tape }, true);
        const snapA = a.mem.snapshot();
        const b = runInline(config, { tape }, true);
        expect(b.status).toBe(a.status);
        expect(b.error).toBe(a.error);
        expect(compare(snapA, b.mem.snapshot(), ALL)).toBe("");
        expect(recorded(b)).toEqual(recorded(a));
        // The pooled buffer of this configuration, dirtied by a run of another tape first.
        runInline(config, { tape: other });
        const c = runInline(config, { tape });
        expect(c.status).toBe(a.status);
        expect(compare(snapA, c.mem.snapshot(), ALL)).toBe("");
      }),
      { numRuns: 150 },
    );
  });

  it("the choices a run recorded replay, as a tape, to the same log and final state", () => {
    fc.assert(
      fc.property(configArb, tapeArb, (config, tape) => {
        const a = runInline(config, { tape }, true);
        const choices = recorded(a);
        fc.pre(choices.length < a.mem.record.length);
        const snapA = a.mem.snapshot();
        const r = runInline(config, { tape: choices }, true);
        expect(r.status).toBe(a.status);
        expect(compare(snapA, r.mem.snapshot(), ["log", "cpu", "data", "code"])).toBe("");
      }),
      { numRuns: 100 },
    );
  });

  it("the comparison is not vacuous: tapes change the log", () => {
    const config: RunConfig = {
      protocol: "no-mask",
      scenario: "nmi-path",
      hardware: { cpus: 2, fetch: "bytewise", nmis: 3, mces: 0, stepBound: 4000 },
    };
    const quiet = runInline(config, { tape: [] }, true).mem.snapshot();
    const busy = runInline(config, { tape: [2, 0, 3, 1, 0, 2, 3] }, true).mem.snapshot();
    expect(compare(quiet, busy, ["log"])).not.toBe("");
  });
});
