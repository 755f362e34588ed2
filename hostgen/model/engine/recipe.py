"""Input recipes: int16 counts of a window to the model's int8 input tensor, one integer definition
shared by the host (this numpy function) and the board (its constants rendered into C and viper).

- "centred_full_scale" (the reference model's: hostgen.dataset.model_input): per channel, subtract
  the window's integer mean (floor division), divide by 32768 and quantize to the input tensor's
  scale and zero point with MultiplyByQuantizedMultiplier, clamped to int8.
- "raw_counts": the same without the mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hostgen.errors import HostgenError
from hostgen.model.engine import fixedpoint as fp
from hostgen.model.engine.lowering import Tensor

RECIPES = ("centred_full_scale", "raw_counts")
FULL_SCALE = 32768


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
    def record(self) -> tuple[int, int, int, int]:
        """{bias, multiplier, left shift, right shift}, as the engine's requantize reads it."""
        return 0, self.multiplier, max(self.shift, 0), max(-self.shift, 0)

    def prepare(self, counts: np.ndarray) -> np.ndarray:
        """int16 counts (n, window * channels), samples interleaved channel-minor -> int8 (n, window * channels)."""
        x = np.asarray(counts, np.int64).reshape(len(counts), self.window, self.channels)
        if self.centred:
            x = x - x.sum(axis=1, keepdims=True) // self.window
        q = fp.multiply_by_quantized_multiplier(x, self.multiplier, self.shift) + self.zero_point
        return np.clip(q, -128, 127).astype(np.int8).reshape(len(counts), -1)


def make_recipe(name: str, input_tensor: Tensor) -> Recipe:
    if name not in RECIPES:
        raise HostgenError(f"input recipe '{name}' is unknown; use one of {', '.join(RECIPES)}")
    channels = input_tensor.shape[-1] if len(input_tensor.shape) > 2 else 1  # (1, W, C) or (1, H, W, C); (1, N) is one channel
    window = input_tensor.size // channels
    multiplier, shift = fp.quantize_multiplier(1.0 / (FULL_SCALE * float(np.float32(input_tensor.scale))))
    if (FULL_SCALE * 2) << max(shift, 0) >= 1 << 31 or window * FULL_SCALE >= 1 << 31:
        raise HostgenError(f"input scale {input_tensor.scale:g} is too fine for 32-bit input preparation; requantize the model")
    return Recipe(name, window, channels, multiplier, shift, input_tensor.zero_point)
