"""Tier-1 signal processing for a build: the FIR, the fallback thresholds and the fast-path limits.

A board's thresholds and limits come from `hostgen calibrate` on that machine's
recording when one was made (build/calibration/<board>.json), else from the synthetic
machine population. Rendering gives the FIR and the fallback in C and MicroPython,
the response plot, and config.json, the build config the firmware is made from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from hostgen import calibration as calibration_module
from hostgen import dataset, features, fir, fastpath
from hostgen.appconfig import load_app
from hostgen.boards import Board
from hostgen.calibration import Calibration, synthetic_calibration
from hostgen.codegen import render_templates
from hostgen.errors import HostgenError
from hostgen.features import FEATURES, rules_for
from hostgen.fir import FirDesign, design_fir, response_plot
from hostgen.paths import BUILD_ROOT, CACHE_DIR

CALIBRATION_DIR = BUILD_ROOT / "calibration"
COEFFICIENTS_PER_ROW = 10


@dataclass(frozen=True)
class DspPlan:
    board: Board
    app: dict
    design: FirDesign
    calibration: Calibration
    calibration_path: Path | None

    @property
    def inputs(self) -> list[tuple[str, Path]]:
        found = [("board", self.board.path), ("app", self.app["path"])]
        return found + ([("calibration", self.calibration_path)] if self.calibration_path else [])


def calibration_path(board_name: str) -> Path:
    return CALIBRATION_DIR / f"{board_name}.json"


def plan_dsp(board: Board, app_path: str | None) -> DspPlan:
    app = load_app(app_path)
    if app["sampling"]["channels"] > len(board["io"]["adc_pins"]):
        raise HostgenError(
            f"{app['path']}: sampling.channels = {app['sampling']['channels']} but {board.name} lists "
            f"{len(board['io']['adc_pins'])} ADC pin(s) in {board.path.name} [io] adc_pins; add pins or sample fewer channels"
        )
    stored = calibration_path(board.name)
    calibration = Calibration.from_json(stored) if stored.is_file() else None
    if calibration is not None:
        app["sampling"]["rate_hz"] = calibration.rate_hz
    design = design_fir(app)
    if calibration is None:
        return DspPlan(board, app, design, _synthetic_cached(app, design), None)
    expected = [rule.label for rule in rules_for(app["fallback"]["decide_on"])]
    if calibration.channels != app["sampling"]["channels"] or calibration.rules != expected:
        raise HostgenError(
            f"calibration {stored} was made for {calibration.channels} channel(s) and rules {calibration.rules}, "
            f"but the app config now has {app['sampling']['channels']} and {expected}; rerun 'hostgen calibrate'"
        )
    return DspPlan(board, app, design, calibration, stored)


def _synthetic_cached(app: dict, design: FirDesign) -> Calibration:
    digest = hashlib.sha256(Path(app["path"]).read_bytes())
    for module in (dataset, features, fir, fastpath, calibration_module):
        digest.update(Path(module.__file__).read_bytes())
    cache = CACHE_DIR / "calibration" / f"{digest.hexdigest()}.json"
    if cache.is_file():
        return Calibration.from_json(cache)
    result = synthetic_calibration(app, design)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(result.to_json())
    return result


def _rows(values, per_row: int) -> list[str]:
    text = [f"{int(v)}," for v in values]
    return [" ".join(text[i : i + per_row]) for i in range(0, len(text), per_row)]


def build_config(plan: DspPlan) -> dict:
    """Everything the firmware is configured from, with the derivation report."""
    app, design, calibration = plan.app, plan.design, plan.calibration
    fast = app["fastpath"]
    permille = fastpath.hysteresis_permille(fast["hysteresis"])
    return {
        "sampling": {key: value for key, value in app["sampling"].items()},
        "filter": design.summary(),
        "fallback": {
            "source": calibration.source,
            "rules": calibration.rules,
            "thresholds": calibration.thresholds,
        },
        "fastpath": {
            "peak_limits": calibration.peak_limits,
            "energy_limits": calibration.energy_limits,
            "clear_peak_levels": [fastpath.clear_level(limit, permille) for limit in calibration.peak_limits],
            "clear_energy_levels": [fastpath.clear_level(limit, permille) for limit in calibration.energy_limits],
            "clip_high": [high for high, _ in calibration.clip_levels],
            "clip_low": [low for _, low in calibration.clip_levels],
            "noise_limits": [crossings for crossings, _ in calibration.noise_limits],
            "quiet_ranges": [span for _, span in calibration.noise_limits],
            "debounce_blocks": fast["debounce_blocks"],
            "hold_blocks": fast["hold_blocks"],
            "hysteresis": fast["hysteresis"],
            "saturation_samples": fast["saturation_samples"],
            "stuck_samples": fast["stuck_samples"],
            "dropout_samples": fast["dropout_samples"],
            "settle_blocks": fastpath.settle_blocks(design.taps, app["sampling"]["block_samples"]),
        },
        "calibration_digest": calibration.digest,
        "calibration_report": calibration.report,
    }


def config_digest(config: dict) -> str:
    """Identifies the build's settings (not its report): config.json on a board must match it."""
    settings = {key: value for key, value in config.items() if key != "calibration_report"}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


def render_dsp_files(plan: DspPlan, command: str) -> dict[str, bytes]:
    design, window = plan.design, plan.app["sampling"]["window_samples"]
    name = design.name
    config = build_config(plan)
    io = plan.board["io"]
    context = {
        "fir": design,
        "name": name,
        "NAME": name.upper(),
        "coefficient_rows": _rows(design.coeffs, COEFFICIENTS_PER_ROW),
        "calibration": plan.calibration,
        "rules": rules_for(plan.app["fallback"]["decide_on"]),
        "features": FEATURES,
        "period_lags": list(features.PERIOD_LAGS),
        "window": window,
        "log2_window": window.bit_length() - 1,
        "board": plan.board,
        "app": plan.app,
        "sampling": plan.app["sampling"],
        "fast": config["fastpath"],
        "digest": config_digest(config),
        "hysteresis_permille": fastpath.hysteresis_permille(plan.app["fastpath"]["hysteresis"]),
        "min_confidence_q8": round(plan.app["firmware"]["min_confidence"] * 256),
        "io": io,
        "adc_pins": io["adc_pins"][: plan.app["sampling"]["channels"]],
        "pin_or_none": lambda value, none: "None" if value == none else f'"{value}"',
    }
    templates = {
        f"fir_{name}.h": "fir.h.j2",
        f"fir_{name}.c": "fir.c.j2",
        f"fir_{name}.py": "fir.py.j2",
        f"fir_{name}_plain.py": "fir_plain.py.j2",
        "fallback.h": "fallback.h.j2",
        "fallback.c": "fallback.c.j2",
        "fallback.py": "fallback.py.j2",
        "faultline_config.py": "faultline_config.py.j2",
    }
    files = render_templates(templates, plan.inputs, command, context)
    files[f"fir_{name}_response.png"] = response_plot(design)
    files["config.json"] = (json.dumps(config, indent=2) + "\n").encode()
    return files
