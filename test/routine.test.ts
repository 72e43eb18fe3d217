// The step language's data-word table (model/routine WordTable).
import { afterEach, describe, expect, it, vi } from "vitest";
import { WordTable } from "../dist/model/routine.js";

describe("WordTable", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("gives words in allocation order and rejects a name allocated twice", () => {
    const t = new WordTable();
    expect(t.alloc("a")).toBe(0);
    expect(t.allocPerCpu("b", 2, 7)).toEqual([1, 2]);
    expect(t.names).toEqual(["a", "b[0]", "b[1]"]);
    expect(t.initial).toEqual([0, 7, 7]);
    expect(t.name(2)).toBe("b[1]");
    expect(() => t.alloc("b[1]")).toThrow("data word 'b[1]' is allocated twice");
  });

  it("finds a duplicate without scanning the names allocated so far (allocation stays linear)", () => {
    const t = new WordTable();
    for (let i = 0; i < 1000; i++) t.alloc(`w${i}`);
    // A scan of the table per allocation made 10^5 words take 30 s: count the scans of `names`.
    let scans = 0;
    for (const method of ["includes", "indexOf", "some", "find", "findIndex", "lastIndexOf"] as const) {
      const original = Array.prototype[method] as (...args: unknown[]) => unknown;
      vi.spyOn(Array.prototype, method).mockImplementation(function (this: unknown[], ...args: unknown[]) {
        if (this === t.names) scans++;
        return original.apply(this, args);
      });
    }
    for (let i = 1000; i < 2000; i++) t.alloc(`w${i}`);
    expect(() => t.alloc("w1500")).toThrow("allocated twice");
    expect(scans).toBe(0);
    expect(t.names.length).toBe(2000);
  });
});
