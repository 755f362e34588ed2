"""The packet spec: firmware encoder vs host decoder, framing, and a fuzzed decoder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from helpers import REPO, assert_user_error, run_hostgen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostgen.board.packets import TYPES, SequenceTracker, StreamDecoder, cobs_decode, cobs_encode, decode_frame, encode
from hostgen.util.tools import micropython_executable

FIELD_RANGES = {"B": (0, 255), "b": (-128, 127), "H": (0, 65535), "I": (0, 2**30 - 1), "i": (-(2**31), 2**31 - 1)}


def random_packets(rng: np.random.Generator, count: int) -> list[tuple[str, int, dict]]:
    out = []
    for seq in range(count):
        code = int(rng.integers(1, 6))
        kind, layout, names = TYPES[code]
        values = {}
        for name, letter in zip(names, layout.format[1:]):
            if name:
                low, high = FIELD_RANGES[letter]
                values[name] = int(rng.integers(low, high, endpoint=True))
        out.append((kind, seq, values))
    return out


FIRMWARE_SENDER = """
import sys, json
sys.path.insert(0, {firmware!r})
import packets
class Sink:
    def __init__(self):
        self.data = bytearray()
    def write(self, buf, at, n):
        self.data += buf[at:at + n]
        return n
sink = Sink()
link = packets.Link(sink, {node}, 4096)
for kind, values in json.loads({plan!r}):
    v = values
    if kind == "BOOT":
        link.boot((v["major"], v["minor"], v["patch"]), v["channels"], v["rate_hz"], v["block"], v["window"], v["stride"], v["config_hash"], v["tier2"], v["config_source"])
    elif kind == "ALERT":
        link.alert(v["channel"], v["rule"], v["raised"], v["value"], v["limit"], v["sample"])
    elif kind == "WINDOW":
        link.window(v["channel"], v["decision"], v["tier"], v["rule"], v["score_q8"], v["confidence_q8"], v["start_sample"],
                    (v["mean"], v["rms"], v["peak"], v["crest_q8"], v["kurtosis_q8"], v["zcr"]))
    elif kind == "SUMMARY":
        link.summary(v["channel"], v["windows"], v["first_sample"], v["last_sample"], v["max_score_q8"], v["max_rms"], v["max_peak"])
    else:
        link.heartbeat(v["uptime_ms"], v["heap_free"], v["heap_used"], v["loop_p50_us"], v["loop_p99_us"], v["loop_max_us"],
                       v["overruns"], v["tier2_errors"], v["config_hash"], v["flags"], v["model_decisions"], v["model_unsure"],
                       v["model_late"])
open({out!r}, "wb").write(sink.data)
"""


def test_firmware_encoder_and_host_decoder_agree(tmp_path):
    plan = random_packets(np.random.default_rng(3), 300)
    for _, _, values in plan:  # counters the firmware fills in itself
        values.pop("sent", None), values.pop("dropped", None)
    out = tmp_path / "frames.bin"
    script = FIRMWARE_SENDER.format(firmware=str(REPO / "firmware"), node=4242, out=str(out),
                                    plan=json.dumps([[kind, values] for kind, _, values in plan]))
    result = subprocess.run([micropython_executable(), "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    decoder = StreamDecoder()
    decoded = decoder.feed(out.read_bytes())
    assert decoder.bad_frames == 0 and len(decoded) == len(plan)
    for packet, (kind, seq, values) in zip(decoded, plan):
        assert (packet.kind, packet.seq, packet.node) == (kind, seq, 4242)
        assert {k: v for k, v in packet.fields.items() if k in values} == values
        if kind == "HEARTBEAT":
            assert packet.fields["sent"] == seq and packet.fields["dropped"] == 0
    assert out.read_bytes() == b"".join(encode(kind, 4242, seq, p.ticks_ms, **{**p.fields}) for p, (kind, seq, _) in zip(decoded, plan))


@given(st.binary(max_size=600))
def test_cobs_round_trip(data):
    encoded = cobs_encode(data)
    assert 0 not in encoded
    assert cobs_decode(encoded) == data


def mutate(frame: bytes, rng: np.random.Generator) -> bytes:
    data = bytearray(frame[:-1])
    for _ in range(int(rng.integers(1, 4))):
        action = int(rng.integers(0, 5))
        if action == 0 and data:
            data[int(rng.integers(0, len(data)))] ^= 1 << int(rng.integers(0, 8))
        elif action == 1 and data:
            del data[int(rng.integers(0, len(data))) :]
        elif action == 2:
            data.insert(int(rng.integers(0, len(data) + 1)), int(rng.integers(0, 256)))
        elif action == 3 and data:
            del data[int(rng.integers(0, len(data)))]
        else:
            data[int(rng.integers(0, len(data) + 1)) :] = rng.integers(0, 256, int(rng.integers(1, 40))).astype(np.uint8).tobytes()
    return bytes(data) + b"\x00"


def fuzzed_stream_never_crashes_or_false_accepts(seed):
    """200 mutated frames, interleaved with intact ones."""
    rng = np.random.default_rng(seed)
    originals = {}
    stream = bytearray()
    for kind, seq, values in random_packets(rng, 200):
        frame = encode(kind, 7, seq, 99, **values)
        originals[seq] = frame
        stream += mutate(frame, rng)
        if rng.random() < 0.3:
            stream += frame
    decoder = StreamDecoder()
    for cut in np.split(np.frombuffer(bytes(stream), np.uint8), np.sort(rng.integers(0, len(stream), 10))):
        for packet in decoder.feed(cut.tobytes()):
            assert originals.get(packet.seq) == encode(packet.kind, packet.node, packet.seq, packet.ticks_ms, **packet.fields), "false accept"


def _fuzz(examples: int):
    return settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])(
        given(st.integers(0, 2**32 - 1))(fuzzed_stream_never_crashes_or_false_accepts))


# 500 examples x 200 mutated frames = 100,000 frames in `make test`, 50 of them in the fast tier
test_fuzzed_streams_never_crash_and_never_false_accept = _fuzz(50)
test_more_fuzzed_streams_never_crash_and_never_false_accept = pytest.mark.slow(_fuzz(450))


def test_decoder_resynchronises_after_garbage():
    frames = [encode("ALERT", 1, seq, 0, channel=0, rule=0, raised=1, value=seq, limit=5, sample=seq) for seq in range(5)]
    stream = b"\xff\x13garbage" + frames[0] + frames[1][:7] + b"\x00" + frames[2] + b"noise\x00" + frames[3] + frames[4]
    decoder = StreamDecoder()
    got = [p.seq for p in decoder.feed(stream)]
    assert got == [2, 3, 4] or got == [0, 2, 3, 4]
    assert decoder.bad_frames >= 2


def test_decode_cli_on_a_file(tmp_path):
    path = tmp_path / "stream.bin"
    path.write_bytes(b"junk\x00" + encode("WINDOW", 2, 9, 100, channel=1, decision=2, tier=0, rule=0, score_q8=300,
                                                      start_sample=512, rms=40, peak=90) + b"\x05\x05\x00")
    table = run_hostgen("decode", path)
    assert table.returncode == 0 and "FAULT by fallback" in table.stdout and "2 bad frames" in table.stdout
    lines = run_hostgen("decode", path, "--json").stdout.splitlines()
    assert json.loads(lines[0])["type"] == "WINDOW" and json.loads(lines[-1])["summary"]["bad_frames"] == 2


def test_decode_cli_on_a_pty():
    """A real pseudo-terminal: the writer on one side, `hostgen decode` on the other."""
    controller, device = os.openpty()
    path = os.ttyname(device)
    frames = b"".join(encode("HEARTBEAT", 3, seq, seq, uptime_ms=seq * 1000) for seq in range(20))

    def write():
        for i in range(0, len(frames), 17):
            os.write(controller, frames[i : i + 17])

    process = subprocess.Popen([sys.executable, "-m", "hostgen", "decode", path, "--idle", "1.5"],
                               stdout=subprocess.PIPE, text=True, cwd=REPO)
    writer = threading.Timer(0.5, write)
    writer.start()
    out, _ = process.communicate(timeout=60)
    os.close(controller)
    os.close(device)
    assert process.returncode == 0
    assert out.count("heartbeat") == 20 and "20 packets" in out


def test_decode_cli_missing_source():
    assert_user_error(run_hostgen("decode", "/dev/no-such-port"), "not found")


def _heartbeat(node: int, seq: int) -> bytes:
    return encode("HEARTBEAT", node, seq, seq, uptime_ms=seq)


def _verdicts(frames: list[bytes]) -> tuple[list[str], SequenceTracker]:
    tracker = SequenceTracker()
    return [tracker.check(decode_frame(f[:-1])) for f in frames], tracker


def test_sequence_tracker_reports_gaps_duplicates_reordering_and_restarts_per_node():
    order = [0, 1, 2, 5, 3, 6, 6, 2, 7]  # 3 and 4 skipped (3 then comes late), 6 and 2 repeated
    frames = [_heartbeat(1, s) for s in order] + [_heartbeat(2, s) for s in (10, 11)]
    frames += [encode("BOOT", 1, 0, 0), _heartbeat(1, 1)]
    verdicts, tracker = _verdicts(frames)
    assert verdicts == ["new", "new", "new", "new", "late", "new", "duplicate", "duplicate", "new", "new", "new", "restart", "new"]
    assert tracker.figures()[1] | {"newest_seq": None} == {"packets": 9, "missing": 1, "gaps": 1, "duplicates": 2, "reordered": 1,
                                                           "restarts": 1, "newest_seq": None}
    assert tracker.figures()[2]["packets"] == 2 and tracker.figures()[2]["missing"] == 0


def test_sequence_tracker_wraps_at_2_30_and_resumes():
    top = 2**30 - 1
    verdicts, tracker = _verdicts([_heartbeat(1, top - 1), _heartbeat(1, top), _heartbeat(1, 0), _heartbeat(1, 2), _heartbeat(1, top)])
    assert verdicts == ["new", "new", "new", "new", "duplicate"]
    assert tracker.figures()[1]["missing"] == 1
    resumed = SequenceTracker()
    resumed.resume("link0", 41)
    assert [resumed.check(decode_frame(_heartbeat(1, s)[:-1]), "link0") for s in (41, 42, 44)] == ["duplicate", "new", "new"]


def test_bad_frames_never_exceed_frames_and_a_truncated_last_frame_counts():
    decoder = StreamDecoder()
    decoder.feed(b"\x07" * 600)  # no delimiter for longer than any frame
    decoder.feed(_heartbeat(1, 0) + _heartbeat(1, 1)[:9])
    decoder.finish()
    assert (decoder.frames, decoder.bad_frames) == (3, 2)


def test_decode_cli_reports_sequence_figures(tmp_path):
    path = tmp_path / "stream.bin"
    path.write_bytes(b"".join(_heartbeat(4, s) for s in (0, 1, 3, 2, 3)) + _heartbeat(4, 9)[:5])
    table = run_hostgen("decode", path)
    assert table.returncode == 0, table.stderr
    assert "[LATE: reordered]" in table.stdout and "[DUPLICATE]" in table.stdout
    assert "node 4: 4 packets, 0 missing in 1 gap(s), 1 duplicate(s), 1 reordered" in table.stdout
    summary = json.loads(run_hostgen("decode", path, "--json").stdout.splitlines()[-1])["summary"]
    assert summary["bad_frames"] == 1 and summary["frames"] == 6 and summary["nodes"]["4"]["duplicates"] == 1


def test_firmware_command_constants_are_the_specs():
    """The board's reason codes, op codes and packet types equal the host's (one spec, PACKETS.md)."""
    import re

    from hostgen.board.packets import COMMAND_OPS, COMMAND_REASONS, TYPE_CODES

    def constants(name):
        text = (REPO / "firmware" / name).read_text()
        return {k: int(v) for k, v in re.findall(r"^([A-Z_]+) = (?:const\()?(\d+)\)?$", text, re.M)}

    board = constants("commands.py") | constants("settings.py")
    reasons = {"OK": "ok", "BAD_MAC": "bad MAC", "REPLAYED": "replayed counter", "VALUE_OUT_OF_RANGE": "value out of range",
               "UNKNOWN_NAME": "unknown name", "UNKNOWN_OP": "unknown op", "CHANNEL_OUT_OF_RANGE": "channel out of range",
               "NO_KEY": "no key on the board", "OTHER_NODE": "for another node", "SAVE_FAILED": "could not save",
               "MALFORMED": "malformed"}
    for constant, text in reasons.items():
        assert COMMAND_REASONS[board[constant]] == text, constant
    assert {board["OP_SET_THRESHOLD"]: "set_threshold", board["OP_STATUS"]: "status"} == COMMAND_OPS
    types = constants("packets.py")
    assert all(types[kind] == TYPE_CODES[kind] for kind in ("COMMAND", "ACK", "NACK"))


def test_a_restart_whose_boot_was_lost_is_a_restart_not_duplicates():
    tracker = SequenceTracker()
    before = [encode("HEARTBEAT", 1, seq, 60_000 + seq * 1000) for seq in range(5)]
    after = [encode("HEARTBEAT", 1, seq, 200 + seq * 1000) for seq in range(1, 4)]  # BOOT (seq 0) lost; clock from 0
    verdicts = [tracker.check(decode_frame(f[:-1])) for f in before + after + [after[-1]]]
    assert verdicts == ["new"] * 5 + ["restart", "new", "new", "duplicate"]
    assert tracker.figures()[1]["restarts"] == 1 and tracker.figures()[1]["duplicates"] == 1


@pytest.mark.parametrize("first_run, last_run", [(0, 2), pytest.param(2, None, marks=pytest.mark.slow)], ids=["first", "rest"])
def test_decoder_fuzz_reports_every_gap_and_duplicate(runs, first_run, last_run):
    """A node's stream mutated frame by frame (bit flips, truncation, deletion, duplication, reordering):
    no crash, no false accept, and the tracker's missing count is exactly the sequence numbers lost.

    CI runs 20 x 10,000 frames (the fast tier the first 2); `--runs 100` is the long version (10^6 frames)."""
    total_frames = lost_seen = 0
    for run in range(first_run, last_run or runs(20)):
        rng = np.random.default_rng(run)
        frames = [(seq, encode("HEARTBEAT", 5, seq, seq, uptime_ms=seq, heap_free=int(rng.integers(0, 2**30))))
                  for seq in range(10_000)]
        wire, sent = bytearray(), []
        index = 0
        while index < len(frames):
            seq, frame = frames[index]
            action = rng.random()
            if action < 0.03:  # deleted
                pass
            elif action < 0.06:  # a bit flipped: the CRC must reject it
                damaged = bytearray(frame)
                bit = int(rng.integers(0, 8 * (len(damaged) - 1)))
                damaged[bit // 8] ^= 1 << (bit % 8)
                wire += damaged if damaged[-1] == 0 else damaged + b"\x00"
            elif action < 0.08:  # truncated
                wire += frame[: int(rng.integers(1, len(frame) - 1))] + b"\x00"
            elif action < 0.10:  # duplicated
                wire += frame + frame
                sent += [seq, seq]
            elif action < 0.12 and index + 1 < len(frames):  # swapped with the next
                wire += frames[index + 1][1] + frame
                sent += [frames[index + 1][0], seq]
                index += 1
            else:
                wire += frame
                sent.append(seq)
            index += 1
        decoder, tracker = StreamDecoder(), SequenceTracker()
        accepted = []
        for chunk in np.array_split(np.frombuffer(bytes(wire), np.uint8), 97):
            for packet in decoder.feed(chunk.tobytes()):
                assert packet.fields["uptime_ms"] == packet.seq, "false accept"
                assert encode(packet.kind, packet.node, packet.seq, packet.ticks_ms, **packet.fields) == frames[packet.seq][1]
                if tracker.check(packet) != "duplicate":
                    accepted.append(packet.seq)
        decoder.finish()
        figures = tracker.figures()[5]
        delivered = set(sent)
        never_arrived = set(range(min(delivered), max(delivered) + 1)) - delivered  # before the first: no receiver can know
        assert sorted(accepted) == sorted(delivered), "every intact frame is decoded once, a duplicate dropped"
        assert figures["duplicates"] == len(sent) - len(delivered)
        assert figures["missing"] == len(never_arrived), (figures, len(never_arrived))
        total_frames += len(frames)
        lost_seen += figures["missing"]
    print(f"decoder fuzz: {total_frames} frames, 0 crashes, 0 false accepts, {lost_seen} lost frames all reported")
