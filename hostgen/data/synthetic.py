"""Synthetic vibration data: a rotating machine on a 1 kHz accelerometer channel.

Normal running is shaft harmonics plus noise, seen through a sensor whose gain and
offset drift. Speed and load may change within a recording (`operating_profile`): the
harmonics follow the shaft and grow with speed squared, the broadband noise grows with
speed and load. Faults (FAULT_KINDS): an outer-race defect adds an impulse train at the
bearing's outer-race defect frequency (a few times shaft speed, with slip jitter), each
impulse ringing a structural resonance; an inner-race defect does so at 1.5 times that
frequency, its impulses modulated once per turn as the defect passes through the load
zone; imbalance adds a once-per-turn force (1x shaft, growing with speed squared).
Everything is drawn from a seeded generator, so the same seed gives the same samples on
every machine.

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
FAULT_KINDS = ("outer_race", "inner_race", "imbalance")
INNER_TO_OUTER = 1.5  # inner-race / outer-race defect frequency, typical of rolling bearings


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
    fault_kind: str = "outer_race"  # one of FAULT_KINDS; used when fault_counts > 0


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


def operating_profile(samples: int, rng: np.random.Generator, speeds: tuple[float, float], loads: tuple[float, float],
                      changes: int, rate_hz: int = RATE_HZ) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample speed (a factor on the machine's shaft speed) and load (0..1.5), with `changes` ramps.

    Each change moves to a new speed and load drawn from the ranges, over a ramp of 0.5-3 s;
    between changes they hold.
    """
    speed, load = np.empty(samples), np.empty(samples)
    now_speed, now_load = rng.uniform(*speeds), rng.uniform(*loads)
    moments = np.sort(rng.integers(0, samples, changes)) if changes else np.zeros(0, int)
    at = 0
    for moment in list(moments) + [samples]:
        moment = max(moment, at)  # a change drawn inside the previous ramp waits for it to end
        speed[at:moment], load[at:moment] = now_speed, now_load
        at = moment
        if moment >= samples:
            break
        ramp = min(samples - at, int(rng.uniform(0.5, 3.0) * rate_hz))
        next_speed, next_load = rng.uniform(*speeds), rng.uniform(*loads)
        speed[at : at + ramp] = np.linspace(now_speed, next_speed, ramp, endpoint=False)
        load[at : at + ramp] = np.linspace(now_load, next_load, ramp, endpoint=False)
        now_speed, now_load = next_speed, next_load
        at += ramp
    return speed, load


def synthesize(machine: Machine, samples: int, rng: np.random.Generator, rate_hz: int = RATE_HZ,
               speed: np.ndarray | None = None, load: np.ndarray | None = None) -> np.ndarray:
    """`samples` int16 counts of the machine running, starting at a random shaft phase.

    `speed` and `load` (per sample, from `operating_profile`) default to the machine's own
    speed at load 1.
    """
    t = np.arange(samples) / rate_hz
    speed = np.ones(samples) if speed is None else speed
    load = np.ones(samples) if load is None else load
    shaft_hz = machine.shaft_hz * speed
    turns = np.concatenate([[0.0], np.cumsum(shaft_hz[:-1])]) / rate_hz  # shaft revolutions before each sample
    signal = np.zeros(samples)
    for k, amplitude in enumerate(machine.harmonic_counts, start=1):
        signal += amplitude * speed**2 * np.sin(2 * np.pi * k * turns + rng.uniform(0, 2 * np.pi))
    signal += rng.normal(0.0, machine.noise_counts, samples) * speed * load
    if machine.fault_counts > 0:
        if machine.fault_kind == "imbalance":
            signal += machine.fault_counts * speed**2 * np.sin(2 * np.pi * turns + rng.uniform(0, 2 * np.pi))
        else:
            signal += machine.fault_counts * _impulse_train(machine, turns, shaft_hz, speed * load, rng, rate_hz)
    gain = machine.gain * (1.0 + machine.gain_drift_per_s * t)
    offset = machine.offset_counts + machine.offset_drift_per_s * t
    return np.clip(np.round(gain * signal + offset), -FULL_SCALE - 1, FULL_SCALE).astype(np.int16)


def _impulse_train(machine: Machine, turns: np.ndarray, shaft_hz: np.ndarray, force: np.ndarray,
                   rng: np.random.Generator, rate_hz: int) -> np.ndarray:
    """Impulses at the bearing defect frequency (following the shaft), each ringing the resonance.

    Impulse strength scales with `force` (speed x load); an inner-race defect's impulses are
    modulated once per turn.
    """
    samples = len(turns)
    inner = machine.fault_kind == "inner_race"
    ratio = machine.defect_ratio * (INNER_TO_OUTER if inner else 1.0)
    fastest = float(shaft_hz.max()) * ratio
    period = rate_hz / fastest
    count = int(samples / period) + 2
    jitter = machine.slip * rng.standard_normal(count)
    at = rng.uniform(-period, 0.0)
    starts = np.empty(count)
    for i in range(count):
        local = shaft_hz[min(max(int(at), 0), samples - 1)] * ratio
        at += rate_hz / local * (1.0 + jitter[i])
        starts[i] = at
    ring_length = int(6 * machine.decay_s * rate_hz)
    k = np.arange(ring_length)
    ring = np.exp(-k / (machine.decay_s * rate_hz)) * np.sin(2 * np.pi * machine.resonance_hz * k / rate_hz)
    train = np.zeros(samples + ring_length)
    for start, strength in zip(starts, rng.uniform(0.6, 1.0, count)):
        index = int(round(start))
        if 0 <= index < samples:
            if inner:
                strength *= 0.55 + 0.45 * np.cos(2 * np.pi * turns[index])
            train[index : index + ring_length] += strength * force[index] * ring
    return train[:samples]


def make_windows(
    seed: int, count: int, fault_fraction: float = 0.5, window: int = WINDOW,
    speeds: tuple[float, float] | None = None, loads: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """`count` windows of int16 counts, each from its own random machine, and their labels.

    Faults range from incipient (about a third of the developed impulse amplitude) to developed.
    Ask for a window longer than the one used to give a filter samples to settle on. With
    `speeds` and `loads` (ranges), each window runs at its own operating point drawn from them,
    and its bearing fault is an outer- or inner-race one: the operating-point-shifted set.
    """
    rng = np.random.default_rng(seed)
    labels = (rng.random(count) < fault_fraction).astype(np.int64)
    severities = rng.uniform(0.35, 1.0, count)
    windows = []
    for label, severity in zip(labels, severities):
        machine = random_machine(rng, bool(label), severity)
        if speeds is None:
            windows.append(synthesize(machine, window, rng))
            continue
        kind = FAULT_KINDS[int(rng.integers(2))]
        speed, load = np.full(window, rng.uniform(*speeds)), np.full(window, rng.uniform(*(loads or (1.0, 1.0))))
        windows.append(synthesize(Machine(**{**machine.__dict__, "fault_kind": kind}), window, rng, speed=speed, load=load))
    return np.stack(windows), labels


def model_input(windows: np.ndarray) -> np.ndarray:
    """What the model sees: each window with its mean removed, scaled to [-1, 1), shape (n, window, 1)."""
    counts = windows.astype(np.float32)
    centred = counts - counts.mean(axis=-1, keepdims=True)
    return (centred / (FULL_SCALE + 1))[..., np.newaxis]
