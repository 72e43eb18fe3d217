// The mutations `npm run mutate` applies, one at a time, to a scratch copy of the repository. Each
// breaks one hardware rule (SPEC §3, model/cpu/ and model/schedule.ts) or one property (SPEC §7,
// properties/invariants.ts) on purpose; the tests it names must then fail. A mutation that survives is
// a rule or property no test can see break. Adding one is adding one object to MUTATIONS: `find` must
// occur exactly once in `file` (give more context when it does not), and `tests` should stay small.

/** One textual edit: `find` (exactly once in `file`) becomes `replace`. */
export interface Edit {
  file: string;
  find: string;
  replace: string;
}

export interface Mutation extends Edit {
  /** Unique, says what is broken: `<rule>-<what the mutant does>`. */
  id: string;
  /** The hardware rule (H1, H2, ...) or property (P1, ... P6) the mutant breaks. */
  breaks: string;
  /** Test files (vitest file filters) that must kill it. */
  tests: string[];
  /** Further edits of the same mutant, applied together with the main one. */
  more?: Edit[];
}

/** Every rule and property that must have at least one mutation (SPEC §3 and §7). */
export const REQUIRED = [
  ...Array.from({ length: 11 }, (_, i) => `H${i + 1}`),
  ...Array.from({ length: 6 }, (_, i) => `P${i + 1}`),
  // Real-code semantics (docs/design.md §4): the stack, event frames, IRETQ, IF, the STI shadow,
  // indirect branches, machine-check broadcast.
  "STACK",
  "FRAME",
  "IRETQ",
  "IF",
  "STI",
  "INDIRECT",
  "MCE-BROADCAST",
  // OS entry code (model/os): Xen's do_int3 resume, Xen's #BP entry sti, the #MC rendezvous.
  "XEN-INT3",
  "XEN-BP-STI",
  "MCE-BARRIER",
  // Linux's batched text poking (model/protocols/linux-text-poke.ts): the #BP handler's lookup of the
  // trapping site among the sites of the batch being poked.
  "TEXT-POKE-LOOKUP",
  // The exhaustive search's state caching (workers/strategies/state-cache.ts): DPOR off with it.
  "CACHE",
  // Executions resumed from snapshots (Cpu.save/restore, MachineMemory.saveRun/restoreRun).
  "RESUME",
];

const CPU_DELIVERY = "model/cpu/delivery.ts";
const CPU_FETCH = "model/cpu/fetch.ts";
const CPU_REAL_CODE = "model/cpu/real-code.ts";
const CPU_STEPS = "model/cpu/steps.ts";
const CPU_SNAPSHOT = "model/cpu/snapshot.ts";
const SCHEDULE = "model/schedule.ts";
const INVARIANTS = "properties/invariants.ts";
const LITMUS = "test/litmus.test.ts";
const PROPERTIES = "test/properties.test.ts";
const TORN = "test/torn-fetch.test.ts";
const REAL = "test/litmus-real-code.test.ts";
const XEN_OS = "model/os/xen.ts";
const COMMON_OS = "model/os/common.ts";
const MCE_BARRIER = "test/mce-barrier.test.ts";
const TEXT_POKE = "model/protocols/linux-text-poke.ts";
const MULTI_SITE_LINUX = "test/multi-site-linux.test.ts";
const SEARCH = "workers/strategies/exhaustive.ts";
const CACHE_TEST = "test/state-cache.test.ts";
const RESUME_TEST = "test/resume.test.ts";
const TABLE_TEST = "test/state-table.test.ts";

export const MUTATIONS: Mutation[] = [
  // ---- CACHE: state caching switches DPOR off (Yang et al.'s propagation is not done) ----
  {
    id: "CACHE-dpor-kept",
    breaks: "CACHE",
    file: SEARCH,
    find: "this.dpor = reductions.dpor && !reductions.stateCaching;",
    replace: "this.dpor = reductions.dpor;",
    tests: [CACHE_TEST],
  },
  {
    id: "CACHE-table-lane-c",
    breaks: "CACHE",
    file: "workers/strategies/state-cache.ts",
    find: "if (t[o] !== a || t[o + 1] !== b || t[o + 2] !== c) continue;",
    replace: "if (t[o] !== a || t[o + 1] !== b) continue;",
    tests: [TABLE_TEST],
  },
  // ---- RESUME: a resumed execution is the one re-executed from the start ----
  {
    id: "RESUME-generator-kept",
    breaks: "RESUME",
    file: CPU_SNAPSHOT,
    find: "if (c.routine !== k.routine || c.inputs !== k.inputs || c.inputs.length !== k.taken) {",
    replace: "if (false) {",
    tests: [RESUME_TEST],
  },
  {
    id: "RESUME-rewritten-frame",
    breaks: "RESUME",
    file: CPU_SNAPSHOT,
    find: "const rctx = routineContext(cpu, { ...c.initialFrame });",
    replace: "const rctx = routineContext(cpu, frame);",
    tests: [RESUME_TEST],
  },
  {
    id: "RESUME-stack-unwritten",
    breaks: "RESUME",
    file: "model/memory.ts",
    find: "if (this.stackLow[j] < low) this.stack.fill(UNWRITTEN_SLOT, this.stackLow[j], low);",
    replace: "",
    tests: [RESUME_TEST],
  },
  // ---- H1: NMI delivered at a boundary only when not blocked; delivery blocks; ignores IF ----
  {
    id: "H1-nmi-ignores-blocking",
    breaks: "H1",
    file: CPU_DELIVERY,
    find: 'if (w[o + C.nmiPending] === 1 && w[o + C.nmiBlocked] === 0 && !nmiShadowed) return "nmi";',
    replace: 'if (w[o + C.nmiPending] === 1 && !nmiShadowed) return "nmi";',
    tests: [LITMUS],
  },
  {
    id: "H1-delivery-does-not-block",
    breaks: "H1",
    file: CPU_DELIVERY,
    find: "w[o + C.nmiBlocked] = 1;",
    replace: "",
    tests: [LITMUS],
  },
  {
    id: "H1-nmi-gated-by-if",
    breaks: "H1",
    file: CPU_DELIVERY,
    find: 'if (w[o + C.nmiPending] === 1 && w[o + C.nmiBlocked] === 0 && !nmiShadowed) return "nmi";',
    replace:
      'if (w[o + C.nmiPending] === 1 && w[o + C.nmiBlocked] === 0 && !nmiShadowed && w[o + C.if] === 1) return "nmi";',
    tests: [LITMUS],
  },
  {
    id: "H1-nmi-handler-keeps-if",
    breaks: "H1",
    file: CPU_DELIVERY,
    find: "(ctx) => os.nmiHandler(ctx));\n  w[o + C.if] = 0;",
    replace: "(ctx) => os.nmiHandler(ctx));",
    tests: [LITMUS],
  },
  {
    id: "H1-events-taken-mid-fetch",
    breaks: "H1",
    file: CPU_DELIVERY,
    find: "if (w[o + C.atBoundary] !== 1) return null;",
    replace: "if (w[o + C.atBoundary] < 0) return null;",
    tests: [LITMUS],
  },
  {
    id: "H1-waiting-cpu-takes-no-nmi",
    breaks: "H1",
    file: SCHEDULE,
    find: "if (pendingEvent(mem, cpu) !== null) return true;",
    replace: 'if (pendingEvent(mem, cpu) === "mce" || pendingEvent(mem, cpu) === "irq") return true;',
    tests: [LITMUS],
  },
  // ---- H2: one-deep NMI latch ----
  {
    id: "H2-no-latch-while-blocked",
    breaks: "H2",
    file: CPU_DELIVERY,
    find: "mem.cpu[o + C.nmiPending] = 1;",
    replace: "if (mem.cpu[o + C.nmiBlocked] === 0) mem.cpu[o + C.nmiPending] = 1;",
    tests: [LITMUS],
  },
  {
    id: "H2-delivery-keeps-latch",
    breaks: "H2",
    file: CPU_DELIVERY,
    find: "w[o + C.nmiPending] = 0;",
    replace: "",
    tests: [LITMUS],
  },
  // ---- H3: any IRET unblocks NMIs; FRED's ERETS only from the NMI ----
  {
    id: "H3-only-nmi-iret-unblocks",
    breaks: "H3",
    file: CPU_DELIVERY,
    find: "if (!cpu.spec.os.fred || ctx.kind === ContextKind.Nmi) w[o + C.nmiBlocked] = 0;",
    replace: "if (ctx.kind === ContextKind.Nmi) w[o + C.nmiBlocked] = 0;",
    tests: [LITMUS],
  },
  {
    id: "H3-fred-erets-unblocks-from-bp",
    breaks: "H3",
    file: CPU_DELIVERY,
    find: "if (!cpu.spec.os.fred || ctx.kind === ContextKind.Nmi) w[o + C.nmiBlocked] = 0;",
    replace: "w[o + C.nmiBlocked] = 0;",
    tests: [LITMUS],
  },
  {
    id: "H3-sync-core-keeps-blocking",
    breaks: "H3",
    file: CPU_STEPS,
    find: 'if (s.how === "iret-to-self" && !cpu.spec.os.fred && w[o + C.nmiBlocked] === 1) {',
    replace: "if (false) {",
    tests: [LITMUS],
  },
  // ---- H4: serializing instructions ----
  {
    id: "H4-iret-not-serializing",
    breaks: "H4",
    file: CPU_DELIVERY,
    find: "nmiStillLive);\n  // SDM §9.3: IRET is serializing (H4)\n  serialize(cpu, 3);",
    replace: "nmiStillLive);",
    tests: [LITMUS],
  },
  {
    id: "H4-cpuid-step-not-serializing",
    breaks: "H4",
    file: CPU_STEPS,
    find: 'serialize(cpu, s.how === "cpuid" ? 0 : s.how === "serialize" ? 1 : 2);',
    replace: 'if (s.how !== "cpuid") serialize(cpu, s.how === "serialize" ? 1 : 2);',
    tests: [LITMUS],
  },
  {
    id: "H4-real-serializing-instructions-ignored",
    breaks: "H4",
    file: CPU_REAL_CODE,
    find: "if (d.isSerializing) serialize(cpu, 3);",
    replace: "",
    tests: [LITMUS],
  },
  {
    id: "H4-wrmsr-of-mcip-not-serializing",
    breaks: "H4",
    file: CPU_STEPS,
    find: "serialize(cpu, 3); // WRMSR is serializing (H4)",
    replace: "",
    tests: [LITMUS],
  },
  {
    id: "H4-serialize-forgets",
    breaks: "H4",
    file: CPU_DELIVERY,
    find: "cpu.mem.cpu[cpu.base + C.lastSerializeSeq] = cpu.mem.header[H.writeSeq];",
    replace: "",
    tests: [LITMUS],
  },
  // ---- H5: #MC sets MCIP, a second one shuts down; #MC ignores NMI blocking and goes first ----
  {
    id: "H5-no-shutdown-while-mcip",
    breaks: "H5",
    file: CPU_DELIVERY,
    find: "if (w[o + C.mcip] === 1) {",
    replace: "if (false) {",
    tests: [LITMUS],
  },
  {
    id: "H5-mcip-not-set",
    breaks: "H5",
    file: CPU_DELIVERY,
    find: "w[o + C.mcip] = 1;",
    replace: "",
    tests: [LITMUS],
  },
  {
    id: "H5-mcip-not-cleared",
    breaks: "H5",
    file: CPU_STEPS,
    find: "w[o + C.mcip] = 0;",
    replace: "",
    tests: [LITMUS],
  },
  {
    id: "H5-nmi-before-pending-mce",
    breaks: "H5",
    file: CPU_DELIVERY,
    find: 'if (w[o + C.mcePending] === 1) return "mce";',
    replace:
      'if (w[o + C.mcePending] === 1 && !(w[o + C.nmiPending] === 1 && w[o + C.nmiBlocked] === 0)) return "mce";',
    tests: [LITMUS],
  },
  {
    id: "H5-mce-blocked-by-nmi-blocking",
    breaks: "H5",
    file: CPU_DELIVERY,
    find: 'if (w[o + C.mcePending] === 1) return "mce";',
    replace: 'if (w[o + C.mcePending] === 1 && w[o + C.nmiBlocked] === 0) return "mce";',
    tests: [LITMUS],
  },
  {
    id: "H5-waiting-cpu-takes-no-mce",
    breaks: "H5",
    file: SCHEDULE,
    find: "if (pendingEvent(mem, cpu) !== null) return true;",
    replace: 'if (pendingEvent(mem, cpu) === "nmi" || pendingEvent(mem, cpu) === "irq") return true;',
    tests: [LITMUS],
  },
  // ---- H6: int3 is a trap; its gate clears IF ----
  {
    id: "H6-int3-is-a-fault",
    breaks: "H6",
    file: CPU_REAL_CODE,
    find: "deliverBp(cpu, address, { rip: next, fromRealCode: true,",
    replace: "deliverBp(cpu, address, { rip: address, fromRealCode: true,",
    tests: [LITMUS],
  },
  {
    id: "H6-bp-keeps-if",
    breaks: "H6",
    file: CPU_DELIVERY,
    find: "if (cpu.spec.os.bpClearsIf) w[o + C.if] = 0;",
    replace: "",
    tests: [LITMUS],
  },
  // ---- H7: maskable interrupts only with IF=1; interrupt gates clear IF; IRET restores it ----
  {
    id: "H7-irq-ignores-if",
    breaks: "H7",
    file: CPU_DELIVERY,
    find: 'if (w[o + C.irqPending] !== 0 && w[o + C.if] === 1 && w[o + C.interruptShadow] === 0) return "irq";',
    replace: 'if (w[o + C.irqPending] !== 0 && w[o + C.interruptShadow] === 0) return "irq";',
    tests: [LITMUS],
  },
  {
    id: "H7-irq-handler-keeps-if",
    breaks: "H7",
    file: CPU_DELIVERY,
    find: "(ctx) => cpu.spec.os.irqHandler(ctx, vector), vector + 1);\n  w[o + C.if] = 0;",
    replace: "(ctx) => cpu.spec.os.irqHandler(ctx, vector), vector + 1);",
    tests: [LITMUS],
  },
  {
    id: "H7-mce-handler-keeps-if",
    breaks: "H7",
    file: CPU_DELIVERY,
    find: "(ctx) => cpu.spec.os.mceHandler(ctx));\n  w[o + C.if] = 0;",
    replace: "(ctx) => cpu.spec.os.mceHandler(ctx));",
    tests: [LITMUS],
  },
  {
    id: "H7-iret-keeps-if",
    breaks: "H7",
    file: CPU_DELIVERY,
    find: "w[o + C.if] = ctx.savedIf;",
    replace: "",
    tests: [LITMUS],
  },
  {
    id: "H7-waiting-cpu-with-if-0-runnable-for-irq",
    breaks: "H7",
    file: SCHEDULE,
    find: "if (pendingEvent(mem, cpu) !== null) return true;",
    replace: "if (pendingEvent(mem, cpu) !== null || w[o + C.irqPending] !== 0) return true;",
    tests: [LITMUS],
  },
  // ---- H8: NMI/#MC on IST stacks; a frame onto a live one is a clobber; Linux's nested-NMI guard ----
  {
    id: "H8-no-clobber-check",
    breaks: "H8",
    file: CPU_DELIVERY,
    find: "if (ist >= 0 && (w[o + C.istLive] & (1 << ist)) !== 0) {",
    replace: "if (false) {",
    tests: [LITMUS],
  },
  {
    id: "H8-no-nested-nmi-guard",
    breaks: "H8",
    file: CPU_DELIVERY,
    find: "if (nested && os.nestedNmiGuard) {",
    replace: "if (false) {",
    tests: [LITMUS],
  },
  {
    id: "H8-ist-never-live",
    breaks: "H8",
    file: CPU_DELIVERY,
    find: "if (c.ist >= 0) live |= 1 << c.ist;",
    replace: "",
    tests: [LITMUS],
  },
  // ---- H9: stores never tear; fetch reads one byte per step, a scheduling point where code is written ----
  {
    id: "H9-fetch-whole-instruction",
    breaks: "H9",
    file: CPU_FETCH,
    find: "} while (!d.complete && cpu.atomicFetch);",
    replace: "} while (!d.complete);",
    tests: [LITMUS, TORN],
  },
  {
    id: "H9-site-fetch-not-a-scheduling-point",
    breaks: "H9",
    file: CPU_DELIVERY,
    find: "return cpu.spec.siteOracle.writable(address);",
    replace: "return false;",
    tests: [LITMUS, TORN],
  },
  {
    id: "H9-code-writes-anywhere",
    breaks: "H9",
    file: CPU_FETCH,
    find: "if (!oracle.writable(address) || !oracle.writable(address + bytes.length - 1)) {",
    replace: "if (false) {",
    tests: [LITMUS],
  },
  {
    // A buffer serves many runs: what one run wrote must not be the next one's image.
    id: "H9-written-code-kept-between-runs",
    breaks: "H9",
    file: "model/memory.ts",
    find: "this.code.set(image.read(w.address, w.length), this.codeIndex(w.address));",
    replace: "void w;",
    tests: ["test/sparse-code.test.ts", "test/determinism.test.ts"],
  },
  // ---- H10: stale fetch until the CPU serializes; a CPU sees its own stores ----
  {
    id: "H10-never-stale",
    breaks: "H10",
    file: CPU_FETCH,
    find: "if (!cpu.stale || count === 0) return mem.code[i];",
    replace: "if (!cpu.stale || count >= 0) return mem.code[i];",
    tests: [LITMUS],
  },
  {
    id: "H10-own-store-may-be-stale",
    breaks: "H10",
    file: CPU_FETCH,
    find: "if (writer === cpu.id) break;",
    replace: "",
    tests: [LITMUS],
  },
  {
    id: "H10-serializing-does-not-refresh",
    breaks: "H10",
    file: CPU_FETCH,
    find: "if (seq <= since) break;",
    replace: "",
    tests: [LITMUS],
  },
  // ---- H11: invalid encodings and ud2 raise #UD ----
  {
    id: "H11-ud2-executes",
    breaks: "H11",
    file: CPU_FETCH,
    find: "if (d.invalid || d.isUd2) {",
    replace: "if (d.invalid) {",
    tests: [LITMUS],
  },
  {
    id: "H11-invalid-encoding-executes",
    breaks: "H11",
    file: CPU_FETCH,
    find: "if (d.invalid || d.isUd2) {",
    replace: "if (d.isUd2) {",
    tests: [LITMUS],
  },
  // ---- P1 atomic-patch ----
  {
    id: "P1-torn-fetch-not-a-crash",
    breaks: "P1",
    file: CPU_FETCH,
    find: "if (oracle.overlaps(address, length) && !oracle.valid(address, cpu.fetchBuf, length)) {",
    replace: "if (false) {",
    tests: [TORN],
  },
  {
    id: "P1-torn-crash-not-reported",
    breaks: "P1",
    file: INVARIANTS,
    find: 'if (want("P1")) out.push(tornViolation(spec, log, crash));',
    replace: "",
    tests: [TORN],
  },
  {
    id: "P1-int3-at-a-boundary-counted-as-torn",
    breaks: "P1",
    file: "model/machine.ts",
    find: "list.push(keyOf(insn, len), keyOf([0xcc], 1));",
    replace: "list.push(keyOf(insn, len));",
    tests: [TORN],
  },
  // ---- P2 nmi-replayed ----
  {
    id: "P2-any-earlier-service-covers",
    breaks: "P2",
    file: INVARIANTS,
    find: "(lastService.get(r.cpu) ?? -1) < r.index",
    replace: "!lastService.has(r.cpu)",
    tests: [PROPERTIES],
  },
  {
    id: "P2-routine-nmis-need-service",
    breaks: "P2",
    file: INVARIANTS,
    find: "r.kind === Ev.NmiArrive && r.a === EventSource.External &&",
    replace: "r.kind === Ev.NmiArrive &&",
    tests: [PROPERTIES],
  },
  {
    id: "P2-service-on-any-cpu-covers",
    breaks: "P2",
    file: INVARIANTS,
    find: "lastService.set(r.cpu, r.index)",
    replace: "lastService.set(0, r.index)",
    tests: [PROPERTIES],
  },
  // ---- P3 no-ist-clobber ----
  {
    id: "P3-clobber-not-reported",
    breaks: "P3",
    file: INVARIANTS,
    find: "      out.push(v);\n      if (fault && hazard) break;",
    replace: "      if (fault && hazard) break;",
    tests: [LITMUS, PROPERTIES],
  },
  {
    id: "P3-os-iret-not-named",
    breaks: "P3",
    file: INVARIANTS,
    find: 'const cause = r.b === ContextKind.Base ? "os" : CONTEXT_NAMES[r.b];',
    replace: "const cause = CONTEXT_NAMES[r.b];",
    tests: [LITMUS],
  },
  {
    id: "P3-unblocking-iret-forgotten",
    breaks: "P3",
    file: CPU_DELIVERY,
    find: "if (unblocked && nmiStillLive) w[o + C.nmiUnblockedBy] = ctx.kind;",
    replace: "",
    tests: [LITMUS],
  },
  // ---- P4 no-crash ----
  {
    id: "P4-crashes-not-reported",
    breaks: "P4",
    file: INVARIANTS,
    find: '} else if (want("P4")) {',
    replace: '} else if (want("P4") && crash.a < 0) {',
    tests: [LITMUS, PROPERTIES],
  },
  {
    id: "P4-unclaimed-int3-resumes",
    breaks: "P4",
    file: CPU_STEPS,
    find: 'case "unhandledBp":\n      crash(cpu, CrashKind.UnhandledBp, ctx.rctx.frame.rip - 1);\n      return;',
    replace: 'case "unhandledBp":\n      break;',
    tests: [LITMUS, PROPERTIES],
  },
  // ---- P5 completes ----
  {
    id: "P5-deadlock-not-reported",
    breaks: "P5",
    file: INVARIANTS,
    find: 'if (want("P5") && (status === RunStatus.Deadlock || status === RunStatus.StepBound)) {',
    replace: 'if (want("P5") && [RunStatus.StepBound].includes(status)) {',
    tests: [PROPERTIES],
  },
  {
    id: "P5-step-bound-not-reported",
    breaks: "P5",
    file: INVARIANTS,
    find: 'if (want("P5") && (status === RunStatus.Deadlock || status === RunStatus.StepBound)) {',
    replace: 'if (want("P5") && [RunStatus.Deadlock].includes(status)) {',
    tests: [PROPERTIES],
  },
  {
    id: "P5-deadlock-ends-as-finished",
    breaks: "P5",
    file: "workers/turn.ts",
    find: "return end(mem, allDone ? RunStatus.Finished : RunStatus.Deadlock);",
    replace: "return end(mem, RunStatus.Finished);",
    tests: [PROPERTIES],
  },
  {
    id: "P5-waiter-word-not-named",
    breaks: "P5",
    file: SCHEDULE,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the source's template literal, as text
    find: "let what = `${wordName(mem.cpu[o + C.waitWord0])}",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the mutant's template literal, as text
    replace: "let what = `word#${mem.cpu[o + C.waitWord0]}",
    tests: [PROPERTIES],
  },
  // ---- P6 patched ----
  {
    id: "P6-old-body-not-reported",
    breaks: "P6",
    file: INVARIANTS,
    find: "if (!reached) {",
    replace: "if (!reached && site.payload === '') {",
    tests: [PROPERTIES],
  },
  {
    id: "P6-not-patched-not-reported",
    breaks: "P6",
    file: INVARIANTS,
    find: "if (now.some((b, i) => b !== site.newBytes[i])) {",
    replace: "if (now.length < 0) {",
    tests: [PROPERTIES],
  },
  {
    id: "P6-payload-run-outside-the-probe-counts",
    breaks: "P6",
    file: INVARIANTS,
    find: "probing &&\n          r.kind === Ev.Exec &&",
    replace: "r.kind === Ev.Exec &&",
    tests: [PROPERTIES],
  },
  // ---- Real code: the stack in the buffer (SDM Vol. 2 PUSH, POP, CALL, RET) ----
  {
    id: "STACK-push-stores-nothing",
    breaks: "STACK",
    file: CPU_REAL_CODE,
    find: "return pushValue(cpu, value);",
    replace: "return true;",
    tests: [REAL],
  },
  {
    id: "STACK-call-pushes-no-return-address",
    breaks: "STACK",
    file: CPU_REAL_CODE,
    find: "if (!pushValue(cpu, next)) return;\n      real.rip = address + d.relTarget;",
    replace: "real.rip = address + d.relTarget;",
    tests: [REAL],
  },
  {
    id: "STACK-ret-to-anything",
    breaks: "STACK",
    file: CPU_REAL_CODE,
    find: "if (!inImage(cpu, value)) {\n    crash(cpu, CrashKind.BadReturn, address, value, slotAddress);",
    replace: "if (value < -1) {\n    crash(cpu, CrashKind.BadReturn, address, value, slotAddress);",
    tests: [REAL],
  },
  // ---- Event frames (SDM Vol. 3A §6.14.2) ----
  {
    id: "FRAME-ist-ignored",
    breaks: "FRAME",
    file: CPU_DELIVERY,
    find: "w[o + C.rsp] = ist > 0 ? stackTop(cpu.id, ist) : interruptedRsp & ~15;",
    replace: "w[o + C.rsp] = interruptedRsp & ~15;",
    tests: [REAL],
  },
  // ---- IRETQ in real code (SDM Vol. 2 IRET, §6.7.1, §9.3) ----
  {
    id: "IRETQ-real-keeps-nmis-blocked",
    breaks: "IRETQ",
    file: CPU_REAL_CODE,
    find: "if (!cpu.spec.os.fred) w[o + C.nmiBlocked] = 0;\n  const unblocked",
    replace: "const unblocked",
    tests: [REAL],
  },
  {
    id: "IRETQ-real-not-serializing",
    breaks: "IRETQ",
    file: CPU_REAL_CODE,
    find: "  // SDM §9.3: IRET is serializing (H4)\n  serialize(cpu, 3);\n}\n\n/** A stack top",
    replace: "}\n\n/** A stack top",
    tests: [REAL],
  },
  {
    id: "IRETQ-real-is-a-ret",
    breaks: "IRETQ",
    file: CPU_REAL_CODE,
    find: 'if (d.stack.k === "iret") iretInRealCode(cpu, ctx, real, address);',
    replace: 'if (d.stack.k === "iret") ret(cpu, ctx, real, address, 0);',
    tests: [REAL],
  },
  // ---- IF in real code (SDM Vol. 2 CLI, STI, POPF) ----
  {
    id: "IF-real-cli-ignored",
    breaks: "IF",
    file: CPU_REAL_CODE,
    find: 'case "cli":\n      setIf(cpu, 0);',
    replace: 'case "cli":\n      setIf(cpu, 1);',
    tests: [REAL],
  },
  {
    id: "IF-popf-keeps-if",
    breaks: "IF",
    file: CPU_REAL_CODE,
    find: 'if (e.into === "flags") setIf(cpu, (value >> 9) & 1);',
    replace: "",
    tests: [REAL],
  },
  // ---- The STI shadow (SDM Vol. 2 STI) ----
  {
    id: "STI-no-interrupt-shadow",
    breaks: "STI",
    file: CPU_STEPS,
    find: "w[o + C.interruptShadow] = 1;\n      mem.logEvent(cpu.id, Ev.Sti);",
    replace: "mem.logEvent(cpu.id, Ev.Sti);",
    tests: [LITMUS],
  },
  {
    id: "STI-nmi-shadow-option-ignored",
    breaks: "STI",
    file: CPU_DELIVERY,
    find: "const nmiShadowed = w[o + C.interruptShadow] === 1 && mem.header[H.stiShadow] === 1;",
    replace: "const nmiShadowed = false;",
    tests: [REAL],
  },
  // ---- Indirect branches through function-pointer data symbols ----
  {
    id: "INDIRECT-reads-the-initial-pointer",
    breaks: "INDIRECT",
    file: CPU_REAL_CODE,
    find: "const target = Atomics.load(cpu.mem.data, p.word);",
    replace: "const target = cpu.spec.words.initial[p.word];",
    tests: [REAL],
  },
  {
    id: "INDIRECT-call-pushes-nothing",
    breaks: "INDIRECT",
    file: CPU_REAL_CODE,
    find: "if (p.call && !pushValue(cpu, p.next)) return;",
    replace: "",
    tests: [REAL],
  },
  // ---- Machine checks broadcast without LMCE (SDM Vol. 3B §17) ----
  {
    id: "MCE-BROADCAST-local-only",
    breaks: "MCE-BROADCAST",
    file: CPU_DELIVERY,
    find: "if (c !== cpu && !broadcast) continue;",
    replace: "if (c !== cpu) continue;",
    tests: [REAL],
  },
  // ---- OS entry code ----
  {
    id: "XEN-INT3-unclaimed-is-fatal",
    breaks: "XEN-INT3",
    file: XEN_OS,
    find: "unclaimedInt3Resumes: true,",
    replace: "unclaimedInt3Resumes: false,",
    tests: [LITMUS],
  },
  {
    id: "XEN-BP-STI-irqs-stay-off",
    breaks: "XEN-BP-STI",
    file: XEN_OS,
    find: "exceptionEntryEnablesIrqs: true,",
    replace: "exceptionEntryEnablesIrqs: false,",
    tests: [LITMUS],
  },
  {
    id: "MCE-BARRIER-never-waits",
    breaks: "MCE-BARRIER",
    file: COMMON_OS,
    find: "function* mceBarrierEnter(ctx: RoutineContext, w: MceWords, wait: boolean): Routine {\n  if (!wait) return;",
    replace:
      "function* mceBarrierEnter(ctx: RoutineContext, w: MceWords, wait: boolean): Routine {\n  if (wait || !wait) return;",
    tests: [MCE_BARRIER],
  },
  // ---- Linux's batched text poking ----
  {
    id: "TEXT-POKE-LOOKUP-first-entry-only",
    breaks: "TEXT-POKE-LOOKUP",
    file: TEXT_POKE,
    find: "if (batch.length === 1) return batch[0].address === ip ? batch[0] : undefined;",
    replace: "if (batch.length >= 1) return batch[0].address === ip ? batch[0] : undefined;",
    tests: [MULTI_SITE_LINUX],
  },
  {
    id: "TEXT-POKE-LOOKUP-last-entry-only",
    breaks: "TEXT-POKE-LOOKUP",
    file: TEXT_POKE,
    find: "if (batch.length === 1) return batch[0].address === ip ? batch[0] : undefined;",
    replace:
      "if (batch.length >= 1) return batch[batch.length - 1].address === ip ? batch[batch.length - 1] : undefined;",
    tests: [MULTI_SITE_LINUX],
  },
  {
    id: "TEXT-POKE-LOOKUP-search-turns-the-wrong-way",
    breaks: "TEXT-POKE-LOOKUP",
    file: TEXT_POKE,
    find: "    if (ip < at) hi = mid;\n    else lo = mid + 1;",
    replace: "    if (ip > at) hi = mid;\n    else lo = mid + 1;",
    tests: [MULTI_SITE_LINUX],
  },
  {
    id: "TEXT-POKE-LOOKUP-first-batch-only",
    breaks: "TEXT-POKE-LOOKUP",
    file: TEXT_POKE,
    find: "const batch = w.vector === undefined ? w.batches[0] : w.batches[yield load(w.vector)];",
    replace: "const batch = w.batches[0];",
    tests: [MULTI_SITE_LINUX],
  },
];
