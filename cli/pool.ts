// The check pool as the commands use it: opened and closed with the command, a unit run with the
// watchdog's and a module's failures turned into messages, the catalog of protocols and scenarios,
// a counterexample's report and its confirmation on the threaded engine.
import { PROTOCOLS } from "../model/protocols/index.js";
import { SCENARIOS } from "../model/scenarios/index.js";
import type { RunConfig } from "../model/types.js";
import type { PropertyResult } from "../properties/check.js";
import type { PropertyId } from "../properties/invariants.js";
import { encodeToken } from "../properties/token.js";
import type { ReportModel } from "../report/index.js";
import { CheckPool, StuckError, type UnitLabel, type UnitRequest } from "../session/check-pool.js";
import type { Confirmation, ProtocolInfo, ScenarioInfo, UnitResult } from "../session/check-worker.js";
import type { ScenarioSource } from "../session/modules.js";
import { DEFAULT_WATCHDOG_MS } from "../workers/threaded.js";
import { UsageError } from "./io.js";

/** A check pool that the command closes when it ends. */
export function openPool(
  modules: string[],
  workers: number,
  watchdogSeconds: number | undefined,
  pools: CheckPool[],
  scenarioSources: ScenarioSource[] = [],
): CheckPool {
  let pool: CheckPool;
  try {
    pool = new CheckPool({
      workers,
      modules,
      scenarioSources,
      watchdogMs: (watchdogSeconds ?? DEFAULT_WATCHDOG_MS / 1000) * 1000,
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}.`);
  }
  pools.push(pool);
  return pool;
}

/**
 * Runs one unit on the pool; a unit stopped by the watchdog, a module that fails to load and a worker
 * that dies become input errors (exit 2) with their cause.
 */
export async function unit(
  pool: CheckPool,
  request: UnitRequest,
  label: UnitLabel = {},
): Promise<UnitResult> {
  let r: UnitResult;
  try {
    r = await pool.run(request, label);
  } catch (e) {
    if (e instanceof StuckError) {
      throw new UsageError(
        `the watchdog stopped the check: ${e.message}. Nothing was judged: fix the protocol module (or, if the machine is only very slow, raise --watchdog).`,
      );
    }
    throw e;
  }
  if (r.kind === "module-error") {
    throw new UsageError(
      `${r.message}. A module given with --module must be an ES module that exports 'protocols' and/or 'scenarios' (arrays), or a default export: a protocol, a scenario, an array of them, or { protocols, scenarios }.`,
    );
  }
  return r;
}

/** The protocols and scenarios a command can name. */
export interface Catalog {
  protocols: ProtocolInfo[];
  scenarios: ScenarioInfo[];
}

export function builtIns(): Catalog {
  return {
    protocols: PROTOCOLS.map((p) => ({
      name: p.name,
      summary: p.summary,
      expected: p.expected,
      origin: "built-in",
    })),
    scenarios: SCENARIOS.map((s) => ({
      name: s.name,
      summary: s.summary,
      nmis: s.nmis,
      mces: s.mces,
      origin: "built-in",
    })),
  };
}

/** The protocols and scenarios, built-in and from the modules, as a worker thread loaded them. */
export async function catalogOf(pool: CheckPool): Promise<Catalog> {
  const r = await unit(pool, { kind: "describe" });
  if (r.kind !== "describe") throw new Error(`a describe task answered ${r.kind}`);
  return { protocols: r.protocols, scenarios: r.scenarios };
}

export function checkName(
  kind: "protocol" | "scenario",
  name: string,
  known: readonly { name: string }[],
  where = "",
): void {
  if (known.some((x) => x.name === name)) return;
  throw new UsageError(
    `${where}unknown ${kind} '${name}'. The known ${kind}s are: ${known.map((x) => x.name).join(", ")}. ` +
      (kind === "protocol"
        ? "Run 'livepatch-check list' to see them with a summary, or load your own with --module PATH."
        : "Run 'livepatch-check list' to see them with a summary, load your own with --module PATH, or build one from an ELF file with --elf FILE --site ... (a token of such a scenario replays with the options that built it)."),
  );
}

/** A counterexample's report, from a re-run of its tape in a worker. */
export async function counterexampleReport(
  pool: CheckPool,
  config: RunConfig,
  p: PropertyResult,
  color: boolean,
  html: boolean,
  replayArguments: string | undefined,
): Promise<{ text: string; model?: ReportModel }> {
  const label = { protocol: config.protocol, scenario: config.scenario };
  const r = await unit(
    pool,
    { kind: "report", config, tape: p.tape ?? [], property: p.property, color, html, replayArguments },
    label,
  );
  if (r.kind !== "report") throw new Error(`a report task answered ${r.kind}`);
  if (r.error)
    throw new UsageError(
      `the counterexample of ${config.protocol} on ${config.scenario} failed when re-run: ${r.error}.`,
    );
  return { text: r.text, model: r.model };
}

/**
 * Every counterexample re-run on the threaded engine (a worker thread per simulated CPU), which must
 * give the inline engine's log record for record: a difference is an error, not a verdict.
 */
export async function confirmAll(
  pool: CheckPool,
  runs: Array<{ config: RunConfig; property?: PropertyId; tape: number[] }>,
): Promise<{ confirmations: Confirmation[]; ms: number }> {
  if (runs.length === 0) return { confirmations: [], ms: 0 };
  const started = performance.now();
  const r = await unit(pool, {
    kind: "confirm",
    runs: runs.map(({ config, tape }) => ({ config, tape })),
  });
  if (r.kind !== "confirm") throw new Error(`a confirm task answered ${r.kind}`);
  r.confirmations.forEach((c, i) => {
    if (c.difference === undefined) return;
    const { config, property, tape } = runs[i];
    throw new UsageError(
      `the threaded engine does not confirm the run${property ? ` (the counterexample for ${property})` : ""} of ${config.protocol} on ${config.scenario} (${encodeToken(config, tape)}): ${c.difference}. The engines must give the same log for the same tape: this is a bug in livepatch-check; please report it with the token.`,
    );
  });
  return { confirmations: r.confirmations, ms: performance.now() - started };
}
