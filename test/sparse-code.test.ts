// Sparse code (model/memory MemoryLayout.code and .writable): a machine's buffer holds only the placed
// code and the write history of the writable ranges, so it does not grow with the distance between
// the functions a scenario reaches; a fetch where nothing is placed is the out-of-code crash, naming
// the address, and a code write outside the writable ranges is an error naming the address.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { check } from "../dist/api/check.js";
import { defineScenario } from "../dist/model/define.js";
import { CrashKind, Ev } from "../dist/model/events.js";
import { CODE_BASE, CodeImage } from "../dist/model/image.js";
import { DEFAULT_HARDWARE, defineMachine, layoutFor } from "../dist/model/machine.js";
import { MachineMemory, RunStatus } from "../dist/model/memory.js";
import { noMask } from "../dist/model/protocols/no-mask.js";
import { call, type Routine, writeCode } from "../dist/model/routine.js";
import type { MachineSpec, Protocol, RunConfig, Scenario } from "../dist/model/types.js";
import { evaluate, readLog } from "../dist/properties/invariants.js";
import { writeElf } from "../dist/scripts/elf-writer.js";
import { runSpec } from "../dist/workers/inline.js";
import { memoryFor } from "../dist/workers/setup.js";
import { sparseTape } from "../dist/workers/strategies/arbitraries.js";

const TEXT = 0xffff82d0_40200000n;
const FRAME = [0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3]; // push rbp; mov rbp, rsp; pop rbp; ret

/**
 * An ELF whose NMI handler calls the patched function beside it, and whose workload lies `distance`
 * bytes above them in a section of its own: the same code, only farther apart. Nothing branches to
 * the workload (the routines call it), so no displacement in the code depends on the distance.
 */
function elfWithWorkloadAt(distance: bigint): Uint8Array {
  const text = new Uint8Array(0x30).fill(0xcc);
  // nmi_work (+0x00): push rbp; mov rbp, rsp; call patched; pop rbp; ret
  text.set([0x55, 0x48, 0x89, 0xe5, 0xe8, 0x10 - 0x09, 0, 0, 0, 0x5d, 0xc3], 0x00);
  text.set(FRAME, 0x10); // patched: the 5-byte jump covers three instructions
  text.set(FRAME, 0x20); // new_patched
  const far = Uint8Array.from(FRAME); // work
  const fn = (name: string, value: bigint, size: number, section: string) =>
    ({ name, value, size, type: "func", bind: "global", section }) as const;
  return writeElf({
    type: "exec",
    sections: [
      { name: ".text", type: 1, flags: 6n, address: TEXT, bytes: text, align: 16 },
      { name: ".text.far", type: 1, flags: 6n, address: TEXT + distance, bytes: far, align: 16 },
    ],
    symbols: [
      fn("nmi_work", TEXT, 11, ".text"),
      fn("patched", TEXT + 0x10n, 6, ".text"),
      fn("new_patched", TEXT + 0x20n, 6, ".text"),
      fn("work", TEXT + distance, 6, ".text.far"),
    ],
  });
}

function scenarioAt(name: string, distance: bigint): Scenario {
  return defineScenario({
    name,
    image: { elf: elfWithWorkloadAt(distance) },
    patch: { target: "patched", payload: "new_patched" },
    workload: "work",
    nmiService: "nmi_work",
  });
}

const near = scenarioAt("sparse-near", 0x1000n);
const far = scenarioAt("sparse-far", 0x80_0000n);

function machine(scenario: Scenario): MachineSpec {
  const config: RunConfig = {
    protocol: noMask.name,
    scenario: scenario.name,
    hardware: { ...DEFAULT_HARDWARE, nmis: 2 },
  };
  return defineMachine(config, noMask, scenario);
}

/** A run's log with every address inside `work` written as `work+offset`: the one thing that moved. */
function trace(
  spec: MachineSpec,
  tape: readonly number[],
): { status: RunStatus; log: string[]; violations: string[] } {
  const mem = memoryFor(spec);
  const { status } = runSpec(spec, { tape }, mem);
  const work = spec.image.symbol("work");
  const name = (v: number) =>
    v >= work.address && v < work.address + work.size ? `work+${v - work.address}` : v;
  const log = readLog(mem).map((r) =>
    JSON.stringify([r.step, r.cpu, r.kind, name(r.addr), name(r.a), name(r.b), name(r.c), name(r.d)]),
  );
  const violations = evaluate(spec, mem).map((v) => `${v.property} ${v.kind} cpu ${v.cpu} step ${v.step}`);
  return { status, log, violations };
}

describe("the buffer does not grow with the span of the code", () => {
  const a = machine(near);
  const b = machine(far);

  it("places the same bytes 4 KiB and 8 MiB apart, in buffers of the same size", () => {
    const gap = (spec: MachineSpec) =>
      spec.image.symbol("work").address - spec.image.symbol("nmi_work").address;
    expect(gap(a)).toBe(0x1000);
    expect(gap(b)).toBe(0x80_0000);
    const segments = (spec: MachineSpec) => spec.image.segments.map((g) => g.bytes.length);
    expect(segments(a)).toEqual([0x26, 6]);
    expect(segments(b)).toEqual(segments(a));
    expect(layoutFor(a).writable).toEqual([{ address: a.sites[0].address, length: 5 }]);
    const size = MachineMemory.bytesFor(layoutFor(a));
    expect(MachineMemory.bytesFor(layoutFor(b))).toBe(size);
    // The buffer of the 8 MiB machine holds neither its span nor a history per byte of it.
    expect(size).toBeLessThan(0x80_0000);
    expect(memoryFor(b).code.length).toBe(0x26 + 6);
    expect(memoryFor(b).historyCount.length).toBe(5);
  });

  it("runs the same: every trace equal but for the workload's addresses, and so every violation", () => {
    const tapes = fc.sample(sparseTape(400, 12), { numRuns: 150, seed: 11 });
    let workRan = 0;
    const found = new Set<string>();
    for (const tape of tapes) {
      const x = trace(a, tape);
      const y = trace(b, tape);
      expect(y).toEqual(x);
      if (x.log.some((r) => r.includes('"work+'))) workRan++;
      for (const v of x.violations) found.add(v.split(" ")[1]);
    }
    // Not vacuous: every run ran the moved workload, and no-mask tore the site in some.
    expect(workRan).toBe(tapes.length);
    expect(found.has("torn-fetch")).toBe(true);
  });

  it("gets the same verdict, with the same counterexample", async () => {
    const options = { runs: 300, seed: 5, strategy: "random" as const, hardware: { nmis: 2 } };
    const x = await check({ protocol: noMask, scenario: near, ...options });
    const y = await check({ protocol: noMask, scenario: far, ...options });
    if (x.kind !== "violated" || y.kind !== "violated") throw new Error(`verdicts ${x.kind} and ${y.kind}`);
    const summary = (v: typeof x) =>
      v.properties.map((p) => [p.property, p.holds, p.violation?.kind, p.violation?.cpu, p.tape]);
    expect(summary(y)).toEqual(summary(x));
    expect(x.properties.find((p) => p.property === "P1")?.violation?.kind).toBe("torn-fetch");
  });
});

describe("what is not placed or not writable", () => {
  // Two segments 64 KiB apart: `jumper` jumps into the space between them, where nothing is placed.
  const gapTarget = CODE_BASE + 0x8000;
  const jump = (from: number, to: number) => {
    const rel = to - (from + 5);
    return [0xe9, rel & 0xff, (rel >> 8) & 0xff, (rel >> 16) & 0xff, (rel >> 24) & 0xff];
  };
  const low = new Uint8Array(0x40).fill(0xcc);
  low.set([0x90, 0xc3], 0x00); // work: nop; ret
  low.set([0x0f, 0x1f, 0x44, 0x00, 0x00, 0xc3], 0x10); // site: nop5; ret
  low.set([0x90, 0xc3], 0x20); // nmi_service
  low.set(jump(CODE_BASE + 0x30, gapTarget), 0x30); // jumper
  const high = Uint8Array.from([0x90, 0xc3]); // payload
  const image = CodeImage.fromSegments(
    [
      { address: CODE_BASE, bytes: low },
      { address: CODE_BASE + 0x1_0000, bytes: high },
    ],
    [
      { name: "work", address: CODE_BASE, size: 2, payload: false },
      { name: "site", address: CODE_BASE + 0x10, size: 6, payload: false },
      { name: "nmi_service", address: CODE_BASE + 0x20, size: 2, payload: false },
      { name: "jumper", address: CODE_BASE + 0x30, size: 5, payload: false },
      { name: "payload", address: CODE_BASE + 0x1_0000, size: 2, payload: true },
    ],
  );
  const build = (program: () => Routine): MachineSpec => {
    const protocol: Protocol = { ...noMask, name: "sparse-litmus" };
    const scenario: Scenario = {
      name: "sparse-litmus",
      summary: "two placed segments",
      functions: [],
      image,
      patch: { target: "site", payload: "payload" },
      nmiService: "nmi_service",
      mceService: ["nmi_service"],
      workload: "work",
      eventRoots: ["nmi_service"],
      annotatedBlacklist: [],
      iterations: 1,
      nmis: 0,
      mces: 0,
      program: (ctx) => (ctx.cpu === 0 ? program() : (function* () {})()),
    };
    const config: RunConfig = {
      protocol: protocol.name,
      scenario: scenario.name,
      hardware: { ...DEFAULT_HARDWARE, cpus: 1, nmis: 0 },
    };
    return defineMachine(config, protocol, scenario);
  };

  it("a fetch where nothing is placed is the out-of-code crash at that address (P4)", () => {
    const spec = build(function* () {
      yield call(image.symbol("jumper").address);
    });
    const mem = memoryFor(spec);
    expect(mem.codeIndex(gapTarget)).toBe(-1);
    const run = runSpec(spec, { tape: [] }, mem);
    expect(run.status).toBe(RunStatus.Crash);
    const crash = readLog(mem).filter((r) => r.kind === Ev.Crash);
    expect(crash.map((r) => [r.cpu, r.a, r.addr])).toEqual([[0, CrashKind.OutOfCode, gapTarget]]);
    expect(evaluate(spec, mem, "P4").map((v) => [v.kind, v.cpu, v.message])).toEqual([
      [
        "out-of-code",
        0,
        `CPU 0 fetched at 0x${gapTarget.toString(16)}, where no code is placed (outside the image, or in a function the scenario does not reach)`,
      ],
    ]);
  });

  it("a routine's call where nothing is placed is an error naming the address", () => {
    const spec = build(function* () {
      yield call(gapTarget);
    });
    const run = runSpec(spec, { tape: [] });
    expect(run.status).toBe(RunStatus.Error);
    expect(run.error).toContain(`calls 0x${gapTarget.toString(16)}, where no code is placed`);
  });

  it("a code write outside the writable ranges is an error naming the address", () => {
    const spec = build(function* () {
      yield call(image.symbol("work").address);
    });
    const mem = memoryFor(spec);
    // Only the 5 bytes of the site have a history.
    expect(mem.layout.writable).toEqual([{ address: CODE_BASE + 0x10, length: 5 }]);
    expect(mem.historyIndex(CODE_BASE + 0x15)).toBe(-1);
    const outside = build(function* () {
      yield writeCode(CODE_BASE + 0x15, [0x90]);
    });
    const run = runSpec(outside, { tape: [] });
    expect(run.status).toBe(RunStatus.Error);
    expect(run.error).toContain("CPU 0 writes code at site+0x5, outside the patch site");
    // Past the site oracle (which the layout's writable ranges come from), the buffer refuses too.
    const unchecked = { ...outside, siteOracle: { ...outside.siteOracle, writable: () => true } };
    const again = runSpec(unchecked, { tape: [] });
    expect(again.status).toBe(RunStatus.Error);
    expect(again.error).toContain(
      "CPU 0 writes code at 0x1015, outside the machine's writable code (0x1010+5)",
    );
  });

  it("the buffer refuses a layout whose writable range is not placed, and an image it was not built for", () => {
    const spec = build(function* () {
      yield call(image.symbol("work").address);
    });
    const layout = layoutFor(spec);
    expect(() => new MachineMemory({ ...layout, writable: [{ address: gapTarget, length: 4 }] })).toThrow(
      `writable code at 0x${gapTarget.toString(16)}..0x${(gapTarget + 4).toString(16)} is not inside one placed range`,
    );
    const other = CodeImage.build([{ name: "f", code: ["ret"] }]);
    expect(() => memoryFor(spec).reset(other)).toThrow(
      "the image's placed code (0x1000+16) is not this buffer's (0x1000+64, 0x11000+2): build the buffer from the same machine",
    );
  });

  it("reset restores the written bytes from the image and clears their history, run after run", () => {
    const site = CODE_BASE + 0x10;
    const spec = build(function* () {
      yield writeCode(site, [0xe9]);
    });
    const mem = memoryFor(spec);
    runSpec(spec, { tape: [] }, mem);
    expect(mem.codeBytes(site, 1)[0]).toBe(0xe9);
    expect(mem.historyCount[mem.historyIndex(site)]).toBe(1);
    mem.reset(spec.image);
    expect(Array.from(mem.codeBytes(site, 6))).toEqual([0x0f, 0x1f, 0x44, 0x00, 0x00, 0xc3]);
    expect(mem.historyCount[mem.historyIndex(site)]).toBe(0);
  });
});
