"""The fast path, reference: hard limits per block, debounced, with hysteresis; sensor checks.

Per channel and per block of B samples (after the block's last sample):

  peak    max |filtered| over the block           trips over peak_limit
  energy  short-term energy (features.block_figures)  trips over energy_limit
  A limit trips after `debounce_blocks` consecutive blocks over it and clears after as
  many blocks below `hysteresis` * limit. Both start once the filter has settled:
  blocks before `settle_blocks(taps, B)` are not checked and do not feed the energy. While the sensor is saturated or stuck, the
  peak and energy checks hold their state: a bad sensor is not a machine fault.

  saturated  `saturation_samples` consecutive raw samples at or beyond full scale
  stuck      `stuck_samples` consecutive identical raw samples
  Each is raised at the block where its run reaches the count, and cleared at the
  first block that ends with the run broken.

The same input gives the same events at the same sample: no model, no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hostgen.features import block_figures

RULES = ("peak", "energy", "saturated", "stuck")


@dataclass(frozen=True)
class Event:
    sample: int  # index of the last sample of the block that raised or cleared it
    channel: int
    rule: str
    raised: bool
    value: int


def settle_blocks(taps: int, block: int) -> int:
    """Blocks until the FIR's output no longer depends on the zeros it started from."""
    return -(-(taps - 1) // block)


def clear_level(limit: int, hysteresis: float) -> int:
    return int(limit * hysteresis)


def run_lengths(condition: np.ndarray) -> np.ndarray:
    """run[i] = run[i-1] + 1 where condition[i], else 0."""
    index = np.arange(len(condition))
    last_false = np.maximum.accumulate(np.where(condition, -1, index))
    return index - last_false


def run_channel(
    raw: np.ndarray, filtered: np.ndarray, taps: int, peak_limit: int, energy_limit: int, app: dict, channel: int = 0
) -> list[Event]:
    """Every raise and clear on one channel, in order."""
    sampling, fast = app["sampling"], app["fastpath"]
    block, debounce = sampling["block_samples"], fast["debounce_blocks"]
    full_scale = sampling["full_scale_counts"]
    settled = settle_blocks(taps, block)
    usable = len(filtered) // block * block
    peaks, energies = block_figures(filtered[settled * block : usable], block)
    x = raw[:usable].astype(np.int64)
    sensor_runs = {
        "saturated": run_lengths((x >= full_scale) | (x <= -full_scale - 1)).reshape(-1, block),
        "stuck": run_lengths(np.concatenate([[False], x[1:] == x[:-1]])).reshape(-1, block),
    }
    needed = {"saturated": fast["saturation_samples"], "stuck": fast["stuck_samples"]}
    limits = {"peak": peak_limit, "energy": energy_limit}
    tripped = {"peak": False, "energy": False, "saturated": False, "stuck": False}
    counts = {"peak": 0, "energy": 0}
    events: list[Event] = []
    for index in range(usable // block):
        last = (index + 1) * block - 1
        for rule, runs in sensor_runs.items():
            if not tripped[rule] and runs[index].max() >= needed[rule]:
                tripped[rule] = True
                events.append(Event(last, channel, rule, True, int(runs[index].max())))
            elif tripped[rule] and runs[index, -1] < needed[rule]:
                tripped[rule] = False
                events.append(Event(last, channel, rule, False, int(runs[index, -1])))
        if index < settled or tripped["saturated"] or tripped["stuck"]:
            continue
        figure = index - settled
        for rule, value in (("peak", int(peaks[figure])), ("energy", int(energies[figure]))):
            limit = limits[rule]
            if not tripped[rule]:
                counts[rule] = counts[rule] + 1 if value > limit else 0
            else:
                counts[rule] = counts[rule] + 1 if value < clear_level(limit, fast["hysteresis"]) else 0
            if counts[rule] >= debounce:
                tripped[rule] = not tripped[rule]
                counts[rule] = 0
                events.append(Event(last, channel, rule, tripped[rule], value))
    return events
