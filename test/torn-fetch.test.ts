// The torn instruction of the issue: CPU 0 starts fetching the 5-byte NOP `0f 1f 44 00 00` while CPU 1
// writes `cc 23 00 10 00` over it one byte at a time (int3 first, then the displacement, as the seed's
// option 2 does). With bytewise fetch (H9) CPU 0 can read byte 0 before the int3 lands and bytes 1-2
// after, and decode `0f 23 00` = `mov dr0, rax`, a privileged instruction nobody wrote. With atomic fetch
// that decoding is unreachable.
import fc from "fast-check";
import { Mnemonic } from "iced-x86";
import { describe, expect, it } from "vitest";
import { ContextKind, CrashKind, Ev } from "../dist/model/events.js";
import { RunStatus } from "../dist/model/memory.js";
import { call, Mark, mark, memcpyCode, type Routine } from "../dist/model/routine.js";
import type { FetchModel } from "../dist/model/types.js";
import { disassemble } from "../dist/model/x86.js";
import { evaluate, type LogRecord } from "../dist/properties/invariants.js";
import { type LitmusRun, litmus } from "./helpers/litmus.js";

const NOP5 = [0x0f, 0x1f, 0x44, 0x00, 0x00];
const WRITTEN = [0xcc, 0x23, 0x00, 0x10, 0x00];

/** CPU 0 calls the pad `calls` times; CPU 1 writes WRITTEN over it byte by byte. The pad is the patch site. */
function machine(fetch: FetchModel, calls = 1) {
  return litmus({
    cpus: 2,
    fetch,
    functions: [{ name: "pad", code: ["nop5", "ret"] }],
    patch: { target: "pad", payload: "payload" },
    // A CPU that meets the int3 skips the pad: the handler resumes at its `ret` (pad + 5).
    *bpHandler(ctx, env) {
      yield mark(Mark.BpSite);
      ctx.frame.rip = env.addr("pad") + 5;
      return 1;
    },
    *program(ctx, env): Routine {
      const pad = env.addr("pad");
      if (ctx.cpu === 0) {
        for (let i = 0; i < calls; i++) yield call(pad);
      } else {
        yield* memcpyCode(pad, WRITTEN);
      }
    },
  });
}

/** Every instruction CPU 0 decoded at the pad: [bytes fetched], from its Fetch records. */
function decodedAt(run: LitmusRun, pad: number): number[][] {
  const out: number[][] = [];
  let current: LogRecord[] = [];
  for (const r of run.log) {
    if (r.cpu !== 0) continue;
    if (r.kind === Ev.Fetch) {
      if (r.addr === pad) current = [];
      current.push(r);
    }
    const ends =
      (r.kind === Ev.Exec && r.addr === pad) || (r.kind === Ev.Crash && r.addr === pad && current.length > 0);
    if (ends && current.length > 0 && current[0].addr === pad) {
      out.push(current.map((f) => f.a));
      current = [];
    }
  }
  return out;
}

describe("torn fetch of a 5-byte NOP", () => {
  it("bytewise fetch can decode 0f 23 00 (mov dr0, rax): a P1 torn crash of length 3", () => {
    const m = machine("bytewise");
    const pad = m.env.addr("pad");
    expect(Array.from(m.spec.image.functionBytes("pad"))).toEqual([...NOP5, 0xc3]);
    // CPU 0: call, fetch byte 0 (0f); CPU 1: write cc, 23, 00; CPU 0: fetch bytes 1 (23) and 2 (00).
    const run = m.run([0, 0, 1, 0, 0, 1, 0]);
    expect(run.status, run.dump()).toBe(RunStatus.Crash);

    const fetches = run.of(Ev.Fetch, 0).filter((r) => r.addr >= pad && r.addr < pad + 5);
    expect(fetches.map((r) => [r.addr - pad, r.a, r.b, r.c])).toEqual([
      [0, 0x0f, -1, 0], // from the image, before the int3 landed
      [1, 0x23, 1, 2], // CPU 1's second write
      [2, 0x00, 1, 3], // CPU 1's third write
    ]);
    const writes = run.of(Ev.CodeWrite, 1);
    expect(writes.map((r) => [r.addr - pad, r.a, r.b, r.c])).toEqual([
      [0, 0xcc, 1, 1],
      [1, 0x23, 2, 1],
      [2, 0x00, 3, 1],
    ]);
    // The writes landed between the first and the second fetched byte.
    expect(writes[0].index).toBeGreaterThan(fetches[0].index);
    expect(writes[2].index).toBeLessThan(fetches[1].index);

    const crash = run.of(Ev.Crash);
    expect(crash).toHaveLength(1);
    expect([crash[0].cpu, crash[0].addr, crash[0].a, crash[0].b]).toEqual([0, pad, CrashKind.Torn, 3]);
    expect(crash[0].c & 0xffffff).toBe(0x00230f); // the three bytes decoded, little-endian
    expect(disassemble([0x0f, 0x23, 0x00], pad)).toBe("mov dr0,rax");
    expect(run.of(Ev.Exec, 0).filter((r) => r.addr === pad)).toHaveLength(0); // it never executed

    const p1 = evaluate(m.spec, run.mem, "P1");
    expect(p1).toHaveLength(1);
    expect(p1[0].kind).toBe("torn-fetch");
    expect(p1[0].message).toContain("decoded `mov dr0,rax` (0f 23 00) at pad");
    expect(p1[0].message).toContain("byte 0 old, byte 1 written by CPU 1");
  });

  it("atomic fetch never decodes 0f 23 00 at the pad, whatever the interleaving", () => {
    const m = machine("atomic", 3);
    const pad = m.env.addr("pad");
    let sawInt3 = 0;
    let sawNop = 0;
    fc.assert(
      fc.property(fc.array(fc.nat(20), { maxLength: 40 }), (tape) => {
        const run = m.run(tape);
        expect(run.status, run.error).not.toBe(RunStatus.Error);
        for (const bytes of decodedAt(run, pad)) {
          expect(bytes.slice(0, 3)).not.toEqual([0x0f, 0x23, 0x00]);
          // A whole instruction in one step: byte 0 decides, the NOP is all old.
          if (bytes[0] === 0xcc) sawInt3++;
          else {
            expect(bytes).toEqual(NOP5);
            sawNop++;
          }
        }
        for (const e of run.of(Ev.Exec, 0)) {
          if (e.addr === pad) expect([Mnemonic.Nop, Mnemonic.Int3]).toContain(e.b);
        }
        expect(run.of(Ev.Crash).filter((r) => r.a === CrashKind.Torn)).toHaveLength(0);
      }),
      { numRuns: 300, seed: 4242 },
    );
    // The exploration reached both outcomes, so it did race the writes against the fetches.
    expect(sawInt3).toBeGreaterThan(0);
    expect(sawNop).toBeGreaterThan(0);
  });

  it("the same exploration under bytewise fetch does find 0f 23 00", () => {
    // The contrast that makes the atomic test meaningful: the same machine and tape space.
    const m = machine("bytewise", 3);
    const pad = m.env.addr("pad");
    const found = fc.check(
      fc.property(fc.array(fc.nat(20), { maxLength: 40 }), (tape) => {
        const run = m.run(tape);
        return !decodedAt(run, pad).some((b) => b[0] === 0x0f && b[1] === 0x23 && b[2] === 0x00);
      }),
      { numRuns: 3000, seed: 4242 },
    );
    expect(found.failed).toBe(true);
    const tape = found.counterexample?.[0] ?? [];
    const run = m.run(tape);
    const crash = run.of(Ev.Crash)[0];
    expect([crash.a, crash.b, crash.c & 0xffffff]).toEqual([CrashKind.Torn, 3, 0x00230f]);
  });

  it("a CPU that meets the int3 at the pad takes #BP and skips the pad", () => {
    const m = machine("bytewise");
    const pad = m.env.addr("pad");
    // CPU 1 writes the int3 first; then CPU 0 runs.
    const run = m.run([1, 0, 1]);
    expect(run.status, run.dump()).toBe(RunStatus.Finished);
    expect(run.of(Ev.BpDeliver, 0).map((r) => r.addr)).toEqual([pad]);
    expect(run.of(Ev.Iret, 0).map((r) => r.a)).toEqual([ContextKind.Bp]);
    expect(run.of(Ev.Exec, 0).map((r) => r.addr - pad)).toEqual([0, 5]);
  });
});
