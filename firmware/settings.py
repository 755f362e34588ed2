# Settings: the build's generated constants, plus the thresholds and limits a person can
# change at the REPL (diag.set_threshold), kept in config.json. A missing, corrupt or
# foreign config.json means the built-in defaults, and `problem` says why.
import array
import gc
import json
import os

import fallback
import faultline_config as cfg
import packets

FILE = "config.json"
TEMP = "config.tmp"
DEFAULTS = 0
FROM_FILE = 1
CORRUPT = 2
FOREIGN = 3
SOURCES = ("defaults", "file", "corrupt", "foreign")
LARGEST = 0x3FFFFFFF


def _ints(value, count, what):
    if not isinstance(value, list) or len(value) != count:
        raise ValueError("%s: want a list of %d" % (what, count))
    for item in value:
        if not isinstance(item, int) or not 1 <= item <= LARGEST:
            raise ValueError("%s: %r is not an integer in 1..%d" % (what, item, LARGEST))
    return value


def largest_file():
    """The most bytes a valid record for this build can take: anything longer is not read."""
    return 512 + 24 * (fallback.RULES + 2) * cfg.CHANNELS


def _read(name, size):
    if size > largest_file():
        raise ValueError("%d bytes, more than a config of this build can be (%d)" % (size, largest_file()))
    with open(name, "rb") as f:
        data = f.read(size)
    return json.loads(data.decode())


NOISE_FLOOR_RMS = 3  # a peak limit within 3 x the running RMS trips on noise
# why a change was refused: the reason codes of a NACK (PACKETS.md)
VALUE_OUT_OF_RANGE = 3
UNKNOWN_NAME = 4
CHANNEL_OUT_OF_RANGE = 6
SAVE_FAILED = 9


class Refused(ValueError):
    """A change that was not made; `reason` is its NACK reason code."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def commit(temp=TEMP, target=FILE):
    """Move temp over target (FAT will not rename over a file: remove it first)."""
    try:
        os.rename(temp, target)
    except OSError:
        os.remove(target)
        os.rename(temp, target)


def write_atomically(target, temp, text):
    with open(temp, "w") as f:
        f.write(text)
    commit(temp, target)


def threshold_names():
    return [name.replace(">=", ".").replace("<=", ".low_") for name in fallback.RULE_NAMES]


class Settings:
    def __init__(self):
        self.channels = cfg.CHANNELS
        self.block = cfg.BLOCK
        self.log2_block = cfg.LOG2_BLOCK
        self.full_scale = cfg.FULL_SCALE
        self.saturation_samples = cfg.SATURATION_SAMPLES
        self.stuck_samples = cfg.STUCK_SAMPLES
        self.dropout_samples = cfg.DROPOUT_SAMPLES
        self.clip_high = cfg.CLIP_HIGH
        self.clip_low = cfg.CLIP_LOW
        self.noise_limits = cfg.NOISE_LIMITS
        self.quiet_ranges = cfg.QUIET_RANGES
        self.window_blocks = cfg.WINDOW // cfg.BLOCK
        self.settle_blocks = cfg.SETTLE_BLOCKS
        self.debounce_blocks = cfg.DEBOUNCE_BLOCKS
        self.hold_blocks = cfg.HOLD_BLOCKS
        self.hysteresis_permille = cfg.HYSTERESIS_PERMILLE
        self.thresholds = [fallback.default_thresholds(c) for c in range(cfg.CHANNELS)]
        self.peak_limits = array.array("i", cfg.PEAK_LIMITS)
        self.energy_limits = array.array("i", cfg.ENERGY_LIMITS)
        self.model_limit = cfg.MODEL_LIMIT  # a reconstruction model's error at and above which a window is a fault
        self.source = DEFAULTS
        self.problem = ""

    def load(self):
        """Apply config.json if it is valid for this build; else keep the defaults and say why.

        Whatever the file holds (any bytes, any size, any nesting), this returns: a bad file
        must never stop detection.
        """
        for name in (FILE, TEMP):
            try:
                size = os.stat(name)[6]
            except OSError:
                continue
            try:
                record = _read(name, size)
                self._check(record)
            except Exception as error:  # a parse can raise anything: MemoryError, RuntimeError, UnicodeError...
                self.source = FOREIGN if "another build" in str(error) else CORRUPT
                self.problem = "%s: %s %s" % (name, type(error).__name__, error)
                gc.collect()  # a failed parse can leave most of the heap in garbage
                return
            self._apply(record)
            self.source = FROM_FILE
            if name == TEMP:  # a save was cut short after writing: finish it
                commit()
            return
        self.problem = "no config.json: using the built-in defaults"

    def _check(self, record):
        if not isinstance(record, dict) or not isinstance(record.get("build"), str):
            raise ValueError("want an object with keys build, thresholds, peak_limits, energy_limits, model_limit")
        if not ("thresholds" in record and "peak_limits" in record and "energy_limits" in record):
            raise ValueError("want keys build, thresholds, peak_limits, energy_limits, model_limit")
        if record["build"] != cfg.CONFIG_DIGEST:
            raise ValueError("written for another build (%s, this is %s)" % (record["build"], cfg.CONFIG_DIGEST))
        if sorted(record) != ["build", "energy_limits", "model_limit", "peak_limits", "thresholds"]:
            raise ValueError("want keys build, thresholds, peak_limits, energy_limits, model_limit")
        if not isinstance(record["thresholds"], list) or len(record["thresholds"]) != cfg.CHANNELS:
            raise ValueError("thresholds: want one list per channel")
        for channel in range(cfg.CHANNELS):
            values = _ints(record["thresholds"][channel], fallback.RULES, "thresholds")
            self.check_order(values)
        _ints(record["peak_limits"], cfg.CHANNELS, "peak_limits")
        _ints(record["energy_limits"], cfg.CHANNELS, "energy_limits")
        _ints([record["model_limit"]], 1, "model_limit")

    def check_order(self, values):
        """A fault threshold stays beyond its suspect one: above it, or under it for a lower rule."""
        for fault in range(fallback.RULES):
            for suspect in range(fallback.RULES):
                if (fallback.RULE_FEATURES[fault] == fallback.RULE_FEATURES[suspect]
                        and fallback.RULE_BELOW[fault] == fallback.RULE_BELOW[suspect]
                        and fallback.RULE_LEVELS[fault] == fallback.FAULT and fallback.RULE_LEVELS[suspect] == fallback.SUSPECT):
                    if fallback.RULE_BELOW[fault] and values[fault] >= values[suspect]:
                        raise ValueError("%s must stay under %s" % (fallback.RULE_NAMES[fault], fallback.RULE_NAMES[suspect]))
                    if not fallback.RULE_BELOW[fault] and values[fault] <= values[suspect]:
                        raise ValueError("%s must stay above %s" % (fallback.RULE_NAMES[fault], fallback.RULE_NAMES[suspect]))

    def _apply(self, record):
        for channel in range(cfg.CHANNELS):
            for rule in range(fallback.RULES):
                self.thresholds[channel][rule] = record["thresholds"][channel][rule]
            self.peak_limits[channel] = record["peak_limits"][channel]
            self.energy_limits[channel] = record["energy_limits"][channel]
        self.model_limit = record["model_limit"]

    def set_value(self, name, value, channel=0, running_rms=0):
        """Change one threshold or limit ('rms.fault', 'fast.peak', 'model.limit'...): checked, then saved atomically.

        `running_rms`: the channel's normal running RMS (Pipeline.running_rms); a fast-path limit at or under its
        noise floor would trip on that running."""
        if not isinstance(value, int) or not 1 <= value <= LARGEST:
            raise Refused(VALUE_OUT_OF_RANGE, "value %r: give an integer from 1 to %d" % (value, LARGEST))
        if not isinstance(channel, int) or not 0 <= channel < cfg.CHANNELS:
            raise Refused(CHANNEL_OUT_OF_RANGE, "channel %r: this board has channels 0..%d" % (channel, cfg.CHANNELS - 1))
        if name in ("fast.peak", "fast.energy"):
            floor = NOISE_FLOOR_RMS * running_rms if name == "fast.peak" else (running_rms * running_rms) >> 8
            if value <= floor:
                raise Refused(VALUE_OUT_OF_RANGE, "%s %d is under ch%d's noise floor (running rms %d): it would trip on "
                              "noise; give more than %d" % (name, value, channel, running_rms, floor))
            (self.peak_limits if name == "fast.peak" else self.energy_limits)[channel] = value
        elif name == "model.limit":
            self.model_limit = value
        else:
            names = threshold_names()
            if name not in names:
                raise Refused(UNKNOWN_NAME, "unknown name %r: use one of %s, fast.peak, fast.energy, model.limit" % (
                    name, ", ".join(names)))
            rule = names.index(name)
            trial = list(self.thresholds[channel])
            trial[rule] = value
            try:
                self.check_order(trial)
            except ValueError as error:
                raise Refused(VALUE_OUT_OF_RANGE, str(error))
            self.thresholds[channel][rule] = value
        try:
            write_atomically(FILE, TEMP, json.dumps(self.record()))
        except OSError as error:
            raise Refused(SAVE_FAILED, "could not save %s: %s" % (FILE, error))
        self.source = FROM_FILE
        self.problem = ""

    def record(self):
        return {
            "build": cfg.CONFIG_DIGEST,
            "thresholds": [list(t) for t in self.thresholds],
            "peak_limits": list(self.peak_limits),
            "energy_limits": list(self.energy_limits),
            "model_limit": self.model_limit,
        }

    def digest(self):
        """A 30-bit hash of the effective thresholds and limits, for heartbeats."""
        text = json.dumps(self.record()).encode()
        buffer = bytearray(len(text) + 4)
        buffer[: len(text)] = text
        packets.append_crc32(buffer, len(text))
        return (buffer[-4] | buffer[-3] << 8 | buffer[-2] << 16 | (buffer[-1] & 0x3F) << 24)
