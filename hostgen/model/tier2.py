"""What tier 2 decides, on host, exactly as the board does: the input recipe, the engine (its numpy
reference), the scores, and the gate that hands unsure windows to the fallback.

Host-side figures and checks use this: calibrating a reconstruction model's limit, and the
device and HIL tests that compare the board's decisions with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hostgen.constants import FAULT, NORMAL, TIERS
from hostgen.model.engine import reference
from hostgen.model.engine.generate import CompiledModel, scores

TIER_MODEL, TIER_UNSURE, TIER_ADVISORY = (TIERS.index(t) for t in ("model", "fallback (model unsure)", "fallback (model advisory)"))


def min_confidence_q8(app: dict) -> int:
    return round(app["firmware"]["min_confidence"] * 256)


@dataclass(frozen=True)
class Judgement:
    decision: int | None  # NORMAL or FAULT; None: the fallback's decision stands
    tier: int
    confidence_q8: int


def model_scores(compiled: CompiledModel, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores, best) for raw int16 windows (n, window * channels, channels interleaved), as the board's scores()."""
    inputs = compiled.recipe.prepare(windows).reshape(len(windows), *compiled.graph.input_tensor.shape)
    return scores(compiled, inputs, reference.run(compiled.graph, inputs))


def judge(compiled: CompiledModel, windows: np.ndarray, app: dict, model_limit: int, decides: bool = True) -> list[Judgement]:
    """Tier 2's judgement of each window, as firmware/pipeline.py's _model_decision makes it; a model that only
    advises (`decides` False) leaves every decision to the fallback and gives its fault score."""
    values, best = model_scores(compiled, windows)
    judged = []
    reconstruction = compiled.kind == "reconstruction"
    for row, top in zip(values.tolist(), best.tolist()):
        if reconstruction:  # as the board: the error over ceil(limit / 256)
            ratio = min(row[0] // ((model_limit >> 8) + (1 if model_limit & 255 else 0)), 65535)
        if not decides:
            judged.append(Judgement(None, TIER_ADVISORY, ratio if reconstruction else 256 - row[0]))
        elif reconstruction:
            judged.append(Judgement(FAULT if row[0] >= model_limit else NORMAL, TIER_MODEL, ratio))
        elif row[top] >= min_confidence_q8(app):
            judged.append(Judgement(NORMAL if top == 0 else FAULT, TIER_MODEL, row[top]))
        else:
            judged.append(Judgement(None, TIER_UNSURE, row[top]))
    return judged


def reconstruction_errors(compiled: CompiledModel, windows: np.ndarray) -> np.ndarray:
    return model_scores(compiled, windows)[0][:, 0]


def reconstruction_limit(errors: np.ndarray, app: dict) -> int:
    """The error at and above which a window is a fault: a quantile of normal windows' errors, times (1 + margin)."""
    settings = app["model"]
    observed = float(np.quantile(errors, settings["limit_quantile"], method="higher"))
    return max(1, math.ceil(observed * (1 + settings["limit_margin"])))


def model_windows(counts: np.ndarray, compiled: CompiledModel, stride: int) -> np.ndarray:
    """Raw windows of a (samples, channels) recording in the model's layout (channels interleaved), one per stride."""
    window, channels = compiled.recipe.window, compiled.recipe.channels
    starts = np.arange(0, len(counts) - window + 1, stride)
    picked = counts[:, :channels] if channels > 1 else counts[:, :1]
    return np.stack([picked[s : s + window].reshape(-1) for s in starts]) if len(starts) else np.zeros((0, window * channels), np.int16)
