# Commands from the gateway (PACKETS.md: COMMAND, answered by ACK or NACK), and its RESENDs, which
# go to the link (packets.Link.resend). The pipeline calls poll() once per block: with no bytes
# waiting it reads nothing and allocates nothing, and a RESEND allocates nothing either.
# A command is applied only if its HMAC-SHA256 (this board's key, faultline.key, written at
# flash time) is right and its counter is above the last accepted one (command.counter, saved
# atomically before the command is applied, so no command is ever applied twice); it goes
# through Settings.set_value, the path diag.set_threshold takes.
import hashlib
import struct

import faultline_config as cfg
import packets
import settings
from micropython import const

KEY_FILE = "faultline.key"
COUNTER_FILE = "command.counter"
COUNTER_TEMP = "command.tmp"
FRAME_ROOM = const(128)  # longer than any COMMAND frame (77 bytes): longer ones are garbage
PAYLOAD = const(56)
RESEND_PAYLOAD = const(4)
MAC = const(32)
OP_SET_THRESHOLD = const(1)
OP_STATUS = const(2)
OK = const(0)
BAD_MAC = const(1)
REPLAYED = const(2)
UNKNOWN_OP = const(5)
NO_KEY = const(7)
OTHER_NODE = const(8)
MALFORMED = const(10)
BLOCK = const(64)  # SHA-256 block size


def hmac_sha256(key, message):
    """HMAC-SHA256 (RFC 2104): MicroPython has hashlib.sha256 but no hmac module."""
    if len(key) > BLOCK:
        key = hashlib.sha256(key).digest()
    pad = bytearray(BLOCK)
    for i in range(len(key)):
        pad[i] = key[i]
    for i in range(BLOCK):
        pad[i] ^= 0x36
    inner = hashlib.sha256(pad)
    inner.update(message)
    for i in range(BLOCK):
        pad[i] ^= 0x36 ^ 0x5C
    outer = hashlib.sha256(pad)
    outer.update(inner.digest())
    return outer.digest()


def same(a, b):
    """Equal, in time that does not depend on where they differ."""
    if len(a) != len(b):
        return False
    difference = 0
    for i in range(len(a)):
        difference |= a[i] ^ b[i]
    return difference == 0


def _read_key():
    try:
        with open(KEY_FILE) as f:
            key = bytes.fromhex(f.read().strip())
    except (OSError, ValueError):
        return None
    return key if len(key) == 32 else None


def _read_counter():
    for name in (COUNTER_FILE, COUNTER_TEMP):
        try:
            with open(name) as f:
                return int(f.read())
        except (OSError, ValueError):
            pass
    return 0


class Commands:
    def __init__(self, pipeline, port):
        self.pipeline = pipeline
        self.port = port
        self.chunk = bytearray(32)
        self.frame = bytearray(FRAME_ROOM)
        self.length = 0
        self.overlong = False
        self.packet = bytearray(FRAME_ROOM)
        self.key = _read_key()
        self.last_counter = _read_counter()
        self.accepted = 0
        self.refused = 0
        self.bad_frames = 0
        self.resends_ignored = 0  # RESENDs malformed or for another node

    def poll(self):
        n = self.port.readinto(self.chunk)
        if not n:
            return
        chunk = self.chunk
        for i in range(n):
            byte = chunk[i]
            if byte == 0:
                self._frame()
            elif self.length < FRAME_ROOM:
                self.frame[self.length] = byte
                self.length += 1
            else:
                self.overlong = True

    def _frame(self):
        length, overlong = self.length, self.overlong
        self.length = 0
        self.overlong = False
        if length == 0:
            return
        packet = self.packet
        size = -1 if overlong else packets.uncobs(self.frame, length, packet, FRAME_ROOM)
        if size < packets.HEADER + 4:
            self.bad_frames += 1
            return
        # the received CRC, kept while append_crc32 writes the computed one over it: compared byte by byte
        # (no 32-bit integer), one name each (a tuple would be an allocation on every RESEND)
        c0 = packet[size - 4]
        c1 = packet[size - 3]
        c2 = packet[size - 2]
        c3 = packet[size - 1]
        packets.append_crc32(packet, size - 4)
        if c0 != packet[size - 4] or c1 != packet[size - 3] or c2 != packet[size - 2] or c3 != packet[size - 1]:
            self.bad_frames += 1
            return
        if packet[0] == packets.VERSION and packet[1] == packets.RESEND:
            if size != packets.HEADER + RESEND_PAYLOAD + 4 or not self.pipeline.link.resend(packet):
                self.resends_ignored += 1
            return
        version, kind, node, counter, _ = struct.unpack_from("<BBHII", packet, 0)
        if version != packets.VERSION or kind != packets.COMMAND:
            self.bad_frames += 1
            return
        if size != packets.HEADER + PAYLOAD + 4:
            self._answer(False, counter, 0, MALFORMED)
            return
        op, channel, _, value = struct.unpack_from("<BBHi", packet, packets.HEADER)
        if node != cfg.NODE_ID:
            self._answer(False, counter, op, OTHER_NODE)
        elif self.key is None:
            self._answer(False, counter, op, NO_KEY)
        elif not same(hmac_sha256(self.key, memoryview(packet)[: size - 4 - MAC]), memoryview(packet)[size - 4 - MAC : size - 4]):
            self._answer(False, counter, op, BAD_MAC)
        elif counter <= self.last_counter:
            self._answer(False, counter, op, REPLAYED)
        else:
            self._apply(counter, op, channel, value, bytes(packet[packets.HEADER + 8 : packets.HEADER + 24]))

    def _apply(self, counter, op, channel, value, name):
        try:  # spent before it is applied: after a crash or a replay it is never applied again
            settings.write_atomically(COUNTER_FILE, COUNTER_TEMP, str(counter))
        except OSError:
            self._answer(False, counter, op, settings.SAVE_FAILED)
            return
        self.last_counter = counter
        if op == OP_STATUS:
            self._answer(True, counter, op, OK)
            self.pipeline.heartbeat()
        elif op == OP_SET_THRESHOLD:
            end = 0
            while end < len(name) and name[end]:
                end += 1
            try:
                self.pipeline.settings.set_value(name[:end].decode(), value, channel, self.pipeline.running_rms(channel))
            except settings.Refused as refusal:
                self._answer(False, counter, op, refusal.reason)
                return
            except (UnicodeError, ValueError):
                self._answer(False, counter, op, settings.UNKNOWN_NAME)
                return
            self.pipeline.config_hash = self.pipeline.settings.digest()
            self._answer(True, counter, op, OK)
        else:
            self._answer(False, counter, op, UNKNOWN_OP)

    def _answer(self, accepted, counter, op, reason):
        if accepted:
            self.accepted += 1
        else:
            self.refused += 1
        self.pipeline.link.answer(accepted, counter, self.last_counter, op, reason)
