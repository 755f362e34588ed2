"""Input recipes: int16 counts of a window to the model's int8 input tensor, one integer definition
shared by the host (this numpy function) and the board (its constants rendered into C and viper).

- "centred_full_scale" (hostgen.dataset.model_input): per channel, subtract the window's integer
  mean (floor division), divide by 32768 and quantize to the input tensor's scale and zero point
  with MultiplyByQuantizedMultiplier, clamped to int8.
- "raw_counts": the same without the mean.
- "normalised_second_difference": per channel, the second difference
  d[t] = x[t] - 2 x[t-1] + x[t-2] (d[0] = d[1] = 0), which removes offset and drift and damps the
  shaft harmonics against the bearing's ringing, divided by the window's own peak |d| so the
  running level (speed, load, sensor gain) drops out: n[t] = (d[t] * (2^28 // peak) + 2^13) >> 14,
  in [-2^14, 2^14] (2^14 stands for 1.0), then quantized as above. |d| <= 2^17 and
  |d[t]| * (2^28 // peak) <= 2^28, so every step is a 31-bit small int.
- "band_over_level" (the reference model's): per channel, a 15-tap band-pass FIR (BAND_TAPS_Q12: 180-420 Hz at 1 kHz, the
  bearing resonances' band, shaft harmonics below 150 Hz down 15-65 dB) inside the window,
  b[t] = (sum_k h[k] x[t-k]) >> 12 for t >= 14 (b[t] = 0 before), over the window's own level
  L = max(1, BAND_LEVEL_SPAN * sum|b| // W), ten mean absolute values (about eight RMS of noise):
  n[t] = (clamp(b[t], -L, L) * (2^28 // L) + 2^13) >> 14, in [-2^14, 2^14]. Where the normalised
  recipe's peak lets one impulse bury the rest, the level keeps faint impulses above the noise at
  any running level. sum|h| = 5772, so |sum_k h[k] x[t-k]| < 2^28, |b| < 2^16 and
  BAND_LEVEL_SPAN * sum|b| < 2^31 for W <= MAX_BAND_WINDOW: every step a 31-bit small int.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hostgen.data import synthetic as dataset
from hostgen.errors import HostgenError
from hostgen.model.engine import fixedpoint as fp
from hostgen.model.engine.lowering import Tensor

FULL_SCALE = 32768
NORMALISED_UNIT = 1 << 14
# Per recipe: the integer that stands for 1.0 in the model's input, and the largest |value| requantized.
RECIPE_SCALES = {
    "centred_full_scale": (FULL_SCALE, 2 * FULL_SCALE),
    "raw_counts": (FULL_SCALE, FULL_SCALE),
    "normalised_second_difference": (NORMALISED_UNIT, NORMALISED_UNIT),
    "band_over_level": (NORMALISED_UNIT, NORMALISED_UNIT),
}
RECIPES = tuple(RECIPE_SCALES)
NORMALISED_SHIFT = 14  # n = d * 2^14 / peak
RECIPROCAL_NUMERATOR = NORMALISED_UNIT << NORMALISED_SHIFT  # 2^28 // peak, so that |d| * reciprocal <= 2^28
# scipy.signal.firwin(15, [180, 420], pass_zero=False, fs=1000) in Q12, the centre tap raised by 30 so that
# the taps sum to 0: an offset, or a stuck reading, passes nothing
BAND_TAPS_Q12 = (-20, -17, 78, 11, 350, -876, -530, 2008, -530, -876, 350, 11, 78, -17, -20)
BAND_SHIFT = 12
BAND_LEVEL_SPAN = 10  # the level is this many mean absolute values of the band-passed window
BAND_PEAK = (sum(abs(h) for h in BAND_TAPS_Q12) << 15) >> BAND_SHIFT  # the largest |b|
MAX_BAND_WINDOW = ((1 << 31) - 1) // (BAND_LEVEL_SPAN * BAND_PEAK)


def normalised_second_difference(counts: np.ndarray) -> np.ndarray:
    """int counts (n, window, channels) -> int64 in [-2^14, 2^14], as the board computes it."""
    x = np.asarray(counts, np.int64)
    d = np.zeros_like(x)
    d[:, 2:] = x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]
    peak = np.maximum(np.abs(d).max(axis=1, keepdims=True), 1)
    return (d * (RECIPROCAL_NUMERATOR // peak) + (1 << (NORMALISED_SHIFT - 1))) >> NORMALISED_SHIFT


def band_passed(counts: np.ndarray) -> np.ndarray:
    """int counts (n, window, channels) -> b, int64, as the board computes it (0 until the filter has its taps)."""
    x = np.asarray(counts, np.int64)
    taps = len(BAND_TAPS_Q12)
    acc = np.zeros_like(x[:, taps - 1 :])
    for k, h in enumerate(BAND_TAPS_Q12):
        acc += h * x[:, taps - 1 - k : x.shape[1] - k]
    b = np.zeros_like(x)
    b[:, taps - 1 :] = acc >> BAND_SHIFT
    return b


def band_over_level(counts: np.ndarray) -> np.ndarray:
    """int counts (n, window, channels) -> int64 in [-2^14, 2^14], as the board computes it."""
    b = band_passed(counts)
    level = np.maximum(BAND_LEVEL_SPAN * np.abs(b).sum(axis=1, keepdims=True) // b.shape[1], 1)
    return (np.clip(b, -level, level) * (RECIPROCAL_NUMERATOR // level) + (1 << (NORMALISED_SHIFT - 1))) >> NORMALISED_SHIFT


def normalised_input(windows: np.ndarray) -> np.ndarray:
    """The float model input "normalised_second_difference" stands for: int16 (n, window) -> float32 (n, window, 1)."""
    return (normalised_second_difference(windows[..., np.newaxis]) / NORMALISED_UNIT).astype(np.float32)


def band_input(windows: np.ndarray) -> np.ndarray:
    """The float model input "band_over_level" stands for: int16 (n, window) -> float32 (n, window, 1)."""
    return (band_over_level(windows[..., np.newaxis]) / NORMALISED_UNIT).astype(np.float32)


FLOAT_INPUTS = {  # what a model is trained on, per recipe: int16 windows (n, window) -> float32 (n, window, 1)
    "centred_full_scale": dataset.model_input,
    "raw_counts": lambda windows: (windows.astype(np.float32) / FULL_SCALE)[..., np.newaxis],
    "normalised_second_difference": normalised_input,
    "band_over_level": band_input,
}


@dataclass(frozen=True)
class Recipe:
    name: str
    window: int
    channels: int
    multiplier: int
    shift: int
    zero_point: int

    @property
    def centred(self) -> bool:
        return self.name == "centred_full_scale"

    @property
    def normalised(self) -> bool:
        return self.name == "normalised_second_difference"

    @property
    def banded(self) -> bool:
        return self.name == "band_over_level"

    @property
    def record(self) -> tuple[int, int, int, int]:
        """{bias, multiplier, left shift, right shift}, as the engine's requantize reads it."""
        return 0, self.multiplier, max(self.shift, 0), max(-self.shift, 0)

    def prepare(self, counts: np.ndarray) -> np.ndarray:
        """int16 counts (n, window * channels), samples interleaved channel-minor -> int8 (n, window * channels)."""
        x = np.asarray(counts, np.int64).reshape(len(counts), self.window, self.channels)
        if self.centred:
            x = x - x.sum(axis=1, keepdims=True) // self.window
        if self.normalised:
            x = normalised_second_difference(x)
        if self.banded:
            x = band_over_level(x)
        q = fp.multiply_by_quantized_multiplier(x, self.multiplier, self.shift) + self.zero_point
        return np.clip(q, -128, 127).astype(np.int8).reshape(len(counts), -1)


def make_recipe(name: str, input_tensor: Tensor) -> Recipe:
    if name not in RECIPES:
        raise HostgenError(f"input recipe '{name}' is unknown; use one of {', '.join(RECIPES)}")
    channels = input_tensor.shape[-1] if len(input_tensor.shape) > 2 else 1  # (1, W, C) or (1, H, W, C); (1, N) is one channel
    window = input_tensor.size // channels
    unit, largest = RECIPE_SCALES[name]
    multiplier, shift = fp.quantize_multiplier(1.0 / (unit * float(np.float32(input_tensor.scale))))
    if largest << max(shift, 0) >= 1 << 31 or window * FULL_SCALE >= 1 << 31:
        raise HostgenError(f"input scale {input_tensor.scale:g} is too fine for 32-bit input preparation; requantize the model")
    if name == "band_over_level" and not len(BAND_TAPS_Q12) <= window <= MAX_BAND_WINDOW:
        raise HostgenError(f"input recipe band_over_level takes windows of {len(BAND_TAPS_Q12)} to {MAX_BAND_WINDOW} samples "
                           f"(its filter's taps; a 32-bit level), not {window}; use another recipe for this model")
    return Recipe(name, window, channels, multiplier, shift, input_tensor.zero_point)
