// An independent call graph from `objdump -d` text (GNU binutils), to compare with the ELF call graph:
// a function is a symbol header `<name>:`, a branch target belongs to the last header at or before it,
// `call`/`jmp`/`jcc` with a target address are direct, `call *`/`jmp *` and calls of retpoline thunks
// are indirect, `jmp __x86_return_thunk` is a return.
import { execFileSync } from "node:child_process";

export interface ObjdumpGraph {
  /** Function start addresses (hex, no 0x) reached, by name. */
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
  const starts: bigint[] = [];
  const names: string[] = [];
  const body = new Map<string, Array<{ at: bigint; mnemonic: string; operands: string }>>();
  let current: string | undefined;
  for (const line of text.split("\n")) {
    const h = HEADER.exec(line);
    if (h) {
      current = h[2];
      starts.push(BigInt(`0x${h[1]}`));
      names.push(current);
      if (!body.has(current)) body.set(current, []);
      continue;
    }
    const m = INSN.exec(line);
    if (m && current) body.get(current)?.push({ at: BigInt(`0x${m[1]}`), mnemonic: m[2], operands: m[3] });
  }
  const holder = (address: bigint): string | undefined => {
    let lo = 0;
    let hi = starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid] <= address) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? undefined : names[found];
  };
  const start = new Map(names.map((n, i) => [n, starts[i].toString(16)]));
  const functions = new Map<string, string>();
  const indirect: ObjdumpGraph["indirect"] = [];
  const queue = [...roots];
  for (const r of roots) functions.set(r, start.get(r) as string);
  for (let q = 0; q < queue.length; q++) {
    const name = queue[q];
    const base = BigInt(`0x${start.get(name)}`);
    for (const insn of body.get(name) ?? []) {
      // lcall/ljmp: far indirect branches (`ljmp *ptr(%rip)` in Xen's kexec entry).
      const isCall = /^l?call/.test(insn.mnemonic);
      const isJump = /^l?j/.test(insn.mnemonic);
      if (!isCall && !isJump) continue;
      const off = insn.at - base;
      const site = off === 0n ? name : `${name}+0x${off.toString(16)}`;
      const kind = isCall ? "call" : "jump";
      if (insn.operands.startsWith("*")) {
        indirect.push({ site, kind, text: `${insn.mnemonic} ${insn.operands}` });
        continue;
      }
      const d = DIRECT.exec(insn.operands.replace(/^(?:bnd|notrack) /, ""));
      if (!d) continue;
      const target = holder(BigInt(`0x${d[1]}`));
      if (!target) continue;
      if (/^__x86_return_thunk$/.test(target) && !isCall) continue;
      if (/^__x86_indirect_thunk_/.test(target)) {
        indirect.push({ site, kind, text: `${insn.mnemonic} ${insn.operands}` });
        continue;
      }
      if (target !== name && !functions.has(target)) {
        functions.set(target, start.get(target) as string);
        queue.push(target);
      }
    }
  }
  return { functions, indirect };
}
