"""The quantization check: what int8 costs a model on clean and distorted data, and the gate on it."""
