// xen-4.8 whose mask callback records a missed NMI per CPU instead of dropping it; after unmasking,
// each CPU that missed one sends itself an NMI (APIC self-NMI), so the real handler runs.
import { Mark, mark, type Routine, sendNmi, store, type WordTable, xchg } from "../routine.js";
import type { Protocol, RoutineContext } from "../types.js";
import { keepWords, protocolWords } from "./words.js";
import { MASK_CALLBACK } from "./xen-4.8.js";
import {
  allocRendezvous,
  applyPayload,
  masterAfterPatch,
  masterEnter,
  type RendezvousWords,
  release,
  slave,
} from "./xen-rendezvous.js";

interface Words extends RendezvousWords {
  missed: number[];
}

function* replayMine(ctx: RoutineContext, w: Words): Routine {
  if ((yield xchg(w.missed[ctx.cpu], 0)) !== 0) yield sendNmi("self");
}

export const nmiReplay: Protocol = {
  name: "nmi-replay",
  summary: "xen-4.8, but the mask callback records missed NMIs and each CPU self-NMIs after unmasking",
  origin: "the obvious answer to seed (a)",
  os: "xen",
  expected: {
    "nmi-path": { violated: [] },
    "mce-path": { violated: ["P1"], hazards: ["P3", "P4"] },
    normal: { violated: [] },
    "entry-pad": { violated: [] },
  },
  setup(spec, table: WordTable) {
    keepWords(spec, {
      ...allocRendezvous(table),
      missed: table.allocPerCpu("nmi_missed", spec.config.hardware.cpus),
    });
    return undefined;
  },
  *master(ctx) {
    const w = protocolWords<Words>(ctx.spec);
    yield store(ctx.spec.common.nmiCallback, MASK_CALLBACK);
    yield* masterEnter(ctx, w);
    yield* applyPayload(ctx);
    yield* masterAfterPatch();
    yield store(ctx.spec.common.nmiCallback, 0);
    yield* release(ctx, w);
    yield* replayMine(ctx, w);
  },
  *poll(ctx) {
    const w = protocolWords<Words>(ctx.spec);
    yield* slave(ctx, w, { afterRelease: () => replayMine(ctx, w) });
  },
  *nmiCallback(ctx): Routine<number> {
    const w = protocolWords<Words>(ctx.spec);
    yield store(w.missed[ctx.cpu], 1);
    yield mark(Mark.NmiRecorded);
    return 1;
  },
};
