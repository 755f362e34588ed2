"""A board's link: its serial port (or a virtual board's pty), reopened after an unplug.

Reads are non-blocking; the decoder and the sequence tracker sit here, so the bridge
gets packets with their verdicts, and garbage, truncated frames and gaps are counted per
board. Commands go back over the same port.

Packets are handed on in sequence only (firmware/PACKETS.md, RESEND): on opening the link, and
at a gap, the link asks the board to send again from the first number missing, and holds what
came after the gap until the missing ones arrive, the board answers that they are gone, or
HOLD_S passes (a board that does not resend); then what is held goes on, the gap counted.
"""

from __future__ import annotations

import os
import time

import serial

from hostgen.board.packets import SEQ_MODULUS, Packet, SequenceTracker, StreamDecoder, encode
from hostgen.gateway.config import BoardConfig

READ_CHUNK = 4096
HOLD_S = 2.0  # how long packets after a gap wait for the missing ones
RESEND_EVERY_S = 0.5  # at most one RESEND per link this often


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
        self.held: dict[int, tuple[Packet, bytes]] = {}  # after a gap, by sequence number: not handed on yet
        self.hold_until = 0.0
        self.gone_before: int | None = None  # the board sends from here: the numbers before it are gone
        self.asked_at = -RESEND_EVERY_S
        self.ask_due = False  # a RESEND is wanted, as soon as RESEND_EVERY_S allows

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
        self.asked_at = -RESEND_EVERY_S
        self._ask(now)  # what the board sent while no one read its link (or was read but not committed)
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

    @property
    def holding(self) -> bool:
        return bool(self.held)

    def read(self, waiting: bool = True) -> list[tuple[Packet, bytes, str, int]]:
        """Packets handed on now, in sequence: (packet, its bytes, the tracker's verdict, numbers missing just before it).

        `waiting`: the port has bytes (select said so; a tty in raw mode reads b"" when empty, as at its end).
        """
        data = self._read_bytes() if waiting else b""
        now = time.monotonic()
        out = []
        for packet, raw in self.decoder.feed_frames(data):
            self.node = packet.node
            if packet.kind == "RESENDING":
                self._resending(packet.fields["first_seq"], now, out)
            else:
                self._arrive(packet, raw, now, out)
        if self.held and now >= self.hold_until:  # the board did not fill the gap: on, with the gap counted
            self._release(out, everything=True)
        if self.ask_due and self.held:
            self._ask(now)
        return out

    def _read_bytes(self) -> bytes:
        if self.port is None:
            return b""
        try:
            fd = getattr(self.port, "fd", None)  # a posix port: read its descriptor (pyserial's read selects first)
            data = os.read(fd, READ_CHUNK) if fd is not None else self.port.read(READ_CHUNK)
            if fd is not None and not data:
                raise OSError("end of file")
        except BlockingIOError:
            return b""
        except (serial.SerialException, OSError) as exc:
            self.close(f"link lost: {str(exc).splitlines()[0][:160]}")
            return b""
        return data

    def _expected(self) -> int | None:
        newest = self.tracker.node(self.name).newest
        return None if newest is None else (newest + 1) % SEQ_MODULUS

    def _arrive(self, packet: Packet, raw: bytes, now: float, out: list) -> None:
        expected = self._expected()
        if expected is None or packet.kind == "BOOT":  # nothing to be in sequence with; or the board started again
            self._release(out, everything=True)
            self._hand_on(packet, raw, out)
            return
        ahead = (packet.seq - expected) % SEQ_MODULUS
        if ahead >= SEQ_MODULUS // 2 or ahead == 0:  # behind: a duplicate (the tracker drops it), or late; or the next one
            state = self.tracker.node(self.name)
            if ahead and packet.seq not in state.seen:  # late, or a restart without its BOOT: what is held came before it
                self._release(out, everything=True)
            self._hand_on(packet, raw, out)
            self._release(out)
            return
        self.held[packet.seq] = (packet, raw)
        self._release(out)
        if self.held and self.hold_until == 0.0:  # a new gap
            self.hold_until = now + HOLD_S
            self.ask_due = True

    def _resending(self, first: int, now: float, out: list) -> None:
        """The board's answer to a RESEND: it sends again from `first`."""
        expected = self._expected()
        if expected is None:
            return
        ahead = (first - expected) % SEQ_MODULUS
        if 0 < ahead < SEQ_MODULUS // 2:  # it no longer holds expected .. first - 1
            self.gone_before = first
            self._release(out)
        elif self.held:  # they are coming
            self.hold_until = now + HOLD_S

    def _release(self, out: list, everything: bool = False) -> None:
        """Hand on what is held while it is next in sequence (after numbers the board said are gone; or all of it)."""
        while self.held:
            expected = self._expected()
            seq = min(self.held, key=lambda s: (s - expected) % SEQ_MODULUS)
            gone = 0 if self.gone_before is None else (self.gone_before - expected) % SEQ_MODULUS
            if seq != expected and not everything and (gone >= SEQ_MODULUS // 2 or (seq - expected) % SEQ_MODULUS > gone):
                break
            self._hand_on(*self.held.pop(seq), out)
        expected = self._expected()
        if self.gone_before is not None and expected is not None \
                and not 0 < (self.gone_before - expected) % SEQ_MODULUS < SEQ_MODULUS // 2:
            self.gone_before = None
        if not self.held:
            self.hold_until = 0.0

    def _hand_on(self, packet: Packet, raw: bytes, out: list) -> None:
        state = self.tracker.node(self.name)
        missing = state.missing
        verdict = self.tracker.check(packet, self.name)
        out.append((packet, raw, verdict, max(0, state.missing - missing)))

    def _ask(self, now: float) -> None:
        """RESEND from the number after the newest handed on, unless one went out within RESEND_EVERY_S."""
        wanted = self._expected()
        if wanted is None or self.node is None or self.port is None:
            self.ask_due = False
            return
        if now - self.asked_at < RESEND_EVERY_S:
            self.ask_due = True
            return
        self.ask_due = False
        self.asked_at = now
        self.write(encode("RESEND", self.node, 0, 0, first_seq=wanted))

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
