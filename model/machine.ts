// Builds a machine from a run configuration: the image, the data words, the patch site and its P1
// oracle, the OS model, and each CPU's base routine. Deterministic: every thread that builds the same
// configuration gets the same word indices and the same image.
import { CodeImage } from "./image.js";
import type { MemoryLayout } from "./memory.js";
import { inHook, runMceSoftirq } from "./os/common.js";
import { fred } from "./os/fred.js";
import { linux } from "./os/linux.js";
import { xen } from "./os/xen.js";
import { findProtocol } from "./protocols/index.js";
import { call, eq, load, Mark, mark, ne, type Routine, store, WordTable, waitUntil } from "./routine.js";
import { findScenario } from "./scenarios/index.js";
import type {
  CommonWords,
  Hardware,
  MachineSpec,
  OsModel,
  OsName,
  Protocol,
  ProtocolCode,
  RoutineContext,
  RunConfig,
  Scenario,
  Site,
  SiteOracle,
} from "./types.js";
import { instructionStarts } from "./x86.js";

export const OS_MODELS: Record<OsName, OsModel> = { xen, linux, fred };

export const DEFAULT_HARDWARE: Hardware = { cpus: 4, fetch: "bytewise", nmis: 3, mces: 0, stepBound: 20000 };

/** The jump a livepatch writes: `jmp rel32` (E9) from the site to the payload. */
export function jmpRel32(from: number, to: number): number[] {
  const rel = (to - (from + 5)) | 0;
  return [0xe9, rel & 0xff, (rel >>> 8) & 0xff, (rel >>> 16) & 0xff, (rel >>> 24) & 0xff];
}

/** Builds the machine of a configuration from the protocol and scenario registries. */
export function buildMachine(config: RunConfig): MachineSpec {
  return defineMachine(config, findProtocol(config.protocol), findScenario(config.scenario));
}

/**
 * Builds a machine from protocol and scenario objects (user-defined ones, litmus tests). The
 * configuration's names are used only in reports and tokens.
 */
export function defineMachine(config: RunConfig, protocol: Protocol, scenario: Scenario): MachineSpec {
  const hw = config.hardware;
  if (!Number.isInteger(hw.cpus) || hw.cpus < 1 || hw.cpus > 16) {
    throw new Error(`cpus must be an integer from 1 to 16, not ${hw.cpus}`);
  }
  const image = buildImage(scenario, protocol);
  const words = new WordTable();
  const dataWords = image.data.map((d) => words.alloc(d.name, d.initial));
  const common: CommonWords = {
    nmiCallback: words.alloc("nmi_callback"),
    patchDone: words.alloc("patch_done"),
    rendezvousWanted: words.alloc("livepatch_work.do_work"),
    mce: {
      logoutLock: words.alloc("mce_logout_lock"),
      barrierVal: words.alloc("mce_trap_bar.val"),
      barrierIngen: words.alloc("mce_trap_bar.ingen"),
      barrierOutgen: words.alloc("mce_trap_bar.outgen"),
    },
    mceSoftirqPending: words.allocPerCpu("softirq_pending.MACHINE_CHECK", hw.cpus),
  };
  const sites = (scenario.patches ?? [scenario.patch]).map((patch): Site => {
    const address = image.resolve(patch.target);
    const newBytes = jmpRel32(address, image.symbol(patch.payload).address);
    return {
      address,
      oldBytes: Array.from(image.read(address, newBytes.length)),
      newBytes,
      target: patch.target,
      payload: patch.payload,
      function: image.functionAt(address)?.name ?? patch.target,
    };
  });
  // Xen's livepatch_func: one entry per function (check_patching: a function is patched once).
  sites.forEach((site, i) => {
    const other = sites.findIndex((s, k) => k !== i && s.function === site.function);
    if (other >= 0 && other < i)
      throw new Error(
        `scenario '${scenario.name}': the patches at ${sites[other].target} and ${site.target} are in the same function '${site.function}'; a payload replaces each function once`,
      );
  });
  const os = OS_MODELS[hw.os ?? protocol.os];
  const spec: MachineSpec = {
    config,
    image,
    words,
    common,
    sites,
    dataWords,
    os,
    protocol,
    scenario,
    siteOracle: siteOracle(image, sites, scenario.writable ?? []),
    baseRoutine: scenario.program ?? baseRoutine,
  };
  spec.refusal = protocol.setup?.(spec, words);
  return spec;
}

/**
 * The scenario's image with the protocol's out-of-line code (if any) loaded after it. That code's
 * bytes may depend on its address (a jump back into the patched function), so the image is laid out
 * once with placeholders of the same size, then built with the real bytes at the addresses found.
 */
function buildImage(scenario: Scenario, protocol: Protocol): CodeImage {
  if (scenario.image) return withProtocolCode(scenario.image, scenario, protocol);
  const data = scenario.data ?? [];
  const image = CodeImage.build(scenario.functions, data);
  if (!protocol.code) return image;
  const extra = protocolCode(protocol, image, scenario);
  if (extra.length === 0) return image;
  const placeholders = extra.map((c) => ({ name: c.name, bytes: new Array<number>(c.size).fill(0xcc) }));
  const draft = CodeImage.build([...scenario.functions, ...placeholders], data);
  const loaded = extra.map((c) => {
    const bytes = c.bytes(draft.symbol(c.name).address);
    if (bytes.length !== c.size) {
      throw new Error(
        `protocol '${protocol.name}': code '${c.name}' is ${bytes.length} bytes, not ${c.size}`,
      );
    }
    return { name: c.name, bytes };
  });
  const final = CodeImage.build([...scenario.functions, ...loaded], data);
  for (const c of extra) {
    if (final.symbol(c.name).address !== draft.symbol(c.name).address)
      throw new Error(`protocol '${protocol.name}': code '${c.name}' moved between layouts`);
  }
  return final;
}

/** The protocol's out-of-line code for the scenario's sites (none when it has no `code`). */
function protocolCode(protocol: Protocol, image: CodeImage, scenario: Scenario): ProtocolCode[] {
  if (!protocol.code) return [];
  const sites = (scenario.patches ?? [scenario.patch]).map((p) => image.resolve(p.target));
  return protocol.code(image, sites[0], sites);
}

/** A prebuilt image with the protocol's out-of-line code loaded after its end (see buildImage). */
function withProtocolCode(image: CodeImage, scenario: Scenario, protocol: Protocol): CodeImage {
  const extra = protocolCode(protocol, image, scenario);
  if (extra.length === 0) return image;
  const draft = image.withFunctions(
    extra.map((c) => ({ name: c.name, bytes: new Array<number>(c.size).fill(0xcc) })),
  );
  const loaded = extra.map((c) => {
    const bytes = c.bytes(draft.symbol(c.name).address);
    if (bytes.length !== c.size)
      throw new Error(
        `protocol '${protocol.name}': code '${c.name}' is ${bytes.length} bytes, not ${c.size}`,
      );
    return { name: c.name, bytes };
  });
  return image.withFunctions(loaded);
}

/**
 * Tape values a run with this step bound can hold: one choice per step at most, and a few more for the
 * choices inside a step. A longer tape cannot be a run's, so a replay token with one is refused.
 */
export function tapeCapacity(stepBound: number): number {
  return stepBound + 16;
}

export function layoutFor(spec: MachineSpec): MemoryLayout {
  const hw = spec.config.hardware;
  return {
    cpus: hw.cpus,
    dataWords: Math.max(8, spec.words.names.length),
    code: spec.image.segments
      .filter((g) => g.bytes.length > 0)
      .map((g) => ({ address: g.address, length: g.bytes.length })),
    writable: spec.siteOracle.writableRanges,
    tapeMax: tapeCapacity(hw.stepBound),
    logMax: hw.stepBound * 4 + 64,
    strategyWords: 64,
  };
}

/**
 * What each CPU does: CPU 0 runs its workload, applies the patch (the protocol's master routine), then
 * calls the patched function once more (the P6 probe); every other CPU runs its workload, checking for
 * livepatch work between iterations, then idles until the patch is done, joining any rendezvous.
 */
function* baseRoutine(ctx: RoutineContext): Routine {
  const { spec } = ctx;
  const { protocol, scenario, common, image } = spec;
  const work = image.symbol(scenario.workload).address;
  // A softirq is raised only by an #MC handler: without #MCs there is nothing to look for.
  const softirqs = spec.config.hardware.mces > 0;
  if (ctx.cpu === 0) {
    yield call(work);
    if (softirqs) yield* runMceSoftirq(ctx);
    if (!spec.refusal) {
      yield mark(Mark.PatchBegin);
      yield* inHook(ctx, "master", protocol.master(ctx));
      yield mark(Mark.PatchEnd);
    }
    yield store(common.patchDone, 1);
    // The probe calls each function that contains a site, from its entry (a site at `fn+4` runs
    // after fn's first instructions, as every caller's call does); its marks carry the site's index.
    for (let i = 0; i < spec.sites.length; i++) {
      yield mark(Mark.ProbeBegin, i);
      yield call(image.symbol(spec.sites[i].function).address);
      yield mark(Mark.ProbeEnd, i);
    }
    if (softirqs) yield* runMceSoftirq(ctx);
    return;
  }
  // Between iterations: check_for_livepatch_work, then do_softirq (as on Xen's return to guest).
  for (let i = 0; i < scenario.iterations; i++) {
    yield call(work);
    if (protocol.poll) yield* inHook(ctx, "poll", protocol.poll(ctx));
    if (softirqs) yield* runMceSoftirq(ctx);
  }
  if (protocol.enterIdle) yield* protocol.enterIdle(ctx);
  // Xen's idle loop (idle_loop: check_for_livepatch_work, do_softirq) whenever there is work, until
  // the patch is done.
  for (;;) {
    yield waitUntil(eq(common.patchDone, 1), ne(common.rendezvousWanted, 0));
    const done = (yield load(common.patchDone)) === 1;
    if (!done && protocol.poll) yield* inHook(ctx, "poll", protocol.poll(ctx));
    if (softirqs) yield* runMceSoftirq(ctx);
    if (done) return;
    if (!protocol.poll) yield waitUntil(eq(common.patchDone, 1));
  }
}

/**
 * P1's oracle (SPEC §7): at an address overlapping a site, an instruction is valid when it is the old
 * instruction at an old boundary, the new one at a new boundary, or an int3 at either kind of boundary.
 */
export function siteOracle(image: CodeImage, sites: Site[], writable: string[] = []): SiteOracle {
  const ranges = writable.map((name) => {
    const s = image.symbol(name);
    return [s.address, s.address + s.size] as const;
  });
  const valid = new Map<number, string[]>();
  const expectOld = new Map<number, number[]>();
  const expectNew = new Map<number, number[]>();
  let low = Number.MAX_SAFE_INTEGER;
  let high = 0;
  const keyOf = (b: ArrayLike<number>, n: number) =>
    String.fromCharCode(...Array.from({ length: n }, (_, i) => b[i]));
  for (const site of sites) {
    const fn = image.functionAt(site.address);
    if (!fn) throw new Error(`patch site 0x${site.address.toString(16)} is not inside a function`);
    const end = site.address + site.newBytes.length;
    if (end > fn.address + fn.size)
      throw new Error(`the patch at ${site.target} runs past the end of '${fn.name}'`);
    low = Math.min(low, site.address);
    high = Math.max(high, end);
    const oldFn = image.functionBytes(fn.name);
    const newFn = Uint8Array.from(oldFn);
    newFn.set(site.newBytes, site.address - fn.address);
    for (const [bytes, expect] of [
      [oldFn, expectOld],
      [newFn, expectNew],
    ] as const) {
      // The new code's instructions: the jump, then the old instructions that start past it.
      const starts = instructionStarts(bytes).filter(
        ([off]) => bytes === oldFn || fn.address + off === site.address || fn.address + off >= end,
      );
      for (const [off, len] of starts) {
        const a = fn.address + off;
        if (a + len <= site.address || a >= end) continue;
        const insn = Array.from(bytes.subarray(off, off + len));
        expect.set(a, insn);
        const list = valid.get(a) ?? [];
        list.push(keyOf(insn, len), keyOf([0xcc], 1));
        valid.set(a, list);
      }
    }
  }
  // Several sites (a payload of several functions) leave code between them that is no site: past the
  // one-range test (all a single site needs, on every fetch), each site's own range decides.
  const spans = sites.map((site) => [site.address, site.address + site.newBytes.length] as const);
  const inSite = (address: number, length: number) =>
    spans.length === 1 || spans.some(([a, b]) => address < b && address + length > a);
  // The same addresses as `writable` below, as ranges: the buffer keeps write history for these only.
  const writableRanges: Array<{ address: number; length: number }> = [];
  const pieces = [...spans, ...ranges]
    .map(([a, b]) => [a, b] as [number, number])
    .sort((x, y) => x[0] - y[0]);
  for (const [a, b] of pieces) {
    const last = writableRanges[writableRanges.length - 1];
    if (last && a <= last.address + last.length) last.length = Math.max(last.length, b - last.address);
    else if (b > a) writableRanges.push({ address: a, length: b - a });
  }
  return {
    low,
    high,
    writableRanges,
    overlaps: (address, length) => address < high && address + length > low && inSite(address, length),
    writable: (address) =>
      (address >= low && address < high && inSite(address, 1)) ||
      ranges.some(([a, b]) => address >= a && address < b),
    valid: (address, bytes, length) => valid.get(address)?.includes(keyOf(bytes, length)) ?? false,
    expectation: (address) => ({ old: expectOld.get(address) ?? null, new: expectNew.get(address) ?? null }),
  };
}
