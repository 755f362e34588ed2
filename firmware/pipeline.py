# The tier-1 loop: ring buffers -> FIR -> fast path per block -> windows -> tier 2 (the model
# when present and confident, else the fallback) -> packets. The model runs in slices, one per
# block, so the fast path never waits for it. A window's decision is held DECISION_DELAY_WINDOWS
# strides, long enough for the sensor checks to report noise on an open input, and withheld if its
# sensor went bad meanwhile. Everything is allocated here, at start; `process` allocates nothing,
# so the GC never has to run in steady state.
import array
import gc
import time

import fallback
import faultline_config as cfg
import micropython
from fastpath import DISCONNECTED, DROPOUT, ENERGY, PEAK, SATURATED, STUCK, FastPath
from micropython import const

RING = const(256)  # samples per channel between the sampler and the loop (a power of two): 256 ms at 1 kHz
RING_MASK = const(255)
COUNTER_MASK = const(0x3FFFFFFF)
TIER_FALLBACK = const(0)
TIER_MODEL = const(1)
TIER_MODEL_ERROR = const(2)
TIER_MODEL_UNSURE = const(3)
TIER_MODEL_LATE = const(4)
TIER_MODEL_ADVISORY = const(5)
NO_CHANNEL = const(-1)
NO_DECISION = const(-1)
EVENT_ALERT = const(1)
EVENT_WINDOW = const(2)  # a window that was not normal
EVENT_SUMMARY = const(3)  # a run of normal windows, summarised
RAISED_BIT = const(0x80)  # an alert event's code: its rule, with this bit when raised
# a channel's summary of normal windows, array('i') slots
_WINDOWS = const(0)
_FIRST = const(1)
_LAST = const(2)
_MAX_SCORE = const(3)
_MAX_RMS = const(4)
_MAX_PEAK = const(5)
SUMMARY_SLOTS = const(6)
# a window awaiting the release of its decision (cfg.DECISION_DELAY_WINDOWS strides), array('i') slots per window
_HELD_STATE = const(0)  # one of the HELD_ states
_HELD_DECISION = const(1)
_HELD_TIER = const(2)
_HELD_CONFIDENCE = const(3)
_HELD_START = const(4)
HELD_SLOTS = const(5)
HELD_NONE = const(0)
HELD_WITHHELD = const(1)  # its sensor was bad at its end: it is not judged
HELD_DECIDED = const(2)  # decided: sent when released, unless its sensor went bad by then
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
def _deinterleave(frames: ptr16, channels: int, channel: int, n: int, ring: ptr16, at: int):
    for i in range(n):
        ring[at + i] = frames[i * channels + channel]


@micropython.viper
def _unwrap(ring: ptr16, size: int, oldest: int, target: ptr16):
    for i in range(size):
        j = oldest + i
        if j >= size:
            j -= size
        target[i] = ring[j]


@micropython.viper
def _interleave(ring: ptr16, size: int, oldest: int, target: ptr16, channels: int, channel: int):
    for i in range(size):
        j = oldest + i
        if j >= size:
            j -= size
        target[i * channels + channel] = ring[j]


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
        self.window_start = 0  # first sample of the window being decided
        self.slot = 0  # the held slot of the window being decided; the oldest held window is in the next one
        self.held = array.array("i", bytes(4 * HELD_SLOTS * cfg.DECISION_DELAY_WINDOWS))
        self.results = [fallback.new_result() for _ in range(cfg.DECISION_DELAY_WINDOWS)]  # per held slot
        self.judged = True  # its last window was judged (its sensor was good)
        self.ring = array.array("h", bytes(2 * RING))
        self.raw_block = array.array("h", bytes(2 * cfg.BLOCK))
        self.filtered_block = array.array("h", bytes(2 * cfg.BLOCK))
        self.filter = fir.Filter()
        self.fast = FastPath(index, settings, alert)
        self.raw_history = array.array("h", bytes(2 * cfg.WINDOW))  # the fallback's once_per_turn and the model's input
        self.model_window = array.array("h", bytes(2 * cfg.WINDOW)) if keep_raw else None  # its window, held for tier 2
        self.filtered_history = array.array("h", bytes(2 * cfg.WINDOW))
        self.result = self.results[0]  # the latest window's
        self.period_history = fallback.new_period_history()  # its judged windows' envelope periodicities
        self.summary = array.array("i", bytes(4 * SUMMARY_SLOTS))
        self.normal_rms = 0  # the largest RMS of the last summarised run of normal windows


class Pipeline:
    def __init__(self, settings, link, model=None, safety=None, watchdog=None):
        self.settings = settings
        self.link = link
        self.model = model
        self.safety = safety
        self.watchdog = watchdog
        self.channels = [_Channel(c, settings, self._alert, model is not None) for c in range(cfg.CHANNELS)]
        self.filtered_window = array.array("h", bytes(2 * cfg.WINDOW))
        self.raw_window = array.array("h", bytes(2 * cfg.WINDOW))
        together = model is not None and model.CHANNELS > 1  # one inference takes every channel
        self.model_input = array.array("h", bytes(2 * cfg.WINDOW * cfg.CHANNELS)) if together else None
        self.scores = array.array("i", bytes(4 * (model.CLASSES if model is not None and model.CLASSES > 1 else 1)))
        self.tier2_channel = NO_CHANNEL  # the channel tier 2 works on, or NO_CHANNEL when idle
        self.model_decisions = 0
        self.model_unsure = 0
        self.model_late = 0
        self.decided_tier = TIER_FALLBACK
        self.decided_confidence = 0
        self.written = 0  # samples written into every channel's ring (wraps at 2**30)
        self.read = 0  # samples processed
        self.settle_left = cfg.SETTLE_BLOCKS  # blocks until the filter output no longer depends on its start
        self.history_at = 0  # where the next settled block goes in the window histories
        self.history_total = 0  # settled samples held, kept between WINDOW - STRIDE and WINDOW
        self.since_heartbeat = 0
        self.overruns = 0
        self.tier2_errors = 0
        self.windows = 0
        self.withheld = 0  # windows not judged because their channel's sensor was bad
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
        if not self._reserve(1):
            return False
        self.written = (self.written + 1) & COUNTER_MASK
        return self.written % cfg.BLOCK == 0

    def write_block(self, frames):
        """A block of samples, channels interleaved (array('h'), BLOCK * CHANNELS), into the rings at once."""
        if not self._reserve(cfg.BLOCK):
            return
        at = self.written & RING_MASK
        for channel in self.channels:
            _deinterleave(frames, cfg.CHANNELS, channel.index, cfg.BLOCK, channel.ring, at)
        self.written = (self.written + cfg.BLOCK) & COUNTER_MASK

    def room(self):
        """Samples the rings can take before the loop catches up."""
        return RING - 1 - ((self.written - self.read) & COUNTER_MASK)

    def _reserve(self, samples):
        """Room for `samples` more in the rings? If not, they are lost and counted as overruns."""
        if self.room() < samples:
            self.overruns = (self.overruns + samples) & COUNTER_MASK
            return False
        return True

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
                _copy(channel.raw_block, 0, channel.raw_history, at, cfg.BLOCK)
        if settled:
            self.history_at = (at + cfg.BLOCK) % cfg.WINDOW
            self.history_total += cfg.BLOCK
            if self.history_total == cfg.WINDOW:
                self.history_total -= cfg.STRIDE
                self._windows(block_end)
            elif self.tier2_channel != NO_CHANNEL:
                self._tier2_step()
        self.since_heartbeat += cfg.BLOCK
        if self.since_heartbeat >= HEARTBEAT_SAMPLES:
            self.since_heartbeat = 0
            self.heartbeat()
        if self.commands is not None:
            self.commands.poll()
        self.link.pump()  # what a write did not take whole, or a RESEND's frames, a burst a block

    def _windows(self, block_end):
        """Every channel's window is complete: the fallback judges each now; tier 2 starts on them."""
        if self.tier2_channel != NO_CHANNEL:  # tier 2 did not finish the last windows within a stride
            self._fallback_decides(TIER_MODEL_LATE)
        withheld = 0
        for channel in self.channels:
            self.windows = (self.windows + 1) & COUNTER_MASK
            channel.slot = (channel.slot + 1) % cfg.DECISION_DELAY_WINDOWS
            self._release(channel)
            channel.result = channel.results[channel.slot]
            channel.judged = not channel.fast.withholds()  # a sensor that is, was or may be bad: its samples judge nothing
            if not channel.judged:
                channel.held[channel.slot * HELD_SLOTS + _HELD_STATE] = HELD_WITHHELD
                withheld += 1
                continue
            _unwrap(channel.filtered_history, cfg.WINDOW, self.history_at, self.filtered_window)
            _unwrap(channel.raw_history, cfg.WINDOW, self.history_at, self.raw_window)
            fallback.evaluate(self.filtered_window, self.raw_window, self.settings.thresholds[channel.index], channel.result,
                              channel.period_history)
            channel.window_start = (block_end + 1 - cfg.WINDOW) & COUNTER_MASK
            if self.model is None:
                self._decide(channel, channel.result[fallback.DECISION], TIER_FALLBACK, 0)
            elif self.model_input is None:
                _copy(self.raw_window, 0, channel.model_window, 0, cfg.WINDOW)
            else:
                _interleave(channel.raw_history, cfg.WINDOW, self.history_at, self.model_input, cfg.CHANNELS, channel.index)
        if self.model is None:
            return
        if self.model_input is not None and withheld:  # the model takes every channel: a bad one spoils its input
            self.tier2_channel = 0
            self._fallback_decides(TIER_FALLBACK)
        else:
            self._tier2_begin(0)

    # -- tier 2: the model, one slice per block ------------------------------------------------

    def _tier2_begin(self, index):
        """Prepare the model's input from the next judged channel's held window from `index` (or every channel's) and start it."""
        while index < cfg.CHANNELS and not self.channels[index].judged:
            index += 1
        if index == cfg.CHANNELS:
            self.tier2_channel = NO_CHANNEL
            return
        self.tier2_channel = index
        try:
            if self.model_input is None:
                self.model.prepare(self.channels[index].model_window, 1)
            else:
                self.model.prepare(self.model_input, cfg.CHANNELS)
            self.model.begin()
        except Exception:  # a model failure is counted and contained; the fallback decides
            self.tier2_errors = (self.tier2_errors + 1) & COUNTER_MASK
            self._fallback_decides(TIER_MODEL_ERROR)

    def _tier2_step(self):
        try:
            if not self.model.step():
                return
            best = self.model.scores(self.scores)
        except Exception:  # a model failure is counted and contained; the fallback decides
            self.tier2_errors = (self.tier2_errors + 1) & COUNTER_MASK
            self._fallback_decides(TIER_MODEL_ERROR)
            return
        decision = self._model_decision(best)
        first = self.tier2_channel if self.model_input is None else 0
        last = first + 1 if self.model_input is None else cfg.CHANNELS
        for index in range(first, last):
            channel = self.channels[index]
            self._decide(channel, decision if decision != NO_DECISION else channel.result[fallback.DECISION],
                         self.decided_tier, self.decided_confidence)
        if last < cfg.CHANNELS:
            self._tier2_begin(last)
        else:
            self.tier2_channel = NO_CHANNEL

    def _model_decision(self, best):
        """The window's decision from the model's scores (NO_DECISION: the fallback's stands); sets the tier and confidence (Q8).

        A model that only advises (cfg.MODEL_DECIDES 0) decides nothing: its confidence is the window's fault score
        (a classifier's Q8 probability that it is not normal, a reconstruction's error over its limit).
        """
        if not cfg.MODEL_DECIDES:
            self.decided_tier = TIER_MODEL_ADVISORY
            if self.model.KIND == "reconstruction":
                self.decided_confidence = self._error_ratio()
            else:
                self.decided_confidence = 256 - self.scores[0]
            return NO_DECISION
        if self.model.KIND == "reconstruction":
            self.decided_tier = TIER_MODEL
            self.decided_confidence = self._error_ratio()
            self.model_decisions = (self.model_decisions + 1) & COUNTER_MASK
            return fallback.FAULT if self.scores[0] >= self.settings.model_limit else fallback.NORMAL
        self.decided_confidence = self.scores[best]
        if self.decided_confidence >= cfg.MIN_CONFIDENCE_Q8:
            self.decided_tier = TIER_MODEL
            self.model_decisions = (self.model_decisions + 1) & COUNTER_MASK
            return fallback.NORMAL if best == 0 else fallback.FAULT
        self.decided_tier = TIER_MODEL_UNSURE
        self.model_unsure = (self.model_unsure + 1) & COUNTER_MASK
        return NO_DECISION

    def _error_ratio(self):
        """A reconstruction's error over its limit, Q8, capped at 65535."""
        limit = self.settings.model_limit
        ratio = self.scores[0] // ((limit >> 8) + (1 if limit & 255 else 0))  # ceil(limit / 256), inside 31 bits for any limit
        return ratio if ratio < 65535 else 65535

    def _fallback_decides(self, tier):
        """Tier 2 gives up on the windows it has not decided: the fallback's decisions stand, marked with why."""
        first = self.tier2_channel if self.model_input is None else 0
        for index in range(first, cfg.CHANNELS):
            channel = self.channels[index]
            if not channel.judged:
                continue
            if tier == TIER_MODEL_LATE:
                self.model_late = (self.model_late + 1) & COUNTER_MASK
            self._decide(channel, channel.result[fallback.DECISION], tier, 0)
        self.tier2_channel = NO_CHANNEL

    def _decide(self, channel, decision, tier, confidence):
        """Hold the decision of the channel's latest window until its release."""
        held = channel.held
        at = channel.slot * HELD_SLOTS
        held[at + _HELD_STATE] = HELD_DECIDED
        held[at + _HELD_DECISION] = decision
        held[at + _HELD_TIER] = tier
        held[at + _HELD_CONFIDENCE] = confidence
        held[at + _HELD_START] = channel.window_start

    def _release(self, channel):
        """The window held in the channel's slot: sent, or withheld when its sensor went bad since it ended."""
        held = channel.held
        at = channel.slot * HELD_SLOTS
        state = held[at + _HELD_STATE]
        if state == HELD_NONE:
            return
        held[at + _HELD_STATE] = HELD_NONE
        if state == HELD_DECIDED and not channel.fast.settling():
            self._send(channel, channel.results[channel.slot], held[at + _HELD_DECISION], held[at + _HELD_TIER],
                       held[at + _HELD_CONFIDENCE], held[at + _HELD_START])
            return
        self.flush_summary(channel)
        self.withheld = (self.withheld + 1) & COUNTER_MASK

    def _send(self, channel, result, decision, tier, confidence, start):
        if decision == fallback.NORMAL:
            self._summarise(channel, start, result)
        else:
            rule = result[fallback.RULE] if tier != TIER_MODEL else -1
            self._log(EVENT_WINDOW, channel.index, decision, result[fallback.SCORE], start)
            self.link.window(channel.index, decision, tier, rule, result[fallback.SCORE], confidence, start, result)

    def _summarise(self, channel, start, result):
        s = channel.summary
        if s[_WINDOWS] == 0:
            s[_FIRST] = start
            s[_MAX_SCORE] = s[_MAX_RMS] = s[_MAX_PEAK] = 0
        s[_WINDOWS] += 1
        s[_LAST] = start
        if result[fallback.SCORE] > s[_MAX_SCORE]:
            s[_MAX_SCORE] = result[fallback.SCORE]
        if result[fallback.RMS] > s[_MAX_RMS]:
            s[_MAX_RMS] = result[fallback.RMS]
        if result[fallback.PEAK] > s[_MAX_PEAK]:
            s[_MAX_PEAK] = result[fallback.PEAK]
        if s[_WINDOWS] >= cfg.SUMMARY_WINDOWS:
            self.flush_summary(channel)

    def flush(self):
        """At the end of a recording: let tier 2 finish the windows it holds, release every held one, send every summary."""
        while self.tier2_channel != NO_CHANNEL:
            self._tier2_step()
        for channel in self.channels:
            for _ in range(cfg.DECISION_DELAY_WINDOWS):
                channel.slot = (channel.slot + 1) % cfg.DECISION_DELAY_WINDOWS
                self._release(channel)
            self.flush_summary(channel)

    def flush_summary(self, channel):
        s = channel.summary
        if s[_WINDOWS]:
            score = s[_MAX_SCORE] if s[_MAX_SCORE] < 65535 else 65535
            self.link.summary(channel.index, s[_WINDOWS], s[_FIRST], s[_LAST], score, s[_MAX_RMS], s[_MAX_PEAK])
            self._log(EVENT_SUMMARY, channel.index, 0, s[_WINDOWS], s[_FIRST])
            channel.normal_rms = s[_MAX_RMS]
            s[_WINDOWS] = 0

    def running_rms(self, index):
        """The RMS of channel `index`'s normal running: its loudest recent normal window, so a fault's
        windows do not raise it; the last window's RMS before any normal window was seen (0: none)."""
        if not 0 <= index < cfg.CHANNELS:
            return 0
        channel = self.channels[index]
        recent = channel.summary[_MAX_RMS] if channel.summary[_WINDOWS] else 0
        level = channel.normal_rms if channel.normal_rms > recent else recent
        return level if level else channel.result[fallback.RMS]

    def _alert(self, channel, rule, raised, value, limit, sample):
        self.link.alert(channel, rule, raised, value, limit, sample)
        self._log(EVENT_ALERT, channel, rule | (RAISED_BIT if raised else 0), value, sample)
        self._update_safety()

    def _update_safety(self):
        """High while a channel whose sensor is good has a machine limit tripped."""
        tripped = 0
        for channel in self.channels:
            fast = channel.fast
            if not fast.sensor_bad():
                tripped |= fast.tripped[PEAK] | fast.tripped[ENERGY]
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
            value |= tripped[DROPOUT] << 4 | tripped[DISCONNECTED] << 5
        return value | (8 if self.model is not None else 0)

    def heartbeat(self):
        p50 = self.percentile_us(50)
        p99 = self.percentile_us(99)
        uptime = time.ticks_diff(time.ticks_ms(), self.started_ms)
        self.link.heartbeat(uptime, gc.mem_free(), gc.mem_alloc(), p50 if p50 < 65535 else 65535,
                            p99 if p99 < 65535 else 65535, self.worst_us, self.overruns, self.tier2_errors,
                            self.config_hash, self.flags(), self.model_decisions, self.model_unsure, self.model_late)

    def announce(self):
        self.link.boot(cfg.VERSION, cfg.CHANNELS, cfg.RATE_HZ, cfg.BLOCK, cfg.WINDOW, cfg.STRIDE, self.config_hash,
                       0 if self.model is None else (1 if cfg.MODEL_DECIDES else 2), self.settings.source)
