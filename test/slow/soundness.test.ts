// The slow tier's soundness tests: the reductions of the exhaustive search and state caching compared
// with the unreduced enumeration on every generated machine (the fast tier compares a fifth of them,
// test/search-soundness.test.ts and test/state-cache.test.ts).
import { searchSoundness, stateCacheSoundness } from "../helpers/soundness.js";

searchSoundness(1);
stateCacheSoundness(1);
