"""once_per_turn: what it measures, and that its integers stay inside 31 bits on a 32-bit board."""

from __future__ import annotations

import subprocess

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hostgen.config.board import load_board
from hostgen.dsp.features import ONCE_PER_TURN_CAP, PERIOD_LAGS, TURN_PEAK_BITS, once_per_turn, turn_samples
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
    q = turn_samples(np.array(samples, np.int16))
    assert np.abs(q).max() <= 2**TURN_PEAK_BITS
    energy = int((q * q).sum())
    correlations = [int((q[:-lag] * q[lag:]).sum()) for lag in PERIOD_LAGS]
    deepest = max(0, max(-c // (WINDOW - lag) for c, lag in zip(correlations, PERIOD_LAGS))) * WINDOW
    assert energy <= 2**28 and max(map(abs, correlations)) <= 2**28 and deepest < 2**28.5
    assert (once_per_turn(np.array(samples, np.int16)) << 8) < 2**30 and (ONCE_PER_TURN_CAP << 8) < 2**30


def test_extreme_windows_reach_the_bounds():
    """Full-scale reversals at the shortest lag push once_per_turn to its cap, every sum to its bound."""
    square = np.where(t // PERIOD_LAGS[0] % 2 == 0, 32767, -32768).astype(np.int16)
    q = turn_samples(square)
    assert int((q * q).sum()) > 2**27 and once_per_turn(square) == ONCE_PER_TURN_CAP


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
