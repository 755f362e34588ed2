"""Fault injection on the board's config: garbage on its filesystem, and power loss during saves.

Every case runs the real firmware on the MicroPython VM at the board's heap. Whatever
config.json holds, the pipeline starts (on the built-in defaults, saying why); a VM killed
at any moment of a save boots the old thresholds or the new ones, never a corrupt file.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time

import pytest

from hostgen.util.tools import micropython_executable

BOOT = """
import faultline
running = faultline.start()
while faultline.service():
    pass
print("windows", running.windows)
import diag
diag.status()
"""

GARBAGE = {
    "random bytes": random.Random(11).randbytes(300),
    "non-UTF-8": b'{"build": "\xff\xfe\xfd"}',
    "5,000 deep": b"[" * 5000 + b"]" * 5000,
    "deep under the size bound": b"[" * 300 + b"]" * 300,
    "10 MB": b'{"build": "' + b"7" * 10_000_000 + b'"}',
    "NUL bytes": bytes(200),
    "empty": b"",
    "a list": b"[1, 2, 3]",
    "wrong keys": b'{"build": "x", "limits": []}',
    "floats": None,  # filled in from a valid record below
    "huge integers": None,
    "truncated record": None,
}


@pytest.fixture
def env(scenarios, tmp_path):
    scenario = tmp_path / "scenario.i16"
    scenarios["normal"][0][:6000].tofile(scenario)
    return {"FAULTLINE_SCENARIO": str(scenario), "FAULTLINE_LINK": str(tmp_path / "link.bin")}


def clear(fs):
    for stale in fs.iterdir():
        stale.rmdir() if stale.is_dir() else stale.unlink()


def valid_record(workspace) -> dict:
    clear(workspace.fs)
    out = workspace.run_code("import faultline\nfaultline.start()\nimport diag\ndiag.set_threshold('peak.fault', 20000)\n").stdout
    assert "saved" in out, out
    return json.loads((workspace.fs / "config.json").read_text())


def garbage(name, workspace) -> bytes:
    if GARBAGE[name] is not None:
        return GARBAGE[name]
    record = valid_record(workspace)
    if name == "floats":
        record["peak_limits"] = [1.5]
    elif name == "huge integers":
        record["energy_limits"] = [2**62]
    else:
        return json.dumps(record).encode()[:-7]
    return json.dumps(record).encode()


@pytest.mark.parametrize("name", list(GARBAGE))
def test_any_config_file_boots_the_defaults_with_a_reason(workspace, env, name):
    content = garbage(name, workspace)
    clear(workspace.fs)
    (workspace.fs / "config.json").write_bytes(content)
    result = workspace.run_code(BOOT, env)
    assert result.returncode == 0, result.stderr[-500:]
    assert "settings=corrupt" in result.stdout, result.stdout
    assert "settings  built-in defaults: config.json is corrupt" in result.stdout
    reason = result.stdout.split("settings  built-in defaults: config.json is corrupt\n")[1].splitlines()[0]
    assert reason.strip().startswith("config.json: ") and len(reason.strip()) > len("config.json: ")
    windows = int(result.stdout.split("windows ")[1].split()[0])
    assert windows > 30, "the pipeline runs on the defaults"


def test_a_directory_named_config_json_boots_the_defaults(workspace, env):
    clear(workspace.fs)
    (workspace.fs / "config.json").mkdir()
    result = workspace.run_code(BOOT, env)
    assert result.returncode == 0, result.stderr[-500:]
    assert "settings=corrupt" in result.stdout and "windows " in result.stdout


# A board's FAT cannot rename over a file: the firmware's os, as a FAT volume has it.
FAT_OS = """
import sys
import os as _os
class _FatOs:
    def __getattr__(self, name):
        return getattr(_os, name)
    def rename(self, old, new):
        try:
            _os.stat(new)
        except OSError:
            return _os.rename(old, new)
        raise OSError(17)
sys.modules["os"] = _FatOs()
"""

SAVE_FOREVER = FAT_OS + """
import faultline
faultline.start()
import diag
import settings
value = diag.pipeline.running.settings.thresholds[0][settings.threshold_names().index("peak.fault")]
print("starting at", value)
while True:
    value += 1
    diag.set_threshold("peak.fault", value)
"""

BOOT_AND_SHOW = FAT_OS + """
import faultline
faultline.start()
import diag
import settings
print("peak.fault", diag.pipeline.running.settings.thresholds[0][settings.threshold_names().index("peak.fault")])
"""


def test_power_loss_during_config_saves_never_corrupts_the_config(workspace, runs):
    """SIGKILL the VM at random moments of a loop of saves; each boot has the last saved value or the next."""
    rng = random.Random(2026)
    prelude = f"import sys\nsys.path.insert(0, {str(workspace.code)!r})\n"
    corrupt = []
    count = runs(20)
    for run in range(count):
        clear(workspace.fs)
        vm = subprocess.Popen([micropython_executable(), "-X", f"heapsize={workspace.heap_bytes}", "-c", prelude + SAVE_FOREVER],
                              cwd=workspace.fs, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while not (workspace.fs / "config.json").exists() and time.monotonic() < deadline and vm.poll() is None:
            time.sleep(0.005)
        assert vm.poll() is None, f"the saving loop stopped by itself: {vm.communicate()[1][-300:]}"
        time.sleep(rng.uniform(0.0, 0.3))
        vm.send_signal(signal.SIGKILL)
        out = vm.communicate()[0]
        saved = [int(line.split()[2]) for line in out.splitlines() if line.startswith("peak.fault = ")]
        boot = workspace.run_code(BOOT_AND_SHOW, {})
        shown = [line for line in boot.stdout.splitlines() if line.startswith("peak.fault ")]
        start = [int(line.split()[2]) for line in out.splitlines() if line.startswith("starting at")]
        last = saved[-1] if saved else start[0]
        if boot.returncode != 0 or "settings=file" not in boot.stdout or not shown or int(shown[0].split()[1]) not in (last, last + 1):
            corrupt.append((run, last, boot.stdout[-300:], boot.stderr[-300:]))
    print(f"config saves: {count} power losses, {len(corrupt)} corrupt boots")
    assert not corrupt, corrupt[:3]
