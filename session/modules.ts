// User modules given with --module: an ES module that exports protocols and scenarios, as
// `export const protocols = [...]`, `export const scenarios = [...]`, or a default export (a protocol,
// a scenario, an array of them, or `{ protocols, scenarios }`); any other named export that is a
// protocol or a scenario counts too. Loaded in the main thread and in every worker, so all of them
// build the same machines. Where each came from is kept for `list`.
import { pathToFileURL } from "node:url";
import { defineScenario, type ScenarioDefinition } from "../model/define.js";
import { registerProtocol } from "../model/protocols/index.js";
import { registerScenario } from "../model/scenarios/index.js";
import type { Protocol, Scenario } from "../model/types.js";
import type { ThreadSetup } from "../workers/setup.js";

const loaded = new Set<string>();

/** The module each protocol and scenario came from, by `protocol:name` / `scenario:name`. */
const origins = new Map<string, string>();

/** Where a protocol or scenario came from: "built-in", or the path of the module that exported it. */
export function originOf(kind: "protocol" | "scenario", name: string): string {
  return origins.get(`${kind}:${name}`) ?? "built-in";
}

/** What is exported under one name, as a list of candidates with where each sits (`protocols[1]`). */
function candidates(key: string, value: unknown): Array<{ where: string; value: unknown }> {
  if (Array.isArray(value)) return value.map((v, i) => ({ where: `${key}[${i}]`, value: v }));
  if (
    key === "default" &&
    typeof value === "object" &&
    value !== null &&
    ("protocols" in value || "scenarios" in value) &&
    !isProtocol(value) &&
    !isScenario(value)
  ) {
    const { protocols, scenarios } = value as { protocols?: unknown; scenarios?: unknown };
    return [
      ...(protocols === undefined ? [] : candidates("default.protocols", protocols)),
      ...(scenarios === undefined ? [] : candidates("default.scenarios", scenarios)),
    ];
  }
  return [{ where: key, value }];
}

function isProtocol(x: unknown): x is Protocol {
  return typeof x === "object" && x !== null && typeof (x as Protocol).master === "function";
}

function isScenario(x: unknown): x is Scenario {
  return typeof x === "object" && x !== null && "patch" in x && "workload" in x;
}

/** What a scenario object must have for a machine to be built from it (defineScenario checks more). */
function checkScenario(s: Scenario): void {
  const missing = (["name", "summary", "patch", "workload", "nmiService", "mceService"] as const).find(
    (f) => s[f] === undefined,
  );
  if (missing) throw new Error(`a scenario must have '${missing}' (define it with defineScenario)`);
  if (!Array.isArray(s.functions) && s.image === undefined)
    throw new Error(
      `scenario '${s.name}' has neither 'functions' nor an image (define it with defineScenario)`,
    );
}

/**
 * A scenario defined on the command line (`--elf FILE --site ...`), rebuilt from its definition in
 * every thread that runs it, as a module's scenarios are by importing the module.
 */
export interface ScenarioSource {
  definition: ScenarioDefinition;
  /** Where it came from, as `list` says it (`--elf xen-syms`). */
  origin: string;
}

/** The definitions each scenario was built from, by name: the same name again must be the same one. */
const defined = new Map<string, string>();

/** Builds and registers the scenarios of `sources` (once per thread); a bad definition throws, naming it. */
export function loadScenarioSources(sources: readonly ScenarioSource[] = []): void {
  for (const { definition, origin } of sources) {
    const key = JSON.stringify(definition);
    const known = defined.get(definition.name);
    if (known === key) continue;
    if (known !== undefined) throw new Error(`scenario '${definition.name}' is already defined`);
    const scenario = defineScenario(definition);
    registerScenario(scenario);
    defined.set(definition.name, key);
    origins.set(`scenario:${scenario.name}`, origin);
  }
}

export async function loadProtocolModules(paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    if (loaded.has(path)) continue;
    let mod: Record<string, unknown>;
    try {
      mod = await import(pathToFileURL(path).href);
    } catch (e) {
      throw new Error(`protocol module '${path}' failed to load: ${(e as Error).message}`);
    }
    // `protocols` and `scenarios` (or the default export) when given, where anything else is an error;
    // otherwise every named export that is a protocol or a scenario.
    const named = ["protocols", "scenarios"].filter((k) => mod[k] !== undefined);
    const explicit = named.length > 0 || mod.default !== undefined;
    const keys = named.length > 0 ? named : explicit ? ["default"] : Object.keys(mod);
    const found = keys.flatMap((k) => candidates(k, mod[k]));
    const protocols: Array<{ where: string; value: Protocol }> = [];
    const scenarios: Array<{ where: string; value: Scenario }> = [];
    for (const c of found) {
      if (isProtocol(c.value)) protocols.push({ where: c.where, value: c.value });
      else if (isScenario(c.value)) scenarios.push({ where: c.where, value: c.value });
      else if (explicit)
        throw new Error(
          `protocol module '${path}': export '${c.where}' is neither a protocol (it has no 'master' routine) nor a scenario (it has no 'patch' and 'workload')`,
        );
    }
    if (protocols.length + scenarios.length === 0) {
      throw new Error(
        `protocol module '${path}' exports no protocol and no scenario (export 'protocols' and/or 'scenarios', or a default export)`,
      );
    }
    for (const { where, value } of protocols) {
      try {
        registerProtocol(value);
      } catch (e) {
        throw new Error(`protocol module '${path}': export '${where}': ${(e as Error).message}`);
      }
      origins.set(`protocol:${value.name}`, path);
    }
    for (const { where, value } of scenarios) {
      try {
        checkScenario(value);
        registerScenario(value);
      } catch (e) {
        throw new Error(`protocol module '${path}': export '${where}': ${(e as Error).message}`);
      }
      origins.set(`scenario:${value.name}`, path);
    }
    loaded.add(path);
  }
}

/** What a thread loads before it builds a machine: the --module files, then the --elf scenarios. */
export interface UserCatalog {
  modules: readonly string[];
  scenarioSources?: readonly ScenarioSource[];
}

/** Loads `catalog` in this thread (workers/setup prepareThread calls it in every engine thread). */
export async function setupThread(catalog: UserCatalog): Promise<void> {
  await loadProtocolModules(catalog.modules);
  loadScenarioSources(catalog.scenarioSources);
}

/**
 * The thread setup (workers/setup ThreadSetup) that loads `catalog` in an engine's threads, or none
 * when it names nothing beyond the built-ins.
 */
export function threadSetup(catalog: UserCatalog): ThreadSetup | undefined {
  if (catalog.modules.length === 0 && (catalog.scenarioSources?.length ?? 0) === 0) return undefined;
  return {
    // This compiled module (dist/session/modules.js), which each thread imports to run setupThread.
    module: import.meta.url,
    data: { modules: [...catalog.modules], scenarioSources: [...(catalog.scenarioSources ?? [])] },
  };
}
