// Linux's jump-optimized kprobes (kernel/kprobes.c, arch/x86/kernel/kprobes/opt.c), the one place
// where Linux writes a 5-byte jump over several old instructions: register_kprobe() arms an int3 over
// the first byte (arch_arm_kprobe: text_poke + text_poke_sync) and optimize_kprobe() marks the probe
// KPROBE_FLAG_OPTIMIZED; later kprobe_optimizer() waits for synchronize_rcu_tasks() ("there is a
// chance that Nth instruction is preempted. In that case, such tasks can return to 2nd-Nth byte of
// jump instruction. This wait is for avoiding it") and only then arch_optimize_kprobes() writes the
// jump with text_poke_bp (int3, sync, tail, sync, first byte, sync).
//
// The #BP handler is Linux's do_int3: smp_text_poke_int3_handler first (while text_poke_bp runs it
// emulates the jump), then kprobe_int3_handler: an int3 at the probe continues on the optimized path
// once the probe is marked optimized (setup_detour_execution), else in the probe's instruction slot,
// a copy of the original first instruction followed by a jump back to the instruction after it
// (arch_copy_kprobe, a boosted probe); an int3 that is gone by the time the handler looks backs up to
// it ("The breakpoint instruction was removed right after we hit it").
//
// The grace period is RCU Tasks': it ends once every other CPU has passed a voluntary quiescent point
// since it began: a base-level point between workload iterations (a voluntary context switch) or the
// idle loop (idle tasks are quiescent). Event handlers pass none, so the wait does not cover an NMI or
// #MC handler that entered the old range after its CPU's last quiescent point: on nmi-path and
// mce-path such a handler is kept out of the range by text_poke_bp's first sync instead (the sync IPI
// is taken only once IF=1, i.e. after every NMI and #MC handler on that CPU has returned), and a
// handler that arrives later finds the int3 and leaves on the optimized path.
//
// A payload of several sites is several probes registered together (register_kprobes() registers an
// array of them in its order: each is armed and queued by optimize_kprobe()), so one kprobe_optimizer
// pass takes them all (the optimizer's work is delayed by OPTIMIZE_DELAY to collect them): one
// synchronize_rcu_tasks() covers every probe, then do_optimize_kprobes() -> arch_optimize_kprobes()
// walks optimizing_list and writes each probe's jump with its own text_poke_bp(), not one batch. As
// optimize_kprobe() adds each probe at the list's head (list_add), the last probe registered is the
// first whose jump is written.
import {
  atomicAdd,
  eq,
  ge,
  load,
  Mark,
  mark,
  type Routine,
  readCode,
  store,
  type WordTable,
  waitUntil,
  writeCode,
} from "../routine.js";
import type { MachineSpec, Protocol, Refusal, RoutineContext, Site } from "../types.js";
import { decode } from "../x86.js";
import {
  allocTextPoke,
  coveredInstructions,
  EVERY_TEXT_POKE_STEP,
  syncEachCpu,
  type TextPokeWords,
  textPokeBatch,
  textPokeInt3Handler,
  textPokeIpiHandler,
} from "./linux-text-poke.js";
import { keepWords, protocolWords } from "./words.js";

/** The kprobe's instruction slot (get_insn_slot), loaded beside the image by arch_prepare_kprobe. */
export const INSN_SLOT = "kprobe_insn_slot";

/**
 * The instruction slot of the probe in `fn`: `kprobe_insn_slot` when the payload has one site, one
 * slot per probe (`kprobe_insn_slot.fn`) when it has several.
 */
export function insnSlotName(fn: string, probes: number): string {
  return probes === 1 ? INSN_SLOT : `${INSN_SLOT}.${fn}`;
}

interface Words extends TextPokeWords {
  /** Per probe, in the payload's order: the kprobe is in kprobe_table (get_kprobe finds it). */
  registered: number[];
  /** Per probe: KPROBE_FLAG_OPTIMIZED */
  optimized: number[];
  /** Per CPU: voluntary quiescent points passed (RCU Tasks' view of the CPU's task). */
  quiescent: number[];
  /** Per CPU: 1 once the CPU runs its idle loop (idle tasks are RCU Tasks quiescent states). */
  idle: number[];
}

/** The old instruction at `site`: its address and length. */
function firstInstruction(spec: MachineSpec, site: Site): [number, number] {
  const [address, length] = coveredInstructions(spec, site)[0];
  return [address, length];
}

/** One word per probe: `name` alone for one probe, `name[fn]` for each of several. */
function allocPerProbe(table: WordTable, name: string, sites: Site[]): number[] {
  if (sites.length === 1) return [table.alloc(name)];
  return sites.map((s) => table.alloc(`${name}[${s.function}]`));
}

/** kprobe_int3_handler() for an int3 at `at`; returns 1 when it claimed it. */
function* kprobeInt3Handler(ctx: RoutineContext, w: Words, at: number): Routine<number> {
  const { spec } = ctx;
  const probe = spec.sites.findIndex((s) => s.address === at); // get_kprobe(addr): the kprobe_table lookup
  if (probe >= 0 && (yield load(w.registered[probe])) !== 0) {
    // setup_detour_execution() once KPROBE_FLAG_OPTIMIZED is set; else the boosted slot
    const site = spec.sites[probe];
    const optimized = (yield load(w.optimized[probe])) !== 0;
    const slot = insnSlotName(site.function, spec.sites.length);
    ctx.frame.rip = spec.image.symbol(optimized ? site.payload : slot).address;
    yield mark(Mark.KprobeHit, ctx.frame.rip);
    return 1;
  }
  // `else if (*addr != INT3_INSN_OPCODE) { regs->ip = (unsigned long)addr; return 1; }`
  if ((yield readCode(at)) === 0xcc) return 0;
  yield mark(Mark.Int3Removed, at);
  ctx.frame.rip = at;
  return 1;
}

/** synchronize_rcu_tasks(): wait until every other CPU has passed a quiescent point since now. */
function* synchronizeRcuTasks(ctx: RoutineContext, w: Words): Routine {
  yield mark(Mark.GracePeriodBegin);
  const since: number[] = [];
  for (let c = 0; c < ctx.cpus; c++) since.push(c === ctx.cpu ? 0 : yield load(w.quiescent[c]));
  for (let c = 0; c < ctx.cpus; c++) {
    if (c !== ctx.cpu) yield waitUntil(ge(w.quiescent[c], since[c] + 1), eq(w.idle[c], 1));
  }
  yield mark(Mark.GracePeriodEnd);
}

/**
 * What the optimizer does; each flag leaves a step out, to show what the step is for (tests build
 * such variants; the registered protocol has every step).
 */
export interface OptprobeSteps {
  /** kprobe_optimizer's synchronize_rcu_tasks() before the jump is written. */
  gracePeriod: boolean;
  /** text_poke_bp's sync between writing the int3 and writing the tail. */
  syncAfterInt3: boolean;
}

/** The optprobe protocol with `steps`, under a name and declared verdicts of its own. */
export function optprobeProtocol(
  p: Pick<Protocol, "name" | "summary" | "expected">,
  steps: OptprobeSteps,
): Protocol {
  return {
    ...p,
    origin:
      "Linux kernel/kprobes.c optimize_kprobe, kprobe_optimizer; arch/x86/kernel/kprobes/opt.c arch_optimize_kprobes; kprobes/core.c kprobe_int3_handler",
    os: "linux",
    setup(spec: MachineSpec, table: WordTable): Refusal | undefined {
      const cpus = spec.config.hardware.cpus;
      // arch_optimize_kprobes(): one text_poke_bp() per probe, in optimizing_list's order (newest first)
      const batches = [...spec.sites].reverse().map((site) => [site]);
      keepWords(spec, {
        ...allocTextPoke(spec, table, batches),
        registered: allocPerProbe(table, "kprobe_table.registered", spec.sites),
        optimized: allocPerProbe(table, "kprobe.flags.OPTIMIZED", spec.sites),
        quiescent: table.allocPerCpu("rcu_tasks.quiescent", cpus),
        idle: table.allocPerCpu("rcu_tasks.idle", cpus),
      });
      for (const site of spec.sites) {
        const [address, length] = firstInstruction(spec, site);
        const d = decode(spec.image.read(address, length), length);
        // prepare_emulation() emulates branches instead of running a copy; not modelled here
        if (d.flow !== 0)
          return { reason: `${site.target}: its first instruction is a branch, which kprobes emulates` };
      }
      return undefined;
    },
    code(image, _first, sites) {
      // arch_prepare_kprobe -> arch_copy_kprobe, for each probe: the original instruction, then `jmp`
      // back after it
      return sites.map((site) => {
        const fn = image.functionAt(site);
        const starts = fn ? image.boundaries(fn.name) : [];
        const next = starts.find((a) => a > site) ?? (fn ? fn.address + fn.size : site + 1);
        const insn = Array.from(image.read(site, next - site));
        return {
          name: insnSlotName(fn?.name ?? String(site), sites.length),
          size: insn.length + 5,
          bytes(at: number) {
            const rel = (next - (at + insn.length + 5)) | 0;
            return [...insn, 0xe9, rel & 0xff, (rel >>> 8) & 0xff, (rel >>> 16) & 0xff, (rel >>> 24) & 0xff];
          },
        };
      });
    },
    *master(ctx: RoutineContext) {
      const w = protocolWords<Words>(ctx.spec);
      // register_kprobes(): register_kprobe() for each probe of the array, in its order
      for (const [probe, site] of ctx.spec.sites.entries()) {
        // register_kprobe(): the prepared probe goes into kprobe_table, then arm_kprobe()
        yield store(w.registered[probe], 1);
        yield writeCode(site.address, [0xcc]); // arch_arm_kprobe(): text_poke(p->addr, &int3, 1)
        yield* syncEachCpu(ctx, w); // text_poke_sync()
        // try_to_optimize_kprobe() -> optimize_kprobe(): op->kp.flags |= KPROBE_FLAG_OPTIMIZED
        yield store(w.optimized[probe], 1);
      }
      // kprobe_optimizer(), Step 2: wait for a quiescence period; Step 3: do_optimize_kprobes()
      if (steps.gracePeriod) yield* synchronizeRcuTasks(ctx, w);
      // arch_optimize_kprobes(): text_poke_bp(op->kp.addr, insn_buff, JMP32_INSN_SIZE, NULL) per probe
      for (let i = 0; i < w.batches.length; i++)
        yield* textPokeBatch(ctx, w, i, { ...EVERY_TEXT_POKE_STEP, syncAfterInt3: steps.syncAfterInt3 });
    },
    *poll(ctx: RoutineContext) {
      // Back in the scheduler between work items: a voluntary context switch, an RCU Tasks quiescent state
      yield atomicAdd(protocolWords<Words>(ctx.spec).quiescent[ctx.cpu], 1);
    },
    *enterIdle(ctx: RoutineContext) {
      yield store(protocolWords<Words>(ctx.spec).idle[ctx.cpu], 1);
    },
    *bpHandler(ctx: RoutineContext): Routine<number> {
      const w = protocolWords<Words>(ctx.spec);
      if (!ctx.frame.fromRealCode) return 0;
      // exc_int3 -> do_int3(): smp_text_poke_int3_handler() first, then kprobe_int3_handler()
      if (yield* textPokeInt3Handler(ctx, w)) return 1;
      return yield* kprobeInt3Handler(ctx, w, ctx.frame.rip - 1);
    },
    *ipiHandler(ctx: RoutineContext, vector: number) {
      yield* textPokeIpiHandler(protocolWords<Words>(ctx.spec), vector);
    },
  };
}
export const linuxOptprobe: Protocol = optprobeProtocol(
  {
    name: "linux-optprobe",
    summary:
      "Linux optprobe: int3 over the first byte, sync, wait for an RCU Tasks grace period, then the jump by text_poke_bp",
    expected: {
      "nmi-path": { violated: [] },
      "mce-path": { violated: [], hazards: ["P4"] },
      normal: { violated: [] },
      "entry-pad": { violated: [] },
    },
  },
  { gracePeriod: true, syncAfterInt3: true },
);
