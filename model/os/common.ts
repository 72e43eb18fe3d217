// Entry and exit code shared by the OS models: what do_nmi, do_machine_check, do_int3 and an IPI
// handler do around the protocol's hooks. The differences between OSes are in the flags of each model.
import { call, clearMcip, inHook, iret, load, Mark, mark, type Routine, unhandledBp } from "../routine.js";
import type { RoutineContext } from "../types.js";

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

/** do_machine_check(): handle the error (which may send an event channel), clear MCIP, return. */
export function* mceEntry(ctx: RoutineContext): Routine {
  const { spec } = ctx;
  yield mark(Mark.McService);
  yield call(spec.image.symbol(spec.scenario.mceService).address);
  yield clearMcip();
  yield iret();
}

/** do_int3(): the protocol may claim the int3 (a patch site); otherwise it is fatal. */
export function* bpEntry(ctx: RoutineContext): Routine {
  const claimed = ctx.spec.protocol.bpHandler
    ? yield* inHook(ctx, "bpHandler", ctx.spec.protocol.bpHandler(ctx))
    : 0;
  if (!claimed) yield unhandledBp();
  yield iret();
}

export function* irqEntry(ctx: RoutineContext, vector: number): Routine {
  if (ctx.spec.protocol.ipiHandler)
    yield* inHook(ctx, "ipiHandler", ctx.spec.protocol.ipiHandler(ctx, vector));
  yield iret();
}
