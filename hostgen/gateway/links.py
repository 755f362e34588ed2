"""A board's link: its serial port (or a virtual board's pty), reopened after an unplug.

Reads are non-blocking; the decoder and the sequence tracker sit here, so the bridge
gets packets with their verdicts, and garbage, truncated frames and gaps are counted per
board. Commands go back over the same port.
"""

from __future__ import annotations

import os
import time

import serial

from hostgen.board.packets import Packet, SequenceTracker, StreamDecoder
from hostgen.gateway.config import BoardConfig

READ_CHUNK = 4096


class _Serial(serial.Serial):
    """pyserial's Serial without its input flush on open: what the kernel kept while the gateway was down are packets."""

    _opening = False

    def open(self):
        self._opening = True
        try:
            super().open()
        finally:
            self._opening = False

    def _reset_input_buffer(self):
        if not self._opening:
            super()._reset_input_buffer()


class BoardLink:
    def __init__(self, config: BoardConfig, tracker: SequenceTracker, reopen_s: float = 1.0):
        self.config = config
        self.name = config.name
        self.tracker = tracker
        self.decoder = StreamDecoder()
        self.port: serial.Serial | None = None
        self.reopen_s = reopen_s
        self.next_open = 0.0
        self.problem = ""
        self.node: int | None = None  # the node id the board's packets carry

    @property
    def up(self) -> bool:
        return self.port is not None

    def fileno(self) -> int | None:
        try:
            return self.port.fileno() if self.port is not None else None
        except (AttributeError, OSError, serial.SerialException):
            return None

    def open(self) -> bool:
        """Try to open the port (at most once per reopen_s); True if it is open now."""
        if self.port is not None:
            return True
        now = time.monotonic()
        if now < self.next_open:
            return False
        self.next_open = now + self.reopen_s
        try:
            if "://" in self.config.port:
                self.port = serial.serial_for_url(self.config.port, baudrate=self.config.baud, timeout=0)
            else:
                self.port = _Serial(self.config.port, self.config.baud, timeout=0, write_timeout=0.5)
        except (serial.SerialException, OSError, ValueError) as exc:
            self.problem = str(exc).splitlines()[0][:200]
            return False
        self.decoder.finish()  # a frame cut by the unplug is a bad frame
        self.problem = ""
        return True

    def close(self, problem: str = "") -> None:
        if self.port is not None:
            try:
                self.port.close()
            except (serial.SerialException, OSError):
                pass
        self.port = None
        self.problem = problem
        self.next_open = time.monotonic() + self.reopen_s

    def read(self) -> list[tuple[Packet, bytes, str, int]]:
        """Packets now waiting: (packet, its bytes, the tracker's verdict, numbers missing just before it)."""
        if self.port is None:
            return []
        try:
            fd = getattr(self.port, "fd", None)  # a posix port: read its descriptor (pyserial's read selects first)
            data = os.read(fd, READ_CHUNK) if fd is not None else self.port.read(READ_CHUNK)
            if fd is not None and not data:
                raise OSError("end of file")
        except BlockingIOError:
            return []
        except (serial.SerialException, OSError) as exc:
            self.close(f"link lost: {str(exc).splitlines()[0][:160]}")
            return []
        if not data:
            return []
        out = []
        for packet, raw in self.decoder.feed_frames(data):
            state = self.tracker.node(self.name)
            missing = state.missing
            verdict = self.tracker.check(packet, self.name)
            self.node = packet.node
            out.append((packet, raw, verdict, max(0, state.missing - missing)))
        return out

    def write(self, data: bytes) -> bool:
        if self.port is None:
            return False
        try:
            self.port.write(data)
            self.port.flush()
            return True
        except (serial.SerialException, OSError) as exc:
            self.close(f"link lost while writing: {str(exc).splitlines()[0][:160]}")
            return False
