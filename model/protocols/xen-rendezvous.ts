// Xen's stop-machine rendezvous for livepatch (xen/common/livepatch.c, 4.8: check_for_livepatch_work,
// livepatch_spin), shared by the protocols that keep it and differ in how they write the site and
// treat NMIs. The master is CPU 0; the semaphore counts the others in, twice.
import {
  atomicAdd,
  cli,
  cpuid,
  eq,
  ge,
  load,
  memcpyCode,
  ne,
  type Routine,
  sendIpi,
  sti,
  store,
  type WordTable,
  waitUntil,
} from "../routine.js";
import type { RoutineContext } from "../types.js";

/** The fixed vector of smp_call_function(reschedule_fn): kicks idle CPUs into check_for_livepatch_work. */
export const VECTOR_RESCHEDULE = 1;

export interface RendezvousWords {
  semaphore: number;
  ready: number;
}

export function allocRendezvous(words: WordTable): RendezvousWords {
  return { semaphore: words.alloc("livepatch_work.semaphore"), ready: words.alloc("livepatch_work.ready") };
}

/** Master side up to the patch: others arrive with IRQs on, then disable IRQs; returns with IRQs off. */
export function* masterEnter(ctx: RoutineContext, w: RendezvousWords): Routine {
  const { common } = ctx.spec;
  const others = ctx.cpus - 1;
  yield store(w.semaphore, 0);
  yield store(common.rendezvousWanted, 1); // schedule_work(): do_work = 1
  yield sendIpi("others", VECTOR_RESCHEDULE); // smp_call_function(reschedule_fn)
  yield waitUntil(ge(w.semaphore, others)); // livepatch_spin with IRQs on
  yield store(w.semaphore, 0);
  yield store(w.ready, 1);
  yield waitUntil(ge(w.semaphore, others)); // every other CPU now has IRQs off
  yield cli(); // local_irq_save() before livepatch_do_action()
}

/**
 * Every site of the payload in its order, each jump memcpy'd byte by byte (xen/common/livepatch.c
 * apply_payload: arch_livepatch_apply for each of data->funcs; xen/arch/x86/livepatch.c
 * arch_livepatch_apply: memcpy(old_ptr, insn, len)).
 */
export function* applyPayload(ctx: RoutineContext): Routine {
  for (const site of ctx.spec.sites) yield* memcpyCode(site.address, site.newBytes);
}

/** Master side after the patch: arch_livepatch_post_action (cpuid), then local_irq_restore(). */
export function* masterAfterPatch(): Routine {
  yield cpuid();
  yield sti();
}

/** Master releases the others (do_work = 0); they serialize and re-enable IRQs on their own. */
export function* release(ctx: RoutineContext, w: RendezvousWords): Routine {
  yield store(w.ready, 0);
  yield store(ctx.spec.common.rendezvousWanted, 0);
}

/** What a protocol adds to the rendezvous on a CPU that is not the master. */
export interface SlaveHooks {
  /** Run at the safe point: counted in, IRQs off, before spinning until the master releases it. */
  atSafePoint?: () => Routine;
  /** Run after the release, with IRQs back on. */
  afterRelease?: () => Routine;
}

/** check_for_livepatch_work() on a CPU that is not the master. */
export function* slave(ctx: RoutineContext, w: RendezvousWords, hooks: SlaveHooks = {}): Routine {
  const { common } = ctx.spec;
  if ((yield load(common.rendezvousWanted)) === 0) return;
  // atomic_inc_and_test(&semaphore): Xen picks the master by its result; here CPU 0 is the master, so
  // the others count in without it
  yield atomicAdd(w.semaphore, 1);
  yield waitUntil(ne(w.ready, 0)); // spin while do_work && !ready, IRQs on
  yield cli(); // local_irq_save()
  yield atomicAdd(w.semaphore, 1);
  if (hooks.atSafePoint) yield* hooks.atSafePoint();
  yield waitUntil(eq(common.rendezvousWanted, 0)); // spin while do_work
  yield cpuid(); // arch_livepatch_post_action(): cpuid_eax(0) serializes
  yield sti();
  if (hooks.afterRelease) yield* hooks.afterRelease();
}
