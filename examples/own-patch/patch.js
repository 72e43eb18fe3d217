// The patch under check, as a module that both the vitest file and the command read
// (`npx livepatch-check --module patch.js ...`): a protocol derived from a built-in one, and two
// scenarios whose code is the functions of xen-syms.elf that they reach.
//
// xen-syms.elf is livepatch-check's ELF fixture (scripts/make-elf-fixture.ts): a small executable
// laid out like Xen's text at 0xffff82d040200000, whose functions begin with ENDBR64 where their
// address is taken, so patches go at `fn+4`, after it.
import {
  cpuid,
  defineProtocol,
  defineScenario,
  finishSite,
  int3Restartable,
  masterAfterPatch,
  masterEnter,
  protocolWords,
  release,
  store,
  writeCode,
} from "livepatch-check";

/**
 * int3-restartable, with the patcher serializing itself (CPUID) once the jump is complete and before
 * it disarms the handover. It keeps the built-in protocol's setup, poll and #BP handler, and reads
 * the handover words those allocate by name.
 */
export const serialized = defineProtocol({
  ...int3Restartable,
  name: "int3-restartable-serialized",
  summary: "int3-restartable, with a CPUID after the opcode write",
  origin: "own-patch example",
  expected: {
    "mce-handler-call": { violated: [] },
    "nmi-hook-call": { violated: ["P1", "P3"] },
  },
  *master(ctx) {
    /** @type {import("livepatch-check").HandoverWords} */
    const w = protocolWords(ctx.spec);
    const site = ctx.spec.sites[0];
    yield* masterEnter(ctx, w);
    yield store(w.armed, 1);
    yield writeCode(site.address, [0xcc]);
    yield* finishSite(ctx);
    yield cpuid();
    yield store(w.armed, 0);
    yield* masterAfterPatch();
    yield* release(ctx, w);
  },
});

const elf = new URL("./xen-syms.elf", import.meta.url);

/** The new body of mce_handler: the old call, and one more. */
const payload = [
  { name: "livepatch.mce_handler", code: ["db f3 0f 1e fa", "call send_event", "call helper2", "ret"] },
];

/**
 * The call in mce_handler (after its ENDBR64) is replaced by a jump to the new body. Every CPU runs
 * mce_handler, which calls send_event; the NMI handler runs hook_b, which does not reach it.
 */
export const mceHandlerCall = defineScenario({
  name: "mce-handler-call",
  summary: "mce_handler+4 (after ENDBR64), reached from normal context only",
  image: { elf, payload },
  patch: { target: "mce_handler+4", payload: "livepatch.mce_handler" },
  workload: "mce_handler",
  nmiService: "hook_b",
});

/** The same patch of hook_b, which the NMI handler runs: a blacklist must refuse it. */
export const nmiHookCall = defineScenario({
  name: "nmi-hook-call",
  summary: "hook_b+4 (after ENDBR64), which the NMI handler runs",
  image: {
    elf,
    payload: [
      { name: "livepatch.hook_b", code: ["db f3 0f 1e fa", "call helper2", "call send_event", "ret"] },
    ],
  },
  patch: { target: "hook_b+4", payload: "livepatch.hook_b" },
  workload: "mce_handler",
  nmiService: "hook_b",
});

export const protocols = [serialized];
export const scenarios = [mceHandlerCall, nmiHookCall];
