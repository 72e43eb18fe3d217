// A minimal ELF64 writer over a DataView, for test data: sections, a symbol table and RELA relocations
// laid out as the ELF gABI describes them (header, section contents, section header table). It writes
// only what model/elf.ts reads; `ident` and `machine` may be set to anything, to write malformed files.

export interface WriterSection {
  name: string;
  type: number;
  flags: bigint;
  address: bigint;
  bytes: Uint8Array;
  align?: number;
}

export interface WriterSymbol {
  name: string;
  value: bigint;
  size: number;
  type: "notype" | "object" | "func" | "section" | "file";
  bind: "local" | "global" | "weak";
  /** A section's name, or "UNDEF" / "ABS". */
  section: string;
}

export interface WriterRelocation {
  /** The section the relocation patches. */
  section: string;
  offset: number;
  type: number;
  symbol: string;
  addend: bigint;
}

export interface ElfDescription {
  type: "rel" | "exec" | "dyn";
  entry?: bigint;
  sections: WriterSection[];
  symbols: WriterSymbol[];
  relocations?: WriterRelocation[];
  /** Leave out .symtab and .strtab (a stripped file). */
  stripped?: boolean;
  /** e_ident[EI_CLASS] (2: ELFCLASS64) and e_machine (62: EM_X86_64), for malformed files. */
  elfClass?: number;
  machine?: number;
}

const SHT = { progbits: 1, symtab: 2, strtab: 3, rela: 4 };
const TYPES = { notype: 0, object: 1, func: 2, section: 3, file: 4 };
const BINDS = { local: 0, global: 1, weak: 2 };

class Strings {
  private readonly parts: number[] = [0];
  private readonly at = new Map<string, number>();
  add(s: string): number {
    if (s === "") return 0;
    const known = this.at.get(s);
    if (known !== undefined) return known;
    const offset = this.parts.length;
    this.parts.push(...new TextEncoder().encode(s), 0);
    this.at.set(s, offset);
    return offset;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export function writeElf(d: ElfDescription): Uint8Array {
  const shstr = new Strings();
  const all: Array<WriterSection & { link?: number; info?: number; entsize?: number }> = [...d.sections];
  const index = (name: string): number => {
    if (name === "UNDEF") return 0;
    if (name === "ABS") return 0xfff1;
    const i = d.sections.findIndex((s) => s.name === name);
    if (i < 0) throw new Error(`no section '${name}'`);
    return i + 1;
  };
  if (!d.stripped) {
    const str = new Strings();
    // gABI: local symbols precede global ones; sh_info is the index of the first non-local.
    const ordered = [...d.symbols].sort((a, b) => Number(a.bind !== "local") - Number(b.bind !== "local"));
    const symtab = new Uint8Array(24 * (ordered.length + 1));
    const v = new DataView(symtab.buffer);
    ordered.forEach((s, k) => {
      const o = 24 * (k + 1);
      v.setUint32(o, str.add(s.name), true);
      symtab[o + 4] = (BINDS[s.bind] << 4) | TYPES[s.type];
      v.setUint16(o + 6, index(s.section), true);
      v.setBigUint64(o + 8, s.value, true);
      v.setBigUint64(o + 16, BigInt(s.size), true);
    });
    const firstGlobal = 1 + ordered.filter((s) => s.bind === "local").length;
    const symtabIndex = all.length + 1;
    all.push({
      name: ".symtab",
      type: SHT.symtab,
      flags: 0n,
      address: 0n,
      bytes: symtab,
      align: 8,
      entsize: 24,
    });
    all[all.length - 1].link = symtabIndex + 1;
    all[all.length - 1].info = firstGlobal;
    all.push({ name: ".strtab", type: SHT.strtab, flags: 0n, address: 0n, bytes: str.bytes(), align: 1 });
    const symbolIndex = (name: string) => {
      const k = ordered.findIndex((s) => s.name === name);
      if (k < 0) throw new Error(`no symbol '${name}'`);
      return k + 1;
    };
    const targets = [...new Set((d.relocations ?? []).map((r) => r.section))];
    for (const target of targets) {
      const rs = (d.relocations ?? []).filter((r) => r.section === target);
      const rela = new Uint8Array(24 * rs.length);
      const rv = new DataView(rela.buffer);
      rs.forEach((r, k) => {
        rv.setBigUint64(24 * k, BigInt(r.offset), true);
        rv.setBigUint64(24 * k + 8, (BigInt(symbolIndex(r.symbol)) << 32n) | BigInt(r.type), true);
        rv.setBigInt64(24 * k + 16, r.addend, true);
      });
      all.push({
        name: `.rela${target}`,
        type: SHT.rela,
        flags: 0n,
        address: 0n,
        bytes: rela,
        align: 8,
        entsize: 24,
        link: symtabIndex,
        info: index(target),
      });
    }
  }
  all.push({
    name: ".shstrtab",
    type: SHT.strtab,
    flags: 0n,
    address: 0n,
    bytes: new Uint8Array(),
    align: 1,
  });
  const names = all.map((s) => shstr.add(s.name));
  all[all.length - 1].bytes = shstr.bytes();

  const offsets: number[] = [];
  let at = 64;
  for (const s of all) {
    const align = Math.max(1, s.align ?? 16);
    at = Math.ceil(at / align) * align;
    offsets.push(at);
    at += s.bytes.length;
  }
  const shoff = Math.ceil(at / 8) * 8;
  const out = new Uint8Array(shoff + 64 * (all.length + 1));
  const v = new DataView(out.buffer);
  out.set([0x7f, 0x45, 0x4c, 0x46, d.elfClass ?? 2, 1, 1, 0]);
  v.setUint16(16, { rel: 1, exec: 2, dyn: 3 }[d.type], true);
  v.setUint16(18, d.machine ?? 62, true);
  v.setUint32(20, 1, true);
  v.setBigUint64(24, d.entry ?? 0n, true);
  v.setBigUint64(40, BigInt(shoff), true);
  v.setUint16(52, 64, true);
  v.setUint16(58, 64, true);
  v.setUint16(60, all.length + 1, true);
  v.setUint16(62, all.length, true);
  all.forEach((s, i) => {
    out.set(s.bytes, offsets[i]);
    const o = shoff + 64 * (i + 1);
    v.setUint32(o, names[i], true);
    v.setUint32(o + 4, s.type, true);
    v.setBigUint64(o + 8, s.flags, true);
    v.setBigUint64(o + 16, s.address, true);
    v.setBigUint64(o + 24, BigInt(offsets[i]), true);
    v.setBigUint64(o + 32, BigInt(s.bytes.length), true);
    v.setUint32(o + 40, s.link ?? 0, true);
    v.setUint32(o + 44, s.info ?? 0, true);
    v.setBigUint64(o + 48, BigInt(s.align ?? 16), true);
    v.setBigUint64(o + 56, BigInt(s.entsize ?? 0), true);
  });
  return out;
}

/**
 * A tiny two-pass assembler for test code: each function is a list of raw bytes and rel32 forms whose
 * targets are symbols (functions or data); every form has a fixed size, so one layout pass suffices.
 */
export type Item =
  | number[]
  | { call: string }
  | { jmp: string }
  | { je: string }
  | { jne: string }
  | { callPointer: string }
  | { leaRax: string }
  | { label: string };

export function itemSize(item: Item): number {
  if (Array.isArray(item)) return item.length;
  if ("label" in item) return 0;
  if ("call" in item || "jmp" in item) return 5;
  if ("je" in item || "jne" in item || "callPointer" in item) return 6;
  return 7; // lea rax, [rip+disp32]
}

/** Encodes a function at `at`; `address` gives a symbol's address (labels are `function.label`). */
export function encode(name: string, items: Item[], at: bigint, address: (s: string) => bigint): number[] {
  const out: number[] = [];
  const rel = (target: bigint, end: bigint): number[] => {
    const d = target - end;
    if (d < -(1n << 31n) || d >= 1n << 31n)
      throw new Error(`${name}: rel32 to 0x${target.toString(16)} overflows`);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, Number(d), true);
    return [...b];
  };
  for (const item of items) {
    const here = at + BigInt(out.length);
    const end = here + BigInt(itemSize(item));
    if (Array.isArray(item)) out.push(...item);
    else if ("label" in item) continue;
    else if ("call" in item) out.push(0xe8, ...rel(address(item.call), end));
    else if ("jmp" in item) out.push(0xe9, ...rel(address(item.jmp), end));
    else if ("je" in item) out.push(0x0f, 0x84, ...rel(address(item.je), end));
    else if ("jne" in item) out.push(0x0f, 0x85, ...rel(address(item.jne), end));
    else if ("callPointer" in item) out.push(0xff, 0x15, ...rel(address(item.callPointer), end));
    else out.push(0x48, 0x8d, 0x05, ...rel(address(item.leaRax), end));
  }
  return out;
}

/** The offset of `label` within a function's items. */
export function labelOffset(items: Item[], label: string): number {
  let off = 0;
  for (const item of items) {
    if (!Array.isArray(item) && "label" in item && item.label === label) return off;
    off += itemSize(item);
  }
  throw new Error(`no label '${label}'`);
}
