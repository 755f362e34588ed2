"""The synthetic vibration data and the reference model trained on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import REPO, run_hostgen
from scipy import signal

from hostgen.data import synthetic as dataset

pytestmark = pytest.mark.slow  # trains or converts models with TensorFlow


def test_windows_are_reproducible_int16():
    a, labels_a = dataset.make_windows(5, 64)
    b, labels_b = dataset.make_windows(5, 64)
    c, _ = dataset.make_windows(6, 64)
    assert a.dtype == np.int16 and a.shape == (64, dataset.WINDOW)
    assert np.array_equal(a, b) and np.array_equal(labels_a, labels_b)
    assert not np.array_equal(a, c)
    assert 0.3 < labels_a.mean() < 0.7


def test_fault_adds_resonance_band_energy_and_impulsiveness():
    rng = np.random.default_rng(3)
    healthy = dataset.random_machine(rng, fault=False)
    faulty = dataset.Machine(**{**healthy.__dict__, "fault_counts": 1500.0})
    x_normal = dataset.synthesize(healthy, 4000, np.random.default_rng(1)).astype(float)
    x_fault = dataset.synthesize(faulty, 4000, np.random.default_rng(1)).astype(float)
    freqs, p_normal = signal.welch(x_normal, fs=dataset.RATE_HZ, nperseg=256)
    _, p_fault = signal.welch(x_fault, fs=dataset.RATE_HZ, nperseg=256)
    band = np.abs(freqs - healthy.resonance_hz) < 40
    assert p_fault[band].sum() > 3 * p_normal[band].sum()
    high_normal = np.diff(x_normal)
    high_fault = np.diff(x_fault)
    def kurtosis(v):
        return np.mean((v - v.mean()) ** 4) / np.var(v) ** 2
    assert kurtosis(high_fault) > kurtosis(high_normal)


def test_sensor_drift_moves_offset_and_gain():
    rng = np.random.default_rng(4)
    machine = dataset.Machine(**{**dataset.random_machine(rng, False).__dict__, "offset_drift_per_s": 200.0})
    x = dataset.synthesize(machine, 10_000, rng).astype(float)
    assert x[-1000:].mean() - x[:1000].mean() > 1000


def test_reference_model_is_cached_and_accurate(reference_tflite):
    figures = json.loads((reference_tflite.parent / "reference.json").read_text())
    assert figures["float_accuracy"] > 0.85
    assert abs(figures["int8_tflm_accuracy"] - figures["float_accuracy"]) < 0.03
    again = run_hostgen("train")
    assert again.returncode == 0 and "training" not in again.stderr
    assert (REPO / "build" / "reference" / "heldout.npz").is_file()
