// Code images (model/image.ts): symbol+offset checked against instruction boundaries (seed item c),
// clear errors for bad images, the exact call graph, payload symbolization (seed item g), and the
// check that routines yield only steps (model/routine.ts checkStep).
import { describe, expect, it } from "vitest";
import { CODE_BASE, CodeImage, type FunctionDesc } from "../dist/model/image.js";
import { defineMachine } from "../dist/model/machine.js";
import { RunStatus } from "../dist/model/memory.js";
import { findProtocol } from "../dist/model/protocols/index.js";
import { load, type Routine, type Step, store } from "../dist/model/routine.js";
import { findScenario } from "../dist/model/scenarios/index.js";
import type { Protocol, RoutineContext } from "../dist/model/types.js";
import { runSpec } from "../dist/workers/inline.js";
import { litmus } from "./helpers/litmus.js";

// root: push rbp (1) | mov rbp,rsp (3) | sub rsp,16 (4) | call a (5) | je root (2) | add rsp,16 (4) |
//       pop rbp (1) | jmp b (2)  -> boundaries +0 +1 +4 +8 +13 +15 +19 +20
const FUNCTIONS: FunctionDesc[] = [
  {
    name: "root",
    code: ["push rbp", "mov rbp, rsp", "sub rsp, 16", "call a", "je root", "add rsp, 16", "pop rbp", "jmp b"],
  },
  { name: "a", code: ["call c", "ret"] },
  { name: "b", code: ["test eax, eax", "je c", "ret"] },
  { name: "c", code: ["ret"] },
  { name: "d", code: ["call a", "ret"] },
  { name: "livepatch.c", payload: true, code: ["push rbp", "mov eax, 13", "pop rbp", "ret"] },
];

describe("symbol+offset", () => {
  const image = CodeImage.build(FUNCTIONS);
  const root = image.symbol("root").address;

  it("resolves instruction boundaries, in decimal and hex", () => {
    expect(root).toBe(CODE_BASE);
    expect(image.boundaries("root").map((a) => a - root)).toEqual([0, 1, 4, 8, 13, 15, 19, 20]);
    expect(image.resolve("root")).toBe(root);
    expect(image.resolve("root+1")).toBe(root + 1);
    expect(image.resolve("root+0x8")).toBe(root + 8);
    expect(image.resolve("livepatch.c+1")).toBe(image.symbol("livepatch.c").address + 1);
  });

  it("rejects an offset inside an instruction, naming the function and its boundaries", () => {
    expect(() => image.resolve("root+2")).toThrow(
      "'root+2' is inside an instruction of 'root': choose an instruction boundary (+0 +1 +4 +8 +13 +15 +19 +20)",
    );
    expect(() => image.resolve("root+0x9")).toThrow(/'root\+0x9' is inside an instruction of 'root'/);
  });

  it("rejects offsets past the end, unknown symbols and malformed specs", () => {
    expect(() => image.resolve("root+22")).toThrow(
      "'root+22': offset 22 is past the end of 'root' (22 bytes)",
    );
    expect(() => image.resolve("nothere+1")).toThrow(/unknown symbol 'nothere' \(defined: root, a, b, c, d,/);
    expect(() => image.resolve("root+x1")).toThrow("'root+x1' is not 'symbol' or 'symbol+offset'");
  });

  it("a machine whose patch site is inside an instruction is refused with the same message", () => {
    const build = () =>
      litmus({
        cpus: 1,
        functions: [{ name: "f", code: ["push rbp", "mov rbp, rsp", "nop5", "pop rbp", "ret"] }],
        patch: { target: "f+2", payload: "payload" },
        *program() {},
      });
    expect(build).toThrow(
      "'f+2' is inside an instruction of 'f': choose an instruction boundary (+0 +1 +4 +9 +10)",
    );
  });
});

describe("bad images give errors naming the culprit", () => {
  it("unknown symbol in an instruction", () => {
    expect(() => CodeImage.build([{ name: "f", code: ["call nowhere", "ret"] }])).toThrow(
      "unknown symbol 'nowhere' (defined: f)",
    );
  });

  it("duplicate function", () => {
    expect(() =>
      CodeImage.build([
        { name: "f", code: ["ret"] },
        { name: "g", code: ["ret"] },
        { name: "f", code: ["nop", "ret"] },
      ]),
    ).toThrow("function 'f' is defined twice in the image");
  });

  it("a function with neither code nor bytes, and a line the dialect cannot assemble", () => {
    expect(() => CodeImage.build([{ name: "empty" }])).toThrow("function 'empty' has neither code nor bytes");
    expect(() => CodeImage.build([{ name: "f", code: ["nop", "mov rax, [rbx]"] }])).toThrow(
      "function 'f': cannot assemble 'mov rax, [rbx]'",
    );
    expect(() => CodeImage.build([{ name: "f", code: ["push r15"] }])).toThrow(/unknown register 'r15'/);
  });

  it("overlapping raw-byte functions", () => {
    const bytes = new Uint8Array(32).fill(0x90);
    expect(() =>
      CodeImage.fromBytes(bytes, [
        { name: "a", address: CODE_BASE, size: 8, payload: false },
        { name: "b", address: CODE_BASE + 6, size: 8, payload: false },
      ]),
    ).toThrow("functions 'a' and 'b' overlap");
    expect(() =>
      CodeImage.fromBytes(bytes, [{ name: "tail", address: CODE_BASE + 24, size: 16, payload: false }]),
    ).toThrow("function 'tail' lies outside the image");
    const ok = CodeImage.fromBytes(bytes, [
      { name: "a", address: CODE_BASE, size: 8, payload: false },
      { name: "b", address: CODE_BASE + 8, size: 8, payload: false },
    ]);
    expect(ok.symbolize(CODE_BASE + 9)).toBe("b+0x1");
  });

  it("an image too big for the buffer", () => {
    const fns: FunctionDesc[] = [
      { name: "f", code: ["ret"] },
      { name: "g", code: Array.from({ length: 20 }, () => "nop") },
    ];
    expect(() => CodeImage.build(fns, [], 32)).toThrow("the image needs 48 bytes, more than the buffer's 32");
    expect(CodeImage.build(fns, [], 48).placedBytes).toBe(48);
  });
});

describe("call graph", () => {
  const image = CodeImage.build(FUNCTIONS);

  it("callees are the direct call/jmp/jcc targets in other functions", () => {
    expect(image.callees("root")).toEqual(["a", "b"]); // `je root` is a branch inside root
    expect(image.callees("a")).toEqual(["c"]);
    expect(image.callees("b")).toEqual(["c"]);
    expect(image.callees("c")).toEqual([]);
    expect(image.callees("d")).toEqual(["a"]);
  });

  it("is exact: every reachable function with its first (shortest) path, breadth first", () => {
    const graph = image.callGraph(["root"]);
    expect([...graph.entries()]).toEqual([
      ["root", ["root"]],
      ["a", ["root", "a"]],
      ["b", ["root", "b"]],
      ["c", ["root", "a", "c"]],
    ]);
    expect([...image.callGraph(["d", "b"]).entries()]).toEqual([
      ["d", ["d"]],
      ["b", ["b"]],
      ["a", ["d", "a"]],
      ["c", ["b", "c"]],
    ]);
    expect(() => image.callGraph(["nope"])).toThrow(/unknown symbol 'nope'/);
  });
});

describe("code moved with encodedAt", () => {
  it("keeps branches out of it where they went, and moves branches within it along", () => {
    // at 0x5000: again: dec eax; jne again; call b (rel32 to 0x6000); ret
    const from = 0x5000;
    const bytes = [0xff, 0xc8, 0x75, 0xfc, 0xe8, 0xf7, 0x0f, 0x00, 0x00, 0xc3];
    const base = CodeImage.build([{ name: "b", code: ["ret"] }]);
    const b = base.symbol("b").address;
    // Retarget the call to b as it lies in this image: rel32 = b - (from + 9).
    const call = b - (from + 9);
    const moved = [
      ...bytes.slice(0, 5),
      call & 0xff,
      (call >> 8) & 0xff,
      (call >> 16) & 0xff,
      (call >> 24) & 0xff,
      0xc3,
    ];
    const image = base.withFunctions([{ name: "copy", bytes: moved, encodedAt: from, payload: true }]);
    const copy = image.symbol("copy");
    const branches = image.branchesOf("copy").map((x) => [x.kind, x.target]);
    expect(branches).toEqual([
      ["conditional", copy.address], // jne again: now the copy's own first instruction
      ["call", b], // call b: still b
    ]);
  });

  it("refuses bytes that are no instruction", () => {
    const base = CodeImage.build([{ name: "b", code: ["ret"] }]);
    expect(() => base.withFunctions([{ name: "bad", bytes: [0x0f, 0x0b, 0x06], encodedAt: 0x5000 }])).toThrow(
      "function 'bad': the bytes at 0x5002 are no instruction, so they cannot be moved",
    );
  });
});

describe("symbolize", () => {
  const image = CodeImage.build(FUNCTIONS);

  it("names payload addresses by the payload's own symbols", () => {
    const p = image.symbol("livepatch.c");
    expect(p.payload).toBe(true);
    expect(image.symbol("c").payload).toBe(false);
    expect(image.symbolize(p.address)).toBe("livepatch.c");
    expect(image.symbolize(p.address + 6)).toBe("livepatch.c+0x6");
    expect(image.symbolize(image.symbol("root").address + 13)).toBe("root+0xd");
    // The int3 padding after `c` belongs to no function.
    const c = image.symbol("c");
    expect(image.symbolize(c.address + 1)).toBe(`0x${(c.address + 1).toString(16)}`);
  });
});

describe("routines yield only steps", () => {
  it("a base routine that yields a non-step is an Error naming the routine and the value", () => {
    const m = litmus({
      cpus: 2,
      *program(ctx): Routine {
        if (ctx.cpu === 1) yield 42 as unknown as Step;
      },
    });
    const run = m.run([]);
    expect(run.status).toBe(RunStatus.Error);
    expect(run.error).toBe(
      "machine start: routine 'base' on CPU 1 at step 0 yielded 42, which is not a step (use the helpers of model/routine)",
    );
  });

  it("a hook that yields a misspelt step mid-run is an Error naming the hook and its handler", () => {
    const m = litmus({
      cpus: 1,
      nmis: 1,
      words: ["a"],
      *nmiCallback(_ctx, env) {
        yield load(env.w.a);
        yield { k: "stor", word: env.w.a, value: 1 } as unknown as Step;
        return 0;
      },
      *program(_ctx, env) {
        yield store(env.w.a, 1);
        yield store(env.w.a, 2);
      },
    });
    const run = m.run([1, 0]);
    expect(run.status).toBe(RunStatus.Error);
    expect(run.error).toMatch(
      /^CPU 0 at step (\d+): routine 'nmiCallback' of protocol 'litmus' in the 'nmi' handler on CPU 0 at step \1 yielded \{"k":"stor","word":\d+,"value":1\}, which is not a step/,
    );
  });

  it("a protocol's master that yields a non-step is named as the master, not as the base routine", () => {
    const config = {
      protocol: "image-test-yields-junk",
      scenario: "normal",
      hardware: { cpus: 2, fetch: "bytewise" as const, nmis: 0, mces: 0, stepBound: 2000 },
    };
    const protocol: Protocol = {
      ...findProtocol("no-mask"),
      name: config.protocol,
      *master(ctx) {
        yield store(ctx.spec.common.nmiCallback, 0);
        yield "store" as unknown as Step;
      },
    };
    const spec = defineMachine(config, protocol, findScenario("normal"));
    const run = runSpec(spec, { tape: [] });
    expect(run.status).toBe(RunStatus.Error);
    expect(run.error).toMatch(
      /^CPU 0 at step (\d+): routine 'master' of protocol 'image-test-yields-junk' on CPU 0 at step \1 yielded "store", which is not a step/,
    );
  });

  it("a step on a data word the machine lacks names the word, the routine and the step", () => {
    const config = {
      protocol: "image-test-bad-word",
      scenario: "normal",
      hardware: { cpus: 2, fetch: "bytewise" as const, nmis: 0, mces: 0, stepBound: 2000 },
    };
    const words = (ctx: RoutineContext) => ctx.spec.words.names.length;
    const protocol: Protocol = {
      ...findProtocol("no-mask"),
      name: config.protocol,
      *master(ctx) {
        yield store(ctx.spec.common.patchDone, 0);
        yield store(words(ctx) + 90, 1);
      },
    };
    const spec = defineMachine(config, protocol, findScenario("normal"));
    const n = spec.words.names.length;
    const run = runSpec(spec, { tape: [] });
    expect(run.status).toBe(RunStatus.Error);
    expect(run.error).toMatch(
      new RegExp(
        `^CPU 0 at step (\\d+): routine 'master' of protocol 'image-test-bad-word' on CPU 0 at step \\1 yielded a store of data word ${n + 90}, which this machine does not have: its data words are 0 to ${n - 1}`,
      ),
    );
    // A word that is not a number at all (a misspelt ctx.spec.common field) is not taken as word 0.
    const typo: Protocol = {
      ...protocol,
      *master(ctx) {
        yield store((ctx.spec.common as unknown as Record<string, number>).patchDon, 0);
      },
    };
    const typoRun = runSpec(defineMachine(config, typo, findScenario("normal")), { tape: [] });
    expect(typoRun.status).toBe(RunStatus.Error);
    expect(typoRun.error).toMatch(
      /routine 'master' .* yielded a store of data word undefined, which this machine does not have/,
    );
  });
});

describe("indirect branches of unknown target (blacklist-callgraph's over-approximation)", () => {
  // root: lea rax, [rip+9] (taken) | call rax | ret; taken: ret; other: ret; marked: endbr64 | ret
  const bytes = new Uint8Array(64).fill(0xcc);
  bytes.set([0x48, 0x8d, 0x05, 0x09, 0x00, 0x00, 0x00, 0xff, 0xd0, 0xc3], 0);
  bytes.set([0xc3], 16);
  bytes.set([0xc3], 32);
  bytes.set([0xf3, 0x0f, 0x1e, 0xfa, 0xc3], 48);
  const sym = (name: string, offset: number, size: number) => ({
    name,
    address: CODE_BASE + offset,
    size,
    payload: false,
  });
  const plain = CodeImage.fromBytes(bytes.subarray(0, 48), [
    sym("root", 0, 10),
    sym("taken", 16, 1),
    sym("other", 32, 1),
  ]);

  it("follows a call through a register to every address-taken function, naming the site", () => {
    expect(plain.addressTakenFunctions()).toEqual(["taken"]);
    const g = plain.callGraphOverApproximated(["root"]);
    expect(g.unknownSites).toEqual(["root+0x7"]);
    expect(g.paths.get("taken")).toEqual([
      "root",
      "[indirect call at root+0x7 -> any address-taken function]",
      "taken",
    ]);
    expect(g.paths.has("other")).toBe(false);
    // The direct call graph does not see it: that is the gap the over-approximation closes.
    expect(plain.callGraph(["root"]).has("taken")).toBe(false);
  });

  it("in an IBT build every function that begins with ENDBR64 is address-taken", () => {
    const ibt = CodeImage.fromBytes(bytes, [
      sym("root", 0, 10),
      sym("taken", 16, 1),
      sym("other", 32, 1),
      sym("marked", 48, 5),
    ]);
    expect(ibt.addressTakenFunctions()).toEqual(["taken", "marked"]);
    expect(ibt.callGraphOverApproximated(["root"]).paths.has("marked")).toBe(true);
  });

  it("with no address-taken function, a call through a register leaves reachability unknown", () => {
    // root: nop | call rax | ret; other: ret. Nothing bounds the call: it must not be taken to reach nothing.
    const none = new Uint8Array(48).fill(0xcc);
    none.set([0x90, 0xff, 0xd0, 0xc3], 0);
    none.set([0xc3], 32);
    const image = CodeImage.fromBytes(none, [sym("root", 0, 4), sym("other", 32, 1)]);
    expect(image.addressTakenFunctions()).toEqual([]);
    const g = image.callGraphOverApproximated(["root"]);
    expect([...g.paths.keys()]).toEqual(["root"]);
    expect(g.unknown).toEqual([
      "indirect call sites at root+0x1, whose targets are unknown, and no function's address is taken (stored in data, named by code, or marked with ENDBR64) to bound them",
    ]);
    expect(plain.callGraphOverApproximated(["root"]).unknown).toEqual([]);
  });

  it("takes no branch from vmlaunch or vmresume, which iced-x86 gives a call's flow but no target", () => {
    // vmx: vmresume | jmp next | next: vmlaunch | ret (as in Xen's vmx_asm_vmexit_handler)
    const vmx = new Uint8Array(16).fill(0xcc);
    vmx.set([0x0f, 0x01, 0xc3, 0xeb, 0x00, 0x0f, 0x01, 0xc2, 0xc3], 0);
    const image = CodeImage.fromBytes(vmx, [sym("vmx", 0, 9)]);
    expect(image.branchesOf("vmx").map((b) => [b.kind, b.target])).toEqual([["jump", CODE_BASE + 5]]);
    expect(image.sweep(CODE_BASE, vmx.subarray(0, 9)).fallsThrough).toBe(false);
    expect(image.sweep(CODE_BASE, vmx.subarray(0, 8)).fallsThrough).toBe(true);
  });

  it("a function the binary stores in data is address-taken", () => {
    const stored = CodeImage.fromBytes(bytes.subarray(0, 48), [
      sym("root", 0, 10),
      sym("taken", 16, 1),
      { ...sym("other", 32, 1), addressTaken: true },
    ]);
    expect(stored.callGraphOverApproximated(["root"]).paths.get("other")).toEqual([
      "root",
      "[indirect call at root+0x7 -> any address-taken function]",
      "other",
    ]);
  });
});
