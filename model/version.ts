// The model's version. A replay token names the trace of one configuration and tape under the model's
// semantics; when those change (a hardware rule, the scheduling points, what a step does, a built-in
// protocol's or scenario's code or data words), the same tape can give another trace. Bump this number
// with every such change, so that a token from an older model is refused with a clear message instead
// of replaying a different trace. Every token starts with `v<MODEL_VERSION>/`.
export const MODEL_VERSION = 2;
