// Symmetry of CPUs 1..n-1 (SPEC §6: every CPU but the master runs the same workload and polls the
// same protocol code): two of them in identical states, in a state that does not otherwise tell them
// apart, have subtrees of runs that are images of each other under swapping the two CPUs, so a search
// explores only the lower one (Emerson & Sistla, "Symmetry and model checking", FMSD 1996; Ip & Dill,
// "Better verification through symmetry", FMSD 1996). Identity of two CPUs' states is judged from what
// each CPU has observed (a fingerprint of its reads, their values, its choices and its hardware block
// after each of its transitions, with its own per-CPU words named as "own"), its hardware block now,
// and its per-CPU words now.
//
// This is sound only when routines tell CPUs 1..n-1 apart by nothing but their own per-CPU words
// (WordTable.allocPerCpu, `name[i]`). A step that reads or writes another such CPU's per-CPU word, or
// sends an IPI or NMI to some but not all of them, shows that the program does tell them apart (Linux
// text_poke's master walks the refcounts CPU by CPU); the search then starts again without symmetry.
import { Shared } from "../../model/cpu/state.js";
import { CODE_BASE } from "../../model/image.js";
import { C, CPU_WORDS, type MachineMemory, STACK_BASE, STACK_SPAN } from "../../model/memory.js";
import type { MachineSpec } from "../../model/types.js";

const SELF = 0x7fff; // a CPU's own slot of a per-CPU array, in fingerprints and comparisons

/** Words compared between two CPUs' blocks (everything but scheduling bookkeeping). */
const BLOCK_WORDS = Array.from({ length: CPU_WORDS }, (_, i) => i).filter((i) => i !== C.pctPriority);

export class Symmetry {
  readonly cpus: number;
  /** Per data word: the CPU whose per-CPU slot it is (-1: a shared word), and its array number. */
  private readonly owner: Int32Array;
  private readonly array: Int32Array;
  /** Per per-CPU array: the word of each CPU. */
  private readonly arrays: number[][] = [];
  /** Two independent FNV-1a lanes per CPU. */
  private readonly hashA: Uint32Array;
  private readonly hashB: Uint32Array;
  /** Set when a step showed that the program tells CPUs 1..n-1 apart (with the reason). */
  broken: string | null = null;
  private mem: MachineMemory | null = null;

  constructor(spec: MachineSpec) {
    this.cpus = spec.config.hardware.cpus;
    const names = spec.words.names;
    this.owner = new Int32Array(Math.max(1, names.length)).fill(-1);
    this.array = new Int32Array(Math.max(1, names.length)).fill(-1);
    const byName = new Map<string, number[]>();
    names.forEach((name, w) => {
      const m = /^(.*)\[(\d+)\]$/.exec(name);
      if (!m) return;
      const cpu = Number(m[2]);
      if (cpu >= this.cpus) return;
      const list = byName.get(m[1]) ?? [];
      list[cpu] = w;
      byName.set(m[1], list);
    });
    for (const list of byName.values()) {
      if (list.length !== this.cpus || list.some((w) => w === undefined)) continue;
      const id = this.arrays.length;
      this.arrays.push(list);
      list.forEach((w, cpu) => {
        this.owner[w] = cpu;
        this.array[w] = id;
      });
    }
    this.hashA = new Uint32Array(this.cpus);
    this.hashB = new Uint32Array(this.cpus);
  }

  begin(mem: MachineMemory): void {
    this.mem = mem;
    this.hashA.fill(0x811c9dc5);
    this.hashB.fill(0x01000193);
  }

  /** The CPUs' fingerprints, for a run resumed from a snapshot (restore). */
  save(): Uint32Array {
    const s = new Uint32Array(2 * this.cpus);
    s.set(this.hashA);
    s.set(this.hashB, this.cpus);
    return s;
  }

  restore(mem: MachineMemory, s: Uint32Array): void {
    this.mem = mem;
    this.hashA.set(s.subarray(0, this.cpus));
    this.hashB.set(s.subarray(this.cpus));
  }

  /** A data word as CPU `cpu` sees it: its own per-CPU slot is the same for every CPU. */
  private word(cpu: number, w: number): number {
    const owner = this.owner[w] ?? -1;
    return owner === cpu ? -1 - (this.array[w] * 0x10000 + SELF) : w;
  }

  mix(cpu: number, v: number): void {
    this.hashA[cpu] = Math.imul(this.hashA[cpu] ^ v, 0x01000193) >>> 0;
    this.hashB[cpu] = Math.imul(this.hashB[cpu] ^ (v + 0x9e3779b9), 0x85ebca6b) >>> 0;
  }

  access(cpu: number, region: Shared, index: number, write: boolean): void {
    const mem = this.mem as MachineMemory;
    let id = index;
    if (region === Shared.Data) {
      const owner = this.owner[index] ?? -1;
      if (owner > 0 && owner !== cpu && this.broken === null)
        this.broken = `CPU ${cpu} touches the per-CPU word of CPU ${owner}`;
      id = this.word(cpu, index);
    } else if (region === Shared.Cpu && index === cpu) id = SELF;
    this.mix(cpu, (region << 28) ^ (write ? 1 << 27 : 0));
    this.mix(cpu, id);
    if (!write && region === Shared.Data) this.mix(cpu, mem.data[index]);
    if (!write && region === Shared.Code) this.mix(cpu, mem.code[mem.codeIndex(CODE_BASE + index)]);
  }

  /** The targets of one transition's IPIs and NMIs: some but not all of CPUs 1..n-1 tells them apart. */
  targets(cpu: number, targets: readonly number[]): void {
    if (this.broken !== null || targets.length === 0) return;
    let hit = 0;
    for (let c = 1; c < this.cpus; c++) if (c !== cpu && targets.includes(c)) hit++;
    const all = cpu === 0 ? this.cpus - 1 : this.cpus - 2;
    if (hit > 0 && hit < all)
      this.broken = `CPU ${cpu} sends an IPI or NMI to some of CPUs 1..${this.cpus - 1}`;
  }

  /**
   * Word i of CPU `cpu`'s block as every CPU would hold it: a wait on its own per-CPU word names
   * "own", and RSP and RBP into its own stacks are relative to them (each CPU has its stacks at its
   * own addresses, model/memory stackTop, so the same history leaves them at different values).
   */
  private blockWord(cpu: number, i: number): number {
    const v = (this.mem as MachineMemory).cpu[cpu * CPU_WORDS + i];
    if ((i === C.waitWord0 || i === C.waitWord1) && v >= 0) return this.word(cpu, v);
    if (i === C.rsp || i === C.rbp) {
      const base = STACK_BASE + cpu * STACK_SPAN;
      if (v >= base && v < base + STACK_SPAN) return v - cpu * STACK_SPAN;
    }
    return v;
  }

  /** After a transition of `cpu`: its hardware block joins its fingerprint. */
  block(cpu: number): void {
    for (const i of BLOCK_WORDS) this.mix(cpu, this.blockWord(cpu, i));
  }

  /** CPUs p and q (both ≥ 1) are in identical states now. */
  identical(p: number, q: number): boolean {
    if (this.hashA[p] !== this.hashA[q] || this.hashB[p] !== this.hashB[q]) return false;
    const mem = this.mem as MachineMemory;
    for (const i of BLOCK_WORDS) if (this.blockWord(p, i) !== this.blockWord(q, i)) return false;
    for (const list of this.arrays) if (mem.data[list[p]] !== mem.data[list[q]]) return false;
    return true;
  }

  /** Data words that belong to CPU `cpu` (its per-CPU slots). */
  ownsWord(cpu: number, w: number): boolean {
    return (this.owner[w] ?? -1) === cpu;
  }
}
