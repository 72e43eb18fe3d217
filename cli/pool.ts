// The checker session (session/session) as the commands use it: opened and closed with the command,
// its errors worded for the command line (an option to raise, a module to fix: exit 2), the catalog
// checked against the names given, a counterexample's report and its confirmation.
import type { RunConfig } from "../model/types.js";
import type { PropertyResult } from "../properties/check.js";
import type { PropertyId } from "../properties/invariants.js";
import type { ReportModel } from "../report/index.js";
import type { Confirmation } from "../session/check-worker.js";
import type { ScenarioSource } from "../session/modules.js";
import { type Catalog, CheckerSession, SessionError } from "../session/session.js";
import type { EngineName } from "../workers/engine.js";
import { UsageError } from "./io.js";

/** A checker session that the command closes when it ends. */
export function openSession(
  opts: {
    modules: string[];
    /** --parallel; the session's default otherwise. */
    workers?: number;
    engine?: EngineName;
    cpus?: number;
    watchdogSeconds?: number;
    scenarioSources?: ScenarioSource[];
  },
  sessions: CheckerSession[],
): CheckerSession {
  let session: CheckerSession;
  try {
    session = new CheckerSession({
      engine: opts.engine,
      cpus: opts.cpus,
      workers: opts.workers,
      modules: opts.modules,
      scenarioSources: opts.scenarioSources,
      watchdogMs: opts.watchdogSeconds === undefined ? undefined : opts.watchdogSeconds * 1000,
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}.`);
  }
  sessions.push(session);
  return session;
}

/**
 * Runs the session's work; a unit stopped by the watchdog, a module that fails to load, a machine
 * that cannot be built (worded by `build`) and an unconfirmed counterexample become input errors
 * (exit 2) with their cause.
 */
export async function commandErrors<T>(
  work: Promise<T>,
  build: (message: string, cell?: { protocol: string; scenario: string }) => string = (m, c) =>
    `cannot build ${c?.protocol} on ${c?.scenario}: ${m}.`,
): Promise<T> {
  try {
    return await work;
  } catch (e) {
    if (!(e instanceof SessionError)) throw e;
    switch (e.kind) {
      case "stuck":
        throw new UsageError(
          `the watchdog stopped the check: ${e.message}. Nothing was judged: ${
            e.culprit === "module"
              ? "fix the protocol module"
              : "the code that made no progress is livepatch-check's own, not a protocol module's: please report it with the command line"
          } (or, if the machine is only very slow, raise --watchdog).`,
        );
      case "module":
        throw new UsageError(
          `${e.message}. A module given with --module must be an ES module that exports 'protocols' and/or 'scenarios' (arrays), or a default export: a protocol, a scenario, an array of them, or { protocols, scenarios }.`,
        );
      case "build":
        throw new UsageError(build(e.message, e.cell));
      default:
        throw new UsageError(`${e.message}.`);
    }
  }
}

/** The protocols and scenarios the command can name: built-in, and from the modules as a worker loaded them. */
export function catalogOf(session: CheckerSession): Promise<Catalog> {
  return commandErrors(session.catalog());
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
  session: CheckerSession,
  config: RunConfig,
  p: PropertyResult,
  color: boolean,
  html: boolean,
  replayArguments: string | undefined,
): Promise<{ text: string; model?: ReportModel }> {
  const r = await commandErrors(
    session.report(config, p.tape ?? [], { property: p.property, color, html, replayArguments }),
  );
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
export function confirmAll(
  session: CheckerSession,
  runs: Array<{ config: RunConfig; property?: PropertyId; tape: number[] }>,
): Promise<{ confirmations: Confirmation[]; ms: number }> {
  return commandErrors(session.confirm(runs));
}
