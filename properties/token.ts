// Replay tokens: `protocol/scenario/hardware/tape`, e.g.
// `xen-4.8/nmi-path/cpus=4,fetch=bytewise,nmis=3,mces=0,bound=20000/_112.9._40.5`. The tape writes
// runs of zeros as `_N`. The token alone reproduces the run in either engine.
import {
  FETCH_MODELS,
  type FetchModel,
  type Hardware,
  MCE_DELIVERIES,
  type MceDelivery,
  OS_NAMES,
  type OsName,
  type RunConfig,
} from "../model/types.js";

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

export function decodeTape(text: string): number[] {
  if (text === "-") return [];
  const out: number[] = [];
  for (const part of text.split(".")) {
    if (/^_\d+$/.test(part)) {
      const n = Number(part.slice(1));
      if (n > 1_000_000) throw new Error(`tape run '${part}' is longer than any run can consume`);
      for (let i = 0; i < n; i++) out.push(0);
    } else if (/^\d+$/.test(part)) {
      out.push(Number(part));
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
  for (const field of text.split(",")) {
    const [k, v] = field.split("=");
    const int = () => {
      if (!/^\d+$/.test(v ?? "")) throw new Error(`hardware field '${field}' needs a whole number`);
      return Number(v);
    };
    if (k === "cpus") h.cpus = int();
    else if (k === "nmis") h.nmis = int();
    else if (k === "mces") h.mces = int();
    else if (k === "bound") h.stepBound = int();
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
  return `${config.protocol}/${config.scenario}/${encodeHardware(config.hardware)}/${encodeTape(tape)}`;
}

export function decodeToken(token: string): { config: RunConfig; tape: number[] } {
  const parts = token.trim().split("/");
  if (parts.length !== 4) {
    throw new Error(
      `malformed replay token '${token}': expected protocol/scenario/hardware/tape, as printed under a counterexample`,
    );
  }
  const [protocol, scenario, hw, tape] = parts;
  try {
    return { config: { protocol, scenario, hardware: decodeHardware(hw) }, tape: decodeTape(tape) };
  } catch (e) {
    throw new Error(`malformed replay token: ${(e as Error).message}`);
  }
}
