# Fast path: hard limits per block, no model, no allocation. Same semantics as
# hostgen/fastpath.py (the reference, which documents them): peak |filtered| and short-term
# energy, debounced with hysteresis; and the sensor rules (saturated, stuck, dropout,
# disconnected), which pause a channel's machine rules and withhold its windows.
import array

import micropython
from micropython import const

PEAK = const(0)
ENERGY = const(1)
SATURATED = const(2)
STUCK = const(3)
DROPOUT = const(4)
DISCONNECTED = const(5)
RULE_NAMES = ("peak", "energy", "saturated", "stuck", "dropout", "disconnected")
NOISE_BLOCKS = const(4)
NOISE_MEAN_BLOCKS = const(8)
LOG2_NOISE_MEAN_BLOCKS = const(3)
NOISE_CHECK_FROM = const(11)  # NOISE_MEAN_BLOCKS + NOISE_BLOCKS - 1
BIAS = const(0x8000)  # int16 readings and levels are kept as reading + BIAS, so viper sees values >= 0

# per-channel state, array('i'). The slots viper touches hold values >= 0.
_EMA = const(0)
_RAIL_RUN = const(1)
_REPEAT_RUN = const(2)
_PREVIOUS = const(3)  # last raw sample as its 16 bits
_BLOCK_PEAK = const(4)
_BLOCK_MS = const(5)
_RAIL_MAX = const(6)
_REPEAT_MAX = const(7)
_COUNT_PEAK = const(8)
_COUNT_ENERGY = const(9)
SATURATED_TOTAL = const(10)  # samples at a rail since start-up, for diag.sensor()
_RESUME = const(11)  # blocks, counting the one it recovered in, before the checks resume after a bad sensor
_CLIP_HIGH = const(12)  # + BIAS
_CLIP_LOW = const(13)  # + BIAS
_CENTRE = const(14)  # the local mean + BIAS
_ABOVE = const(15)  # the last sample was >= the local mean: 1, below: 0, none yet: 2
_BLOCK_CROSSINGS = const(16)
_BLOCK_MEAN = const(17)  # + BIAS
_QUIET = const(18)  # blocks for which windows stay withheld
_BLOCKS = const(19)  # blocks checked, up to NOISE_CHECK_FROM
_MEAN_SUM = const(20)  # sum of the block-mean ring (Python only: may be negative)
_MEAN_AT = const(21)
_CROSS_SUM = const(22)
_CROSS_AT = const(23)
_ABSENT = const(24)  # 4 slots: blocks without each sensor rule's condition, SATURATED..DISCONNECTED
_MEANS = const(28)  # NOISE_MEAN_BLOCKS slots (Python only)
_CROSSES = const(36)  # NOISE_BLOCKS slots
_BLOCK_HIGH = const(40)  # + BIAS
_BLOCK_LOW = const(41)  # + BIAS
_HIGHS = const(42)  # NOISE_BLOCKS slots of block highs, + BIAS
_LOWS = const(46)  # NOISE_BLOCKS slots of block lows, + BIAS
STATE = const(50)


@micropython.viper
def _block_stats(raw: ptr16, filtered: ptr16, n: int, log2n: int, state: ptr32):
    peak = 0
    squares = 0
    residues = 0
    rail = int(state[_RAIL_RUN])
    repeat = int(state[_REPEAT_RUN])
    previous = int(state[_PREVIOUS])
    high = int(state[_CLIP_HIGH])
    low = int(state[_CLIP_LOW])
    centre = int(state[_CENTRE])
    above = int(state[_ABOVE])
    rail_max = 0
    repeat_max = 0
    crossings = 0
    total = 0
    top = 0
    bottom = 0xFFFF
    saturated = int(state[SATURATED_TOTAL])
    for i in range(n):
        y = (int(filtered[i]) ^ 0x8000) - 0x8000
        magnitude = y if y >= 0 else 0 - y
        if magnitude > peak:
            peak = magnitude
        squares += (y * y) >> 8
        residues += (y * y) & 255
        bits = int(raw[i])
        u = bits ^ 0x8000  # the reading + BIAS
        total += u - 0x8000
        if u > top:
            top = u
        if u < bottom:
            bottom = u
        if u >= high or u <= low:
            if rail < 0x3FFFFFFF:  # runs stop counting at 2**30 samples (12 days at 1 kHz): viper ints are 32-bit
                rail += 1
            repeat = 0
            if saturated < 0x3FFFFFFF:
                saturated += 1
        else:
            rail = 0
            if bits == previous:
                if repeat < 0x3FFFFFFF:
                    repeat += 1
            else:
                repeat = 0
        previous = bits
        if rail > rail_max:
            rail_max = rail
        if repeat > repeat_max:
            repeat_max = repeat
        side = 1 if u >= centre else 0
        if above != 2 and side != above:
            crossings += 1
        above = side
    state[_RAIL_RUN] = rail
    state[_REPEAT_RUN] = repeat
    state[_PREVIOUS] = previous
    state[_ABOVE] = above
    state[_BLOCK_PEAK] = peak
    mean_square = (squares << (8 - log2n)) + (residues >> log2n)
    state[_BLOCK_MS] = mean_square if mean_square < 0x3FFFFFFF else 0x3FFFFFFF  # 2**30 only for a block of -32768s
    state[_RAIL_MAX] = rail_max
    state[_REPEAT_MAX] = repeat_max
    state[_BLOCK_CROSSINGS] = crossings
    state[_BLOCK_MEAN] = (total >> log2n) + 0x8000
    state[_BLOCK_HIGH] = top
    state[_BLOCK_LOW] = bottom
    state[SATURATED_TOTAL] = saturated


def clear_level(limit, permille):
    """limit * permille // 1000 with every intermediate inside 31 bits (limits go to 2**30 - 1)."""
    return limit // 1000 * permille + limit % 1000 * permille // 1000


class FastPath:
    """One channel's limits and state. `check` runs after each block and reports through `alert`."""

    def __init__(self, channel, settings, alert):
        self.channel = channel
        self.settings = settings
        self.alert = alert
        self.state = array.array("i", bytes(4 * STATE))
        self.state[_PREVIOUS] = 0x10000  # matches no 16-bit sample: the first is never a repeat
        self.state[_ABOVE] = 2
        self.state[_CLIP_HIGH] = settings.clip_high[channel] + BIAS
        self.state[_CLIP_LOW] = settings.clip_low[channel] + BIAS
        self.tripped = bytearray(6)

    def sensor_bad(self):
        tripped = self.tripped
        return tripped[SATURATED] | tripped[STUCK] | tripped[DROPOUT] | tripped[DISCONNECTED]

    def settling(self):
        """A sensor report is raised, or cleared too recently for its channel's samples to judge a window."""
        return self.state[_QUIET] > 0

    def withholds(self):
        """The window ending with the last block must not be judged: the sensor is, was or may be bad."""
        state = self.state
        return state[_QUIET] > 0 or state[_RAIL_RUN] > 0 or state[_REPEAT_RUN] > 0

    def check(self, raw, filtered, block_end, settled):
        s = self.settings
        state = self.state
        state[_CENTRE] = (state[_MEAN_SUM] >> LOG2_NOISE_MEAN_BLOCKS) + BIAS
        _block_stats(raw, filtered, s.block, s.log2_block, state)
        self._push_noise_figures()
        rail = state[_RAIL_MAX]
        repeat = state[_REPEAT_MAX]
        noisy = (state[_BLOCKS] >= NOISE_CHECK_FROM and state[_CROSS_SUM] >= s.noise_limits[self.channel]
                 and self._raw_range() < s.quiet_ranges[self.channel])
        if state[_BLOCKS] < NOISE_CHECK_FROM:
            state[_BLOCKS] += 1
        railed = rail >= s.stuck_samples
        cleared = self._sensor(SATURATED, rail >= s.saturation_samples, rail > 0, rail, s.saturation_samples, block_end)
        cleared |= self._sensor(STUCK, repeat >= s.stuck_samples, repeat >= s.stuck_samples, repeat, s.stuck_samples,
                                block_end)
        cleared |= self._sensor(DROPOUT, repeat >= s.dropout_samples, repeat >= s.dropout_samples, repeat,
                                s.dropout_samples, block_end)
        if noisy:
            cleared |= self._sensor(DISCONNECTED, True, True, state[_CROSS_SUM], s.noise_limits[self.channel], block_end)
        else:
            cleared |= self._sensor(DISCONNECTED, railed, railed, rail, s.stuck_samples, block_end)
        bad = self.sensor_bad()
        if bad or cleared:
            state[_QUIET] = s.window_blocks + s.settle_blocks
        elif state[_QUIET]:
            state[_QUIET] -= 1
        if cleared:
            state[_RESUME] = s.settle_blocks + 1
        paused = bad or state[_RESUME] or not settled
        if state[_RESUME] and not bad:
            state[_RESUME] -= 1
        if paused:
            state[_COUNT_PEAK] = 0
            state[_COUNT_ENERGY] = 0
            return
        state[_EMA] += (state[_BLOCK_MS] - state[_EMA]) >> 3
        self._limit(PEAK, _COUNT_PEAK, state[_BLOCK_PEAK], s.peak_limits[self.channel], block_end)
        self._limit(ENERGY, _COUNT_ENERGY, state[_EMA], s.energy_limits[self.channel], block_end)

    def _push_noise_figures(self):
        state = self.state
        at = state[_MEAN_AT]
        mean = state[_BLOCK_MEAN] - BIAS
        state[_MEAN_SUM] += mean - state[_MEANS + at]
        state[_MEANS + at] = mean
        state[_MEAN_AT] = (at + 1) % NOISE_MEAN_BLOCKS
        at = state[_CROSS_AT]
        state[_CROSS_SUM] += state[_BLOCK_CROSSINGS] - state[_CROSSES + at]
        state[_CROSSES + at] = state[_BLOCK_CROSSINGS]
        state[_HIGHS + at] = state[_BLOCK_HIGH]
        state[_LOWS + at] = state[_BLOCK_LOW]
        state[_CROSS_AT] = (at + 1) % NOISE_BLOCKS

    def _raw_range(self):
        """max - min of the raw samples over the last NOISE_BLOCKS blocks."""
        state = self.state
        top = 0
        bottom = 0xFFFF
        for i in range(NOISE_BLOCKS):
            if state[_HIGHS + i] > top:
                top = state[_HIGHS + i]
            if state[_LOWS + i] < bottom:
                bottom = state[_LOWS + i]
        return top - bottom

    def _sensor(self, rule, raise_now, present, value, limit, block_end):
        """Raise or count toward clearing one sensor rule; True when it cleared."""
        state = self.state
        absent = _ABSENT + rule - SATURATED
        if not self.tripped[rule]:
            if raise_now:
                state[absent] = 0
                self._flip(rule, value, limit, block_end)
            return False
        state[absent] = 0 if present else state[absent] + 1
        if state[absent] < self.settings.hold_blocks:
            return False
        self._flip(rule, value, limit, block_end)
        return True

    def _limit(self, rule, count_slot, value, limit, block_end):
        state = self.state
        if self.tripped[rule]:
            over = value < clear_level(limit, self.settings.hysteresis_permille)
        else:
            over = value > limit
        state[count_slot] = state[count_slot] + 1 if over else 0
        if state[count_slot] >= (self.settings.hold_blocks if self.tripped[rule] else self.settings.debounce_blocks):
            state[count_slot] = 0
            self._flip(rule, value, limit, block_end)

    def _flip(self, rule, value, limit, block_end):
        self.tripped[rule] ^= 1
        self.alert(self.channel, rule, self.tripped[rule], value, limit, block_end)
