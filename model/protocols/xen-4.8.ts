// Xen 4.8 livepatch: stop-machine rendezvous; NMIs "masked" by installing mask_nmi_callback, which
// returns 1 so do_nmi() returns at once: the NMI is swallowed and nothing replays it ("TODO: Handle
// missing NMI/MCE", xen/arch/x86/livepatch.c). The 5-byte jump is memcpy'd byte by byte; #MC is not
// masked. (xen/common/livepatch.c check_for_livepatch_work, xen/arch/x86/livepatch.c arch_livepatch_apply)
import { Mark, mark, type Routine, store } from "../routine.js";
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

/** The value of nmi_callback while mask_nmi_callback is installed. */
export const MASK_CALLBACK = 1;

export const xen48: Protocol = {
  name: "xen-4.8",
  summary: "Xen 4.8: rendezvous, NMIs swallowed by mask_nmi_callback, jmp memcpy'd byte by byte",
  origin: "xen/common/livepatch.c, xen/arch/x86/livepatch.c mask_nmi_callback",
  os: "xen",
  expected: {
    "nmi-path": { violated: ["P2"] },
    // mce-path: brackets in the matrix, `hazards` here: a second #MC (shutdown while MCIP is set) and
    // the NMI an #MC handler's IRET lets onto the live NMI frame are the hardware's and Xen entry's.
    "mce-path": { violated: ["P1", "P2"], hazards: ["P3", "P4"] },
    normal: { violated: ["P2"] },
    "entry-pad": { violated: ["P2"] },
  },
  setup(spec, table) {
    keepWords(spec, allocRendezvous(table));
    return undefined;
  },
  *master(ctx: RoutineContext): Routine {
    const w = protocolWords<RendezvousWords>(ctx.spec);
    yield store(ctx.spec.common.nmiCallback, MASK_CALLBACK); // arch_livepatch_mask()
    yield* masterEnter(ctx, w);
    yield* applyPayload(ctx); // arch_livepatch_apply() per function: memcpy(old_ptr, insn, len)
    yield* masterAfterPatch();
    yield store(ctx.spec.common.nmiCallback, 0); // arch_livepatch_unmask()
    yield* release(ctx, w);
  },
  *poll(ctx: RoutineContext): Routine {
    yield* slave(ctx, protocolWords<RendezvousWords>(ctx.spec));
  },
  *nmiCallback(): Routine<number> {
    yield mark(Mark.NmiSwallowed); // mask_nmi_callback(): return 1
    return 1;
  },
};
