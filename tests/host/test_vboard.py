"""The virtual board as a process: starts, refuses a second one on its link, stops cleanly."""

from __future__ import annotations

import os
import subprocess
import time

import numpy as np
import pytest
from helpers import assert_user_error, run_hostgen

from hostgen.board.vboard import VirtualBoardProcess, scenario_samples
from hostgen.errors import HostgenError


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def test_starts_refuses_a_second_and_stops_cleanly(tmp_path):
    with VirtualBoardProcess("esp32", tmp_path) as vboard:
        assert vboard.repl.is_symlink() and os.readlink(vboard.repl).startswith("/dev/pts/")
        assert vboard.gateway.is_symlink()
        vm = children_of(vboard.process.pid)
        assert vm, "the MicroPython VM runs as the relay's child"
        second = run_hostgen("vboard", "--board", "esp32", "--link", vboard.repl, "--gateway", tmp_path / "gw2", timeout=60)
        assert_user_error(second, "already runs on", str(vboard.process.pid))
    assert vboard.process.returncode == 0
    assert not vboard.repl.exists() and not vboard.repl.is_symlink() and not vboard.gateway.is_symlink()
    time.sleep(0.2)
    for pid in vm:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z", "orphaned VM"


def test_a_stale_link_from_a_killed_board_is_cleared(tmp_path):
    first = VirtualBoardProcess("stm32f4", tmp_path)
    first.process.kill()
    first.process.wait()
    with VirtualBoardProcess("stm32f4", tmp_path) as second:
        assert second.repl.is_symlink()


def test_scenario_schedule():
    x = scenario_samples("normal:2,impact,stuck:1,saturated:1", 1000, 2)
    assert x.shape == (5000, 2) and x.dtype == np.int16
    assert np.all(x[3000:4000, 0] == x[3000, 0])
    assert np.mean(np.abs(x[4000:, 0]) >= 32767) > 0.3
    with pytest.raises(HostgenError, match="'wobble:2'"):
        scenario_samples("normal:2,wobble:2", 1000, 1)


def test_bad_scenario_is_a_user_error(tmp_path):
    result = run_hostgen("vboard", "--board", "esp32", "--link", tmp_path / "r", "--gateway", tmp_path / "g", "--scenario", "normal:x")
    assert_user_error(result, "normal:x")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("spec", ["normal:-5", "normal:nan", "normal:1e9", "normal:inf", "normal:0", "fault:10:nan",
                                  "fault:10:-1", "normal:3000,normal:3000"])
def test_scenario_values_out_of_range_are_user_errors(spec):
    with pytest.raises(HostgenError, match="scenario"):
        scenario_samples(spec, 1000, 1)


def test_a_refused_second_board_leaves_the_running_one_alone(tmp_path):
    with VirtualBoardProcess("esp32", tmp_path) as vboard:
        pidfile = vboard.repl.with_name(vboard.repl.name + ".pid")
        for _ in range(2):  # the second and a third are both refused
            again = run_hostgen("vboard", "--board", "esp32", "--link", vboard.repl, "--gateway", vboard.gateway, timeout=60)
            assert_user_error(again, "already runs on")
            assert vboard.repl.is_symlink() and vboard.gateway.is_symlink()
            assert pidfile.read_text() == str(vboard.process.pid)


def test_a_vm_killed_soon_after_its_start_is_booted_again(tmp_path):
    """A power cut (SIGKILL of the VM) restarts the VM however soon after its start it comes."""
    with VirtualBoardProcess("esp32", tmp_path) as vboard:
        seen = set()
        for _ in range(3):
            deadline = time.monotonic() + 10
            while not (set(children_of(vboard.process.pid)) - seen) and time.monotonic() < deadline:
                time.sleep(0.02)
            vm = (set(children_of(vboard.process.pid)) - seen).pop()
            seen.add(vm)
            os.kill(vm, 9)
        deadline = time.monotonic() + 10
        while not (set(children_of(vboard.process.pid)) - seen) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert vboard.process.poll() is None, "the virtual board quit"
        assert set(children_of(vboard.process.pid)) - seen, "no VM restarted"


def test_a_paste_cut_off_by_a_killed_client_is_ended_by_the_next_client_s_ctrl_c(tmp_path):
    """mpremote killed mid raw-paste leaves the board waiting for the rest; Ctrl-C ends it (KeyboardInterrupt), as pyexec does."""
    import serial

    from hostgen.board.link import ReplSession

    with VirtualBoardProcess("stm32f4", tmp_path) as vboard:
        with ReplSession(str(vboard.repl)) as session:
            session.transport.serial.write(b"\x05A\x01")
            assert session.transport.serial.read_until(b"R\x01").endswith(b"R\x01")
            session.transport.serial.write(b"print('never run'")  # and the client dies here
        link = serial.Serial(str(vboard.repl), timeout=5)
        link.write(b"\r\x03")
        reply = link.read_until(b"\x04>")
        link.close()
        assert b"KeyboardInterrupt" in reply and b"never run" not in reply, reply
        with ReplSession(str(vboard.repl)) as session:
            assert session.exec("print(6 * 7)").strip() == "42"
