"""Unmodified tools against the board's port: mpremote's commands and a plain pyserial client."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time

import pytest
import serial
from hil_support import expect, read_until

pytestmark = pytest.mark.hil
MPREMOTE = [sys.executable, "-m", "mpremote"]


def mpremote(port, *args, timeout=60):
    return subprocess.run([*MPREMOTE, "connect", port, "resume", *args], capture_output=True, text=True, timeout=timeout)


def test_mpremote_exec_and_run(port, tmp_path):
    assert mpremote(port, "exec", "print(6 * 7)").stdout.strip() == "42"
    script = tmp_path / "hello.py"
    script.write_text("import sys\nprint('ran on', sys.platform)\n")
    assert "ran on" in mpremote(port, "run", str(script)).stdout


def test_mpremote_files(port, tmp_path):
    data = os.urandom(3000)
    local = tmp_path / "blob.bin"
    local.write_bytes(data)
    assert mpremote(port, "fs", "cp", str(local), ":blob.bin").returncode == 0
    listing = mpremote(port, "fs", "ls").stdout
    assert "3000 blob.bin" in listing
    assert hashlib.sha256(data).hexdigest() in mpremote(port, "fs", "sha256sum", ":blob.bin").stdout
    back = tmp_path / "back.bin"
    assert mpremote(port, "fs", "cp", ":blob.bin", str(back)).returncode == 0 and back.read_bytes() == data
    assert mpremote(port, "fs", "rm", ":blob.bin").returncode == 0


def test_mpremote_soft_reset(flashed, port):
    """mpremote's soft reset (in the raw REPL, so main.py does not run), then a friendly reset brings faultline back."""
    result = subprocess.run([*MPREMOTE, "connect", port, "soft-reset", "exec", "import sys; print('modules', 'pipeline' in sys.modules)"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "modules False" in result.stdout
    with serial.Serial(port, 115_200, timeout=0.2) as link:
        link.write(b"\r\x03\x02\x04")
        expect(link, b"faultline ", timeout=20)


def test_mpremote_repl_on_a_terminal(port):
    """`mpremote repl` driven through a real pseudo-terminal, as a person would type."""
    controller, terminal = os.openpty()
    process = subprocess.Popen([*MPREMOTE, "connect", port, "resume", "repl"], stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    try:
        seen = expect(controller, b"exit this shell", timeout=15)
        for _ in range(15):  # mpremote takes the terminal a moment after it says so: press Enter until the prompt shows
            os.write(controller, b"\r")
            seen = read_until(controller, b">>> ", 1.0, seen)
            if b">>> " in seen:
                break
        seen = expect(controller, b">>> ", timeout=1, seen=seen)
        os.write(controller, b"123 * 3\r")
        expect(controller, b"369", timeout=15, seen=seen)
        os.write(controller, b"\x1d")  # Ctrl-] leaves mpremote's repl
        process.wait(timeout=15)
    finally:
        process.kill()
        os.close(controller)
    assert process.returncode == 0


def test_plain_pyserial_client(port):
    with serial.Serial(port, 115_200, timeout=0.2) as link:
        link.write(b"\r\x03\x02")
        time.sleep(0.5)
        link.read(4096)
        link.write(b"x = 2 ** 10\rx + 1\r")
        expect(link, b"1025\r\n>>> ")


def test_mpremote_exec_without_resume_still_shows_status(flashed, port):
    """The first thing a person tries soft-resets the board into the raw REPL: status says the pipeline stopped and how to start it."""
    result = subprocess.run([*MPREMOTE, "connect", port, "exec", "import diag; diag.status()"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "STOPPED" in result.stdout and "faultline.start()" in result.stdout and "resume" in result.stdout
    resumed = subprocess.run([*MPREMOTE, "connect", port, "resume", "exec", "import faultline; faultline.start(); import diag; diag.status()"],
                             capture_output=True, text=True, timeout=60)
    assert "uptime" in resumed.stdout, resumed.stdout + resumed.stderr
    with serial.Serial(port, 115_200, timeout=0.2) as link:  # back to a normal boot for the tests after this one
        link.write(b"\r\x03\x02\x04")
        expect(link, b"faultline ", timeout=20)


def test_a_port_held_by_another_program_is_named_as_busy(port):
    with serial.Serial(port, 115_200, timeout=0.2, exclusive=True):
        result = subprocess.run([sys.executable, "-m", "hostgen", "diag", "--port", port, "status"], capture_output=True, text=True,
                                timeout=60)
    assert result.returncode != 0 and "in use by another program" in result.stderr, result.stderr
