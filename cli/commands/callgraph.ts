// `livepatch-check callgraph --elf FILE --from SYM [--from SYM ...] [--target SITE=SYM ...]
// [--over-approximate] [--json]`: the functions of an ELF64 x86-64 file reachable from the roots by
// direct calls and jumps, and every indirect call or jump on the way by `symbol+offset`.
import { existsSync, readFileSync } from "node:fs";
import type { Command } from "commander";
import { hex64, readElf } from "../../model/elf.js";
import { type ElfCallGraph, ElfProgram, type IndirectSite } from "../../model/elf-image.js";

/** Where a relocatable object's undefined symbols are placed when it is read alone (it is laid out at 0). */
const EXTERNAL_BASE = 0x4000_0000n;

export interface CallgraphOptions {
  elf?: string;
  from?: string[];
  target?: string[];
  overApproximate?: boolean;
  json?: boolean;
}

export interface CallgraphCommandIo {
  print: (text: string) => void;
  setCode: (code: number) => void;
  /** The command's error for input that cannot be checked (exit 2). */
  usage: (message: string) => Error;
}

/** Adds the `callgraph` subcommand to the program. */
export function addCallgraphCommand(program: Command, io: CallgraphCommandIo): void {
  program
    .command("callgraph")
    .description(
      "the functions of an ELF64 x86-64 file (xen-syms, vmlinux) reachable from the roots by direct calls and jumps, and every indirect call or jump on the way",
    )
    .option("--elf <file>", "the ELF file: an unstripped executable, or a relocatable object (ET_REL)")
    .option("--from <symbol>", "a root function; repeatable", collect)
    .option(
      "--target <site=symbol>",
      "a target of an indirect site, which is 'function+offset' or the pointer it reads (a data object such as mce_callbacks); repeatable",
      collect,
    )
    .option(
      "--over-approximate",
      "follow every indirect site without a given target to every address-taken function",
    )
    .option("--json", "print the call graph as JSON on stdout, and nothing else there")
    .action((opts: CallgraphOptions) => {
      io.print(callgraph(opts, io.usage));
      io.setCode(0);
    });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** The report of the callgraph command (text or JSON); bad input throws `usage(message)`. */
export function callgraph(opts: CallgraphOptions, usage: (message: string) => Error): string {
  if (!opts.elf) throw usage("callgraph needs the ELF file: give it with --elf FILE.");
  if (!opts.from || opts.from.length === 0) {
    throw usage("callgraph needs at least one root: give it with --from SYMBOL (repeatable).");
  }
  if (!existsSync(opts.elf))
    throw usage(`the ELF file '${opts.elf}' does not exist: check the path given with --elf.`);
  const targets = new Map<string, string[]>();
  for (const t of opts.target ?? []) {
    const m = /^([^=\s]+)=([^=\s]+)$/.exec(t);
    if (!m)
      throw usage(`--target '${t}' is not SITE=SYMBOL (e.g. do_machine_check+0x1f=mcheck_cmn_handler).`);
    targets.set(m[1], [...(targets.get(m[1]) ?? []), m[2]]);
  }
  let program: ElfProgram;
  let graph: ReturnType<ElfProgram["callGraph"]>;
  try {
    // A relocatable object (a livepatch payload) alone: the symbols it does not define get addresses
    // of their own beyond it, so its calls out of the object are named and not followed.
    const externals = new Map<string, bigint>();
    const external = (name: string) => {
      if (!externals.has(name)) externals.set(name, EXTERNAL_BASE + 16n * BigInt(externals.size));
      return externals.get(name);
    };
    program = new ElfProgram(readElf(new Uint8Array(readFileSync(opts.elf)), opts.elf, { external }));
    // Over-approximating follows what blacklist-callgraph follows (ElfProgram.reach): code that runs
    // on past a function's end, and code a branch reaches outside every function.
    const over = opts.overApproximate === true;
    graph = program.callGraph(opts.from, { targets, overApproximate: over, fallThrough: over });
  } catch (e) {
    throw usage(`${(e as Error).message}.`);
  }
  const taken = opts.overApproximate || graph.notFollowed > 0 ? program.addressTaken() : undefined;
  const functions = [...graph.functions].map(([name, path]) => ({
    name,
    address: hex64(program.function(name).address),
    path,
  }));
  const indirect = graph.indirect.map((s) => ({
    site: s.site,
    address: hex64(s.address),
    kind: s.kind,
    via:
      s.via.k === "pointer" ? { k: s.via.k, pointer: s.via.pointer, address: hex64(s.via.address) } : s.via,
    targets: s.targets,
  }));
  if (opts.json) {
    return `${JSON.stringify(
      {
        file: opts.elf,
        roots: graph.roots,
        functions,
        indirect,
        notFollowed: graph.notFollowed,
        answer: answer(graph, opts.overApproximate),
        returnThunkJumps: graph.returnThunkJumps,
        outside: graph.outside.map((o) => ({ ...o, target: hex64(o.target) })),
        ...(opts.overApproximate
          ? { code: [...graph.code].map(([address, path]) => ({ address, path })), unknown: graph.unknown }
          : {}),
        ...(taken ? { addressTaken: taken } : {}),
      },
      null,
      2,
    )}\n`;
  }
  const lines: string[] = [];
  lines.push(`call graph of ${opts.elf} from ${graph.roots.join(", ")}`);
  lines.push(`${count(functions.length, "function")} reachable by direct calls and jumps:`);
  const width = Math.max(...functions.map((f) => f.name.length));
  for (const f of functions)
    lines.push(`  ${f.name.padEnd(width)}  ${f.address}${via(graph, f.name, f.path)}`);
  if (graph.code.size > 0) {
    lines.push(`${count(graph.code.size, "stretch")} of code outside every function on the way:`);
    for (const [address, path] of graph.code) lines.push(`  ${address}${via(graph, address, path)}`);
  }
  if (graph.indirect.length > 0) {
    lines.push(`${count(graph.indirect.length, "indirect site")} on the way:`);
    const w = Math.max(...graph.indirect.map((s) => s.site.length));
    for (const s of graph.indirect)
      lines.push(`  ${s.site.padEnd(w)}  ${describeSite(s, opts.overApproximate)}`);
  }
  if (graph.returnThunkJumps > 0)
    lines.push(`${count(graph.returnThunkJumps, "jump")} to a return thunk (returns, not calls)`);
  const leaving = graph.outside.filter((o) => o.external);
  for (const o of graph.outside) {
    if (!o.external) lines.push(`a branch at ${o.site} to ${hex64(o.target)} lands in no function`);
  }
  if (leaving.length > 0) {
    lines.push(
      `${count(leaving.length, "branch")} out of the object, to symbols it does not define (not followed):`,
    );
    const w = Math.max(...leaving.map((o) => o.site.length));
    for (const o of leaving) lines.push(`  ${o.site.padEnd(w)}  to ${o.external}`);
  }
  if (graph.unknown.length > 0) {
    lines.push(
      `a lower bound: execution leaves the file's code in ${count(graph.unknown.length, "place")}, which no graph can follow: ${graph.unknown.join("; ")}`,
    );
  } else if (leaving.length > 0 && graph.notFollowed === 0) {
    lines.push("a lower bound: the object's calls into the image it links against are not followed");
  } else if (graph.notFollowed === 0) {
    lines.push("complete: every indirect site on the way has its targets given");
  } else if (taken && opts.overApproximate) {
    lines.push(
      `a sound over-approximation: the ${count(graph.notFollowed, "indirect site")} without given targets are followed to ` +
        `the ${taken.functions.length} address-taken functions (${sources(taken)})`,
    );
  } else if (taken) {
    lines.push(
      `a lower bound: ${count(graph.notFollowed, "indirect site")} not followed; give their targets with --target ` +
        `SITE=SYMBOL, or follow them to the ${taken.functions.length} address-taken functions (${sources(taken)}) ` +
        "with --over-approximate",
    );
  }
  return `${lines.join("\n")}\n`;
}

/** "1 function", "2 functions", "3 branches". */
function count(n: number, noun: string): string {
  if (n === 1) return `1 ${noun}`;
  return `${n} ${noun}${/(?:s|sh|ch|x)$/.test(noun) ? "es" : "s"}`;
}

/** `  via a > b`, and how the last step goes when it is not a call or a jump. */
function via(graph: ElfCallGraph, name: string, path: string[]): string {
  if (path.length < 2) return "";
  const arrival = graph.arrivals.get(name);
  const how = arrival?.k === "falls-through" ? ", running on past its end" : "";
  return `  via ${path.slice(0, -1).join(" > ")}${how}`;
}

function answer(graph: ElfCallGraph, over: boolean | undefined): string {
  if (graph.unknown.length > 0) return "lower bound";
  if (graph.notFollowed > 0) return over ? "over-approximation" : "lower bound";
  return graph.outside.some((o) => o.external) ? "lower bound" : "complete";
}

function sources(t: ReturnType<ElfProgram["addressTaken"]>): string {
  return `${t.inData} stored in data, ${t.inCode} named by code, ${t.endbr} beginning with ENDBR64`;
}

function describeSite(s: IndirectSite, over: boolean | undefined): string {
  const how =
    s.via.k === "thunk"
      ? `through the retpoline ${s.via.thunk} (*%${s.via.register})`
      : s.via.k === "pointer"
        ? `through the pointer ${s.via.pointer} (${hex64(s.via.address)})`
        : "through a register or a computed address";
  const to =
    s.targets.length > 0
      ? `: to ${s.targets.join(", ")}`
      : over
        ? ": to every address-taken function"
        : ": not followed";
  return `${s.kind} ${how}${to}`;
}
