"""Recordings and configs the device tests share (a module, so tests can import it by name)."""

from __future__ import annotations

import json

import numpy as np

from hostgen.data import synthetic as dataset
from hostgen.dsp.plan import build_config, config_digest

RATE = dataset.RATE_HZ


def scenario_machine(seed):
    rng = np.random.default_rng(seed)
    return dataset.random_machine(rng, fault=False), rng


def machine_run(machine, seconds, rng, **changes):
    return dataset.synthesize(dataset.Machine(**{**machine.__dict__, **changes}), int(seconds * RATE), rng).astype(np.int64)


def board_config(plan, thresholds, peak_limits, energy_limits, model_limit=1) -> str:
    """config.json text for the board, as diag.set_threshold would write it."""
    digest = config_digest(build_config(plan))
    return json.dumps({"build": digest, "thresholds": thresholds, "peak_limits": peak_limits, "energy_limits": energy_limits,
                       "model_limit": model_limit})
