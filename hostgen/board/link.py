"""Talking to a board's MicroPython REPL over serial: find it, connect, run code, soft-reset.

Built on mpremote's serial transport. Every wait has a timeout, so a port that is not a
MicroPython REPL (garbage, or silence) ends in a clear error instead of a hang.
"""

from __future__ import annotations

import contextlib
import errno
import re
import time

import serial
from serial.tools import list_ports

from hostgen.config.board import Board
from hostgen.errors import HostgenError

ARCHES = ("none", "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp", "armv7emdp", "xtensa",
          "xtensawin", "rv32imc", "rv64imc")
RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n"  # the ">" after it is left for the first command
BANNER = re.compile(rb"faultline (\d+\.\d+\.\d+) board=(\S+) arch=(\S+) config=(\S+) (\S+)")


def find_port(board: Board) -> str:
    """The one serial port whose USB VID:PID the board file lists for its REPL."""
    wanted = set(board["repl"]["usb_ids"])
    ports = list(list_ports.comports())
    found = [p for p in ports if p.vid is not None and f"{p.vid:04x}:{p.pid:04x}" in wanted]
    if len(found) == 1:
        return found[0].device
    seen = ", ".join(f"{p.device} ({p.vid:04x}:{p.pid:04x})" if p.vid else p.device for p in ports) or "none"
    if not found:
        raise HostgenError(f"no {board.name} found (USB ids {', '.join(sorted(wanted))}); ports seen: {seen}; plug it in or give PORT=")
    raise HostgenError(f"{len(found)} boards look like {board.name}: {', '.join(p.device for p in found)}; choose one with PORT=")


def _busy(port: str) -> bool:
    """Is another program holding the port? (mpremote's error does not say why it could not open it.)"""
    try:
        serial.Serial(port, exclusive=True).close()
    except serial.SerialException as exc:
        return "exclusively lock" in str(exc) or exc.errno == errno.EBUSY
    except (OSError, ValueError):
        return False
    return False


class ReplSession:
    """A raw-REPL session that leaves the board's running firmware alone (no soft reset)."""

    def __init__(self, port: str, baud: int = 115_200, timeout: float = 5.0):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport

        self.port = port
        self.timeout = timeout
        self._error = TransportError
        try:
            self.transport = SerialTransport(port, baudrate=baud, timeout=1.0)
        except (TransportError, serial.SerialException, OSError) as exc:
            if _busy(port):
                raise HostgenError(f"{port} is in use by another program (a terminal, mpremote, hostgen monitor?); "
                                   "close it and retry") from None
            raise HostgenError(f"cannot open {port}: {exc}; check the port name (or PORT=)") from None
        if not self._enter_raw_repl(timeout):
            self.transport.close()
            raise HostgenError(
                f"{port} does not answer as a MicroPython REPL (no raw-REPL prompt within {timeout:g} s): check the "
                "port, that nothing else holds it, and that the board runs MicroPython (write it with FIRMWARE=)"
            )

    def _enter_raw_repl(self, timeout: float) -> bool:
        """Interrupt, then Ctrl-A, waiting for the raw-REPL prompt; bounded even if the port chatters nonstop."""
        link = self.transport.serial
        deadline = time.monotonic() + timeout
        link.write(b"\r\x03")
        time.sleep(0.05)
        while link.in_waiting and time.monotonic() < deadline:
            link.read(link.in_waiting)
        link.write(b"\r\x01")
        seen = b""
        while time.monotonic() < deadline:
            seen = (seen + link.read(1))[-64:]  # byte by byte, so the prompt after it stays unread
            if seen.endswith(RAW_PROMPT):
                self.transport.in_raw_repl = True
                return True
        return False

    def exec(self, code: str, timeout: float | None = None) -> str:
        """Run code; its printed output. A Python error on the board is a HostgenError."""
        from mpremote.transport import TransportExecError

        if not self.transport.in_raw_repl and not self._enter_raw_repl(self.timeout):  # after a soft reset
            raise HostgenError(f"{self.port} did not come back to the raw REPL after a soft reset")
        try:
            self.transport.exec_raw_no_follow(code)
            out, err = self.transport.follow(timeout or self.timeout)
        except TransportExecError as exc:
            raise HostgenError(f"the board raised: {exc.error_output.strip().splitlines()[-1]}") from None
        except self._error as exc:
            raise HostgenError(f"{self.port} stopped answering: {exc}") from None
        if err:
            raise HostgenError(f"the board raised: {err.decode(errors='replace').strip().splitlines()[-1]}")
        return out.decode(errors="replace").replace("\r\n", "\n")

    def identity(self) -> dict:
        """What the board says it is: platform, native arch, MicroPython version."""
        out = self.exec("import sys\nprint(sys.platform, getattr(sys.implementation, '_mpy', 0) >> 10, "
                        "'%d.%d.%d' % sys.implementation.version[:3])")
        platform, arch, version = out.split()
        code = int(arch)
        return {"platform": platform, "arch": ARCHES[code] if code < len(ARCHES) else f"arch{code}", "micropython": version}

    def soft_reset_and_read_banner(self, timeout: float = 15.0) -> bytes:
        """Soft-reset into the friendly REPL (main.py runs) and return what it prints up to the prompt."""
        serial_port = self.transport.serial
        serial_port.write(b"\r\x02")  # leave the raw REPL
        time.sleep(0.1)
        serial_port.reset_input_buffer()
        serial_port.write(b"\x04")  # soft reset
        self.transport.in_raw_repl = False
        seen = self.transport.read_until(1, b">>> ", timeout=timeout, timeout_overall=timeout)
        if not seen.endswith(b">>> "):
            raise HostgenError(f"{self.port} did not come back to the REPL within {timeout:g} s of a soft reset: {seen[-120:]!r}")
        return seen

    def close(self) -> None:
        try:
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
            self.transport.close()
        except (serial.SerialException, OSError):  # the board went away (a reset, a cable): let the port go all the same
            with contextlib.suppress(serial.SerialException, OSError):
                self.transport.serial.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
