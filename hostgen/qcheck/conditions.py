"""Conditions beyond clean lab data: held-out windows distorted the way a sensor would distort them.

Each condition acts on the windows as the board's sampling layer delivers them, as int16
ADC counts, when those are known (the reference held-out set keeps them): the distortion
is applied to the counts, which are rounded and saturated at int16 like an ADC reading
and then turned into model input by the input recipe x was made with (`dataset.model_input`'s
centred full scale unless told). Otherwise (a user's .npz with
only `x`) the same distortion is applied to `x` itself, taken as the sensor signal in units
of full scale (as `dataset.model_input` makes it): full scale is 1, or the data's peak where
|x| exceeds 1; the result saturates at full scale and is not rounded. In that float domain
the model input is not re-derived, so an offset reaches the model instead of being removed
with the window mean.

Every distortion is seeded by the condition's label: the same data gives the same windows.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from hostgen.data import synthetic as dataset

SEED = 20261101
COUNTS_FULL_SCALE = dataset.FULL_SCALE + 1


@dataclass(frozen=True)
class Condition:
    family: str  # what [qcheck.<family>] limits apply to
    severity: float
    label: str


def _clean(s, severity, full_scale, rng):
    return s


def _noise(s, snr_db, full_scale, rng):
    """White noise at `snr_db` below each window's own signal power."""
    power = s.var(axis=1, keepdims=True)
    return s + rng.standard_normal(s.shape) * np.sqrt(power / 10 ** (snr_db / 10))


def _gain(s, gain, full_scale, rng):
    return s * gain


def _offset(s, share, full_scale, rng):
    return s + share * full_scale


def _clock(s, drift, full_scale, rng):
    """The sensor clock runs `drift` fast: a window holds window/(1+drift) nominal samples' time.

    That segment (extended by reflection when longer than the window) is resampled to the
    window with scipy's FFT resampling, over the segment and its mirror image so that the
    periodic FFT sees no jump at the ends: tones move by a factor 1/(1+drift).
    """
    from scipy import signal  # a second to import: only for the check itself, not every command that imports the build

    window = s.shape[1]
    span = round(window / (1 + drift))
    segment = _extended(s, span - window) if span > window else s[:, :span]
    mirrored = np.concatenate([segment, segment[:, ::-1]], axis=1)
    return signal.resample(mirrored, 2 * window, axis=1)[:, :window]


def _clip(s, share, full_scale, rng):
    """Saturation at `share` of the data's largest reading."""
    level = share * np.abs(s).max()
    return np.clip(s, -level, level)


def _adc(s, bits, full_scale, rng):
    """A coarser ADC: the low bits of the full-scale reading dropped (floor, as a right shift)."""
    step = 2 * full_scale / 2**bits
    return np.floor(s / step) * step


def _missing(s, count, full_scale, rng):
    """`count` samples lost at random places: the stream closes up and the window reaches further."""
    longer = _extended(s, count)
    keep = [np.delete(np.arange(longer.shape[1]), rng.choice(longer.shape[1], count, replace=False)) for _ in s]
    return np.take_along_axis(longer, np.array(keep)[..., np.newaxis], axis=1)


def _repeated(s, count, full_scale, rng):
    """`count` samples delivered twice at random places: the window ends earlier."""
    window = s.shape[1]
    order = [np.sort(np.concatenate([np.arange(window), rng.choice(window, count, replace=False)]))[:window] for _ in s]
    return np.take_along_axis(s, np.array(order)[..., np.newaxis], axis=1)


def _extended(s, extra: int):
    """The windows continued by `extra` samples, reflected about their last sample."""
    return np.pad(s, ((0, 0), (0, extra), (0, 0)), mode="reflect")


DISTORTIONS = {
    "clean": _clean,
    "noise": _noise,
    "gain": _gain,
    "offset": _offset,
    "clock": _clock,
    "clip": _clip,
    "adc": _adc,
    "missing": _missing,
    "repeated": _repeated,
}

CONDITIONS = (
    Condition("clean", 0, "clean"),
    *(Condition("noise", snr, f"noise {snr} dB SNR") for snr in (30, 20, 10)),
    *(Condition("gain", gain, f"gain x{gain}") for gain in (0.75, 0.9, 1.1, 1.25)),
    *(Condition("offset", share, f"offset +{share:.0%} FS") for share in (0.5, 0.8, 0.9)),
    *(Condition("clock", drift, f"clock {drift:+.0%}") for drift in (-0.03, -0.02, -0.01, 0.01, 0.02, 0.03)),
    *(Condition("clip", share, f"clip at {share:.0%} of peak") for share in (0.5, 0.25)),
    *(Condition("adc", bits, f"ADC {bits} bit") for bits in (12, 10)),
    *(Condition("missing", count, f"missing {count} sample{'s' * (count > 1)}") for count in (1, 4, 16)),
    *(Condition("repeated", count, f"repeated {count} sample{'s' * (count > 1)}") for count in (1, 4, 16)),
)


def distorted_inputs(condition: Condition, x: np.ndarray, counts: np.ndarray | None, model_input=dataset.model_input) -> np.ndarray:
    """Model inputs for `condition`: from the int16 `counts` x was made of by `model_input` when given, else from x."""
    rng = np.random.default_rng([SEED, zlib.crc32(condition.label.encode())])
    distort = DISTORTIONS[condition.family]
    if counts is not None:
        readings = distort(counts[..., np.newaxis].astype(np.float64), condition.severity, COUNTS_FULL_SCALE, rng)
        saturated = np.clip(np.round(readings[..., 0]), -COUNTS_FULL_SCALE, COUNTS_FULL_SCALE - 1)
        return model_input(saturated.astype(np.int16))
    sensor = x.reshape(len(x), x.shape[1], -1).astype(np.float64)
    full_scale = max(1.0, float(np.abs(sensor).max()))
    readings = np.clip(distort(sensor, condition.severity, full_scale, rng), -full_scale, full_scale)
    return readings.reshape(x.shape).astype(np.float32)
