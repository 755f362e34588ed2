"""Fallback thresholds and fast-path limits, derived from normal running and checked on faults.

Thresholds are per channel and per rule: a quantile of the feature over normal windows,
times (1 + margin), rounded up. Fast-path limits are the largest normal block figure
times (1 + margin). Every figure is reproducible: the same data and config give the
same integers. Without a recording, the data is the synthetic machine population.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hostgen.data import synthetic as dataset
from hostgen.data.recordings import load_recording, refuse_dead_sensor
from hostgen.dsp.fastpath import block_figures, energy, run_channel, settle_blocks
from hostgen.dsp.features import (
    DECISIONS,
    FAULT,
    NORMAL,
    Rule,
    decide,
    features_of_windows,
    rules_for,
    windows_of,
)
from hostgen.dsp.fir import FirDesign, filter_signal
from hostgen.errors import HostgenError

DERIVATION_SHARE = 0.7
MIN_WINDOWS = 10
SYNTHETIC_STREAM_SECONDS = 20
SYNTHETIC_STREAMS = 8


@dataclass
class Calibration:
    source: str
    rate_hz: int
    channels: int
    rules: list[str]
    thresholds: list[list[int]]  # [channel][rule]
    peak_limits: list[int]  # [channel]
    energy_limits: list[int]  # [channel]
    report: dict

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps([self.rules, self.thresholds, self.peak_limits, self.energy_limits]).encode()).hexdigest()

    @classmethod
    def from_json(cls, path: Path) -> "Calibration":
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise HostgenError(f"calibration file {path} is unreadable ({exc}); rerun 'hostgen calibrate'") from None


def _quantile_threshold(values: np.ndarray, quantile: float, margin: float) -> int:
    observed = float(np.quantile(values, quantile, method="higher"))
    return max(1, math.ceil(observed * (1 + margin)))


def derive_thresholds(normal: np.ndarray, rules: list[Rule], app: dict) -> list[int]:
    """One channel's thresholds, in rule order, from its normal window features."""
    settings = app["fallback"]
    thresholds = []
    for rule in rules:
        values = normal[:, rule.index]
        quantile = settings["fault_quantile"] if rule.level == FAULT else settings["suspect_quantile"]
        thresholds.append(_quantile_threshold(values, quantile, settings["margin"]))
    for position, rule in enumerate(rules):
        if rule.level == FAULT:
            suspect = thresholds[rules.index(Rule(rule.feature, 1))]
            thresholds[position] = max(thresholds[position], suspect + 1)
    return thresholds


def rates(features: np.ndarray, rules: list[Rule], thresholds: list[int]) -> dict:
    """Share of windows over each rule's threshold, and the share of each decision."""
    if len(features) == 0:
        return {"windows": 0}
    decisions = np.array([decide(f, rules, np.array(thresholds))[0] for f in features])
    return {
        "windows": int(len(features)),
        "per_rule": {
            rule.label: round(float(np.mean(features[:, rule.index] >= threshold)), 4)
            for rule, threshold in zip(rules, thresholds)
        },
        "decisions": {name: round(float(np.mean(decisions == level)), 4) for level, name in enumerate(DECISIONS)},
        "flagged": round(float(np.mean(decisions != NORMAL)), 4),
    }


def _limit(values: np.ndarray, margin: float) -> int:
    return max(1, math.ceil(float(values.max()) * (1 + margin)))


def _fast_trips(raw: np.ndarray, filtered: np.ndarray, taps: int, peak_limit: int, energy_limit: int, app: dict) -> int:
    events = run_channel(raw, filtered, taps, peak_limit, energy_limit, app)
    return sum(1 for e in events if e.raised and e.rule in ("peak", "energy"))


def settled(filtered: np.ndarray, design: FirDesign, block: int) -> np.ndarray:
    """The filter output once it no longer depends on its zero start (whole blocks dropped)."""
    return filtered[settle_blocks(design.taps, block) * block :]


def _filtered_windows(design: FirDesign, counts: np.ndarray, window: int) -> np.ndarray:
    """Filter each (longer) synthetic window on its own and keep the settled last `window` samples."""
    return np.stack([filter_signal(design.coeffs, w)[-window:] for w in counts])


def synthetic_calibration(app: dict, design: FirDesign) -> Calibration:
    """Thresholds from the synthetic machine population: the default when no recording is given."""
    sampling, settings = app["sampling"], app["fallback"]
    window, seed = sampling["window_samples"], settings["seed"]
    span = window + design.taps
    normal_counts, _ = dataset.make_windows(seed, settings["normal_windows"], fault_fraction=0.0, window=span)
    held_counts, held_labels = dataset.make_windows(seed + 1, 2 * settings["heldout_windows"], fault_fraction=0.5, window=span)
    normal = features_of_windows(_filtered_windows(design, normal_counts, window))
    held = features_of_windows(_filtered_windows(design, held_counts, window))
    rules = rules_for(settings["decide_on"])
    thresholds = derive_thresholds(normal, rules, app)

    rng = np.random.default_rng(seed + 2)
    streams = [
        dataset.synthesize(dataset.random_machine(rng, fault=False), SYNTHETIC_STREAM_SECONDS * sampling["rate_hz"], rng, sampling["rate_hz"])
        for _ in range(SYNTHETIC_STREAMS)
    ]
    block = sampling["block_samples"]
    figures = [block_figures(settled(filter_signal(design.coeffs, s), design, block), block) for s in streams]
    fast_margin = app["fastpath"]["margin"]
    peak_limit = _limit(np.concatenate([p for p, _ in figures]), fast_margin)
    energy_limit = _limit(np.concatenate([energy(ms) for _, ms in figures]), fast_margin)
    report = {
        "derived_from": f"{settings['normal_windows']} synthetic normal windows (seed {seed})",
        "heldout_normal": rates(held[held_labels == 0], rules, thresholds),
        "heldout_fault": rates(held[held_labels == 1], rules, thresholds),
        "fast_path": {"derived_from": f"{SYNTHETIC_STREAMS} synthetic normal streams of {SYNTHETIC_STREAM_SECONDS} s"},
    }
    channels = sampling["channels"]
    return Calibration(
        source="synthetic",
        rate_hz=sampling["rate_hz"],
        channels=channels,
        rules=[r.label for r in rules],
        thresholds=[thresholds] * channels,
        peak_limits=[peak_limit] * channels,
        energy_limits=[energy_limit] * channels,
        report=report,
    )


def recording_calibration(app: dict, design: FirDesign, normal_path: Path, fault_paths: list[Path]) -> Calibration:
    """Thresholds and limits from one machine's normal running; rates on its held-out part and on faults."""
    sampling, settings = app["sampling"], app["fallback"]
    window, stride, block = sampling["window_samples"], sampling["stride_samples"], sampling["block_samples"]
    channels = sampling["channels"]
    normal = load_recording(normal_path, channels)
    refuse_dead_sensor(normal_path, normal, sampling["full_scale_counts"], app["fastpath"]["stuck_samples"])
    faults = [(path, load_recording(path, channels)) for path in fault_paths]
    rules = rules_for(settings["decide_on"])
    split = int(len(normal) * DERIVATION_SHARE) // block * block
    all_thresholds, peak_limits, energy_limits, per_channel = [], [], [], []
    for channel in range(channels):
        raw = normal[:, channel]
        filtered = filter_signal(design.coeffs, raw)
        derive_windows = windows_of(settled(filtered[:split], design, block), window, stride)
        if len(derive_windows) < MIN_WINDOWS:
            raise HostgenError(
                f"normal recording {normal_path} gives {len(derive_windows)} normal windows to derive from "
                f"(the first {DERIVATION_SHARE:.0%} of {len(normal)} samples); thresholds need at least {MIN_WINDOWS}: "
                f"record at least {math.ceil((MIN_WINDOWS * stride + window) / DERIVATION_SHARE)} samples"
            )
        derive_features = features_of_windows(derive_windows)
        held_features = features_of_windows(windows_of(filtered[split:], window, stride))
        thresholds = derive_thresholds(derive_features, rules, app)
        peaks, mean_squares = block_figures(settled(filtered[:split], design, block), block)
        peak_limit = _limit(peaks, app["fastpath"]["margin"])
        energy_limit = _limit(energy(mean_squares), app["fastpath"]["margin"])
        held_seconds = (len(raw) - split) / sampling["rate_hz"]
        trips = _fast_trips(raw[split:], filtered[split:], design.taps, peak_limit, energy_limit, app)
        fault_reports = {}
        for path, recording in faults:
            fault_filtered = filter_signal(design.coeffs, recording[:, channel])
            fault_features = features_of_windows(windows_of(settled(fault_filtered, design, block), window, stride))
            fault_reports[str(path)] = {
                **rates(fault_features, rules, thresholds),
                "fast_path_trips": _fast_trips(recording[:, channel], fault_filtered, design.taps, peak_limit, energy_limit, app),
            }
        all_thresholds.append(thresholds)
        peak_limits.append(peak_limit)
        energy_limits.append(energy_limit)
        per_channel.append({
            "channel": channel,
            "derived_from": f"{len(derive_windows)} windows in the first {split} samples",
            "heldout_normal": rates(held_features, rules, thresholds),
            "fast_path": {
                "heldout_seconds": round(held_seconds, 1),
                "heldout_trips": trips,
                "trips_per_hour": round(trips * 3600 / held_seconds, 2) if held_seconds else None,
            },
            "faults": fault_reports,
        })
    return Calibration(
        source=f"recording {normal_path}",
        rate_hz=sampling["rate_hz"],
        channels=channels,
        rules=[r.label for r in rules],
        thresholds=all_thresholds,
        peak_limits=peak_limits,
        energy_limits=energy_limits,
        report={"channels": per_channel},
    )
