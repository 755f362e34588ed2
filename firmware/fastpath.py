# Fast path: hard limits per block, no model, no allocation. Same semantics as
# hostgen/fastpath.py (the reference, which documents them): peak |filtered| and short-term
# energy, debounced with hysteresis; saturated and stuck raw-sensor runs.
import array

import micropython
from micropython import const

PEAK = const(0)
ENERGY = const(1)
SATURATED = const(2)
STUCK = const(3)
RULE_NAMES = ("peak", "energy", "saturated", "stuck")

# per-channel state, array('i'): every slot holds a value >= 0
_EMA = const(0)
_SAT_RUN = const(1)
_STUCK_RUN = const(2)
_PREVIOUS = const(3)  # last raw sample as its 16 bits, so it stays >= 0
_BLOCK_PEAK = const(4)
_BLOCK_MS = const(5)
_SAT_MAX = const(6)
_STUCK_MAX = const(7)
_COUNT_PEAK = const(8)
_COUNT_ENERGY = const(9)
SATURATED_TOTAL = const(10)  # saturated samples since start-up, for diag.sensor()
_CLEAN_BLOCKS = const(11)  # consecutive blocks without a saturated sample
_RESUME = const(12)  # blocks, counting the one it recovered in, before the checks resume after a bad sensor
STATE = const(13)


@micropython.viper
def _block_stats(raw: ptr16, filtered: ptr16, n: int, log2n: int, state: ptr32, full_scale: int):
    peak = 0
    squares = 0
    sat = int(state[_SAT_RUN])
    stuck = int(state[_STUCK_RUN])
    previous = int(state[_PREVIOUS])
    sat_max = 0
    stuck_max = 0
    saturated = int(state[SATURATED_TOTAL])
    for i in range(n):
        y = (int(filtered[i]) ^ 0x8000) - 0x8000
        magnitude = y if y >= 0 else 0 - y
        if magnitude > peak:
            peak = magnitude
        squares += (y * y) >> 8
        bits = int(raw[i])
        x = (bits ^ 0x8000) - 0x8000
        if x >= full_scale or x <= -full_scale - 1:
            sat += 1
            if saturated < 0x3FFFFFFF:
                saturated += 1
        else:
            sat = 0
        if bits == previous:
            stuck += 1
        else:
            stuck = 0
        previous = bits
        if sat > sat_max:
            sat_max = sat
        if stuck > stuck_max:
            stuck_max = stuck
    state[_SAT_RUN] = sat
    state[_STUCK_RUN] = stuck
    state[_PREVIOUS] = previous
    state[_BLOCK_PEAK] = peak
    state[_BLOCK_MS] = squares >> log2n
    state[_SAT_MAX] = sat_max
    state[_STUCK_MAX] = stuck_max
    state[SATURATED_TOTAL] = saturated


class FastPath:
    """One channel's limits and state. `check` runs after each block and reports through `alert`."""

    def __init__(self, channel, settings, alert):
        self.channel = channel
        self.settings = settings
        self.alert = alert
        self.state = array.array("i", bytes(4 * STATE))
        self.state[_PREVIOUS] = 0x10000  # matches no 16-bit sample: the first is never "stuck"
        self.tripped = bytearray(4)

    def check(self, raw, filtered, block_end, settled):
        s = self.settings
        state = self.state
        tripped = self.tripped
        _block_stats(raw, filtered, s.block, s.log2_block, state, s.full_scale)
        if state[_SAT_MAX]:
            state[_CLEAN_BLOCKS] = 0
        elif state[_CLEAN_BLOCKS] < 0x3FFF:
            state[_CLEAN_BLOCKS] += 1
        if not tripped[SATURATED] and state[_SAT_MAX] >= s.saturation_samples:
            self._flip(SATURATED, state[_SAT_MAX], s.saturation_samples, block_end)
        elif tripped[SATURATED] and state[_CLEAN_BLOCKS] >= s.debounce_blocks:
            state[_RESUME] = s.settle_blocks + 1
            self._flip(SATURATED, 0, s.saturation_samples, block_end)
        if not tripped[STUCK] and state[_STUCK_MAX] >= s.stuck_samples:
            self._flip(STUCK, state[_STUCK_MAX], s.stuck_samples, block_end)
        elif tripped[STUCK] and state[_STUCK_RUN] < s.stuck_samples:
            state[_RESUME] = s.settle_blocks + 1
            self._flip(STUCK, state[_STUCK_RUN], s.stuck_samples, block_end)
        if not settled:
            return
        if state[_RESUME] or tripped[SATURATED] or tripped[STUCK]:
            if state[_RESUME] and not (tripped[SATURATED] or tripped[STUCK]):
                state[_RESUME] -= 1
            state[_COUNT_PEAK] = 0
            state[_COUNT_ENERGY] = 0
            return
        state[_EMA] += (state[_BLOCK_MS] - state[_EMA]) >> 3
        self._limit(PEAK, _COUNT_PEAK, state[_BLOCK_PEAK], s.peak_limits[self.channel], block_end)
        self._limit(ENERGY, _COUNT_ENERGY, state[_EMA], s.energy_limits[self.channel], block_end)

    def _limit(self, rule, count_slot, value, limit, block_end):
        state = self.state
        if self.tripped[rule]:
            over = value < limit * self.settings.hysteresis_permille // 1000
        else:
            over = value > limit
        state[count_slot] = state[count_slot] + 1 if over else 0
        if state[count_slot] >= (self.settings.hold_blocks if self.tripped[rule] else self.settings.debounce_blocks):
            state[count_slot] = 0
            self._flip(rule, value, limit, block_end)

    def _flip(self, rule, value, limit, block_end):
        self.tripped[rule] ^= 1
        self.alert(self.channel, rule, self.tripped[rule], value, limit, block_end)
