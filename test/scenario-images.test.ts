// defineScenario's other images and payloads: raw bytes at an address, a payload left out (a copy of
// the patched function from the site on), and a relocatable payload object (ET_REL) linked against
// an ELF image, with the errors each names.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { check, defineScenario, type ScenarioDefinition } from "../dist/api/index.js";
import { CODE_BASE } from "../dist/model/image.js";
import { writeElf } from "../dist/scripts/elf-writer.js";
import { makePayloadFixture, PAYLOAD_PATH } from "../dist/scripts/make-elf-fixture.js";

const ELF = fileURLToPath(new URL("./fixtures/callgraph.elf", import.meta.url));
const PAYLOAD = fileURLToPath(new URL("./fixtures/payload.o", import.meta.url));

/** work: endbr64; push rbp; mov rbp,rsp; call helper; pop rbp; ret; then int3 padding and helper: ret. */
const BYTES = "f3 0f 1e fa 55 48 89 e5 e8 05 00 00 00 5d c3 cc cc cc c3";
/** Across a page boundary, at Xen-like addresses beyond exact JavaScript numbers. */
const ADDRESS = 0xffff82d0_40200ff8n;

const raw: ScenarioDefinition = {
  name: "raw-bytes",
  image: {
    bytes: BYTES,
    address: ADDRESS,
    symbols: [
      { name: "work", offset: 0, size: 15 },
      { name: "helper", address: ADDRESS + 18n, size: 1 },
    ],
  },
  patch: { target: "work+4" },
  workload: "work",
  nmiService: "helper",
};

describe("a raw-bytes image", () => {
  it("keeps each byte's page offset, so the rel32 call still reaches helper", () => {
    const s = defineScenario(raw);
    const image = s.image;
    if (!image) throw new Error("a raw-bytes scenario carries its image");
    expect(image.symbol("work").address).toBe(CODE_BASE + 0xff8);
    expect(image.symbol("helper").address).toBe(CODE_BASE + 0xff8 + 18);
    expect(image.callees("work")).toEqual(["helper"]);
    expect(() => image.resolve("work+2")).toThrow("is inside an instruction of 'work'");
  });

  it("takes the bytes as a Uint8Array as well as hex", () => {
    const bytes = Uint8Array.from(BYTES.split(" "), (h) => Number.parseInt(h, 16));
    const s = defineScenario({ ...raw, image: { ...raw.image, bytes } as ScenarioDefinition["image"] });
    expect(s.image?.callees("work")).toEqual(["helper"]);
  });

  it("names what is wrong", () => {
    const bad = (image: Record<string, unknown>) => () =>
      defineScenario({ ...raw, image: { ...raw.image, ...image } } as ScenarioDefinition);
    expect(bad({ bytes: "" })).toThrow(
      "scenario 'raw-bytes': image.bytes is empty: give the machine code of the functions",
    );
    expect(bad({ bytes: "f3 0f 1" })).toThrow(
      "scenario 'raw-bytes': image.bytes: 5 hex digits, an odd number: every byte needs two",
    );
    expect(bad({ bytes: "f3 0g" })).toThrow("scenario 'raw-bytes': image.bytes: 'g' is not a hex digit");
    expect(
      bad({
        symbols: [
          { name: "work", offset: 0, size: 15 },
          { name: "helper", offset: 14, size: 1 },
        ],
      }),
    ).toThrow("scenario 'raw-bytes': image.symbols 'work' (+0, 15 bytes) and 'helper' (+14) overlap");
    expect(bad({ symbols: [{ name: "work", offset: 0, size: 20 }] })).toThrow(
      "scenario 'raw-bytes': image.symbols[0] 'work' (0xffff82d040200ff8, 20 bytes) lies outside the bytes (0xffff82d040200ff8..0xffff82d04020100b)",
    );
    expect(bad({ symbols: [{ name: "work", address: ADDRESS - 1n, size: 2 }] })).toThrow(
      "scenario 'raw-bytes': image.symbols[0] 'work' (0xffff82d040200ff7, 2 bytes) lies outside the bytes",
    );
    expect(bad({ symbols: [{ name: "work", offset: 0, address: ADDRESS, size: 2 }] })).toThrow(
      "scenario 'raw-bytes': image.symbols[0] 'work' needs an 'offset' into the bytes or an 'address', not both",
    );
    expect(bad({ symbols: [{ name: "work", offset: 0, size: 0 }] })).toThrow(
      "scenario 'raw-bytes': image.symbols[0] 'work': size must be a whole number of bytes, at least 1, not 0",
    );
  });
});

describe("a payload left out", () => {
  it("is the patched function from the site on, moved, its call still reaching send_event", () => {
    const s = defineScenario({
      name: "copy-payload",
      image: { elf: ELF },
      patch: { target: "mce_handler+4" },
      workload: "mce_handler",
      nmiService: "hook_b",
    });
    const image = s.image;
    if (!image) throw new Error("an ELF scenario carries its image");
    expect(s.patch).toEqual({ target: "mce_handler+4", payload: "livepatch.mce_handler" });
    expect(image.symbol("livepatch.mce_handler").payload).toBe(true);
    // call send_event; ret: the same instructions, a new rel32
    const copy = image.functionBytes("livepatch.mce_handler");
    expect(copy[0]).toBe(0xe8);
    expect(copy[5]).toBe(0xc3);
    expect(image.callees("livepatch.mce_handler")).toEqual(["send_event"]);
  });

  it("is checked like any payload: the probe reaches it, and a tear at the site is found", async () => {
    const s = defineScenario({ ...raw, name: "raw-bytes-nmi", nmiService: "work", workload: "helper" });
    const verdict = await check({ protocol: "no-mask", scenario: s, properties: ["P1", "P6"], runs: 300 });
    if (verdict.kind !== "violated") throw new Error(`expected a violation, got ${verdict.kind}`);
    const [p1, p6] = verdict.properties;
    expect(p1.violation?.kind).toBe("torn-fetch");
    expect(p1.violation?.message).toMatch(
      /^CPU [0-3] decoded .* at work\+0x[4-8]: byte \d written by CPU 0 at step \d+/,
    );
    expect(p6).toMatchObject({ property: "P6", holds: true });
  });
});

describe("a payload object (ET_REL)", () => {
  const scenario = (name: string, extra: Partial<ScenarioDefinition> = {}): ScenarioDefinition => ({
    name,
    image: { elf: ELF, payload: { elf: PAYLOAD } },
    patch: { target: "mce_handler+4" },
    workload: "mce_handler",
    nmiService: "hook_b",
    ...extra,
  });

  it("is the committed fixture that scripts/make-elf-fixture.ts writes", () => {
    expect(Buffer.from(makePayloadFixture()).equals(readFileSync(PAYLOAD_PATH))).toBe(true);
  });

  it("is placed after the image, its PLT32 and PC32 calls linked to the image's functions", () => {
    const s = defineScenario(scenario("payload-object"));
    const image = s.image;
    if (!image) throw new Error("an ELF scenario carries its image");
    // The object's mce_handler replaces the image's: same name, so it is named by its object.
    expect(s.patch).toEqual({ target: "mce_handler+4", payload: "payload:mce_handler" });
    expect(image.callees("payload:mce_handler")).toEqual(["send_event", "helper2"]);
    expect((image.symbol("payload:mce_handler").address - CODE_BASE) % 0x1000).toBe(0);
  });

  it("is checked: the probe runs the object's function, and a tear at the site is found", async () => {
    const s = defineScenario(scenario("payload-object-nmi", { nmiService: "mce_handler" }));
    const verdict = await check({ protocol: "no-mask", scenario: s, properties: ["P1", "P6"], runs: 300 });
    if (verdict.kind !== "violated") throw new Error(`expected a violation, got ${verdict.kind}`);
    const [p1, p6] = verdict.properties;
    expect(p1.violation?.kind).toBe("torn-fetch");
    expect(p1.violation?.message).toMatch(
      /^CPU [0-3] decoded .* at mce_handler\+0x[4-8]: byte \d written by CPU 0 at step \d+/,
    );
    expect(p6).toMatchObject({ property: "P6", holds: true });
  });

  it("refuses a relocation it does not handle, naming it", () => {
    const bytes = writeElf({
      type: "rel",
      sections: [
        {
          name: ".text",
          type: 1,
          flags: 6n,
          address: 0n,
          bytes: Uint8Array.from([0xff, 0x15, 0, 0, 0, 0, 0xc3]),
        },
      ],
      symbols: [
        { name: "mce_handler", value: 0n, size: 7, type: "func", bind: "global", section: ".text" },
        { name: "send_event", value: 0n, size: 0, type: "notype", bind: "global", section: "UNDEF" },
      ],
      relocations: [
        { section: ".text", offset: 2, type: 9 /* R_X86_64_GOTPCREL */, symbol: "send_event", addend: -4n },
      ],
    });
    expect(() =>
      defineScenario(scenario("payload-got", { image: { elf: ELF, payload: { elf: bytes } } })),
    ).toThrow(
      "scenario 'payload-got': payload object: relocation R_X86_64_GOTPCREL at .text+0x2 (against 'send_event') is not handled; handled: R_X86_64_64, R_X86_64_PC32, R_X86_64_PLT32, R_X86_64_32, R_X86_64_32S",
    );
  });

  it("names a site whose function the object does not replace", () => {
    expect(() => defineScenario(scenario("payload-none", { patch: { target: "hook_b+4" } }))).toThrow(
      "scenario 'payload-none': patch has no payload, and the payload object defines no 'hook_b' to replace 'hook_b+4' with: name the payload function (payload: \"...\")",
    );
  });
});
