# The unix-port side of the hardware layer: a recording (FAULTLINE_SCENARIO: int16 samples,
# channels interleaved) replayed at its rate or as fast as the VM goes, packets to a file or
# pipe (FAULTLINE_LINK), commands from one (FAULTLINE_COMMANDS), and a safety output that only
# remembers its level.
import array
import os
import time

import faultline_config as cfg


class ReplaySampler:
    """A recording (int16 samples, channels interleaved) fed block by block into the rings."""

    def __init__(self, pipeline, path, realtime, loop):
        self.pipeline = pipeline
        self.file = open(path, "rb")
        self.frames = array.array("h", bytes(2 * cfg.BLOCK * cfg.CHANNELS))
        self.realtime = realtime
        self.loop = loop
        self.started = time.ticks_us()
        self.elapsed_us = 0
        self.fed_blocks = 0
        self.finished = False

    def _feed_block(self):
        if self.file.readinto(self.frames) != 2 * cfg.BLOCK * cfg.CHANNELS:
            if not self.loop:
                self.finished = True
                return False
            self.file.seek(0)
            return self._feed_block()
        self.pipeline.write_block(self.frames)
        return True

    def service(self):
        """Feed what is due, process it; False once the recording has ended (and everything held is sent)."""
        if self.finished:
            return False
        if self.realtime:
            now = time.ticks_us()
            self.elapsed_us += time.ticks_diff(now, self.started)
            self.started = now
            due = self.elapsed_us * cfg.RATE_HZ // (1_000_000 * cfg.BLOCK) - self.fed_blocks
        else:
            due = self.pipeline.room() // cfg.BLOCK
        while due > 0 and self._feed_block():
            self.fed_blocks += 1
            due -= 1
        self.pipeline.process()
        if self.finished:
            self.pipeline.flush()  # the recording's last windows: nothing would release their held decisions
        return not self.finished


class SafetyOutput:
    """The unix side of the safety pin: it remembers its level, as Pin.value() does."""

    def __init__(self):
        self.level = 0

    def value(self, level=None):
        if level is None:
            return self.level
        self.level = level


def gateway():
    return open(os.getenv("FAULTLINE_LINK") or "packets.bin", "wb")


class CommandPort:
    """Bytes from the gateway (FAULTLINE_COMMANDS: a pipe, FIFO or file); readinto returns 0 at once when none wait."""

    def __init__(self, path):
        import select

        self.file = open(path, "rb")
        self.poller = select.poll()
        self.poller.register(self.file, select.POLLIN)
        self.byte = bytearray(1)

    def readinto(self, buffer):
        # byte by byte while the poll says more wait: a file's readinto blocks until its buffer is full
        n = 0
        while n < len(buffer) and self._waiting() and self.file.readinto(self.byte) == 1:
            buffer[n] = self.byte[0]
            n += 1
        return n

    def _waiting(self):
        for _ in self.poller.ipoll(0):
            return True
        return False


def command_port():
    path = os.getenv("FAULTLINE_COMMANDS")
    return CommandPort(path) if path else None


def safety_output():
    return SafetyOutput()


def watchdog():
    return None


def sampler(pipeline):
    scenario = os.getenv("FAULTLINE_SCENARIO")
    if not scenario:
        return None
    return ReplaySampler(pipeline, scenario, os.getenv("FAULTLINE_REALTIME") == "1", os.getenv("FAULTLINE_LOOP") == "1")
