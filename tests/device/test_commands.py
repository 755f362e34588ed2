"""Commands from the gateway on the real MicroPython VM: HMAC per RFC 2104 (checked against CPython's
hmac), never applied unauthenticated, replayed or out of range, every one answered, and nothing
allocated while no bytes arrive."""

from __future__ import annotations

import hashlib
import hmac
import json
import os

import pytest

from hostgen.board.packets import COMMAND_REASONS, StreamDecoder, cobs_decode, frame_body
from hostgen.dsp.plan import plan_dsp
from hostgen.gateway.commands import OP_SET_THRESHOLD, OP_STATUS, Command, command_frame

KEY = bytes(range(32))
START = """
import faultline
running = faultline.start()
while faultline.service():
    pass
c = running.commands
print("commands", c.accepted, c.refused, c.bad_frames, c.last_counter)
"""


@pytest.fixture
def env(scenarios, tmp_path):
    scenario = tmp_path / "scenario.i16"
    scenarios["normal"][0][:8000].tofile(scenario)
    return {"FAULTLINE_SCENARIO": str(scenario), "FAULTLINE_LINK": str(tmp_path / "link.bin"),
            "FAULTLINE_COMMANDS": str(tmp_path / "commands.bin")}


def _clear(workspace):
    for stale in workspace.fs.iterdir():
        stale.unlink()


def test_hmac_sha256_matches_cpython(workspace):
    cases = [(b"", b""), (b"key", b"The quick brown fox jumps over the lazy dog"), (KEY, bytes(200)),
             (bytes(range(64)), b"exactly one block of key"), (bytes(100), b"a key longer than a block is hashed first")]
    code = "import commands, binascii\n" + "".join(
        f"print(binascii.hexlify(commands.hmac_sha256({key!r}, memoryview({message!r}))).decode())\n" for key, message in cases)
    result = workspace.run_code(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [hmac.new(k, m, hashlib.sha256).hexdigest() for k, m in cases]


def _answers(path) -> list[tuple[str, int, str]]:
    decoder = StreamDecoder()
    return [(p.kind, p.fields["counter"], COMMAND_REASONS[p.fields["reason"]]) for p in decoder.feed(path.read_bytes())
            if p.kind in ("ACK", "NACK")]


def test_only_authenticated_fresh_valid_commands_are_applied_and_every_one_is_answered(workspace, env, tmp_path):
    _clear(workspace)
    (workspace.fs / "faultline.key").write_text(KEY.hex())
    node = 1
    signed = command_frame(KEY, node, 7, Command(OP_SET_THRESHOLD, "rms.fault", 0, 6000))
    body = bytearray(cobs_decode(signed[:-1])[:-4])
    body[16] ^= 0x01  # the value changed after signing; COBS and CRC made good again
    stream = b"".join([
        command_frame(KEY, node, 1, Command(OP_SET_THRESHOLD, "rms.fault", 0, 5000)),
        command_frame(KEY, node, 1, Command(OP_SET_THRESHOLD, "rms.fault", 0, 9000)),  # replayed counter
        command_frame(bytes(32), node, 2, Command(OP_SET_THRESHOLD, "rms.fault", 0, 9000)),  # wrong key
        command_frame(KEY, node, 3, Command(OP_SET_THRESHOLD, "rms.fault", 0, 0)),
        command_frame(KEY, node, 4, Command(OP_SET_THRESHOLD, "nonsense", 0, 50)),
        command_frame(KEY, node, 5, Command(OP_SET_THRESHOLD, "rms.fault", 7, 50)),
        b"\x13\x37garbage\x00",
        command_frame(KEY, 99, 6, Command(OP_STATUS)),
        command_frame(KEY, node, 6, Command(OP_STATUS)),
        frame_body(bytes(body)),
    ])
    (tmp_path / "commands.bin").write_bytes(stream)
    result = workspace.run_code(START, env)
    assert result.returncode == 0, result.stderr
    assert _answers(tmp_path / "link.bin") == [
        ("ACK", 1, "ok"), ("NACK", 1, "replayed counter"), ("NACK", 2, "bad MAC"), ("NACK", 3, "value out of range"),
        ("NACK", 4, "unknown name"), ("NACK", 5, "channel out of range"), ("NACK", 6, "for another node"),
        ("ACK", 6, "ok"), ("NACK", 7, "bad MAC")]
    assert "commands 2 7 1 6" in result.stdout
    saved = json.loads((workspace.fs / "config.json").read_text())
    rules = [name.replace(">=", ".") for name in plan_dsp(workspace.board, None).calibration.rules]
    assert saved["thresholds"][0][rules.index("rms.fault")] == 5000, "only the authenticated, fresh command was applied"
    assert (workspace.fs / "command.counter").read_text() == "6"
    heartbeats = [p for p in StreamDecoder().feed((tmp_path / "link.bin").read_bytes()) if p.kind == "HEARTBEAT"]
    assert heartbeats, "a status command sends a heartbeat"


def test_without_a_key_every_command_is_refused(workspace, env, tmp_path):
    _clear(workspace)
    (tmp_path / "commands.bin").write_bytes(command_frame(KEY, 1, 1, Command(OP_STATUS)))
    result = workspace.run_code(START, env)
    assert result.returncode == 0, result.stderr
    assert _answers(tmp_path / "link.bin") == [("NACK", 1, "no key on the board")]


IDLE = """
import gc
import faultline


def measure(running, sampler):
    for _ in range(400):
        sampler._feed_block()
        running.process()
    gc.collect()
    gc.disable()
    blocks = 0
    before = gc.mem_alloc()
    while sampler._feed_block():
        running.process()
        blocks += 1
    print("idle", before, gc.mem_alloc(), blocks, running.commands is not None)


measure(faultline.start(), faultline.sampler)
"""


def test_an_idle_command_port_allocates_nothing(workspace, env, tmp_path):
    _clear(workspace)
    fifo = tmp_path / "commands.fifo"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a writer that never writes: the port stays empty
    try:
        result = workspace.run_code(IDLE, {**env, "FAULTLINE_COMMANDS": str(fifo)})
    finally:
        os.close(writer)
    assert result.returncode == 0, result.stderr
    before, after, blocks, present = result.stdout.split("idle ")[1].split()[:4]
    assert present == "True" and int(blocks) >= 500
    assert int(after) == int(before), f"{int(after) - int(before)} bytes allocated over {blocks} blocks"
