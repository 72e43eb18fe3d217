// The shapes shared by the machine, the OS models, protocols and scenarios.
import type { CodeImage, DataDesc, FunctionDesc, Reachability } from "./image.js";
import type { ProtocolHook } from "./progress.js";
import type { Routine, WordTable } from "./routine.js";

export type FetchModel = "bytewise" | "stale" | "atomic";
export type OsName = "xen" | "linux" | "fred";
/** How a machine check reaches CPUs: every CPU (Intel without LMCE) or only the one that saw it (LMCE, AMD). */
export type MceDelivery = "broadcast" | "local";
export const FETCH_MODELS: FetchModel[] = ["bytewise", "stale", "atomic"];
export const MCE_DELIVERIES: MceDelivery[] = ["broadcast", "local"];
export const OS_NAMES: OsName[] = ["xen", "linux", "fred"];

/** The hardware options of a run (SPEC §3); part of a run's configuration and of its replay token. */
export interface Hardware {
  cpus: number;
  fetch: FetchModel;
  /** Budgets of external events per run (SPEC §6). */
  nmis: number;
  mces: number;
  stepBound: number;
  /** Overrides the protocol's OS (its NMI entry: xen, linux, fred). */
  os?: OsName;
  /** Machine-check delivery; broadcast when absent (SPEC §10: Intel without LMCE). */
  mceDelivery?: MceDelivery;
  /**
   * SDM Vol. 2 STI: after STI, NMI delivery "may be inhibited" until the next instruction boundary
   * (model-specific). true: an NMI is held for one instruction after STI; absent/false: not held.
   */
  stiShadow?: boolean;
}

/**
 * The whole numbers of Hardware the command accepts, inclusive, in one place for its options and the
 * replay tokens alike. (A machine itself may have a single CPU, as the litmus tests do.)
 */
export const HARDWARE_RANGES = {
  cpus: [2, 16],
  nmis: [0, 16],
  mces: [0, 16],
  stepBound: [100, 1_000_000],
} as const satisfies Record<string, readonly [number, number]>;

export interface RunConfig {
  protocol: string;
  scenario: string;
  hardware: Hardware;
}

/** What a handler routine sees of the CPU it runs on. */
export interface Frame {
  /** Saved RIP of the interrupted real code; a #BP handler may rewrite it (restart, emulate). */
  rip: number;
  /** The event interrupted real code (false: it interrupted a routine step). */
  fromRealCode: boolean;
  /** IF of the interrupted context (what IRET restores); Xen's handle_exception re-enables IRQs when 1. */
  interruptedIf: number;
}

export interface RoutineContext {
  cpu: number;
  cpus: number;
  spec: MachineSpec;
  frame: Frame;
  /** Set by Linux's nested-NMI guard: the NMI handler must run once more before it returns. */
  repeatNmi: boolean;
  /** The protocol routine running in this context, if any (set by model/os/common inHook). */
  hook?: ProtocolHook;
}

/** The words every machine has; protocols allocate theirs in `setup`. */
export interface CommonWords {
  /** Xen's nmi_callback pointer: 0 = the default (do_nmi's real service), else protocol callback. */
  nmiCallback: number;
  /** 1 once the master's patching routine has finished (the others may finish their workload). */
  patchDone: number;
  /** Set while a rendezvous wants the other CPUs to come (Xen's livepatch_work.do_work). */
  rendezvousWanted: number;
  /** The OS's machine-check words (Xen mcheck_cmn_handler's statics). */
  mce: MceWords;
  /** Per CPU: MACHINE_CHECK_SOFTIRQ raised by the #MC handler and not yet run (Xen raise_softirq). */
  mceSoftirqPending: number[];
}

/** Xen xen/arch/x86/cpu/mcheck: mce_logout_lock and mce_trap_bar (barrier.h struct mce_softirq_barrier). */
export interface MceWords {
  logoutLock: number;
  barrierVal: number;
  barrierIngen: number;
  barrierOutgen: number;
}

export interface Site {
  address: number;
  oldBytes: number[];
  newBytes: number[];
  /** Where the patch goes as the scenario spells it (`symbol` or `symbol+offset`), and the payload symbol (jump target). */
  target: string;
  payload: string;
  /**
   * The function that contains the site: what a call runs (the P6 probe) and what the blacklists judge
   * (a site at `fn+4` is in `fn`, seed item c).
   */
  function: string;
}

export interface Refusal {
  reason: string;
}

/**
 * Code a protocol loads beside the image before it patches (Linux kprobes' instruction slot, filled by
 * arch_prepare_kprobe before the probe is armed). Its bytes may depend on where it is loaded.
 */
export interface ProtocolCode {
  name: string;
  size: number;
  bytes(address: number): number[];
}

export interface Protocol {
  name: string;
  summary: string;
  origin: string;
  os: OsName;
  /** Verdicts the protocol is expected to get on each built-in scenario (the main job's self-check). */
  expected: Record<string, Expected>;
  /** Allocates the protocol's data words; may refuse the patch (blacklists). */
  setup?(spec: MachineSpec, words: WordTable): Refusal | undefined;
  /**
   * Out-of-line code the protocol prepares before patching, given the image, the first site's address
   * and every site's address in the payload's order.
   */
  code?(image: CodeImage, site: number, sites: number[]): ProtocolCode[];
  /** Run by CPU 0 (the master) to apply the patch. */
  master(ctx: RoutineContext): Routine;
  /** Run by every other CPU when it checks for livepatch work (Xen's check_for_livepatch_work). */
  poll?(ctx: RoutineContext): Routine;
  /** Run once by every other CPU when it has finished its workload and enters its idle loop. */
  enterIdle?(ctx: RoutineContext): Routine;
  /** Xen's nmi_callback while installed: returns 1 when the NMI was consumed. */
  nmiCallback?(ctx: RoutineContext): Routine<number>;
  /** #BP handler hook: returns 1 when the int3 was the protocol's. */
  bpHandler?(ctx: RoutineContext): Routine<number>;
  /** Handler of a fixed IPI vector sent by the protocol. */
  ipiHandler?(ctx: RoutineContext, vector: number): Routine;
}

/**
 * What a protocol declares for a scenario: every property that fails, or a refusal. `hazards` are the
 * properties that fail only through hazards of the hardware or of the OS's entry code (a second #MC,
 * an NMI let in by an #MC handler's IRET), not through the protocol (see properties/invariants). `examples` are
 * tapes (in the replay-token notation) of counterexamples that random search reaches only with a
 * large budget; the checker runs them before its random tapes, as fast-check runs `examples`, so the
 * verdict does not depend on luck. A model change that makes one stop failing changes the verdict.
 */
export type Expected = { violated: string[]; hazards?: string[]; examples?: string[] } | { refused: true };

export interface Scenario {
  name: string;
  summary: string;
  /** The image as assembly descriptions (or raw bytes), laid out from CODE_BASE; ignored with `image`. */
  functions: FunctionDesc[];
  /** A prebuilt image (from an ELF file: defineScenario in api/), used instead of `functions`. */
  image?: CodeImage;
  /** Function pointers and other data symbols real code reads (`call [name]`). */
  data?: DataDesc[];
  /** The patch: `symbol` or `symbol+offset` to patch, and the payload function it jumps to. */
  patch: { target: string; payload: string };
  /**
   * A payload that replaces several functions (Xen's livepatch_func array): every site, in the order
   * the protocol applies them; `patch` is the first. Absent: `patch` is the only site.
   */
  patches?: Array<{ target: string; payload: string }>;
  /** Real code the OS calls from its NMI / #MC handlers and each CPU's workload. */
  nmiService: string;
  /** What the #MC handler calls synchronously, in order (Xen mcheck_cmn_handler: logout, commit). */
  mceService: string[];
  /** Real code of the deferred MACHINE_CHECK_SOFTIRQ (Xen mce_softirq), run at base level afterwards. */
  mceSoftirq?: string;
  workload: string;
  /** Entry points of NMI and #MC handling in the image (roots of the call graph for blacklists). */
  eventRoots: string[];
  /**
   * What code running from some roots may reach in the whole program the image was cut from (an ELF
   * file, of which the image places only what the scenario's functions reach directly): what
   * blacklist-callgraph asks instead of the image's own call graph. Absent: the image is the program.
   */
  reachability?: (roots: readonly string[]) => Reachability;
  /** The hand-written blacklist of seed option 1 (what a developer would annotate). */
  annotatedBlacklist: string[];
  iterations: number;
  nmis: number;
  mces: number;
  /**
   * Functions besides the patch site whose code a routine may write (litmus machines). Fetches from
   * them are scheduling points like fetches from the site.
   */
  writable?: string[];
  /** Replaces the default per-CPU program (workload, patch on CPU 0, probe): litmus tests use it. */
  program?: (ctx: RoutineContext) => Routine;
}

export interface OsModel {
  name: OsName;
  /**
   * What do_int3 does with an int3 nobody claims: Xen returns past it ("Hit embedded breakpoint",
   * xen/arch/x86/traps.c do_int3), Linux dies (arch/x86/kernel/traps.c exc_int3: die("int3")).
   */
  unclaimedInt3Resumes: boolean;
  /** Xen entry.S handle_exception: `sti` before the handler when the interrupted context had IF=1. */
  exceptionEntryEnablesIrqs: boolean;
  /** SDM: int3 through an interrupt gate clears IF (Linux SYSG, Xen set_swint_gate). */
  bpClearsIf: boolean;
  /** FRED: ERETS unblocks NMIs only when it returns from the NMI itself. */
  fred: boolean;
  /** Linux entry_64.S: a nested NMI becomes a repeat of the outer handler, not a clobbered frame. */
  nestedNmiGuard: boolean;
  /** IST stack index for NMI and #MC (-1: no IST). */
  istNmi: number;
  istMce: number;
  nmiHandler(ctx: RoutineContext): Routine;
  mceHandler(ctx: RoutineContext): Routine;
  bpHandler(ctx: RoutineContext): Routine;
  irqHandler(ctx: RoutineContext, vector: number): Routine;
}

export interface MachineSpec {
  config: RunConfig;
  image: CodeImage;
  words: WordTable;
  common: CommonWords;
  sites: Site[];
  /** The data word holding each data symbol of the image, by the symbol's ordinal. */
  dataWords: number[];
  os: OsModel;
  protocol: Protocol;
  scenario: Scenario;
  refusal?: Refusal;
  /**
   * The data words the protocol's setup allocated, by name (int3-restartable's `{ armed, ... }`), kept
   * with keepWords (model/protocols/words): a variant derived from a built-in protocol reads them here.
   */
  protocolWords?: object;
  /** Valid instruction bytes (as cache keys) per address overlapping a site: the P1 oracle. */
  siteOracle: SiteOracle;
  baseRoutine(ctx: RoutineContext): Routine;
}

export interface SiteOracle {
  /** Lowest and highest+1 addresses covered by any site. */
  low: number;
  high: number;
  /** Whether routines may write code at this address (a site, or a function the scenario declares writable). */
  writable(address: number): boolean;
  /** Every address `writable` accepts, as sorted ranges apart from each other (the buffer's write history). */
  writableRanges: ReadonlyArray<{ address: number; length: number }>;
  overlaps(address: number, length: number): boolean;
  /** Whether `bytes` decoded at `address` is an old instruction, a new one, or a boundary int3. */
  valid(address: number, bytes: ArrayLike<number>, length: number): boolean;
  /** What was expected at `address`: the old and new instructions there, as text. */
  expectation(address: number): { old: number[] | null; new: number[] | null };
}
