"""Synthetic vibration data: a rotating machine on a 1 kHz accelerometer channel.

Normal running is shaft harmonics plus noise, seen through a sensor whose gain and
offset drift. A bearing fault adds an impulse train at the bearing's defect
frequency (a few times shaft speed, with slip jitter), each impulse ringing a
structural resonance. Everything is drawn from a seeded generator, so the same
seed gives the same samples on every machine.

Samples are int16 ADC counts, as the board's sampling layer delivers them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE_HZ = 1000
WINDOW = 256
NORMAL, FAULT = 0, 1
CLASS_NAMES = ("normal", "bearing_fault")
FULL_SCALE = 32767


@dataclass(frozen=True)
class Machine:
    """One machine's running condition; draw with `random_machine`."""

    shaft_hz: float
    harmonic_counts: tuple[float, ...]  # amplitude of 1x, 2x, 3x shaft harmonics
    noise_counts: float  # white noise RMS
    resonance_hz: float  # structural mode the fault impulses ring
    decay_s: float  # ringing time constant
    defect_ratio: float  # bearing defect frequency / shaft frequency
    fault_counts: float  # impulse amplitude; 0 for a healthy bearing
    slip: float  # relative jitter of impulse spacing
    gain: float  # sensor gain at the start
    gain_drift_per_s: float
    offset_counts: float
    offset_drift_per_s: float


def random_machine(rng: np.random.Generator, fault: bool, severity: float = 1.0) -> Machine:
    """A plausible machine; `severity` scales the fault impulses (1.0 = clearly developed)."""
    fundamental = rng.uniform(800.0, 2500.0)
    return Machine(
        shaft_hz=rng.uniform(18.0, 32.0),
        harmonic_counts=(fundamental, fundamental * rng.uniform(0.2, 0.6), fundamental * rng.uniform(0.05, 0.3)),
        noise_counts=rng.uniform(60.0, 250.0),
        resonance_hz=rng.uniform(180.0, 380.0),
        decay_s=rng.uniform(0.0015, 0.005),
        defect_ratio=rng.uniform(3.0, 5.2),
        fault_counts=severity * rng.uniform(800.0, 2400.0) if fault else 0.0,
        slip=rng.uniform(0.005, 0.02),
        gain=rng.uniform(0.9, 1.1),
        gain_drift_per_s=rng.uniform(-5e-4, 5e-4),
        offset_counts=rng.uniform(-1500.0, 1500.0),
        offset_drift_per_s=rng.uniform(-5.0, 5.0),
    )


def synthesize(machine: Machine, samples: int, rng: np.random.Generator, rate_hz: int = RATE_HZ) -> np.ndarray:
    """`samples` int16 counts of the machine running, starting at a random shaft phase."""
    t = np.arange(samples) / rate_hz
    signal = np.zeros(samples)
    for k, amplitude in enumerate(machine.harmonic_counts, start=1):
        signal += amplitude * np.sin(2 * np.pi * k * machine.shaft_hz * t + rng.uniform(0, 2 * np.pi))
    signal += rng.normal(0.0, machine.noise_counts, samples)
    if machine.fault_counts > 0:
        signal += machine.fault_counts * _impulse_train(machine, samples, rng, rate_hz)
    gain = machine.gain * (1.0 + machine.gain_drift_per_s * t)
    offset = machine.offset_counts + machine.offset_drift_per_s * t
    return np.clip(np.round(gain * signal + offset), -FULL_SCALE - 1, FULL_SCALE).astype(np.int16)


def _impulse_train(machine: Machine, samples: int, rng: np.random.Generator, rate_hz: int) -> np.ndarray:
    """Unit-amplitude impulses at the defect frequency, each ringing the resonance."""
    period = rate_hz / (machine.shaft_hz * machine.defect_ratio)
    count = int(samples / period) + 2
    spacing = period * (1.0 + machine.slip * rng.standard_normal(count))
    starts = rng.uniform(-period, 0.0) + np.cumsum(spacing)
    ring_length = int(6 * machine.decay_s * rate_hz)
    k = np.arange(ring_length)
    ring = np.exp(-k / (machine.decay_s * rate_hz)) * np.sin(2 * np.pi * machine.resonance_hz * k / rate_hz)
    train = np.zeros(samples + ring_length)
    for start, strength in zip(starts, rng.uniform(0.6, 1.0, count)):
        index = int(round(start))
        if 0 <= index < samples:
            train[index : index + ring_length] += strength * ring
    return train[:samples]


def make_windows(
    seed: int, count: int, fault_fraction: float = 0.5, window: int = WINDOW
) -> tuple[np.ndarray, np.ndarray]:
    """`count` windows of int16 counts, each from its own random machine, and their labels.

    Faults range from incipient (about a third of the developed impulse amplitude) to developed.
    Ask for a window longer than the one used to give a filter samples to settle on.
    """
    rng = np.random.default_rng(seed)
    labels = (rng.random(count) < fault_fraction).astype(np.int64)
    severities = rng.uniform(0.35, 1.0, count)
    windows = np.stack(
        [synthesize(random_machine(rng, bool(label), severity), window, rng) for label, severity in zip(labels, severities)]
    )
    return windows, labels


def model_input(windows: np.ndarray) -> np.ndarray:
    """What the model sees: each window with its mean removed, scaled to [-1, 1), shape (n, window, 1)."""
    counts = windows.astype(np.float32)
    centred = counts - counts.mean(axis=-1, keepdims=True)
    return (centred / (FULL_SCALE + 1))[..., np.newaxis]
