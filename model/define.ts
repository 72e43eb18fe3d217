// defineProtocol and defineScenario: a user's protocol and scenario, checked when they are defined,
// so that a mistake is reported with the name of what is wrong rather than as a failed run later.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { readElf } from "./elf.js";
import { DEFAULT_MACHINE_SPAN, ElfProgram } from "./elf-image.js";
import { CODE_BASE, CodeImage, type DataDesc, type FunctionDesc, type Reachability } from "./image.js";
import { jmpRel32 } from "./machine.js";
import { type Expected, OS_NAMES, type OsName, type Protocol, type Scenario } from "./types.js";

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

/** Where a scenario's code comes from: assembly descriptions, raw bytes at an address, or an ELF file. */
export type ScenarioImage =
  | {
      /** Functions in the assembly dialect of model/image (or `bytes`), laid out in order. */
      functions: FunctionDesc[];
      /** Function pointers real code reads (`call [name]`). */
      data?: DataDesc[];
    }
  | {
      /**
       * Machine code as it lies in memory from `address` on: its bytes, or a hex string ("55 48 89 e5",
       * whitespace ignored). Decoded with the same real-code model as an ELF's functions.
       */
      bytes: Uint8Array | string;
      /** Where the first byte lies (exact: a bigint for 0xffff82d0... addresses). */
      address: number | bigint;
      /** The functions in the bytes, each at an `offset` from the first byte or an `address`. */
      symbols: RawSymbol[];
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
       * The payload's new bodies: functions in the assembly dialect, loaded after the file's code (their
       * `call`/`jmp` operands may name the file's functions), or a relocatable object (ET_REL, what a
       * Xen livepatch payload is) whose undefined symbols resolve against the file's.
       */
      payload?: FunctionDesc[] | PayloadObject;
    };

/** A function of a raw-bytes image: where it starts (`offset` into the bytes, or `address`) and its size. */
export interface RawSymbol {
  name: string;
  offset?: number;
  address?: number | bigint;
  size: number;
}

/**
 * A relocatable object (ET_REL) holding the payload's functions, as `xen-livepatch` loads one: placed
 * on the page after the image's functions and linked against them (Xen common/livepatch_elf.c
 * livepatch_elf_resolve_symbols, arch/x86/livepatch.c arch_livepatch_perform_rela). A function of the
 * object whose name the image also has is named `object:name` (`fix:send_event` for fix.o).
 */
export interface PayloadObject {
  elf: string | URL | Uint8Array;
}

/**
 * One site of a payload: where the jump goes, and the new body it jumps to. Without `payload`: the
 * payload object's function of the same name as the patched one (Xen pairs a livepatch_func with the
 * new function by name), or, with no object, a copy of the patched function from the site on,
 * `livepatch.<function>`, moved to the payload's place (the patch then changes no behaviour: what is
 * checked is the patching itself).
 */
export interface Patch {
  target: string;
  payload?: string;
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
    if (
      typeof p !== "object" ||
      p === null ||
      typeof p.target !== "string" ||
      (p.payload !== undefined && typeof p.payload !== "string")
    )
      throw new Error(
        `${what}: ${d.patches ? `patches[${i}]` : "patch"} must be { target: "fn" or "fn+offset", payload: "new_fn" } (payload may be left out)`,
      );
  });
  const nmis = count(what, "nmis", d.nmis ?? 3);
  const mces = count(what, "mces", d.mces ?? 0);
  const iterations = count(what, "iterations", d.iterations ?? 2, 1000);
  const mceService = d.mceService ?? [];
  if (!Array.isArray(mceService)) throw new Error(`${what}: 'mceService' must be an array of function names`);
  if (mces > 0 && mceService.length === 0)
    throw new Error(`${what} has mces: ${mces} but no 'mceService': name what the #MC handler calls`);

  const field = (i: number) => (d.patches ? `patches[${i}]` : "patch");
  let image: CodeImage;
  let reachability: Scenario["reachability"];
  let functions: FunctionDesc[] = [];
  let data: DataDesc[] | undefined;
  try {
    if ("functions" in d.image) {
      if (!Array.isArray(d.image.functions) || d.image.functions.length === 0)
        throw new Error("image.functions must be a non-empty array of { name, code } or { name, bytes }");
      functions = d.image.functions;
      data = d.image.data;
      image = CodeImage.build(functions, data ?? []);
    } else if ("bytes" in d.image) {
      image = rawImage(d.image);
    } else if ("elf" in d.image) {
      ({ image, reachability } = elfImage(d, mceService, patches));
    } else {
      throw new Error("its image must have 'functions' (assembly), 'bytes' (machine code) or 'elf' (a file)");
    }
  } catch (e) {
    throw new Error(`${what}: ${(e as Error).message}`);
  }

  // Sites first: a payload left out is chosen by the function the site is in.
  const sites = patches.map((p, i) => {
    let address: number;
    try {
      address = image.resolve(p.target);
    } catch (e) {
      throw new Error(`${what}: ${field(i)}.target: ${(e as Error).message}`);
    }
    const holder = image.functionAt(address);
    if (!holder) throw new Error(`${what}: ${field(i)}.target '${p.target}' is in no function`);
    return { address, holder };
  });
  const copies: FunctionDesc[] = [];
  const resolved: Array<{ target: string; payload: string }> = patches.map((p, i) => {
    if (p.payload !== undefined) return { target: p.target, payload: p.payload };
    const { address, holder } = sites[i];
    const object = payloadObjectOf(d.image);
    if (object) {
      // machineImage names an object's function `object:name` when the image has one of that name.
      const own = [...image.symbols.values()].find((s) => s.payload && s.name.endsWith(`:${holder.name}`));
      if (!own)
        throw new Error(
          `${what}: ${field(i)} has no payload, and the payload object defines no '${holder.name}' to replace '${p.target}' with: name the payload function (payload: "...")`,
        );
      return { target: p.target, payload: own.name };
    }
    const name = `livepatch.${holder.name}`;
    if (image.symbols.has(name) || copies.some((c) => c.name === name))
      throw new Error(
        `${what}: ${field(i)} has no payload, and '${name}', the copy it would get, is taken: name the payload function`,
      );
    copies.push({
      name,
      bytes: Array.from(image.functionBytes(holder.name).subarray(address - holder.address)),
      encodedAt: address,
      payload: true,
    });
    return { target: p.target, payload: name };
  });
  if (copies.length > 0) {
    try {
      image = image.withFunctions(copies);
    } catch (e) {
      throw new Error(`${what}: the copy of a patched function as its payload: ${(e as Error).message}`);
    }
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
  resolved.forEach((p, i) => {
    fn(`${field(i)}.payload`, p.payload, false);
    const { address: site, holder } = sites[i];
    const jump = jmpRel32(site, image.symbol(p.payload).address).length;
    if (site + jump > holder.address + holder.size)
      throw new Error(
        `${what}: ${field(i)}.target '${p.target}' leaves no room for the ${jump}-byte jump: '${holder.name}' is ${holder.size} bytes and the site is at +${site - holder.address}`,
      );
    if (holder.payload) throw new Error(`${what}: ${field(i)}.target '${p.target}' is in a payload function`);
    const twice = patched.get(holder.name);
    if (twice)
      throw new Error(
        `${what}: ${field(i)}.target '${p.target}' is in '${holder.name}', which ${twice} patches already: a payload replaces each function once`,
      );
    patched.set(holder.name, field(i));
  });
  // An assembly image without copies is rebuilt from its descriptions where the machine is built.
  const prebuilt = !("functions" in d.image) || copies.length > 0;
  return {
    name,
    summary: d.summary ?? resolved.map((p) => `${p.target} patched to ${p.payload}`).join(", "),
    functions,
    ...(data ? { data } : {}),
    ...(prebuilt ? { image } : {}),
    patch: resolved[0],
    ...(d.patches ? { patches: resolved } : {}),
    nmiService: d.nmiService,
    mceService,
    ...(d.mceSoftirq ? { mceSoftirq: d.mceSoftirq } : {}),
    workload: d.workload,
    eventRoots,
    ...(reachability ? { reachability } : {}),
    annotatedBlacklist,
    iterations,
    nmis,
    mces,
  };
}

/** The payload object of an ELF image, if it has one. */
function payloadObjectOf(image: ScenarioImage): PayloadObject | undefined {
  if (!("elf" in image) || image.payload === undefined || Array.isArray(image.payload)) return undefined;
  return image.payload;
}

/** A file's bytes, from a path, a file URL or the bytes themselves; `what` names it in errors. */
function fileBytes(source: string | URL | Uint8Array, what: string): { name: string; bytes: Uint8Array } {
  if (source instanceof Uint8Array) return { name: what, bytes: source };
  const path = source instanceof URL ? fileURLToPath(source) : source;
  if (typeof path !== "string")
    throw new Error(`${what} must be a path, a file URL or a Uint8Array, not ${typeof source}`);
  try {
    return { name: path, bytes: new Uint8Array(readFileSync(path)) };
  } catch (e) {
    throw new Error(
      `cannot read the ${what} '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

/**
 * The machine image of raw bytes: one rebase that keeps each byte's offset in its 4 KiB page (so
 * rel32 branches between the symbols stay exact), int3 before the first byte, as a linker pads.
 */
function rawImage(spec: Extract<ScenarioImage, { bytes: unknown }>): CodeImage {
  let bytes: Uint8Array;
  if (typeof spec.bytes === "string") {
    const digits = spec.bytes.replace(/\s+/g, "");
    const bad = /[^0-9a-fA-F]/.exec(digits);
    if (bad) throw new Error(`image.bytes: '${bad[0]}' is not a hex digit (give bytes as "55 48 89 e5 ...")`);
    if (digits.length % 2 !== 0)
      throw new Error(`image.bytes: ${digits.length} hex digits, an odd number: every byte needs two`);
    bytes = Uint8Array.from(digits.match(/../g) ?? [], (h) => Number.parseInt(h, 16));
  } else if (spec.bytes instanceof Uint8Array) bytes = spec.bytes;
  else throw new Error("image.bytes must be a Uint8Array or a hex string");
  if (bytes.length === 0) throw new Error("image.bytes is empty: give the machine code of the functions");
  const address = spec.address;
  if (!(typeof address === "bigint" || (typeof address === "number" && Number.isSafeInteger(address))))
    throw new Error(`image.address must be a whole number or a bigint, not ${String(address)}`);
  const base = BigInt(address);
  if (base < 0n || base + BigInt(bytes.length) > 1n << 64n)
    throw new Error(`image.address 0x${base.toString(16)} and ${bytes.length} bytes are not a 64-bit range`);
  const pad = Number(base & 0xfffn);
  if (pad + bytes.length > DEFAULT_MACHINE_SPAN)
    throw new Error(
      `image.bytes: ${bytes.length} bytes, more than the machine's ${DEFAULT_MACHINE_SPAN - pad} from 0x${base.toString(16)}`,
    );
  if (!Array.isArray(spec.symbols) || spec.symbols.length === 0)
    throw new Error("image.symbols must be a non-empty array of { name, offset or address, size }");
  const symbols = spec.symbols.map((s, i) => {
    const at = `image.symbols[${i}]`;
    if (typeof s !== "object" || s === null || typeof s.name !== "string" || s.name === "")
      throw new Error(`${at} must be { name, offset or address, size }`);
    const what = `${at} '${s.name}'`;
    if ((s.offset === undefined) === (s.address === undefined))
      throw new Error(
        `${what} needs an 'offset' into the bytes or an 'address', not ${s.offset === undefined ? "neither" : "both"}`,
      );
    if (s.offset !== undefined && !(Number.isSafeInteger(s.offset) && s.offset >= 0))
      throw new Error(`${what}: offset must be a whole number, not ${String(s.offset)}`);
    if (
      s.address !== undefined &&
      !(typeof s.address === "bigint" || (typeof s.address === "number" && Number.isSafeInteger(s.address)))
    )
      throw new Error(`${what}: address must be a whole number or a bigint, not ${String(s.address)}`);
    const offset = s.offset !== undefined ? BigInt(s.offset) : BigInt(s.address as number | bigint) - base;
    if (!(Number.isSafeInteger(s.size) && s.size > 0))
      throw new Error(`${what}: size must be a whole number of bytes, at least 1, not ${String(s.size)}`);
    if (offset < 0n || offset + BigInt(s.size) > BigInt(bytes.length))
      throw new Error(
        `${what} (0x${(base + offset).toString(16)}, ${s.size} bytes) lies outside the bytes (0x${base.toString(16)}..0x${(base + BigInt(bytes.length)).toString(16)})`,
      );
    return { name: s.name, address: CODE_BASE + pad + Number(offset), size: s.size, payload: false };
  });
  const sorted = [...symbols].sort((x, y) => x.address - y.address);
  for (let i = 1; i < sorted.length; i++) {
    const [x, y] = [sorted[i - 1], sorted[i]];
    if (x.address + x.size > y.address)
      throw new Error(
        `image.symbols '${x.name}' (+${x.address - CODE_BASE - pad}, ${x.size} bytes) and '${y.name}' (+${y.address - CODE_BASE - pad}) overlap`,
      );
  }
  const names = new Set<string>();
  for (const s of symbols) {
    if (names.has(s.name)) throw new Error(`image.symbols: '${s.name}' is given twice`);
    names.add(s.name);
  }
  const placed = new Uint8Array(pad + bytes.length).fill(0xcc);
  placed.set(bytes, pad);
  return CodeImage.fromBytes(placed, symbols);
}

/**
 * The machine image of an ELF scenario: the functions it names and what they reach, then the payload;
 * and what the whole file lets code reach, for blacklist-callgraph (worked out when first asked, once
 * per set of roots).
 */
function elfImage(
  d: ScenarioDefinition,
  mceService: string[],
  patches: Patch[],
): { image: CodeImage; reachability: NonNullable<Scenario["reachability"]> } {
  const spec = d.image as Extract<ScenarioImage, { elf: unknown }>;
  const file = fileBytes(spec.elf, "ELF file");
  const program = new ElfProgram(readElf(file.bytes, file.name));
  const object = payloadObjectOf(spec);
  const payload = Array.isArray(spec.payload) ? spec.payload : [];
  if (spec.payload !== undefined && !Array.isArray(spec.payload) && !object?.elf)
    throw new Error("image.payload must be an array of functions or { elf: FILE } (a relocatable object)");
  const inFile = (s: string | undefined): s is string =>
    s !== undefined && program.functions.some((f) => f.name === s);
  const targets = patches.map((p) => /^[^+\s]+/.exec(p.target)?.[0]);
  // blacklist-callgraph walks the call graph from eventRoots, so they are placed with what they reach.
  const named = [
    d.workload,
    d.nmiService,
    ...mceService,
    d.mceSoftirq,
    ...targets,
    ...(spec.roots ?? []),
    ...(d.eventRoots ?? []),
    ...(d.annotatedBlacklist ?? []),
  ];
  const dialect = new Set(payload.map((f) => f.name));
  const roots = named.filter((s): s is string => s !== undefined && !dialect.has(s));
  for (const r of roots) program.function(r); // an unknown name is reported with similar ones
  const indirectTargets = spec.targets ? new Map(Object.entries(spec.targets)) : undefined;
  const image = program.machineImage({
    roots: [...new Set(roots)],
    payload: patches.map((p) => p.payload).filter(inFile),
    ...(object ? { payloadObject: fileBytes(object.elf, "payload object") } : {}),
    targets: indirectTargets,
  });
  const known = new Map<string, Reachability>();
  const reachability = (from: readonly string[]): Reachability => {
    const key = from.join("\n");
    let r = known.get(key);
    if (!r) {
      r = program.reach(from, indirectTargets);
      known.set(key, r);
    }
    return r;
  };
  return { image: image.withFunctions(payload.map((f) => ({ ...f, payload: true }))), reachability };
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
