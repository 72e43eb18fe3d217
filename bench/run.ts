// `npm run bench`: prints the figures; nothing here asserts on time.
import { benchCounterexamples } from "./counterexamples.js";
import { benchImage } from "./image.js";
import { benchInline } from "./inline.js";
import { benchMainJob } from "./main-job.js";
import { benchThreaded } from "./threaded.js";

benchInline();
benchImage();
await benchThreaded();
await benchCounterexamples();
await benchMainJob();
