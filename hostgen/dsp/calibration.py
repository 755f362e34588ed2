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
from hostgen.data.recordings import load_recording, normal_recordings, refuse_dead_sensor
from hostgen.dsp.fastpath import (
    MACHINE_RULES,
    NOISE_CHECK_FROM,
    RULES,
    ChannelLimits,
    block_figures,
    energy,
    mean_crossings,
    raw_ranges,
    run_channel,
    run_lengths,
    settle_blocks,
)
from hostgen.dsp.features import (
    BASELINE_FEATURES,
    DECISIONS,
    FAULT,
    NORMAL,
    SUSPECT,
    Rule,
    decide,
    features_of_windows,
    rules_for,
    stream_features,
)
from hostgen.dsp.fir import FirDesign, filter_signal
from hostgen.errors import HostgenError

DERIVATION_SHARE = 0.7
LARGEST_LIMIT = 2**30 - 1  # what the board's settings accept
LEVEL_FEATURES = ("rms", "peak")  # grow with speed and load: their thresholds take fallback.level_margin
MIN_WINDOWS = 10
SYNTHETIC_STREAM_SECONDS = 20
SYNTHETIC_STREAMS = 8
NOISE_MARGIN = 0.5  # the noise rule's own: white noise crosses its mean about every other sample, the machine far less


@dataclass
class Calibration:
    source: str
    rate_hz: int
    channels: int
    rules: list[str]
    thresholds: list[list[int]]  # [channel][rule]
    peak_limits: list[int]  # [channel]
    energy_limits: list[int]  # [channel]
    clip_levels: list[list[int]]  # [channel][high, low]: readings at or beyond them are at a rail
    noise_limits: list[list[int]]  # [channel][crossings, quiet range]: noise without the machine (fastpath.py)
    report: dict

    def limits(self, channel: int) -> ChannelLimits:
        high, low = self.clip_levels[channel]
        crossings, quiet_range = self.noise_limits[channel]
        return ChannelLimits(self.peak_limits[channel], self.energy_limits[channel], high, low, crossings, quiet_range)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @property
    def digest(self) -> str:
        figures = [self.rules, self.thresholds, self.peak_limits, self.energy_limits, self.clip_levels, self.noise_limits]
        return hashlib.sha256(json.dumps(figures).encode()).hexdigest()

    @classmethod
    def from_json(cls, path: Path) -> "Calibration":
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise HostgenError(f"calibration file {path} is unreadable ({exc}); rerun 'hostgen calibrate'") from None


def _quantile_threshold(values: np.ndarray, quantile: float, margin: float) -> int:
    observed = float(np.quantile(values, quantile, method="higher"))
    return max(1, math.ceil(observed * (1 + margin)))


def _lower_threshold(values: np.ndarray, quantile: float, margin: float) -> int:
    """The low quantile * (1 - margin), at least 2: the board takes thresholds from 1, and a fault one sits under it."""
    observed = float(np.quantile(values, 1 - quantile, method="lower"))
    return max(2, math.floor(observed * (1 - margin)))


def derive_thresholds(normal: np.ndarray, rules: list[Rule], app: dict) -> list[int]:
    """One channel's thresholds, in rule order, from its normal window features."""
    settings = app["fallback"]
    thresholds = []
    for rule in rules:
        values = normal[:, rule.index]
        quantile = settings["fault_quantile"] if rule.level == FAULT else settings["suspect_quantile"]
        if rule.feature in BASELINE_FEATURES:
            derive = _lower_threshold if rule.below else _quantile_threshold
            thresholds.append(derive(values, quantile, settings["baseline_margin"]))
            continue
        margin = settings["level_margin"] if rule.feature in LEVEL_FEATURES else settings["margin"]
        thresholds.append(_quantile_threshold(values, quantile, margin))
    for position, rule in enumerate(rules):
        if rule.level == FAULT:
            suspect = thresholds[rules.index(Rule(rule.feature, SUSPECT, rule.below))]
            thresholds[position] = max(1, min(thresholds[position], suspect - 1)) if rule.below else max(thresholds[position], suspect + 1)
    return thresholds


def rates(features: np.ndarray, rules: list[Rule], thresholds: list[int]) -> dict:
    """Share of windows over each rule's threshold, and the share of each decision."""
    if len(features) == 0:
        return {"windows": 0}
    decisions = np.array([decide(f, rules, np.array(thresholds))[0] for f in features])
    return {
        "windows": int(len(features)),
        "per_rule": {
            rule.label: round(float(np.mean(features[:, rule.index] <= threshold if rule.below
                                            else features[:, rule.index] >= threshold)), 4)
            for rule, threshold in zip(rules, thresholds)
        },
        "decisions": {name: round(float(np.mean(decisions == level)), 4) for level, name in enumerate(DECISIONS)},
        "flagged": round(float(np.mean(decisions != NORMAL)), 4),
    }


def _limit(values: np.ndarray, margin: float) -> int:
    return max(1, math.ceil(float(values.max()) * (1 + margin)))


def _fast_trips(raw: np.ndarray, filtered: np.ndarray, taps: int, limits: ChannelLimits, app: dict) -> dict[str, int]:
    """How often each rule was raised."""
    events = run_channel(raw, filtered, taps, limits, app)
    return {rule: sum(1 for e in events if e.raised and e.rule == rule) for rule in RULES}


def machine_trips(trips: dict[str, int]) -> int:
    return sum(trips[rule] for rule in MACHINE_RULES)


def noise_limits(raws: list[np.ndarray], app: dict) -> list[int]:
    """[crossings above every normal block's count, with NOISE_MARGIN; half the smallest normal span]."""
    block = app["sampling"]["block_samples"]
    counts = np.concatenate([mean_crossings(raw, block)[NOISE_CHECK_FROM:] for raw in raws])
    spans = np.concatenate([raw_ranges(raw, block)[NOISE_CHECK_FROM:] for raw in raws])
    return [_limit(counts, NOISE_MARGIN) + 1, max(1, int(spans.min()) // 2)]


def learned_clip_levels(raws: list[np.ndarray], app: dict) -> tuple[list[int], dict]:
    """The sensor's rails: its stated full scale, or lower where the recordings show flat tops.

    A flat top is a run of at least `saturation_samples` repeats of a recording's largest (or
    smallest) reading; two or more of them at one level mean the sensor clips there.
    """
    full_scale = app["sampling"]["full_scale_counts"]
    needed = app["fastpath"]["saturation_samples"]
    levels, seen = [full_scale, -full_scale - 1], {}
    for side, pick in ((0, np.max), (1, np.min)):
        extreme = int(pick([pick(r) for r in raws]))
        tops = 0
        for raw in raws:
            runs = run_lengths(raw.astype(np.int64) == extreme)
            tops += int(np.count_nonzero((runs[1:] == 0) & (runs[:-1] >= needed))) + int(runs[-1] >= needed)
        beyond = extreme <= levels[side] if side == 0 else extreme >= levels[side]
        if tops >= 2 and beyond:
            levels[side] = extreme
            seen["high" if side == 0 else "low"] = {"level": extreme, "flat_tops": tops}
    return levels, seen


def check_no_dropouts(raw: np.ndarray, app: dict, where: str) -> None:
    """Normal running must not look like a dropout: refuse a recording that repeats readings that often."""
    x = raw.astype(np.int64)
    longest = int(run_lengths(np.concatenate([[False], x[1:] == x[:-1]])).max())
    if longest >= app["fastpath"]["dropout_samples"]:
        raise HostgenError(
            f"{where} repeats one reading {longest} times in a row, as a dropout would (fastpath.dropout_samples = "
            f"{app['fastpath']['dropout_samples']}); set fastpath.dropout_samples to at least {longest + 1} "
            f"(and stuck_samples above it) in the app config, or check the sensor"
        )


def settled(filtered: np.ndarray, design: FirDesign, block: int) -> np.ndarray:
    """The filter output once it no longer depends on its zero start (whole blocks dropped)."""
    return filtered[settle_blocks(design.taps, block) * block :]


def synthetic_window_features(design: FirDesign, counts: np.ndarray, window: int) -> np.ndarray:
    """Features of (longer) synthetic windows, each filtered on its own: its settled last `window` samples.

    Each window is another machine's, so each is judged alone: its periodicity is its own, whose wider spread
    gives thresholds a board's stream (the mean over the channel's windows) stays further under.
    """
    filtered = np.stack([filter_signal(design.coeffs, w)[-window:] for w in counts]).reshape(-1, window)
    return features_of_windows(filtered, counts[:, -window:])


def synthetic_calibration(app: dict, design: FirDesign) -> Calibration:
    """Thresholds from the synthetic machine population: the default when no recording is given."""
    sampling, settings = app["sampling"], app["fallback"]
    window, seed = sampling["window_samples"], settings["seed"]
    span = window + design.taps
    normal_counts, _ = dataset.make_windows(seed, settings["normal_windows"], fault_fraction=0.0, window=span)
    held_counts, held_labels = dataset.make_windows(seed + 1, 2 * settings["heldout_windows"], fault_fraction=0.5, window=span)
    normal = synthetic_window_features(design, normal_counts, window)
    held = synthetic_window_features(design, held_counts, window)
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
    energy_limit = min(_limit(np.concatenate([energy(ms) for _, ms in figures]), fast_margin), LARGEST_LIMIT)
    full_scale = sampling["full_scale_counts"]
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
        clip_levels=[[full_scale, -full_scale - 1]] * channels,
        noise_limits=[noise_limits(streams, app)] * channels,
        report=report,
    )


def _held_out_report(raw: np.ndarray, filtered: np.ndarray, rules: list[Rule], thresholds: list[int],
                     limits: ChannelLimits, design: FirDesign, app: dict, rate_hz: int) -> dict:
    sampling = app["sampling"]
    features = stream_features(filtered, raw, sampling["window_samples"], sampling["stride_samples"])
    seconds = len(raw) / rate_hz
    trips = _fast_trips(raw, filtered, design.taps, limits, app)
    return {
        **rates(features, rules, thresholds),
        "seconds": round(seconds, 1),
        "fast_path_trips": machine_trips(trips),
        "sensor_events": {rule: count for rule, count in trips.items() if rule not in MACHINE_RULES and count},
    }


def recording_calibration(app: dict, design: FirDesign, normal_paths: list[Path], fault_paths: list[Path]) -> Calibration:
    """Thresholds and limits from the first part of each normal recording; rates on each held-out part and on faults."""
    sampling, settings = app["sampling"], app["fallback"]
    window, stride, block = sampling["window_samples"], sampling["stride_samples"], sampling["block_samples"]
    channels, rate_hz = sampling["channels"], sampling["rate_hz"]
    normals = [(path, load_recording(path, channels)) for path in normal_recordings(normal_paths)]
    for path, recording in normals:
        refuse_dead_sensor(path, recording, sampling["full_scale_counts"], app["fastpath"]["stuck_samples"])
    faults = [(path, load_recording(path, channels)) for path in fault_paths]
    rules = rules_for(settings["decide_on"])
    margin = app["fastpath"]["margin"]
    splits = [int(len(recording) * DERIVATION_SHARE) // block * block for _, recording in normals]
    result = {"thresholds": [], "peak": [], "energy": [], "clip": [], "noise": [], "report": []}
    for channel in range(channels):
        derive_features, peaks, energies, derive_raws, filtered_all = [], [], [], [], []
        for (_, recording), split in zip(normals, splits):
            raw = recording[:, channel]
            filtered = filter_signal(design.coeffs, raw)
            filtered_all.append(filtered)
            derive = settled(filtered[:split], design, block)
            derive_features.append(stream_features(derive, settled(raw[:split], design, block), window, stride))
            block_peaks, mean_squares = block_figures(derive, block)
            peaks.append(block_peaks)
            energies.append(energy(mean_squares))
            derive_raws.append(raw[:split])
        derive_features = np.concatenate(derive_features)
        if len(derive_features) < MIN_WINDOWS:
            shortest = min(len(recording) for _, recording in normals)
            raise HostgenError(
                f"normal recordings {', '.join(str(p) for p, _ in normals)} give {len(derive_features)} normal windows to derive "
                f"from (the first {DERIVATION_SHARE:.0%} of each); thresholds need at least {MIN_WINDOWS}: record at least "
                f"{math.ceil((MIN_WINDOWS * stride + window) / DERIVATION_SHARE)} samples (the shortest has {shortest})"
            )
        for path, recording in normals:
            check_no_dropouts(recording[:, channel], app, f"normal recording {path} (channel {channel})")
        thresholds = derive_thresholds(derive_features, rules, app)
        clip, clip_seen = learned_clip_levels([r[:, channel] for _, r in normals] + [r[:, channel] for _, r in faults], app)
        limits = ChannelLimits(_limit(np.concatenate(peaks), margin), min(_limit(np.concatenate(energies), margin), LARGEST_LIMIT),
                               clip[0], clip[1], *noise_limits(derive_raws, app))
        held = {
            str(path): _held_out_report(recording[split:, channel], filtered[split:], rules, thresholds, limits, design, app, rate_hz)
            for (path, recording), split, filtered in zip(normals, splits, filtered_all)
        }
        fault_reports = {}
        for path, recording in faults:
            fault_filtered = filter_signal(design.coeffs, recording[:, channel])
            fault_reports[str(path)] = _held_out_report(recording[:, channel], fault_filtered, rules, thresholds, limits,
                                                        design, app, rate_hz)
        held_features = np.concatenate([
            stream_features(filtered[split:], recording[split:, channel], window, stride)
            for (_, recording), filtered, split in zip(normals, filtered_all, splits)
        ])
        held_seconds = sum(report["seconds"] for report in held.values())
        trips = sum(report["fast_path_trips"] for report in held.values())
        for key, value in (("thresholds", thresholds), ("peak", limits.peak), ("energy", limits.energy),
                           ("clip", list(clip)), ("noise", [limits.noise, limits.quiet_range])):
            result[key].append(value)
        result["report"].append({
            "channel": channel,
            "derived_from": f"{len(derive_features)} windows in the first {DERIVATION_SHARE:.0%} of {len(normals)} recording(s)",
            "heldout_normal": rates(held_features, rules, thresholds),
            "heldout_per_recording": held,
            "fast_path": {
                "heldout_seconds": round(held_seconds, 1),
                "heldout_trips": trips,
                "trips_per_hour": round(trips * 3600 / held_seconds, 2) if held_seconds else None,
            },
            "sensor": {"clip_levels": list(clip), "clip_learned": clip_seen, "noise_limit": limits.noise, "quiet_range": limits.quiet_range},
            "faults": fault_reports,
        })
    return Calibration(
        source="recording " + ", ".join(str(path) for path, _ in normals),
        rate_hz=rate_hz,
        channels=channels,
        rules=[r.label for r in rules],
        thresholds=result["thresholds"],
        peak_limits=result["peak"],
        energy_limits=result["energy"],
        clip_levels=result["clip"],
        noise_limits=result["noise"],
        report={"channels": result["report"]},
    )
