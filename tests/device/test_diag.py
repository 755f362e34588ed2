"""REPL diagnostics on the real MicroPython VM: readable, validated, persisted, never stalling."""

from __future__ import annotations

import json

import pytest

START = """
import time
import faultline
running = faultline.start()
while faultline.service():
    pass
import diag
"""


@pytest.fixture
def env(scenarios, tmp_path):
    scenario = tmp_path / "scenario.i16"
    scenarios["impact"][0].tofile(scenario)
    return {"FAULTLINE_SCENARIO": str(scenario), "FAULTLINE_LINK": str(tmp_path / "link.bin")}


def run(workspace, env, code):
    for stale in workspace.fs.iterdir():
        stale.unlink()
    result = workspace.run_code(START + code, env)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("call, expected", [
    ("diag.status()", ["faultline 0.1.0 board=stm32f4", "uptime", "settings  built-in defaults", "tier 2    fallback heuristic",
                       "packets sent"]),
    ("diag.health()", ["loop      p50", "overruns  0 samples lost", "heap", "watchdog  none on this port", "ch0       sensor ok"]),
    ("diag.last(32)", ["sample  kind", "alert", "peak raised", "window"]),
    ("diag.thresholds()", ["rms.fault", "kurtosis.suspect", "fast.peak", "fast.energy", "from built-in defaults"]),
    ("diag.sensor()", ["dc offset", "noise rms", "saturated", "ch0"]),
])
def test_each_view_is_readable_in_80_columns(workspace, env, call, expected):
    out = run(workspace, env, call)
    shown = out.split("\n", 3)[3]  # after the boot lines
    for text in expected:
        assert text in shown, f"{text!r} missing from:\n{shown}"
    assert max(len(line) for line in out.splitlines()) <= 80


def test_set_threshold_validates_applies_and_persists_atomically(workspace, env):
    out = run(workspace, env, """
diag.set_threshold("rms.fault", 5000)
diag.set_threshold("fast.peak", 4321)
for bad in (("rms.suspect", 6000), ("rms.fault", -3), ("rms.fault", 2.5), ("nonsense", 10), ("fast.peak", 10, 7)):
    try:
        diag.set_threshold(*bad)
        print("ACCEPTED", bad)
    except ValueError as error:
        print("refused:", error)
diag.thresholds()
import os
print(sorted(os.listdir()))
""")
    assert "ACCEPTED" not in out
    assert out.count("refused:") == 5
    assert "must stay above" in out and "unknown name 'nonsense'" in out and "channel 7" in out
    assert "from config.json" in out
    assert "['config.json']" in out, "the temporary file is renamed into place"
    saved = json.loads((workspace.fs / "config.json").read_text())
    assert saved["thresholds"][0][0] == 5000 and saved["peak_limits"] == [4321]
    rerun = workspace.run_code("import faultline\nfaultline.start()\nimport diag\ndiag.thresholds()\n", env)
    assert "5000" in rerun.stdout and "4321" in rerun.stdout and "settings=file" in rerun.stdout


def test_a_lower_rules_fault_threshold_stays_under_its_suspect_one(workspace, env):
    out = run(workspace, env, """
import settings
names = settings.threshold_names()
thresholds = diag.pipeline.running.settings.thresholds[0]
suspect = thresholds[names.index("unbalance.low_suspect")]
try:
    diag.set_threshold("unbalance.low_fault", suspect)
    print("ACCEPTED")
except ValueError as error:
    print("refused:", error)
diag.set_threshold("unbalance.low_fault", suspect - 1)
print("low fault", thresholds[names.index("unbalance.low_fault")], "of", suspect)
""")
    assert "ACCEPTED" not in out and "unbalance<=fault must stay under unbalance<=suspect" in out
    low_fault, suspect = (int(word) for word in out.split("low fault ")[1].split()[::2][:2])
    assert low_fault == suspect - 1
    saved = json.loads((workspace.fs / "config.json").read_text())
    assert low_fault in saved["thresholds"][0]


def test_interrupted_save_is_finished_at_boot(workspace, env):
    """A config.tmp left by a save cut short (before the rename) is taken and renamed at boot."""
    for stale in workspace.fs.iterdir():
        stale.unlink()
    first = workspace.run_code(START + 'diag.set_threshold("peak.fault", 7777)\n', env)
    assert first.returncode == 0
    (workspace.fs / "config.json").rename(workspace.fs / "config.tmp")
    boot = workspace.run_code("import faultline\nfaultline.start()\nimport os\nprint(sorted(os.listdir()))\n", env)
    assert "settings=file" in boot.stdout and "['config.json']" in boot.stdout


@pytest.mark.parametrize("content, words", [("{truncated", "corrupt"), ('{"build": "0000", "thresholds": [], "peak_limits": [], "energy_limits": []}', "from another build")])
def test_bad_config_on_boot_means_defaults_and_diag_says_so(workspace, env, content, words):
    for stale in workspace.fs.iterdir():
        stale.unlink()
    (workspace.fs / "config.json").write_text(content)
    out = workspace.run_code("import faultline\nfaultline.start()\nimport diag\ndiag.status()\n", env).stdout
    assert f"built-in defaults: config.json is {words}" in out


def test_selftest_trips_through_the_real_pipeline(workspace, env):
    out = run(workspace, env, "print('result', diag.selftest())")
    assert "selftest PASS" in out and "result True" in out
    assert "fast path tripped" in out and "window decision: fault" in out


def test_selftest_fails_when_the_fast_path_cannot_trip(workspace, env):
    out = run(workspace, env, 'diag.set_threshold("fast.peak", 1000000)\ndiag.set_threshold("fast.energy", 1000000)\nprint("result", diag.selftest())')
    assert "fast path did NOT trip" in out and "selftest FAIL" in out and "result False" in out


def test_diag_never_holds_the_pipeline_longer_than_one_block(workspace, env):
    """Every diag call, and every stretch of selftest between its yields, is shorter than a block (8 ms).

    Each call's longest stretch is the least of three runs: a preemption on this shared machine
    lengthens one run's stretch, but a call that really holds the loop holds it every time.
    """
    out = run(workspace, env, """
import faultline
longest = [0]
last = [time.ticks_us()]
def watched():
    now = time.ticks_us()
    longest[0] = max(longest[0], time.ticks_diff(now, last[0]))
    last[0] = now
    return False
faultline.service = watched
for call in (diag.status, diag.health, diag.last, diag.thresholds, diag.sensor, diag.selftest):
    runs = []
    for _ in range(3):
        longest[0] = 0
        last[0] = time.ticks_us()
        call()
        watched()
        runs.append(longest[0])
    print("longest", call.__name__, min(runs))
""")
    longest = {line.split()[1]: int(line.split()[2]) for line in out.splitlines() if line.startswith("longest")}
    assert len(longest) == 6, out
    assert max(longest.values()) < 8000, f"{longest} (us without yielding, per call)"


def test_status_on_a_stopped_pipeline_says_so_and_how_to_start_it(workspace, env):
    """After a soft reset into the raw REPL main.py has not run: status still prints."""
    for stale in workspace.fs.iterdir():
        stale.unlink()
    result = workspace.run_code("import diag\ndiag.status()\n", env)
    assert result.returncode == 0, result.stderr
    assert "faultline 0.1.0 board=stm32f4" in result.stdout
    assert "STOPPED" in result.stdout and "faultline.start()" in result.stdout and "resume" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_a_fast_path_limit_under_the_noise_floor_is_refused(workspace, env):
    out = run(workspace, env, """
for name, value in (("fast.peak", 1), ("fast.energy", 1)):
    try:
        diag.set_threshold(name, value)
        print("ACCEPTED", name)
    except ValueError as error:
        print("refused:", error)
""")
    assert "ACCEPTED" not in out and out.count("noise floor") == 2, out


def test_the_noise_floor_is_the_normal_running_not_a_fault_s_loud_window(workspace, scenarios, tmp_path):
    """The recording ends in a bearing fault: the calibrated limit is still accepted, one under the normal running is not."""
    scenario = tmp_path / "bearing.i16"
    scenarios["bearing_fault"][0].tofile(scenario)
    out = run(workspace, {"FAULTLINE_SCENARIO": str(scenario), "FAULTLINE_LINK": str(tmp_path / "link.bin")}, """
import fallback
import pipeline
p = pipeline.running
print("rms", p.channels[0].result[fallback.RMS], p.running_rms(0))
for value in (3 * p.running_rms(0) + 1, 3 * p.running_rms(0)):
    try:
        diag.set_threshold("fast.peak", value)
        print("ACCEPTED", value)
    except ValueError as error:
        print("refused:", error)
""")
    last, running = (int(v) for v in out.split("rms ")[1].split()[:2])
    assert 0 < running < last, out
    assert f"ACCEPTED {3 * running + 1}" in out and f"noise floor (running rms {running})" in out, out
