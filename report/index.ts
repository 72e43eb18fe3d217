// Reports: the model of a replayed counterexample (model), its terminal and HTML renderers, and the
// verdict matrix.
export * from "./html.js";
export * from "./matrix.js";
export * from "./model.js";
export { type Replay, replayTape, statusName } from "./replay.js";
export * from "./terminal.js";
