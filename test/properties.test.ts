// The properties of SPEC §7 (properties/invariants.ts) judged on small machines. For each property a
// run that violates it, asserted down to the violation's kind, CPU, step and message, beside a run that
// differs in one respect and satisfies it. P5 is also found by the real checker (properties/check.ts)
// on a protocol that deadlocks in some interleavings only.
import { describe, expect, it } from "vitest";
import { ContextKind, Ev } from "../dist/model/events.js";
import { H, RunStatus } from "../dist/model/memory.js";
import { registerProtocol } from "../dist/model/protocols/index.js";
import {
  add,
  call,
  cmpxchg,
  eq,
  load,
  Mark,
  mark,
  type Routine,
  sendNmi,
  store,
  type WordTable,
  waitUntil,
  writeCode,
} from "../dist/model/routine.js";
import type { MachineSpec, Protocol, RoutineContext } from "../dist/model/types.js";
import { hex } from "../dist/model/x86.js";
import { check } from "../dist/properties/check.js";
import { evaluate } from "../dist/properties/invariants.js";
import { decodeToken } from "../dist/properties/token.js";
import { runInline } from "../dist/workers/inline.js";
import { machineFor } from "../dist/workers/setup.js";
import { type LitmusDef, type LitmusRun, litmus } from "./helpers/litmus.js";

function expectStatus(run: LitmusRun, status: RunStatus): void {
  expect(run.status, `${run.error ?? ""}\n${run.dump()}`).toBe(status);
}

describe("P2 nmi-replayed", () => {
  // An NMI callback that lets the real service run for the first `serviceFirst` NMIs it sees on the
  // CPUs in `swallowOn` and swallows the later ones (as Xen 4.8's mask_nmi_callback does while patching).
  const def = (cpus: number, serviceFirst: number, swallowOn: number[] = [0]): LitmusDef => ({
    cpus,
    nmis: 2,
    words: ["calls", "a"],
    *nmiCallback(ctx, env) {
      const seen = yield add(env.w.calls, 1);
      if (!swallowOn.includes(ctx.cpu) || seen < serviceFirst) return 0;
      yield mark(Mark.NmiSwallowed);
      return 1;
    },
    *program(_ctx, env) {
      for (let i = 1; i <= 8; i++) yield store(env.w.a, i);
    },
  });
  // [CPU 0, NMI 0]: NMI#1 arrives and is handled; NMI#2 arrives later, while the base routine stores.
  const apart = [1, ...Array.from({ length: 12 }, () => 0), 1];

  it("P2: an NMI whose handler never reaches the real service is lost, even after an earlier service", () => {
    const m = litmus(def(1, 1));
    const run = m.run(apart);
    expectStatus(run, RunStatus.Finished);
    const arrivals = run.of(Ev.NmiArrive, 0);
    expect(arrivals).toHaveLength(2);
    expect(arrivals[1].index).toBeGreaterThan(run.at(Ev.Iret, 0, 0)); // the first handler had returned
    const service = run.of(Ev.Mark, 0).filter((r) => r.a === Mark.NmiService);
    expect(service).toHaveLength(1);
    const swallowed = run.of(Ev.Mark, 0).filter((r) => r.a === Mark.NmiSwallowed);
    expect(swallowed).toHaveLength(1);
    expect(evaluate(m.spec, run.mem, "P2")).toEqual([
      {
        property: "P2",
        kind: "nmi-lost",
        cpu: 0,
        step: arrivals[1].step,
        message: `the NMI sent to CPU 0 at step ${arrivals[1].step} was never serviced (swallowed by the mask callback at step ${swallowed[0].step})`,
      },
    ]);
    // The same tape when the callback swallows nothing: both NMIs serviced.
    const kept = litmus(def(1, 2));
    expect(evaluate(kept.spec, kept.run(apart).mem, "P2")).toEqual([]);
  });

  it("P2: one service start covers every NMI that arrived before it (H2 coalescing)", () => {
    const m = litmus(def(1, 1));
    // NMI#1 arrives; CPU 0 takes it; NMI#2 arrives before the handler's service starts. NMI#2 is
    // delivered after the IRET and swallowed, but the service that ran after its arrival covers it.
    const run = m.run([1, 0, 1]);
    expectStatus(run, RunStatus.Finished);
    const arrivals = run.of(Ev.NmiArrive, 0);
    const service = run.of(Ev.Mark, 0).filter((r) => r.a === Mark.NmiService);
    expect(service).toHaveLength(1);
    expect(arrivals[1].index).toBeLessThan(service[0].index);
    expect(run.of(Ev.Mark, 0).filter((r) => r.a === Mark.NmiSwallowed)).toHaveLength(1);
    expect(evaluate(m.spec, run.mem, "P2")).toEqual([]);
  });

  it("P2: a service start on another CPU does not cover an NMI", () => {
    const m = litmus(def(2, 0, [0]));
    // [CPU 0, CPU 1, NMI 0, NMI 1]: an NMI to CPU 1, then one to CPU 0; CPU 1 services its NMI after
    // CPU 0's NMI arrived, CPU 0 swallows its own.
    const run = m.run([3, 2]);
    expectStatus(run, RunStatus.Finished);
    const toCpu0 = run.of(Ev.NmiArrive, 0);
    const service1 = run.of(Ev.Mark, 1).filter((r) => r.a === Mark.NmiService);
    expect(service1).toHaveLength(1);
    expect(service1[0].index).toBeGreaterThan(toCpu0[0].index);
    const v = evaluate(m.spec, run.mem, "P2");
    expect(v.map((x) => [x.kind, x.cpu, x.step])).toEqual([["nmi-lost", 0, toCpu0[0].step]]);
  });

  it("P2: NMIs sent by routines (NMI IPIs) need no service; only the world's NMIs do", () => {
    const m = litmus({
      ...def(1, 0),
      nmis: 0,
      *program() {
        yield sendNmi("self");
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Finished);
    expect(run.of(Ev.Mark, 0).map((r) => r.a)).toEqual([Mark.NmiSwallowed]);
    expect(evaluate(m.spec, run.mem, "P2")).toEqual([]);
  });
});

describe("P3 no-ist-clobber", () => {
  it("P3: names the CPU, the IST stack and the IRET that let the nested NMI in", () => {
    // xen: the #BP handler's IRET inside the NMI handler unblocks NMIs (H3); the pending NMI nests.
    const m = litmus({
      cpus: 1,
      nmis: 2,
      words: ["a"],
      functions: [{ name: "nmi_service", code: ["int3", "ret"] }],
      *bpHandler() {
        yield mark(Mark.BpSite);
        return 1;
      },
      *program(_ctx, env) {
        yield store(env.w.a, 1);
      },
    });
    const run = m.run([1, 0, 1]);
    expectStatus(run, RunStatus.Finished);
    const clobber = run.of(Ev.IstClobber, 0);
    expect(clobber.map((r) => [r.a, r.b, r.c])).toEqual([[2, ContextKind.Bp, ContextKind.Nmi]]);
    expect(evaluate(m.spec, run.mem, "P3")).toEqual([
      {
        property: "P3",
        kind: "ist-clobber(#BP)",
        cpu: 0,
        step: clobber[0].step,
        message:
          "CPU 0: NMI delivered on IST stack 2, which holds a live NMI frame; the #BP handler's IRET had unblocked NMIs inside the NMI handler",
      },
    ]);
    // Without the second NMI nothing nests.
    expect(evaluate(m.spec, m.run([1]).mem, "P3")).toEqual([]);
  });
});

describe("P4 no-crash", () => {
  it("P4: an int3 nobody claims is an unhandled-int3 at its address (Linux dies; Xen resumes)", () => {
    const m = litmus({
      cpus: 2,
      os: "linux", // Linux's exc_int3 dies on an int3 nobody claims; Xen's do_int3 resumes at int3+1
      functions: [{ name: "bp_code", code: ["nop", "int3", "ret"] }],
      *program(ctx, env) {
        if (ctx.cpu === 1) yield call(env.addr("bp_code"));
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Crash);
    const crash = run.of(Ev.Crash);
    expect(crash.map((r) => r.cpu)).toEqual([1]);
    expect(evaluate(m.spec, run.mem, "P4")).toEqual([
      {
        property: "P4",
        kind: "unhandled-int3",
        cpu: 1,
        step: crash[0].step,
        message: "CPU 1 hit an int3 at bp_code+0x1 that no handler claimed",
      },
    ]);
    // A crash is judged by P1/P4 only: P2, P5 and P6 say nothing about a run that crashed.
    expect(evaluate(m.spec, run.mem).map((v) => v.property)).toEqual(["P4"]);
  });
});

describe("P5 completes", () => {
  it("P5: a run that reaches the step bound is reported as step-bound", () => {
    const m = litmus({
      cpus: 2,
      stepBound: 200,
      words: ["flag"],
      *program(ctx, env) {
        if (ctx.cpu === 0) for (;;) yield load(env.w.flag); // spins on a flag nobody sets
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.StepBound);
    expect(evaluate(m.spec, run.mem, "P5")).toEqual([
      {
        property: "P5",
        kind: "step-bound",
        cpu: -1,
        step: 200,
        message: "the step bound (200) was reached before every CPU finished",
      },
    ]);
  });

  // A stop-machine that deadlocks in some interleavings only: the master (CPU 0) takes lock_a, then
  // lock_b; CPU 1, called into the rendezvous, takes them in the other order (an ABBA deadlock). The
  // other CPUs wait for the patch to be done. `ordered` takes them in the same order on both CPUs.
  interface LockWords {
    arrived: number;
    lockA: number;
    lockB: number;
  }
  const lockWords = new WeakMap<MachineSpec, LockWords>();
  function* acquire(word: number, ctx: RoutineContext): Routine {
    for (;;) {
      yield waitUntil(eq(word, 0));
      if ((yield cmpxchg(word, 0, ctx.cpu + 1)) === 0) return;
    }
  }
  const twoLocks = (name: string, ordered: boolean): Protocol => ({
    name,
    summary: ordered ? "two locks, taken in one order" : "two locks, taken in opposite orders",
    origin: "properties test",
    os: "xen",
    expected: {},
    setup(spec, table: WordTable) {
      lockWords.set(spec, {
        arrived: table.alloc("arrived"),
        lockA: table.alloc("lock_a"),
        lockB: table.alloc("lock_b"),
      });
      return undefined;
    },
    *master(ctx) {
      const w = lockWords.get(ctx.spec) as LockWords;
      yield store(ctx.spec.common.rendezvousWanted, 1);
      yield waitUntil(eq(w.arrived, 1));
      yield* acquire(w.lockA, ctx);
      yield* acquire(w.lockB, ctx);
      yield store(w.lockB, 0);
      yield store(w.lockA, 0);
      yield store(ctx.spec.common.rendezvousWanted, 0);
    },
    *poll(ctx) {
      const w = lockWords.get(ctx.spec) as LockWords;
      if ((yield load(ctx.spec.common.rendezvousWanted)) === 0) return;
      if (ctx.cpu === 1) {
        yield store(w.arrived, 1);
        const [first, second] = ordered ? [w.lockA, w.lockB] : [w.lockB, w.lockA];
        yield* acquire(first, ctx);
        yield* acquire(second, ctx);
        yield store(second, 0);
        yield store(first, 0);
      }
      yield waitUntil(eq(ctx.spec.common.patchDone, 1));
    },
  });
  registerProtocol(twoLocks("test-abba", false));
  registerProtocol(twoLocks("test-ordered", true));
  const budget = { scenario: "normal", runs: 300, seeds: 3, seed: 1, properties: ["P5" as const] };

  it("P5: the checker finds the ABBA deadlock and names the word each CPU waits on", async () => {
    const verdict = await check({ protocol: "test-abba", ...budget });
    if (verdict.kind !== "violated")
      throw new Error(`expected a P5 violation, got ${JSON.stringify(verdict)}`);
    expect(verdict.properties.map((p) => [p.property, p.holds])).toEqual([["P5", false]]);
    const [result] = verdict.properties;
    const v = result.violation ?? expect.unreachable();
    expect(v.property).toBe("P5");
    expect(v.kind).toBe("deadlock");
    expect(v.cpu).toBe(-1);
    // CPU 0 holds lock_a (1 = CPU 0 + 1) and waits for lock_b; CPU 1 holds lock_b and waits for lock_a.
    expect(v.message).toBe(
      "deadlock: CPU 0 waits until lock_b == 0 (now 2); CPU 1 waits until lock_a == 0 (now 1); " +
        "CPU 2 waits until patch_done == 1 (now 0); CPU 3 waits until patch_done == 1 (now 0)",
    );
    // The token alone replays the same deadlock, at the same step.
    const { config, tape } = decodeToken(result.token ?? expect.unreachable());
    const replay = runInline(config, { tape }, true);
    expect(replay.status).toBe(RunStatus.Deadlock);
    expect(v.step).toBe(replay.mem.header[H.step]);
    expect(evaluate(machineFor(config), replay.mem, "P5")).toEqual([v]);
  });

  it("P5: the same protocol with the locks taken in one order completes", async () => {
    const verdict = await check({ protocol: "test-ordered", ...budget });
    expect(verdict.kind).toBe("holds");
    if (verdict.kind === "holds")
      expect(verdict.properties.map((p) => [p.property, p.holds])).toEqual([["P5", true]]);
  });
});

describe("P6 patched", () => {
  // CPU 1 writes the new jump over the site (two stores: 4 bytes, then 1) and says so; CPU 0 runs the
  // payload directly once (outside the probe, which must not count), waits, then probes the site.
  const def: LitmusDef = {
    cpus: 2,
    fetch: "stale",
    words: ["written"],
    *program(ctx, env) {
      const site = ctx.spec.sites[0];
      if (ctx.cpu === 1) {
        yield writeCode(site.address, site.newBytes.slice(0, 4));
        yield writeCode(site.address + 4, site.newBytes.slice(4));
        yield store(env.w.written, 1);
        return;
      }
      yield call(env.addr("payload"));
      yield waitUntil(eq(env.w.written, 1));
      yield mark(Mark.ProbeBegin);
      yield call(site.address);
      yield mark(Mark.ProbeEnd);
    },
  };
  /** Executions at the payload inside CPU 0's probe. */
  const probeRanPayload = (run: LitmusRun) => {
    const begin = run.log.find((r) => r.cpu === 0 && r.kind === Ev.Mark && r.a === Mark.ProbeBegin);
    const payload = run.spec.image.symbol("payload");
    return run.of(Ev.Exec, 0).some((r) => r.index > (begin?.index ?? Infinity) && r.addr === payload.address);
  };

  it("P6: the site holds the new jump, but CPU 0 fetched stale bytes and its probe ran the old body", () => {
    const m = litmus(def);
    const site = m.spec.sites[0];
    // No scheduling choice is ever open (CPU 0 waits while CPU 1 writes); every stale-fetch choice
    // picks the older value (H10: CPU 0 has not serialized since the writes).
    const stale = m.run(Array.from({ length: 40 }, () => 1));
    expectStatus(stale, RunStatus.Finished);
    expect(Array.from(stale.mem.codeBytes(site.address, 5))).toEqual(site.newBytes);
    const fetched = stale.of(Ev.Fetch, 0).filter((r) => r.addr >= site.address && r.addr < site.address + 5);
    expect(fetched.map((r) => r.a)).toEqual(site.oldBytes);
    expect(probeRanPayload(stale)).toBe(false);
    expect(stale.of(Ev.Exec, 0).some((r) => r.addr === m.env.addr("payload"))).toBe(true); // before the probe
    expect(evaluate(m.spec, stale.mem, "P6")).toEqual([
      {
        property: "P6",
        kind: "old-body",
        cpu: 0,
        step: stale.mem.header[H.step],
        message: "a call of site after the patch did not run payload",
      },
    ]);
    // The same machine when every fetch reads the current bytes: the probe jumps to the payload.
    const fresh = m.run(Array.from({ length: 40 }, () => 0));
    expectStatus(fresh, RunStatus.Finished);
    expect(probeRanPayload(fresh)).toBe(true);
    expect(evaluate(m.spec, fresh.mem, "P6")).toEqual([]);
  });

  it("P6: a site that still holds the old bytes at the end is not-patched", () => {
    const m = litmus({
      cpus: 1,
      *program(ctx) {
        yield mark(Mark.ProbeBegin);
        yield call(ctx.spec.sites[0].address);
        yield mark(Mark.ProbeEnd);
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Finished);
    const site = m.spec.sites[0];
    expect(evaluate(m.spec, run.mem, "P6")).toEqual([
      {
        property: "P6",
        kind: "not-patched",
        cpu: 0,
        step: run.mem.header[H.step],
        message: `site holds ${hex(site.oldBytes)} at the end, not the new ${hex(site.newBytes)}`,
      },
    ]);
  });
});
