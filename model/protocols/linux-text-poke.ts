// Linux's int3-based text poking (arch/x86/kernel/alternative.c smp_text_poke_batch_finish ->
// smp_text_poke_batch_process, formerly text_poke_finish -> text_poke_bp_batch): no stop-machine. Per-CPU refcounts are set; int3 is written at byte 0 of every
// site of the batch; every CPU syncs (on_each_cpu(do_sync_core, wait=1)); the tail bytes of every site
// are written; sync; byte 0 of every site is written; sync; then the refcounts are dropped and waited
// for. The #BP handler (smp_text_poke_int3_handler) takes a reference, finds the trapping address
// among the batch's sites (a binary search when there are several) and emulates that site's new
// instruction (a jump to its payload). Several sites go into one batch as smp_text_poke_batch_add()
// (formerly text_poke_queue()) collects them: in the payload's order, and a site below the previous
// one flushes the batch first (text_poke_addr_ordered(), formerly tp_order_fail(): the handler's binary
// search needs the vector sorted by address).
// Its callers (jump labels, static calls, alternatives, ftrace) replace one instruction with one of
// the same length, so a site that is not exactly one old instruction is refused.
import {
  add,
  atomicAdd,
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
import type { MachineSpec, Protocol, Refusal, RoutineContext, Site } from "../types.js";
import { disassemble } from "../x86.js";
import { keepWords, protocolWords } from "./words.js";

/** The fixed vector of the call-function IPI that runs do_sync_core on each CPU. */
const VECTOR_SYNC = 2;

export interface TextPokeWords {
  refs: number[];
  syncRound: number;
  syncAcks: number;
  /**
   * The batches the patch is applied in, each a vector of sites sorted by address, in the order they
   * are poked (text_poke_array's contents each time smp_text_poke_batch_process runs).
   */
  batches: Site[][];
  /**
   * Which batch text_poke_array holds (its vector and nr_entries, set before the refcounts): a word
   * only when there are several batches; one batch is the same vector for the whole run.
   */
  vector?: number;
}

/**
 * smp_text_poke_batch_add() (text_poke_queue()): the payload's sites in its order, a new batch
 * whenever a site lies below the previous one (smp_text_poke_batch_flush() when
 * text_poke_addr_ordered() fails), so each batch's vector is sorted by address.
 */
export function queueBatches(sites: Site[]): Site[][] {
  const batches: Site[][] = [];
  for (const site of sites) {
    const batch = batches[batches.length - 1];
    // text_poke_addr_ordered() / tp_order_fail(): out of order only when the last entry lies above
    if (batch && !(batch[batch.length - 1].address > site.address)) batch.push(site);
    else batches.push([site]);
  }
  return batches;
}

/** text_poke_array_refs, the sync IPI's counters, and which batch is being poked when there are several. */
export function allocTextPoke(spec: MachineSpec, table: WordTable, batches: Site[][]): TextPokeWords {
  const words: TextPokeWords = {
    refs: table.allocPerCpu("text_poke_array_refs", spec.config.hardware.cpus),
    syncRound: table.alloc("text_poke_sync.round"),
    syncAcks: table.alloc("text_poke_sync.acks"),
    batches,
  };
  if (batches.length > 1) words.vector = table.alloc("text_poke_array.vec");
  return words;
}

/** The old instructions `site`'s new bytes cover: [address, length, text] of each. */
export function coveredInstructions(
  spec: MachineSpec,
  site: Site = spec.sites[0],
): Array<[number, number, string]> {
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

/**
 * Refuses a payload with a site that is not exactly one old instruction as long as the new one,
 * naming the first such site and what it would replace.
 */
export function singleInstructionSite(spec: MachineSpec, why: string): Refusal | undefined {
  for (const site of spec.sites) {
    const covered = coveredInstructions(spec, site);
    if (covered.length === 1 && covered[0][1] === site.newBytes.length) continue;
    const bytes = (n: number) => `${n} byte${n === 1 ? "" : "s"}`;
    const list = covered.map(([, len, text]) => `${text}, ${bytes(len)}`).join("; ");
    return {
      reason: `${site.target}: the ${bytes(site.newBytes.length)} of the jump would replace ${covered.length} old instruction${covered.length === 1 ? "" : "s"} (${list}); ${why}`,
    };
  }
  return undefined;
}

/** smp_text_poke_sync_each_cpu(): sync_core() here, IPI the others and wait until each has run it. */
export function* syncEachCpu(ctx: RoutineContext, w: TextPokeWords): Routine {
  const round = (yield add(w.syncRound, 1)) + 1;
  yield sendIpi("others", VECTOR_SYNC);
  yield syncCore();
  yield waitUntil(ge(w.syncAcks, round * (ctx.cpus - 1)));
}

/**
 * What smp_text_poke_batch_process() does; each flag leaves a step out, to show what the step is for
 * (tests build such variants; the registered protocols have every step).
 */
export interface TextPokeSteps {
  /** The sync after int3 is written at every site. */
  syncAfterInt3: boolean;
  /** The sync after the tails are written, before the first bytes. */
  syncAfterTails: boolean;
  /**
   * The sync after the first bytes are written, before the refcounts are dropped: without it a CPU
   * that fetched the int3 before the first byte was written can take its #BP after the refcount drain
   * (hpa's warning on the text_poke_bp thread: "a #BP in flight on another CPU"), find no reference
   * to take, and crash on an int3 nobody claims.
   */
  syncAfterFirsts: boolean;
}

export const EVERY_TEXT_POKE_STEP: TextPokeSteps = {
  syncAfterInt3: true,
  syncAfterTails: true,
  syncAfterFirsts: true,
};

/**
 * smp_text_poke_batch_process() (text_poke_bp_batch() in earlier kernels) on batch `index` of
 * `w.batches`: every site of the batch gets its new bytes through int3 and three syncs.
 */
export function* textPokeBatch(
  ctx: RoutineContext,
  w: TextPokeWords,
  index: number,
  steps: TextPokeSteps = EVERY_TEXT_POKE_STEP,
): Routine {
  const batch = w.batches[index];
  // text_poke_array.vec and nr_entries are set before the refcounts (atomic_set_release orders them)
  if (w.vector !== undefined) yield store(w.vector, index);
  for (const r of w.refs) yield store(r, 1); // atomic_set_release(per_cpu_ptr(&text_poke_array_refs), 1)
  // First step: add an int3 trap to the address that will be patched, for each entry
  for (const site of batch) yield writeCode(site.address, [0xcc]);
  if (steps.syncAfterInt3) yield* syncEachCpu(ctx, w);
  // Second step: update all but the first byte of the patched range, for each entry
  let tails = 0;
  for (const site of batch) {
    if (site.newBytes.length <= 1) continue; // `if (len - INT3_INSN_SIZE > 0)`
    yield* memcpyCode(site.address + 1, site.newBytes.slice(1));
    tails++;
  }
  if (tails > 0 && steps.syncAfterTails) yield* syncEachCpu(ctx, w); // `if (do_sync)`
  // Third step: replace the first byte (int3) by the first byte of the new instruction, for each entry
  let firsts = 0;
  for (const site of batch) {
    if (site.newBytes[0] === 0xcc) continue; // `if (byte == INT3_INSN_OPCODE) continue;`
    yield writeCode(site.address, [site.newBytes[0]]);
    firsts++;
  }
  if (firsts > 0 && steps.syncAfterFirsts) yield* syncEachCpu(ctx, w); // `if (do_sync)`
  for (const r of w.refs) yield atomicAdd(r, -1); // the final atomic_dec_and_test, then wait for zero
  for (const r of w.refs) yield waitUntil(eq(r, 0));
}

/**
 * The entry of the sorted `batch` at address `ip`: __inline_bsearch() with patch_cmp() when the vector
 * has several entries, a direct comparison when it has one ("Skip the binary search if there is a
 * single member in the vector").
 */
export function findEntry(batch: Site[], ip: number): Site | undefined {
  if (batch.length === 1) return batch[0].address === ip ? batch[0] : undefined;
  let lo = 0;
  let hi = batch.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const at = batch[mid].address;
    if (ip === at) return batch[mid];
    if (ip < at) hi = mid;
    else lo = mid + 1;
  }
  return undefined;
}

/**
 * smp_text_poke_int3_handler(): while a batch is being poked, an int3 at one of its sites is the
 * poke's: emulate that site's new instruction (int3_emulate_jmp to its payload). Returns 1 when it
 * claimed the int3.
 */
export function* textPokeInt3Handler(ctx: RoutineContext, w: TextPokeWords): Routine<number> {
  if (!ctx.frame.fromRealCode) return 0;
  // try_get_text_poke_array(): atomic_inc_not_zero on this CPU's refcount
  if ((yield load(w.refs[ctx.cpu])) === 0) return 0;
  yield atomicAdd(w.refs[ctx.cpu], 1);
  // Having observed the refcount, the handler reads the vector it guards (text_poke_array.vec)
  const batch = w.vector === undefined ? w.batches[0] : w.batches[yield load(w.vector)];
  let claimed = 0;
  const site = findEntry(batch, ctx.frame.rip - 1); // `ip = regs->ip - INT3_INSN_SIZE`
  if (site) {
    // int3_emulate_jmp(): continue at the new instruction's target
    ctx.frame.rip = ctx.spec.image.symbol(site.payload).address;
    claimed = 1;
  }
  yield atomicAdd(w.refs[ctx.cpu], -1); // put_text_poke_array()
  return claimed;
}

/** do_sync_core() in the call-function IPI handler. */
export function* textPokeIpiHandler(w: TextPokeWords, vector: number): Routine {
  if (vector !== VECTOR_SYNC) return;
  yield syncCore();
  yield atomicAdd(w.syncAcks, 1);
}

/** The text_poke protocol with `steps`, under a name and declared verdicts of its own. */
export function textPokeProtocol(
  p: Pick<Protocol, "name" | "summary" | "expected">,
  steps: TextPokeSteps,
): Protocol {
  return {
    ...p,
    origin:
      "Linux arch/x86/kernel/alternative.c smp_text_poke_batch_add, smp_text_poke_batch_finish, smp_text_poke_int3_handler",
    os: "linux",
    setup(spec, table: WordTable) {
      keepWords(spec, allocTextPoke(spec, table, queueBatches(spec.sites)));
      return singleInstructionSite(
        spec,
        "text_poke_bp replaces exactly one instruction with one of the same length (its callers patch jump labels, static calls, alternatives, ftrace pads)",
      );
    },
    *master(ctx) {
      const w = protocolWords<TextPokeWords>(ctx.spec);
      // smp_text_poke_batch_add() for each site, then smp_text_poke_batch_finish() pokes the last batch
      for (let i = 0; i < w.batches.length; i++) yield* textPokeBatch(ctx, w, i, steps);
    },
    *bpHandler(ctx): Routine<number> {
      return yield* textPokeInt3Handler(ctx, protocolWords<TextPokeWords>(ctx.spec));
    },
    *ipiHandler(ctx, vector) {
      yield* textPokeIpiHandler(protocolWords<TextPokeWords>(ctx.spec), vector);
    },
  };
}

export const linuxTextPoke: Protocol = textPokeProtocol(
  {
    name: "linux-text-poke",
    summary: "Linux text_poke_bp: int3, sync, tail, sync, first byte, sync; #BP emulates the new instruction",
    expected: {
      "nmi-path": { refused: true },
      "mce-path": { refused: true },
      normal: { refused: true },
      "entry-pad": { violated: [] },
    },
  },
  EVERY_TEXT_POKE_STEP,
);
