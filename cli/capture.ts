// Runs the command in-process with its output captured, as the tests and benchmarks drive it.
import { type Io, main } from "./main.js";

export interface CapturedRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `livepatch-check ...argv` through main(argv, io), neither stream a terminal, no environment;
 * `io` overrides those (a test's fake terminal).
 */
export async function runCaptured(argv: string[], io: Partial<Io> = {}): Promise<CapturedRun> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    stdoutIsTTY: false,
    stderrIsTTY: false,
    env: {},
    ...io,
  });
  return { code, stdout, stderr };
}
