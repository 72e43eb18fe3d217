// Entry and exit code shared by the OS models: what do_nmi, do_machine_check, do_int3 and an IPI
// handler do around the protocol's hooks. The differences between OSes are in the flags of each model.
import { noteHook, type ProtocolHook } from "../progress.js";
import {
  atomicAdd,
  call,
  clearMcip,
  eq,
  iret,
  load,
  Mark,
  mark,
  ne,
  type Routine,
  sti,
  store,
  unhandledBp,
  waitUntil,
  xchg,
} from "../routine.js";
import type { MceWords, RoutineContext } from "../types.js";

/**
 * Runs a protocol routine (a Protocol field: master, poll, nmiCallback, ...) from the base routine or an
 * OS handler, recording its name in the routine context, so that an error or the watchdog names the
 * protocol's routine rather than the routine that called it.
 */
export function* inHook<R>(ctx: RoutineContext, hook: ProtocolHook, routine: Routine<R>): Routine<R> {
  const outer = ctx.hook;
  ctx.hook = hook;
  noteHook(ctx.cpu, hook);
  try {
    return yield* routine;
  } finally {
    ctx.hook = outer;
    noteHook(ctx.cpu, outer);
  }
}

/** Xen do_nmi(): `if ( nmi_callback(regs, cpu) ) return;` then the real NMI work. */
export function* nmiEntry(ctx: RoutineContext): Routine {
  const { spec } = ctx;
  const callback = yield load(spec.common.nmiCallback);
  if (callback !== 0 && spec.protocol.nmiCallback) {
    const consumed = yield* inHook(ctx, "nmiCallback", spec.protocol.nmiCallback(ctx));
    if (consumed) {
      yield iret();
      return;
    }
  }
  yield mark(Mark.NmiService);
  yield call(spec.image.symbol(spec.scenario.nmiService).address);
  // With Linux's guard, a nested NMI turns this IRET into a jump to repeat_nmi (model/cpu iret).
  yield iret();
}

/**
 * Xen's #MC handler, do_machine_check() -> mcheck_cmn_handler() (xen/arch/x86/cpu/mcheck/mce.c): take
 * mce_logout_lock, log the banks synchronously (mcheck_mca_logout -> mctelem_reserve, then
 * mctelem_defer for an uncorrected error), meet the other CPUs in mce_trap_bar three times when the
 * #MC was broadcast (urgent action; severity check; each CPU clears its MCIP), then
 * raise_softirq(MACHINE_CHECK_SOFTIRQ): the telemetry and the VIRQ_MCA send to dom0 (mce_softirq ->
 * send_global_virq) run later, at base level. Linux's do_machine_check has the same shape: the
 * mce_start()/mce_end() rendezvous when broadcast, and mce_log() deferring to irq_work.
 */
export function* mceEntry(ctx: RoutineContext): Routine {
  const { spec } = ctx;
  const w = spec.common.mce;
  // mcheck_cmn_handler: bcast = mce_broadcast && !lmce (LMCE and AMD deliver locally)
  const broadcast = (spec.config.hardware.mceDelivery ?? "broadcast") === "broadcast";
  yield mark(Mark.McService);
  // mce_spin_lock(&mce_logout_lock): spin_trylock until it succeeds
  while ((yield xchg(w.logoutLock, 1)) !== 0) yield waitUntil(eq(w.logoutLock, 0));
  for (const fn of spec.scenario.mceService) yield call(spec.image.symbol(fn).address);
  yield store(w.logoutLock, 0); // mce_spin_unlock()
  // mce_urgent_action() between the first enter/exit, the severity CPU's fatal check between the second
  yield* mceBarrierEnter(ctx, w, broadcast);
  yield* mceBarrierExit(ctx, w, broadcast);
  yield* mceBarrierEnter(ctx, w, broadcast);
  yield* mceBarrierExit(ctx, w, broadcast);
  yield* mceBarrierEnter(ctx, w, broadcast);
  yield clearMcip(); // mca_wrmsr(MSR_IA32_MCG_STATUS, 0): "Clear MCIP@ last step"
  yield* mceBarrierExit(ctx, w, broadcast);
  yield store(spec.common.mceSoftirqPending[ctx.cpu], 1); // raise_softirq(MACHINE_CHECK_SOFTIRQ)
  yield iret();
}

/** Xen mcheck/barrier.c mce_barrier_enter(): count in, spin until every online CPU is in. */
function* mceBarrierEnter(ctx: RoutineContext, w: MceWords, wait: boolean): Routine {
  if (!wait) return;
  yield atomicAdd(w.barrierIngen, 1);
  const gen = yield load(w.barrierOutgen);
  yield atomicAdd(w.barrierVal, 1);
  // while ( val != num_online_cpus() && outgen == gen )
  yield waitUntil(eq(w.barrierVal, ctx.cpus), ne(w.barrierOutgen, gen));
}

/** Xen mcheck/barrier.c mce_barrier_exit(): count out, spin until every CPU is out. */
function* mceBarrierExit(_ctx: RoutineContext, w: MceWords, wait: boolean): Routine {
  if (!wait) return;
  yield atomicAdd(w.barrierOutgen, 1);
  const gen = yield load(w.barrierIngen);
  yield atomicAdd(w.barrierVal, -1);
  // while ( val != 0 && ingen == gen )
  yield waitUntil(eq(w.barrierVal, 0), ne(w.barrierIngen, gen));
}

/**
 * Xen's do_softirq() for MACHINE_CHECK_SOFTIRQ at a base-level point (idle loop, return to guest):
 * mce_softirq() processes the deferred telemetry and sends VIRQ_MCA (send_global_virq). Its own
 * barriers (mce_inside_bar, mce_severity_bar), which pick one CPU to do the work, are not modelled:
 * each CPU that raised the softirq runs the work.
 */
export function* runMceSoftirq(ctx: RoutineContext): Routine {
  const { spec } = ctx;
  if (!spec.scenario.mceSoftirq) return;
  const pending = spec.common.mceSoftirqPending[ctx.cpu];
  if ((yield load(pending)) === 0) return;
  yield store(pending, 0);
  yield call(spec.image.symbol(spec.scenario.mceSoftirq).address);
}

/**
 * do_int3(): the protocol may claim the int3 (a patch site). What happens to an int3 nobody claims is
 * the OS's: Xen prints "Hit embedded breakpoint" and returns past it, Linux dies.
 */
export function* bpEntry(ctx: RoutineContext): Routine {
  const { os, protocol } = ctx.spec;
  // Xen entry.S handle_exception_saved: `sti` unless the interrupted context had IF=0
  // (exception_with_ints_disabled), so do_int3 runs with IRQs on when the trapping code had them on
  if (os.exceptionEntryEnablesIrqs && ctx.frame.interruptedIf === 1) yield sti();
  const claimed = protocol.bpHandler ? yield* inHook(ctx, "bpHandler", protocol.bpHandler(ctx)) : 0;
  if (!claimed) {
    if (os.unclaimedInt3Resumes) {
      // Xen traps.c do_int3: no exception-table fixup in hypervisor context, so "Hit embedded
      // breakpoint at %p" and return: the CPU resumes at int3+1, whatever those bytes now are
      yield mark(Mark.EmbeddedBreakpoint, ctx.frame.fromRealCode ? ctx.frame.rip - 1 : 0);
    } else {
      yield unhandledBp(); // Linux exc_int3: die("int3", regs, 0)
    }
  }
  yield iret();
}

export function* irqEntry(ctx: RoutineContext, vector: number): Routine {
  if (ctx.spec.protocol.ipiHandler)
    yield* inHook(ctx, "ipiHandler", ctx.spec.protocol.ipiHandler(ctx, vector));
  yield iret();
}
