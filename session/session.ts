// The checker session: what the command, the library and the vitest helper run whole checks with.
// Its options are resolved once (every default from session/defaults); it owns the check pool (the
// worker threads, the watchdog) and the catalog of protocols and scenarios it can name (the built-in
// ones and those of its user modules and --elf scenarios, as its worker threads load them). Its
// methods are the units of work every face needs: a check, many checks in parallel, a counterexample's
// report, its confirmation on the threaded engine. What goes wrong is a SessionError, of a kind each
// face words for its users (an option to raise, a module to fix).
import { PROTOCOLS } from "../model/protocols/index.js";
import { SCENARIOS } from "../model/scenarios/index.js";
import type { RunConfig } from "../model/types.js";
import type { Verdict } from "../properties/check.js";
import type { PropertyId } from "../properties/invariants.js";
import { encodeToken } from "../properties/token.js";
import type { EngineName } from "../workers/engine.js";
import {
  CheckPool,
  type Culprit,
  defaultWorkers,
  StuckError,
  type UnitLabel,
  type UnitRequest,
} from "./check-pool.js";
import type {
  Confirmation,
  ProtocolInfo,
  ScenarioInfo,
  UnitCheckOptions,
  UnitResult,
} from "./check-worker.js";
import { DEFAULTS } from "./defaults.js";
import type { ScenarioSource } from "./modules.js";

export interface SessionOptions {
  /** The engine the checks run their machines on (default DEFAULTS.engine). */
  engine?: EngineName;
  /** CPUs per machine, for the default number of workers (default DEFAULTS.hardware.cpus). */
  cpus?: number;
  /** Units at once, a worker thread each (default: defaultWorkers(engine, cpus)). */
  workers?: number;
  /** User protocol modules (absolute paths), loaded by every worker thread. */
  modules?: readonly string[];
  /** Scenarios built from an ELF file (--elf), built by every worker thread after the modules. */
  scenarioSources?: readonly ScenarioSource[];
  /**
   * A unit whose heartbeat stands still for this much of its thread's own CPU time (not time it
   * waited for a core) is stopped (default DEFAULTS.watchdogMs).
   */
  watchdogMs?: number;
}

/** The options of a session, every one of them resolved. */
export interface ResolvedSessionOptions {
  engine: EngineName;
  workers: number;
  modules: readonly string[];
  scenarioSources: readonly ScenarioSource[];
  watchdogMs: number;
}

export function resolveSessionOptions(opts: SessionOptions = {}): ResolvedSessionOptions {
  const engine = opts.engine ?? DEFAULTS.engine;
  return {
    engine,
    workers: opts.workers ?? defaultWorkers(engine, opts.cpus ?? DEFAULTS.hardware.cpus),
    modules: [...(opts.modules ?? [])],
    scenarioSources: [...(opts.scenarioSources ?? [])],
    watchdogMs: opts.watchdogMs ?? DEFAULTS.watchdogMs,
  };
}

/** The protocols and scenarios a session can name. */
export interface Catalog {
  protocols: ProtocolInfo[];
  scenarios: ScenarioInfo[];
}

/**
 * What went wrong in a session, by kind: `stuck` (the watchdog stopped a unit; `culprit` says whether
 * in a user module's code or in livepatch-check's own), `module` (a user module failed to load or
 * exports something else), `build` (a machine could not be built from its configuration),
 * `unconfirmed` (the threaded engine disagrees with the inline one: a bug).
 */
export class SessionError extends Error {
  constructor(
    readonly kind: "stuck" | "module" | "build" | "unconfirmed",
    message: string,
    readonly cell?: { protocol: string; scenario: string },
    readonly culprit?: Culprit,
  ) {
    super(message);
    this.name = "SessionError";
  }
}

/** A counterexample's report, from a re-run of its tape in a worker thread. */
export type ReportResult = Extract<UnitResult, { kind: "report" }>;

/** A cell's check: what to check, and how (the check's options but for the engine, the session's). */
export type CellCheck = Omit<UnitCheckOptions, "hardware"> & Partial<Pick<UnitCheckOptions, "hardware">>;

export class CheckerSession {
  readonly options: ResolvedSessionOptions;
  /** Made on first use: a session that only names built-ins starts no thread. */
  private pool: CheckPool | undefined;
  private closed = false;
  private catalogued: Promise<Catalog> | undefined;

  /** Opens a session; a bad option (workers, watchdog) throws. */
  constructor(opts: SessionOptions = {}) {
    this.options = resolveSessionOptions(opts);
    const { workers, watchdogMs } = this.options;
    if (!Number.isInteger(workers) || workers < 1)
      throw new Error(`workers must be a whole number, at least 1, not ${workers}`);
    if (!(watchdogMs > 0)) throw new Error(`watchdogMs must be a positive number, not ${watchdogMs}`);
  }

  get workers(): number {
    return this.options.workers;
  }

  /** The protocols and scenarios: the built-in ones, and those of the modules as a worker loaded them. */
  catalog(): Promise<Catalog> {
    this.catalogued ??=
      this.options.modules.length === 0 && this.options.scenarioSources.length === 0
        ? Promise.resolve(builtInCatalog())
        : this.run({ kind: "describe" }).then((r) => {
            if (r.kind !== "describe") throw new Error(`a describe task answered ${r.kind}`);
            return { protocols: r.protocols, scenarios: r.scenarios };
          });
    return this.catalogued;
  }

  /** One check on a worker thread, on the session's engine. */
  async check(options: CellCheck): Promise<Verdict> {
    const cell = { protocol: options.protocol, scenario: options.scenario };
    const r = await this.run(
      {
        kind: "check",
        engine: this.options.engine,
        options: { ...options, hardware: options.hardware ?? {} },
      },
      cell,
    );
    if (r.kind === "build-error") throw new SessionError("build", r.message, cell);
    if (r.kind !== "check") throw new Error(`a check task answered ${r.kind}`);
    return r.verdict;
  }

  /**
   * Many checks, as many at once as the session has workers; the verdicts come back in the order of
   * `checks` whatever order they finish in. `done` is called as each ends.
   */
  async checks(checks: readonly CellCheck[], done?: () => void): Promise<Verdict[]> {
    return Promise.all(
      checks.map(async (c) => {
        try {
          return await this.check(c);
        } finally {
          done?.();
        }
      }),
    );
  }

  /** The report of a tape (every property judged, or only `property`), from a re-run in a worker thread. */
  async report(
    config: RunConfig,
    tape: number[],
    opts: { property?: PropertyId; color?: boolean; html?: boolean; replayArguments?: string } = {},
  ): Promise<ReportResult> {
    const cell = { protocol: config.protocol, scenario: config.scenario };
    const r = await this.run(
      {
        kind: "report",
        config,
        tape,
        property: opts.property,
        color: opts.color ?? false,
        html: opts.html,
        replayArguments: opts.replayArguments,
      },
      cell,
    );
    if (r.kind === "build-error") throw new SessionError("build", r.message, cell);
    if (r.kind !== "report") throw new Error(`a report task answered ${r.kind}`);
    return r;
  }

  /**
   * Every run re-run on the threaded engine (a worker thread per simulated CPU), which must give the
   * inline engine's log record for record: a difference is an `unconfirmed` SessionError.
   */
  async confirm(
    runs: ReadonlyArray<{ config: RunConfig; property?: PropertyId; tape: number[] }>,
  ): Promise<{ confirmations: Confirmation[]; ms: number }> {
    if (runs.length === 0) return { confirmations: [], ms: 0 };
    const started = performance.now();
    const r = await this.run({ kind: "confirm", runs: runs.map(({ config, tape }) => ({ config, tape })) });
    if (r.kind !== "confirm") throw new Error(`a confirm task answered ${r.kind}`);
    r.confirmations.forEach((c, i) => {
      if (c.difference === undefined) return;
      const { config, property, tape } = runs[i];
      throw new SessionError(
        "unconfirmed",
        `the threaded engine does not confirm the run${property ? ` (the counterexample for ${property})` : ""} of ${config.protocol} on ${config.scenario} (${encodeToken(config, tape)}): ${c.difference}. The engines must give the same log for the same tape: this is a bug in livepatch-check; please report it with the token`,
        { protocol: config.protocol, scenario: config.scenario },
      );
    });
    return { confirmations: r.confirmations, ms: performance.now() - started };
  }

  /** The units running now, with their progress blocks (what a progress line shows). */
  runningUnits(): ReturnType<CheckPool["runningUnits"]> {
    return this.pool?.runningUnits() ?? [];
  }

  /** Ends the worker threads (a unit still running is stopped). */
  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.close();
  }

  /** One unit on the pool; the watchdog and a module that fails to load are SessionErrors. */
  private async run(request: UnitRequest, label: UnitLabel = {}): Promise<UnitResult> {
    if (this.closed) throw new Error("the checker session was closed");
    this.pool ??= new CheckPool({
      workers: this.options.workers,
      modules: [...this.options.modules],
      scenarioSources: [...this.options.scenarioSources],
      watchdogMs: this.options.watchdogMs,
    });
    let r: UnitResult;
    try {
      r = await this.pool.run(request, label);
    } catch (e) {
      if (e instanceof StuckError) throw new SessionError("stuck", e.message, undefined, e.culprit);
      throw e;
    }
    if (r.kind === "module-error") throw new SessionError("module", r.message);
    return r;
  }
}

/** The built-in protocols and scenarios. */
export function builtInCatalog(): Catalog {
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
