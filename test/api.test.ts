// The public API (api/index.ts, the package's main export): defineProtocol and defineScenario report
// bad input by name, a variant derived from a built-in protocol reads its data words by name, and
// check() takes protocol and scenario objects.
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  check,
  defineProtocol,
  defineScenario,
  type HandoverWords,
  int3Restartable,
  protocolWords,
  type ScenarioDefinition,
  store,
} from "../dist/api/index.js";
import { DEFAULT_HARDWARE, defineMachine } from "../dist/model/machine.js";

const ELF = fileURLToPath(new URL("./fixtures/callgraph.elf", import.meta.url));

const small: ScenarioDefinition = {
  name: "api-small",
  image: {
    functions: [
      { name: "work", code: ["push rbp", "mov rbp, rsp", "call patched", "pop rbp", "ret"] },
      { name: "nmi_work", code: ["push rbp", "mov rbp, rsp", "pop rbp", "ret"] },
      {
        name: "patched",
        code: [
          "db f3 0f 1e fa",
          "push rbp",
          "mov rbp, rsp",
          "sub rsp, 16",
          "mov eax, 1",
          "add rsp, 16",
          "pop rbp",
          "ret",
        ],
      },
      {
        name: "new_patched",
        payload: true,
        code: ["push rbp", "mov rbp, rsp", "mov eax, 2", "pop rbp", "ret"],
      },
    ],
  },
  patch: { target: "patched+4", payload: "new_patched" },
  workload: "work",
  nmiService: "nmi_work",
};

describe("defineScenario", () => {
  it("accepts a site after ENDBR64 and fills the defaults", () => {
    const s = defineScenario(small);
    expect(s).toMatchObject({
      name: "api-small",
      eventRoots: ["nmi_work"],
      annotatedBlacklist: [],
      iterations: 2,
      nmis: 3,
      mces: 0,
      mceService: [],
    });
  });

  it("names what is wrong", () => {
    const bad = (change: Partial<ScenarioDefinition> | Record<string, unknown>) => () =>
      defineScenario({ ...small, ...change } as ScenarioDefinition);
    expect(bad({ workload: undefined })).toThrow(
      "scenario 'api-small' has no 'workload': name the function every CPU runs",
    );
    expect(bad({ workload: "nowhere" })).toThrow(
      "scenario 'api-small': workload 'nowhere' is not a function of its image (its functions: work, nmi_work, patched, new_patched)",
    );
    expect(bad({ workload: "new_patched" })).toThrow(
      "scenario 'api-small': workload 'new_patched' is a payload function, not running code",
    );
    expect(bad({ patch: { target: "patched+2", payload: "new_patched" } })).toThrow(
      "scenario 'api-small': patch.target: 'patched+2' is inside an instruction of 'patched': choose an instruction boundary (+0 +4 +5 +8",
    );
    expect(bad({ patch: { target: "patched+21", payload: "new_patched" } })).toThrow(
      "scenario 'api-small': patch.target 'patched+21' leaves no room for the 5-byte jump: 'patched' is 23 bytes and the site is at +21",
    );
    expect(bad({ patch: { target: "patched", payload: "gone" } })).toThrow(
      "scenario 'api-small': patch.payload 'gone' is not a function of its image",
    );
    expect(bad({ mces: 1 })).toThrow("scenario 'api-small' has mces: 1 but no 'mceService'");
    expect(bad({ nmis: 1.5 })).toThrow(
      "scenario 'api-small': 'nmis' must be a whole number from 0 to 16, not 1.5",
    );
    expect(bad({ name: "a/b" })).toThrow("a scenario needs a 'name' of letters, digits");
    expect(bad({ image: { functions: [{ name: "work", code: ["frobnicate"] }] } })).toThrow(
      "scenario 'api-small': function 'work': cannot assemble 'frobnicate'",
    );
    expect(bad({ image: { elf: ELF }, workload: "no_such_fn", nmiService: "send_event" })).toThrow(
      `scenario 'api-small': ${ELF}: unknown function 'no_such_fn'`,
    );
    expect(bad({ image: { elf: "/nonexistent.elf" } })).toThrow(
      "scenario 'api-small': cannot read the ELF file '/nonexistent.elf': ENOENT",
    );
  });

  it("builds an ELF scenario from the reached functions and an assembly payload", () => {
    const s = defineScenario({
      name: "api-elf",
      image: {
        elf: ELF,
        payload: [{ name: "new_far_handler", code: ["push rbp", "call send_event", "pop rbp", "ret"] }],
      },
      patch: { target: "far_handler+4", payload: "new_far_handler" },
      workload: "nmi_slow",
      nmiService: "mce_handler",
    });
    const image = s.image;
    if (!image) throw new Error("an ELF scenario carries its image");
    // nmi_slow -> far_handler -> send_event, low_target (the jump back over 1 MiB), the return thunk.
    for (const f of [
      "nmi_slow",
      "far_handler",
      "send_event",
      "low_target",
      "__x86_return_thunk",
      "mce_handler",
    ])
      expect(image.symbols.has(f), f).toBe(true);
    expect(image.symbols.has("do_nmi")).toBe(false);
    expect(image.symbol("new_far_handler").payload).toBe(true);
    expect(() => image.resolve("far_handler+2")).toThrow("is inside an instruction of 'far_handler'");
  });
});

describe("defineProtocol", () => {
  it("names what is missing", () => {
    expect(() => defineProtocol({ name: "p", summary: "s" } as never)).toThrow(
      "protocol 'p' has no 'master' routine: the generator CPU 0 runs to apply the patch",
    );
    expect(() => defineProtocol({ ...int3Restartable, name: "p", poll: 3 } as never)).toThrow(
      "protocol 'p': 'poll' must be a function (a routine), not number",
    );
    expect(() => defineProtocol({ ...int3Restartable, name: "p", os: "dos" } as never)).toThrow(
      "protocol 'p': os must be one of xen, linux, fred, not 'dos'",
    );
  });

  it("derives a variant that reads the built-in protocol's data words by name", async () => {
    const seen: number[] = [];
    const variant = defineProtocol({
      ...int3Restartable,
      name: "api-int3-variant",
      summary: "int3-restartable, with a master that first looks at the handover words",
      expected: {},
      *master(ctx) {
        const w = protocolWords<HandoverWords>(ctx.spec);
        seen.push(w.armed, ctx.spec.words.word("livepatch_handover.armed"));
        yield store(w.armed, 0);
        yield* int3Restartable.master(ctx);
      },
    });
    const scenario = defineScenario({ ...small, name: "api-small-variant" });
    const spec = defineMachine(
      { protocol: variant.name, scenario: scenario.name, hardware: DEFAULT_HARDWARE },
      variant,
      scenario,
    );
    expect(protocolWords<HandoverWords>(spec).armed).toBe(spec.words.word("livepatch_handover.armed"));
    const verdict = await check({
      protocol: variant,
      scenario,
      properties: ["P1", "P6"],
      runs: 50,
      seeds: 1,
    });
    expect(verdict.kind).toBe("holds");
    expect(seen.length).toBeGreaterThan(0);
    expect(seen[0]).toBe(seen[1]);
  });

  it("check() refuses a second protocol under a built-in name", async () => {
    await expect(
      check({ protocol: { ...int3Restartable, master: int3Restartable.master }, scenario: "normal" }),
    ).rejects.toThrow(
      "check: another protocol named 'int3-restartable' is already defined (a built-in one): give yours its own name",
    );
  });
});
