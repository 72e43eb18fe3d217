// The NMI rendezvous without the stop-machine safe point first: the master's NMI handler NMI-IPIs
// every other CPU wherever it is, also between two old prologue instructions of the patched
// function. Every CPU then waits in NMI context, so hardware NMI blocking holds further NMIs in the
// latch (H2) until each CPU's IRET; the master patches inside its own NMI handler.
// After the rendezvous the callback lets do_nmi run its real work, which covers any external NMI that
// was coalesced with the rendezvous NMI. (Xen 4.11+ alternative.c nmi_apply_alternatives, self_nmi;
// microcode_nmi_callback.)
import {
  atomicAdd,
  cpuid,
  ge,
  load,
  ne,
  type Routine,
  sendNmi,
  store,
  type WordTable,
  waitUntil,
} from "../routine.js";
import type { Protocol } from "../types.js";
import { keepWords, protocolWords } from "./words.js";
import { applyPayload } from "./xen-rendezvous.js";

/** The value of nmi_callback while the rendezvous callback is installed. */
const RENDEZVOUS_CALLBACK = 2;

interface Words {
  active: number;
  arrived: number;
  patched: number;
  left: number;
  joined: number[];
}

export const nmiRendezvousAnywhere: Protocol = {
  name: "nmi-rendezvous-anywhere",
  summary:
    "all CPUs rendezvous in NMI context (NMI IPIs wherever they are, no safe point first); the master patches inside its NMI handler",
  origin: "Xen 4.11+ nmi_apply_alternatives, microcode_nmi_callback",
  os: "xen",
  expected: {
    "nmi-path": { violated: [] },
    // P5 as nmi-rendezvous's (see there).
    "mce-path": { violated: ["P1", "P5"], hazards: ["P3", "P4"] },
    // P1: the rendezvous NMI interrupts CPUs at any instruction boundary, also between two old
    // prologue instructions of the patched function, where they resume after the patch.
    normal: { violated: ["P1"] },
    "entry-pad": { violated: [] },
  },
  setup(spec, table: WordTable) {
    keepWords(spec, {
      active: table.alloc("nmi_rendezvous.active"),
      arrived: table.alloc("nmi_rendezvous.arrived"),
      patched: table.alloc("nmi_rendezvous.patched"),
      left: table.alloc("nmi_rendezvous.left"),
      joined: table.allocPerCpu("nmi_rendezvous.joined", spec.config.hardware.cpus),
    });
    return undefined;
  },
  *master(ctx) {
    const w = protocolWords<Words>(ctx.spec);
    yield store(w.active, 1);
    yield store(ctx.spec.common.nmiCallback, RENDEZVOUS_CALLBACK);
    yield sendNmi("self"); // self_nmi(): the master's callback brings the others in
    yield waitUntil(ge(w.left, ctx.cpus));
    yield store(ctx.spec.common.nmiCallback, 0);
    yield store(w.active, 0);
  },
  *nmiCallback(ctx): Routine<number> {
    const w = protocolWords<Words>(ctx.spec);
    // Not (or no longer) a rendezvous NMI for this CPU: let do_nmi do its real work.
    if ((yield load(w.active)) === 0) return 0;
    if ((yield load(w.joined[ctx.cpu])) !== 0) return 0;
    yield store(w.joined[ctx.cpu], 1);
    yield atomicAdd(w.arrived, 1);
    if (ctx.cpu === 0) {
      // Sent from inside the master's NMI, whichever NMI got it here (its self-NMI or an external one
      // that arrived first): NMI IPIs bring every other CPU into the rendezvous.
      yield sendNmi("others");
      yield waitUntil(ge(w.arrived, ctx.cpus));
      yield* applyPayload(ctx);
      yield cpuid();
      yield store(w.patched, 1);
    } else {
      yield waitUntil(ne(w.patched, 0));
      yield cpuid();
    }
    yield atomicAdd(w.left, 1);
    return 0; // do_nmi continues with the real work, covering a coalesced external NMI
  },
};
