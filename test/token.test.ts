import { describe, expect, it } from "vitest";
import { decodeTape, decodeToken, encodeTape, encodeToken } from "../properties/token.js";

describe("replay tokens", () => {
  it("round-trips a tape with runs of zeros", () => {
    const tape = [0, 0, 0, 7, 0, 12, 0, 0];
    expect(encodeTape(tape)).toBe("_3.7.0.12._2");
    expect(decodeTape(encodeTape(tape))).toEqual(tape);
    expect(decodeTape("-")).toEqual([]);
  });

  it("round-trips a whole token", () => {
    const config = {
      protocol: "xen-4.8",
      scenario: "nmi-path",
      hardware: { cpus: 4, fetch: "bytewise" as const, nmis: 3, mces: 0, stepBound: 20000 },
    };
    const token = encodeToken(config, [0, 5, 0]);
    expect(token).toBe("xen-4.8/nmi-path/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/0.5.0");
    expect(decodeToken(token)).toEqual({ config, tape: [0, 5, 0] });
  });

  it("rejects malformed tokens with a message naming the part", () => {
    expect(() => decodeToken("xen-4.8/nmi-path")).toThrow(/expected protocol\/scenario\/hardware\/tape/);
    expect(() => decodeToken("a/b/cpus=4,fetch=warp,nmis=1,mces=0,bound=100/-")).toThrow(
      /fetch must be one of/,
    );
    expect(() => decodeToken("a/b/cpus=4,fetch=atomic,nmis=1,mces=0,bound=100/1.x")).toThrow(
      /'x' is not a tape value/,
    );
    expect(() => decodeToken("a/b/cpus=4,fetch=atomic,nmis=1,bound=100/-")).toThrow(/lacks 'mces'/);
  });
});
