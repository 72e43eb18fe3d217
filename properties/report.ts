// Reports live in report/ (the model of a replayed counterexample, its terminal and HTML renderers,
// the verdict matrix); this module keeps the names importable from where they always were.
export * from "../report/index.js";
