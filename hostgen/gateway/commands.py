"""Commands from the plant to a board: Sparkplug DCMD metrics -> authenticated COMMAND packets.

A DCMD may carry:
  command/set_threshold/<name>[/ch<N>]   an integer: the new threshold or limit ('rms.fault', 'fast.peak'...)
  command/status                         true: the board answers with a heartbeat now
  Device Control/Rebirth                 true: the gateway publishes the board's DBIRTH again
Each command gets the board's next counter (kept in the spool, so never reused after a
restart) and an HMAC-SHA256 over header and payload with the board's key; the board
checks both and answers ACK or NACK with the reason. What cannot become a command is
rejected here, counted and published, and the gateway goes on serving.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

from hostgen.board.packets import MAC_BYTES, frame_body, packet_body
from hostgen.errors import HostgenError

KEY_BYTES = 32
OP_SET_THRESHOLD = 1
OP_STATUS = 2
NAME_BYTES = 16
SET_THRESHOLD = re.compile(r"^command/set_threshold/([A-Za-z0-9_.]{1,16})(?:/ch(\d{1,3}))?$")
COUNTER_LIMIT = 1 << 30  # the header's seq field, as every counter in PACKETS.md


class Rejected(Exception):
    """A DCMD that cannot become a command: its message is the published reason."""


@dataclass(frozen=True)
class Command:
    op: int
    name: str = ""
    channel: int = 0
    value: int = 0


def read_key(path: Path) -> bytes:
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise HostgenError(f"key file {path}: {getattr(exc, 'strerror', None) or 'not hex'}; "
                           "`hostgen flash --key FILE` writes a fresh one") from None
    if len(key) != KEY_BYTES:
        raise HostgenError(f"key file {path} holds {len(key)} bytes, want {KEY_BYTES} (64 hex digits)")
    return key


def parse_dcmd(metrics: dict[str, object]) -> tuple[list[Command], bool]:
    """The commands a DCMD asks for, and whether it asks for a rebirth; Rejected names the first bad metric."""
    commands, rebirth = [], False
    if not metrics:
        raise Rejected("DCMD without metrics")
    for name, value in metrics.items():
        if name == "Device Control/Rebirth":
            rebirth = rebirth or value is True
            continue
        if name == "command/status":
            if value is not True:
                raise Rejected(f"command/status must be true, got {value!r}")
            commands.append(Command(OP_STATUS))
            continue
        found = SET_THRESHOLD.match(name)
        if not found:
            raise Rejected(f"unknown command metric {name!r}: use command/set_threshold/<name>[/ch<N>] or command/status")
        if not isinstance(value, int) or isinstance(value, bool) or not -(2**31) <= value < 2**31:
            raise Rejected(f"{name}: want an integer value, got {value!r}")
        channel = int(found.group(2) or 0)
        if channel > 255:
            raise Rejected(f"{name}: channel {channel} out of range")
        commands.append(Command(OP_SET_THRESHOLD, found.group(1), channel, value))
    return commands, rebirth


def command_frame(key: bytes, node: int, counter: int, command: Command) -> bytes:
    """The framed COMMAND packet: header seq = counter, MAC over header and payload before it."""
    if not 0 < counter < COUNTER_LIMIT:
        raise Rejected(f"command counter {counter} out of range 1..{COUNTER_LIMIT - 1}")
    body = packet_body("COMMAND", node, counter, 0, op=command.op, channel=command.channel, value=command.value,
                       name=command.name.encode("ascii"))
    unsigned = body[:-MAC_BYTES]
    return frame_body(unsigned + hmac.new(key, unsigned, hashlib.sha256).digest())
