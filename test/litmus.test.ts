// Litmus tests of the hardware rules H1-H11 (SPEC §3, model/cpu/). Each test builds a small machine,
// runs it with a fixed tape and asserts the exact records and per-CPU words that the rule implies.
// Tape reminder (workers/strategies/tape.ts): at each scheduling point the actions are [current CPU, the other
// runnable CPUs after it, NMI to CPU k while the NMI budget lasts, #MC to CPU k while that lasts], and a
// tape value v picks action v % count.
import { Mnemonic } from "iced-x86";
import { describe, expect, it } from "vitest";
import { ContextKind, CrashKind, Ev, EventSource } from "../dist/model/events.js";
import { C, RunStatus } from "../dist/model/memory.js";
import {
  call,
  cli,
  cpuid,
  eq,
  int3,
  load,
  Mark,
  mark,
  readCode,
  sendIpi,
  sendNmi,
  sti,
  store,
  syncCore,
  waitUntil,
  writeCode,
} from "../dist/model/routine.js";
import { evaluate, NESTED_MC } from "../dist/properties/invariants.js";
import { type LitmusDef, type LitmusRun, litmus, trace } from "./helpers/litmus.js";

function expectStatus(run: LitmusRun, status: RunStatus): void {
  expect(run.status, `${run.error ?? ""}\n${run.dump()}`).toBe(status);
}

describe("H1: NMI delivery at boundaries, gated by nmiBlocked only", () => {
  // Guards Cpu.step(): `nmiPending === 1 && nmiBlocked === 0` (no IF test) and deliverNmi's
  // `nmiBlocked = 1`. An IF check would leave the first NMI undelivered; not setting nmiBlocked would
  // deliver the second NMI before the first handler's service runs.
  it("H1: an NMI is delivered with IF=0, and a second one waits for the IRET", () => {
    const m = litmus({
      cpus: 1,
      nmis: 2,
      words: ["a"],
      *program(_ctx, env) {
        yield cli();
        yield store(env.w.a, 1);
        yield store(env.w.a, 2);
      },
    });
    // cli; NMI#1 arrives; CPU 0 steps (takes NMI#1); NMI#2 arrives inside the handler.
    const run = m.run([0, 1, 0, 1]);
    expectStatus(run, RunStatus.Finished);
    expect(trace(run, 0, [Ev.Cli, Ev.Sti, Ev.NmiArrive, Ev.NmiDeliver, Ev.Iret, Ev.Store, Ev.Mark])).toEqual([
      "Cli",
      "NmiArrive",
      "NmiDeliver",
      "NmiArrive",
      "Mark", // NMI#1's service runs with NMI#2 pending: delivery set nmiBlocked
      "Iret",
      "NmiDeliver", // NMI#2 only after the IRET
      "Mark",
      "Iret",
      "Store",
      "Store",
    ]);
    const delivers = run.of(Ev.NmiDeliver, 0);
    expect(delivers.map((r) => [r.a, r.b])).toEqual([
      [2, 0],
      [2, 0],
    ]); // Xen's NMI IST, not nested
    expect(run.of(Ev.Mark, 0).every((r) => r.a === Mark.NmiService)).toBe(true);
    // IF stayed 0 the whole time (no sti), so NMIs ignored it; the IRETs restored IF=0.
    expect(run.cpuWord(0, C.if)).toBe(0);
    expect(run.cpuWord(0, C.nmiBlocked)).toBe(0);
    expect(run.cpuWord(0, C.nmiPending)).toBe(0);
  });

  it("H1: delivery sets nmiBlocked (the state inside the handler)", () => {
    // The NMI callback waits forever, so the run deadlocks inside the handler and the final state is
    // the state of a CPU running an NMI handler.
    const m = litmus({
      cpus: 1,
      nmis: 1,
      words: ["never"],
      *nmiCallback(_ctx, env) {
        yield waitUntil(eq(env.w.never, 1));
        return 1;
      },
      *program(_ctx, env) {
        yield cli();
        yield store(env.w.never, 0);
      },
    });
    const run = m.run([0, 1, 0]);
    expectStatus(run, RunStatus.Deadlock);
    expect(run.of(Ev.NmiDeliver, 0)).toHaveLength(1);
    expect(run.cpuWord(0, C.nmiBlocked)).toBe(1);
    expect(run.cpuWord(0, C.nmiPending)).toBe(0);
    expect(run.cpuWord(0, C.depth)).toBe(2);
    expect(run.cpuWord(0, C.istLive)).toBe(1 << 2);
  });

  it("H1: an NMI arriving in the middle of a bytewise fetch waits for the instruction boundary", () => {
    // Guards the `atBoundary === 1` test of Cpu.step(): without it the NMI would be taken between two
    // fetched bytes of the 5-byte NOP.
    const m = litmus({
      cpus: 1,
      nmis: 1,
      *program(_ctx, env) {
        yield call(env.addr("site"));
      },
    });
    const site = m.env.addr("site");
    // call; fetch byte 0 of the NOP at the (visible) patch site; then the NMI arrives.
    const run = m.run([0, 0, 1]);
    expectStatus(run, RunStatus.Finished);
    const arrive = run.at(Ev.NmiArrive, 0);
    const deliver = run.at(Ev.NmiDeliver, 0);
    const exec = run.log.find((r) => r.kind === Ev.Exec && r.addr === site) ?? expect.unreachable();
    const fetches = run.of(Ev.Fetch, 0).filter((r) => r.addr >= site && r.addr < site + 5);
    expect(fetches.map((r) => r.addr - site)).toEqual([0, 1, 2, 3, 4]);
    expect(fetches[0].index).toBeLessThan(arrive);
    expect(fetches[1].index).toBeGreaterThan(arrive);
    expect(exec.index).toBeLessThan(deliver);
    expect(exec.a).toBe(5);
    expect(run.log[deliver].addr).toBe(site + 5); // taken at the boundary after the NOP
  });
});

describe("H1, H7: event handlers run with IF=0 (interrupt gates)", () => {
  // Guards the `if = 0` after entering the handler in deliverNmi(), deliverMce() and deliverIrq(): an
  // NMI, #MC or IRQ is taken through an interrupt gate, which clears IF, and IRET restores it.
  // linux-text-poke holds on nmi-path because of the NMI case: its sync IPI (do_sync_core) cannot run
  // on a CPU until that CPU's NMI handler, which may be fetching the site, has returned.
  it("H1: an IPI sent to a CPU in its NMI handler is delivered only after the NMI's IRET", () => {
    const ifInside: number[] = [];
    const nmiDepthInIpi: number[] = [];
    const m = litmus({
      cpus: 2,
      words: ["inNmi", "sent", "acked", "a"],
      *nmiCallback(_ctx, env) {
        yield store(env.w.inNmi, 1);
        ifInside.push(env.mem.cpuWord(0, C.if));
        yield waitUntil(eq(env.w.sent, 1)); // the IPI is pending from here on
        yield mark(Mark.Rendezvous);
        return 0;
      },
      *ipiHandler(_ctx, vector, env) {
        nmiDepthInIpi.push(env.mem.cpuWord(0, C.nmiLiveDepth));
        yield store(env.w.acked, vector);
      },
      *program(ctx, env) {
        const { w } = env;
        if (ctx.cpu === 0) {
          yield sendNmi("self");
          yield store(w.a, 1);
          return;
        }
        // smp_text_poke_sync_each_cpu in miniature: IPI the CPU that is in its NMI handler, wait for the ack.
        yield waitUntil(eq(w.inNmi, 1));
        yield sendIpi(0, 2);
        yield store(w.sent, 1);
        yield waitUntil(eq(w.acked, 2));
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Finished);
    expect(ifInside).toEqual([0]);
    expect(trace(run, 0, [Ev.NmiDeliver, Ev.IpiArrive, Ev.IrqDeliver, Ev.Iret, Ev.Mark])).toEqual([
      "NmiDeliver",
      "IpiArrive", // while CPU 0 waits in its NMI callback
      "Mark", // Rendezvous: the callback goes on with the IPI pending
      "Mark", // NmiService
      "Iret", // from the NMI: IF=1 again
      "IrqDeliver", // at the first boundary after it
      "Iret",
    ]);
    const nmiIret = run.of(Ev.Iret, 0)[0];
    expect(nmiIret.a).toBe(ContextKind.Nmi);
    expect(run.at(Ev.IrqDeliver, 0)).toBe(nmiIret.index + 1);
    expect(nmiDepthInIpi).toEqual([0]); // the IPI handler never ran inside the NMI handler
    expect(run.cpuWord(0, C.if)).toBe(1);
  });

  it("H7: an IPI that arrives while a CPU runs its #MC handler waits for the #MC's IRET", () => {
    const m = litmus({
      cpus: 2,
      mces: 1,
      words: ["a", "acked"],
      *ipiHandler(_ctx, vector, env) {
        yield store(env.w.acked, vector);
      },
      *program(ctx, env) {
        if (ctx.cpu === 0) {
          yield store(env.w.a, 1);
          yield store(env.w.a, 2);
        } else {
          yield sendIpi(0, 3);
        }
      },
    });
    // [CPU 0, CPU 1, #MC 0, #MC 1]: the #MC arrives at CPU 0; CPU 0 takes it; CPU 1 sends the IPI.
    const run = m.run([2, 0, 1]);
    expectStatus(run, RunStatus.Finished);
    expect(trace(run, 0, [Ev.McDeliver, Ev.IpiArrive, Ev.McipClear, Ev.Iret, Ev.IrqDeliver])).toEqual([
      "McDeliver",
      "IpiArrive", // inside the #MC handler, which runs with IF=0
      "McipClear",
      "Iret",
      "IrqDeliver",
      "Iret",
    ]);
    expect(run.of(Ev.Iret, 0).map((r) => r.a)).toEqual([ContextKind.Mce, ContextKind.Irq]);
    expect(run.at(Ev.IrqDeliver, 0)).toBe(run.at(Ev.Iret, 0) + 1);
    expect(run.mem.data[run.w.acked]).toBe(3);
  });

  it("H7: an IPI a CPU sends itself from its IRQ handler is delivered after that handler's IRET", () => {
    const m = litmus({
      cpus: 1,
      words: ["a"],
      *ipiHandler(_ctx, vector) {
        if (vector === 3) yield sendIpi("self", 4);
        yield mark(Mark.Rendezvous, vector);
      },
      *program(_ctx, env) {
        yield sendIpi("self", 3);
        yield store(env.w.a, 1);
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Finished);
    expect(run.of(Ev.IrqDeliver, 0).map((r) => r.a)).toEqual([3, 4]);
    expect(trace(run, 0, [Ev.IrqDeliver, Ev.Iret, Ev.Mark, Ev.Store])).toEqual([
      "IrqDeliver",
      "Mark", // vector 3's handler finishes with vector 4 pending
      "Iret",
      "IrqDeliver",
      "Mark",
      "Iret",
      "Store",
    ]);
    expect(run.of(Ev.Iret, 0).map((r) => r.c)).toEqual([0, 0]); // never nested under an NMI
    expect(run.of(Ev.Mark, 0).map((r) => r.b)).toEqual([3, 4]);
  });
});

describe("H1, H5: events reach a CPU that waits", () => {
  // Guards model/schedule runnable(): a CPU whose wait condition is false is not scheduled, but one with
  // a deliverable NMI or #MC is (SPEC §4: "events are still delivered to it"). CPU 0 waits for `go`,
  // which CPU 1 sets after two stores of its own; the event is sent to CPU 0 before either.
  const def = (event: "nmi" | "mce"): LitmusDef => ({
    cpus: 2,
    nmis: event === "nmi" ? 1 : 0,
    mces: event === "mce" ? 1 : 0,
    words: ["go", "a"],
    *program(ctx, env) {
      if (ctx.cpu === 0) {
        yield waitUntil(eq(env.w.go, 1));
        return;
      }
      yield store(env.w.a, 1);
      yield store(env.w.a, 2);
      yield store(env.w.go, 1);
    },
  });
  // [CPU 1, event to CPU 0, event to CPU 1] (CPU 0 waits, so it is not listed): the event to CPU 0.
  const tape = [1];

  it("H1: an NMI is delivered to a CPU that waits on a false condition", () => {
    const run = litmus(def("nmi")).run(tape);
    expectStatus(run, RunStatus.Finished);
    const go = run.of(Ev.Store, 1).find((r) => r.a === 1 && r.addr === run.w.go) ?? expect.unreachable();
    expect(run.at(Ev.NmiArrive, 0)).toBe(0);
    expect(run.at(Ev.NmiDeliver, 0)).toBeLessThan(go.index);
    expect(run.of(Ev.Mark, 0).map((r) => r.a)).toEqual([Mark.NmiService]);
  });

  it("H5: a #MC is delivered to a CPU that waits on a false condition", () => {
    const run = litmus(def("mce")).run(tape);
    expectStatus(run, RunStatus.Finished);
    const go = run.of(Ev.Store, 1).find((r) => r.a === 1 && r.addr === run.w.go) ?? expect.unreachable();
    expect(run.at(Ev.McArrive, 0)).toBe(0);
    expect(run.at(Ev.McDeliver, 0)).toBeLessThan(go.index);
    expect(run.of(Ev.Iret, 0).map((r) => r.a)).toEqual([ContextKind.Mce]);
  });
});

describe("H2: the NMI latch is binary", () => {
  // Guards nmiArrives: one latch (nmiPending = 1, `coalesced` = the old latch) and deliverNmi clearing it.
  it("H2: three NMIs sent while blocked give exactly one delivery after the IRET", () => {
    const m = litmus({
      cpus: 1,
      nmis: 4,
      words: ["a"],
      *program(_ctx, env) {
        yield store(env.w.a, 1);
        yield store(env.w.a, 2);
      },
    });
    // NMI#1 arrives; CPU 0 takes it; NMIs #2, #3, #4 arrive while the handler runs (blocked).
    const run = m.run([1, 0, 1, 1, 1]);
    expectStatus(run, RunStatus.Finished);
    const arrivals = run.of(Ev.NmiArrive, 0);
    expect(arrivals.map((r) => [r.a, r.b])).toEqual([
      [EventSource.External, 0],
      [EventSource.External, 0],
      [EventSource.External, 1],
      [EventSource.External, 1],
    ]);
    const delivers = run.of(Ev.NmiDeliver, 0);
    expect(delivers).toHaveLength(2);
    const firstIret = run.at(Ev.Iret, 0, 0);
    expect(arrivals[3].index).toBeLessThan(firstIret);
    expect(delivers[1].index).toBe(firstIret + 1); // the one pending NMI, right at the next boundary
    expect(run.of(Ev.Mark, 0).filter((r) => r.a === Mark.NmiService)).toHaveLength(2);
    expect(run.cpuWord(0, C.nmiPending)).toBe(0);
  });
});

// An NMI service whose real code hits an int3 that the protocol claims: the #BP handler's IRET runs
// inside the NMI handler. Guards Cpu.iret(): `if (!fred || ctx.kind === Nmi) nmiBlocked = 0`.
const withInt3 = (os: "xen" | "fred" | "linux"): LitmusDef => ({
  cpus: 1,
  nmis: 2,
  os,
  functions: [{ name: "nmi_service", code: ["int3", "ret"] }],
  *bpHandler() {
    yield mark(Mark.BpSite);
    return 1;
  },
  *program(_ctx, env) {
    yield store(env.w.a, 1);
  },
  words: ["a"],
});
// NMI#1 arrives; CPU 0 takes it; NMI#2 arrives at the NMI handler's first step (blocked, pending).
const nestedTape = [1, 0, 1];

describe("H3: any IRET unblocks NMIs", () => {
  it("H3: on xen the #BP handler's IRET lets the pending NMI nest inside the NMI handler", () => {
    const m = litmus(withInt3("xen"));
    const service = m.env.addr("nmi_service");
    const run = m.run(nestedTape);
    expectStatus(run, RunStatus.Finished);
    const bpIret = run.of(Ev.Iret, 0)[0];
    expect([bpIret.a, bpIret.b, bpIret.c]).toEqual([ContextKind.Bp, 1, 1]); // unblocked, NMI frame live
    const delivers = run.of(Ev.NmiDeliver, 0);
    expect(delivers).toHaveLength(2);
    expect(delivers[1].b).toBe(1); // nested
    expect(delivers[1].addr).toBe(service + 1); // taken right after the int3 returned
    // The first IRET of the outer NMI handler comes after the nested delivery.
    const outerIret = run.of(Ev.Iret, 0).find((r) => r.a === ContextKind.Nmi) ?? expect.unreachable();
    expect(delivers[1].index).toBeLessThan(outerIret.index);
    const clobber = run.of(Ev.IstClobber, 0);
    expect(clobber.map((r) => [r.a, r.b, r.c])).toEqual([[2, ContextKind.Bp, ContextKind.Nmi]]);
    // Delivered at the first boundary after the #BP's IRET, on the live NMI IST stack.
    expect(delivers[1].index).toBe(bpIret.index + 1);
    expect(clobber[0].index).toBe(bpIret.index + 2);
    const p3 = evaluate(m.spec, run.mem, "P3");
    expect(p3.map((v) => v.kind)).toEqual(["ist-clobber(#BP)"]);
  });

  it("H3: with FRED the #BP's return leaves NMIs blocked: the NMI waits for the NMI handler's own return", () => {
    const m = litmus(withInt3("fred"));
    const run = m.run(nestedTape);
    expectStatus(run, RunStatus.Finished);
    const irets = run.of(Ev.Iret, 0).map((r) => [r.a, r.b, r.c]);
    expect(irets).toEqual([
      [ContextKind.Bp, 0, 1], // ERETS from #BP: NMIs stay blocked
      [ContextKind.Nmi, 1, 0],
      [ContextKind.Bp, 0, 1],
      [ContextKind.Nmi, 1, 0],
    ]);
    const delivers = run.of(Ev.NmiDeliver, 0);
    expect(delivers.map((r) => r.b)).toEqual([0, 0]);
    expect(delivers[1].index).toBe(run.of(Ev.Iret, 0)[1].index + 1);
    expect(run.of(Ev.IstClobber)).toHaveLength(0);
  });

  it("H3: a sync_core IRET-to-self inside an NMI handler also unblocks NMIs (not with FRED)", () => {
    // Guards the `iret-to-self` case of Cpu.perform(): nmiBlocked = 0 unless FRED.
    const def = (os: "xen" | "fred"): LitmusDef => ({
      cpus: 1,
      nmis: 2,
      os,
      words: ["a"],
      *nmiCallback() {
        yield syncCore();
        yield mark(Mark.Rendezvous);
        return 0;
      },
      *program(_ctx, env) {
        yield store(env.w.a, 1);
      },
    });
    const xenMachine = litmus(def("xen"));
    const xen = xenMachine.run(nestedTape);
    expectStatus(xen, RunStatus.Finished);
    const ser = xen.of(Ev.Serialize, 0);
    expect(ser[0].a).toBe(2); // iret-to-self
    const d = xen.of(Ev.NmiDeliver, 0);
    expect(d[1].b).toBe(1);
    expect(d[1].index).toBe(ser[0].index + 1); // the pending NMI is taken right after sync_core
    const clobber = xen.of(Ev.IstClobber, 0);
    expect(clobber).toHaveLength(1);
    expect(clobber[0].b).toBe(ContextKind.Base); // P3 names the OS's own IRET (sync_core), "os"
    expect(evaluate(xenMachine.spec, xen.mem, "P3").map((v) => [v.kind, v.cpu, v.step])).toEqual([
      ["ist-clobber(os)", 0, clobber[0].step],
    ]);

    const fred = litmus(def("fred")).run(nestedTape);
    expectStatus(fred, RunStatus.Finished);
    const fd = fred.of(Ev.NmiDeliver, 0);
    expect(fd[1].b).toBe(0);
    expect(fd[1].index).toBe(fred.of(Ev.Iret, 0)[0].index + 1);
  });
});

describe("H4: serializing instructions and steps", () => {
  // Guards Cpu.serialize() being called by the cpuid/serialize/iret-to-self steps, by IRET, by
  // clearMcip (WRMSR) and by real serializing instructions (x86.ts SERIALIZING), and by nothing else.
  it("H4: cpuid, serialize, sync_core, real cpuid and IRET update lastSerializeSeq; others do not", () => {
    const seen: Array<[string, number]> = [];
    const m = litmus({
      cpus: 1,
      words: ["a"],
      functions: [
        { name: "scratch", code: ["nop", "nop", "nop", "nop", "ret"] },
        { name: "serializing", code: ["nop", "cpuid", "ret"] },
        { name: "plain", code: ["nop", "lfence", "pause", "ret"] },
      ],
      *program(_ctx, env) {
        const probe = (what: string) => seen.push([what, env.mem.cpuWord(0, C.lastSerializeSeq)]);
        const scratch = env.addr("scratch");
        yield writeCode(scratch, [0x90]); // write seq 1
        probe("write");
        yield store(env.w.a, 1);
        yield load(env.w.a);
        probe("store+load");
        yield call(env.addr("plain"));
        probe("nop/lfence/pause");
        yield cpuid();
        probe("cpuid");
        yield writeCode(scratch, [0x90]); // 2
        yield call(env.addr("serializing"));
        probe("real cpuid");
        yield writeCode(scratch, [0x90]); // 3
        yield syncCore();
        probe("sync_core");
        yield writeCode(scratch, [0x90]); // 4
        yield { k: "serialize", how: "serialize" };
        probe("serialize");
        yield writeCode(scratch, [0x90]); // 5
        yield sendNmi("self"); // the NMI is taken before the next step; its handler IRETs
        yield store(env.w.a, 2);
        probe("NMI handler's iret");
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Finished);
    expect(seen).toEqual([
      ["write", 0],
      ["store+load", 0],
      ["nop/lfence/pause", 0],
      ["cpuid", 1],
      ["real cpuid", 2],
      ["sync_core", 3],
      ["serialize", 4],
      ["NMI handler's iret", 5],
    ]);
    // Routine serializing steps are logged with how (0 cpuid, 1 serialize, 2 iret-to-self).
    expect(run.of(Ev.Serialize, 0).map((r) => r.a)).toEqual([0, 2, 1]);
    expect(run.of(Ev.Exec, 0).some((r) => r.b === Mnemonic.Cpuid)).toBe(true);
  });

  it("H4: real-code WRMSR, SERIALIZE and MOV to CR are serializing", () => {
    // Guards the SERIALIZING list of model/x86.ts as used by Cpu.execute(). MOV to CR3 is one of the
    // serializing instructions of the H4 row (SDM §9.3); its mnemonic is `mov`, so it needs the
    // instruction code, not only the mnemonic, to be recognised.
    const seen: Array<[string, number]> = [];
    const insns: Array<[string, string]> = [
      ["wrmsr", "db 0f 30"],
      ["serialize", "db 0f 01 e8"],
      ["mov cr3, rax", "db 0f 22 d8"],
    ];
    const m = litmus({
      cpus: 1,
      functions: [
        { name: "scratch", code: ["nop", "ret"] },
        ...insns.map(([name, line]) => ({ name: name.replace(/\W+/g, "_"), code: [line, "ret"] })),
      ],
      *program(_ctx, env) {
        for (const [name] of insns) {
          yield writeCode(env.addr("scratch"), [0x90]);
          yield call(env.addr(name.replace(/\W+/g, "_")));
          seen.push([name, env.mem.cpuWord(0, C.lastSerializeSeq)]);
        }
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Finished);
    expect(run.of(Ev.Exec, 0).map((r) => r.b)).toEqual([
      Mnemonic.Wrmsr,
      Mnemonic.Ret,
      Mnemonic.Serialize,
      Mnemonic.Ret,
      Mnemonic.Mov,
      Mnemonic.Ret,
    ]);
    expect(seen).toEqual([
      ["wrmsr", 1],
      ["serialize", 2],
      ["mov cr3, rax", 3],
    ]);
  });

  it("H4: the #MC handler's clearMcip (WRMSR) serializes, before its IRET", () => {
    // CPU 1 writes code while CPU 0 runs a #MC handler, then reads CPU 0's lastSerializeSeq between
    // the handler's clearMcip and its IRET (which serializes too, so it must be read before it).
    const seen: number[] = [];
    const m = litmus({
      cpus: 2,
      mces: 1,
      mceDelivery: "local", // the #MC reaches CPU 0 alone: no mce_trap_bar rendezvous
      words: ["a", "b"],
      functions: [{ name: "scratch", code: ["nop", "ret"] }],
      *program(ctx, env) {
        if (ctx.cpu === 0) {
          yield store(env.w.a, 1);
          yield store(env.w.a, 2);
          return;
        }
        yield writeCode(env.addr("scratch"), [0x90]);
        seen.push(env.mem.cpuWord(0, C.lastSerializeSeq));
        yield store(env.w.b, 1);
        seen.push(env.mem.cpuWord(0, C.lastSerializeSeq));
      },
    });
    // [CPU 0, CPU 1, #MC 0, #MC 1]: #MC to CPU 0; taken; CPU 1 writes (seq 1); CPU 0 runs its handler
    // (mark, lock, call, nop, ret, unlock, clearMcip); CPU 1 stores and probes; CPU 0 raises the
    // softirq and IRETs.
    const run = m.run([2, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1]);
    expectStatus(run, RunStatus.Finished);
    expect(seen).toEqual([0, 1]);
    const clear = run.at(Ev.McipClear, 0);
    const probe = run.at(Ev.Store, 1);
    const iret = run.at(Ev.Iret, 0);
    expect(run.at(Ev.CodeWrite, 1)).toBeLessThan(clear);
    expect(clear).toBeLessThan(probe);
    expect(probe).toBeLessThan(iret);
    expect(run.log[iret].a).toBe(ContextKind.Mce);
  });
});

describe("H5: machine checks and MCIP", () => {
  // Guards deliverMce(): mcip set on delivery, `mcip === 1` -> Shutdown crash, and Cpu.step() taking a
  // pending #MC before (and regardless of) NMI blocking.
  it("H5: a second #MC while MCIP is set shuts the CPU down", () => {
    const m = litmus({
      cpus: 1,
      mces: 2,
      mceDelivery: "local",
      words: ["a"],
      *program(_ctx, env) {
        yield store(env.w.a, 1);
      },
    });
    // #MC arrives; CPU 0 takes it; the second #MC arrives at the handler's first step.
    const run = m.run([1, 0, 1]);
    expectStatus(run, RunStatus.Crash);
    expect(run.of(Ev.McArrive, 0)).toHaveLength(2);
    expect(run.of(Ev.McDeliver, 0)).toHaveLength(1);
    const crash = run.of(Ev.Crash);
    expect(crash.map((r) => [r.cpu, r.a])).toEqual([[0, CrashKind.Shutdown]]);
    expect(run.of(Ev.McipClear)).toHaveLength(0);
    expect(run.cpuWord(0, C.mcip)).toBe(1);
    expect(evaluate(m.spec, run.mem, "P4").map((v) => [v.kind, v.hazard])).toEqual([
      ["shutdown(nested #MC)", NESTED_MC],
    ]);
  });

  it("H5: once the handler has cleared MCIP and returned, a second #MC is handled normally", () => {
    const m = litmus({
      cpus: 1,
      mces: 2,
      mceDelivery: "local",
      words: ["a"],
      *program(_ctx, env) {
        yield store(env.w.a, 1);
        yield store(env.w.a, 2);
      },
    });
    // #MC#1 arrives and is handled (the handler runs with zeros), the base stores 1, then #MC#2.
    const run = m.run([1, ...new Array(11).fill(0), 1]);
    expectStatus(run, RunStatus.Finished);
    // The base's stores to `a` (the handler's own stores to its lock and softirq words aside).
    const events = run.log.filter(
      (r) =>
        r.cpu === 0 &&
        ([Ev.McDeliver, Ev.McipClear, Ev.Iret, Ev.Crash].includes(r.kind) ||
          (r.kind === Ev.Store && r.addr === m.env.w.a)),
    );
    expect(events.map((r) => Ev[r.kind])).toEqual([
      "McDeliver",
      "McipClear",
      "Iret",
      "Store",
      "McDeliver",
      "McipClear",
      "Iret",
      "Store",
    ]);
    expect(run.cpuWord(0, C.mcip)).toBe(0);
  });

  it("H5: #MC is delivered while NMIs are blocked, and does not block NMIs itself", () => {
    const m = litmus({
      cpus: 1,
      nmis: 1,
      mces: 1,
      words: ["a"],
      *program(_ctx, env) {
        yield store(env.w.a, 1);
      },
    });
    // Actions: [CPU 0, NMI to 0, #MC to 0], then [CPU 0, #MC to 0] once the NMI budget is spent.
    // NMI arrives; taken; #MC arrives inside the NMI handler; taken.
    const run = m.run([1, 0, 1, 0]);
    expectStatus(run, RunStatus.Finished);
    const nmi = run.at(Ev.NmiDeliver, 0);
    const mc = run.at(Ev.McDeliver, 0);
    expect(mc).toBe(run.at(Ev.McArrive, 0) + 1);
    expect(nmi).toBeLessThan(mc);
    expect(run.at(Ev.Iret, 0)).toBeGreaterThan(mc); // the NMI handler had not returned
    expect(run.log[mc].a).toBe(3); // Xen's #MC IST
    expect(run.of(Ev.Iret, 0).map((r) => r.a)).toEqual([ContextKind.Mce, ContextKind.Nmi]);
  });

  it("H5: with an NMI and a #MC pending at one boundary, the #MC is delivered first", () => {
    // SDM Vol. 3A §6.9 "Priority Among Concurrent Exceptions and Interrupts" (Table 6-2): machine
    // check (priority 1) before NMI (priority 5). Guards the order of the checks in Cpu.step().
    const m = litmus({
      cpus: 1,
      nmis: 1,
      mces: 1,
      words: ["a"],
      *program(_ctx, env) {
        yield store(env.w.a, 1);
      },
    });
    // [CPU 0, NMI 0, #MC 0]: the NMI arrives; [CPU 0, #MC 0]: the #MC arrives; then CPU 0 steps.
    const run = m.run([1, 1]);
    expectStatus(run, RunStatus.Finished);
    const nmiArrive = run.at(Ev.NmiArrive, 0);
    const mcArrive = run.at(Ev.McArrive, 0);
    expect(mcArrive).toBe(nmiArrive + 1);
    expect(run.at(Ev.McDeliver, 0)).toBe(mcArrive + 1); // the first thing CPU 0 does
    expect(trace(run, 0, [Ev.NmiDeliver, Ev.McDeliver, Ev.McipClear, Ev.Iret])).toEqual([
      "McDeliver",
      "NmiDeliver", // at the #MC handler's first boundary: #MC does not block NMIs (H5)
      "Iret",
      "McipClear",
      "Iret",
    ]);
    // The program's own store comes after both handlers (the #MC handler's lock stores are its own).
    const programStore = run.log.findIndex((r) => r.kind === Ev.Store && r.addr === m.env.w.a);
    expect(programStore).toBeGreaterThan(run.of(Ev.Iret, 0)[1].index);
    expect(run.of(Ev.Iret, 0).map((r) => r.a)).toEqual([ContextKind.Nmi, ContextKind.Mce]);
    expect(run.of(Ev.NmiDeliver, 0).map((r) => r.b)).toEqual([0]); // not nested under an NMI
    expect(run.of(Ev.IstClobber)).toHaveLength(0);
  });

  it("H5: an NMI is delivered inside a #MC handler", () => {
    const m = litmus({
      cpus: 1,
      nmis: 1,
      mces: 1,
      words: ["a"],
      *program(_ctx, env) {
        yield store(env.w.a, 1);
      },
    });
    // #MC arrives; taken; the NMI arrives at the #MC handler's first step; taken at the next one.
    const run = m.run([2, 0, 1, 0]);
    expectStatus(run, RunStatus.Finished);
    const mc = run.at(Ev.McDeliver, 0);
    const nmi = run.at(Ev.NmiDeliver, 0);
    expect(nmi).toBe(run.at(Ev.NmiArrive, 0) + 1);
    expect(mc).toBeLessThan(nmi);
    expect(run.log[nmi].b).toBe(0); // not nested under an NMI
    expect(run.at(Ev.McipClear, 0)).toBeGreaterThan(nmi);
    expect(run.of(Ev.Iret, 0).map((r) => r.a)).toEqual([ContextKind.Nmi, ContextKind.Mce]);
    expect(run.of(Ev.IstClobber)).toHaveLength(0); // different IST stacks (NMI 2, #MC 3)
    expect(run.cpuWord(0, C.mcip)).toBe(0);
  });
});

describe("H6: int3 is a trap", () => {
  // Guards Cpu.execute()'s int3 case (saved RIP = next) and deliverBp() clearing IF (bpClearsIf).
  it("H6: #BP from real code saves RIP = int3 + 1, clears IF, and resumes after the int3", () => {
    const frames: Array<{ rip: number; fromRealCode: boolean; ifInside: number }> = [];
    const m = litmus({
      cpus: 1,
      os: "linux", // Linux's entry leaves IF as the gate set it (Xen's re-enables IRQs: below)
      words: ["a"],
      functions: [{ name: "bp_code", code: ["nop", "int3", "nop", "ret"] }],
      *bpHandler(ctx, env) {
        yield mark(Mark.BpSite);
        frames.push({ ...ctx.frame, ifInside: env.mem.cpuWord(0, C.if) });
        return 1;
      },
      *program(_ctx, env) {
        yield call(env.addr("bp_code"));
        yield store(env.w.a, 1);
      },
    });
    const bp = m.env.addr("bp_code");
    const run = m.run([]);
    expectStatus(run, RunStatus.Finished);
    expect(frames).toEqual([{ rip: bp + 2, fromRealCode: true, interruptedIf: 1, ifInside: 0 }]);
    expect(run.of(Ev.BpDeliver, 0).map((r) => r.addr)).toEqual([bp + 1]);
    const execs = run.of(Ev.Exec, 0).map((r) => r.addr - bp);
    expect(execs).toEqual([0, 1, 2, 3]); // nop, int3, then on at +2 (not the int3 again)
    const iret = run.of(Ev.Iret, 0);
    expect(iret.map((r) => r.a)).toEqual([ContextKind.Bp]);
    expect(run.cpuWord(0, C.if)).toBe(1); // IRET restored IF
  });

  it("H6: a routine's own int3 raises #BP with no real-code frame; an unclaimed int3 is fatal", () => {
    const frames: boolean[] = [];
    const claimed = litmus({
      cpus: 1,
      *bpHandler(ctx) {
        yield mark(Mark.BpSite);
        frames.push(ctx.frame.fromRealCode);
        return 1;
      },
      *program() {
        yield int3();
      },
    }).run([]);
    expectStatus(claimed, RunStatus.Finished);
    expect(claimed.of(Ev.BpDeliver, 0).map((r) => r.addr)).toEqual([-1]);
    expect(frames).toEqual([false]);

    // Linux exc_int3: die("int3") when nobody claims it.
    const m = litmus({
      cpus: 1,
      os: "linux",
      functions: [{ name: "bp_code", code: ["nop", "int3", "ret"] }],
      *program(_ctx, env) {
        yield call(env.addr("bp_code"));
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Crash);
    expect(run.of(Ev.Crash).map((r) => [r.a, r.addr])).toEqual([
      [CrashKind.UnhandledBp, m.env.addr("bp_code") + 1],
    ]);
    expect(evaluate(m.spec, run.mem, "P4").map((v) => [v.kind, v.cpu])).toEqual([["unhandled-int3", 0]]);
  });

  it("Xen do_int3: an unclaimed int3 is marked and the CPU resumes after it", () => {
    // xen/arch/x86/traps.c do_int3: no extable fixup -> "Hit embedded breakpoint", return.
    const m = litmus({
      cpus: 1,
      os: "xen",
      words: ["a"],
      functions: [{ name: "bp_code", code: ["nop", "int3", "nop", "ret"] }],
      *program(_ctx, env) {
        yield call(env.addr("bp_code"));
        yield store(env.w.a, 1);
      },
    });
    const bp = m.env.addr("bp_code");
    const run = m.run([]);
    expectStatus(run, RunStatus.Finished);
    expect(run.of(Ev.Crash)).toHaveLength(0);
    expect(run.of(Ev.Mark, 0).map((r) => [r.a, r.b])).toEqual([[Mark.EmbeddedBreakpoint, bp + 1]]);
    expect(run.of(Ev.Exec, 0).map((r) => r.addr - bp)).toEqual([0, 1, 2, 3]);
    expect(evaluate(m.spec, run.mem, "P4")).toEqual([]);
  });

  it("Xen handle_exception: the #BP handler runs with IRQs on when the trapping code had them on", () => {
    // entry.S handle_exception_saved: `sti` unless the interrupted IF was 0 (H6 cleared it).
    const inside: number[] = [];
    const def = (withIf: boolean): LitmusDef => ({
      cpus: 1,
      os: "xen",
      functions: [{ name: "bp_code", code: ["int3", "ret"] }],
      *bpHandler(_ctx, env) {
        inside.push(env.mem.cpuWord(0, C.if));
        yield mark(Mark.BpSite);
        return 1;
      },
      *program(_ctx, env) {
        if (!withIf) yield cli();
        yield call(env.addr("bp_code"));
      },
    });
    const on = litmus(def(true)).run([]);
    expectStatus(on, RunStatus.Finished);
    expect(trace(on, 0, [Ev.BpDeliver, Ev.Sti, Ev.Iret])).toEqual(["BpDeliver", "Sti", "Iret"]);
    const off = litmus(def(false)).run([]);
    expectStatus(off, RunStatus.Finished);
    expect(trace(off, 0, [Ev.BpDeliver, Ev.Sti, Ev.Iret])).toEqual(["BpDeliver", "Iret"]);
    expect(inside).toEqual([1, 0]);
    expect(off.cpuWord(0, C.if)).toBe(0); // IRET restored the interrupted IF
  });
});

describe("H7: IF gates maskable interrupts, not NMIs", () => {
  // Guards Cpu.step()'s `irqPending !== 0 && if === 1` (and schedule.runnable's copy of it).
  const def = (nmi: boolean): LitmusDef => ({
    cpus: 2,
    words: ["cliDone", "sent", "x", "y"],
    *ipiHandler(_ctx, vector) {
      yield mark(Mark.Rendezvous, vector);
    },
    *program(ctx, env) {
      const { w } = env;
      if (ctx.cpu === 0) {
        yield waitUntil(eq(w.cliDone, 1));
        yield nmi ? sendNmi(1) : sendIpi(1, 3);
        yield store(w.sent, 1);
      } else {
        yield cli();
        yield store(w.cliDone, 1);
        yield waitUntil(eq(w.sent, 1));
        yield store(w.x, 1);
        yield sti();
        yield store(w.y, 1);
      }
    },
  });

  it("H7: an IPI sent while IF=0 is delivered only after sti", () => {
    const run = litmus(def(false)).run([]);
    expectStatus(run, RunStatus.Finished);
    expect(run.of(Ev.IpiArrive, 1).map((r) => r.a)).toEqual([3]);
    expect(trace(run, 1, [Ev.Cli, Ev.Sti, Ev.IpiArrive, Ev.IrqDeliver, Ev.Store, Ev.Iret])).toEqual([
      "Cli",
      "Store", // cliDone
      "IpiArrive",
      "Store", // x: IF=0, the IPI stays pending
      "Sti",
      "Store", // y: the instruction after STI runs first (the STI shadow, SDM Vol. 2 STI)
      "IrqDeliver", // at the first boundary after it
      "Iret",
    ]);
    expect(run.of(Ev.IrqDeliver, 1).map((r) => r.a)).toEqual([3]);
    expect(run.of(Ev.Mark, 1).map((r) => [r.a, r.b])).toEqual([[Mark.Rendezvous, 3]]);
    expect(run.cpuWord(1, C.irqPending)).toBe(0);
    expect(run.cpuWord(1, C.if)).toBe(1);
  });

  it("H7: an NMI IPI ignores IF", () => {
    const run = litmus(def(true)).run([]);
    expectStatus(run, RunStatus.Finished);
    expect(run.of(Ev.NmiArrive, 1).map((r) => r.a)).toEqual([EventSource.Ipi]);
    expect(trace(run, 1, [Ev.Cli, Ev.Sti, Ev.NmiArrive, Ev.NmiDeliver, Ev.Store, Ev.Iret])).toEqual([
      "Cli",
      "Store",
      "NmiArrive",
      "NmiDeliver", // with IF=0
      "Iret",
      "Store",
      "Sti",
      "Store",
    ]);
  });
});

describe("H8: IST stacks", () => {
  // NMI handler interrupted by a #MC; a second NMI arrives inside the #MC handler; the #MC handler's
  // IRET unblocks NMIs and the second NMI is taken on the live NMI IST stack.
  // Guards enterHandler()'s istLive check (IstClobber) and deliverNmi()'s nestedNmiGuard branch.
  const def = (os: "xen" | "linux"): LitmusDef => ({
    cpus: 1,
    nmis: 2,
    mces: 1,
    os,
    words: ["a"],
    *program(_ctx, env) {
      yield store(env.w.a, 1);
    },
  });
  // [CPU 0, NMI 0, #MC 0]: NMI#1 arrives; taken; #MC arrives; taken; NMI#2 arrives in the #MC handler.
  const tape = [1, 0, 2, 0, 1];

  it("H8: on xen the nested NMI overwrites the live NMI frame: IstClobber naming the #MC's IRET", () => {
    const m = litmus(def("xen"));
    const run = m.run(tape);
    expectStatus(run, RunStatus.Finished);
    const mcIret = run.of(Ev.Iret, 0)[0];
    expect([mcIret.a, mcIret.b, mcIret.c]).toEqual([ContextKind.Mce, 1, 1]);
    const clobber = run.of(Ev.IstClobber, 0);
    expect(clobber.map((r) => [r.a, r.b, r.c])).toEqual([[2, ContextKind.Mce, ContextKind.Nmi]]);
    const delivers = run.of(Ev.NmiDeliver, 0);
    expect(delivers.map((r) => r.b)).toEqual([0, 1]);
    expect(delivers[1].index).toBe(mcIret.index + 1);
    expect(clobber[0].index).toBe(mcIret.index + 2);
    expect(run.of(Ev.NmiNested)).toHaveLength(0);
    expect(evaluate(m.spec, run.mem, "P3").map((v) => v.kind)).toEqual(["ist-clobber(#MC)"]);
  });

  it("H8: linux's nested-NMI guard turns it into NmiNested and a repeat of the outer handler", () => {
    const m = litmus(def("linux"));
    const run = m.run(tape);
    expectStatus(run, RunStatus.Finished);
    expect(run.of(Ev.IstClobber)).toHaveLength(0);
    expect(run.of(Ev.NmiDeliver, 0)).toHaveLength(1);
    const nested = run.of(Ev.NmiNested, 0);
    expect(nested).toHaveLength(1);
    expect(nested[0].index).toBe(run.of(Ev.Iret, 0)[0].index + 1); // right after the #MC's IRET
    expect(trace(run, 0, [Ev.NmiDeliver, Ev.NmiNested, Ev.Iret, Ev.Mark])).toEqual([
      "NmiDeliver",
      "Mark", // McService
      "Iret", // #MC
      "NmiNested",
      "Mark", // NmiService of the outer handler
      "Iret", // to repeat_nmi
      "Mark", // RepeatNmi
      "Mark", // NmiService again
      "Iret",
    ]);
    const marks = run.of(Ev.Mark, 0).map((r) => r.a);
    expect(marks).toEqual([Mark.McService, Mark.NmiService, Mark.RepeatNmi, Mark.NmiService]);
    expect(run.cpuWord(0, C.nmiBlocked)).toBe(0);
    expect(run.cpuWord(0, C.depth)).toBe(1);
    expect(evaluate(m.spec, run.mem, "P3")).toEqual([]);
  });

  it("H8: linux turns the NMI let in by a #BP's IRET into NmiNested and a repeat, not a clobber", () => {
    // The machine and tape of the H3 xen test, with Linux's entry.
    const m = litmus(withInt3("linux"));
    const service = m.env.addr("nmi_service");
    const run = m.run(nestedTape);
    expectStatus(run, RunStatus.Finished);
    expect(run.of(Ev.IstClobber)).toHaveLength(0);
    expect(run.of(Ev.NmiDeliver, 0)).toHaveLength(1);
    const nested = run.of(Ev.NmiNested, 0);
    expect(nested.map((r) => r.addr)).toEqual([service + 1]);
    expect(nested[0].index).toBe(run.of(Ev.Iret, 0)[0].index + 1);
    expect(run.of(Ev.Mark, 0).map((r) => r.a)).toEqual([
      Mark.NmiService,
      Mark.BpSite,
      Mark.RepeatNmi,
      Mark.NmiService,
      Mark.BpSite,
    ]);
    expect(run.of(Ev.Iret, 0).map((r) => [r.a, r.b, r.c])).toEqual([
      [ContextKind.Bp, 1, 1],
      [ContextKind.Nmi, 1, 1], // to repeat_nmi: the frame stays
      [ContextKind.Bp, 0, 1],
      // repeat_nmi runs with hardware NMIs unblocked (Linux relies on its "NMI executing" state), so
      // the last IRET has nothing left to unblock.
      [ContextKind.Nmi, 0, 0],
    ]);
    expect(evaluate(m.spec, run.mem, "P3")).toEqual([]);
  });

  it("H8: a #MC after the handler cleared MCIP but before its IRET clobbers the #MC IST frame", () => {
    const m = litmus({ ...def("xen"), nmis: 0, mces: 2, mceDelivery: "local" });
    // [CPU 0, #MC 0]: #MC arrives; taken; the handler runs up to its IRET; the second #MC arrives.
    const run = m.run([1, ...new Array(9).fill(0), 1]);
    expectStatus(run, RunStatus.Finished);
    const clear = run.at(Ev.McipClear, 0);
    const arrive = run.of(Ev.McArrive, 0)[1];
    expect(arrive.index).toBeGreaterThan(clear);
    const clobber = run.of(Ev.IstClobber, 0);
    expect(clobber.map((r) => [r.a, r.c])).toEqual([[3, ContextKind.Mce]]);
    expect(run.of(Ev.McDeliver, 0)).toHaveLength(2);
  });
});

describe("H9: stores are atomic, fetches are bytewise", () => {
  it("H9: a 4-byte code store is one step with one write sequence number", () => {
    // Guards Cpu.writeCode(): one seq for the whole store, inside one step.
    const m = litmus({
      cpus: 2,
      functions: [{ name: "scratch", code: ["nop", "nop", "nop", "nop", "ret"] }],
      words: ["r0", "r3"],
      *program(ctx, env) {
        const scratch = env.addr("scratch");
        if (ctx.cpu === 1) {
          yield writeCode(scratch, [0x11, 0x22, 0x33, 0x44]);
        } else {
          const b0 = yield readCode(scratch);
          const b3 = yield readCode(scratch + 3);
          yield store(env.w.r0, b0);
          yield store(env.w.r3, b3);
        }
      },
    });
    const scratch = m.env.addr("scratch");
    const run = m.run([1]);
    const writes = run.of(Ev.CodeWrite, 1);
    expect(writes.map((r) => [r.addr - scratch, r.a, r.b, r.c])).toEqual([
      [0, 0x11, 1, 4],
      [1, 0x22, 1, 4],
      [2, 0x33, 1, 4],
      [3, 0x44, 1, 4],
    ]);
    expect(new Set(writes.map((r) => r.step)).size).toBe(1);
    expect(writes[3].index - writes[0].index).toBe(3);
    // Whatever the interleaving, a reader that sees the new byte 0 also sees the new byte 3.
    for (let t = 0; t < 64; t++) {
      const tape = Array.from({ length: 6 }, (_, k) => (t >> k) & 1);
      const r = m.run(tape);
      expectStatus(r, RunStatus.Finished);
      const b0 = r.mem.data[r.w.r0];
      const b3 = r.mem.data[r.w.r3];
      expect([0x90, 0x11]).toContain(b0);
      if (b0 === 0x11) expect(b3).toBe(0x44);
    }
    expect(() => writeCode(scratch, [1, 2, 3, 4, 5])).toThrow(/1, 2, 4 or 8 bytes wide, not 5/);
  });

  it("H9: a store can land between the bytes of one fetch outside the patch site too", () => {
    // The same race as the previous test, on a 5-byte NOP that is not the patch site but is declared
    // writable. CPU 1 stores the byte's own value (44) at +2, so the decoding is unchanged and only the
    // order is observed. Every tape of ten binary choices is tried: some run must fetch byte 0 before
    // the store and byte 2 after it. Guards Cpu.nextIsVisible(): a fetch of writable code is a
    // scheduling point.
    const m = litmus({
      cpus: 2,
      functions: [{ name: "other", code: ["nop5", "ret"] }],
      *program(ctx, env) {
        const other = env.addr("other");
        if (ctx.cpu === 0) yield call(other);
        else yield writeCode(other + 2, [0x44]);
      },
    });
    const other = m.env.addr("other");
    const orders = new Set<string>();
    for (let t = 0; t < 1024; t++) {
      const run = m.run(Array.from({ length: 10 }, (_, k) => (t >> k) & 1));
      expectStatus(run, RunStatus.Finished);
      const write = run.of(Ev.CodeWrite, 1)[0];
      const fetches = run.of(Ev.Fetch, 0).filter((r) => r.addr >= other && r.addr < other + 5);
      orders.add(fetches.map((r) => (r.index < write.index ? "old" : "new")).join(","));
    }
    expect(orders).toContain("old,old,old,old,old");
    expect(orders).toContain("new,new,new,new,new");
    expect(orders).toContain("old,old,new,new,new");
  });

  it("H9: code stores outside the site and the declared writable functions are an error", () => {
    // Guards Cpu.writeCode(): the engine takes scheduling points only at code that may be written
    // (Cpu.nextIsVisible), so a store anywhere else is refused with the address named.
    const m = litmus({
      cpus: 2,
      writable: [],
      functions: [{ name: "other", code: ["nop5", "ret"] }],
      *program(ctx, env) {
        const other = env.addr("other");
        if (ctx.cpu === 0) yield call(other);
        else yield writeCode(other + 2, [0x44]);
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Error);
    expect(run.error).toMatch(/CPU 1 writes code at other\+0x2, outside the patch site/);
  });

  const fetchVsWrite = (fetch: "bytewise" | "atomic") =>
    litmus({
      cpus: 2,
      fetch,
      *program(ctx, env) {
        if (ctx.cpu === 0) yield call(env.addr("site"));
        else yield writeCode(env.addr("site") + 4, [0x7f]);
      },
    });

  it("H9: a single-byte store from another CPU lands between the bytes of one fetch", () => {
    // Guards Cpu.fetchStep() reading one byte per step when fetch is not atomic.
    const m = fetchVsWrite("bytewise");
    const site = m.env.addr("site");
    // CPU 0 calls the site and fetches bytes 0-3; CPU 1 writes byte 4; CPU 0 fetches byte 4.
    const run = m.run([0, 0, 0, 0, 0, 1, 1]);
    expectStatus(run, RunStatus.Crash);
    const fetches = run.of(Ev.Fetch, 0).filter((r) => r.addr >= site && r.addr < site + 5);
    expect(fetches.map((r) => [r.addr - site, r.a, r.b, r.c])).toEqual([
      [0, 0x0f, -1, 0],
      [1, 0x1f, -1, 0],
      [2, 0x44, -1, 0],
      [3, 0x00, -1, 0],
      [4, 0x7f, 1, 1],
    ]);
    expect(new Set(fetches.map((r) => r.step)).size).toBe(5); // one step per byte
    const write = run.of(Ev.CodeWrite, 1)[0];
    expect(write.index).toBeGreaterThan(fetches[3].index);
    expect(write.index).toBeLessThan(fetches[4].index);
    const crash = run.of(Ev.Crash)[0];
    expect([crash.cpu, crash.addr, crash.a, crash.b, crash.c, crash.d & 0xff]).toEqual([
      0,
      site,
      CrashKind.Torn,
      5,
      0x00441f0f,
      0x7f,
    ]);
  });

  it("H9: with fetch 'atomic' the same tape fetches the whole instruction in one step", () => {
    const m = fetchVsWrite("atomic");
    const site = m.env.addr("site");
    const run = m.run([0, 0, 0, 0, 0, 1, 1]);
    const fetches = run.of(Ev.Fetch, 0).filter((r) => r.addr >= site && r.addr < site + 5);
    expect(fetches).toHaveLength(5);
    expect(new Set(fetches.map((r) => r.step)).size).toBe(1);
    expect(fetches.map((r) => r.b)).toEqual([-1, -1, -1, -1, -1]);
    expect(run.of(Ev.Exec, 0).find((r) => r.addr === site)?.a).toBe(5);
  });
});

describe("H10: stale fetch until the CPU serializes", () => {
  // A function whose first byte CPU 1 rewrites from nop (90) to cld (fc); CPU 0 fetches it.
  // Guards Cpu.fetchByte(): the candidate list (current, then older values written after the CPU's
  // last serialization), the `writer === this.id` stop and the `seq <= since` stop.
  const def = (self: boolean): LitmusDef => ({
    cpus: 2,
    fetch: "stale",
    words: ["written"],
    functions: [{ name: "flip", code: ["nop", "ret"] }],
    *program(ctx, env) {
      const flip = env.addr("flip");
      if (ctx.cpu === 1) {
        if (!self) yield writeCode(flip, [0xfc]);
        yield store(env.w.written, 1);
        return;
      }
      yield waitUntil(eq(env.w.written, 1));
      if (self) yield writeCode(flip, [0xfc]);
      yield call(flip);
      yield cpuid();
      yield call(flip);
    },
  });
  const firstOps = (run: LitmusRun, flip: number) =>
    run
      .of(Ev.Exec, 0)
      .filter((r) => r.addr === flip)
      .map((r) => r.b);

  it("H10: a CPU that has not serialized may fetch the older value; after cpuid it sees the new one", () => {
    const m = litmus(def(false));
    const flip = m.env.addr("flip");
    // Tape value 4 is the stale-fetch choice of the first fetch of `flip` (candidates: [fc, 90]);
    // 1 picks the older byte.
    const stale = m.run([0, 0, 0, 0, 1]);
    expectStatus(stale, RunStatus.Finished);
    const fetch = stale.of(Ev.Fetch, 0).filter((r) => r.addr === flip);
    expect(fetch.map((r) => [r.a, r.b, r.c])).toEqual([
      [0x90, 1, 1], // fetched the image's nop although CPU 1's write (seq 1) is the current value
      [0xfc, 1, 1], // after cpuid: the new value
    ]);
    expect(firstOps(stale, flip)).toEqual([Mnemonic.Nop, Mnemonic.Cld]);
    // Value 0 at the same position picks the current byte.
    const fresh = m.run([0, 0, 0, 0, 0]);
    expect(firstOps(fresh, flip)).toEqual([Mnemonic.Cld, Mnemonic.Cld]);
    // No tape makes the fetch after cpuid stale.
    for (let v = 0; v < 4; v++) {
      for (let pos = 0; pos < 12; pos++) {
        const tape = Array.from({ length: 12 }, (_, i) => (i === pos ? v : 0));
        const r = m.run(tape);
        expectStatus(r, RunStatus.Finished);
        expect(firstOps(r, flip)[1]).toBe(Mnemonic.Cld);
      }
    }
  });

  it("H10: a CPU always sees its own store", () => {
    const m = litmus(def(true));
    const flip = m.env.addr("flip");
    for (let v = 0; v < 4; v++) {
      for (let pos = 0; pos < 12; pos++) {
        const tape = Array.from({ length: 12 }, (_, i) => (i === pos ? v : 0));
        const r = m.run(tape);
        expectStatus(r, RunStatus.Finished);
        expect(firstOps(r, flip)).toEqual([Mnemonic.Cld, Mnemonic.Cld]);
      }
    }
  });

  it("H10: with fetch 'bytewise' the same tape never fetches the older value", () => {
    const m = litmus({ ...def(false), fetch: "bytewise" });
    const flip = m.env.addr("flip");
    const run = m.run([0, 0, 0, 0, 1]);
    expectStatus(run, RunStatus.Finished);
    expect(firstOps(run, flip)).toEqual([Mnemonic.Cld, Mnemonic.Cld]);
  });
});

describe("H11: #UD is a crash", () => {
  // Guards Cpu.execute(): `d.invalid || d.isUd2` -> Crash InvalidOpcode.
  const run1 = (code: string[]) => {
    const m = litmus({
      cpus: 1,
      words: ["after"],
      functions: [{ name: "bad", code }],
      *program(_ctx, env) {
        yield call(env.addr("bad"));
        yield store(env.w.after, 1);
      },
    });
    return { m, run: m.run([]) };
  };

  it("H11: ud2 raises #UD: a Crash record with CrashKind.InvalidOpcode ends the run", () => {
    const { m, run } = run1(["nop", "ud2", "ret"]);
    expectStatus(run, RunStatus.Crash);
    const bad = m.env.addr("bad");
    expect(run.of(Ev.Crash).map((r) => [r.cpu, r.a, r.addr, r.b])).toEqual([
      [0, CrashKind.InvalidOpcode, bad + 1, 2],
    ]);
    // The nop, then the ud2 (decoded, then #UD): execution goes no further.
    expect(run.of(Ev.Exec, 0).map((r) => [r.addr - bad, r.b])).toEqual([
      [0, Mnemonic.Nop],
      [1, Mnemonic.Ud2],
    ]);
    expect(run.of(Ev.Store)).toHaveLength(0);
    expect(evaluate(m.spec, run.mem, "P4").map((v) => v.kind)).toEqual(["invalid-opcode"]);
  });

  it("H11: an invalid encoding (06, push es in 64-bit mode) raises #UD", () => {
    const { m, run } = run1(["nop", "db 06", "ret"]);
    expectStatus(run, RunStatus.Crash);
    expect(run.of(Ev.Crash).map((r) => [r.a, r.addr])).toEqual([
      [CrashKind.InvalidOpcode, m.env.addr("bad") + 1],
    ]);
    expect(run.of(Ev.Store)).toHaveLength(0);
  });

  it("H11: an invalid opcode in the last byte of the image is #UD, not a fetch past the image", () => {
    // 06 is invalid in 64-bit mode on its own: the CPU must not need a second byte to raise #UD.
    // `bad` is 16 bytes long and last in the image, so its 06 is the image's last byte.
    const { m, run } = run1([...Array.from({ length: 15 }, () => "nop"), "db 06"]);
    const bad = m.env.addr("bad");
    expect(m.spec.image.end).toBe(bad + 16);
    expectStatus(run, RunStatus.Crash);
    expect(run.of(Ev.Crash).map((r) => [r.a, r.addr])).toEqual([[CrashKind.InvalidOpcode, bad + 15]]);
  });
});
