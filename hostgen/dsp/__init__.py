"""Tier-1 signal processing: FIR design, window features, the fast path, thresholds, the DSP plan, and running the generated DSP."""
