// A payload of several sites on Linux's protocols. linux-text-poke collects them as text_poke_queue()
// does and pokes each batch as smp_text_poke_batch_finish() (text_poke_bp_batch()) does: int3 at every
// site, sync, every tail, sync, every first byte, sync; its #BP handler must find the trapping site
// among all the batch's sites. linux-optprobe registers one probe per site and, after one RCU Tasks
// grace period, writes each probe's jump with its own text_poke_bp() (arch_optimize_kprobes()).
import { beforeAll, describe, expect, it } from "vitest";
import { defineScenario } from "../api/index.js";
import { ContextKind, CrashKind, Ev } from "../model/events.js";
import { C } from "../model/memory.js";
import { registerProtocol } from "../model/protocols/index.js";
import { INSN_SLOT, insnSlotName } from "../model/protocols/linux-optprobe.js";
import { queueBatches, type TextPokeWords, textPokeProtocol } from "../model/protocols/linux-text-poke.js";
import { protocolWords } from "../model/protocols/words.js";
import { call, eq, ge, Mark, mark, type Routine, sendNmi, store, waitUntil } from "../model/routine.js";
import { registerScenario } from "../model/scenarios/index.js";
import { EVENT_ROOTS, KERNEL_FUNCTIONS } from "../model/scenarios/kernel-image.js";
import type { RoutineContext, Scenario } from "../model/types.js";
import { check, resolveConfig } from "../properties/check.js";
import { evaluate, type LogRecord, readLog } from "../properties/invariants.js";
import { decodeToken } from "../properties/token.js";
import { runInline } from "../workers/inline.js";
import { machineFor } from "../workers/setup.js";
import { expectVerdict, RUNS, SEEDS } from "./helpers/verdicts.js";

// The built-in image with two more functions that start with a 5-byte NOP pad, laid out first (below
// watchdog_touch, the NMI path's padded function): one called from normal context, one nobody calls
// (only the P6 probe, after the patch).
const FUNCTIONS = [
  {
    name: "vcpu_runstate_reset",
    code: ["nop5", "push rbp", "mov rbp, rsp", "mov eax, 10", "pop rbp", "ret"],
  },
  {
    name: "vcpu_runstate_account",
    code: ["nop5", "push rbp", "mov rbp, rsp", "mov eax, 9", "pop rbp", "ret"],
  },
  ...KERNEL_FUNCTIONS.map((f) =>
    f.name === "normal_work"
      ? {
          name: "normal_work",
          code: [
            "push rbp",
            "mov rbp, rsp",
            "call mce_checkregs",
            "call vcpu_runstate_account",
            "pop rbp",
            "ret",
          ],
        }
      : f,
  ),
  { name: "livepatch.vcpu_runstate_account", payload: true, code: ["mov eax, 19", "ret"] },
  { name: "livepatch.vcpu_runstate_reset", payload: true, code: ["mov eax, 20", "ret"] },
];

const ACCOUNT = { target: "vcpu_runstate_account", payload: "livepatch.vcpu_runstate_account" };
const TOUCH = { target: "watchdog_touch", payload: "livepatch.watchdog_touch" };

function padsScenario(name: string, summary: string, patches: Array<typeof ACCOUNT>): Scenario {
  return defineScenario({
    name,
    summary,
    image: { functions: FUNCTIONS },
    patches,
    workload: "normal_work",
    nmiService: "do_nmi_work",
    eventRoots: EVENT_ROOTS,
  });
}

// Both sites are one instruction (the pad); the second is on the NMI path.
const twoPads = padsScenario(
  "two-pads",
  "vcpu_runstate_account (normal context), then watchdog_touch (NMI path), both 5-byte NOP pads",
  [ACCOUNT, TOUCH],
);
// A site no CPU runs while the patch is applied, then the NMI path's: only the second can tear.
const idleThenNmi = padsScenario(
  "idle-pad-then-nmi-pad",
  "vcpu_runstate_reset (not called until the patch is applied), then watchdog_touch (NMI path)",
  [{ target: "vcpu_runstate_reset", payload: "livepatch.vcpu_runstate_reset" }, TOUCH],
);
// Two functions with real prologues, the first only in normal context, the second on the NMI path: the
// jump replaces three old instructions at each.
const twoPrologues = padsScenario(
  "two-prologues",
  "vcpu_runstate_update (normal context), then watchdog_kick (NMI path), each a 3-instruction prologue",
  [
    { target: "vcpu_runstate_update", payload: "livepatch.vcpu_runstate_update" },
    { target: "watchdog_kick", payload: "livepatch.watchdog_kick" },
  ],
);
// The same sites in the other order: the second lies below the first.
const twoPadsDescending = padsScenario(
  "two-pads-descending",
  "watchdog_touch, then vcpu_runstate_account, which lies below it",
  [TOUCH, ACCOUNT],
);

/**
 * While int3 is on both sites (the first sync has begun), CPU 1 sends itself an NMI, whose handler
 * runs watchdog_touch (the second site), and CPU 2 calls vcpu_runstate_account (the first site).
 */
function* trapOnBothSites(ctx: RoutineContext): Routine {
  const { spec } = ctx;
  const { common } = spec;
  const w = protocolWords<TextPokeWords>(spec);
  if (ctx.cpu === 0) {
    yield mark(Mark.PatchBegin);
    yield* spec.protocol.master(ctx);
    yield mark(Mark.PatchEnd);
    yield store(common.patchDone, 1);
    // The P6 probe, as the default program does: a call of each patched function
    for (const [i, site] of spec.sites.entries()) {
      yield mark(Mark.ProbeBegin, i);
      yield call(spec.image.symbol(site.function).address);
      yield mark(Mark.ProbeEnd, i);
    }
    return;
  }
  // text_poke_sync.round becomes 1 once int3 has been written at every site of the batch
  yield waitUntil(ge(w.syncRound, 1));
  if (ctx.cpu === 1) yield sendNmi("self");
  if (ctx.cpu === 2) yield call(spec.image.symbol("vcpu_runstate_account").address);
  yield waitUntil(eq(common.patchDone, 1));
}
const trapScenario: Scenario = {
  ...padsScenario("two-pads-trapped", "two-pads, with a trap at each site while both hold int3", [
    ACCOUNT,
    TOUCH,
  ]),
  program: trapOnBothSites,
};

// linux-text-poke with the sync after the int3s left out: a named variant, to show the checker reports
// a violation at the site where it happens.
const withoutFirstSync = textPokeProtocol(
  {
    name: "linux-text-poke-without-first-sync",
    summary: "text_poke_bp_batch without the sync after the int3s",
    expected: {},
  },
  { syncAfterInt3: false, syncAfterTails: true },
);

beforeAll(() => {
  registerScenario(twoPads);
  registerScenario(twoPadsDescending);
  registerScenario(twoPrologues);
  registerScenario(idleThenNmi);
  registerScenario(trapScenario);
  registerProtocol(withoutFirstSync);
});

/** Each code write as `site index@offset` (the site it falls in, and the byte's offset there). */
function codeWrites(log: LogRecord[], sites: Array<{ address: number }>): string[] {
  return log
    .filter((r) => r.kind === Ev.CodeWrite)
    .map((r) => {
      const i = sites.findIndex((s) => r.addr >= s.address && r.addr < s.address + 5);
      return `${i}@${r.addr - sites[i].address}`;
    });
}

/** The code writes of a run, each followed by `sync` when a text_poke_sync round began after it. */
function writesAndSyncs(log: LogRecord[], sites: Array<{ address: number }>, syncRound: number): string[] {
  const out: string[] = [];
  for (const r of log) {
    if (r.kind === Ev.CodeWrite) {
      const i = sites.findIndex((s) => r.addr >= s.address && r.addr < s.address + 5);
      out.push(`${i}@${r.addr - sites[i].address}`);
    } else if (r.kind === Ev.Store && r.addr === syncRound) out.push("sync");
  }
  return out;
}

describe("linux-text-poke with two sites", () => {
  it("pokes them in one batch when they are in address order: int3 at both, sync, both tails, sync, both first bytes, sync", () => {
    const config = resolveConfig("linux-text-poke", "two-pads");
    const spec = machineFor(config);
    expect(spec.refusal).toBeUndefined();
    expect(spec.sites[0].address).toBeLessThan(spec.sites[1].address);
    const w = protocolWords<TextPokeWords>(spec);
    expect(w.batches.map((b) => b.map((s) => s.function))).toEqual([
      ["vcpu_runstate_account", "watchdog_touch"],
    ]);
    expect(w.vector).toBeUndefined();
    const log = readLog(runInline(config, { tape: [] }).mem);
    expect(writesAndSyncs(log, spec.sites, w.syncRound)).toEqual([
      ...["0@0", "1@0", "sync"],
      ...["0@1", "0@2", "0@3", "0@4", "1@1", "1@2", "1@3", "1@4", "sync"],
      ...["0@0", "1@0", "sync"],
    ]);
  });

  it("flushes the batch when a site lies below the previous one (tp_order_fail): two batches, in the payload's order", () => {
    const config = resolveConfig("linux-text-poke", "two-pads-descending");
    const spec = machineFor(config);
    const w = protocolWords<TextPokeWords>(spec);
    expect(w.batches.map((b) => b.map((s) => s.function))).toEqual([
      ["watchdog_touch"],
      ["vcpu_runstate_account"],
    ]);
    expect(w.vector).toBeDefined();
    const log = readLog(runInline(config, { tape: [] }).mem);
    const one = (i: number) => [
      `${i}@0`,
      "sync",
      `${i}@1`,
      `${i}@2`,
      `${i}@3`,
      `${i}@4`,
      "sync",
      `${i}@0`,
      "sync",
    ];
    expect(writesAndSyncs(log, spec.sites, w.syncRound)).toEqual([...one(0), ...one(1)]);
    // text_poke_array.vec names each batch before its refcounts are set
    const vectors = log.filter((r) => r.kind === Ev.Store && r.addr === w.vector).map((r) => r.a);
    expect(vectors).toEqual([0, 1]);
  });

  it("queues batches by address order", () => {
    const site = (address: number) => ({ address }) as never;
    const batches = queueBatches([site(10), site(20), site(5), site(7), site(7), site(30)]);
    expect(batches.map((b) => b.map((s: { address: number }) => s.address))).toEqual([
      [10, 20],
      [5, 7, 7, 30],
    ]);
  });

  it("finds the site an int3 trapped on among the batch's sites: an NMI handler at the second site runs its payload, a call to the first runs the first's", () => {
    const config = resolveConfig("linux-text-poke", "two-pads-trapped", { cpus: 3, nmis: 0 });
    const spec = machineFor(config);
    const mem = runInline(config, { tape: [] }).mem;
    const log = readLog(mem);
    const [account, touch] = spec.sites;
    const crash = log.find((r) => r.kind === Ev.Crash);
    expect(crash ? CrashKind[crash.a] : "none").toBe("none");
    expect(evaluate(spec, mem)).toEqual([]);
    // The byte at each site's address just before log record `i`: the last write there, or the old byte
    const firstBytesAt = (i: number) =>
      spec.sites.map(
        (site) =>
          log.slice(0, i).findLast((r) => r.kind === Ev.CodeWrite && r.addr === site.address)?.a ??
          site.oldBytes[0],
      );
    // CPU 1: an NMI, whose handler traps on the int3 at watchdog_touch while both sites hold one
    const nmi = log.findIndex((r) => r.kind === Ev.NmiDeliver && r.cpu === 1);
    const bp1 = log.findIndex((r) => r.kind === Ev.BpDeliver && r.cpu === 1);
    expect(nmi).toBeGreaterThan(-1);
    expect(bp1).toBeGreaterThan(nmi);
    expect(log[bp1].addr).toBe(touch.address);
    expect(firstBytesAt(bp1)).toEqual([0xcc, 0xcc]);
    const ran1 = log.find((r, i) => i > bp1 && r.cpu === 1 && r.kind === Ev.Exec);
    expect(ran1).toMatchObject({ addr: spec.image.symbol(touch.payload).address, c: ContextKind.Nmi });
    // CPU 2: a call to vcpu_runstate_account traps on the first site's int3, in normal context
    const bp2 = log.findIndex((r) => r.kind === Ev.BpDeliver && r.cpu === 2);
    expect(bp2).toBeGreaterThan(-1);
    expect(log[bp2].addr).toBe(account.address);
    expect(firstBytesAt(bp2)).toEqual([0xcc, 0xcc]);
    const ran2 = log.find((r, i) => i > bp2 && r.cpu === 2 && r.kind === Ev.Exec);
    expect(ran2).toMatchObject({ addr: spec.image.symbol(account.payload).address, c: ContextKind.Base });
  });

  it("holds on both sites (the real checker)", async () => {
    await expectVerdict("linux-text-poke", "two-pads", { violated: [] });
    await expectVerdict("linux-text-poke", "two-pads-descending", { violated: [] });
  });

  it("without the sync after the int3s, tears at the second site, in an NMI handler, and the violation names that site", async () => {
    const verdict = await check({
      protocol: withoutFirstSync.name,
      scenario: "idle-pad-then-nmi-pad",
      properties: ["P1"],
      runs: RUNS,
      seeds: SEEDS,
      seed: 1,
    });
    if (verdict.kind !== "violated") throw new Error(`expected a violation, got ${JSON.stringify(verdict)}`);
    const v = verdict.properties[0].violation;
    expect(v?.kind).toBe("torn-fetch");
    expect(v?.cpu).toBeGreaterThan(0);
    expect(v?.message).toMatch(/ at watchdog_touch(\+0x[1-4])?: byte 0 old, /);
    // The token replays it: the CPU that tore was in its NMI handler
    const { config, tape } = decodeToken(verdict.properties[0].token as string);
    const mem = runInline(config, { tape }).mem;
    expect(evaluate(machineFor(config), mem, "P1")).toEqual([v]);
    expect(mem.cpuWord(v?.cpu as number, C.depth)).toBeGreaterThan(1);
  });
});

describe("linux-optprobe with two sites", () => {
  it("arms a probe per site in the payload's order, waits for one grace period, then writes each jump with its own text_poke_bp, the last registered first", () => {
    const config = resolveConfig("linux-optprobe", "two-pads");
    const spec = machineFor(config);
    expect(spec.refusal).toBeUndefined();
    const w = protocolWords<TextPokeWords>(spec);
    expect(w.batches.map((b) => b.map((s) => s.function))).toEqual([
      ["watchdog_touch"],
      ["vcpu_runstate_account"],
    ]);
    const log = readLog(runInline(config, { tape: [] }).mem);
    const steps: string[] = [];
    for (const r of log) {
      if (r.kind === Ev.Mark && (r.a === Mark.GracePeriodBegin || r.a === Mark.GracePeriodEnd))
        steps.push(Mark[r.a]);
      else if (r.kind === Ev.Store && r.addr === w.syncRound) steps.push("sync");
      else if (r.kind === Ev.CodeWrite) steps.push(codeWrites([r], spec.sites)[0]);
    }
    const poke = (i: number) => [
      `${i}@0`,
      "sync",
      `${i}@1`,
      `${i}@2`,
      `${i}@3`,
      `${i}@4`,
      "sync",
      `${i}@0`,
      "sync",
    ];
    expect(steps).toEqual([
      ...["0@0", "sync", "1@0", "sync"], // register_kprobe -> arch_arm_kprobe, for each probe
      ...["GracePeriodBegin", "GracePeriodEnd"],
      ...poke(1),
      ...poke(0),
    ]);
  });

  it("loads an instruction slot per probe", () => {
    const spec = machineFor(resolveConfig("linux-optprobe", "two-pads"));
    for (const fn of ["vcpu_runstate_account", "watchdog_touch"])
      expect(spec.image.symbol(insnSlotName(fn, 2)).name).toBe(`${INSN_SLOT}.${fn}`);
    expect(insnSlotName("watchdog_touch", 1)).toBe(INSN_SLOT);
  });

  it("holds on both sites, and on a payload whose sites span several old instructions (the real checker)", async () => {
    await expectVerdict("linux-optprobe", "two-pads", { violated: [] });
    await expectVerdict("linux-optprobe", "two-prologues", { violated: [] });
  });
});
