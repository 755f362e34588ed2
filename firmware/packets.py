# Packets to the gateway (spec: PACKETS.md): struct-packed into preallocated buffers,
# CRC-32 and COBS in viper, written with stream.write(buf, n). Sending allocates nothing.
import struct
import time

import micropython
from micropython import const

VERSION = const(1)
BOOT = const(1)
ALERT = const(2)
WINDOW = const(3)
SUMMARY = const(4)
HEARTBEAT = const(5)
COMMAND = const(6)
ACK = const(7)
NACK = const(8)
HEADER = const(12)
COUNTER_MASK = const(0x3FFFFFFF)


@micropython.viper
def append_crc32(buf: ptr8, n: int):
    """Write the CRC-32 of buf[:n] little-endian into buf[n:n + 4].

    Bitwise (no table in RAM), on two 16-bit halves so no value needs more than 16 bits.
    """
    low = 0xFFFF
    high = 0xFFFF
    for i in range(n):
        low ^= buf[i]
        for _ in range(8):
            carry = low & 1
            low = (low >> 1) | ((high & 1) << 15)
            high >>= 1
            if carry:
                low ^= 0x8320
                high ^= 0xEDB8
    low ^= 0xFFFF
    high ^= 0xFFFF
    buf[n] = low & 0xFF
    buf[n + 1] = low >> 8
    buf[n + 2] = high & 0xFF
    buf[n + 3] = high >> 8


@micropython.viper
def _cobs(source: ptr8, n: int, target: ptr8) -> int:
    code_at = 0
    out = 1
    code = 1
    for i in range(n):
        byte = source[i]
        if byte == 0:
            target[code_at] = code
            code_at = out
            out += 1
            code = 1
        else:
            target[out] = byte
            out += 1
            code += 1
            if code == 0xFF:
                target[code_at] = code
                code_at = out
                out += 1
                code = 1
    target[code_at] = code
    target[out] = 0
    return out + 1


@micropython.viper
def uncobs(source: ptr8, n: int, target: ptr8, room: int) -> int:
    """Decode a COBS frame (no delimiter) into target; its length, or -1 if it is not valid COBS or too long."""
    i = 0
    out = 0
    while i < n:
        code = source[i]
        if code == 0 or i + code > n:
            return -1
        i += 1
        for _ in range(code - 1):
            if out >= room:
                return -1
            target[out] = source[i]
            out += 1
            i += 1
        if code < 0xFF and i < n:
            if out >= room:
                return -1
            target[out] = 0
            out += 1
    return out


class Link:
    """Frames packets onto a stream; counts what was sent, dropped and how many bytes."""

    def __init__(self, stream, node):
        self.stream = stream
        self.node = node
        self.seq = 0
        self.sent = 0
        self.dropped = 0
        self.bytes = 0
        self.packet = bytearray(HEADER + 60)
        self.frame = bytearray(HEADER + 60 + 8)

    def _send(self, kind, payload_length):
        struct.pack_into("<BBHII", self.packet, 0, VERSION, kind, self.node, self.seq, time.ticks_ms() & COUNTER_MASK)
        self.seq = (self.seq + 1) & COUNTER_MASK
        length = HEADER + payload_length
        append_crc32(self.packet, length)
        framed = _cobs(self.packet, length + 4, self.frame)
        try:
            written = self.stream.write(self.frame, framed)
        except OSError:
            written = 0
        if written == framed:
            self.sent += 1
            self.bytes += framed
        else:
            self.dropped += 1

    def boot(self, version, channels, rate, block, window, stride, config_hash, tier2, config_source):
        struct.pack_into("<BBBBHHHHIBBH", self.packet, HEADER, version[0], version[1], version[2], channels,
                         rate, block, window, stride, config_hash, tier2, config_source, 0)
        self._send(BOOT, 20)

    def alert(self, channel, rule, raised, value, limit, sample):
        struct.pack_into("<BBBBiiI", self.packet, HEADER, channel, rule, raised, 0, value, limit, sample & COUNTER_MASK)
        self._send(ALERT, 16)

    def window(self, channel, decision, tier, rule, score, confidence, start, features):
        struct.pack_into("<BBBbHHIiiiiii", self.packet, HEADER, channel, decision, tier, rule, score, confidence,
                         start & COUNTER_MASK, features[0], features[1], features[2], features[3], features[4], features[5])
        self._send(WINDOW, 36)

    def summary(self, channel, windows, first, last, max_score, max_rms, max_peak):
        struct.pack_into("<BBBBIIIHHii", self.packet, HEADER, channel, 0, 0, 0, windows, first & COUNTER_MASK,
                         last & COUNTER_MASK, max_score, 0, max_rms, max_peak)
        self._send(SUMMARY, 28)

    def answer(self, accepted, counter, last_counter, op, reason):
        """ACK or NACK of a command: its counter, the last accepted counter, the op and why."""
        struct.pack_into("<IIBBH", self.packet, HEADER, counter & COUNTER_MASK, last_counter & COUNTER_MASK, op, reason, 0)
        self._send(ACK if accepted else NACK, 12)

    def heartbeat(self, uptime, free, used, p50, p99, worst, overruns, tier2_errors, config_hash, flags,
                  model_decisions, model_unsure, model_late):
        struct.pack_into("<IIIHHIIIIIIBBBBIII", self.packet, HEADER, uptime & COUNTER_MASK, free, used, p50, p99, worst,
                         overruns, self.sent, self.dropped, tier2_errors, config_hash, flags, 0, 0, 0,
                         model_decisions & COUNTER_MASK, model_unsure & COUNTER_MASK, model_late & COUNTER_MASK)
        self._send(HEARTBEAT, 56)
