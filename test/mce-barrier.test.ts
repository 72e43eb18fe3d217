// Machine checks on Xen's real path (model/os/common.ts mceEntry): the handler's mce_trap_bar
// rendezvous when the #MC is broadcast, and none when it is local (LMCE, AMD). The mce-path cells with
// local delivery are in test/slow/verdicts-mce.test.ts.
import { describe, expect, it } from "vitest";
import { ContextKind, Ev } from "../dist/model/events.js";
import { RunStatus } from "../dist/model/memory.js";
import { store } from "../dist/model/routine.js";
import { type LitmusDef, litmus } from "./helpers/litmus.js";

describe("mcheck_cmn_handler's barrier", () => {
  const def = (mceDelivery: "broadcast" | "local"): LitmusDef => ({
    cpus: 2,
    mces: 1,
    mceDelivery,
    words: ["a"],
    *program(_ctx, env) {
      yield store(env.w.a, 1);
    },
  });

  it("with broadcast delivery, each CPU clears MCIP only once every CPU is in its handler", () => {
    const m = litmus(def("broadcast"));
    // Actions [CPU 0, CPU 1, #MC 0, #MC 1]: the #MC, broadcast to both CPUs, then zeros.
    const run = m.run([2]);
    expect(run.status).toBe(RunStatus.Finished);
    const delivered = run.of(Ev.McDeliver).map((r) => r.index);
    expect(delivered).toHaveLength(2);
    for (const clear of run.of(Ev.McipClear)) expect(clear.index).toBeGreaterThan(Math.max(...delivered));
    expect(run.of(Ev.Iret).map((r) => r.a)).toEqual([ContextKind.Mce, ContextKind.Mce]);
    expect(run.mem.data[m.spec.common.mce.barrierVal]).toBe(0);
  });

  it("with local delivery (LMCE, AMD) the handler does not wait for the others", () => {
    const m = litmus(def("local"));
    const run = m.run([2]);
    expect(run.status).toBe(RunStatus.Finished);
    expect(run.of(Ev.McipClear).map((r) => r.cpu)).toEqual([0]);
    expect(run.log.some((r) => r.kind === Ev.Store && r.addr === m.spec.common.mce.barrierVal)).toBe(false);
    // raise_softirq(MACHINE_CHECK_SOFTIRQ) for the deferred work
    expect(run.mem.data[m.spec.common.mceSoftirqPending[0]]).toBe(1);
  });
});
