// User protocol modules: an ES module whose default export (or export `protocols`) is a Protocol or an
// array of them. Loaded in the main thread and in every worker, so both build the same machines.
import { pathToFileURL } from "node:url";
import { registerProtocol } from "../model/protocols/index.js";
import type { Protocol } from "../model/types.js";

const loaded = new Set<string>();

export async function loadProtocolModules(paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    if (loaded.has(path)) continue;
    let mod: { default?: unknown; protocols?: unknown };
    try {
      mod = await import(pathToFileURL(path).href);
    } catch (e) {
      throw new Error(`protocol module '${path}' failed to load: ${(e as Error).message}`);
    }
    const exported = mod.protocols ?? mod.default;
    const list = Array.isArray(exported) ? exported : [exported];
    if (exported === undefined || list.length === 0) {
      throw new Error(
        `protocol module '${path}' exports no protocol (export default a Protocol or an array)`,
      );
    }
    try {
      for (const p of list) registerProtocol(p as Protocol);
    } catch (e) {
      throw new Error(`protocol module '${path}': ${(e as Error).message}`);
    }
    loaded.add(path);
  }
}
