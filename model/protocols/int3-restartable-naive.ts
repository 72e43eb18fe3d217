// Seed option 2 with the #BP handler as first written: it claims an int3 at the site only while the
// handover is armed. A CPU that trapped on the 0xCC just before the patcher finished and disarmed it
// finds nothing armed: the int3 is unclaimed. On Xen, do_int3 then returns past it
// ("Hit embedded breakpoint") into the middle of the new jump; on Linux it is fatal.
import type { Protocol } from "../types.js";
import { restartableProtocol } from "./int3-restartable.js";

export const int3RestartableNaive: Protocol = restartableProtocol(
  {
    name: "int3-restartable-naive",
    summary:
      "int3-restartable whose #BP handler gives up once the handover is disarmed: a late trapper's int3 goes unclaimed (P4 where that is fatal, on Linux; on Xen P1, as do_int3 resumes inside the new jump)",
    origin: "seed (a) 2), handler without the re-check",
    expected: {
      "nmi-path": { violated: ["P1", "P3"] },
      "mce-path": { violated: ["P3"], hazards: ["P4"] },
      normal: { violated: [] },
      "entry-pad": { violated: ["P1", "P3"] },
    },
  },
  false,
);
