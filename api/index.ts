// The public API of livepatch-check (`import { ... } from "livepatch-check"`): check a protocol on a
// scenario, write protocols in the step language, define scenarios from assembly or an ELF file, and
// derive variants from the built-in protocols. `livepatch-check/vitest` turns a check into a test.

export {
  defineProtocol,
  defineScenario,
  type Patch,
  type PayloadObject,
  type ProtocolDefinition,
  type RawSymbol,
  type ScenarioDefinition,
  type ScenarioImage,
} from "../model/define.js";
export type { CodeImage, DataDesc, FunctionDesc, SymbolInfo } from "../model/image.js";
export { DEFAULT_HARDWARE, jmpRel32 } from "../model/machine.js";
// Runs a protocol routine under its hook name (the step language's helper, beside the OS entry code).
export { inHook } from "../model/os/common.js";
export { blacklistAnnotated, siteInFunction } from "../model/protocols/blacklist-annotated.js";
export { blacklistCallgraph } from "../model/protocols/blacklist-callgraph.js";
// The built-in protocols, to check by name or derive from (`{ ...int3Restartable, name: "mine" }`),
// and the building blocks they share.
export { PROTOCOLS as builtInProtocols } from "../model/protocols/index.js";
export { int3DebuggerApplies } from "../model/protocols/int3-debugger-applies.js";
export {
  claimSite,
  finishSite,
  type HandoverWords,
  int3Restartable,
  restartableProtocol,
} from "../model/protocols/int3-restartable.js";
export { int3RestartableNaive } from "../model/protocols/int3-restartable-naive.js";
export { linuxOptprobe, optprobeProtocol } from "../model/protocols/linux-optprobe.js";
export {
  EVERY_TEXT_POKE_STEP,
  linuxTextPoke,
  type TextPokeSteps,
  type TextPokeWords,
  textPokeProtocol,
} from "../model/protocols/linux-text-poke.js";
export { nmiRendezvous } from "../model/protocols/nmi-rendezvous.js";
export { nmiRendezvousAnywhere } from "../model/protocols/nmi-rendezvous-anywhere.js";
export { nmiReplay } from "../model/protocols/nmi-replay.js";
export { noMask, unmaskedPatch } from "../model/protocols/no-mask.js";
export { keepWords, protocolWords } from "../model/protocols/words.js";
export { xen48 } from "../model/protocols/xen-4.8.js";
export {
  allocRendezvous,
  masterAfterPatch,
  masterEnter,
  type RendezvousWords,
  release,
  slave,
} from "../model/protocols/xen-rendezvous.js";
// The step language (model/routine): every yield is one atomic step of a CPU on shared state.
export * from "../model/routine.js";
export { SCENARIOS as builtInScenarios } from "../model/scenarios/index.js";
export type {
  CommonWords,
  Expected,
  FetchModel,
  Frame,
  Hardware,
  MachineSpec,
  MceDelivery,
  OsName,
  Protocol,
  ProtocolCode,
  Refusal,
  RoutineContext,
  RunConfig,
  Scenario,
  Site,
} from "../model/types.js";
export type { PropertyResult, Verdict } from "../properties/check.js";
export { PROPERTIES, type PropertyId, type Violation } from "../properties/invariants.js";
export { decodeToken, encodeToken } from "../properties/token.js";
export { DEFAULTS } from "../session/defaults.js";
export { type CheckInput, check, report } from "./check.js";
