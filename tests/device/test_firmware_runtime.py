"""Firmware properties on the real MicroPython VM: no allocation in steady state, tier-2
dispatch and containment, heap need, several channels."""

from __future__ import annotations

import os

import numpy as np
import pytest
from device_support import machine_run, scenario_machine

from hostgen.board.image import firmware_files
from hostgen.board.packets import encode
from hostgen.board.replay import FirmwareWorkspace, replay
from hostgen.board.unix_port import unix_heap_bytes
from hostgen.config.board import board_names, load_board
from hostgen.data import synthetic as dataset

STEADY_STATE = """
import gc
import faultline


def measure(running, sampler):
    # locals only: a new global would grow the module dict and count as an allocation
    for _ in range(400):  # warm-up: first windows, a summary, a heartbeat
        sampler._feed_block()
        running.process()
    running.windows, running.withheld = 0x3FFFFFFF - 100, 0x3FFFFFFF - 5  # both wrap at 2**30 in the measured run
    gc.collect()
    gc.disable()  # GC runs only here, at this chosen point, never inside the loop
    windows = running.windows
    resends = running.link.resends
    ignored = running.commands.resends_ignored
    blocks = 0
    before = gc.mem_alloc()
    while sampler._feed_block():
        running.process()
        blocks += 1
    after = gc.mem_alloc()
    print("steady", before, after, (running.windows - windows) & 0x3FFFFFFF, blocks, running.link.sent,
          running.link.resends - resends, running.commands.resends_ignored - ignored, running.windows, running.withheld)


measure(faultline.start(), faultline.sampler)
"""


@pytest.fixture(scope="module")
def mixed_recording():
    """Normal running, developed faults, an impact and a stuck spell: every packet type, 1,000+ windows."""
    machine, rng = scenario_machine(41)
    parts = []
    for _ in range(4):
        parts += [machine_run(machine, 20, rng), machine_run(machine, 15, rng, fault_counts=2500.0)]
    x = np.concatenate(parts)
    x[70_000:70_030] += 20_000
    x[100_000:101_000] = x[100_000]
    return np.clip(x, -32768, 32767).astype(np.int16).reshape(-1, 1)


def _resends() -> bytes:
    """RESENDs the gateway might send (from far back, the recent past, ahead) and malformed ones, a pipe's worth."""
    frames = [encode("RESEND", 1, 0, 0, first_seq=wanted) for wanted in (0, 40, 200, 10**6)]
    frames += [encode("RESEND", 9, 0, 0, first_seq=3), encode("RESEND", 1, 0, 0, first_seq=2**30)]  # another node; 2^30
    stream = b"".join(frames)
    return stream * (60_000 // len(stream))


def test_steady_state_loop_allocates_nothing(board, mixed_recording, tmp_path):
    """Nor does the transmit ring, or answering RESENDs (a pipe full of them, read a burst a block)."""
    scenario = tmp_path / "scenario.i16"
    mixed_recording.tofile(scenario)
    fifo = tmp_path / "commands.fifo"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    try:
        os.write(writer, _resends())
        with FirmwareWorkspace(board) as workspace:
            result = workspace.run_code(STEADY_STATE, {"FAULTLINE_SCENARIO": str(scenario), "FAULTLINE_LINK": str(tmp_path / "link.bin"),
                                                       "FAULTLINE_COMMANDS": str(fifo)})
    finally:
        os.close(writer)
    assert result.returncode == 0, result.stderr
    line = next(text for text in result.stdout.splitlines() if text.startswith("steady"))
    before, after, windows, blocks, sent, resends, ignored, window_count, withheld_count = map(int, line.split()[1:])
    assert windows >= 1000 and blocks >= 16_000 and resends >= 1000 and ignored >= 500
    assert window_count < 1000 and withheld_count < 1000, "the counters wrapped at 2**30 instead of growing into big ints"
    assert after == before, f"{after - before} bytes allocated over {windows} windows, {sent} packets, {resends} RESENDs"


MODEL_INTERFACE = """NAME = "double"
SHA256 = "0" * 64
KIND = "classifier"
CHANNELS = 1
CLASSES = 2
def prepare(window, channels):
    pass
def begin():
    pass
def step():
    return True
"""
MODEL_DOUBLES = {
    "raises": MODEL_INTERFACE + "def scores(out):\n    raise RuntimeError('kernel failed')\n",
    "unsure": MODEL_INTERFACE + "def scores(out):\n    out[0] = 120\n    out[1] = 136\n    return 1\n",
    "confident_fault": MODEL_INTERFACE + "def scores(out):\n    out[0] = 10\n    out[1] = 246\n    return 1\n",
}


@pytest.mark.parametrize("behaviour, tier", [("raises", 2), ("unsure", 3), ("confident_fault", 1), ("advisory", 5)])
def test_tier2_model_is_used_when_confident_and_contained_when_not(board, scenarios, behaviour, tier):
    """A stand-in model module (the compiled engine's, or a TFLM C module's, interface) drives the tier-2 dispatch."""
    recording = scenarios["normal"][0][:12_000]
    modules = firmware_files(board, None, "test")
    config = modules["faultline_config.py"].decode()
    assert "MODEL_MODULE = None" in config
    decides = "MODEL_DECIDES = const(%d)" % (behaviour != "advisory")
    config = config.replace("MODEL_MODULE = None", 'MODEL_MODULE = "model_double"').replace("MODEL_DECIDES = const(0)", decides)
    modules |= {"faultline_config.py": config.encode(),
                "model_double.py": MODEL_DOUBLES["confident_fault" if behaviour == "advisory" else behaviour].encode()}
    result = replay(board, recording, modules=modules)
    boot = next(p for p in result.packets if p.kind == "BOOT")
    if behaviour == "advisory":
        assert boot.fields["tier2"] == 2 and "tier2=advisory" in result.console
    else:
        assert boot.fields["tier2"] == 1 and "tier2=model" in result.console
    windows = [p.fields for p in result.packets if p.kind == "WINDOW"]
    beats = [p.fields for p in result.packets if p.kind == "HEARTBEAT"]
    if behaviour == "raises":
        assert beats[-1]["tier2_errors"] > 80, "every window's failure is counted; the loop goes on"
        assert all(w["tier"] == 2 for w in windows)
    elif behaviour == "unsure":
        assert all(w["tier"] == 3 and w["confidence_q8"] == 136 for w in windows)
    elif behaviour == "advisory":  # the model is sure each window is a fault, and the fallback's normal stands
        assert all(w["tier"] == 5 and w["confidence_q8"] == 246 and w["rule"] >= 0 for w in windows)
        assert sum(p.fields["windows"] for p in result.packets if p.kind == "SUMMARY") > 80
        assert beats[-1]["model_decisions"] == 0
    else:
        assert len(windows) > 80 and all(w["tier"] == 1 and w["decision"] == 2 and w["rule"] == -1 for w in windows)
    assert beats[-1]["flags"] & 8


def test_firmware_fits_the_unix_port_heap_with_diag_and_selftest(board, scenarios, tmp_path):
    """The firmware, diag and selftest fit the heap unix-port runs give the smallest board."""
    scenario = tmp_path / "scenario.i16"
    scenarios["impact"][0].tofile(scenario)
    code = (
        "import gc\nimport faultline\nrunning = faultline.start()\nwhile faultline.service():\n    pass\n"
        "import diag\ndiag.status()\ndiag.health()\ndiag.last(20)\ndiag.thresholds()\ndiag.sensor()\n"
        "assert diag.selftest()\ngc.collect()\nprint('heap', gc.mem_alloc())\n"
    )
    with FirmwareWorkspace(board) as workspace:
        result = workspace.run_code(code, {"FAULTLINE_SCENARIO": str(scenario), "FAULTLINE_LINK": str(tmp_path / "l.bin")},
                                    heap_bytes=min(unix_heap_bytes(load_board(name)) for name in board_names()))
    assert result.returncode == 0, result.stderr


def test_two_channels(board, tmp_path, app_with_channels):
    rng = np.random.default_rng(51)
    calm = dataset.synthesize(dataset.random_machine(rng, False), 12_000, rng)
    busy = dataset.synthesize(dataset.random_machine(rng, True), 12_000, rng)
    busy[8000:8030] = 30_000
    result = replay(board, np.stack([calm, busy], axis=1), app_path=str(app_with_channels))
    alerts = [p.fields for p in result.packets if p.kind == "ALERT"]
    assert alerts and all(a["channel"] == 1 for a in alerts)
    boot = next(p for p in result.packets if p.kind == "BOOT")
    assert boot.fields["channels"] == 2
    channels = {p.fields["channel"] for p in result.packets if p.kind in ("WINDOW", "SUMMARY")}
    assert channels == {0, 1}


@pytest.fixture
def app_with_channels(tmp_path):
    from helpers import app_with

    return app_with(tmp_path, channels="2")


def test_every_judged_window_is_sent_when_a_recording_ends(board, tmp_path):
    """The last windows' decisions are held for the sensor checks; the recording's end releases them."""
    from hostgen.board.packets import StreamDecoder

    machine, rng = scenario_machine(12)
    recording = machine_run(machine, 3, rng).astype(np.int16)
    scenario, link = tmp_path / "scenario.i16", tmp_path / "link.bin"
    recording.tofile(scenario)
    code = "import faultline\nrunning = faultline.start()\nwhile faultline.service():\n    pass\nprint('judged', running.windows)\n"
    with FirmwareWorkspace(board) as workspace:
        result = workspace.run_code(code, {"FAULTLINE_SCENARIO": str(scenario), "FAULTLINE_LINK": str(link)})
    assert result.returncode == 0, result.stderr
    judged = int(next(line for line in result.stdout.splitlines() if line.startswith("judged")).split()[1])
    packets = StreamDecoder().feed(link.read_bytes())
    sent = sum(1 for p in packets if p.kind == "WINDOW") + sum(p.fields["windows"] for p in packets if p.kind == "SUMMARY")
    assert judged > 10 and sent == judged
