// An independent call graph from `objdump -d` text (GNU binutils), to compare with the ELF call graph:
// a function is a symbol header `<name>:`, a branch target belongs to the last header at or before it,
// `call`/`jmp`/`jcc` with a target address are direct, `call *`/`jmp *` and calls of retpoline thunks
// are indirect, `jmp __x86_return_thunk` is a return.
import { execFileSync } from "node:child_process";

export interface ObjdumpGraph {
  /** Function start addresses (hex, no 0x) reached, keyed `name@address`. */
  functions: Map<string, string>;
  /** Indirect sites in reached functions: `call *`, `jmp *`, calls and jumps of retpoline thunks. */
  indirect: Array<{ site: string; kind: "call" | "jump"; text: string }>;
}

const HEADER = /^([0-9a-f]+) <(.+)>:$/;
const INSN = /^\s*([0-9a-f]+):\t(\S+)\s*(.*)$/;
const DIRECT = /^([0-9a-f]+) <(.+)>$/;

export function objdumpCallGraph(file: string, roots: string[]): ObjdumpGraph {
  const text = execFileSync("objdump", ["-d", "--no-show-raw-insn", "-w", file], {
    encoding: "utf8",
    maxBuffer: 1 << 30,
  });
  // One block per symbol header, by address: two local functions may share a name.
  const blocks: Array<{
    name: string;
    start: bigint;
    insns: Array<{ at: bigint; mnemonic: string; operands: string }>;
  }> = [];
  for (const line of text.split("\n")) {
    const h = HEADER.exec(line);
    if (h) {
      blocks.push({ name: h[2], start: BigInt(`0x${h[1]}`), insns: [] });
      continue;
    }
    const m = INSN.exec(line);
    if (m && blocks.length > 0)
      blocks[blocks.length - 1].insns.push({ at: BigInt(`0x${m[1]}`), mnemonic: m[2], operands: m[3] });
  }
  blocks.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const holder = (address: bigint) => {
    let lo = 0;
    let hi = blocks.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (blocks[mid].start <= address) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? undefined : blocks[found];
  };
  const functions = new Map<string, string>();
  const indirect: ObjdumpGraph["indirect"] = [];
  const seen = new Set<bigint>();
  const queue = roots.map((r) => {
    const b = blocks.find((x) => x.name === r);
    if (!b) throw new Error(`objdump shows no function '${r}'`);
    return b;
  });
  for (const b of queue) seen.add(b.start);
  for (let q = 0; q < queue.length; q++) {
    const block = queue[q];
    functions.set(`${block.name}@${block.start.toString(16)}`, block.start.toString(16));
    for (const insn of block.insns) {
      // lcall/ljmp: far indirect branches (`ljmp *ptr(%rip)` in Xen's kexec entry).
      const isCall = /^l?call/.test(insn.mnemonic);
      const isJump = /^l?j/.test(insn.mnemonic);
      if (!isCall && !isJump) continue;
      const off = insn.at - block.start;
      const site = off === 0n ? block.name : `${block.name}+0x${off.toString(16)}`;
      const kind = isCall ? "call" : "jump";
      if (insn.operands.startsWith("*")) {
        indirect.push({ site, kind, text: `${insn.mnemonic} ${insn.operands}` });
        continue;
      }
      const d = DIRECT.exec(insn.operands.replace(/^(?:bnd|notrack) /, ""));
      if (!d) continue;
      const target = holder(BigInt(`0x${d[1]}`));
      if (!target) continue;
      if (/^__x86_return_thunk$/.test(target.name) && !isCall) continue;
      if (/^__x86_indirect_thunk_/.test(target.name)) {
        indirect.push({ site, kind, text: `${insn.mnemonic} ${insn.operands}` });
        continue;
      }
      if (!seen.has(target.start)) {
        seen.add(target.start);
        queue.push(target);
      }
    }
  }
  return { functions, indirect };
}
