// `npm run bench`: prints the figures; nothing here asserts on time.
import { benchInline } from "./inline.js";

benchInline();
try {
  const { benchThreaded } = await import("./threaded.js");
  await benchThreaded();
} catch (e) {
  console.log(`threaded engine benchmark unavailable: ${(e as Error).message}`);
}
