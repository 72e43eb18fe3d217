// `replay TOKEN`: the report of one tape; with the threaded engine, also its confirmation there.
import type { RunConfig } from "../../model/types.js";
import { decodeToken, encodeToken } from "../../properties/token.js";
import type { CheckerSession } from "../../session/session.js";
import { elfScenarioArguments, elfScenarioSource } from "../elf-scenario.js";
import { EXIT_OK, EXIT_VIOLATION, type Io, UsageError, usage, useColor } from "../io.js";
import { modulePaths, type ReplayOptions, replayArgumentsOf } from "../options.js";
import { counterexampleId, htmlPath, writeHtml } from "../output/html.js";
import { confirmationLine } from "../output/verdicts.js";
import { catalogOf, checkName, commandErrors, confirmAll, openSession } from "../pool.js";

/** `replay TOKEN`: the report of one tape; with the threaded engine, also its confirmation there. */
export async function replay(
  token: string,
  opts: ReplayOptions,
  io: Io,
  print: (t: string) => void,
  sessions: CheckerSession[],
): Promise<number> {
  const modules = modulePaths(opts.module);
  let decoded: { config: RunConfig; tape: number[] };
  try {
    decoded = decodeToken(token);
  } catch (e) {
    throw new UsageError(
      `${(e as Error).message}. Copy the whole token from the line 'replay: npx livepatch-check replay ...' under a counterexample.`,
    );
  }
  const { config, tape } = decoded;
  const html = opts.html === undefined ? undefined : htmlPath(opts.html, usage);
  // The scenario built from --elf takes the token's name unless --name gives another.
  const source = elfScenarioSource(
    { ...opts, name: opts.elf === undefined ? opts.name : (opts.name ?? config.scenario) },
    config.hardware.mces,
    usage,
  );
  const sources = source ? [source] : [];
  const session = openSession(
    { modules, workers: 1, watchdogSeconds: opts.watchdog, scenarioSources: sources },
    sessions,
  );
  const { protocols, scenarios } = await catalogOf(session);
  checkName("protocol", config.protocol, protocols, "the replay token names an ");
  checkName("scenario", config.scenario, scenarios, "the replay token names an ");
  const color = useColor(opts.color, opts.json, io);
  const r = await commandErrors(
    session.report(config, tape, {
      color,
      html: html !== undefined,
      replayArguments: replayArgumentsOf(modules, source ? elfScenarioArguments(opts) : undefined),
    }),
    (message) => `the replay token's configuration is not valid: ${message}.`,
  );
  if (r.error) throw new UsageError(`the replayed run failed: ${r.error}.`);
  const c =
    opts.engine === "threaded" ? (await confirmAll(session, [{ config, tape }])).confirmations[0] : undefined;
  if (opts.json) {
    print(
      `${JSON.stringify(
        {
          token: encodeToken(config, tape),
          config,
          tapeLength: tape.length,
          status: r.status,
          violations: r.violations,
          ...(c === undefined ? {} : { sameLogOnThreadedEngine: true, confirmedOnThreads: c.threads }),
        },
        null,
        2,
      )}\n`,
    );
  } else {
    print(r.text);
    print(confirmationLine(c));
  }
  if (html !== undefined && r.model)
    writeHtml(
      html,
      {
        title: `${config.protocol} on ${config.scenario}: replay`,
        summary: [],
        counterexamples: [
          {
            id: counterexampleId(0),
            title: `${config.protocol} on ${config.scenario}`,
            model: r.model,
            note: confirmationLine(c).trim(),
          },
        ],
      },
      usage,
    );
  return r.violations.length > 0 ? EXIT_VIOLATION : EXIT_OK;
}
