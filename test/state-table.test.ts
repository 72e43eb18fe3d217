// The state cache's table of visits (workers/strategies/state-cache.ts StateCache): a visit is
// covered only by a remembered visit of the same state with budgets at least as large in every
// dimension and a sleep set contained in its own; the table keeps every state through its growth.
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../dist/properties/check.js";
import { runInline } from "../dist/workers/inline.js";
import { machineFor, memoryFor } from "../dist/workers/setup.js";
import { type Budgets, BufferHash, StateCache, StateHasher } from "../dist/workers/strategies/state-cache.js";

/** A hasher holding the state made of `words`. */
function stateOf(...words: number[]): StateHasher {
  const h = new StateHasher();
  h.reset();
  for (const w of words) h.mix(w);
  return h;
}

const budgets = (
  preemptions: number,
  events: number,
  branches = 0,
  total = Number.POSITIVE_INFINITY,
  stale = 0,
): Budgets => ({
  preemptions,
  events,
  branches,
  stale,
  total,
});

describe("StateCache", () => {
  it("stops remembering at its size limit, and says so, instead of growing", () => {
    // The first table is 65,536 rows of 20 bytes (1.25 MiB): a limit of 2 MiB forbids its doubling,
    // so at three quarters full new states are no longer remembered.
    const cache = new StateCache(2 * 2 ** 20);
    const rows = 65_536;
    for (let i = 0; i < rows; i++) cache.covered(stateOf(i), budgets(1, 1), []);
    expect(cache.full).toBe(true);
    expect(cache.bytes).toBe(rows * 20);
    expect(cache.states).toBe((rows * 3) / 4);
    // A state remembered before the limit is still covered; one met after it is explored again.
    expect(cache.covered(stateOf(0), budgets(1, 1), [])).toBe(true);
    expect(cache.covered(stateOf(rows - 1), budgets(1, 1), [])).toBe(false);
    expect(cache.covered(stateOf(rows - 1), budgets(1, 1), [])).toBe(false);
    const unlimited = new StateCache();
    for (let i = 0; i < rows; i++) unlimited.covered(stateOf(i), budgets(1, 1), []);
    expect(unlimited.full).toBe(false);
    expect(unlimited.states).toBe(rows);
  });

  it("covers a visit only with budgets at least as large in every dimension", () => {
    const cache = new StateCache();
    const s = stateOf(1, 2, 3);
    expect(cache.covered(s, budgets(1, 1, 1, 3), [])).toBe(false);
    expect(cache.covered(s, budgets(1, 1, 1, 3), [])).toBe(true);
    expect(cache.covered(s, budgets(0, 1, 0, 1), [])).toBe(true);
    // More of any one budget left: not covered (and remembered).
    expect(cache.covered(s, budgets(2, 1, 1, 3), [])).toBe(false);
    expect(cache.covered(s, budgets(1, 2, 1, 3), [])).toBe(false);
    expect(cache.covered(s, budgets(1, 1, 2, 3), [])).toBe(false);
    expect(cache.covered(s, budgets(1, 1, 1, 4), [])).toBe(false);
    expect(cache.covered(s, budgets(1, 1, 1, 3, 1), [])).toBe(false);
    // An unbounded total covers every finite one, and is covered only by an unbounded one.
    expect(cache.covered(s, budgets(2, 2, 2), [])).toBe(false);
    expect(cache.covered(s, budgets(2, 2, 2, 5), [])).toBe(true);
    expect(cache.covered(s, budgets(2, 2, 2), [])).toBe(true);
    expect(cache.states).toBe(1);
  });

  it("covers a visit only when the remembered one slept on no more", () => {
    const cache = new StateCache();
    const s = stateOf(7);
    expect(cache.covered(s, budgets(1, 1), ["a", "b"])).toBe(false);
    expect(cache.covered(s, budgets(1, 1), ["b", "a", "c"])).toBe(true);
    expect(cache.covered(s, budgets(1, 1), ["a"])).toBe(false);
    // The visit that slept on {a} now covers {a, x}, which {a, b} did not.
    expect(cache.covered(s, budgets(1, 1), ["a", "x"])).toBe(true);
    expect(cache.covered(s, budgets(1, 1), [])).toBe(false);
    expect(cache.covered(s, budgets(1, 1), ["z"])).toBe(true);
  });

  it("tells states apart by every lane of the hash", () => {
    const cache = new StateCache();
    const s = stateOf(5);
    expect(cache.covered(s, budgets(1, 1), [])).toBe(false);
    for (const lane of ["a", "b", "c"] as const) {
      const t = stateOf(5);
      t[lane] ^= 1;
      expect(cache.covered(t, budgets(0, 0), [])).toBe(false);
    }
    expect(cache.states).toBe(4);
  });

  it("keeps every state and visit through the table's growth", () => {
    const cache = new StateCache();
    const n = 300_000;
    // Lanes drawn at random, so that states share the rows they start probing at (mixing
    // consecutive numbers gives lane a distinct low bits, and no probing at all).
    const lanes = new Uint32Array(3 * n);
    let x = 0x2545f491;
    for (let i = 0; i < lanes.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      lanes[i] = x;
    }
    const stateOf = (i: number) => {
      const h = new StateHasher();
      h.a = lanes[3 * i];
      h.b = lanes[3 * i + 1];
      h.c = lanes[3 * i + 2];
      return h;
    };
    for (let i = 0; i < n; i++) expect(cache.covered(stateOf(i), budgets(1, i % 3), [])).toBe(false);
    expect(cache.states).toBe(n);
    // The table grew past its first 65,536 rows, 20 bytes a row, at most 3/4 of them used.
    expect(cache.bytes).toBeGreaterThanOrEqual(((n * 4) / 3) * 20);
    expect(cache.bytes).toBeLessThanOrEqual(((n * 8) / 3) * 20 + 20);
    let covered = 0;
    let open = 0;
    for (let i = 0; i < n; i++) {
      if (cache.covered(stateOf(i), budgets(1, i % 3), [])) covered++;
      if (!cache.covered(stateOf(i), budgets(1, (i % 3) + 1), [])) open++;
    }
    expect(covered).toBe(n);
    expect(open).toBe(n);
    expect(cache.states).toBe(n);
  });
});

describe("BufferHash", () => {
  it("kept by difference from run to run and through restores, equals the sums made from scratch", () => {
    const config = resolveConfig("nmi-replay", "nmi-path", { mces: 1 });
    const spec = machineFor(config);
    let kept: BufferHash | null = null;
    let saved = memoryFor(spec).newRunState();
    let x = 0x6a09e667;
    const next = () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % 7;
    };
    const seen = new Set<string>();
    for (let run = 0; run < 40; run++) {
      const tape = Array.from({ length: 60 }, next);
      let hasSaved = false;
      const r = runInline(config, { tape }, false, (cpu, m) => {
        if (cpu === -1) return;
        // Now and then a point to come back to, and later a restore of it (as the search resumes).
        const roll = next();
        if (roll === 0) {
          saved = saved.cpu.length === m.cpu.length ? saved : m.newRunState();
          m.saveRun(saved);
          hasSaved = true;
        } else if (roll === 1 && hasSaved) m.restoreRun(saved);
      });
      kept ??= new BufferHash(r.mem);
      kept.update(r.mem);
      const fresh = new BufferHash(r.mem);
      fresh.update(r.mem);
      expect([kept.a, kept.b, kept.c]).toEqual([fresh.a, fresh.b, fresh.c]);
      seen.add(`${kept.a}/${kept.b}/${kept.c}`);
    }
    // Different final states, different sums.
    expect(seen.size).toBeGreaterThan(10);
  });
});
