"""The fast path, reference: machine limits per block and the sensor checks that override them.

Per channel and per block of B samples (after the block's last sample):

Machine rules, on the filtered signal:

  peak    max |filtered| over the block           trips over the peak limit
  energy  short-term energy (`energy` below)        trips over the energy limit
  A limit trips after `debounce_blocks` consecutive blocks over it and clears after
  `hold_blocks` consecutive blocks below its clear level (`clear_level`). Both start once the
  filter has settled: blocks before `settle_blocks(taps, B)` are not checked and do not feed
  the energy.

Sensor rules, on the raw samples (a sample "at a rail" is at or beyond the channel's clip
levels: the sensor's stated full scale, or the lower level calibration learned it clips at):

  saturated     `saturation_samples` consecutive samples at a rail
  dropout       `dropout_samples` consecutive repeats of one reading (not at a rail): a held
                or missing reading
  stuck         `stuck_samples` consecutive repeats (not at a rail)
  disconnected  `stuck_samples` consecutive samples at a rail (an open input reading a rail), or
                noise without the machine's signature: in the last NOISE_BLOCKS blocks, at least
                `noise` crossings of the local mean (the mean of the previous NOISE_MEAN_BLOCKS
                block means), where the machine's running crosses far less often, while the raw
                samples span less than `quiet_range` (the machine's vibration is gone: an impact
                ringing also crosses often, but spans far more)
  Each is raised at the block where its condition appears and cleared after `hold_blocks`
  consecutive blocks without it.

While any sensor rule is raised on a channel, and for `settle_blocks` after the last clears,
that channel's machine rules pause and hold their state (a bad sensor is not a machine
fault), and its tripped machine rules do not drive the safety output. Its windows are
withheld (not judged) while any block they span, or the `settle_blocks` before them, had a
sensor rule raised, and when the window's last block ends inside a run that could be the
start of one (a sample at a rail, or a repeat): a fault made of runs is detected a block after
it starts at the latest, and the window it ends in must not be judged on its samples. Noise
takes longer (the local mean must forget the machine first: up to NOISE_LATENCY_BLOCKS), so a
window's decision waits `decision_delay_blocks` after its last block, whole strides, and the
window is withheld after all when its channel's sensor was reported bad in that time (or is
still settling from a report). On the board, runs stop counting at 2**30 samples.

The same input gives the same events at the same sample: no model, no randomness.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hostgen.constants import ALERT_RULES as RULES
from hostgen.constants import MACHINE_ALERT_RULES as MACHINE_RULES

SENSOR_RULES = RULES[len(MACHINE_RULES):]
NOISE_BLOCKS = 4
SMALL_INT_MAX = 2**30 - 1  # the largest small int on a 32-bit board
NOISE_MEAN_BLOCKS = 8
NOISE_CHECK_FROM = NOISE_MEAN_BLOCKS + NOISE_BLOCKS - 1  # the first block whose crossing counts are all valid
NOISE_LATENCY_BLOCKS = 2 * NOISE_CHECK_FROM  # noise on an open input is reported within this (seen: 9-21 blocks)


@dataclass(frozen=True)
class Event:
    sample: int  # index of the last sample of the block that raised or cleared it
    channel: int
    rule: str
    raised: bool
    value: int


@dataclass(frozen=True)
class ChannelLimits:
    """One channel's fast-path figures: machine limits, clip levels, noise limit."""

    peak: int
    energy: int
    clip_high: int  # readings >= this are at the upper rail
    clip_low: int  # readings <= this are at the lower rail
    noise: int  # crossings of the local mean in NOISE_BLOCKS blocks; above any block's reach = off
    quiet_range: int  # raw max - min over NOISE_BLOCKS blocks below which the machine's vibration is gone


@dataclass(frozen=True)
class ChannelRun:
    events: list[Event]
    withheld: np.ndarray  # per block: a window ending with this block is not judged
    settling: np.ndarray  # per block: a sensor report is raised or has not settled (withholds a decision waiting then)
    delay_blocks: int  # decision_delay_blocks

    def judges(self, last_block: int) -> bool:
        """Is the window ending with `last_block` judged: its sensor good at its end, and until its decision?"""
        decided_at = min(last_block + self.delay_blocks, len(self.settling) - 1)
        return not self.withheld[last_block] and not self.settling[decided_at]


def decision_delay_windows(app: dict) -> int:
    """Strides a window's decision waits after its last block: enough for NOISE_LATENCY_BLOCKS."""
    stride_blocks = app["sampling"]["stride_samples"] // app["sampling"]["block_samples"]
    return -(-NOISE_LATENCY_BLOCKS // stride_blocks)


def decision_delay_blocks(app: dict) -> int:
    return decision_delay_windows(app) * app["sampling"]["stride_samples"] // app["sampling"]["block_samples"]


def settle_blocks(taps: int, block: int) -> int:
    """Blocks until the FIR's output no longer depends on the zeros it started from."""
    return -(-(taps - 1) // block)


def hysteresis_permille(hysteresis: float) -> int:
    return round(hysteresis * 1000)


def clear_level(limit: int, permille: int) -> int:
    """limit * permille // 1000 with every intermediate below 2**30 (limits go to 2**30 - 1)."""
    return limit // 1000 * permille + limit % 1000 * permille // 1000


def block_figures(filtered: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Per whole block of a filtered channel: peak |y|, and the mean square sum(y*y) // block, exactly.

    As the board computes it inside 31 bits: (sum((y*y) >> 8) << (8 - log2 block)) + (sum((y*y) & 255) >> log2 block),
    capped at 2**30 - 1, a small int on a 32-bit board (only a block of nothing but -32768 reaches 2**30) (quiet
    channels keep their precision: (y*y) >> 8 alone drops every |y| < 16).
    """
    y = filtered[: len(filtered) // block * block].astype(np.int64).reshape(-1, block)
    squares, log2 = y * y, block.bit_length() - 1
    mean_squares = ((squares >> 8).sum(axis=1) << (8 - log2)) + ((squares & 255).sum(axis=1) >> log2)
    return np.abs(y).max(axis=1), np.minimum(mean_squares, SMALL_INT_MAX)


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


def mean_crossings(raw: np.ndarray, block: int) -> np.ndarray:
    """Per block: how often the raw signal crosses its local mean, summed over the last NOISE_BLOCKS blocks.

    A sample is above when it is >= the mean of the previous NOISE_MEAN_BLOCKS block means
    (each block mean sum >> log2(block)); the first sample of a block is compared with the
    last of the one before. Entries before NOISE_CHECK_FROM are not meaningful.
    """
    x = raw[: len(raw) // block * block].astype(np.int64).reshape(-1, block)
    means = x.sum(axis=1) >> (block.bit_length() - 1)
    padded = np.concatenate([np.zeros(NOISE_MEAN_BLOCKS, np.int64), means])
    centres = np.convolve(padded, np.ones(NOISE_MEAN_BLOCKS, np.int64), "valid")[: len(means)] >> (NOISE_MEAN_BLOCKS.bit_length() - 1)
    above = (x >= centres[:, None]).reshape(-1)
    changes = np.concatenate([[0], above[1:] != above[:-1]]).reshape(-1, block).sum(axis=1)
    return np.convolve(changes, np.ones(NOISE_BLOCKS, np.int64), "full")[: len(means)]


def raw_ranges(raw: np.ndarray, block: int) -> np.ndarray:
    """Per block: max - min of the raw samples of the last NOISE_BLOCKS blocks (entries before NOISE_BLOCKS - 1 partial)."""
    x = raw[: len(raw) // block * block].astype(np.int64).reshape(-1, block)
    highs = np.concatenate([np.full(NOISE_BLOCKS - 1, x.max(initial=0)), x.max(axis=1)]) if len(x) else np.zeros(0, np.int64)
    lows = np.concatenate([np.full(NOISE_BLOCKS - 1, x.min(initial=0)), x.min(axis=1)]) if len(x) else np.zeros(0, np.int64)
    window = np.lib.stride_tricks.sliding_window_view
    return window(highs, NOISE_BLOCKS).max(axis=1) - window(lows, NOISE_BLOCKS).min(axis=1)


def sensor_conditions(raw: np.ndarray, limits: ChannelLimits, app: dict) -> dict[str, np.ndarray]:
    """Per block: (raise, present, value) of each sensor rule, and the run lengths at the block's end."""
    sampling, fast = app["sampling"], app["fastpath"]
    block = sampling["block_samples"]
    usable = len(raw) // block * block
    x = raw[:usable].astype(np.int64)
    at_rail = (x >= limits.clip_high) | (x <= limits.clip_low)
    repeat = np.concatenate([[False], x[1:] == x[:-1]]) & ~at_rail
    rail_runs = run_lengths(at_rail).reshape(-1, block)
    repeat_runs = run_lengths(repeat).reshape(-1, block)
    longest_rail, longest_repeat = rail_runs.max(axis=1), repeat_runs.max(axis=1)
    crossings = mean_crossings(raw, block)
    quiet = raw_ranges(raw, block) < limits.quiet_range
    noisy = (np.arange(len(crossings)) >= NOISE_CHECK_FROM) & (crossings >= limits.noise) & quiet
    railed = longest_rail >= fast["stuck_samples"]
    return {
        "saturated": (longest_rail >= fast["saturation_samples"], longest_rail > 0, longest_rail),
        "dropout": (longest_repeat >= fast["dropout_samples"],) * 2 + (longest_repeat,),
        "stuck": (longest_repeat >= fast["stuck_samples"],) * 2 + (longest_repeat,),
        "disconnected": (railed | noisy,) * 2 + (np.where(noisy, crossings, longest_rail),),
        "ends_in_run": (rail_runs[:, -1] > 0) | (repeat_runs[:, -1] > 0),
    }


def run_channel_blocks(raw: np.ndarray, filtered: np.ndarray, taps: int, limits: ChannelLimits, app: dict,
                       channel: int = 0) -> ChannelRun:
    """Every raise and clear on one channel, in order, and which blocks' windows are withheld."""
    sampling, fast = app["sampling"], app["fastpath"]
    block, debounce, hold = sampling["block_samples"], fast["debounce_blocks"], fast["hold_blocks"]
    window_blocks = sampling["window_samples"] // block
    permille = hysteresis_permille(fast["hysteresis"])
    settled = settle_blocks(taps, block)
    usable = len(filtered) // block * block
    peaks, mean_squares = block_figures(filtered, block)
    conditions = sensor_conditions(raw, limits, app)
    machine_limits = {"peak": limits.peak, "energy": limits.energy}
    tripped = dict.fromkeys(RULES, False)
    counts = dict.fromkeys(RULES, 0)  # machine: blocks toward a flip; sensor: blocks without the condition
    ema = quiet = 0
    resume_at = settled  # the first block whose filter output owes nothing to a start or a bad sensor
    withheld = np.zeros(usable // block, bool)
    settling = np.zeros(usable // block, bool)
    events: list[Event] = []
    for index in range(usable // block):
        last = (index + 1) * block - 1
        cleared = False
        for rule in SENSOR_RULES:
            raise_now, present, value = (c[index] for c in conditions[rule])
            if not tripped[rule] and raise_now:
                tripped[rule], counts[rule] = True, 0
                events.append(Event(last, channel, rule, True, int(value)))
            elif tripped[rule]:
                counts[rule] = 0 if present else counts[rule] + 1
                if counts[rule] >= hold:
                    tripped[rule], cleared = False, True
                    resume_at = index + 1 + settled
                    events.append(Event(last, channel, rule, False, int(value)))
        sensor_bad = any(tripped[rule] for rule in SENSOR_RULES)
        if sensor_bad or cleared:
            quiet = window_blocks + settled
        elif quiet:
            quiet -= 1
        settling[index] = quiet > 0
        withheld[index] = quiet > 0 or bool(conditions["ends_in_run"][index])
        if index < resume_at or sensor_bad:
            counts["peak"] = counts["energy"] = 0
            continue
        ema += (int(mean_squares[index]) - ema) >> 3
        for rule, value in (("peak", int(peaks[index])), ("energy", ema)):
            limit = machine_limits[rule]
            if not tripped[rule]:
                counts[rule] = counts[rule] + 1 if value > limit else 0
            else:
                counts[rule] = counts[rule] + 1 if value < clear_level(limit, permille) else 0
            if counts[rule] >= (hold if tripped[rule] else debounce):
                tripped[rule] = not tripped[rule]
                counts[rule] = 0
                events.append(Event(last, channel, rule, tripped[rule], value))
    return ChannelRun(events, withheld, settling, decision_delay_blocks(app))


def run_channel(raw: np.ndarray, filtered: np.ndarray, taps: int, limits: ChannelLimits, app: dict,
                channel: int = 0) -> list[Event]:
    """Every raise and clear on one channel, in order."""
    return run_channel_blocks(raw, filtered, taps, limits, app, channel).events
