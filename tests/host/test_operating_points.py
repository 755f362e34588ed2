"""Tier 1 across operating points: calibrated on normal running at some speeds, judged at others.

Prints the figures per recording kind (pytest -s shows them). The issue's targets are
asserted; the ones tier 1 does not meet yet are strict xfails that say so, and turn into
failures the day they are met (so the marks get removed).
"""

from __future__ import annotations

import numpy as np
import pytest

from hostgen.config.app import load_app
from hostgen.data.floor import HELD_OUT, figures, floor_recordings
from hostgen.dsp.calibration import recording_calibration
from hostgen.dsp.fir import design_fir

SEEDS = (1, 2, 3, 4, 5, 6, 7, 8)
UNSEEN_SEEDS = (9, 10, 11, 12, 13, 14, 15, 16)  # machines no tier-1 choice was tuned on
MAX_FALSE_ALARMS = 0.005
MIN_DETECTED = 0.95


def floor_table(seeds, tmp_path_factory) -> dict:
    """{(seed, recording name): figures} for machines calibrated on their own normal running, printed."""
    app = load_app()
    design = design_fir(app)
    out = {}
    for seed in seeds:
        normals, held = floor_recordings(seed)
        paths = []
        for index, samples in enumerate(normals):
            path = tmp_path_factory.mktemp(f"floor{seed}") / f"normal_{index}.npy"
            np.save(path, samples)
            paths.append(path)
        calibration = recording_calibration(app, design, paths, [])
        for recording in held:
            out[(seed, recording.name)] = figures(recording.samples, recording.onset, calibration, app, design)
    print("\nseed recording      false alarms  detected  fast-path trips (before/after onset)")
    for (seed, name), f in out.items():
        detected = "-" if f["detected"] is None else f"{f['detected']:.1%}"
        print(f"{seed:>4} {name:<14}{f['false_alarms']:>12.1%}{detected:>10}  "
              f"{f['fast_path_trips_before_onset']}/{f['fast_path_trips_after_onset']}")
    return out


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return floor_table(SEEDS, tmp_path_factory)


def test_the_held_out_speeds_are_outside_the_calibration():
    from hostgen.data.floor import CALIBRATION_SPEEDS

    low, high = min(s[0] for s in CALIBRATION_SPEEDS), max(s[1] for s in CALIBRATION_SPEEDS)
    assert HELD_OUT["normal_slow"][0][1] < low and HELD_OUT["normal_fast"][0][0] > high


def test_bearing_faults_are_seen_by_the_fast_path_or_the_windows(table):
    for seed in SEEDS:
        for kind in ("outer_race", "inner_race"):
            f = table[(seed, kind)]
            assert f["fast_path_trips_after_onset"] or f["detected"] > 0.5, (seed, kind, f)


def test_normal_running_at_other_speeds_raises_no_alarm(table):
    for seed in SEEDS:
        for name in ("normal_slow", "normal_fast", "normal_sweep"):
            f = table[(seed, name)]
            assert f["false_alarms"] <= MAX_FALSE_ALARMS and f["fast_path_trips_before_onset"] == 0, (seed, name, f)


NOT_MET = {
    "imbalance": "not met: machine 1's added unbalance partly cancels its residual one (1x down to 0.65 of normal: "
                 "nothing grows without a phase reference), machine 5's raises the 1x only 1.22x (49.5% detected)",
}


@pytest.mark.parametrize("kind", [pytest.param(k, marks=pytest.mark.xfail(strict=True, reason=r)) for k, r in NOT_MET.items()])
def test_every_fault_kind_is_detected_after_onset(table, kind):
    for seed in SEEDS:
        assert table[(seed, kind)]["detected"] >= MIN_DETECTED, (seed, kind, table[(seed, kind)])


def test_bearing_faults_are_detected_on_machines_not_tuned_on(tmp_path_factory):
    """The bearing figures hold on eight more machines (their normal-running figures are printed, not judged here)."""
    unseen = floor_table(UNSEEN_SEEDS, tmp_path_factory)
    for seed in UNSEEN_SEEDS:
        for kind in ("outer_race", "inner_race"):
            assert unseen[(seed, kind)]["detected"] >= MIN_DETECTED, (seed, kind, unseen[(seed, kind)])


def test_imbalance_is_seen_through_the_raw_once_per_turn_feature(table):
    """The FIR's band hides a 1x force; once_per_turn on the raw window sees it on most machines."""
    seen = [seed for seed in SEEDS if table[(seed, "imbalance")]["detected"] >= MIN_DETECTED]
    assert len(seen) >= 6, {seed: table[(seed, "imbalance")]["detected"] for seed in SEEDS}
