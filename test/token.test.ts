import { describe, expect, it } from "vitest";
import { MODEL_VERSION } from "../dist/model/version.js";
import { decodeTape, decodeToken, encodeTape, encodeToken } from "../dist/properties/token.js";

const V = `v${MODEL_VERSION}`;
const HW = "cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000";

describe("replay tokens", () => {
  it("round-trips a tape with runs of zeros", () => {
    const tape = [0, 0, 0, 7, 0, 12, 0, 0];
    expect(encodeTape(tape)).toBe("_3.7.0.12._2");
    expect(decodeTape(encodeTape(tape))).toEqual(tape);
    expect(decodeTape("-")).toEqual([]);
  });

  it("round-trips a whole token, which starts with the model version", () => {
    const config = {
      protocol: "xen-4.8",
      scenario: "nmi-path",
      hardware: { cpus: 4, fetch: "bytewise" as const, nmis: 3, mces: 0, stepBound: 20000 },
    };
    const token = encodeToken(config, [0, 5, 0]);
    expect(token).toBe(`${V}/xen-4.8/nmi-path/${HW}/0.5.0`);
    expect(decodeToken(token)).toEqual({ config, tape: [0, 5, 0] });
  });

  it("rejects malformed tokens with a message naming the part", () => {
    expect(() => decodeToken(`${V}/xen-4.8/nmi-path`)).toThrow(
      /expected v\d+\/protocol\/scenario\/hardware\/tape/,
    );
    expect(() => decodeToken(`${V}/a/b/cpus=4,fetch=warp,nmis=1,mces=0,bound=100/-`)).toThrow(
      /fetch must be one of/,
    );
    expect(() => decodeToken(`${V}/a/b/cpus=4,fetch=atomic,nmis=1,mces=0,bound=100/1.x`)).toThrow(
      /'x' is not a tape value/,
    );
    expect(() => decodeToken(`${V}/a/b/cpus=4,fetch=atomic,nmis=1,bound=100/-`)).toThrow(/lacks 'mces'/);
  });
});

describe("a token from another model version", () => {
  it("is refused, saying which version made it and which this is", () => {
    const old = `no-mask/nmi-path/${HW}/_25.7._6.7._23.1`;
    expect(() => decodeToken(old)).toThrow(
      new RegExp(
        `has no model version: it comes from a livepatch-check older than model version 1.*this is model version ${MODEL_VERSION}`,
      ),
    );
    const other = `v${MODEL_VERSION + 1}/no-mask/nmi-path/${HW}/_25.7`;
    expect(() => decodeToken(other)).toThrow(
      `the token was made by model version ${MODEL_VERSION + 1}, but this livepatch-check is model version ${MODEL_VERSION}`,
    );
    expect(() => decodeToken(`vx/no-mask/nmi-path/${HW}/-`)).toThrow(/'vx' is not a model version/);
  });
});

describe("tokens are held to the command's limits", () => {
  const token = (hw: string, tape = "-") => `${V}/no-mask/nmi-path/${hw}/${tape}`;

  it("bounds the decoded tape by the step bound while parsing, before allocating it", () => {
    // 1,000 runs of a million zeros: 10^9 values if decoded first (a V8 fatal error); the step bound allows 20,016.
    const huge = Array.from({ length: 1000 }, () => "_1000000").join(".");
    expect(() => decodeToken(token(HW, huge))).toThrow(
      "the tape has more than 20016 values, more than a run with step bound 20000 can consume",
    );
    expect(() => decodeToken(token(HW, "_20016.1"))).toThrow(/more than 20016 values/);
    expect(decodeToken(token(HW, "_20015.1")).tape).toHaveLength(20016);
    expect(() => decodeTape(huge)).toThrow(/more than 1000016 values/);
  });

  it("holds each hardware number to the command's range", () => {
    for (const [field, text] of [
      ["cpus=1", /cpus must be a whole number from 2 to 16, not 1/],
      ["cpus=17", /cpus must be a whole number from 2 to 16, not 17/],
      ["nmis=1000000", /nmis must be a whole number from 0 to 16, not 1000000/],
      ["mces=17", /mces must be a whole number from 0 to 16, not 17/],
      ["bound=99", /bound must be a whole number from 100 to 1000000, not 99/],
      ["bound=1000001", /bound must be a whole number from 100 to 1000000, not 1000001/],
    ] as const) {
      const [k] = field.split("=");
      const hw = HW.replace(new RegExp(`${k}=\\d+`), field);
      expect(() => decodeToken(token(hw)), field).toThrow(text);
    }
  });

  it("rejects a hardware field given twice", () => {
    expect(() => decodeToken(token(`${HW},cpus=2`))).toThrow("hardware field 'cpus' is given twice");
    expect(() => decodeToken(token(`${HW},os=xen,os=linux`))).toThrow("hardware field 'os' is given twice");
  });

  it("rejects tape values that do not fit the tape (2^31 and above) instead of wrapping them", () => {
    expect(() => decodeToken(token(HW, "1.2147483648"))).toThrow(
      "tape value 2147483648 is too large: tape values are below 2^31",
    );
    expect(decodeToken(token(HW, "1.2147483647")).tape).toEqual([1, 2147483647]);
  });
});
