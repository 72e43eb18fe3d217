// Baseline: Xen's rendezvous and byte-by-byte memcpy of the jump, with no NMI mask at all.
import type { Routine } from "../routine.js";
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

/** Patches like xen-4.8 without the mask; reused by the blacklist protocols once they allow a patch. */
export function* unmaskedPatch(ctx: RoutineContext, w: RendezvousWords): Routine {
  yield* masterEnter(ctx, w);
  yield* applyPayload(ctx);
  yield* masterAfterPatch();
  yield* release(ctx, w);
}

export const noMask: Protocol = {
  name: "no-mask",
  summary: "Xen's rendezvous and memcpy with no NMI mask",
  origin: "baseline",
  os: "xen",
  expected: {
    "nmi-path": { violated: ["P1"] },
    "mce-path": { violated: ["P1"], hazards: ["P3", "P4"] },
    normal: { violated: [] },
    "entry-pad": { violated: ["P1"] },
  },
  setup(spec, table) {
    keepWords(spec, allocRendezvous(table));
    return undefined;
  },
  *master(ctx) {
    yield* unmaskedPatch(ctx, protocolWords<RendezvousWords>(ctx.spec));
  },
  *poll(ctx) {
    yield* slave(ctx, protocolWords<RendezvousWords>(ctx.spec));
  },
};
