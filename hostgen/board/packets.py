"""Host side of the packet spec (firmware/PACKETS.md): decode a byte stream into packets.

The decoder resynchronises on the 0x00 frame delimiter, so garbage, truncated frames
and bad CRCs cost only the frames they touch; each is counted as a bad frame.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from dataclasses import dataclass, field

from hostgen.constants import ALERT_RULES, CONFIG_SOURCE_TEXTS, DECISIONS, MACHINE_ALERT_RULES, PACKET_TYPES, PACKET_VERSION, TIERS

HEADER = struct.Struct("<BBHII")
LAYOUTS = {
    "BOOT": (struct.Struct("<BBBBHHHHIBBH"),
             ("major", "minor", "patch", "channels", "rate_hz", "block", "window", "stride", "config_hash", "tier2",
              "config_source", None)),
    "ALERT": (struct.Struct("<BBBBiiI"), ("channel", "rule", "raised", None, "value", "limit", "sample")),
    "WINDOW": (struct.Struct("<BBBbHHIiiiiii"),
               ("channel", "decision", "tier", "rule", "score_q8", "confidence_q8", "start_sample",
                "mean", "rms", "peak", "crest_q8", "kurtosis_q8", "zcr")),
    "SUMMARY": (struct.Struct("<BBBBIIIHHii"),
                ("channel", None, None, None, "windows", "first_sample", "last_sample", "max_score_q8", None, "max_rms",
                 "max_peak")),
    "HEARTBEAT": (struct.Struct("<IIIHHIIIIIIBBBBIII"),
                  ("uptime_ms", "heap_free", "heap_used", "loop_p50_us", "loop_p99_us", "loop_max_us", "overruns", "sent",
                   "dropped", "tier2_errors", "config_hash", "flags", None, None, None, "model_decisions", "model_unsure",
                   "model_late")),
    "COMMAND": (struct.Struct("<BBHi16s32s"), ("op", "channel", None, "value", "name", "mac")),
    "ACK": (struct.Struct("<IIBBH"), ("counter", "last_counter", "op", "reason", None)),
    "NACK": (struct.Struct("<IIBBH"), ("counter", "last_counter", "op", "reason", None)),
    "RESEND": (struct.Struct("<I"), ("first_seq",)),
    "RESENDING": (struct.Struct("<II"), ("wanted", "first_seq")),
}
LINK_PACKETS = ("RESEND", "RESENDING")  # between a link's two ends, outside the board's sequence
TYPES = {code: (name, *LAYOUTS[name]) for code, name in enumerate(PACKET_TYPES, start=1)}
TYPE_CODES = {name: code for code, (name, _, _) in TYPES.items()}
COMMAND_OPS = {1: "set_threshold", 2: "status"}
COMMAND_REASONS = ("ok", "bad MAC", "replayed counter", "value out of range", "unknown name", "unknown op",
                   "channel out of range", "no key on the board", "for another node", "could not save", "malformed")
MAC_BYTES = 32  # HMAC-SHA256 over the header and the payload before it
MAX_FRAME = 256


@dataclass(frozen=True)
class Packet:
    kind: str
    node: int
    seq: int
    ticks_ms: int
    fields: dict = field(hash=False)

    def as_dict(self) -> dict:
        return {"type": self.kind, "node": self.node, "seq": self.seq, "ticks_ms": self.ticks_ms, **self.fields}


def cobs_encode(data: bytes) -> bytes:
    out, block = bytearray(), bytearray()
    for byte in data:
        if byte == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
        else:
            block.append(byte)
            if len(block) == 254:
                out += b"\xff" + block
                block = bytearray()
    return bytes(out + bytes([len(block) + 1]) + block)


def cobs_decode(data: bytes) -> bytes | None:
    if 0xFF in data:  # a 254-byte run: code bytes that stand for no zero (never in a packet shorter than that)
        return _cobs_decode_runs(data)
    out, i, n = bytearray(data), 0, len(data)
    while i < n:  # every code byte but the first becomes the zero it stands for
        code = data[i]
        if code == 0 or i + code > n:
            return None
        out[i] = 0
        i += code
    return bytes(out[1:])


def _cobs_decode_runs(data: bytes) -> bytes | None:
    parts, i, n = [], 0, len(data)
    while i < n:
        code = data[i]
        if code == 0 or i + code > n:
            return None
        parts.append(data[i + 1 : i + code])
        i += code
        if code < 0xFF and i < n:
            parts.append(b"\x00")
    return b"".join(parts)


def packet_body(kind: str, node: int, seq: int, ticks_ms: int, **values) -> bytes:
    """Header and payload, before the CRC; fields not given are zero."""
    code = TYPE_CODES[kind]
    _, layout, names = TYPES[code]
    letters = [c for c in layout.format.lstrip("<") if not c.isdigit()]
    payload = layout.pack(*(values.get(name, b"" if letter == "s" else 0) if name else 0 for name, letter in zip(names, letters)))
    return HEADER.pack(PACKET_VERSION, code, node, seq, ticks_ms) + payload


def frame_body(body: bytes) -> bytes:
    """CRC-32 appended, COBS-encoded, delimited: what goes on the wire."""
    return cobs_encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"


def encode(kind: str, node: int, seq: int, ticks_ms: int, **values) -> bytes:
    """One framed packet; the host-side twin of the firmware's encoder (used by tests and the gateway)."""
    return frame_body(packet_body(kind, node, seq, ticks_ms, **values))


def decode_frame(frame: bytes) -> Packet | None:
    """A packet from one frame (without its delimiter), or None if the frame is bad."""
    packet = cobs_decode(frame)
    return None if packet is None else decode_packet(packet)


def decode_packet(packet: bytes) -> Packet | None:
    """A packet from its bytes (header, payload, CRC: a frame once COBS-decoded), or None if they are bad."""
    if len(packet) < HEADER.size + 4:
        return None
    body, (crc,) = packet[:-4], struct.unpack("<I", packet[-4:])
    if zlib.crc32(body) != crc:
        return None
    version, code, node, seq, ticks = HEADER.unpack_from(body)
    if version != PACKET_VERSION or code not in TYPES:
        return None
    kind, layout, names = TYPES[code]
    if len(body) != HEADER.size + layout.size:
        return None
    values = layout.unpack_from(body, HEADER.size)
    return Packet(kind, node, seq, ticks, {name: value for name, value in zip(names, values) if name})


@dataclass
class StreamDecoder:
    """Feed bytes as they arrive; get packets back; bad frames are counted and skipped."""

    frames: int = 0
    bad_frames: int = 0
    bytes_in: int = 0
    _pending: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Packet]:
        return [packet for packet, _ in self.feed_frames(data)]

    def feed_frames(self, data: bytes) -> list[tuple[Packet, bytes]]:
        """As feed, with each packet's bytes (header, payload, CRC): what the board sent, unframed."""
        self.bytes_in += len(data)
        self._pending += data
        packets = []
        while True:
            end = self._pending.find(0)
            if end < 0:
                if len(self._pending) > MAX_FRAME:  # no delimiter for longer than any frame: one bad frame
                    self.frames += 1
                    self.bad_frames += 1
                    self._pending.clear()
                return packets
            frame = bytes(self._pending[:end])
            del self._pending[: end + 1]
            if not frame:
                continue
            self.frames += 1
            raw = cobs_decode(frame)
            packet = None if raw is None else decode_packet(raw)
            if packet is None:
                self.bad_frames += 1
            else:
                packets.append((packet, raw))

    def finish(self) -> None:
        """At the end of a stream: bytes after the last delimiter are a truncated frame, counted as bad."""
        if self._pending:
            self.frames += 1
            self.bad_frames += 1
            self._pending.clear()


SEQ_MODULUS = 1 << 30  # PACKETS.md: counters wrap at 2^30


class FrameRing:
    """The host twin of a board's transmit ring (firmware/packets.py Link): its newest frames, `size` bytes at most.

    What PACKETS.md says a board does with a RESEND: send again from the first frame it holds at or
    after the sequence number wanted (from its oldest, if that one is gone); nothing when the
    number is not behind the board's next one. tests/device/test_resend.py holds it to the firmware.
    """

    def __init__(self, size: int):
        self.size = size
        self.frames: deque[tuple[int, bytes]] = deque()
        self.bytes = 0

    def add(self, seq: int, frame: bytes) -> None:
        while self.frames and self.bytes + len(frame) > self.size:
            self.bytes -= len(self.frames.popleft()[1])
        self.frames.append((seq, frame))
        self.bytes += len(frame)

    def clear(self) -> None:
        self.frames.clear()
        self.bytes = 0

    def resend(self, wanted: int, next_seq: int) -> tuple[int, bytes]:
        """The sequence number the board sends from, and the frames it sends again."""
        behind = (next_seq - wanted) % SEQ_MODULUS
        if 0 < behind < SEQ_MODULUS // 2:
            for at, (seq, _) in enumerate(self.frames):
                if (next_seq - seq) % SEQ_MODULUS <= behind:
                    return seq, b"".join(frame for _, frame in list(self.frames)[at:])
        return next_seq, b""
SEQ_MEMORY = 1024  # how far behind the newest a late packet is still told from a duplicate
RESTART_TICKS_MS = 10_000  # an older sequence number whose clock is this far behind the newest's: the board restarted


@dataclass
class NodeSequence:
    """What one node's sequence numbers say: packets missing, duplicated, late (reordered), restarts."""

    packets: int = 0
    missing: int = 0  # sequence numbers skipped and not (yet) seen late
    gaps: int = 0  # times the sequence jumped forward
    duplicates: int = 0
    reordered: int = 0  # packets that came after a later one (each filled a gap)
    restarts: int = 0  # BOOT packets after the first: the board started again, its sequence with it
    newest: int | None = None
    newest_ticks: int | None = None
    seen: set = field(default_factory=set, repr=False)  # sequence numbers within SEQ_MEMORY below newest

    def figures(self) -> dict:
        return {"packets": self.packets, "missing": self.missing, "gaps": self.gaps, "duplicates": self.duplicates,
                "reordered": self.reordered, "restarts": self.restarts, "newest_seq": self.newest}


class SequenceTracker:
    """Per node, checks each packet's sequence number against the ones before it.

    `check` says what a packet is: "link" (RESEND, RESENDING: no sequence number of the node's),
    "new" (in order or after a gap), "late" (older than the
    newest but not seen before: reordering), "duplicate" (seen before: drop it) or
    "restart" (a BOOT: the node's sequence starts again; or, its BOOT lost, an older sequence
    number whose ticks_ms is more than RESTART_TICKS_MS behind the newest packet's). Sequence
    numbers wrap at 2^30; a jump of more than half the range backwards counts as late (or a
    restart), not as a huge gap.
    """

    def __init__(self):
        self.nodes: dict = {}

    def node(self, key) -> NodeSequence:
        if key not in self.nodes:
            self.nodes[key] = NodeSequence()
        return self.nodes[key]

    def resume(self, key, newest: int) -> None:
        """Carry on from a sequence number seen earlier (a gateway restarting from its spool).

        The gateway commits a board's packets in sequence, so every number up to `newest` was
        committed or counted missing: within SEQ_MEMORY, each is a duplicate if it comes again.
        """
        state = self.node(key)
        state.newest = newest
        state.seen = {(newest - back) % SEQ_MODULUS for back in range(SEQ_MEMORY)}

    def check(self, packet: Packet, key=None) -> str:
        if packet.kind in LINK_PACKETS:
            return "link"
        state = self.node(packet.node if key is None else key)
        seq = packet.seq
        if packet.kind == "BOOT":
            verdict = "new" if state.newest is None else "restart"
            if verdict == "restart" and seq == state.newest:
                state.duplicates += 1
                return "duplicate"
            state.restarts += verdict == "restart"
            return self._start(state, packet, verdict)
        if state.newest is None:
            return self._start(state, packet, "new")
        ahead = (seq - state.newest) % SEQ_MODULUS
        behind = ahead == 0 or ahead >= SEQ_MODULUS // 2 or seq in state.seen
        if behind and state.newest_ticks is not None \
                and RESTART_TICKS_MS < (state.newest_ticks - packet.ticks_ms) % SEQ_MODULUS < SEQ_MODULUS // 2:
            state.restarts += 1
            return self._start(state, packet, "restart")
        if ahead == 0 or seq in state.seen:
            state.duplicates += 1
            return "duplicate"
        state.packets += 1
        if ahead < SEQ_MODULUS // 2:
            if ahead > 1:
                state.gaps += 1
                state.missing += ahead - 1
            state.newest = seq
            state.newest_ticks = packet.ticks_ms
            state.seen.add(seq)
            if len(state.seen) > 2 * SEQ_MEMORY:
                state.seen = {s for s in state.seen if (state.newest - s) % SEQ_MODULUS < SEQ_MEMORY}
            return "new"
        state.reordered += 1
        if state.missing:
            state.missing -= 1
        state.seen.add(seq)
        return "late"

    @staticmethod
    def _start(state: NodeSequence, packet: Packet, verdict: str) -> str:
        state.packets += 1
        state.newest = packet.seq
        state.newest_ticks = packet.ticks_ms
        state.seen = {packet.seq}
        return verdict

    def figures(self) -> dict:
        return {key: state.figures() for key, state in self.nodes.items()}

    def totals(self) -> dict:
        names = ("packets", "missing", "gaps", "duplicates", "reordered", "restarts")
        return {name: sum(getattr(state, name) for state in self.nodes.values()) for name in names}


def describe(packet: Packet, rule_names: list[str] | None = None) -> str:
    """One line a person can read at a glance; `rule_names` are the build's fallback rules."""
    f = packet.fields
    if packet.kind == "ALERT":
        rule = ALERT_RULES[f["rule"]] if f["rule"] < len(ALERT_RULES) else f"rule {f['rule']}"
        state = "RAISED" if f["raised"] else "cleared"
        kind = "fast path" if rule in MACHINE_ALERT_RULES else "sensor"
        return f"{kind} {rule} {state} on ch{f['channel']} at sample {f['sample']}: {f['value']} (limit {f['limit']})"
    if packet.kind == "WINDOW":
        tier = TIERS[f["tier"]] if f["tier"] < len(TIERS) else f"tier {f['tier']}"
        decision = DECISIONS[f["decision"]] if f["decision"] < len(DECISIONS) else f["decision"]
        rule = "-" if f["rule"] < 0 else (rule_names[f["rule"]] if rule_names and f["rule"] < len(rule_names) else f"#{f['rule']}")
        by = f"{tier} ({f['confidence_q8'] / 256:.0%} sure)" if tier == "model" else tier
        return (f"window ch{f['channel']} from sample {f['start_sample']}: {decision.upper()} by {by}, rule {rule}, "
                f"score {f['score_q8'] / 256:.2f}, rms {f['rms']}, peak {f['peak']}, kurtosis {f['kurtosis_q8'] / 256:.1f}")
    if packet.kind == "SUMMARY":
        return (f"summary ch{f['channel']}: {f['windows']} normal windows, samples {f['first_sample']}..{f['last_sample']}, "
                f"max score {f['max_score_q8'] / 256:.2f}, max rms {f['max_rms']}, max peak {f['max_peak']}")
    if packet.kind == "HEARTBEAT":
        return (f"heartbeat up {f['uptime_ms'] / 1000:.1f} s, loop p50/p99/max {f['loop_p50_us']}/{f['loop_p99_us']}/"
                f"{f['loop_max_us']} us, heap free {f['heap_free']}, overruns {f['overruns']}, sent {f['sent']}, "
                f"dropped {f['dropped']}, model decided {f['model_decisions']} (unsure {f['model_unsure']}, late {f['model_late']}, "
                f"errors {f['tier2_errors']}), flags {f['flags']:#x}")
    if packet.kind in ("ACK", "NACK"):
        op = COMMAND_OPS.get(f["op"], f"op {f['op']}")
        reason = COMMAND_REASONS[f["reason"]] if f["reason"] < len(COMMAND_REASONS) else f"reason {f['reason']}"
        return f"{packet.kind.lower()} of command {f['counter']} ({op}): {reason}; last accepted {f['last_counter']}"
    if packet.kind == "RESEND":
        return f"resend from seq {f['first_seq']}"
    if packet.kind == "RESENDING":
        gone = (f["first_seq"] - f["wanted"]) % SEQ_MODULUS
        lost = f", {gone} no longer held" if 0 < gone < SEQ_MODULUS // 2 else ""
        return f"resending from seq {f['first_seq']} (asked for {f['wanted']}{lost})"
    if packet.kind == "COMMAND":
        name = f["name"].rstrip(b"\0").decode(errors="replace")
        return f"command {packet.seq}: {COMMAND_OPS.get(f['op'], f['op'])} {name} ch{f['channel']} = {f['value']}"
    source = CONFIG_SOURCE_TEXTS[f["config_source"]] if f["config_source"] < len(CONFIG_SOURCE_TEXTS) else f["config_source"]
    return (f"boot faultline {f['major']}.{f['minor']}.{f['patch']}, {f['channels']} ch at {f['rate_hz']} Hz, "
            f"window {f['window']}/{f['stride']}, tier 2 {'model' if f['tier2'] else 'fallback'}, settings: {source}")
