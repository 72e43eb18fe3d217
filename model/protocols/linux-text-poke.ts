// Linux's int3-based text poking (arch/x86/kernel/alternative.c smp_text_poke_batch_finish, formerly
// text_poke_bp_batch): no stop-machine. Per-CPU refcounts are set; int3 is written at byte 0; every
// CPU syncs (on_each_cpu(do_sync_core, wait=1)); the tail bytes are written; sync; byte 0 is written;
// sync; then the refcounts are dropped and waited for. The #BP handler (smp_text_poke_int3_handler)
// takes a reference, matches the site and emulates the new instruction (a jump to the payload).
// Its callers (jump labels, static calls, alternatives, ftrace) replace one instruction with one of
// the same length, so a site that is not exactly one old instruction is refused.
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
import type { MachineSpec, Protocol, Refusal, RoutineContext } from "../types.js";
import { disassemble } from "../x86.js";
import { oneSite } from "./sites.js";
import { keepWords, protocolWords } from "./words.js";

/** The fixed vector of the call-function IPI that runs do_sync_core on each CPU. */
const VECTOR_SYNC = 2;

export interface TextPokeWords {
  refs: number[];
  syncRound: number;
  syncAcks: number;
}

/** text_poke_array_refs and the sync IPI's counters. */
export function allocTextPoke(spec: MachineSpec, table: WordTable): TextPokeWords {
  return {
    refs: table.allocPerCpu("text_poke_array_refs", spec.config.hardware.cpus),
    syncRound: table.alloc("text_poke_sync.round"),
    syncAcks: table.alloc("text_poke_sync.acks"),
  };
}

/** The old instructions the site's new bytes cover: [address, length, text] of each. */
export function coveredInstructions(spec: MachineSpec): Array<[number, number, string]> {
  const site = spec.sites[0];
  const { image } = spec;
  const fn = image.functionAt(site.address);
  if (!fn) return [];
  const end = site.address + site.newBytes.length;
  const starts = image.boundaries(fn.name);
  const out: Array<[number, number, string]> = [];
  starts.forEach((a, i) => {
    const next = starts[i + 1] ?? fn.address + fn.size;
    if (a >= site.address && a < end) out.push([a, next - a, disassemble(image.read(a, next - a), a)]);
  });
  return out;
}

/** Refuses a site that is not exactly one old instruction as long as the new one, saying why. */
export function singleInstructionSite(spec: MachineSpec, why: string): Refusal | undefined {
  const site = spec.sites[0];
  const covered = coveredInstructions(spec);
  if (covered.length === 1 && covered[0][1] === site.newBytes.length) return undefined;
  const bytes = (n: number) => `${n} byte${n === 1 ? "" : "s"}`;
  const list = covered.map(([, len, text]) => `${text}, ${bytes(len)}`).join("; ");
  return {
    reason: `${site.target}: the ${bytes(site.newBytes.length)} of the jump would replace ${covered.length} old instruction${covered.length === 1 ? "" : "s"} (${list}); ${why}`,
  };
}

/** smp_text_poke_sync_each_cpu(): sync_core() here, IPI the others and wait until each has run it. */
export function* syncEachCpu(ctx: RoutineContext, w: TextPokeWords): Routine {
  const round = (yield add(w.syncRound, 1)) + 1;
  yield sendIpi("others", VECTOR_SYNC);
  yield syncCore();
  yield waitUntil(ge(w.syncAcks, round * (ctx.cpus - 1)));
}

/**
 * smp_text_poke_single() / text_poke_bp(): the site gets `bytes` through int3 and three syncs.
 * `syncAfterInt3: false` leaves out the first sync, to show what it is for (tests only).
 */
export function* textPokeBp(
  ctx: RoutineContext,
  w: TextPokeWords,
  bytes: number[],
  { syncAfterInt3 = true } = {},
): Routine {
  const site = ctx.spec.sites[0];
  for (const r of w.refs) yield store(r, 1); // atomic_set_release(per_cpu_ptr(&text_poke_array_refs), 1)
  yield writeCode(site.address, [0xcc]);
  if (syncAfterInt3) yield* syncEachCpu(ctx, w);
  yield* memcpyCode(site.address + 1, bytes.slice(1));
  yield* syncEachCpu(ctx, w);
  yield writeCode(site.address, [bytes[0]]);
  yield* syncEachCpu(ctx, w);
  for (const r of w.refs) yield add(r, -1); // the final atomic_dec_and_test, then wait for zero
  for (const r of w.refs) yield waitUntil(eq(r, 0));
}

/**
 * smp_text_poke_int3_handler(): while the poke is in progress, an int3 at the site is the poke's:
 * emulate the new instruction (int3_emulate_jmp to the payload). Returns 1 when it claimed the int3.
 */
export function* textPokeInt3Handler(ctx: RoutineContext, w: TextPokeWords): Routine<number> {
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
}

/** do_sync_core() in the call-function IPI handler. */
export function* textPokeIpiHandler(w: TextPokeWords, vector: number): Routine {
  if (vector !== VECTOR_SYNC) return;
  yield syncCore();
  yield add(w.syncAcks, 1);
}

export const linuxTextPoke: Protocol = {
  name: "linux-text-poke",
  summary: "Linux text_poke_bp: int3, sync, tail, sync, first byte, sync; #BP emulates the new instruction",
  origin: "Linux arch/x86/kernel/alternative.c smp_text_poke_batch_finish, smp_text_poke_int3_handler",
  os: "linux",
  expected: {
    "nmi-path": { refused: true },
    "mce-path": { refused: true },
    normal: { refused: true },
    "entry-pad": { violated: [] },
  },
  setup(spec, table: WordTable) {
    oneSite(spec); // text_poke_bp_batch, which takes several sites at once, is not modelled
    keepWords(spec, allocTextPoke(spec, table));
    return singleInstructionSite(
      spec,
      "text_poke_bp replaces exactly one instruction with one of the same length (its callers patch jump labels, static calls, alternatives, ftrace pads)",
    );
  },
  *master(ctx) {
    yield* textPokeBp(ctx, protocolWords<TextPokeWords>(ctx.spec), ctx.spec.sites[0].newBytes);
  },
  *bpHandler(ctx): Routine<number> {
    return yield* textPokeInt3Handler(ctx, protocolWords<TextPokeWords>(ctx.spec));
  },
  *ipiHandler(ctx, vector) {
    yield* textPokeIpiHandler(protocolWords<TextPokeWords>(ctx.spec), vector);
  },
};
