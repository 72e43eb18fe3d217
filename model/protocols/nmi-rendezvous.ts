// Xen's NMI-context patching with other CPUs involved, as its microcode loading does it
// (xen/arch/x86/cpu/microcode/core.c): first stop_machine_run(), so every CPU is at a safe point with
// IRQs off (here Xen's livepatch rendezvous, model/protocols/xen-rendezvous.ts); then the control
// thread installs microcode_nmi_callback and sets LOADING_CALLIN, and every CPU sends itself an NMI
// (self_nmi()) and calls in from its NMI handler. While every CPU is in NMI context, hardware NMI
// blocking holds further NMIs in the latch (H2) until its IRET. The master writes the jump inside its
// own NMI handler, as Xen's boot-time alternatives do (alternative.c nmi_apply_alternatives: "the
// active NMI-shadow will defer any further NMIs"), then sets LOADING_EXIT. The callback returns 0, so
// do_nmi goes on with its real work and an external NMI coalesced with the self-NMI is serviced.
import {
  atomicAdd,
  cpuid,
  eq,
  ge,
  load,
  type Routine,
  sendNmi,
  store,
  type WordTable,
  waitUntil,
} from "../routine.js";
import type { Protocol, RoutineContext } from "../types.js";
import { keepWords, protocolWords } from "./words.js";
import {
  allocRendezvous,
  applyPayload,
  masterAfterPatch,
  masterEnter,
  type RendezvousWords,
  release,
  slave,
} from "./xen-rendezvous.js";

/** The value of nmi_callback while microcode_nmi_callback is installed. */
const RENDEZVOUS_CALLBACK = 3;

/** microcode/core.c loading_state_t (LOADING_PREPARE is 0). */
const LOADING_CALLIN = 1;
const LOADING_EXIT = 2;

interface Words extends RendezvousWords {
  /** loading_state */
  state: number;
  /** cpu_callin_map, as a count */
  callin: number;
}

/** primary_thread_fn() on a CPU at the stop-machine safe point: wait for CALLIN, self-NMI, wait for EXIT. */
function* callIn(w: Words): Routine {
  // wait_for_state(LOADING_CALLIN), which gives up once the state is LOADING_EXIT
  yield waitUntil(eq(w.state, LOADING_CALLIN), eq(w.state, LOADING_EXIT));
  if ((yield load(w.state)) !== LOADING_CALLIN) return;
  yield sendNmi("self"); // self_nmi()
  yield waitUntil(eq(w.state, LOADING_EXIT)); // "NMIs may not be delivered synchronously"
}

export const nmiRendezvous: Protocol = {
  name: "nmi-rendezvous",
  summary:
    "stop-machine safe point first, then every CPU self-NMIs into the rendezvous; the master patches inside its NMI handler",
  origin:
    "Xen microcode/core.c (stop_machine_run, microcode_nmi_callback, self_nmi), alternative.c nmi_apply_alternatives",
  os: "xen",
  expected: {
    "nmi-path": { violated: [] },
    // P1: a broadcast #MC stops the master between two byte writes and the other CPUs' #MC handlers
    // run the half-written site. P5: an NMI taken inside an #MC handler enters the rendezvous and
    // waits there for the master, while the master's own #MC handler waits for that CPU in
    // mce_trap_bar (or for mce_logout_lock, which it holds).
    "mce-path": { violated: ["P1", "P5"], hazards: ["P3", "P4"] },
    normal: { violated: [] },
    "entry-pad": { violated: [] },
  },
  setup(spec, table: WordTable) {
    keepWords(spec, {
      ...allocRendezvous(table),
      state: table.alloc("loading_state"),
      callin: table.alloc("cpu_callin_map"),
    });
    return undefined;
  },
  *master(ctx: RoutineContext) {
    const w = protocolWords<Words>(ctx.spec);
    yield* masterEnter(ctx, w); // stop_machine_run(): every CPU at its safe point, IRQs off
    // control_thread_fn(): set_nmi_callback(microcode_nmi_callback); set_state(LOADING_CALLIN)
    yield store(ctx.spec.common.nmiCallback, RENDEZVOUS_CALLBACK);
    yield store(w.state, LOADING_CALLIN);
    yield sendNmi("self"); // the writes are made in NMI context, as nmi_apply_alternatives does
    yield waitUntil(eq(w.state, LOADING_EXIT));
    yield store(ctx.spec.common.nmiCallback, 0); // set_nmi_callback(saved_nmi_callback)
    yield* masterAfterPatch();
    yield* release(ctx, w);
  },
  *poll(ctx: RoutineContext) {
    const w = protocolWords<Words>(ctx.spec);
    yield* slave(ctx, w, { atSafePoint: () => callIn(w) });
  },
  *nmiCallback(ctx: RoutineContext): Routine<number> {
    const w = protocolWords<Words>(ctx.spec);
    // microcode_nmi_callback(): "System-generated NMI, leave to main handler"
    if ((yield load(w.state)) !== LOADING_CALLIN) return 0;
    yield atomicAdd(w.callin, 1); // cpumask_set_cpu(cpu, &cpu_callin_map)
    if (ctx.cpu === 0) {
      yield waitUntil(ge(w.callin, ctx.cpus)); // wait_for_condition(wait_cpu_callin, num_online_cpus())
      yield* applyPayload(ctx); // arch_livepatch_apply() per function: memcpy
      yield cpuid(); // arch_livepatch_post_action()
      yield store(w.state, LOADING_EXIT); // set_state(LOADING_EXIT)
    } else {
      yield waitUntil(eq(w.state, LOADING_EXIT)); // secondary_nmi_work(): wait_for_state(LOADING_EXIT)
      yield cpuid(); // arch_livepatch_post_action() before running the patched code
    }
    return 0; // do_nmi continues with the real work
  },
};
