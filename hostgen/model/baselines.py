"""The reference model beside what a board decides with and without it, on the model's own held-out windows.

- fallback: tier 1 alone, every window: the features of the FIR-filtered window (hostgen/dsp/features.py)
  against the default app config's synthetic calibration (hostgen/dsp/calibration.py).
- board: tier 1 and tier 2 as the board runs them (hostgen/model/tier2.py judge): the int8 model decides
  the windows it is at least min_confidence sure of, the fallback the rest.

A window is flagged when its decision is not normal (suspect or fault). The figures are cached by the
model, the app config and the code that makes them, so a change to tier 1 refreshes them without
retraining the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hostgen.constants import NORMAL
from hostgen.dsp.calibration import synthetic_calibration, synthetic_window_features
from hostgen.dsp.features import decide, rules_for
from hostgen.dsp.fir import design_fir
from hostgen.errors import HostgenError
from hostgen.model import tier2
from hostgen.model.engine.generate import compile_model
from hostgen.model.tflite import load_model
from hostgen.util.cache import code_key

PACKAGE = Path(__file__).resolve().parents[1]


def baselines_key(tflite: Path, recipe_name: str, app: dict) -> str:
    code = sorted((PACKAGE / "dsp").glob("*.py")) + sorted((PACKAGE / "model" / "engine").glob("*.py"))
    return code_key(tflite, recipe_name, Path(app["path"]), *code, Path(tier2.__file__), Path(__file__))


def flag_rates(decisions: np.ndarray, labels: np.ndarray) -> dict:
    flagged = decisions != NORMAL
    return {
        "false_alarm_rate": round(float(np.mean(flagged[labels == 0])), 4),
        "fault_recall": round(float(np.mean(flagged[labels != 0])), 4),
    }


def fallback_decisions(sets: dict[str, np.ndarray], app: dict) -> dict[str, np.ndarray]:
    """Per set of windows, tier 1's decision on each one's last window_samples, the samples before them settling its FIR."""
    design, window = design_fir(app), app["sampling"]["window_samples"]
    shortest = min(counts.shape[1] for counts in sets.values())
    if shortest < window + design.taps:
        raise HostgenError(f"windows of {shortest} samples leave the {design.taps}-tap filter too few to settle on "
                           f"before a {window}-sample window; make them at least {window + design.taps} long")
    calibration = synthetic_calibration(app, design)
    rules, thresholds = rules_for(app["fallback"]["decide_on"]), np.array(calibration.thresholds[0])
    return {name: np.array([decide(f, rules, thresholds)[0] for f in synthetic_window_features(design, counts, window)], np.int64)
            for name, counts in sets.items()}


def board_baselines(tflite: Path, name: str, recipe_name: str, sets: dict[str, tuple[np.ndarray, np.ndarray]], app: dict) -> dict:
    """Per set of (int16 counts (n, settle + window), labels): the fallback's and the board's rates under `app`."""
    compiled = compile_model(load_model(tflite), name, "hostgen train", recipe_name)
    figures = {"key": baselines_key(tflite, recipe_name, app), "min_confidence": app["firmware"]["min_confidence"]}
    fallbacks = fallback_decisions({part: counts for part, (counts, _) in sets.items()}, app)
    for part, (counts, labels) in sets.items():
        fallback = fallbacks[part]
        windows = counts[:, -compiled.recipe.window :]
        judged = tier2.judge(compiled, windows, app, 0)
        sure = np.array([j.decision is not None for j in judged])
        board = np.where(sure, [NORMAL if j.decision is None else j.decision for j in judged], fallback)
        figures[part] = {
            "fallback": flag_rates(fallback, labels),
            "board": {**flag_rates(board, labels), "model_decides": round(float(np.mean(sure)), 4)},
        }
    figures["board_beats_fallback"] = all(
        figures[part]["board"]["false_alarm_rate"] <= figures[part]["fallback"]["false_alarm_rate"]
        and figures[part]["board"]["fault_recall"] > figures[part]["fallback"]["fault_recall"]
        for part in sets
    )
    return figures
