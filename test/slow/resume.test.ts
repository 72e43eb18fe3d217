// The slow tier's comparison of resumed executions with executions re-run from the start, on 25
// generated machines per set of reductions (the fast tier, test/resume.test.ts, takes 8).
import { describe } from "vitest";
import { resumeOnGeneratedMachines } from "../helpers/resume.js";

describe("resuming executions from snapshots, every generated machine", () => {
  resumeOnGeneratedMachines(25, 1_000);
});
