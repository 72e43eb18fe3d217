// The live progress of the running checks on a terminal: a line per running check (its runs, the
// exhaustive search's executions, the rate, and the time left when the sampling's budget tells it),
// under a line counting the checks done, redrawn in place with ANSI cursor codes a few times a second
// and cleared at the end. The counts come from each unit's progress block (model/progress), which the
// check's worker thread writes and this thread only reads. Only where stderr is a terminal and no
// --json is asked: nothing of it ever reaches a pipe or a file.
import { Part, PG } from "../../model/progress.js";

/** A running check as the pool sees it: its label, its progress block, when it started. */
export interface RunningCheck {
  label: string;
  block: Int32Array;
  startedMs: number;
}

/** How often the lines are redrawn. */
export const REDRAW_MS = 250;
/** Columns when the terminal does not say (a line longer than the terminal would wrap and break the redraw). */
const DEFAULT_COLUMNS = 120;

const count = (n: number) => n.toLocaleString("en-US");
const plural = (n: number, word: string) => `${count(n)} ${word}${n === 1 ? "" : "s"}`;

/** When the sampling part began, per block: the rate of judged runs is measured from there. */
interface Seen {
  sampling?: { since: number; part: number };
}

/** One check's line: what it has done, how fast, and how long it may still take. */
export function progressLine(check: RunningCheck, nowMs: number, seen: Seen = {}): string {
  const b = check.block;
  const part = Atomics.load(b, PG.part) as Part;
  const runs = Atomics.load(b, PG.runs);
  const executions = Atomics.load(b, PG.executions);
  const sampled = Atomics.load(b, PG.sampled);
  const planned = Atomics.load(b, PG.planned);
  const seconds = Math.max(0.001, (nowMs - check.startedMs) / 1000);
  const done = [
    ...(executions > 0 || part === Part.Exhaustive ? [plural(executions, "execution")] : []),
    plural(runs, "run"),
  ].join(", ");
  const judged = part === Part.Sampling && planned > 0 ? ` (${count(sampled)}/${count(planned)} judged)` : "";
  const parts = [check.label, `${done}${judged}`, `${count(Math.round((runs + executions) / seconds))}/s`];
  if (part === Part.Sampling && planned > 0) {
    if (seen.sampling === undefined) seen.sampling = { since: nowMs, part: sampled };
    const rate = (sampled - seen.sampling.part) / Math.max(0.001, (nowMs - seen.sampling.since) / 1000);
    // At most: a property's sampling ends at its first violation.
    if (rate > 0 && nowMs - seen.sampling.since >= 1000)
      parts.push(`≤ ${Math.ceil((planned - sampled) / rate)} s left`);
  }
  parts.push(`${Math.floor(seconds)} s`);
  return parts.join(" · ");
}

/**
 * The lines on the terminal: `update` redraws them (called on a timer and when a check starts or
 * ends), `clear` removes them. Writes only through `write`, so tests can use a fake terminal.
 */
export class ProgressDisplay {
  private drawn = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly seen = new Map<Int32Array, Seen>();

  constructor(
    private readonly write: (text: string) => void,
    private readonly running: () => readonly RunningCheck[],
    private readonly header: () => string,
    private readonly columns: number = DEFAULT_COLUMNS,
  ) {}

  start(): void {
    this.update();
    this.timer = setInterval(() => this.update(), REDRAW_MS);
    this.timer.unref();
  }

  update(nowMs = performance.now()): void {
    const checks = this.running();
    for (const block of this.seen.keys()) if (!checks.some((c) => c.block === block)) this.seen.delete(block);
    const lines = [
      this.header(),
      ...checks.map((c) => {
        const seen = this.seen.get(c.block) ?? {};
        this.seen.set(c.block, seen);
        return `  ${progressLine(c, nowMs, seen)}`;
      }),
    ].map((l) => (l.length > this.columns - 1 ? `${l.slice(0, this.columns - 2)}…` : l));
    // Back to the first line drawn, erase from there down, draw again.
    this.write(`${this.drawn > 1 ? `\x1b[${this.drawn - 1}A` : ""}\r\x1b[J${lines.join("\n")}`);
    this.drawn = lines.length;
  }

  /** Stops redrawing and erases the lines, leaving the cursor where they began. */
  clear(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.drawn === 0) return;
    this.write(`${this.drawn > 1 ? `\x1b[${this.drawn - 1}A` : ""}\r\x1b[J`);
    this.drawn = 0;
  }
}
