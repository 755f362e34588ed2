"""`hostgen replay`: a user checks a build against last week's recording."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_user_error, run_hostgen, run_in_process

from hostgen.data import synthetic as dataset


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    rng = np.random.default_rng(12)
    machine = dataset.random_machine(rng, False)
    x = np.concatenate([dataset.synthesize(machine, 8000, rng),
                        dataset.synthesize(dataset.Machine(**{**machine.__dict__, "fault_counts": 3000.0}), 6000, rng)])
    ring = np.arange(120)
    x = x.astype(np.int64)
    x[3000:3120] += (20000 * np.exp(-ring / 15) * np.sin(2 * np.pi * 260 * ring / 1000)).astype(np.int64)  # an impact
    x[5000:5020] = 30000
    x = np.clip(x, -32768, 32767).astype(np.int16)
    path = tmp_path_factory.mktemp("replay") / "week.npy"
    np.save(path, x)
    return path


def test_replay_prints_packets_and_figures(recording):
    result = run_hostgen("replay", "--board", "esp32", "--data", recording)
    assert result.returncode == 0, result.stderr
    assert "boot faultline 0.1.0" in result.stdout and "fast path peak RAISED" in result.stdout
    assert "FAULT by model (" in result.stdout and "B/s raw" in result.stdout, "tier 2 runs the build's model"


def test_replay_json_lines(recording):
    result = run_hostgen("replay", "--board", "esp32", "--data", recording, "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    figures = lines[-1]["figures"]
    assert lines[0]["type"] == "BOOT" and figures["samples"] == 14_000 and figures["bad_frames"] == 0
    assert figures["packets"]["ALERT"] >= 1 and figures["heap_peak_bytes"] <= figures["heap_limit_bytes"]


def test_replay_on_the_smallest_board_says_which_heap_it_used(recording):
    result = run_hostgen("replay", "--board", "nucleo_f401re", "--data", recording)
    assert result.returncode == 0 and "49152 bytes on its 32-bit MCU" in result.stderr and "has 98304" in result.stderr


@pytest.mark.parametrize("make, fragment", [
    (lambda: np.zeros((100, 2, 2), np.int16), "shape (100, 2, 2)"),
    (lambda: np.zeros((5000, 3), np.int16), "3 channel(s)"),
    (lambda: np.zeros(5000, np.float32), "dtype float32"),
])
def test_bad_recordings(tmp_path, make, fragment):
    path = tmp_path / "bad.npy"
    np.save(path, make())
    assert_user_error(run_in_process("replay", "--board", "esp32", "--data", path), fragment)


def test_rate_mismatch(recording):
    assert_user_error(run_in_process("replay", "--board", "esp32", "--data", recording, "--rate", "2000"), "--rate 2000")


def test_replay_with_events_tells_latency_share_and_false_alarms(recording, tmp_path):
    """The recording: normal running, an impact at 3 s, 20 readings held at 30000 at 5 s (a dropout), a bearing fault from 8 s."""
    events = tmp_path / "events.json"
    events.write_text(json.dumps({"week.npy": [{"onset_s": 8.0, "kind": "outer_race"}]}))
    result = run_hostgen("replay", "--board", "esp32", "--data", recording, "--events", events, "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    (event,) = lines[-1]["events"]
    flagged_after = [p for p in lines if p.get("type") == "WINDOW" and p["start_sample"] >= 8000]
    assert event["kind"] == "outer_race" and event["flagged_after_onset"] == len(
        [p for p in flagged_after if p["start_sample"] + 256 <= 14_000])
    assert 0 < event["latency_ms"] < 1000 and event["flagged_share"] > 0.5
    assert event["machine_alerts_before_onset"] >= 1, "the impact"
    assert event["sensor_faults"][0].startswith("dropout ch0 at 5.0"), event["sensor_faults"]
    assert event["windows_before_onset"] > event["false_alarms_before_onset"] >= 0
    text = run_hostgen("replay", "--board", "esp32", "--data", recording, "--events", events).stdout
    assert "outer_race at 8 s on every channel: detected after" in text and "before onset:" in text


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "cannot read events file"),
    ('{"other.npy": []}', "but not week.npy"),
    ('[{"kind": "outer_race"}]', "needs onset_s"),
    ('[{"onset_s": 1, "kind": "x", "channel": 4}]', "channel 4"),
])
def test_bad_events_file(recording, tmp_path, content, fragment):
    events = tmp_path / "events.json"
    events.write_text(content)
    assert_user_error(run_in_process("replay", "--board", "esp32", "--data", recording, "--events", events), fragment)
