// The cost of a scenario's image on the inline engine: runs per second and the machine's buffer size
// for a compact built-in scenario and for a scenario from the ELF fixture whose functions span more
// than 1 MiB (scripts/make-elf-fixture.ts: far_handler lies 1.125 MiB above nmi_slow). The buffer
// holds only the placed code and the write history of the writable ranges, so neither figure should
// follow the span.
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { defineScenario, type ScenarioDefinition } from "../model/define.js";
import { layoutFor } from "../model/machine.js";
import { H, MachineMemory } from "../model/memory.js";
import { registerScenario, SCENARIOS } from "../model/scenarios/index.js";
import { resolveConfig, tapeSpan } from "../properties/check.js";
import { runInline } from "../workers/inline.js";
import { machineFor } from "../workers/setup.js";
import { sparseTape } from "../workers/strategies/arbitraries.js";

const FIXTURE = fileURLToPath(new URL("../../test/fixtures/callgraph.elf", import.meta.url));

/** nmi_slow calls far_handler, 1.125 MiB away, which jumps back more than 1 MiB: the placed span is 1.1 MiB. */
function farScenario(): string {
  return registered({
    name: "bench-elf-far",
    image: {
      elf: FIXTURE,
      payload: [{ name: "new_far_handler", code: ["push rbp", "call send_event", "pop rbp", "ret"] }],
    },
    patch: { target: "far_handler+4", payload: "new_far_handler" },
    workload: "nmi_slow",
    nmiService: "mce_handler",
  });
}

/** The example project's mce-handler-call (examples/own-patch/patch.js): a few hundred bytes placed. */
function nearScenario(): string {
  return registered({
    name: "bench-elf-near",
    image: {
      elf: FIXTURE,
      payload: [
        { name: "livepatch.mce_handler", code: ["db f3 0f 1e fa", "call send_event", "call helper2", "ret"] },
      ],
    },
    patch: { target: "mce_handler+4", payload: "livepatch.mce_handler" },
    workload: "mce_handler",
    nmiService: "hook_b",
  });
}

function registered(definition: ScenarioDefinition): string {
  if (!SCENARIOS.some((s) => s.name === definition.name)) registerScenario(defineScenario(definition));
  return definition.name;
}

interface ImageFigures {
  runsPerSecond: number;
  stepsPerRun: number;
  bufferBytes: number;
  span: number;
}

function measure(protocol: string, scenario: string): ImageFigures {
  const config = resolveConfig(protocol, scenario, { cpus: 4 });
  const tapes = fc.sample(sparseTape(tapeSpan(config), 24), { numRuns: 1000, seed: 7 });
  for (const tape of tapes.slice(0, 100)) runInline(config, { tape }); // warm up: JIT and decode cache
  let steps = 0;
  const t0 = performance.now();
  for (const tape of tapes) steps += runInline(config, { tape }).mem.header[H.step];
  const seconds = (performance.now() - t0) / 1000;
  const spec = machineFor(config);
  const names = [...spec.image.symbols.values()];
  const low = Math.min(...names.map((s) => s.address));
  const high = Math.max(...names.map((s) => s.address + s.size));
  return {
    runsPerSecond: tapes.length / seconds,
    stepsPerRun: steps / tapes.length,
    bufferBytes: MachineMemory.bytesFor(layoutFor(spec)),
    span: high - low,
  };
}

export function benchImage(): void {
  console.log(
    "image cost: runs per second and buffer size (inline engine, 4 CPUs, no-mask, random sparse tapes)",
  );
  const rows: Array<[string, ImageFigures]> = [
    ["compact built-in (nmi-path)", measure("no-mask", "nmi-path")],
    ["ELF fixture, mce_handler (compact)", measure("no-mask", nearScenario())],
    ["ELF fixture, far_handler 1.1 MiB away", measure("no-mask", farScenario())],
  ];
  for (const [label, f] of rows) {
    console.log(
      `  ${label.padEnd(38)} ${f.runsPerSecond.toFixed(0).padStart(6)} runs/s  ${Math.round(
        f.runsPerSecond * f.stepsPerRun,
      )
        .toLocaleString("en-US")
        .padStart(9)} steps/s  ${f.stepsPerRun.toFixed(0).padStart(5)} steps/run` +
        `  buffer ${(f.bufferBytes / 1024).toFixed(1).padStart(8)} KiB  functions span ${(f.span / 1024).toFixed(1)} KiB`,
    );
  }
  const far = rows[2][1].runsPerSecond;
  for (const [label, f] of rows.slice(0, 2)) {
    const ratio = f.runsPerSecond / far;
    console.log(
      `  ${label} / 1.1 MiB ELF, runs per second: ${ratio.toFixed(2)} (target: within 2): ${ratio <= 2 ? "met" : "NOT met"}`,
    );
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) benchImage();
