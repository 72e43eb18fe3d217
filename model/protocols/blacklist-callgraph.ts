// Seed option 1, computed: refuse any function reachable through direct calls and jumps from the NMI
// and #MC entry points, found by decoding the image with iced-x86 (indirect sites of unknown target
// followed to every address-taken function); the refusal names the call path.
import type { Protocol } from "../types.js";
import { siteInFunction } from "./blacklist-annotated.js";
import { unmaskedPatch } from "./no-mask.js";
import { keepWords, protocolWords } from "./words.js";
import { allocRendezvous, type RendezvousWords, slave } from "./xen-rendezvous.js";

export const blacklistCallgraph: Protocol = {
  name: "blacklist-callgraph",
  summary: "refuse functions reachable from the NMI/#MC entry points (call graph by decoding)",
  origin: "seed (a) 1), 'MCE ... touches normal event channel code'",
  os: "xen",
  expected: {
    "nmi-path": { refused: true },
    "mce-path": { refused: true },
    normal: { violated: [] },
    "entry-pad": { refused: true },
  },
  setup(spec, table) {
    keepWords(spec, allocRendezvous(table));
    // The call graph reaches functions: a site at `fn+4` is judged by the function that contains it.
    // A payload is refused when any of its sites is reachable. An indirect call or jump whose target
    // the image does not give is followed to every address-taken function: a blacklist that ignored it
    // would let a handler reach a patched function (Xen's do_machine_check calls `*mce_callbacks`).
    const graph = spec.image.callGraphOverApproximated(spec.scenario.eventRoots);
    for (const site of spec.sites) {
      const path = graph.paths.get(site.function);
      if (path)
        return { reason: `${siteInFunction(site)} is reachable from an event handler: ${path.join(" -> ")}` };
    }
    return undefined;
  },
  *master(ctx) {
    yield* unmaskedPatch(ctx, protocolWords<RendezvousWords>(ctx.spec));
  },
  *poll(ctx) {
    yield* slave(ctx, protocolWords<RendezvousWords>(ctx.spec));
  },
};
