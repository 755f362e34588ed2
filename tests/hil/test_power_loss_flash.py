"""Power loss during a flash: a virtual board's VM is SIGKILLed at every step of the commit
and at random moments of the copy, then booted. It must boot the complete old firmware or
the complete new one, and its banner must say which (virtual board only: a real board's
power cannot be cut from here).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import threading
import time

import pytest
from helpers import app_with

from hostgen.board import flash
from hostgen.board.image import compile_mpy, firmware_files
from hostgen.board.link import BANNER, ReplSession
from hostgen.board.unix_port import UNIX_PORT_ARCH
from hostgen.board.vboard import VirtualBoardProcess
from hostgen.config.board import load_board

pytestmark = pytest.mark.hil

LOADED = """
import sys
for name, module in sys.modules.items():
    print(name, getattr(module, '__file__', '-'))
"""


class Firmware:
    def __init__(self, board, app_path, build):
        sources = firmware_files(board, app_path, "tests/hil/test_power_loss_flash.py")
        # every module differs between the two builds, so that a flash copies all of them over the link
        sources = {n: d if n in flash.ROOT_FILES else d + f"\n_BUILD = {build!r}\n".encode() for n, d in sources.items()}
        self.files = compile_mpy(sources, UNIX_PORT_ARCH)
        self.modules = {name.rsplit(".", 1)[0] for name in self.files if name not in flash.ROOT_FILES}
        self.dir = flash.firmware_dir_name({n: d for n, d in self.files.items() if n not in flash.ROOT_FILES})
        self.config = re.search(r'^CONFIG_DIGEST = "(\w+)"', sources["faultline_config.py"].decode(), re.M).group(1)


@pytest.fixture(scope="module")
def builds(board_name, tmp_path_factory):
    board = load_board(board_name)
    other = app_with(tmp_path_factory.mktemp("app"), hold_blocks="37")
    old, new = Firmware(board, None, "old"), Firmware(board, str(other), "new")
    assert old.dir != new.dir and old.config != new.config
    return old, new


@pytest.fixture(scope="module")
def vboard(pytestconfig, board_name, tmp_path_factory):
    if pytestconfig.getoption("port"):
        pytest.skip("cuts a virtual board's power (SIGKILL of its VM); runs without --port")
    with VirtualBoardProcess(board_name, tmp_path_factory.mktemp("vboard-power"), "normal:4,impact,normal:4") as board:
        yield board


def vm_of(vboard) -> int | None:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(vboard.process.pid)], capture_output=True, text=True).stdout
    return int(out.split()[0]) if out.split() else None


def power_cut(vboard) -> None:
    vm = vm_of(vboard)
    os.kill(vm, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while vm_of(vboard) in (None, vm) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert vboard.process.poll() is None, "the virtual board quit after a power cut"


def install(session, firmware) -> None:
    flash.commit(session, flash.stage(session, firmware.files, lambda _: None))


class FlashUntilCut(threading.Thread):
    """A flash in the background; after the power cut, `stop` takes its port away so it ends at once."""

    def __init__(self, port, firmware):
        super().__init__()
        self.port, self.firmware, self.session = port, firmware, None

    def run(self):
        try:
            with ReplSession(self.port) as self.session:
                install(self.session, self.firmware)
        except Exception:  # the board lost power under it, or stop() closed the port: either way it is over
            pass

    def stop(self):
        self.join(5)
        if self.is_alive() and self.session is not None:
            with contextlib.suppress(Exception):
                self.session.transport.serial.close()
        self.join(60)
        assert not self.is_alive(), "the interrupted flash still holds the port"


def boot(vboard, builds):
    """Boot the board as the power cut left it: the Firmware it runs whole, else 'unbootable' or 'mixed'."""
    with ReplSession(str(vboard.repl)) as session:
        text = session.soft_reset_and_read_banner()
    found = BANNER.search(text)
    if found is None or b"faultline: tier2=" not in text:
        return "unbootable"
    with ReplSession(str(vboard.repl)) as session:
        loaded = dict(line.split(" ", 1) for line in session.exec(LOADED).splitlines())
    config, directory = found.group(4).decode(), found.group(5).decode()
    for firmware in builds:
        ours = [m for m in firmware.modules if m in loaded]
        if (directory, config) == (firmware.dir, firmware.config) and all(loaded[m].startswith(firmware.dir + "/") for m in ours):
            return firmware
    return "mixed"


def test_power_loss_at_every_commit_step_and_during_the_copy(vboard, builds, runs):
    rng = random.Random(7)
    outcomes = []
    switched = 0
    with ReplSession(str(vboard.repl)) as session:
        install(session, builds[0])
        started = time.monotonic()
        staged = flash.stage(session, builds[1].files, lambda _: None)
        copy_seconds = time.monotonic() - started
    steps = len(flash.commit_operations(staged)) + 1
    count = runs(2 * steps + 6)
    for run in range(count):
        old, new = builds if run % 2 == 0 else builds[::-1]
        with ReplSession(str(vboard.repl)) as session:
            install(session, old)
        if run < 2 * steps:  # a power cut after each commit operation, both ways
            done = run // 2
            with ReplSession(str(vboard.repl)) as session:
                operations = flash.commit_operations(flash.stage(session, new.files, lambda _: None))
                session.exec("import os\n" + "\n".join(operations[:done]))
            power_cut(vboard)
            switch = next(i for i, op in enumerate(operations) if repr(flash.POINTER) in op and "os.re" in op) + 1
            expected = [new] if done >= switch else [old]  # the old pointer's removal is the switch
        else:  # a power cut at a random moment of a flash from scratch
            for leftover in vboard.fs.glob(new.dir):
                for path in leftover.iterdir():
                    path.unlink()
                leftover.rmdir()
            worker = FlashUntilCut(str(vboard.repl), new)
            worker.start()
            time.sleep(rng.uniform(0.0, copy_seconds * 1.1))
            power_cut(vboard)
            worker.stop()
            expected = [old, new]
        booted = boot(vboard, builds)
        switched += booted is new
        outcomes.append(booted if isinstance(booted, str) else ("ok" if booted in expected else f"run {run}: not the expected firmware"))
    unbootable, mixed = outcomes.count("unbootable"), outcomes.count("mixed")
    print(f"flash commits: {count} power losses ({2 * steps} of them after each commit step, both ways; the rest at random "
          f"moments of a flash), {unbootable} unbootable boards, {mixed} mixed firmware; {switched} booted the new firmware")
    assert unbootable == 0 and mixed == 0 and all(o == "ok" for o in outcomes), outcomes


def test_a_board_flashed_before_firmware_directories_moves_to_one(vboard, builds):
    """Today's boards have the modules at the root, listed in faultline.manifest: the first flash moves them into fw-<digest>/."""
    old, new = builds
    for path in vboard.fs.iterdir():
        if path.is_dir():
            for inside in path.iterdir():
                inside.unlink()
            path.rmdir()
        else:
            path.unlink()
    legacy = {name: data for name, data in old.files.items() if name != "boot.py"}
    with ReplSession(str(vboard.repl)) as session:
        for name, data in legacy.items():
            flash._write_file(session, name, data)
        flash._write_file(session, flash.LEGACY_MANIFEST, "\n".join(sorted(legacy)).encode())
        assert b"config=" + old.config.encode() + b" .\r\n" in session.soft_reset_and_read_banner(), "the root-level firmware boots"
        staged = flash.stage(session, new.files, lambda _: None)
        flash.commit(session, staged)
        assert new.dir.encode() in session.soft_reset_and_read_banner()
        flash.remove_old_firmware(session, staged, lambda _: None)
    assert sorted(p.name for p in vboard.fs.iterdir() if p.suffix == ".mpy" or p.name == flash.LEGACY_MANIFEST) == []
    assert boot(vboard, builds) is new
