"""Tier-1 signal processing for a build: the FIR, the fallback thresholds and the fast-path limits.

A board's thresholds and limits come from `hostgen calibrate` on that machine's
recording when one was made (build/calibration/<board>.json), else from the synthetic
machine population. `build_config` is everything the firmware is configured from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from hostgen.config.app import load_app
from hostgen.config.board import Board
from hostgen.data import synthetic as dataset
from hostgen.dsp import calibration as calibration_module
from hostgen.dsp import fastpath, features, fir
from hostgen.dsp.calibration import Calibration, synthetic_calibration
from hostgen.dsp.features import rules_for
from hostgen.dsp.fir import FirDesign, design_fir
from hostgen.errors import HostgenError
from hostgen.paths import BUILD_ROOT
from hostgen.util.cache import cached_json, code_key

CALIBRATION_DIR = BUILD_ROOT / "calibration"


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
    key = code_key(Path(app["path"]), dataset, features, fir, fastpath, calibration_module)
    return Calibration(**cached_json("calibration", key, lambda: asdict(synthetic_calibration(app, design))))


def build_config(plan: DspPlan) -> dict:
    """Everything the firmware is configured from, with the derivation report."""
    app, design, calibration = plan.app, plan.design, plan.calibration
    fast = app["fastpath"]
    permille = fastpath.hysteresis_permille(fast["hysteresis"])
    return {
        "sampling": dict(app["sampling"]),
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
            "decision_delay_windows": fastpath.decision_delay_windows(app),
        },
        "calibration_digest": calibration.digest,
        "calibration_report": calibration.report,
    }


def config_digest(config: dict) -> str:
    """Identifies the build's settings (not its report): config.json on a board must match it."""
    settings = {key: value for key, value in config.items() if key != "calibration_report"}
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
