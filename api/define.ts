// defineProtocol and defineScenario: a user's protocol and scenario, checked when they are defined,
// so that a mistake is reported with the name of what is wrong rather than as a failed run later.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { readElf } from "../model/elf.js";
import { ElfProgram } from "../model/elf-image.js";
import { CodeImage, type DataDesc, type FunctionDesc } from "../model/image.js";
import { jmpRel32 } from "../model/machine.js";
import { type Expected, OS_NAMES, type OsName, type Protocol, type Scenario } from "../model/types.js";

/** Names end up in replay tokens (`v1/protocol/scenario/...`): no slashes, no spaces. */
const NAME = /^[A-Za-z0-9][\w.+-]*$/;

/** The routines a protocol may have besides `master` (model/types Protocol). */
const HOOKS = ["setup", "code", "poll", "enterIdle", "nmiCallback", "bpHandler", "ipiHandler"] as const;

/** What defineProtocol takes: a Protocol whose `origin` and `expected` may be left out. */
export type ProtocolDefinition = Omit<Protocol, "origin" | "expected" | "os"> & {
  origin?: string;
  /** Verdicts it should get on scenarios, by scenario name (default: none declared). */
  expected?: Record<string, Expected>;
  /** The OS whose entry code it runs on (default: xen). */
  os?: OsName;
};

/**
 * A protocol, checked: a name fit for replay tokens, a summary, a `master` routine, an OS model the
 * checker has, and functions for every routine given. Derive from a built-in protocol with a spread:
 * `defineProtocol({ ...int3Restartable, name: "mine", summary: "...", *master(ctx) { ... } })`.
 */
export function defineProtocol(definition: ProtocolDefinition): Protocol {
  if (typeof definition !== "object" || definition === null)
    throw new Error(
      `defineProtocol takes an object with name, summary and master, not ${String(definition)}`,
    );
  const name = checkName("protocol", definition.name);
  const what = `protocol '${name}'`;
  if (typeof definition.summary !== "string" || definition.summary === "")
    throw new Error(`${what} has no summary: give it a one-line 'summary' of what it does`);
  if (typeof definition.master !== "function")
    throw new Error(`${what} has no 'master' routine: the generator CPU 0 runs to apply the patch`);
  for (const hook of HOOKS) {
    const value = definition[hook];
    if (value !== undefined && typeof value !== "function")
      throw new Error(`${what}: '${hook}' must be a function (a routine), not ${typeof value}`);
  }
  const os = definition.os ?? "xen";
  if (!OS_NAMES.includes(os))
    throw new Error(`${what}: os must be one of ${OS_NAMES.join(", ")}, not '${os}'`);
  const expected = definition.expected ?? {};
  for (const [scenario, e] of Object.entries(expected)) {
    const ok =
      typeof e === "object" &&
      e !== null &&
      (("refused" in e && e.refused === true) || ("violated" in e && Array.isArray(e.violated)));
    if (!ok)
      throw new Error(
        `${what}: expected['${scenario}'] must be { violated: [...properties] } or { refused: true }`,
      );
  }
  return { ...definition, name, os, origin: definition.origin ?? "user", expected };
}

/** Where a scenario's code comes from: assembly descriptions (or raw bytes), or an ELF file. */
export type ScenarioImage =
  | {
      /** Functions in the assembly dialect of model/image (or `bytes`), laid out in order. */
      functions: FunctionDesc[];
      /** Function pointers real code reads (`call [name]`). */
      data?: DataDesc[];
    }
  | {
      /**
       * An ELF64 x86-64 executable (a path, a file URL such as `new URL("./xen-syms", import.meta.url)`,
       * or its bytes): a hypervisor's xen-syms, a vmlinux.
       */
      elf: string | URL | Uint8Array;
      /** More functions to place besides those the scenario names (and what they reach). */
      roots?: string[];
      /** Targets of indirect call sites or pointers (`symbol+offset` or pointer name -> functions). */
      targets?: Record<string, string[]>;
      /**
       * Functions loaded after the file's code, in the assembly dialect: the payload's new bodies. Their
       * `call`/`jmp` operands may name the file's functions.
       */
      payload?: FunctionDesc[];
    };

/** One site of a payload: where the jump goes, and the new body it jumps to. */
export interface Patch {
  target: string;
  payload: string;
}

/** What defineScenario takes. */
export interface ScenarioDefinition {
  name: string;
  summary?: string;
  image: ScenarioImage;
  /** `symbol` or `symbol+offset` (an instruction boundary) to patch, and the function it jumps to. */
  patch?: Patch;
  /**
   * Instead of `patch`: a payload that replaces several functions, one site each, in the order the
   * protocol applies them (Xen's livepatch_func array). P1 and P6 are judged per site.
   */
  patches?: Patch[];
  /** What every CPU runs between checks for livepatch work: a real function, with its callees. */
  workload: string;
  /** What the OS's NMI handler calls (Xen do_nmi's real work). */
  nmiService: string;
  /** What the #MC handler calls synchronously, in order (needed when mces > 0). */
  mceService?: string[];
  /** The deferred machine-check softirq (Xen mce_softirq), if any. */
  mceSoftirq?: string;
  /** Entry points of NMI and #MC handling, for blacklist-callgraph (default: nmiService and mceService). */
  eventRoots?: string[];
  /** The functions blacklist-annotated refuses (default: none). */
  annotatedBlacklist?: string[];
  /** Workload iterations per CPU besides CPU 0 (default 2). */
  iterations?: number;
  /** External NMIs and machine checks per run (defaults 3 and 0). */
  nmis?: number;
  mces?: number;
}

/**
 * A scenario, checked against its image: every function it names exists (and is no payload where
 * code must run), the patch site is an instruction boundary of its function with room for the 5-byte
 * jump, and the event budgets are whole numbers. The image is built here, once.
 */
export function defineScenario(definition: ScenarioDefinition): Scenario {
  if (typeof definition !== "object" || definition === null)
    throw new Error(`defineScenario takes an object with name, image, patch, workload and nmiService`);
  const name = checkName("scenario", definition.name);
  const what = `scenario '${name}'`;
  const d = definition;
  if (typeof d.image !== "object" || d.image === null)
    throw new Error(`${what} has no image: give 'image: { functions: [...] }' or 'image: { elf: FILE }'`);
  for (const field of ["workload", "nmiService"] as const) {
    if (typeof d[field] !== "string" || d[field] === "")
      throw new Error(
        `${what} has no '${field}': name the function ${field === "workload" ? "every CPU runs" : "the NMI handler calls"}`,
      );
  }
  if ((d.patch === undefined) === (d.patches === undefined))
    throw new Error(
      `${what} needs ${d.patch === undefined ? "a 'patch'" : "a 'patch' or 'patches', not both"}: give patch: { target: "fn" or "fn+offset", payload: "new_fn" }, or patches: [...] for several functions`,
    );
  const patches = d.patches ?? [d.patch as Patch];
  if (!Array.isArray(patches) || patches.length === 0)
    throw new Error(`${what}: 'patches' must be a non-empty array of { target, payload }`);
  patches.forEach((p, i) => {
    if (typeof p !== "object" || p === null || typeof p.target !== "string" || typeof p.payload !== "string")
      throw new Error(
        `${what}: ${d.patches ? `patches[${i}]` : "patch"} must be { target: "fn" or "fn+offset", payload: "new_fn" }`,
      );
  });
  const nmis = count(what, "nmis", d.nmis ?? 3);
  const mces = count(what, "mces", d.mces ?? 0);
  const iterations = count(what, "iterations", d.iterations ?? 2, 1000);
  const mceService = d.mceService ?? [];
  if (!Array.isArray(mceService)) throw new Error(`${what}: 'mceService' must be an array of function names`);
  if (mces > 0 && mceService.length === 0)
    throw new Error(`${what} has mces: ${mces} but no 'mceService': name what the #MC handler calls`);

  let image: CodeImage;
  let functions: FunctionDesc[] = [];
  let data: DataDesc[] | undefined;
  try {
    if ("functions" in d.image) {
      if (!Array.isArray(d.image.functions) || d.image.functions.length === 0)
        throw new Error("image.functions must be a non-empty array of { name, code } or { name, bytes }");
      functions = d.image.functions;
      data = d.image.data;
      image = CodeImage.build(functions, data ?? []);
    } else if ("elf" in d.image) {
      image = elfImage(d, mceService, patches);
    } else {
      throw new Error("its image must have 'functions' (assembly) or 'elf' (a file)");
    }
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }

  const fn = (field: string, symbol: string | undefined, runs = true) => {
    if (symbol === undefined) return;
    const s = image.symbols.get(symbol);
    if (!s)
      throw new Error(
        `${what}: ${field} '${symbol}' is not a function of its image (its functions: ${[...image.symbols.keys()].join(", ")})`,
      );
    if (runs && s.payload)
      throw new Error(`${what}: ${field} '${symbol}' is a payload function, not running code`);
  };
  fn("workload", d.workload);
  fn("nmiService", d.nmiService);
  for (const m of mceService) fn("mceService", m);
  fn("mceSoftirq", d.mceSoftirq);
  const eventRoots = d.eventRoots ?? [d.nmiService, ...mceService];
  for (const r of eventRoots) fn("eventRoots", r);
  const annotatedBlacklist = d.annotatedBlacklist ?? [];
  for (const b of annotatedBlacklist) fn("annotatedBlacklist", b, false);
  const patched = new Map<string, string>();
  patches.forEach((p, i) => {
    const field = d.patches ? `patches[${i}]` : "patch";
    fn(`${field}.payload`, p.payload, false);
    let site: number;
    try {
      site = image.resolve(p.target);
    } catch (e) {
      throw new Error(`${what}: ${field}.target: ${(e as Error).message}`);
    }
    const holder = image.functionAt(site);
    const jump = jmpRel32(site, image.symbol(p.payload).address).length;
    if (!holder || site + jump > holder.address + holder.size)
      throw new Error(
        `${what}: ${field}.target '${p.target}' leaves no room for the ${jump}-byte jump: '${holder?.name}' is ${holder?.size} bytes and the site is at +${site - (holder?.address ?? site)}`,
      );
    if (holder.payload) throw new Error(`${what}: ${field}.target '${p.target}' is in a payload function`);
    const twice = patched.get(holder.name);
    if (twice)
      throw new Error(
        `${what}: ${field}.target '${p.target}' is in '${holder.name}', which ${twice} patches already: a payload replaces each function once`,
      );
    patched.set(holder.name, field);
  });
  return {
    name,
    summary: d.summary ?? patches.map((p) => `${p.target} patched to ${p.payload}`).join(", "),
    functions,
    ...(data ? { data } : {}),
    ...("elf" in d.image ? { image } : {}),
    patch: { target: patches[0].target, payload: patches[0].payload },
    ...(d.patches ? { patches: patches.map((p) => ({ target: p.target, payload: p.payload })) } : {}),
    nmiService: d.nmiService,
    mceService,
    ...(d.mceSoftirq ? { mceSoftirq: d.mceSoftirq } : {}),
    workload: d.workload,
    eventRoots,
    annotatedBlacklist,
    iterations,
    nmis,
    mces,
  };
}

/** The machine image of an ELF scenario: the functions it names and what they reach, then the payload. */
function elfImage(d: ScenarioDefinition, mceService: string[], patches: Patch[]): CodeImage {
  const spec = d.image as Extract<ScenarioImage, { elf: unknown }>;
  const path = spec.elf instanceof URL ? fileURLToPath(spec.elf) : spec.elf;
  const file = typeof path === "string" ? path : "the ELF bytes";
  let bytes: Uint8Array;
  try {
    bytes = typeof path === "string" ? new Uint8Array(readFileSync(path)) : path;
  } catch (e) {
    throw new Error(
      `cannot read the ELF file '${file}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  const program = new ElfProgram(readElf(bytes, file));
  const payload = spec.payload ?? [];
  const added = new Set(payload.map((f) => f.name));
  const inFile = (s: string | undefined): s is string => s !== undefined && !added.has(s);
  const targets = patches.map((p) => /^[^+\s]+/.exec(p.target)?.[0]);
  const roots = [
    d.workload,
    d.nmiService,
    ...mceService,
    d.mceSoftirq,
    ...targets,
    ...(spec.roots ?? []),
  ].filter(inFile);
  for (const r of roots) program.function(r); // an unknown name is reported with similar ones
  const filePayload = patches.map((p) => p.payload).filter(inFile);
  const image = program.machineImage({
    roots: [...new Set(roots)],
    payload: filePayload,
    targets: spec.targets ? new Map(Object.entries(spec.targets)) : undefined,
  });
  return image.withFunctions(payload.map((f) => ({ ...f, payload: true })));
}

function checkName(kind: string, name: unknown): string {
  if (typeof name !== "string" || !NAME.test(name))
    throw new Error(
      `a ${kind} needs a 'name' of letters, digits, '.', '_', '+' or '-' (it is part of replay tokens), not ${JSON.stringify(name)}`,
    );
  return name;
}

function count(what: string, field: string, value: unknown, max = 16): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > max)
    throw new Error(`${what}: '${field}' must be a whole number from 0 to ${max}, not ${String(value)}`);
  return value;
}
