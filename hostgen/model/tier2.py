"""What tier 2 decides, on host, exactly as the board does: the input recipe, the engine (its numpy
reference), the scores, and the gate that hands unsure windows to the fallback.

Host-side figures and checks use this: calibrating a reconstruction model's limit, and the
device and HIL tests that compare the board's decisions with it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hostgen.constants import FAULT, NORMAL, TIERS
from hostgen.model.engine import reference
from hostgen.model.engine.generate import CompiledModel, scores

TIER_MODEL, TIER_UNSURE = TIERS.index("model"), TIERS.index("fallback (model unsure)")


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


def judge(compiled: CompiledModel, windows: np.ndarray, app: dict, model_limit: int) -> list[Judgement]:
    """Tier 2's judgement of each window, as firmware/pipeline.py's _model_decision makes it."""
    values, best = model_scores(compiled, windows)
    judged = []
    for row, top in zip(values.tolist(), best.tolist()):
        if compiled.kind == "reconstruction":
            ratio = row[0] // ((model_limit + 255) >> 8)
            judged.append(Judgement(FAULT if row[0] >= model_limit else NORMAL, TIER_MODEL, min(ratio, 65535)))
        elif row[top] >= min_confidence_q8(app):
            judged.append(Judgement(NORMAL if top == 0 else FAULT, TIER_MODEL, row[top]))
        else:
            judged.append(Judgement(None, TIER_UNSURE, row[top]))
    return judged
