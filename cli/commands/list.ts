// `list`: the protocols and scenarios, built-in and from --module files, one line each.
import type { CheckerSession } from "../../session/session.js";
import { EXIT_OK } from "../io.js";
import type { ListOptions } from "../options.js";
import { modulePaths } from "../options.js";
import { catalogOf, openSession } from "../pool.js";

/** Prints the list; returns the exit code (0). */
export async function list(
  opts: ListOptions,
  print: (t: string) => void,
  sessions: CheckerSession[],
): Promise<number> {
  const modules = modulePaths(opts.module);
  // A module's code runs only in a worker thread, where the watchdog can stop it.
  const { protocols, scenarios } = await catalogOf(
    openSession({ modules, workers: 1, watchdogSeconds: opts.watchdog }, sessions),
  );
  const width = Math.max(...protocols.map((p) => p.name.length), ...scenarios.map((s) => s.name.length));
  // Grouped by where each came from: the built-in ones, then each module's.
  for (const [kind, list] of [
    ["protocols", protocols],
    ["scenarios", scenarios],
  ] as const) {
    for (const origin of [...new Set(list.map((x) => x.origin))]) {
      print(origin === "built-in" ? `${kind}:\n` : `${kind} from ${origin}:\n`);
      for (const x of list.filter((y) => y.origin === origin))
        print(`  ${x.name.padEnd(width)}  ${x.summary}\n`);
    }
  }
  return EXIT_OK;
}
