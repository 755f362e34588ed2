"""The board's transmit ring and RESEND on the real MicroPython VM: resent frames are byte-identical,
a frame no longer held gives the oldest held (as the host's FrameRing, the benchmark boards' ring,
says), malformed RESENDs are ignored and counted, a UART that takes nothing or a part loses nothing
while the ring has room, and every position stays exact across the 2^30 wrap."""

from __future__ import annotations

import json

import pytest

from hostgen.board.packets import SEQ_MODULUS, FrameRing, StreamDecoder, cobs_decode, encode, frame_body

NODE = 1
RING = 512
# Link and Commands as the firmware runs them; the UART and the command port are the test's: the
# UART takes at most `room` bytes a write (None when it takes nothing, as a full non-blocking UART
# answers) or raises OSError; what it took is printed at each "mark" as hex.
HARNESS = """
import json
import commands
import packets


class Uart:
    def __init__(self):
        self.out = bytearray()
        self.room = -1
        self.failing = False

    def write(self, buf, at, n):
        if self.failing:
            raise OSError(11)
        if self.room >= 0:
            n = min(n, self.room)
        if n == 0:
            return None
        self.out.extend(bytes(buf[at : at + n]))
        return n


class Port:
    def __init__(self):
        self.data = b""

    def readinto(self, buf):
        n = min(len(buf), len(self.data))
        buf[:n] = self.data[:n]
        self.data = self.data[n:]
        return n


class Board:
    def __init__(self, link):
        self.link = link


uart = Uart()
link = packets.Link(uart, NODE, RING)
port = Port()
receiver = commands.Commands(Board(link), port)
for op in json.loads(PLAN):
    if op[0] == "start":  # the sequence, every position and the counters just below the 2^30 wrap
        link.seq = link.oldest = op[1]
        link.head = link.cursor = link.tail = link.high = op[2]
        link.sent = link.bytes = op[3]
    elif op[0] == "send":
        for i in range(op[1]):
            kind = (link.seq + i) % 3
            if kind == 0:
                link.alert(0, 0, 1, 5000 + link.seq, 4000, link.seq * 8)
            elif kind == 1:
                link.window(0, 2, 0, 1, 300, 0, link.seq * 128, (link.seq, 900, 4000, 1200, 2000, 40))
            else:
                link.heartbeat(link.seq, 1000, 2000, 40, 90, 200, 0, 0, 1234, 0, 0, 0, 0)
    elif op[0] == "receive":
        port.data = bytes.fromhex(op[1])
        while port.data:
            receiver.poll()
    elif op[0] == "pump":
        for _ in range(op[1]):
            link.pump()
    elif op[0] == "room":
        uart.room = op[1]
    elif op[0] == "failing":
        uart.failing = op[1]
    elif op[0] == "mark":
        print("mark", uart.out.hex() or "-", link.seq, link.sent, link.dropped, link.resends, receiver.resends_ignored,
              receiver.bad_frames, link.bytes)
        uart.out = bytearray()
"""


def run(workspace, plan: list) -> list[dict]:
    code = f"NODE = {NODE}\nRING = {RING}\nPLAN = {json.dumps(json.dumps(plan))}\n" + HARNESS
    result = workspace.run_code(code)
    assert result.returncode == 0, result.stderr
    marks = []
    for line in result.stdout.splitlines():
        if line.startswith("mark "):
            out, seq, sent, dropped, resends, ignored, bad, written = line.split()[1:]
            marks.append({"out": b"" if out == "-" else bytes.fromhex(out), "seq": int(seq), "sent": int(sent),
                          "dropped": int(dropped), "resends": int(resends), "ignored": int(ignored), "bad": int(bad),
                          "bytes": int(written)})
    return marks


def resend(first_seq: int, node: int = NODE) -> list:
    return ["receive", encode("RESEND", node, 0, 0, first_seq=first_seq).hex()]


def frames(data: bytes) -> list[bytes]:
    """The frames in a stream, each with its delimiter (an empty frame, a lone 0x00, left out)."""
    return [part + b"\x00" for part in data.split(b"\x00")[:-1] if part]


def answer(frame: bytes) -> tuple[int, int]:
    packet = StreamDecoder().feed(frame)[0]
    assert packet.kind == "RESENDING" and packet.node == NODE
    return packet.fields["wanted"], packet.fields["first_seq"]


def test_resend_sends_the_same_bytes_again_and_a_frame_no_longer_held_gives_the_oldest(workspace):
    plan = [["send", 6], ["mark"], resend(2), ["pump", 10], ["mark"], resend(6), ["mark"],
            ["send", 30], ["mark"], resend(0), ["pump", 10], ["mark"]]
    first, again, nothing, more, oldest = run(workspace, plan)
    sent = frames(first["out"])
    assert len(sent) == 6 and [p.seq for p in StreamDecoder().feed(first["out"])] == list(range(6))
    assert again["out"][0] == 0, "a 0x00 first: it ends a frame the rewind cut short"
    replies = frames(again["out"])
    assert answer(replies[0]) == (2, 2) and replies[1:] == sent[2:], "byte for byte the frames sent before"
    assert answer(nothing["out"]) == (6, 6) and len(frames(nothing["out"])) == 1, "nothing missing: nothing resent"
    ring = FrameRing(RING)
    for seq, frame in enumerate(sent + frames(more["out"])):
        ring.add(seq, frame)
    replies = frames(oldest["out"])
    held_from, held = ring.resend(0, 36)
    assert 0 < held_from < 30 and answer(replies[0]) == (0, held_from), "gone: the answer names the oldest held"
    assert b"".join(replies[1:]) == held, "the firmware and the host's FrameRing hold the same frames"
    assert oldest["sent"] == 36 and oldest["resends"] == 3 and oldest["dropped"] == 0, "resent frames are not sent twice"


@pytest.mark.parametrize("wanted", [0, 1, 5, 17, 18, 19, 40, SEQ_MODULUS - 1, SEQ_MODULUS // 2])
def test_the_benchmark_boards_ring_answers_as_the_firmware_does(workspace, wanted):
    plan = [["send", 19], ["mark"], resend(wanted), ["pump", 20], ["mark"]]
    before, after = run(workspace, plan)
    ring = FrameRing(RING)
    for seq, frame in enumerate(frames(before["out"])):
        ring.add(seq, frame)
    first, data = ring.resend(wanted, 19)
    replies = frames(after["out"])
    assert answer(replies[0]) == (wanted, first) and b"".join(replies[1:]) == data


def test_malformed_resends_are_ignored_and_counted(workspace):
    body = bytearray(cobs_decode(encode("RESEND", NODE, 0, 0, first_seq=3)[:-1])[:-4])
    too_long = frame_body(bytes(body) + b"\x00")
    bad_crc = bytearray(encode("RESEND", NODE, 0, 0, first_seq=3))
    bad_crc[-2] ^= 0x01
    plan = [["send", 5], ["mark"],
            ["receive", too_long.hex()], resend(3, node=7), resend(SEQ_MODULUS),  # 2^30: no sequence number of a board
            ["receive", bytes(bad_crc).hex()], ["receive", "ff" * 300 + "00"], ["pump", 5], ["mark"], resend(3), ["mark"]]
    _, ignored, healthy = run(workspace, plan)
    assert ignored["out"] == b"" and ignored["ignored"] == 3 and ignored["bad"] == 2 and ignored["resends"] == 0
    assert answer(frames(healthy["out"])[0]) == (3, 3), "and the link still answers the next one"


def test_a_uart_that_takes_nothing_or_a_part_loses_nothing_while_the_ring_has_room(workspace):
    plan = [["failing", True], ["send", 3], ["failing", False], ["room", 0], ["send", 3], ["mark"],
            ["room", 5], ["pump", 200], ["room", -1], ["send", 1], ["mark"],
            ["room", 0], ["send", 20], ["room", -1], ["pump", 40], ["mark"]]
    blocked, drained, overflowed = run(workspace, plan)
    assert blocked["out"] == b"" and blocked["sent"] == 0 and blocked["dropped"] == 0
    decoder = StreamDecoder()
    assert [p.seq for p in decoder.feed(drained["out"])] == list(range(7)) and decoder.bad_frames == 0
    assert drained["sent"] == 7 and drained["dropped"] == 0
    decoder = StreamDecoder()
    seqs = [p.seq for p in decoder.feed(overflowed["out"])]
    dropped = overflowed["dropped"]
    assert dropped > 0 and seqs == list(range(7 + dropped, 27)), "only what the ring had to overwrite is gone, and counted"
    assert overflowed["sent"] + dropped == 27


def test_positions_sequence_numbers_and_counters_stay_exact_across_the_2_30_wrap(workspace):
    start_seq, start_position, start_count = SEQ_MODULUS - 4, SEQ_MODULUS - 100, SEQ_MODULUS - 3
    plan = [["start", start_seq, start_position, start_count], ["send", 8], ["mark"], resend(SEQ_MODULUS - 2), ["pump", 10],
            ["mark"]]
    sent, again = run(workspace, plan)
    seqs = [p.seq for p in StreamDecoder().feed(sent["out"])]
    assert seqs == [(start_seq + i) % SEQ_MODULUS for i in range(8)]
    assert sent["sent"] == 5 and sent["bytes"] == (start_count + len(sent["out"])) % SEQ_MODULUS
    replies = frames(again["out"])
    assert answer(replies[0]) == (SEQ_MODULUS - 2, SEQ_MODULUS - 2) and replies[1:] == frames(sent["out"])[2:]


def test_a_resend_moves_the_cursor_forward_past_frames_the_gateway_has(workspace):
    """Frames queued by an earlier rewind that the gateway has since received are not sent a third time."""
    plan = [["send", 8], ["mark"], ["room", 0], resend(1), ["room", -1], resend(6), ["pump", 10], ["mark"]]
    sent, again = run(workspace, plan)
    replies = frames(again["out"])
    assert [answer(frame) for frame in replies[:1]] == [(6, 6)] and replies[1:] == frames(sent["out"])[6:]
