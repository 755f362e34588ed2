"""once_per_turn and unbalance: what they measure, and that their integers stay inside 31 bits on a 32-bit board."""

from __future__ import annotations

import subprocess
from math import isqrt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hostgen.config.board import load_board
from hostgen.constants import FAULT, FEATURES, NO_RULE, NORMAL, SUSPECT
from hostgen.dsp.features import (
    BELOW_SCORE_CAP,
    CROSSING_BITS,
    ONCE_PER_TURN_CAP,
    PERIOD_LAGS,
    SCORE_CAP,
    TURN_LAGS,
    TURN_PEAK_BITS,
    decide,
    once_per_turn,
    rules_for,
    turn_depths,
    turn_features,
    turn_samples,
)
from hostgen.dsp.parity import window_vectors
from hostgen.dsp.runners import C_FLAGS, open_runner

WINDOW = 256
t = np.arange(WINDOW)


def sine(period, amplitude):
    return np.round(amplitude * np.sin(2 * np.pi * t / period))


def test_a_dominant_once_per_turn_component_scores_high_at_any_speed_and_level():
    rng = np.random.default_rng(1)
    for period in (16, 40, 90, 120):  # shafts at 62, 25, 11 and 8 Hz at 1 kHz
        for amplitude in (300, 3000, 30000):
            harmonics = sine(period, amplitude) + sine(period / 2, 0.5 * amplitude) + sine(period / 3, 0.3 * amplitude)
            healthy = np.clip(harmonics + rng.normal(0, 0.05 * amplitude, WINDOW), -32768, 32767).astype(np.int16)
            unbalanced = np.clip(healthy + sine(period, 2 * amplitude), -32768, 32767).astype(np.int16)
            assert once_per_turn(unbalanced) > 2 * once_per_turn(healthy), (period, amplitude)


def test_noise_and_a_flat_window_score_low():
    rng = np.random.default_rng(2)
    assert once_per_turn(np.full(WINDOW, -1234, np.int16)) == 0
    assert once_per_turn(rng.normal(0, 2000, WINDOW).astype(np.int16)) < 64  # a quarter of the rest's energy


raws = st.lists(st.integers(-32768, 32767), min_size=WINDOW, max_size=WINDOW)


@settings(max_examples=200, deadline=None)
@given(raws)
def test_every_intermediate_fits_31_bits(samples):
    q, bits = turn_samples(np.array(samples, np.int16))
    assert np.abs(q).max() <= 2**TURN_PEAK_BITS and bits <= 16
    energy = int((q * q).sum())
    correlations = [int((q[:-lag] * q[lag:]).sum()) for lag in PERIOD_LAGS]
    deepest = max(0, max(-c // (WINDOW - lag) for c, lag in zip(correlations, PERIOD_LAGS))) * WINDOW
    assert energy <= 2**28 and max(map(abs, correlations)) <= 2**28 and deepest < 2**28.5
    assert (once_per_turn(np.array(samples, np.int16)) << 8) < 2**30 and (ONCE_PER_TURN_CAP << 8) < 2**30
    depths = turn_depths(q)
    assert max(map(abs, depths)) <= 2**20
    steps = [(k << CROSSING_BITS) // (k - j) for j, k in zip(depths, depths[1:]) if k > 0 >= j]
    assert all(0 <= step <= 2**CROSSING_BITS for step in steps)  # a crossing interpolates inside its step
    assert (isqrt(max(depths + [0])) * ((TURN_LARGEST * TURN_LARGEST) >> 10)) < 2**24
    assert (turn_features(np.array(samples, np.int16))[1] << 8) < 2**30


def test_extreme_windows_reach_the_bounds():
    """Full-scale reversals at the shortest lag push once_per_turn to its cap, every sum to its bound."""
    square = np.where(t // PERIOD_LAGS[0] % 2 == 0, 32767, -32768).astype(np.int16)
    q, _ = turn_samples(square)
    assert int((q * q).sum()) > 2**27 and once_per_turn(square) == ONCE_PER_TURN_CAP


TURN_LARGEST = 2 * TURN_LAGS[-1] << CROSSING_BITS  # both crossings at the last lag: the largest turn


def test_the_slowest_full_scale_turn_stays_inside_unbalance_bounds():
    """A full-scale 1x at a shaft near the slowest whose lobe is seen whole (120-sample turn): the largest real figures."""
    slowest = sine(120, 32767).astype(np.int16)
    q, bits = turn_samples(slowest)
    depths = turn_depths(q)
    assert bits >= 15 and max(depths) > 2**16 and depths[-1] <= 0  # the lobe's far crossing is inside TURN_LAGS
    value = turn_features(slowest)[1]
    expected = isqrt(max(depths)) * ((120 << CROSSING_BITS) ** 2 >> 10) >> (18 - bits)
    assert abs(value - expected) < 0.05 * expected and (value << 8) < 2**30  # two turns a window bend the crossings a little


def unbalance(samples):
    return turn_features(np.clip(samples, -32768, 32767).astype(np.int16))[1]


def test_unbalance_holds_across_speed_and_follows_the_once_per_turn_force():
    """1x, 2x and 3x growing with speed squared, noise with speed: the figure stays put from 8 to 62 Hz."""
    rng = np.random.default_rng(3)
    for mix in ((1.0, 0.2, 0.05), (1.0, 0.6, 0.3)):
        figures = []
        for period in (17, 25, 40, 70, 120):  # shafts at 59, 40, 25, 14 and 8 Hz at 1 kHz
            level = 4000 * (40 / period) ** 2
            harmonics = sum(sine(period / k, share * level) for k, share in enumerate(mix, start=1))
            figures.append(unbalance(harmonics + rng.normal(0, 100 * 40 / period, WINDOW)))
        assert max(figures) < 1.1 * min(figures), (mix, figures)


def half_turn_amplitude(first, second, third):
    """sqrt of the correlation's depth at the half turn, (A1^2 - A2^2 + A3^2) / 2: the 1x and 3x reverse there, the 2x does not."""
    return np.sqrt((first**2 - second**2 + third**2) / 2)


def test_unbalance_moves_with_the_first_harmonic_either_way():
    """A 1x of 3000 raised or cut by 900 moves unbalance as the half-turn depth predicts: to 1.37x within 3%;
    down to 0.60x, read up to 20% higher (the turn, from the lobe's crossings, shifts with the 1x-to-2x mix)."""
    rng = np.random.default_rng(4)
    healthy_amplitude = half_turn_amplitude(3000, 1500, 600)
    raised, cut = half_turn_amplitude(3900, 1500, 600) / healthy_amplitude, half_turn_amplitude(2100, 1500, 600) / healthy_amplitude
    for period in (20, 45, 100):
        harmonics = sine(period, 3000) + sine(period / 2, 1500) + sine(period / 3, 600)
        noise = rng.normal(0, 150, WINDOW)
        healthy = unbalance(harmonics + noise)
        assert abs(unbalance(harmonics + noise + sine(period, 900)) / healthy - raised) < 0.03 * raised, period
        assert cut <= unbalance(harmonics + noise - sine(period, 900)) / healthy < 1.2 * cut, period


def test_a_flat_window_or_one_without_anticorrelation_has_no_unbalance():
    assert turn_features(np.full(WINDOW, 321, np.int16)) == (0, 0)
    assert turn_features(np.where(t == 100, 6, 5).astype(np.int16)) == (0, 0)  # one sample off: no lag anticorrelates


def test_generated_c_is_free_of_undefined_behaviour_on_32_bits_and_equals_the_reference(tmp_path):
    """gcc -m32 -fsanitize=undefined traps any signed overflow; its results equal the numpy reference's."""
    with open_runner(load_board("stm32f4"), None, "test") as runner:
        work = runner.workdir
        binary = tmp_path / "dsp_harness32"
        sources = [work / "dsp_harness.c", work / f"{runner.fir_module}.c", work / "fallback.c"]
        flags = [f for f in C_FLAGS if f != "-O2"] + ["-m32", "-O1", "-fsanitize=undefined", "-fno-sanitize-recover"]
        subprocess.run(["gcc", *flags, "-I", str(work), *map(str, sources), "-o", str(binary)], check=True)
        windows, raws = window_vectors(400, WINDOW, runner.plan.design.coeffs, 7)
        thresholds = runner.plan.calibration.thresholds[0]
        np.stack([windows, raws], axis=1).tofile(tmp_path / "windows.bin")
        np.asarray(thresholds, np.int32).tofile(tmp_path / "thresholds.bin")
        subprocess.run([str(binary), "fallback", *(str(tmp_path / f) for f in ("windows.bin", "thresholds.bin", "out.bin"))],
                       check=True)
        c = np.fromfile(tmp_path / "out.bin", np.int32).reshape(len(windows), -1)
        assert np.array_equal(c, runner.fallback("ref", windows, raws, thresholds))


def test_a_lower_rule_fires_at_or_under_its_threshold_and_scores_threshold_over_value():
    rules = rules_for(["unbalance"])  # >=fault, <=fault, >=suspect, <=suspect
    thresholds = np.array([2000, 500, 1500, 800])
    features = np.zeros(len(FEATURES), np.int64)
    # the score is the larger of the suspect rules' ratios: value / 1500 above, 800 / value below, Q8, capped
    for value, decision, rule, score in ((1000, NORMAL, NO_RULE, (800 << 8) // 1000), (800, SUSPECT, 3, 256),
                                         (1600, SUSPECT, 2, (1600 << 8) // 1500), (400, FAULT, 1, (800 << 8) // 400),
                                         (0, FAULT, 1, SCORE_CAP)):
        features[FEATURES.index("unbalance")] = value
        assert decide(features, rules, thresholds) == (decision, rule, score), value
    thresholds[2:] = 2**22, 2**30 - 1  # the largest the board takes: the lower rule's score is counted from BELOW_SCORE_CAP
    features[FEATURES.index("unbalance")] = 2**20
    assert decide(features, rules, thresholds)[2] == (BELOW_SCORE_CAP << 8) // 2**20 < 2**30
