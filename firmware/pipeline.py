# The tier-1 loop: ring buffers -> FIR -> fast path per block -> windows -> tier 2 (the TFLM
# model when present and confident, else the fallback) -> packets. Everything is allocated
# here, at start; `process` allocates nothing, so the GC never has to run in steady state.
import array
import gc
import time

import micropython
from micropython import const

import fallback
import faultline_config as cfg
from fastpath import ENERGY, PEAK, SATURATED, STUCK, FastPath

VERSION = (0, 1, 0)
RING = const(256)  # samples per channel between the sampler and the loop (a power of two): 256 ms at 1 kHz
RING_MASK = const(255)
COUNTER_MASK = const(0x3FFFFFFF)
TIER_FALLBACK = const(0)
TIER_MODEL = const(1)
TIER_MODEL_ERROR = const(2)
TIER_MODEL_UNSURE = const(3)
EVENT_ALERT = const(1)
EVENT_WINDOW = const(2)  # a window that was not normal
EVENT_SUMMARY = const(3)  # a run of normal windows, summarised
# Loop-time histogram: 1 us bins below 16 us, then 16 bins per octave (6% wide) up to ~1 s.
OCTAVES = const(16)
BINS = const(16 + 16 * OCTAVES)
BIN_FULL = const(65535)
HEARTBEAT_SAMPLES = cfg.HEARTBEAT_MS * cfg.RATE_HZ // 1000

running = None  # the started pipeline, for diag


@micropython.viper
def _copy(source: ptr16, start: int, target: ptr16, at: int, n: int):
    for i in range(n):
        target[at + i] = source[start + i]


@micropython.viper
def _unwrap(ring: ptr16, size: int, oldest: int, target: ptr16):
    for i in range(size):
        j = oldest + i
        if j >= size:
            j -= size
        target[i] = ring[j]


def _bin(us):
    if us < 16:
        return us if us > 0 else 0
    octave = 0
    while us >= 32:
        us >>= 1
        octave += 1
    return BINS - 1 if octave >= OCTAVES else 16 + 16 * octave + us - 16


def _bin_top(index):
    if index < 16:
        return index + 1
    octave = (index - 16) // 16
    return (16 + (index - 16) % 16 + 1) << octave


class _Channel:
    """One sensor channel's buffers and state."""

    def __init__(self, index, settings, alert, keep_raw):
        fir = __import__(cfg.FIR_MODULE)
        self.index = index
        self.ring = array.array("h", bytes(2 * RING))
        self.raw_block = array.array("h", bytes(2 * cfg.BLOCK))
        self.filtered_block = array.array("h", bytes(2 * cfg.BLOCK))
        self.filter = fir.Filter()
        self.fast = FastPath(index, settings, alert)
        self.raw_history = array.array("h", bytes(2 * cfg.WINDOW)) if keep_raw else None  # the model's input
        self.filtered_history = array.array("h", bytes(2 * cfg.WINDOW))
        self.result = fallback.new_result()
        self.summary = array.array("i", bytes(4 * 6))  # windows, first, last, max score, max rms, max peak


class Pipeline:
    def __init__(self, settings, link, model=None, safety=None, watchdog=None):
        self.settings = settings
        self.link = link
        self.model = model
        self.safety = safety
        self.watchdog = watchdog
        self.channels = [_Channel(c, settings, self._alert, model is not None) for c in range(cfg.CHANNELS)]
        self.raw_window = array.array("h", bytes(2 * cfg.WINDOW)) if model is not None else None
        self.filtered_window = array.array("h", bytes(2 * cfg.WINDOW))
        self.scores = array.array("i", bytes(4 * 8))
        self.written = 0  # samples written into every channel's ring (wraps at 2**30)
        self.read = 0  # samples processed
        self.settle_left = cfg.SETTLE_BLOCKS  # blocks until the filter output no longer depends on its start
        self.history_at = 0  # where the next settled block goes in the window histories
        self.history_total = 0  # settled samples held, kept between WINDOW - STRIDE and WINDOW
        self.since_heartbeat = 0
        self.overruns = 0
        self.tier2_errors = 0
        self.windows = 0
        self.trips = bytearray(2)  # fast-path peak/energy trips in force, any channel
        self.histogram = array.array("H", bytes(2 * BINS))
        self.worst_us = 0
        self.started_ms = time.ticks_ms()
        self.log_kind = bytearray(cfg.EVENT_LOG)
        self.log_channel = bytearray(cfg.EVENT_LOG)
        self.log_code = bytearray(cfg.EVENT_LOG)
        self.log_value = array.array("i", bytes(4 * cfg.EVENT_LOG))
        self.log_sample = array.array("i", bytes(4 * cfg.EVENT_LOG))
        self.log_next = 0
        self.log_count = 0
        self.config_hash = settings.digest()
        self.pending = False
        self.commands = None  # commands.Commands when the gateway link can carry them back
        self.process_now = self._process_scheduled  # bound once, for micropython.schedule

    # -- sampling side: called by the sampler (an ISR on a board) --------------------------

    def write_sample(self, channel, value):
        self.channels[channel].ring[self.written & RING_MASK] = value

    def commit_sample(self):
        """After every channel's sample is written: returns True when a block is complete."""
        if ((self.written - self.read) & COUNTER_MASK) >= RING - 1:
            self.overruns += 1
            return False
        self.written = (self.written + 1) & COUNTER_MASK
        return self.written % cfg.BLOCK == 0

    def room(self):
        return RING - 1 - ((self.written - self.read) & COUNTER_MASK)

    def _process_scheduled(self, _):
        self.pending = False
        self.process()

    # -- processing side ---------------------------------------------------------------------

    def process(self):
        """Process every complete block waiting in the rings."""
        while ((self.written - self.read) & COUNTER_MASK) >= cfg.BLOCK:
            started = time.ticks_us()
            self._block()
            self._count(time.ticks_diff(time.ticks_us(), started))
        if self.watchdog is not None:
            self.watchdog.feed()

    def _count(self, spent):
        if spent > self.worst_us:
            self.worst_us = spent
        index = _bin(spent)
        histogram = self.histogram
        if histogram[index] == BIN_FULL:  # halve every bin: keeps the shape, forgets the oldest
            for i in range(BINS):
                histogram[i] >>= 1
        histogram[index] += 1

    def _block(self):
        start = self.read & RING_MASK
        self.read = (self.read + cfg.BLOCK) & COUNTER_MASK
        block_end = (self.read - 1) & COUNTER_MASK
        settled = self.settle_left == 0
        if not settled:
            self.settle_left -= 1
        at = self.history_at
        for channel in self.channels:
            _copy(channel.ring, start, channel.raw_block, 0, cfg.BLOCK)
            channel.filter.process(channel.raw_block, channel.filtered_block, cfg.BLOCK)
            channel.fast.check(channel.raw_block, channel.filtered_block, block_end, settled)
            if settled:
                _copy(channel.filtered_block, 0, channel.filtered_history, at, cfg.BLOCK)
                if self.model is not None:
                    _copy(channel.raw_block, 0, channel.raw_history, at, cfg.BLOCK)
        if settled:
            self.history_at = (at + cfg.BLOCK) % cfg.WINDOW
            self.history_total += cfg.BLOCK
            if self.history_total == cfg.WINDOW:
                self.history_total -= cfg.STRIDE
                for channel in self.channels:
                    self._window(channel, block_end)
        self.since_heartbeat += cfg.BLOCK
        if self.since_heartbeat >= HEARTBEAT_SAMPLES:
            self.since_heartbeat = 0
            self.heartbeat()
        if self.commands is not None:
            self.commands.poll()

    def _window(self, channel, block_end):
        _unwrap(channel.filtered_history, cfg.WINDOW, self.history_at, self.filtered_window)
        result = channel.result
        decision = fallback.evaluate(self.filtered_window, self.settings.thresholds[channel.index], result)
        tier = TIER_FALLBACK
        confidence = 0
        if self.model is not None:
            _unwrap(channel.raw_history, cfg.WINDOW, self.history_at, self.raw_window)
            try:
                best = self.model.classify(self.raw_window, self.scores)
                confidence = self.scores[best]
                if confidence >= cfg.MIN_CONFIDENCE_Q8:
                    tier = TIER_MODEL
                    decision = fallback.NORMAL if best == 0 else fallback.FAULT
                else:
                    tier = TIER_MODEL_UNSURE
            except Exception:  # a model failure is counted and contained; the fallback decides
                self.tier2_errors += 1
                tier = TIER_MODEL_ERROR
        self.windows += 1
        start = (block_end + 1 - cfg.WINDOW) & COUNTER_MASK
        rule = result[fallback.RULE] if tier != TIER_MODEL else -1
        if decision == fallback.NORMAL:
            self._summarise(channel, start, result)
        else:
            self._log(EVENT_WINDOW, channel.index, decision, result[fallback.SCORE], start)
            self.link.window(channel.index, decision, tier, rule, result[fallback.SCORE], confidence, start, result)

    def _summarise(self, channel, start, result):
        s = channel.summary
        if s[0] == 0:
            s[1] = start
            s[3] = s[4] = s[5] = 0
        s[0] += 1
        s[2] = start
        if result[fallback.SCORE] > s[3]:
            s[3] = result[fallback.SCORE]
        if result[1] > s[4]:
            s[4] = result[1]
        if result[2] > s[5]:
            s[5] = result[2]
        if s[0] >= cfg.SUMMARY_WINDOWS:
            self.flush_summary(channel)

    def flush_summary(self, channel):
        s = channel.summary
        if s[0]:
            self.link.summary(channel.index, s[0], s[1], s[2], s[3] if s[3] < 65535 else 65535, s[4], s[5])
            self._log(EVENT_SUMMARY, channel.index, 0, s[0], s[1])
            s[0] = 0

    def _alert(self, channel, rule, raised, value, limit, sample):
        self.link.alert(channel, rule, raised, value, limit, sample)
        self._log(EVENT_ALERT, channel, rule | (raised << 7), value, sample)
        if rule == PEAK or rule == ENERGY:
            self._update_safety()

    def _update_safety(self):
        tripped = 0
        for channel in self.channels:
            tripped |= channel.fast.tripped[PEAK] | channel.fast.tripped[ENERGY]
        if self.safety is not None:
            self.safety.value(tripped)

    def _log(self, kind, channel, code, value, sample):
        i = self.log_next
        self.log_kind[i] = kind
        self.log_channel[i] = channel
        self.log_code[i] = code
        self.log_value[i] = value
        self.log_sample[i] = sample
        self.log_next = (i + 1) % cfg.EVENT_LOG
        if self.log_count < cfg.EVENT_LOG:
            self.log_count += 1

    # -- health --------------------------------------------------------------------------------

    def percentile_us(self, share_percent):
        """The loop time (upper edge of its bin) that share_percent of blocks stayed within."""
        total = 0
        for index in range(BINS):
            total += self.histogram[index]
        if total == 0:
            return 0
        target = (total * share_percent + 99) // 100
        seen = 0
        for index in range(BINS):
            seen += self.histogram[index]
            if seen >= target:
                return _bin_top(index)
        return _bin_top(BINS - 1)

    def flags(self):
        value = 0
        for channel in self.channels:
            tripped = channel.fast.tripped
            value |= tripped[SATURATED] | tripped[STUCK] << 1 | (tripped[PEAK] | tripped[ENERGY]) << 2
        return value | (8 if self.model is not None else 0)

    def heartbeat(self):
        p50 = self.percentile_us(50)
        p99 = self.percentile_us(99)
        uptime = time.ticks_diff(time.ticks_ms(), self.started_ms)
        self.link.heartbeat(uptime, gc.mem_free(), gc.mem_alloc(), p50 if p50 < 65535 else 65535,
                            p99 if p99 < 65535 else 65535, self.worst_us, self.overruns, self.tier2_errors,
                            self.config_hash, self.flags())

    def announce(self):
        self.link.boot(VERSION, cfg.CHANNELS, cfg.RATE_HZ, cfg.BLOCK, cfg.WINDOW, cfg.STRIDE, self.config_hash,
                       1 if self.model is not None else 0, self.settings.source)
