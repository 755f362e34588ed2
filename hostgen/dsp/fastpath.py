"""The fast path, reference: hard limits per block, debounced, with hysteresis; sensor checks.

Per channel and per block of B samples (after the block's last sample):

  peak    max |filtered| over the block           trips over peak_limit
  energy  short-term energy (`energy` below)        trips over energy_limit
  A limit trips after `debounce_blocks` consecutive blocks over it and clears after
  `hold_blocks` consecutive blocks below `hysteresis` * limit. Both start once the filter has settled:
  blocks before `settle_blocks(taps, B)` are not checked and do not feed the energy.
  The energy keeps running while the sensor is saturated or stuck; only the checks pause. While the sensor is saturated or stuck, the
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


def hysteresis_permille(hysteresis: float) -> int:
    return round(hysteresis * 1000)


def clear_level(limit: int, hysteresis: float) -> int:
    """The level a tripped limit must fall below to clear: integer, as the board computes it."""
    return limit * hysteresis_permille(hysteresis) // 1000


def block_figures(filtered: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Per whole block of a filtered channel: peak |y|, and mean square sum((y*y) >> 8) >> log2(block)."""
    y = filtered[: len(filtered) // block * block].astype(np.int64).reshape(-1, block)
    return np.abs(y).max(axis=1), ((y * y) >> 8).sum(axis=1) >> (block.bit_length() - 1)


def energy(mean_squares: np.ndarray) -> np.ndarray:
    """The short-term energy after each block, from 0: ema += (ms - ema) >> 3."""
    out = np.empty(len(mean_squares), np.int64)
    ema = 0
    for i, ms in enumerate(mean_squares.tolist()):
        ema += (ms - ema) >> 3
        out[i] = ema
    return out


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
    block, debounce, hold = sampling["block_samples"], fast["debounce_blocks"], fast["hold_blocks"]
    full_scale = sampling["full_scale_counts"]
    settled = settle_blocks(taps, block)
    usable = len(filtered) // block * block
    peaks, mean_squares = block_figures(filtered, block)
    x = raw[:usable].astype(np.int64)
    runs = {
        "saturated": run_lengths((x >= full_scale) | (x <= -full_scale - 1)).reshape(-1, block),
        "stuck": run_lengths(np.concatenate([[False], x[1:] == x[:-1]])).reshape(-1, block),
    }
    needed = {"saturated": fast["saturation_samples"], "stuck": fast["stuck_samples"]}
    limits = {"peak": peak_limit, "energy": energy_limit}
    tripped = {"peak": False, "energy": False, "saturated": False, "stuck": False}
    counts = {"peak": 0, "energy": 0}
    clean_blocks = ema = 0
    resume_at = settled  # the first block whose filter output owes nothing to a start or a bad sensor
    events: list[Event] = []
    for index in range(usable // block):
        last = (index + 1) * block - 1
        longest = {rule: int(runs[rule][index].max()) for rule in runs}
        clean_blocks = clean_blocks + 1 if longest["saturated"] == 0 else 0
        if not tripped["saturated"] and longest["saturated"] >= needed["saturated"]:
            tripped["saturated"] = True
            events.append(Event(last, channel, "saturated", True, longest["saturated"]))
        elif tripped["saturated"] and clean_blocks >= debounce:
            tripped["saturated"] = False
            resume_at = index + 1 + settled
            events.append(Event(last, channel, "saturated", False, 0))
        if not tripped["stuck"] and longest["stuck"] >= needed["stuck"]:
            tripped["stuck"] = True
            events.append(Event(last, channel, "stuck", True, longest["stuck"]))
        elif tripped["stuck"] and runs["stuck"][index, -1] < needed["stuck"]:
            tripped["stuck"] = False
            resume_at = index + 1 + settled
            events.append(Event(last, channel, "stuck", False, int(runs["stuck"][index, -1])))
        if index < resume_at or tripped["saturated"] or tripped["stuck"]:
            counts = {"peak": 0, "energy": 0}
            continue
        ema += (int(mean_squares[index]) - ema) >> 3
        for rule, value in (("peak", int(peaks[index])), ("energy", ema)):
            limit = limits[rule]
            if not tripped[rule]:
                counts[rule] = counts[rule] + 1 if value > limit else 0
            else:
                counts[rule] = counts[rule] + 1 if value < clear_level(limit, fast["hysteresis"]) else 0
            if counts[rule] >= (hold if tripped[rule] else debounce):
                tripped[rule] = not tripped[rule]
                counts[rule] = 0
                events.append(Event(last, channel, rule, tripped[rule], value))
    return events
