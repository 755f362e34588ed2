"""What the host and the firmware share, defined once.

The firmware's modules (firmware/*.py) keep their own copies as `const()`s and tuples, because
a MicroPython module reads its own constants fastest; tests/host/test_shared_constants.py reads
those files and fails on any difference from these tables. Generated modules take theirs from here.
"""

FEATURES = ("mean", "rms", "peak", "crest", "kurtosis", "zcr", "periodicity", "once_per_turn",
            "unbalance")  # a window's features, in a result's slots
DECISIONS = ("normal", "suspect", "fault")  # a window's decision, by its code
NORMAL, SUSPECT, FAULT = range(3)
NO_RULE = -1
HELD_DECISION_SLOTS = 5  # array('i') slots the pipeline keeps per window awaiting the release of its decision

ALERT_RULES = ("peak", "energy", "saturated", "stuck", "dropout", "disconnected")  # an ALERT's rule, by its code
MACHINE_ALERT_RULES = ("peak", "energy")  # the fast path's limits; the others are sensor faults

TIERS = ("fallback", "model", "fallback (model error)", "fallback (model unsure)", "fallback (model late)",
         "fallback (model advisory)")  # who decided a window

CONFIG_SOURCES = ("defaults", "file", "corrupt", "foreign")  # where the board's thresholds came from
CONFIG_SOURCE_TEXTS = (
    "built-in defaults",
    "config.json",
    "built-in defaults: config.json is corrupt",
    "built-in defaults: config.json is from another build",
)

EVENT_KINDS = ("alert", "window", "summary")  # the board's event log, codes 1, 2, 3
ALERT_RAISED_BIT = 0x80  # an alert event's code is its rule, with this bit set when raised

PACKET_VERSION = 1
PACKET_TYPES = ("BOOT", "ALERT", "WINDOW", "SUMMARY", "HEARTBEAT", "COMMAND", "ACK", "NACK", "RESEND",
                "RESENDING")  # codes 1, 2, 3...
HEARTBEAT_FLAGS = ("sensor saturated", "sensor stuck", "fast-path limit tripped", "model present", "sensor dropout",
                   "sensor disconnected")  # bit 0, 1...
