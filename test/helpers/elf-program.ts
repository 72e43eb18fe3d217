// Small ELF64 executables for tests, written with scripts/elf-writer: functions laid out 16-byte aligned
// in one .text at Xen's text address, and 8-byte pointers in .data, each 0 or a function's address.
import {
  encode,
  type Item,
  itemSize,
  labelOffset,
  type WriterSymbol,
  writeElf,
} from "../../dist/scripts/elf-writer.js";

export const TEXT = 0xffff82d0_40200000n;
export const DATA = TEXT + 0x10_0000n;

export interface ProgramFunction {
  name: string;
  items: Item[];
  /** A NOTYPE label (an assembly entry point) instead of a sized FUNC. */
  label?: boolean;
  /** The FUNC's size when it is less than its code (code after it lies outside every function). */
  size?: number;
}

export interface ProgramPointer {
  name: string;
  /** The function it holds in the file; absent: 0, set at boot. */
  initial?: string;
}

/** The file's bytes, and where each function and pointer lies. */
export function elfProgram(
  functions: ProgramFunction[],
  pointers: ProgramPointer[] = [],
): { bytes: Uint8Array; at: Map<string, bigint> } {
  const at = new Map<string, bigint>();
  let next = TEXT;
  for (const f of functions) {
    at.set(f.name, next);
    const size = f.items.reduce((n, it) => n + itemSize(it), 0);
    next = ((next + BigInt(size) + 15n) / 16n) * 16n;
  }
  pointers.forEach((p, k) => {
    at.set(p.name, DATA + BigInt(8 * k));
  });
  const address = (s: string): bigint => {
    const [fn, label] = s.split(".");
    const base = at.get(fn);
    if (base === undefined) throw new Error(`no symbol '${s}'`);
    if (!label) return base;
    return base + BigInt(labelOffset(functions.find((g) => g.name === fn)?.items ?? [], label));
  };
  const text: number[] = [];
  const symbols = functions.map((f): WriterSymbol => {
    const a = at.get(f.name) as bigint;
    const code = encode(f.name, f.items, a, address);
    while (BigInt(text.length) < a - TEXT) text.push(0xcc);
    text.push(...code);
    return {
      name: f.name,
      value: a,
      size: f.label ? 0 : (f.size ?? code.length),
      type: f.label ? "notype" : "func",
      bind: "global",
      section: ".text",
    };
  });
  const data = new Uint8Array(8 * Math.max(1, pointers.length));
  const view = new DataView(data.buffer);
  pointers.forEach((p, k) => {
    if (p.initial) view.setBigUint64(8 * k, address(p.initial), true);
    symbols.push({
      name: p.name,
      value: DATA + BigInt(8 * k),
      size: 8,
      type: "object",
      bind: "global",
      section: ".data",
    });
  });
  const bytes = writeElf({
    type: "exec",
    entry: TEXT,
    sections: [
      { name: ".text", type: 1, flags: 2n | 4n, address: TEXT, bytes: Uint8Array.from(text), align: 4096 },
      { name: ".data", type: 1, flags: 2n | 1n, address: DATA, bytes: data, align: 8 },
    ],
    symbols,
  });
  return { bytes, at };
}

const FRAME: Item[] = [[0x55], [0x48, 0x89, 0xe5], [0x5d], [0xc3]]; // push rbp; mov rbp, rsp; pop rbp; ret

/**
 * Control flow that leaves a function other than by a branch to a function: an assembly label that
 * runs on into the next (nmi_stub), a FUNC whose size leaves out its cold tail (checked: test eax, eax;
 * jne tail; ret | tail: call site_b; ud2), and a jump out of the file's code (far). site_c is reached
 * by nothing.
 */
export function reachProgram(): { bytes: Uint8Array; at: Map<string, bigint> } {
  return elfProgram([
    { name: "nmi_stub", label: true, items: [[0x55]] },
    { name: "nmi_stub_common", label: true, items: [[0x5d], { call: "site_a" }, [0x48, 0xcf]] },
    {
      name: "checked",
      size: 9,
      items: [
        [0x85, 0xc0],
        { jne: "checked.tail" },
        [0xc3],
        { label: "tail" },
        { call: "site_b" },
        [0x0f, 0x0b],
      ],
    },
    { name: "site_a", items: FRAME },
    { name: "site_b", items: FRAME },
    { name: "site_c", items: FRAME },
    // jmp rel32 to 256 MiB past itself: no code of the file lies there.
    { name: "far", items: [[0xe9, 0x00, 0x00, 0x00, 0x10]] },
  ]);
}
