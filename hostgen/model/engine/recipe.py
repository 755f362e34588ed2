"""Input recipes: int16 counts of a window to the model's int8 input tensor, one integer definition
shared by the host (this numpy function) and the board (its constants rendered into C and viper).

- "centred_full_scale" (hostgen.dataset.model_input): per channel, subtract the window's integer
  mean (floor division), divide by 32768 and quantize to the input tensor's scale and zero point
  with MultiplyByQuantizedMultiplier, clamped to int8.
- "raw_counts": the same without the mean.
- "normalised_second_difference" (the reference model's): per channel, the second difference
  d[t] = x[t] - 2 x[t-1] + x[t-2] (d[0] = d[1] = 0), which removes offset and drift and damps the
  shaft harmonics against the bearing's ringing, divided by the window's own peak |d| so the
  running level (speed, load, sensor gain) drops out: n[t] = (d[t] * (2^28 // peak) + 2^13) >> 14,
  in [-2^14, 2^14] (2^14 stands for 1.0), then quantized as above. |d| <= 2^17 and
  |d[t]| * (2^28 // peak) <= 2^28, so every step is a 31-bit small int.
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
}
RECIPES = tuple(RECIPE_SCALES)
NORMALISED_SHIFT = 14  # n = d * 2^14 / peak
RECIPROCAL_NUMERATOR = NORMALISED_UNIT << NORMALISED_SHIFT  # 2^28 // peak, so that |d| * reciprocal <= 2^28


def normalised_second_difference(counts: np.ndarray) -> np.ndarray:
    """int counts (n, window, channels) -> int64 in [-2^14, 2^14], as the board computes it."""
    x = np.asarray(counts, np.int64)
    d = np.zeros_like(x)
    d[:, 2:] = x[:, 2:] - 2 * x[:, 1:-1] + x[:, :-2]
    peak = np.maximum(np.abs(d).max(axis=1, keepdims=True), 1)
    return (d * (RECIPROCAL_NUMERATOR // peak) + (1 << (NORMALISED_SHIFT - 1))) >> NORMALISED_SHIFT


def normalised_input(windows: np.ndarray) -> np.ndarray:
    """The float model input "normalised_second_difference" stands for: int16 (n, window) -> float32 (n, window, 1)."""
    return (normalised_second_difference(windows[..., np.newaxis]) / NORMALISED_UNIT).astype(np.float32)


FLOAT_INPUTS = {  # what a model is trained on, per recipe: int16 windows (n, window) -> float32 (n, window, 1)
    "centred_full_scale": dataset.model_input,
    "raw_counts": lambda windows: (windows.astype(np.float32) / FULL_SCALE)[..., np.newaxis],
    "normalised_second_difference": normalised_input,
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
    return Recipe(name, window, channels, multiplier, shift, input_tensor.zero_point)
