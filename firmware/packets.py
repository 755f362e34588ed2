# Packets to the gateway (spec: PACKETS.md): struct-packed into preallocated buffers,
# CRC-32 and COBS in viper, queued in a transmit ring and written with stream.write(buf, offset, n).
# Sending and answering a RESEND allocate nothing.
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
RESEND = const(9)
RESENDING = const(10)
HEADER = const(12)
COUNTER_MASK = const(0x3FFFFFFF)
HALF = const(0x20000000)  # half the sequence range: further ahead than this is behind
BURST = const(128)  # bytes written per pump(): a long rewind drains over several blocks, never holding one up
REPLY_ROOM = const(32)  # 0x00 and a RESENDING frame (26 bytes)


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


@micropython.viper
def _copy_in(ring: ptr8, mask: int, at: int, source: ptr8, n: int):
    for i in range(n):
        ring[(at + i) & mask] = source[i]


@micropython.viper
def _frame_end(ring: ptr8, mask: int, at: int) -> int:
    """Where the frame starting at `at` ends: the position after its 0x00 (mod 2^30)."""
    while ring[at & mask] != 0:
        at += 1
    return (at + 1) & 0x3FFFFFFF


@micropython.viper
def _zeros(ring: ptr8, mask: int, at: int, n: int) -> int:
    count = 0
    for i in range(n):
        if ring[(at + i) & mask] == 0:
            count += 1
    return count


class Link:
    """Frames packets into a transmit ring and writes them out from a send cursor.

    The ring keeps the newest frames after they were written (PACKETS.md: RESEND), so the
    gateway can ask for them again; a write the stream takes only in part, or not at all,
    leaves the rest queued until the ring has to overwrite it. Positions (head, cursor,
    tail, the high mark) count bytes mod 2^30; the ring's size is a power of two, so a
    position's place in it is `position & mask`. Counts, wrapping at 2^30 as every counter on the
    link does: sent (frames written out whole for the first time), dropped (frames overwritten
    before that), bytes (written, resent ones too), resends (RESENDs answered).
    """

    def __init__(self, stream, node, ring_bytes):
        self.stream = stream
        self.node = node
        self.seq = 0
        self.sent = 0
        self.dropped = 0
        self.bytes = 0
        self.resends = 0
        self.packet = bytearray(HEADER + 60)
        self.frame = bytearray(HEADER + 60 + 8)
        self.ring = bytearray(ring_bytes)
        self.mask = ring_bytes - 1
        self.head = 0  # where the next frame goes
        self.cursor = 0  # the next byte to write out
        self.tail = 0  # the oldest frame held
        self.high = 0  # every byte before it was written out at least once
        self.oldest = 0  # the sequence number of the frame at tail
        self.reply = bytearray(REPLY_ROOM)  # 0x00 (ends a frame cut short), then a RESENDING frame
        self.reply_at = 0
        self.reply_end = 0

    def _send(self, kind, payload_length):
        struct.pack_into("<BBHII", self.packet, 0, VERSION, kind, self.node, self.seq, time.ticks_ms() & COUNTER_MASK)
        self.seq = (self.seq + 1) & COUNTER_MASK
        length = HEADER + payload_length
        append_crc32(self.packet, length)
        self._queue(_cobs(self.packet, length + 4, self.frame))
        self.pump()

    def _queue(self, framed):
        """The frame in self.frame into the ring, the oldest frames out until it fits."""
        while ((self.head - self.tail) & COUNTER_MASK) + framed > len(self.ring):
            end = _frame_end(self.ring, self.mask, self.tail)
            if ((self.cursor - self.tail) & COUNTER_MASK) < ((end - self.tail) & COUNTER_MASK):  # not yet written out
                if self.cursor != self.tail:
                    self._cut()
                self.cursor = end
            if ((self.high - self.tail) & COUNTER_MASK) < ((end - self.tail) & COUNTER_MASK):
                self.dropped = (self.dropped + 1) & COUNTER_MASK
                self.high = end
            self.tail = end
            self.oldest = (self.oldest + 1) & COUNTER_MASK
        _copy_in(self.ring, self.mask, self.head, self.frame, framed)
        self.head = (self.head + framed) & COUNTER_MASK

    def _cut(self):
        """The frame being written out is abandoned: a 0x00 next ends it (the gateway counts one bad frame)."""
        if self.reply_at == self.reply_end:
            self.reply[0] = 0
            self.reply_at = 0
            self.reply_end = 1

    def pump(self):
        """Write what is queued (an answer first, then the ring from the cursor), at most BURST bytes."""
        budget = BURST
        while self.reply_at < self.reply_end and budget > 0:
            n = self._write(self.reply, self.reply_at, min(self.reply_end - self.reply_at, budget))
            if n == 0:
                return
            self.reply_at += n
            budget -= n
        while self.cursor != self.head and budget > 0:
            at = self.cursor & self.mask
            n = min((self.head - self.cursor) & COUNTER_MASK, len(self.ring) - at, budget)
            n = self._write(self.ring, at, n)
            if n == 0:
                return
            fresh = (self.cursor + n - self.high) & COUNTER_MASK
            if fresh <= n:  # bytes past the high mark: their frames' ends are frames sent
                self.sent = (self.sent + _zeros(self.ring, self.mask, self.high, fresh)) & COUNTER_MASK
                self.high = (self.cursor + n) & COUNTER_MASK
            self.cursor = (self.cursor + n) & COUNTER_MASK
            budget -= n

    def _write(self, buf, at, n):
        try:
            written = self.stream.write(buf, at, n)
        except OSError:
            return 0
        if not written:  # None: a non-blocking stream took nothing
            return 0
        self.bytes = (self.bytes + written) & COUNTER_MASK
        return written

    def resend(self, packet):
        """A RESEND (checked by the caller: frame, version, type, length): send again from its sequence number.

        Read byte by byte: a sequence number of 2^30 or more is malformed (it would need a big
        integer on a 32-bit board). Returns False if the RESEND is malformed or for another node.
        """
        if packet[2] | packet[3] << 8 != self.node or packet[HEADER + 3] & 0xC0:
            return False
        wanted = packet[HEADER] | packet[HEADER + 1] << 8 | packet[HEADER + 2] << 16 | packet[HEADER + 3] << 24
        skip = (wanted - self.oldest) & COUNTER_MASK
        if skip > (self.seq - self.oldest) & COUNTER_MASK:  # not held
            if (self.seq - wanted) & COUNTER_MASK < HALF:  # older than the oldest held: from the oldest
                skip = 0
            else:  # not behind the next number (asked by a gateway that knew this board before it restarted): as it was
                skip = -1
        first = self.seq
        if skip >= 0:  # the gateway has every frame before `wanted`: the cursor goes to it, back or forward
            start = self.tail
            for _ in range(skip):
                start = _frame_end(self.ring, self.mask, start)
            self.cursor = start
            if ((start - self.tail) & COUNTER_MASK) > ((self.high - self.tail) & COUNTER_MASK):
                self.high = start
            first = (self.oldest + skip) & COUNTER_MASK
        struct.pack_into("<BBHIIII", self.packet, 0, VERSION, RESENDING, self.node, 0, time.ticks_ms() & COUNTER_MASK,
                         wanted, first)
        append_crc32(self.packet, HEADER + 8)
        framed = _cobs(self.packet, HEADER + 12, self.frame)
        self.reply[0] = 0
        _copy_in(self.reply, COUNTER_MASK, 1, self.frame, framed)
        self.reply_at = 0
        self.reply_end = 1 + framed
        self.resends = (self.resends + 1) & COUNTER_MASK
        self.pump()
        return True

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
