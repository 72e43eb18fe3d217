// Runs the command in-process with its output captured, as the tests and benchmarks drive it.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Io, main } from "./main.js";

export interface CapturedRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * `livepatch-check ...argv` through main(argv, io), neither stream a terminal, no environment, in a
 * fresh temporary working directory (where the main job writes its HTML report by default); `io`
 * overrides those (a test's fake terminal, a folder of its own).
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
    cwd: io.cwd ?? mkdtempSync(join(tmpdir(), "livepatch-check-run-")),
  });
  return { code, stdout, stderr };
}
