// Linux's int3-based text poking (arch/x86/kernel/alternative.c smp_text_poke_batch_finish, formerly
// text_poke_bp_batch): no stop-machine. Per-CPU refcounts are set; int3 is written at byte 0; every
// CPU syncs (on_each_cpu(do_sync_core, wait=1)); the tail bytes are written; sync; byte 0 is written;
// sync; then the refcounts are dropped and waited for. The #BP handler (smp_text_poke_int3_handler)
// takes a reference, matches the site and emulates the new instruction (a jump to the payload).
import {
  add,
  eq,
  ge,
  load,
  memcpyCode,
  type Routine,
  sendIpi,
  store,
  syncCore,
  type WordTable,
  waitUntil,
  writeCode,
} from "../routine.js";
import type { Protocol, RoutineContext } from "../types.js";

/** The fixed vector of the call-function IPI that runs do_sync_core on each CPU. */
const VECTOR_SYNC = 2;

interface Words {
  refs: number[];
  syncRound: number;
  syncAcks: number;
}
const words = new WeakMap<object, Words>();

/** smp_text_poke_sync_each_cpu(): sync_core() here, IPI the others and wait until each has run it. */
function* syncEachCpu(ctx: RoutineContext, w: Words): Routine {
  const round = (yield add(w.syncRound, 1)) + 1;
  yield sendIpi("others", VECTOR_SYNC);
  yield syncCore();
  yield waitUntil(ge(w.syncAcks, round * (ctx.cpus - 1)));
}

export const linuxTextPoke: Protocol = {
  name: "linux-text-poke",
  summary: "Linux text_poke_bp: int3, sync, tail, sync, first byte, sync; #BP emulates the new instruction",
  origin: "Linux arch/x86/kernel/alternative.c smp_text_poke_batch_finish, smp_text_poke_int3_handler",
  os: "linux",
  expected: {
    "nmi-path": { violated: [] },
    // P1 (SPEC §10 says holds): evtchn_send is normal event-channel code, also called from normal
    // context, where a CPU between two old prologue instructions fetches the new tail, as on normal.
    "mce-path": { violated: ["P1"] },
    normal: { violated: ["P1"] },
    "entry-pad": { violated: [] },
  },
  setup(spec, table: WordTable) {
    words.set(spec, {
      refs: table.allocPerCpu("text_poke_array_refs", spec.config.hardware.cpus),
      syncRound: table.alloc("text_poke_sync.round"),
      syncAcks: table.alloc("text_poke_sync.acks"),
    });
    return undefined;
  },
  *master(ctx) {
    const w = words.get(ctx.spec) as Words;
    const site = ctx.spec.sites[0];
    for (const r of w.refs) yield store(r, 1);
    yield writeCode(site.address, [0xcc]);
    yield* syncEachCpu(ctx, w);
    yield* memcpyCode(site.address + 1, site.newBytes.slice(1));
    yield* syncEachCpu(ctx, w);
    yield writeCode(site.address, [site.newBytes[0]]);
    yield* syncEachCpu(ctx, w);
    for (const r of w.refs) yield add(r, -1);
    for (const r of w.refs) yield waitUntil(eq(r, 0));
  },
  *bpHandler(ctx): Routine<number> {
    const w = words.get(ctx.spec) as Words;
    const site = ctx.spec.sites[0];
    if (!ctx.frame.fromRealCode) return 0;
    // try_get_text_poke_array(): atomic_inc_not_zero on this CPU's refcount
    if ((yield load(w.refs[ctx.cpu])) === 0) return 0;
    yield add(w.refs[ctx.cpu], 1);
    let claimed = 0;
    if (ctx.frame.rip - 1 === site.address) {
      // int3_emulate_jmp(): continue at the new instruction's target
      ctx.frame.rip = ctx.spec.image.symbol(site.payload).address;
      claimed = 1;
    }
    yield add(w.refs[ctx.cpu], -1); // put_text_poke_array()
    return claimed;
  },
  *ipiHandler(ctx, vector) {
    if (vector !== VECTOR_SYNC) return;
    const w = words.get(ctx.spec) as Words;
    yield syncCore(); // do_sync_core()
    yield add(w.syncAcks, 1);
  },
};
