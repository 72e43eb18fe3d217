// Litmus tests of the real-code semantics (model/cpu/real-code.ts execute, model/x86.ts stackEffect): the stack
// in the buffer, IRETQ in real code, IF in real code and the STI shadow, indirect branches through
// function-pointer data symbols, and machine-check broadcast. Each test fails if its rule is removed.
import { describe, expect, it } from "vitest";
import { ContextKind, CrashKind, Ev, EventSource } from "../dist/model/events.js";
import { C, RunStatus, stackTop } from "../dist/model/memory.js";
import {
  call,
  cli,
  eq,
  load,
  Mark,
  mark,
  sendIpi,
  sendNmi,
  store,
  waitUntil,
  writeCode,
} from "../dist/model/routine.js";
import { evaluate } from "../dist/properties/invariants.js";
import { type LitmusRun, litmus, trace } from "./helpers/litmus.js";

function expectStatus(run: LitmusRun, status: RunStatus): void {
  expect(run.status, `${run.error ?? ""}\n${run.dump()}`).toBe(status);
}

/** A caller with a frame of its own calls `f`, whose first instruction is a one-byte `push rbp`. */
const FRAMED = [
  { name: "caller", code: ["push rbp", "mov rbp, rsp", "call f", "pop rbp", "ret"] },
  { name: "f", code: ["push rbp", "mov rbp, rsp", "mov eax, 1", "pop rbp", "ret"] },
];

describe("the stack: push, pop, call, ret, leave and RSP/RBP arithmetic (SDM Vol. 2)", () => {
  it("a balanced call chain returns to the routine with RSP back at the top of the stack", () => {
    const m = litmus({
      cpus: 1,
      functions: [
        ...FRAMED,
        { name: "g", code: ["push rbp", "mov rbp, rsp", "sub rsp, 16", "push 7", "leave", "ret"] },
      ],
      words: ["done"],
      *program(_ctx, env) {
        yield call(env.addr("caller"));
        yield call(env.addr("g"));
        yield store(env.w.done, 1);
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Finished);
    expect(run.cpuWord(0, C.rsp)).toBe(stackTop(0, 0));
    expect(run.of(Ev.Crash)).toHaveLength(0);
  });

  it("resuming at int3+1 skips `push rbp`: only the stack shows it, and the callee's ret is a crash", () => {
    // The int3 over `push rbp` is claimed by a handler that leaves the saved RIP at int3+1 (Xen's
    // do_int3 "Hit embedded breakpoint" resume). `f` then pops the return address into RBP and its
    // ret pops the caller's saved RBP (0): with the stack in the buffer that is a crash naming it.
    // A shadow list of return addresses would return to `caller` and see nothing wrong.
    const m = litmus({
      cpus: 1,
      functions: FRAMED,
      *bpHandler() {
        yield mark(Mark.BpSite);
        return 1; // claimed; frame.rip stays at int3+1
      },
      *program(_ctx, env) {
        yield writeCode(env.addr("f"), [0xcc]);
        yield call(env.addr("caller"));
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Crash);
    const crash = run.of(Ev.Crash)[0];
    expect(crash.a).toBe(CrashKind.BadReturn);
    const f = m.env.addr("f");
    expect(run.spec.image.symbolize(crash.addr)).toBe("f+0xa"); // f's ret
    expect(crash.b).toBe(0); // the caller's saved RBP (the routine's RBP was 0)
    expect(crash.c).toBe(stackTop(0, 0) - 16); // the slot of caller's `push rbp`
    const [v] = evaluate(run.spec, run.mem, "P4");
    expect(v).toMatchObject({ property: "P4", kind: "bad-return", cpu: 0 });
    expect(v.message).toMatch(/return at f\+0xa, which popped 0x0 \(.*\) from the stack slot/);
    // The int3 at f, then straight on at f+1: `push rbp` never ran.
    expect(
      run
        .of(Ev.Exec, 0)
        .filter((r) => r.addr >= f && r.addr < f + 2)
        .map((r) => r.addr - f),
    ).toEqual([0, 1]);
  });

  it("returning to the start of the function repeats `push rbp`: the ret pops a stack address", () => {
    const m = litmus({
      cpus: 1,
      functions: FRAMED,
      *bpHandler(ctx, env) {
        yield writeCode(env.addr("f+1"), [0x48]); // put back the first byte of `mov rbp, rsp`
        ctx.frame.rip = env.addr("f"); // restart the function: `push rbp` runs a second time
        return 1;
      },
      *program(_ctx, env) {
        yield writeCode(env.addr("f+1"), [0xcc]);
        yield call(env.addr("caller"));
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Crash);
    const crash = run.of(Ev.Crash)[0];
    expect(crash.a).toBe(CrashKind.BadReturn);
    // The value popped is the RBP pushed the first time: the caller's frame pointer, a stack address.
    expect(crash.b).toBe(stackTop(0, 0) - 16);
  });
});

describe("IRETQ in real code (SDM Vol. 2 IRET, §6.7.1, §9.3)", () => {
  // iret_to_self as Linux's sync_core builds it: a frame of its own, IRETQ to the next function.
  const IRET_TO_SELF = [
    {
      name: "iret_to_self",
      code: ["mov rbp, rsp", "push 0", "push rbp", "pushfq", "push 0", "push offset after_iret", "iretq"],
    },
    { name: "after_iret", code: ["ret"] },
  ];

  it("an iret-to-self inside an NMI handler unblocks NMIs and serializes: a pending NMI nests (P3 os)", () => {
    const m = litmus({
      cpus: 1,
      nmis: 2,
      functions: IRET_TO_SELF,
      nmiService: "iret_to_self",
      words: ["a"],
      *program(_ctx, env) {
        yield store(env.w.a, 1);
        yield store(env.w.a, 2);
      },
    });
    // NMI#1 arrives and is taken; NMI#2 arrives while the handler runs (blocked, pending).
    const run = m.run([1, 0, 0, 1]);
    expectStatus(run, RunStatus.Finished);
    const irets = run.of(Ev.Iret, 0);
    // The real code's IRETQ: it stays in the NMI context (a = Base: a frame of its own) and unblocks.
    expect(irets[0]).toMatchObject({ a: ContextKind.Base, b: 1, c: 1 });
    expect(run.spec.image.symbolize(irets[0].addr)).toMatch(/^iret_to_self\+/);
    const clobber = run.of(Ev.IstClobber, 0);
    expect(clobber).toHaveLength(1);
    expect(clobber[0].b).toBe(ContextKind.Base); // the OS's own IRET let it in
    const [v] = evaluate(run.spec, run.mem, "P3");
    expect(v.kind).toBe("ist-clobber(os)");
    expect(run.cpuWord(0, C.rsp)).toBe(stackTop(0, 0));
  });

  it("an iret-to-self serializes: a code write made before it is no longer stale (H4, H10)", () => {
    const m = litmus({
      cpus: 1,
      functions: IRET_TO_SELF,
      *program(_ctx, env) {
        yield writeCode(env.addr("site"), [0x90]);
        yield call(env.addr("iret_to_self"));
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Finished);
    expect(run.of(Ev.Iret, 0)).toHaveLength(1);
    // No other serializing event ran: only the real IRETQ can have moved lastSerializeSeq to write #1.
    expect(run.of(Ev.Serialize, 0)).toHaveLength(0);
    expect(run.cpuWord(0, C.lastSerializeSeq)).toBe(1);
  });

  it("an IRETQ with RSP at the event frame is the handler's own IRET", () => {
    const m = litmus({
      cpus: 1,
      nmis: 1,
      // Drops the routine's return address, so RSP points at the NMI frame, and returns from the NMI.
      functions: [{ name: "nmi_tail", code: ["add rsp, 8", "iretq"] }],
      nmiService: "nmi_tail",
      words: ["a"],
      *program(_ctx, env) {
        yield cli();
        yield store(env.w.a, 1);
      },
    });
    const run = m.run([0, 1]);
    expectStatus(run, RunStatus.Finished);
    expect(run.of(Ev.Iret, 0).map((r) => [r.a, r.b])).toEqual([[ContextKind.Nmi, 1]]);
    expect(run.cpuWord(0, C.depth)).toBe(1);
    expect(run.cpuWord(0, C.nmiBlocked)).toBe(0);
    expect(run.cpuWord(0, C.if)).toBe(0); // IF of the interrupted context (cli)
    expect(run.cpuWord(0, C.rsp)).toBe(stackTop(0, 0));
  });
});

describe("event frames (SDM Vol. 3A §6.14.2): SS, RSP, RFLAGS, CS, RIP on the IST stack", () => {
  it("an NMI taken in real code pushes its frame on the NMI IST stack, with the interrupted RSP and RIP", () => {
    const frames: number[][] = [];
    const m = litmus({
      cpus: 1,
      nmis: 1,
      functions: [{ name: "body", code: ["push rbp", "nop", "pop rbp", "ret"] }],
      *nmiCallback(_ctx, env) {
        const top = stackTop(0, env.spec.os.istNmi);
        const slot = (a: number) => env.mem.stack[env.mem.stackSlot(0, a)];
        frames.push(
          [1, 2, 3, 4, 5].map((k) => slot(top - 8 * k)),
          [env.mem.cpuWord(0, C.rsp)],
        );
        return 1;
      },
      *program(_ctx, env) {
        yield call(env.addr("body"));
      },
    });
    // call body; fetch push rbp (visible: litmus code is writable); the NMI arrives after it.
    const run = m.run([0, 0, 1]);
    expectStatus(run, RunStatus.Finished);
    const body = m.env.addr("body");
    const rspInside = stackTop(0, 0) - 16; // the routine's return marker, then the pushed RBP
    const [[ss, rsp, flags, cs, rip], [handlerRsp]] = frames;
    expect([rsp, flags, rip]).toEqual([rspInside, 0x202, body + 1]);
    expect([ss, cs].every((v) => v !== 0)).toBe(true);
    expect(handlerRsp).toBe(stackTop(0, m.spec.os.istNmi) - 40);
    expect(run.cpuWord(0, C.rsp)).toBe(stackTop(0, 0));
  });
});

describe("IF in real code: cli, sti, pushfq/popfq, and the STI shadow (SDM Vol. 2 CLI, STI, POPF)", () => {
  const IRQ_SAVE = [{ name: "irq_save", code: ["pushfq", "cli", "nop", "popfq", "ret"] }];

  it("pushfq; cli; ...; popfq holds an IPI until popfq restores IF=1", () => {
    const m = litmus({
      cpus: 2,
      functions: IRQ_SAVE,
      words: ["inside", "sent"],
      *ipiHandler(_ctx, _vector, env) {
        yield store(env.w.inside, 2);
      },
      *program(ctx, env) {
        if (ctx.cpu === 0) {
          yield waitUntil(eq(env.w.inside, 1));
          yield sendIpi(1, 3);
          yield store(env.w.sent, 1);
          return;
        }
        yield store(env.w.inside, 1);
        yield call(env.addr("irq_save"));
      },
    });
    // CPU 1 stores, calls, runs pushfq and cli (private); CPU 0 sends the IPI while CPU 1 is inside.
    const irqSave = m.env.addr("irq_save");
    const run = m.run([1, 0, 0, 0, 1, 1]);
    expectStatus(run, RunStatus.Finished);
    const arrive = run.at(Ev.IpiArrive, 1);
    const deliver = run.at(Ev.IrqDeliver, 1);
    const cliAt = run.log.findIndex((r) => r.cpu === 1 && r.kind === Ev.Cli);
    const popf = run.log.findIndex((r) => r.cpu === 1 && r.kind === Ev.Exec && r.addr === irqSave + 3);
    expect(cliAt).toBeGreaterThan(0);
    expect(arrive).toBeGreaterThan(cliAt);
    expect(deliver).toBeGreaterThan(popf);
    expect(run.cpuWord(1, C.if)).toBe(1);
  });

  const STI_THEN_NOP = [{ name: "sti_nop", code: ["sti", "nop", "ret"] }];
  const shadowRun = (stiShadow: boolean) =>
    litmus({
      cpus: 1,
      nmis: 1,
      stiShadow,
      functions: STI_THEN_NOP,
      *program(_ctx, env) {
        yield cli();
        yield call(env.addr("sti_nop"));
      },
    });
  const nmiAfter = (run: LitmusRun) => {
    const sti = run.spec.image.symbol("sti_nop").address;
    const deliver = run.at(Ev.NmiDeliver, 0);
    return run.log.filter((r) => r.kind === Ev.Exec && r.index < deliver && r.addr >= sti).length;
  };

  it("with the STI-shadow option an NMI waits for the instruction after STI; without it, it does not", () => {
    // cli; call; the NMI arrives just after `sti` executes.
    const tape = [0, 0, 1];
    const held = shadowRun(true).run(tape);
    expectStatus(held, RunStatus.Finished);
    expect(nmiAfter(held)).toBe(2); // sti and nop ran before the NMI
    const free = shadowRun(false).run(tape);
    expectStatus(free, RunStatus.Finished);
    expect(nmiAfter(free)).toBe(1); // taken right after sti
  });
});

describe("indirect branches through function-pointer data symbols", () => {
  const DISPATCH = [
    { name: "dispatch", code: ["call [handler_ptr]", "ret"] },
    { name: "first", code: ["mov eax, 1", "ret"] },
    { name: "second", code: ["mov eax, 2", "ret"] },
  ];

  it("call [ptr] reads the pointer's current value in a step of its own and calls it", () => {
    const m = litmus({
      cpus: 1,
      functions: DISPATCH,
      data: [{ name: "handler_ptr", initial: "first" }],
      *program(_ctx, env) {
        yield call(env.addr("dispatch"));
        const word = env.spec.dataWords[0];
        yield store(word, env.addr("second"));
        yield call(env.addr("dispatch"));
      },
    });
    const run = m.run([]);
    expectStatus(run, RunStatus.Finished);
    const first = m.env.addr("first");
    const second = m.env.addr("second");
    const loads = run.of(Ev.Load, 0);
    expect(loads.map((r) => r.a)).toEqual([first, second]);
    const bodies = run.of(Ev.Exec, 0).filter((r) => r.addr === first || r.addr === second);
    expect(bodies.map((r) => r.addr)).toEqual([first, second]);
    // Each callee returns into dispatch (the call pushed a return address), whose own ret follows.
    const names = run.of(Ev.Exec, 0).map((r) => run.spec.image.symbolize(r.addr));
    const ret = `dispatch+0x${(run.spec.image.symbol("dispatch").size - 1).toString(16)}`;
    expect(names).toEqual(["dispatch", "first", "first+0x5", ret, "dispatch", "second", "second+0x5", ret]);
    expect(run.cpuWord(0, C.rsp)).toBe(stackTop(0, 0));
    // The call graph follows the pointer's initial value, as execution does.
    expect(run.spec.image.callees("dispatch")).toEqual(["first"]);
  });

  it("an indirect call through a register stops the run with an error naming it", () => {
    const m = litmus({
      cpus: 1,
      functions: [{ name: "through_reg", code: ["call rax", "ret"] }],
      *program(_ctx, env) {
        yield call(env.addr("through_reg"));
      },
    });
    const run = m.run([]);
    expect(run.status).toBe(RunStatus.Error);
    expect(run.error).toMatch(
      /indirect call at through_reg \(`call rax`\) takes its target through a register/,
    );
    expect(run.spec.image.calleesOf("through_reg").unresolved).toEqual([
      "through_reg (call rax: through a register or a computed address)",
    ]);
  });
});

describe("machine checks: broadcast (Intel without LMCE) or local (SDM Vol. 3B §17.3.1.4)", () => {
  const def = (mceDelivery: "broadcast" | "local") => ({
    cpus: 2,
    mces: 1,
    mceDelivery,
    words: ["a"],
    *program(ctx: { cpu: number }, env: { w: Record<string, number> }) {
      if (ctx.cpu === 0) yield store(env.w.a, 1);
      else yield load(env.w.a);
    },
  });

  it("a broadcast #MC reaches every CPU; a local one only the CPU that saw it", () => {
    // [CPU 0, CPU 1, #MC]: the machine check arrives first.
    const bcast = litmus(def("broadcast")).run([2]);
    expectStatus(bcast, RunStatus.Finished);
    expect(
      bcast
        .of(Ev.McDeliver)
        .map((r) => r.cpu)
        .sort(),
    ).toEqual([0, 1]);
    expect(bcast.of(Ev.McArrive).map((r) => [r.cpu, r.a, r.b])).toEqual([
      [0, 1, 0],
      [1, 1, 0],
    ]);
    // [CPU 0, CPU 1, #MC to 0, #MC to 1]: the same tape value picks #MC to CPU 0 only.
    const local = litmus(def("local")).run([2]);
    expectStatus(local, RunStatus.Finished);
    expect(local.of(Ev.McDeliver).map((r) => r.cpu)).toEqual([0]);
  });

  it("an NMI IPI to a CPU in its #MC handler is still taken (not blocked by MCIP)", () => {
    const m = litmus({
      cpus: 2,
      mces: 1,
      mceDelivery: "local",
      words: ["go"],
      *program(ctx, env) {
        if (ctx.cpu === 0) {
          yield waitUntil(eq(env.w.go, 1));
          yield sendNmi(1);
          return;
        }
        yield store(env.w.go, 1);
      },
    });
    // CPU 1 stores go; the #MC reaches CPU 1 and is taken; CPU 0 wakes and sends the NMI IPI.
    const run = m.run([0, 2, 0, 1, 0]);
    expectStatus(run, RunStatus.Finished);
    expect(run.of(Ev.NmiArrive, 1).map((r) => r.a)).toEqual([EventSource.Ipi]);
    expect(trace(run, 1, [Ev.McDeliver, Ev.NmiDeliver, Ev.Iret])).toEqual([
      "McDeliver",
      "NmiDeliver", // inside the #MC handler: MCIP does not block NMIs (H5)
      "Iret",
      "Iret",
    ]);
    expect(run.of(Ev.Iret, 1).map((r) => r.a)).toEqual([ContextKind.Nmi, ContextKind.Mce]);
  });
});
