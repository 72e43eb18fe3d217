// A scenario from the command line: `--elf FILE --site SYMBOL+OFFSET ... --workload F --nmi-service G`
// checks a site of the user's own binary without a module. The options are defineScenario's fields
// (model/define.ts), and the scenario is built by defineScenario, here and in every worker thread, so the
// command and the API build the same one.
import { existsSync } from "node:fs";
import { basename, resolve } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { defineScenario, type Patch, type ScenarioDefinition } from "../model/define.js";
import type { ScenarioSource } from "../session/modules.js";

/** The options that define a scenario from an ELF file, as commander parses them. */
export interface ElfScenarioOptions {
  elf?: string;
  site?: string[];
  payload?: string;
  workload?: string;
  nmiService?: string;
  mceService?: string[];
  mceSoftirq?: string;
  eventRoot?: string[];
  root?: string[];
  target?: string[];
  annotatedBlacklist?: string[];
  iterations?: number;
  name?: string;
}

/** The option names (commander attribute names) of ElfScenarioOptions, for commands that take them. */
export const ELF_SCENARIO_KEYS = [
  "elf",
  "site",
  "payload",
  "workload",
  "nmiService",
  "mceService",
  "mceSoftirq",
  "eventRoot",
  "root",
  "target",
  "annotatedBlacklist",
  "iterations",
  "name",
] as const;

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** Adds the options to a command. */
export function addElfScenarioOptions(cmd: Command): Command {
  return cmd
    .option(
      "--elf <file>",
      "check a scenario built from this ELF64 x86-64 executable (xen-syms, vmlinux) instead of the built-in ones; needs --site, --workload and --nmi-service",
    )
    .option(
      "--site <site[=payload]>",
      "--elf: a patch site, 'function' or 'function+offset' at an instruction boundary, and the function it jumps to (default: the --payload object's function of the same name, or else a copy of the patched function from the site on); repeatable, in the order the protocol applies them",
      collect,
    )
    .option(
      "--payload <object>",
      "--elf: a relocatable object (ET_REL, a livepatch payload) holding the new functions, linked against the ELF's symbols",
    )
    .option("--workload <function>", "--elf: the function every CPU runs (with its callees)")
    .option("--nmi-service <function>", "--elf: the function the NMI handler calls")
    .option(
      "--mce-service <function>",
      "--elf: a function the #MC handler calls synchronously, in order; repeatable (needed with --mces)",
      collect,
    )
    .option("--mce-softirq <function>", "--elf: the deferred machine-check softirq")
    .option(
      "--event-root <function>",
      "--elf: an entry point of NMI or #MC handling for blacklist-callgraph (e.g. do_nmi), besides --nmi-service and --mce-service; placed with what it reaches; repeatable",
      collect,
    )
    .option(
      "--root <function>",
      "--elf: another function to place in the machine, with what it reaches; repeatable",
      collect,
    )
    .option(
      "--target <site=function>",
      "--elf: a target of an indirect call or jump, by 'function+offset' or by the pointer it reads; repeatable",
      collect,
    )
    .option(
      "--annotated-blacklist <function>",
      "--elf: a function blacklist-annotated refuses to patch; repeatable",
      collect,
    )
    .option("--iterations <n>", "--elf: workload iterations per CPU besides CPU 0 (default: 2)", (v) => {
      const n = /^\d+$/.test(v.trim()) ? Number(v) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < 1 || n > 1000)
        throw new InvalidArgumentError("--iterations must be a whole number from 1 to 1000.");
      return n;
    })
    .option(
      "--name <name>",
      "--elf: the scenario's name in the verdicts and replay tokens (default: from the first site)",
    );
}

/** `fn+4` -> a name fit for replay tokens. */
function nameOf(sites: readonly Patch[]): string {
  const first = sites[0].target.replace(/^[^A-Za-z0-9]+/, "").replace(/[^\w.+-]/g, "_") || "elf";
  return sites.length === 1 ? first : `${first}-and-${sites.length - 1}-more`;
}

/**
 * The scenario the options define, built once here so that bad input is reported before anything
 * runs (`usage` makes the command's exit-2 error); undefined without --elf.
 */
export function elfScenarioSource(
  opts: ElfScenarioOptions,
  mces: number | undefined,
  usage: (message: string) => Error,
): ScenarioSource | undefined {
  if (opts.elf === undefined) {
    const stray = ELF_SCENARIO_KEYS.find((k) => opts[k] !== undefined);
    if (stray)
      throw usage(
        `--${stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} defines a scenario from an ELF file: give the file with --elf FILE.`,
      );
    return undefined;
  }
  const file = resolve(opts.elf);
  if (!existsSync(file))
    throw usage(`the ELF file '${opts.elf}' does not exist: check the path given with --elf.`);
  if (!opts.site || opts.site.length === 0)
    throw usage(
      "--elf needs a patch site: give it with --site FUNCTION+OFFSET (repeatable; FUNCTION+OFFSET=PAYLOAD to name the new function).",
    );
  for (const [flag, value, what] of [
    ["--workload", opts.workload, "the function every CPU runs, e.g. the caller of the patched function"],
    ["--nmi-service", opts.nmiService, "the function the NMI handler calls (Xen: do_nmi's work)"],
  ] as const) {
    if (!value) throw usage(`--elf needs ${flag} FUNCTION: ${what}.`);
  }
  const sites = opts.site.map((text): Patch => {
    const m = /^([^=\s]+)(?:=([^=\s]+))?$/.exec(text);
    if (!m)
      throw usage(`--site '${text}' is not FUNCTION+OFFSET or FUNCTION+OFFSET=PAYLOAD (e.g. do_nmi+4).`);
    return m[2] ? { target: m[1], payload: m[2] } : { target: m[1] };
  });
  const targets: Record<string, string[]> = {};
  for (const t of opts.target ?? []) {
    const m = /^([^=\s]+)=([^=\s]+)$/.exec(t);
    if (!m)
      throw usage(`--target '${t}' is not SITE=FUNCTION (e.g. do_machine_check+0x1f=mcheck_cmn_handler).`);
    targets[m[1]] = [...(targets[m[1]] ?? []), m[2]];
  }
  if (opts.payload !== undefined && !existsSync(resolve(opts.payload)))
    throw usage(`the payload object '${opts.payload}' does not exist: check the path given with --payload.`);
  const definition: ScenarioDefinition = {
    name: opts.name ?? nameOf(sites),
    summary: `${sites.map((s) => s.target).join(", ")} in ${basename(file)}`,
    image: {
      elf: file,
      ...(opts.root ? { roots: opts.root } : {}),
      ...(opts.target ? { targets } : {}),
      ...(opts.payload !== undefined ? { payload: { elf: resolve(opts.payload) } } : {}),
    },
    ...(sites.length === 1 ? { patch: sites[0] } : { patches: sites }),
    workload: opts.workload as string,
    nmiService: opts.nmiService as string,
    ...(opts.mceService ? { mceService: opts.mceService } : {}),
    ...(opts.mceSoftirq ? { mceSoftirq: opts.mceSoftirq } : {}),
    // What the model's NMI and #MC handlers run is always an event root; --event-root adds to it.
    ...(opts.eventRoot
      ? { eventRoots: [opts.nmiService as string, ...(opts.mceService ?? []), ...opts.eventRoot] }
      : {}),
    ...(opts.annotatedBlacklist ? { annotatedBlacklist: opts.annotatedBlacklist } : {}),
    ...(opts.iterations !== undefined ? { iterations: opts.iterations } : {}),
    ...(mces !== undefined ? { mces } : {}),
  };
  try {
    defineScenario(definition);
  } catch (e) {
    throw usage(`--elf ${opts.elf}: ${inOptions((e as Error).message)}.`);
  }
  return { definition, origin: `--elf ${opts.elf}` };
}

/** defineScenario's field names in a message, as the options that set them. */
const OPTION_OF: Array<[RegExp, string]> = [
  [/\bpatch(?:es\[\d+\])?\.target\b/g, "--site"],
  [/\bpatch(?:es\[\d+\])?\.payload\b/g, "--site's payload"],
  [/\bpatch(?:es\[\d+\])? has no payload/g, "--site has no =PAYLOAD"],
  [/\(payload: "\.\.\."\)/g, "(--site SITE=PAYLOAD)"],
  [/\bno 'mceService'/g, "no --mce-service"],
  [/\bworkload '/g, "--workload '"],
  [/\bnmiService '/g, "--nmi-service '"],
  [/\bmceService '/g, "--mce-service '"],
  [/\bmceSoftirq '/g, "--mce-softirq '"],
  [/\beventRoots '/g, "--event-root '"],
  [/\bannotatedBlacklist '/g, "--annotated-blacklist '"],
];

function inOptions(message: string): string {
  return OPTION_OF.reduce((m, [field, option]) => m.replace(field, option), message);
}

/** The options to give `replay` (or a check) again for the same scenario, as one command-line fragment. */
export function elfScenarioArguments(opts: ElfScenarioOptions): string {
  const args: string[] = [];
  const add = (flag: string, value: string | number | undefined) => {
    if (value !== undefined) args.push(flag, shellWord(String(value)));
  };
  add("--elf", opts.elf);
  for (const s of opts.site ?? []) add("--site", s);
  add("--payload", opts.payload);
  add("--workload", opts.workload);
  add("--nmi-service", opts.nmiService);
  for (const s of opts.mceService ?? []) add("--mce-service", s);
  add("--mce-softirq", opts.mceSoftirq);
  for (const s of opts.eventRoot ?? []) add("--event-root", s);
  for (const s of opts.root ?? []) add("--root", s);
  for (const s of opts.target ?? []) add("--target", s);
  for (const s of opts.annotatedBlacklist ?? []) add("--annotated-blacklist", s);
  add("--iterations", opts.iterations);
  add("--name", opts.name);
  return args.join(" ");
}

/** A word as a POSIX shell reads it back: quoted unless it is only safe characters. */
export function shellWord(s: string): string {
  return /^[\w./:+=,@-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;
}
