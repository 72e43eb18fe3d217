// Replay tokens: `vN/protocol/scenario/hardware/tape`, e.g.
// `v1/xen-4.8/nmi-path/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/_112.9._40.5`. vN is the model
// version (model/version.ts): a token from another version is refused, since its tape may give another
// trace there. The tape writes runs of zeros as `_N`. The token alone reproduces the run in either engine.
import { tapeCapacity } from "../model/machine.js";
import {
  FETCH_MODELS,
  type FetchModel,
  HARDWARE_RANGES,
  type Hardware,
  MCE_DELIVERIES,
  type MceDelivery,
  OS_NAMES,
  type OsName,
  type RunConfig,
} from "../model/types.js";
import { MODEL_VERSION } from "../model/version.js";

export function encodeTape(tape: readonly number[]): string {
  const parts: string[] = [];
  let zeros = 0;
  for (const v of tape) {
    if (v === 0) {
      zeros++;
      continue;
    }
    if (zeros > 0) parts.push(zeros === 1 ? "0" : `_${zeros}`);
    zeros = 0;
    parts.push(String(v));
  }
  if (zeros > 0) parts.push(zeros === 1 ? "0" : `_${zeros}`);
  return parts.length === 0 ? "-" : parts.join(".");
}

/** The longest tape any run can hold (the largest step bound the command accepts). */
export const MAX_TAPE_LENGTH = tapeCapacity(HARDWARE_RANGES.stepBound[1]);

/** A tape value must fit the machine's Int32 tape; larger ones would silently wrap. */
const MAX_TAPE_VALUE = 2 ** 31 - 1;

export function decodeTape(text: string): number[] {
  return decodeTapeWithin(text, MAX_TAPE_LENGTH, "than any run can consume");
}

/**
 * Decodes a tape of at most `max` values. The length is checked run by run while parsing, before any
 * value is stored, so a short text of long zero runs cannot make it allocate more than `max` values.
 */
function decodeTapeWithin(text: string, max: number, why: string): number[] {
  if (text === "-") return [];
  const out: number[] = [];
  const tooLong = () => new Error(`the tape has more than ${max} values, more ${why}`);
  for (const part of text.split(".")) {
    if (/^_\d+$/.test(part)) {
      const n = Number(part.slice(1));
      if (out.length + n > max) throw tooLong();
      for (let i = 0; i < n; i++) out.push(0);
    } else if (/^\d+$/.test(part)) {
      const v = Number(part);
      if (v > MAX_TAPE_VALUE) throw new Error(`tape value ${part} is too large: tape values are below 2^31`);
      if (out.length + 1 > max) throw tooLong();
      out.push(v);
    } else {
      throw new Error(`'${part}' is not a tape value (a number, or _N for N zeros)`);
    }
  }
  return out;
}

export function encodeHardware(h: Hardware): string {
  const fields = [
    `cpus=${h.cpus}`,
    `fetch=${h.fetch}`,
    `nmis=${h.nmis}`,
    `mces=${h.mces}`,
    `bound=${h.stepBound}`,
  ];
  if (h.os) fields.push(`os=${h.os}`);
  if (h.mceDelivery && h.mceDelivery !== "broadcast") fields.push(`mce=${h.mceDelivery}`);
  if (h.stiShadow) fields.push("stishadow=1");
  return fields.join(",");
}

export function decodeHardware(text: string): Hardware {
  const h: Partial<Hardware> = {};
  const seen = new Set<string>();
  for (const field of text.split(",")) {
    const [k, v] = field.split("=");
    if (seen.has(k)) throw new Error(`hardware field '${k}' is given twice in '${text}'`);
    seen.add(k);
    // The command's own ranges (HARDWARE_RANGES): a token holds nothing its options would refuse.
    const int = (name: string, [min, max]: readonly [number, number]) => {
      const n = /^\d+$/.test(v ?? "") ? Number(v) : Number.NaN;
      if (!Number.isSafeInteger(n) || n < min || n > max)
        throw new Error(`${name} must be a whole number from ${min} to ${max}, not ${v ?? "nothing"}`);
      return n;
    };
    if (k === "cpus") h.cpus = int("cpus", HARDWARE_RANGES.cpus);
    else if (k === "nmis") h.nmis = int("nmis", HARDWARE_RANGES.nmis);
    else if (k === "mces") h.mces = int("mces", HARDWARE_RANGES.mces);
    else if (k === "bound") h.stepBound = int("bound", HARDWARE_RANGES.stepBound);
    else if (k === "fetch") {
      if (!FETCH_MODELS.includes(v as FetchModel))
        throw new Error(`fetch must be one of ${FETCH_MODELS.join(", ")}, not '${v}'`);
      h.fetch = v as FetchModel;
    } else if (k === "os") {
      if (!OS_NAMES.includes(v as OsName))
        throw new Error(`os must be one of ${OS_NAMES.join(", ")}, not '${v}'`);
      h.os = v as OsName;
    } else if (k === "mce") {
      if (!MCE_DELIVERIES.includes(v as MceDelivery))
        throw new Error(`mce must be one of ${MCE_DELIVERIES.join(", ")}, not '${v}'`);
      h.mceDelivery = v as MceDelivery;
    } else if (k === "stishadow") {
      if (v !== "0" && v !== "1") throw new Error(`stishadow must be 0 or 1, not '${v}'`);
      h.stiShadow = v === "1";
    } else throw new Error(`unknown hardware field '${k}' in '${text}'`);
  }
  for (const need of ["cpus", "fetch", "nmis", "mces", "stepBound"] as const) {
    if (h[need] === undefined)
      throw new Error(`the hardware part '${text}' lacks '${need === "stepBound" ? "bound" : need}'`);
  }
  return h as Hardware;
}

export function encodeToken(config: RunConfig, tape: readonly number[]): string {
  return `v${MODEL_VERSION}/${config.protocol}/${config.scenario}/${encodeHardware(config.hardware)}/${encodeTape(tape)}`;
}

export function decodeToken(token: string): { config: RunConfig; tape: number[] } {
  const parts = token.trim().split("/");
  if (parts.length === 4 && !/^v/.test(parts[0])) {
    throw new Error(
      `the token '${token}' has no model version: it comes from a livepatch-check older than model version 1, whose trace for this tape may differ; this is model version ${MODEL_VERSION}. Run the check that printed it again to get a token for this version`,
    );
  }
  if (parts.length !== 5) {
    throw new Error(
      `malformed replay token '${token}': expected v${MODEL_VERSION}/protocol/scenario/hardware/tape, as printed under a counterexample`,
    );
  }
  const [version, protocol, scenario, hw, tape] = parts;
  if (!/^v\d+$/.test(version))
    throw new Error(
      `malformed replay token: '${version}' is not a model version (v${MODEL_VERSION} for this one)`,
    );
  if (Number(version.slice(1)) !== MODEL_VERSION) {
    throw new Error(
      `the token was made by model version ${version.slice(1)}, but this livepatch-check is model version ${MODEL_VERSION}, whose trace for this tape may differ. Replay it with the livepatch-check that printed it, or run that check again with this one to get a token for this version`,
    );
  }
  try {
    const hardware = decodeHardware(hw);
    const tapeValues = decodeTapeWithin(
      tape,
      tapeCapacity(hardware.stepBound),
      `than a run with step bound ${hardware.stepBound} can consume`,
    );
    return { config: { protocol, scenario, hardware }, tape: tapeValues };
  } catch (e) {
    throw new Error(`malformed replay token: ${(e as Error).message}`);
  }
}
