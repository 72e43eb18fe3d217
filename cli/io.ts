// Where the command writes (Io), the process's own streams, the exit codes, and the error that
// reports input that cannot be checked (exit 2).
/** Where the command writes; tests pass their own to capture output in-process. */
export interface Io {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdoutIsTTY: boolean;
  stderrIsTTY: boolean;
  /** The terminal's width, when stderr is one (progress lines are cut to it). */
  stderrColumns?: number;
  env: Record<string, string | undefined>;
  /** The folder the main job writes its HTML report to by default (the process's working directory). */
  cwd: string;
}

/**
 * The process's own streams. A reader that goes away (`| head -3`, `| true`) makes a write fail with
 * EPIPE: that is no error of the check, so the command stops quietly with exit 0 (never 1, which
 * means a violation) instead of dying with a stack trace. Only the process's Io does this: main()
 * itself never exits the process.
 */
export function processIo(): Io {
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
    process.exit(EXIT_OK);
  });
  // Progress and messages to a closed stderr are lost; the exit code still says how the check went.
  process.stderr.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code !== "EPIPE") throw e;
  });
  return {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    stdoutIsTTY: process.stdout.isTTY === true,
    stderrIsTTY: process.stderr.isTTY === true,
    stderrColumns: process.stderr.columns,
    env: process.env,
    cwd: process.cwd(),
  };
}

/** Input that cannot be checked: reported as one paragraph on stderr, exit code 2. */
export class UsageError extends Error {}

export const EXIT_OK = 0;

export const EXIT_VIOLATION = 1;

export const EXIT_USAGE = 2;

export const usage = (message: string) => new UsageError(message);

export function useColor(flag: boolean | undefined, json: boolean | undefined, io: Io): boolean {
  if (json) return false;
  if (flag !== undefined) return flag;
  return io.stdoutIsTTY && !io.env.NO_COLOR;
}
