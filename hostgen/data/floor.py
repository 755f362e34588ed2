"""The project's own floor recordings: one machine class at several speeds and loads, normal and faulty.

Calibration gets normal running at speeds around the machine's own (CALIBRATION_SPEEDS);
the held-out set is normal running at speeds outside them, and each fault kind starting
at a known moment, also at speeds outside them. `figures` says, per recording, what the
tier-1 reference decides: false alarms before onset, detection after it, fast-path trips,
sensor events.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hostgen.data import synthetic as dataset
from hostgen.dsp.calibration import Calibration, settled
from hostgen.dsp.fastpath import MACHINE_RULES, run_channel
from hostgen.dsp.features import NORMAL, decide, rules_for, stream_features
from hostgen.dsp.fir import FirDesign, filter_signal

CALIBRATION_SPEEDS = ((0.8, 0.85), (0.95, 1.05), (1.15, 1.2))  # factors on the machine's shaft speed
CALIBRATION_LOADS = (0.6, 1.0)
HELD_OUT = {  # name: (speed range, fault kind or None)
    "normal_slow": ((0.6, 0.65), None),
    "normal_fast": ((1.35, 1.4), None),
    "normal_sweep": ((0.6, 1.4), None),
    "outer_race": ((0.6, 1.4), "outer_race"),
    "inner_race": ((0.6, 1.4), "inner_race"),
    "imbalance": ((0.6, 1.4), "imbalance"),
}
HELD_OUT_LOADS = (0.5, 1.2)
CALIBRATION_SECONDS = 40
HELD_OUT_SECONDS = 20
ONSET_SECONDS = 8
FAULT_COUNTS = {"outer_race": 2000.0, "inner_race": 2000.0, "imbalance": 2000.0}


@dataclass(frozen=True)
class FloorRecording:
    name: str
    samples: np.ndarray  # int16 (samples,)
    fault: str | None
    onset: int | None  # first faulty sample


def _run(machine: dataset.Machine, rng: np.random.Generator, seconds: int, speeds, loads, changes: int,
         fault: str | None = None) -> np.ndarray:
    samples = seconds * dataset.RATE_HZ
    speed, load = dataset.operating_profile(samples, rng, speeds, loads, changes)
    healthy = dataset.synthesize(machine, samples, rng, speed=speed, load=load)
    if fault is None:
        return healthy
    faulty = dataset.Machine(**{**machine.__dict__, "fault_counts": FAULT_COUNTS[fault], "fault_kind": fault})
    onset = ONSET_SECONDS * dataset.RATE_HZ
    return np.concatenate([healthy[:onset], dataset.synthesize(faulty, samples, rng, speed=speed, load=load)[onset:]])


def floor_recordings(seed: int) -> tuple[list[np.ndarray], list[FloorRecording]]:
    """(calibration normals, held-out recordings) of one machine, all int16 (samples,)."""
    rng = np.random.default_rng(seed)
    machine = dataset.random_machine(rng, fault=False)
    calibration = [_run(machine, rng, CALIBRATION_SECONDS, speeds, CALIBRATION_LOADS, 2) for speeds in CALIBRATION_SPEEDS]
    held = []
    for name, (speeds, fault) in HELD_OUT.items():
        samples = _run(machine, rng, HELD_OUT_SECONDS, speeds, HELD_OUT_LOADS, 3, fault)
        held.append(FloorRecording(name, samples, fault, ONSET_SECONDS * dataset.RATE_HZ if fault else None))
    return calibration, held


def figures(recording: np.ndarray, onset: int | None, calibration: Calibration, app: dict, design: FirDesign,
            channel: int = 0) -> dict:
    """What tier 1 (the reference) makes of one channel of a recording, before and after `onset`."""
    sampling = app["sampling"]
    block, window, stride = sampling["block_samples"], sampling["window_samples"], sampling["stride_samples"]
    filtered = filter_signal(design.coeffs, recording)
    features = stream_features(settled(filtered, design, block), settled(recording, design, block), window, stride)
    rules = rules_for(app["fallback"]["decide_on"])
    thresholds = np.array(calibration.thresholds[channel])
    flagged = np.array([decide(f, rules, thresholds)[0] != NORMAL for f in features], bool)
    ends = len(filtered) - len(settled(filtered, design, block)) + np.arange(len(features)) * stride + window
    events = [e for e in run_channel(recording, filtered, design.taps, calibration.limits(channel), app) if e.raised]
    before = ends <= onset if onset is not None else np.ones(len(ends), bool)
    after = ends > onset + window if onset is not None else np.zeros(len(ends), bool)
    trips_before = [e for e in events if e.rule in MACHINE_RULES and (onset is None or e.sample < onset)]
    first = next((int(end) for end, hit in zip(ends[~before], flagged[~before]) if hit), None) if onset is not None else None
    return {
        "windows": int(len(features)),
        "false_alarms": round(float(flagged[before].mean()), 4) if before.any() else None,
        "detected": round(float(flagged[after].mean()), 4) if after.any() else None,
        "latency_samples": None if first is None else first - onset,
        "fast_path_trips_before_onset": len(trips_before),
        "fast_path_trips_after_onset": sum(1 for e in events if e.rule in MACHINE_RULES) - len(trips_before),
        "sensor_events": sorted({e.rule for e in events if e.rule not in MACHINE_RULES}),
    }
