// fast-check arbitraries that produce tapes (SPEC §8). A tape is mostly zeros ("keep running the
// current CPU"); the arbitraries place a few non-zero choices (a preemption, an event, a branch) at
// positions, so shrinking removes choices and moves them earlier: fewer preemptions, fewer events,
// shorter runs.
import fc from "fast-check";
import type { PctParams } from "./tape.js";

/**
 * random: sparse random tapes; bounded: at most k non-zero choices; pct: PCT; exhaustive: every run
 * within bounds (explore.ts); portfolio: exhaustive to small bounds, then random and PCT.
 */
export type StrategyName = "random" | "bounded" | "pct" | "exhaustive" | "portfolio";
export const STRATEGIES: StrategyName[] = ["portfolio", "exhaustive", "random", "bounded", "pct"];

/** One non-zero choice of a sparse tape: (position, value). */
export type Choice = [number, number];

/**
 * Sparse choices: (position, value) pairs, positions uniform over `span` choices, laid over zeros by
 * choicesToTape. Shrinking drops pairs and moves them earlier: fewer preemptions and events, shorter runs.
 */
export function sparseChoices(span: number, maxChoices: number, maxValue = 63): fc.Arbitrary<Choice[]> {
  return fc.array(fc.tuple(fc.noBias(fc.nat({ max: span - 1 })), fc.integer({ min: 1, max: maxValue })), {
    maxLength: maxChoices,
    size: "medium",
  });
}

export function choicesToTape(pairs: readonly Choice[]): number[] {
  const length = pairs.reduce((n, [p]) => Math.max(n, p + 1), 0);
  const tape = new Array<number>(length).fill(0);
  for (const [p, v] of pairs) tape[p] = v;
  return tape;
}

/**
 * The pairs of a tape. Trailing zeros matter (until the tape runs out, 0 keeps the current CPU
 * running; after it, a round-robin takes over), so a tape that ends in zeros keeps its length with
 * a last (position, 0) pair.
 */
export function tapeToChoices(tape: readonly number[]): Choice[] {
  const pairs: Choice[] = [];
  tape.forEach((v, p) => {
    if (v !== 0) pairs.push([p, v]);
  });
  if (tape.length > 0 && tape[tape.length - 1] === 0) pairs.push([tape.length - 1, 0]);
  return pairs;
}

/** Sparse tapes (choices laid over zeros), for callers that want tapes directly. */
export function sparseTape(span: number, maxChoices: number, maxValue = 63): fc.Arbitrary<number[]> {
  return sparseChoices(span, maxChoices, maxValue).map(choicesToTape);
}

/** PCT parameters for `cpus` CPUs and bug depth `depth`, with up to `events` planned external events. */
export function pctParams(
  cpus: number,
  depth: number,
  span: number,
  events: number,
  eventKinds: number,
): fc.Arbitrary<PctParams> {
  const ids = Array.from({ length: cpus }, (_, i) => i);
  return fc.record({
    priorities: fc.shuffledSubarray(ids, { minLength: cpus, maxLength: cpus }).map((order) => {
      const p = new Array<number>(cpus);
      order.forEach((cpu, rank) => {
        p[cpu] = depth + rank;
      });
      return p;
    }),
    changePoints: fc.array(fc.nat({ max: span - 1 }), { minLength: depth - 1, maxLength: depth - 1 }),
    events: fc.array(fc.record({ step: fc.nat({ max: span - 1 }), event: fc.nat({ max: eventKinds - 1 }) }), {
      maxLength: events,
    }),
  });
}
