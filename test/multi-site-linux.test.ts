// A payload of several sites on Linux's protocols. linux-text-poke collects them as
// smp_text_poke_batch_add() does and pokes each batch as smp_text_poke_batch_process()
// (text_poke_bp_batch()) does: int3 at every
// site, sync, every tail, sync, every first byte, sync; its #BP handler must find the trapping site
// among all the batch's sites. linux-optprobe registers one probe per site and, after one RCU Tasks
// grace period, writes each probe's jump with its own text_poke_bp() (arch_optimize_kprobes()).
import { beforeAll, describe, expect, it } from "vitest";
import { ContextKind, CrashKind, Ev } from "../dist/model/events.js";
import { INSN_SLOT, insnSlotName } from "../dist/model/protocols/linux-optprobe.js";
import { queueBatches, type TextPokeWords } from "../dist/model/protocols/linux-text-poke.js";
import { protocolWords } from "../dist/model/protocols/words.js";
import { Mark } from "../dist/model/routine.js";
import { resolveConfig } from "../dist/properties/check.js";
import { evaluate, type LogRecord, readLog } from "../dist/properties/invariants.js";
import { runInline } from "../dist/workers/inline.js";
import { machineFor } from "../dist/workers/setup.js";
import { registerLinuxSiteScenarios } from "./helpers/linux-sites.js";

beforeAll(() => {
  registerLinuxSiteScenarios();
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

  it("flushes the batch when a site lies below the previous one (text_poke_addr_ordered): two batches, in the payload's order", () => {
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

  it("finds the site in the batch being poked: a call that traps on the second batch's int3 runs that site's payload", () => {
    const config = resolveConfig("linux-text-poke", "two-pads-descending-trapped", { cpus: 3, nmis: 0 });
    const spec = machineFor(config);
    const mem = runInline(config, { tape: [] }).mem;
    const log = readLog(mem);
    const [touch, account] = spec.sites;
    const crash = log.find((r) => r.kind === Ev.Crash);
    expect(crash ? CrashKind[crash.a] : "none").toBe("none");
    expect(evaluate(spec, mem)).toEqual([]);
    const bp = log.findIndex((r) => r.kind === Ev.BpDeliver && r.cpu === 2);
    expect(bp).toBeGreaterThan(-1);
    expect(log[bp].addr).toBe(account.address);
    // watchdog_touch's batch is done: its jump is in place; the second batch is in text_poke_array
    expect(codeWrites(log.slice(0, bp), spec.sites).filter((x) => x.startsWith("0@"))).toHaveLength(6);
    const w = protocolWords<TextPokeWords>(spec);
    expect(log.slice(0, bp).findLast((r) => r.kind === Ev.Store && r.addr === w.vector)?.a).toBe(1);
    const ran = log.find((r, i) => i > bp && r.cpu === 2 && r.kind === Ev.Exec);
    expect(ran).toMatchObject({ addr: spec.image.symbol(account.payload).address, c: ContextKind.Base });
    // the NMI handler ran watchdog_touch's new jump, no int3
    expect(log.some((r) => r.kind === Ev.BpDeliver && r.cpu === 1)).toBe(false);
    expect(
      log.some(
        (r) => r.kind === Ev.Exec && r.cpu === 1 && r.addr === spec.image.symbol(touch.payload).address,
      ),
    ).toBe(true);
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
});
