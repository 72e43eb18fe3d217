// MachineMemory.stackLow, the lowest slot written per CPU and stack segment, is what the search's
// state hash reads each stack segment from (workers/strategies/state-cache hashBuffer): below it every
// slot must be unwritten, or two states differing there would hash alike. Checked against a scan of
// the slots after random runs of every built-in cell with events (NMI frames on the IST stacks,
// #MC frames on theirs), and across the buffer's reuse between runs.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type MachineMemory, STACK_SEGMENTS, STACK_SLOTS, UNWRITTEN_SLOT } from "../dist/model/memory.js";
import { resolveConfig } from "../dist/properties/check.js";
import { runInline } from "../dist/workers/inline.js";
import { sparseTape } from "../dist/workers/strategies/arbitraries.js";

/** The lowest written slot of each CPU's segments, found by scanning (the segment's end if none). */
function scanned(mem: MachineMemory): number[] {
  const out: number[] = [];
  for (let c = 0; c < mem.layout.cpus; c++)
    for (const [lo, hi] of STACK_SEGMENTS) {
      let i = c * STACK_SLOTS + lo;
      const end = c * STACK_SLOTS + hi;
      while (i < end && mem.stack[i] === UNWRITTEN_SLOT) i++;
      out.push(i);
    }
  return out;
}

describe("stackLow", () => {
  it.each([
    ["int3-restartable", "nmi-path"],
    ["xen-4.8", "mce-path"],
    ["nmi-rendezvous", "mce-path"],
    ["linux-text-poke", "entry-pad"],
  ])("is the lowest written slot of each segment after random runs of %s on %s", (protocol, scenario) => {
    const config = resolveConfig(protocol, scenario);
    let istWrites = 0;
    fc.assert(
      fc.property(sparseTape(400, 6), (tape) => {
        const { mem } = runInline(config, { tape });
        const want = scanned(mem);
        expect([...mem.stackLow]).toEqual(want);
        // Some run wrote an IST stack (an event frame): the segments past the main stack are exercised.
        want.forEach((low, k) => {
          const segment = k % STACK_SEGMENTS.length;
          const cpu = Math.floor(k / STACK_SEGMENTS.length);
          if (segment > 0 && low < cpu * STACK_SLOTS + STACK_SEGMENTS[segment][1]) istWrites++;
        });
      }),
      { numRuns: 60, seed: 7 },
    );
    expect(istWrites).toBeGreaterThan(0);
  });
});
