// What every engine offers: run one machine from a configuration and a strategy to its end.
import type { RunConfig } from "../model/types.js";
import { type RunResult, runInline } from "./inline.js";
import type { Strategy } from "./setup.js";

export type EngineName = "inline" | "threaded";
export const ENGINES: EngineName[] = ["inline", "threaded"];

export interface Engine {
  readonly name: EngineName;
  run(config: RunConfig, strategy: Strategy): Promise<RunResult>;
  /** Releases threads; the process can exit afterwards. */
  close(): Promise<void>;
}

export const inlineEngine: Engine = {
  name: "inline",
  run: async (config, strategy) => runInline(config, strategy),
  close: async () => {},
};

export type { RunResult, Strategy };
