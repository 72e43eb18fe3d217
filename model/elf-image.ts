// Code from a real binary: the functions of an ELF64 x86-64 file as a CodeImage, the call graph from
// given roots (direct calls and jumps followed; indirect sites flagged by `symbol+offset`), the
// address-taken functions that over-approximate indirect targets, and the machine image of only the
// functions a scenario reaches, at their real relative layout.

import {
  type ElfFile,
  type ElfSection,
  type ElfSymbol,
  hex64,
  Rebase,
  readElf,
  SHF_ALLOC,
  SHF_EXECINSTR,
  SHN_ABS,
  SHN_UNDEF,
  SHT_NOBITS,
} from "./elf.js";
import {
  type BranchSite,
  CODE_BASE,
  CodeImage,
  type DataSymbol,
  indirectStep,
  MAX_CODE_SPAN,
  noAddressTaken,
  type Reachability,
  type SymbolInfo,
  segmentsOf,
} from "./image.js";
import { STACK_BASE, UNKNOWN_VALUE } from "./memory.js";
import { beat } from "./progress.js";
import { operandAddresses } from "./x86.js";

/** A function of the ELF: a FUNC symbol, or a NOTYPE label of an executable section outside any FUNC. */
export interface ElfFunction {
  /** Unique: a name that several local functions share is written `name:0xADDRESS` for all but a global one. */
  name: string;
  /** The symbol's own name. */
  symbol: string;
  address: bigint;
  size: number;
  global: boolean;
}

/**
 * Retpoline thunks (Xen arch/x86/indirect-thunk.S, Linux arch/x86/lib/retpoline.S): `call
 * __x86_indirect_thunk_rax` is an indirect call through %rax, not a call of a leaf function.
 */
export const INDIRECT_THUNK = /^__x86_indirect_(?:call_|jump_)?thunk_(\w+)$/;
/**
 * Return thunks (Xen arch/x86/indirect-thunk.S __x86_return_thunk, Linux arch/x86/lib/retpoline.S
 * and its SRSO/retbleed variants): `jmp __x86_return_thunk` is a `ret`.
 */
export const RETURN_THUNK =
  /^(?:__x86_return_thunk|retbleed_return_thunk|srso_return_thunk|srso_alias_return_thunk)$/;

/** The ENDBR64 instruction (SDM Vol. 1 §18.3 CET indirect branch tracking): f3 0f 1e fa. */
const ENDBR64 = [0xf3, 0x0f, 0x1e, 0xfa];

/** The most address space the analysis image may span (all executable sections, rebased). */
export const MAX_ANALYSIS_SPAN = 256 * 1024 * 1024;

/** An indirect call or jump met on the way, by `symbol+offset`. */
export interface IndirectSite {
  site: string;
  address: bigint;
  kind: "call" | "jump";
  /** How it takes its target: a retpoline thunk (with the register), a pointer in memory, a register. */
  via:
    | { k: "thunk"; thunk: string; register: string }
    | { k: "pointer"; pointer: string; address: bigint }
    | { k: "register" };
  /** Targets the user gave for the site (or its pointer); empty when the site is not followed. */
  targets: string[];
}

export interface ElfCallGraph {
  roots: string[];
  /** Every function reached, with the path that reaches it first (breadth first), in discovery order. */
  functions: Map<string, string[]>;
  /** Indirect sites in reached functions, in discovery order. */
  indirect: IndirectSite[];
  /** How many `jmp __x86_return_thunk` (returns) the reached functions contain. */
  returnThunkJumps: number;
  /**
   * Direct branch targets that lie in no function (by `symbol+offset` of the branch, and the target),
   * with the undefined symbol a relocatable object's branch was linked to, if any.
   */
  outside: Array<{ site: string; target: bigint; external?: string }>;
  /** Indirect sites with no target given: the graph is then a lower bound. */
  notFollowed: number;
  /** With `fallThrough`: code reached outside every function, by its address, with its path. */
  code: Map<string, string[]>;
  /**
   * How a function (or code) was first reached when not by a direct branch or a given target: through
   * an indirect site followed to every address-taken function, or by running on past the end of the
   * code before it (`fallThrough`).
   */
  arrivals: Map<string, Arrival>;
  /** With `fallThrough`: control flow that leaves the file's code, which no graph can follow. */
  unknown: string[];
}

export type Arrival =
  | { k: "indirect"; site: string; kind: "call" | "jump" }
  | { k: "falls-through"; from: string };

export interface CallGraphOptions {
  /**
   * Targets of indirect sites: the key is a site's `symbol+offset` or a pointer's data symbol
   * (`mce_callbacks`, `hvm_funcs+0xf8`), the value the functions it may call.
   */
  targets?: ReadonlyMap<string, readonly string[]>;
  /** Follow every indirect site without given targets to every address-taken function. */
  overApproximate?: boolean;
  /**
   * Follow execution that leaves a function other than by a branch to a function too: past its end
   * when its last instruction is not `ret`, `jmp` or `ud2` (assembly labels run into the next; a
   * `call` of a function that does not return is taken to return), and to code a direct branch
   * reaches outside every function (Xen's `ud2` of a BUG() placed after its function's end), up to
   * the next function. What leaves the file's code is listed in `unknown`.
   */
  fallThrough?: boolean;
}

/** The functions of an ELF file in a CodeImage over its executable sections, rebased to CODE_BASE. */
export class ElfProgram {
  readonly elf: ElfFile;
  readonly functions: readonly ElfFunction[];
  readonly rebase: Rebase;
  /** Every executable section's bytes at its rebased address; for analysis, not for a machine. */
  readonly image: CodeImage;
  private readonly byName: ReadonlyMap<string, ElfFunction>;
  private readonly byAddress: ReadonlyMap<bigint, ElfFunction>;
  /** The executable sections. */
  private readonly code: readonly ElfSection[];
  private addressTakenCache?: AddressTaken;

  constructor(elf: ElfFile) {
    this.elf = elf;
    const code = elf.sections.filter(
      (s) => (s.flags & SHF_ALLOC) !== 0n && (s.flags & SHF_EXECINSTR) !== 0n && s.size > 0,
    );
    if (code.length === 0) throw new Error(`${elf.name}: no executable section`);
    this.code = code;
    let lo = code[0].address;
    let hi = lo;
    for (const s of code) {
      if (s.address < lo) lo = s.address;
      if (s.address + BigInt(s.size) > hi) hi = s.address + BigInt(s.size);
    }
    this.rebase = new Rebase(lo, CODE_BASE);
    const span = this.rebase.toModel(hi) - CODE_BASE;
    if (span > MAX_ANALYSIS_SPAN) {
      throw new Error(
        `${elf.name}: the executable sections span ${span} bytes (${hex64(lo)}..${hex64(hi)}), more than ` +
          `the ${MAX_ANALYSIS_SPAN} the call graph reads`,
      );
    }
    this.functions = functionsOf(elf, code);
    if (this.functions.length === 0)
      throw new Error(`${elf.name}: no function symbols in executable sections`);
    this.byName = new Map(this.functions.map((f) => [f.name, f]));
    this.byAddress = new Map(this.functions.map((f) => [f.address, f]));
    const bytes = new Uint8Array(span).fill(0xcc);
    for (const s of code) {
      if (s.type !== SHT_NOBITS) bytes.set(elf.sectionBytes(s), this.rebase.toModel(s.address) - CODE_BASE);
    }
    this.image = CodeImage.fromBytes(
      bytes,
      this.functions.map((f) => this.symbolInfo(f)),
      [],
      MAX_ANALYSIS_SPAN,
    );
  }

  private symbolInfo(f: ElfFunction): SymbolInfo {
    return { name: f.name, address: this.rebase.toModel(f.address), size: f.size, payload: false };
  }

  /** The function named `name`; an unknown name is an error that suggests near ones. */
  function(name: string): ElfFunction {
    const f = this.byName.get(name);
    if (f) return f;
    const near = this.functions
      .filter((g) => g.symbol === name || g.name.includes(name))
      .slice(0, 8)
      .map((g) => g.name);
    const data = this.elf.symbols.find((s) => s.name === name && s.type === "object");
    throw new Error(
      `${this.elf.name}: unknown function '${name}'` +
        (data ? ` ('${name}' is a data object)` : "") +
        (near.length > 0 ? ` (similar: ${near.join(", ")})` : ""),
    );
  }

  /** The exact ELF address of `symbol` or `symbol+offset`, checked against instruction boundaries. */
  resolve(spec: string): bigint {
    const m = /^([^+\s]+)(?:\+.*)?$/.exec(spec.trim());
    if (m) this.function(m[1]);
    try {
      return this.rebase.toElf(this.image.resolve(spec));
    } catch (e) {
      throw new Error(`${this.elf.name}: ${(e as Error).message}`);
    }
  }

  /** `name+0xoff` of an exact ELF address, by the function holding it. */
  symbolize(address: bigint): string {
    const model = address - this.rebase.delta;
    if (model < BigInt(CODE_BASE) || model >= BigInt(this.image.end)) {
      return this.dataSymbolize(address) ?? hex64(address);
    }
    const name = this.image.symbolize(Number(model));
    return name.startsWith("0x") ? hex64(address) : name;
  }

  /** `object+0xoff` by the data object (or any named symbol) holding an address, if one does. */
  dataSymbolize(address: bigint): string | undefined {
    let best: ElfSymbol | undefined;
    for (const s of this.elf.symbols) {
      if (s.section === SHN_UNDEF || s.section === SHN_ABS || s.name === "") continue;
      if (s.type !== "object" && s.type !== "notype" && s.type !== "func") continue;
      if (s.value > address) continue;
      const inside = address < s.value + BigInt(Math.max(1, s.size));
      if (!inside && !(s.size === 0 && s.value === address)) continue;
      if (!best || s.value > best.value || (s.value === best.value && s.type === "object")) best = s;
    }
    if (!best) return undefined;
    const off = address - best.value;
    return off === 0n ? best.name : `${best.name}+0x${off.toString(16)}`;
  }

  /** The ELF address of a data symbol spec `name` or `name+off`, if it names a data symbol. */
  private dataAddress(spec: string): bigint | undefined {
    const m = /^([^+\s]+)(?:\+(0x[0-9a-fA-F]+|\d+))?$/.exec(spec.trim());
    if (!m) return undefined;
    const s = this.elf.symbols.find((x) => x.name === m[1] && x.type === "object" && x.section !== SHN_UNDEF);
    if (!s) return undefined;
    const off = m[2] ? BigInt(m[2]) : 0n;
    if (off >= BigInt(Math.max(8, s.size))) {
      throw new Error(
        `${this.elf.name}: '${spec}': offset ${off} is past the end of '${s.name}' (${s.size} bytes)`,
      );
    }
    return s.value + off;
  }

  /** The 8-byte value at an ELF address in an allocated section (a function pointer's initial value). */
  readPointer(address: bigint): bigint | undefined {
    const b = this.elf.read(address, 8);
    if (!b) return undefined;
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
  }

  /** The function starting exactly at an ELF address. */
  functionStartingAt(address: bigint): ElfFunction | undefined {
    return this.byAddress.get(address);
  }

  /**
   * The functions reachable from `roots` by direct calls and jumps (retpoline thunks are indirect
   * calls, return thunks returns), and every indirect site on the way.
   */
  callGraph(roots: readonly string[], options: CallGraphOptions = {}): ElfCallGraph {
    if (roots.length === 0)
      throw new Error(`${this.elf.name}: no roots: name at least one function to start from`);
    const byAddress = new Map<bigint, string[]>();
    const bySite = new Map<bigint, string[]>();
    for (const [key, targets] of options.targets ?? []) {
      for (const t of targets) this.function(t);
      if (this.byName.has(key.split("+")[0])) {
        const at = this.resolve(key);
        bySite.set(at, [...(bySite.get(at) ?? []), ...targets]);
        continue;
      }
      const pointer = this.dataAddress(key);
      if (pointer === undefined) {
        throw new Error(
          `${this.elf.name}: target site '${key}' is neither a function's 'symbol+offset' nor a data object`,
        );
      }
      byAddress.set(pointer, [...(byAddress.get(pointer) ?? []), ...targets]);
    }
    const wild = options.overApproximate ? this.addressTaken().functions : [];
    const functions = new Map<string, string[]>();
    const code = new Map<string, string[]>();
    const arrivals = new Map<string, Arrival>();
    const unknown: string[] = [];
    const queue: Array<{ name: string; address: bigint; size: number; fn: boolean }> = [];
    const visit = (name: string, path: string[], arrival?: Arrival) => {
      if (functions.has(name)) return;
      const f = this.function(name);
      functions.set(name, path);
      if (arrival) arrivals.set(name, arrival);
      queue.push({ name, address: f.address, size: f.size, fn: true });
    };
    // Where execution goes on at an address that may lie outside every function (fallThrough only):
    // a function, or the code from there up to the next function or the end of its section.
    const land = (address: bigint, path: string[], arrival: Arrival | undefined, what: () => string) => {
      const model = address - this.rebase.delta;
      const inImage = model >= BigInt(CODE_BASE) && model < BigInt(this.image.end);
      const holder = inImage ? this.image.functionAt(Number(model)) : undefined;
      if (holder) {
        const name = holder.name;
        visit(name, [...path, name], arrival);
        return;
      }
      const section = this.code.find((c) => address >= c.address && address < c.address + BigInt(c.size));
      if (!section) {
        unknown.push(what());
        return;
      }
      const name = hex64(address);
      if (code.has(name)) return;
      const next = this.functions.find((f) => f.address > address);
      const end = section.address + BigInt(section.size);
      const stop = next && next.address < end ? next.address : end;
      code.set(name, [...path, name]);
      if (arrival) arrivals.set(name, arrival);
      queue.push({ name, address, size: Number(stop - address), fn: false });
    };
    for (const r of roots) visit(this.function(r).name, [this.function(r).name]);
    const indirect: IndirectSite[] = [];
    const outside: ElfCallGraph["outside"] = [];
    let returnThunkJumps = 0;
    let notFollowed = 0;
    for (let q = 0; q < queue.length; q++) {
      // Thousands of functions over a whole xen-syms take seconds: the watchdog sees them go by.
      beat();
      const node = queue[q];
      const path = (node.fn ? functions : code).get(node.name) as string[];
      const start = this.rebase.toModel(node.address);
      const { branches, fallsThrough } = this.image.sweep(start, this.image.read(start, node.size));
      for (const b of branches) {
        const at = this.rebase.toElf(b.address);
        const site = this.symbolize(at);
        const kind = b.kind === "call" ? "call" : "jump";
        let via: IndirectSite["via"] | undefined;
        if (b.target === null) via = this.viaOf(b);
        else {
          const callee = this.image.functionAt(b.target);
          if (!callee) {
            const target = this.rebase.toElf(b.target);
            const external = this.elf.symbols.find(
              (x) => x.section === SHN_UNDEF && x.name !== "" && x.value === target,
            );
            outside.push({ site, target, ...(external ? { external: external.name } : {}) });
            if (options.fallThrough) {
              const to = external ? `'${external.name}', which the file does not define` : hex64(target);
              land(target, path, undefined, () => `a ${kind} at ${site} to ${to}, outside the file's code`);
            }
            continue;
          }
          if (RETURN_THUNK.test(callee.name) && b.kind !== "call") {
            returnThunkJumps++;
            continue;
          }
          const thunk = INDIRECT_THUNK.exec(callee.name);
          if (thunk) via = { k: "thunk", thunk: callee.name, register: thunk[1] };
          else {
            if (callee.name !== node.name) visit(callee.name, [...path, callee.name]);
            continue;
          }
        }
        const given = [
          ...(bySite.get(at) ?? []),
          ...(via.k === "pointer" ? (byAddress.get(via.address) ?? []) : []),
        ];
        if (given.length === 0) notFollowed++;
        indirect.push({ site, address: at, kind, via, targets: given });
        if (given.length > 0) for (const t of given) visit(t, [...path, t]);
        else for (const t of wild) visit(t, [...path, t], { k: "indirect", site, kind });
      }
      if (options.fallThrough && fallsThrough) {
        const end = node.address + BigInt(node.size);
        const from = node.fn ? node.name : `the code at ${node.name}`;
        land(end, path, { k: "falls-through", from }, () => `${from} runs on past the end of its section`);
      }
    }
    return {
      roots: roots.map((r) => this.function(r).name),
      functions,
      indirect,
      returnThunkJumps,
      outside,
      notFollowed,
      code,
      arrivals,
      unknown,
    };
  }

  /**
   * What code running from `roots` may reach, for blacklist-callgraph: the call graph over the whole
   * file (`callGraph`), with every indirect site whose targets `targets` does not give followed to
   * every address-taken function, and code that runs on past a function's end or that a branch
   * reaches outside every function followed too. A path names each step that is not a direct branch:
   * `[indirect call at fn+0x12 -> any address-taken function]`, `[falls through]`, and code outside
   * every function by its address. What cannot be followed at all makes the answer unknown.
   */
  reach(roots: readonly string[], targets?: ReadonlyMap<string, readonly string[]>): Reachability {
    const g = this.callGraph(roots, { targets, overApproximate: true, fallThrough: true });
    const render = (path: string[]) =>
      path.flatMap((step, i) => {
        const arrival = i > 0 ? g.arrivals.get(step) : undefined;
        const shown = g.code.has(step) ? `code at ${step}` : step;
        if (arrival?.k === "indirect") return [indirectStep(arrival.kind, arrival.site), shown];
        if (arrival?.k === "falls-through") return ["[falls through]", shown];
        return [shown];
      });
    const paths = new Map<string, string[]>();
    for (const [name, path] of g.functions) paths.set(name, render(path));
    const unknownSites = g.indirect.filter((s) => s.targets.length === 0);
    const unknown = [...g.unknown];
    if (unknownSites.length > 0 && this.addressTaken().functions.length === 0)
      unknown.unshift(noAddressTaken(unknownSites.map((s) => ({ site: s.site, kind: s.kind }))));
    return {
      paths,
      unknownSites: unknownSites.map((s) => s.site),
      unknown,
    };
  }

  private viaOf(b: BranchSite): IndirectSite["via"] {
    const pointer = this.image.pointerAddress(b.address, b.decoded);
    if (pointer === null) return { k: "register" };
    const address = this.rebase.toElf(pointer);
    return { k: "pointer", pointer: this.dataSymbolize(address) ?? hex64(address), address };
  }

  /**
   * The functions whose address is taken, a sound over-approximation of what an indirect call can
   * reach: function addresses stored in allocated data (8-byte words), named by code other than as a
   * direct branch target (`lea fn(%rip)`, `mov $fn`), and, in an IBT build (any function begins with
   * ENDBR64), every function that begins with ENDBR64 (the compiler marks each address-taken one).
   */
  addressTaken(): AddressTaken {
    if (this.addressTakenCache) return this.addressTakenCache;
    const inData = new Set<string>();
    const inCode = new Set<string>();
    const endbr = new Set<string>();
    for (const s of this.elf.sections) {
      if ((s.flags & SHF_ALLOC) === 0n || s.type === SHT_NOBITS || s.size === 0) continue;
      const bytes = this.elf.sectionBytes(s);
      if ((s.flags & SHF_EXECINSTR) !== 0n) {
        for (const a of operandAddresses(bytes, s.address)) {
          const f = this.byAddress.get(a);
          if (f) inCode.add(f.name);
        }
        continue;
      }
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const first = Number((8n - (s.address % 8n)) % 8n);
      for (let o = first; o + 8 <= bytes.length; o += 8) {
        const f = this.byAddress.get(view.getBigUint64(o, true));
        if (f) inData.add(f.name);
      }
    }
    for (const f of this.functions) {
      const b = this.elf.read(f.address, 4);
      if (b && ENDBR64.every((x, i) => b[i] === x)) endbr.add(f.name);
    }
    const all = new Set([...inData, ...inCode, ...endbr]);
    this.addressTakenCache = {
      functions: this.functions.filter((f) => all.has(f.name)).map((f) => f.name),
      inData: inData.size,
      inCode: inCode.size,
      endbr: endbr.size,
    };
    return this.addressTakenCache;
  }

  /**
   * A machine image of the functions reachable from `roots` and `payload` (functions of this file that
   * a patch installs), with the return thunks they jump to, at their real relative layout: one
   * rebase, so every rel32 branch between them is as in the file. Only they are placed (neighbours
   * share a segment, the padding between them int3, as a linker pads; image.segmentsOf), so the
   * image does not grow with the distance between them.
   * Indirect sites through a pointer in memory become data symbols at the pointer's rebased address,
   * holding a given target, or the pointer's value in the file when that is a placed function.
   *
   * A payload object (ET_REL, as a livepatch payload is) is loaded on the next page after the placed
   * functions, its relocations resolved against this file's symbols (Xen common/livepatch_elf.c
   * livepatch_elf_resolve_symbols and arch_livepatch_perform_rela do the same when it is loaded);
   * the functions of this file it calls are placed too. Its functions keep their names, or become
   * `object:name` where this file has a function of that name (the one the payload replaces).
   */
  machineImage(options: MachineImageOptions): CodeImage {
    const payload = options.payload ?? [];
    const object = options.payloadObject;
    // The functions of this file the object refers to (its undefined symbols), read before layout.
    const calledByObject = object
      ? readElf(object.bytes, object.name, { relocate: false })
          .symbols.filter((s) => s.section === SHN_UNDEF && this.byName.has(s.name))
          .map((s) => s.name)
      : [];
    const graph = this.callGraph([...options.roots, ...payload, ...calledByObject], {
      targets: options.targets,
    });
    const placed = new Set(graph.functions.keys());
    for (const f of this.functions)
      if (RETURN_THUNK.test(f.name) && graph.returnThunkJumps > 0) placed.add(f.name);
    const chosen = this.functions.filter((f) => placed.has(f.name));
    const lo = chosen[0].address;
    const last = chosen[chosen.length - 1];
    let hi = last.address + BigInt(last.size);
    const rebase = new Rebase(lo, CODE_BASE);
    const taken = new Set(this.addressTaken().functions);
    const symbols: SymbolInfo[] = chosen.map((f) => ({
      name: f.name,
      address: rebase.toModel(f.address),
      size: f.size,
      payload: payload.some((p) => this.function(p).name === f.name),
      ...(taken.has(f.name) ? { addressTaken: true } : {}),
    }));
    const pieces: Array<{ at: bigint; bytes: Uint8Array }> = chosen.map((f) => ({
      at: f.address,
      bytes: this.elf.read(f.address, f.size) as Uint8Array,
    }));
    if (object) {
      const base = (hi + 0xfffn) & ~0xfffn;
      const loaded = new ElfProgram(
        readElf(object.bytes, object.name, { base, external: (name) => this.symbolAddress(name) }),
      );
      const qualifier = object.name.replace(/^.*\//, "").replace(/\.[^.]*$/, "");
      for (const f of loaded.functions) {
        const name = this.byName.has(f.name) ? `${qualifier}:${f.name}` : f.name;
        symbols.push({ name, address: rebase.toModel(f.address), size: f.size, payload: true });
        pieces.push({ at: f.address, bytes: loaded.elf.read(f.address, f.size) as Uint8Array });
        if (f.address + BigInt(f.size) > hi) hi = f.address + BigInt(f.size);
      }
    }
    const span = rebase.toModel(hi) - CODE_BASE;
    const limit = options.limit ?? DEFAULT_MACHINE_SPAN;
    if (span > limit) {
      const far = symbols.reduce((a, b) => (b.address > a.address ? b : a));
      throw new Error(
        `${this.elf.name}: the ${symbols.length} functions to place span ${span} bytes (${chosen[0].name} at ` +
          `${hex64(lo)} to ${far.name} at ${hex64(rebase.toElf(far.address))}), more than the machine's ${limit}: ` +
          "choose roots whose callees lie nearer each other, or give the indirect sites fewer targets",
      );
    }
    const segments = segmentsOf(pieces.map((p) => ({ address: rebase.toModel(p.at), bytes: p.bytes })));
    const data: DataSymbol[] = [];
    const seen = new Set<bigint>();
    for (const site of graph.indirect) {
      if (site.via.k !== "pointer" || seen.has(site.via.address)) continue;
      seen.add(site.via.address);
      const offset = site.via.address - rebase.delta;
      if (offset < 0n || offset >= BigInt(Math.min(UNKNOWN_VALUE, STACK_BASE))) {
        throw new Error(
          `${this.elf.name}: the pointer ${site.via.pointer} read at ${site.site} lies too far from the code ` +
            "to be placed in the machine",
        );
      }
      const given = site.targets.find((t) => placed.has(t));
      const inFile = this.readPointer(site.via.address);
      const fileTarget = inFile === undefined ? undefined : this.byAddress.get(inFile);
      const target = given ?? (fileTarget && placed.has(fileTarget.name) ? fileTarget.name : undefined);
      data.push({
        name: site.via.pointer,
        address: Number(offset),
        initial: target ? rebase.toModel(this.function(target).address) : 0,
        ...(target ? { initialSymbol: target } : {}),
      });
    }
    return CodeImage.fromSegments(segments, symbols, data);
  }

  /** The address of a defined symbol of this file (a function or data), for a payload's relocations. */
  symbolAddress(name: string): bigint | undefined {
    const f = this.byName.get(name);
    if (f) return f.address;
    const s = this.elf.symbols.find(
      (x) => x.name === name && x.section !== SHN_UNDEF && x.type !== "section" && x.type !== "file",
    );
    return s?.value;
  }
}

export interface AddressTaken {
  /** Names, in address order. */
  functions: string[];
  /** How many were found by each source (a function may be found by several). */
  inData: number;
  inCode: number;
  endbr: number;
}

/**
 * The most a machine image from an ELF may span: what an image may (image.MAX_CODE_SPAN), less a
 * page for the payload loaded after it. Only the placed functions cost memory, not the span.
 */
export const DEFAULT_MACHINE_SPAN = MAX_CODE_SPAN - 0x1000;

export interface MachineImageOptions {
  roots: readonly string[];
  /** Functions of this file that the patch installs. */
  payload?: readonly string[];
  /** A relocatable object (ET_REL) whose functions the patch installs, with a name for errors. */
  payloadObject?: { name: string; bytes: Uint8Array };
  targets?: ReadonlyMap<string, readonly string[]>;
  /** The most bytes the placed functions may span (default DEFAULT_MACHINE_SPAN). */
  limit?: number;
}

/**
 * The functions of an ELF: FUNC symbols with their sizes, and NOTYPE labels of executable sections
 * that lie outside every FUNC (assembly entry points), sized up to the next symbol. Aliases (several
 * names at one address) keep one name: a FUNC over a label, a global over a local, then the first.
 */
function functionsOf(elf: ElfFile, code: ElfSection[]): ElfFunction[] {
  // A symbol counts if its address lies in its executable section (linker-script markers such as
  // Xen's __image_base__ carry a section index but lie outside it).
  const inCode = (s: ElfSymbol) =>
    code.some((c) => c.index === s.section && s.value >= c.address && s.value < c.address + BigInt(c.size));
  const candidates = elf.symbols.filter(
    (s) => (s.type === "func" || s.type === "notype") && s.name !== "" && inCode(s),
  );
  const funcs = candidates.filter((s) => s.type === "func" && s.size > 0);
  funcs.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  const insideFunc = (s: ElfSymbol) => {
    let lo = 0;
    let hi = funcs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const f = funcs[mid];
      if (s.value < f.value) hi = mid - 1;
      else if (s.value >= f.value + BigInt(f.size)) lo = mid + 1;
      else return s.value !== f.value;
    }
    return false;
  };
  const kept = candidates.filter((s) => (s.type === "func" && s.size > 0) || !insideFunc(s));
  const rank = (s: ElfSymbol) =>
    (s.type === "func" ? 0 : 2) + (s.bind === "global" || s.bind === "weak" ? 0 : 1);
  kept.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : rank(a) - rank(b)));
  const unique: ElfSymbol[] = [];
  for (const s of kept)
    if (unique.length === 0 || unique[unique.length - 1].value !== s.value) unique.push(s);
  const out: ElfFunction[] = [];
  for (let i = 0; i < unique.length; i++) {
    const s = unique[i];
    const section = code.find((c) => c.index === s.section) as ElfSection;
    const sectionEnd = section.address + BigInt(section.size);
    const next = i + 1 < unique.length && unique[i + 1].value < sectionEnd ? unique[i + 1].value : sectionEnd;
    const room = Number(next - s.value);
    const size = s.type === "func" && s.size > 0 ? Math.min(s.size, room) : room;
    if (size <= 0) continue;
    out.push({
      name: s.name,
      symbol: s.name,
      address: s.value,
      size,
      global: s.bind === "global" || s.bind === "weak",
    });
  }
  const count = new Map<string, ElfFunction[]>();
  for (const f of out) count.set(f.symbol, [...(count.get(f.symbol) ?? []), f]);
  for (const same of count.values()) {
    if (same.length < 2) continue;
    const globals = same.filter((f) => f.global);
    const keeper = globals.length === 1 ? globals[0] : undefined;
    for (const f of same) if (f !== keeper) f.name = `${f.symbol}:${hex64(f.address)}`;
  }
  return out;
}
