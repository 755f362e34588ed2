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


FAULT_KINDS = ("outer_race", "inner_race", "imbalance")


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_every_fault_kind_is_detected_after_onset(table, kind):
    for seed in SEEDS:
        assert table[(seed, kind)]["detected"] >= MIN_DETECTED, (seed, kind, table[(seed, kind)])


def test_faults_are_detected_on_machines_not_tuned_on(tmp_path_factory):
    """The fault figures hold on eight more machines (their normal-running figures are printed, not judged here)."""
    unseen = floor_table(UNSEEN_SEEDS, tmp_path_factory)
    for seed in UNSEEN_SEEDS:
        for kind in FAULT_KINDS:
            assert unseen[(seed, kind)]["detected"] >= MIN_DETECTED, (seed, kind, unseen[(seed, kind)])


def test_imbalance_is_seen_through_unbalance_either_way(table, tmp_path):
    """Machine 1's added unbalance partly cancels its residual one (its 1x falls to 0.65 of normal), machine 5's
    raises its 1x only 1.22x: the other rules (once_per_turn's among them) miss both, unbalance's below and above catch them."""
    app = load_app()
    app["fallback"]["decide_on"] = [f for f in app["fallback"]["decide_on"] if f != "unbalance"]
    design = design_fir(app)
    for seed in (1, 5):
        normals, held = floor_recordings(seed)
        paths = []
        for index, samples in enumerate(normals):
            paths.append(tmp_path / f"normal_{seed}_{index}.npy")
            np.save(paths[-1], samples)
        imbalance = next(r for r in held if r.name == "imbalance")
        without = figures(imbalance.samples, imbalance.onset, recording_calibration(app, design, paths, []), app, design)
        assert without["detected"] < 0.5 <= MIN_DETECTED <= table[(seed, "imbalance")]["detected"], (seed, without)
