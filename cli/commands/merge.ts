// `merge FILE...`: the shards' verdicts put together and reported as the unsharded run reports them.

import type { Hardware } from "../../model/types.js";
import { DEFAULTS } from "../../session/defaults.js";
import type { ScenarioSource } from "../../session/modules.js";
import type { CheckerSession } from "../../session/session.js";
import { EXIT_VIOLATION, type Io, UsageError, useColor } from "../io.js";
import { MergeError, mergeShards, readShards } from "../merge.js";
import { htmlTarget, type MergeOptions, modulePaths, replayArgumentsOf } from "../options.js";
import { reportVerdicts } from "../output/verdicts.js";
import { catalogOf, openSession } from "../pool.js";
import { moduleDigests, sourceDigests } from "./shard.js";

/** `merge FILE...`: the shards' verdicts put together and reported as the unsharded run reports them. */
export async function merge(
  files: string[],
  opts: MergeOptions,
  io: Io,
  print: (t: string) => void,
  sessions: CheckerSession[],
): Promise<number> {
  const started = performance.now();
  let shards: ReturnType<typeof readShards>;
  try {
    shards = readShards(files);
  } catch (e) {
    if (e instanceof MergeError) throw new UsageError(`merge: ${e.message}.`);
    throw e;
  }
  const options = shards[0].shard.options;
  const modules = modulePaths(opts.module);
  const want = (options.modules as string[] | undefined) ?? [];
  const got = moduleDigests(modules);
  if (JSON.stringify([...want].sort()) !== JSON.stringify([...got].sort()))
    throw new UsageError(
      `merge: the shards were run with ${want.length} protocol module${want.length === 1 ? "" : "s"} (--module), and merge was given ${got.length === want.length ? "other ones" : got.length}: give merge the same --module files as the shards, so that it can re-run their counterexamples`,
    );
  const merged = mergeShards(shards);
  const cpus = (options.hardware as Partial<Hardware> | undefined)?.cpus ?? DEFAULTS.hardware.cpus;
  // A scenario the shards built from --elf is built again here, from the same files.
  const recorded =
    (options.elfScenarios as Array<{ source: ScenarioSource; files: Record<string, string> }> | undefined) ??
    [];
  for (const { source, files } of recorded) {
    const now = sourceDigests(source);
    const changed = Object.keys(files).find((f) => now[f] !== files[f]);
    if (changed)
      throw new UsageError(
        `merge: '${changed}', which the shards built their --elf scenario from, has changed since they ran: merge with the file they checked`,
      );
  }
  const sources = recorded.map((r) => r.source);
  const session = openSession(
    { modules, engine: "inline", cpus, watchdogSeconds: opts.watchdog, scenarioSources: sources },
    sessions,
  );
  const { protocols } = await catalogOf(session);
  const single = options.protocol !== null && (options.scenario !== null || sources.length > 0);
  const code = await reportVerdicts(merged.verdicts, {
    session,
    protocols,
    single,
    json: opts.json === true,
    color: useColor(opts.color, opts.json, io),
    engine: "inline",
    started,
    io,
    print,
    shards: { count: merged.count, elapsedMs: merged.shardMs, missing: merged.missing },
    html: htmlTarget(opts.html, !single, opts.json === true, io),
    details: single || opts.details === true,
    ...(sources.length > 0 ? { surveyed: new Set(sources.map((s) => s.definition.name)) } : {}),
    replayArguments: replayArgumentsOf(
      modules,
      sources.length > 0 ? (options.elfArguments as string) : undefined,
    ),
  });
  if (merged.missing.length === 0) return code;
  io.stderr(
    `livepatch-check: merge: shard${merged.missing.length === 1 ? "" : "s"} ${merged.missing.map((i) => `${i}/${merged.count}`).join(", ")} ${merged.missing.length === 1 ? "is" : "are"} missing, so ${merged.incompleteCells.length} check${merged.incompleteCells.length === 1 ? " is" : "s are"} incomplete (${merged.incompleteCells.join(", ")}): merge the output of every shard.\n`,
  );
  return EXIT_VIOLATION;
}
