"""Flashing's inputs: stock-firmware command lines, bad images, missing and wrong boards, bad ports."""

from __future__ import annotations

import os
import threading
import time

import pytest
from helpers import assert_user_error, run_hostgen
from serial.tools.list_ports_common import ListPortInfo

from hostgen import __version__
from hostgen.board import link as board_link
from hostgen.board.flash import board_arch, check_banner
from hostgen.board.link import find_port
from hostgen.config.board import load_board
from hostgen.errors import HostgenError


@pytest.fixture
def images(tmp_path):
    esp = tmp_path / "ESP32_GENERIC-v1.24.1.bin"
    esp.write_bytes(b"\xe9\x03\x02\x20" + bytes(2000))
    dfu = tmp_path / "PYBV11-v1.24.1.dfu"
    dfu.write_bytes(b"DfuSe\x01" + bytes(2000))
    hexfile = tmp_path / "NUCLEO_F446RE-v1.24.1.hex"
    hexfile.write_text(":020000040800F2\n:00000001FF\n")
    return {"esp": esp, "dfu": dfu, "hex": hexfile}


def dry_run(board, image, *extra):
    return run_hostgen("flash", "--board", board, "--firmware", image, "--dry-run", *extra)


def test_esp32_command_lines(images):
    result = dry_run("esp32", images["esp"], "--port", "/dev/ttyUSB0")
    assert result.returncode == 0, result.stderr
    assert "$ esptool --chip esp32 --port /dev/ttyUSB0 --baud 460800 erase-flash\n" in result.stderr
    assert f"$ esptool --chip esp32 --port /dev/ttyUSB0 --baud 460800 write-flash 0x1000 {images['esp']}\n" in result.stderr


def test_esp32s3_writes_at_zero(images):
    result = dry_run("esp32s3", images["esp"], "--port", "/dev/ttyACM0")
    assert f"write-flash 0x0 {images['esp']}" in result.stderr and "--chip esp32s3" in result.stderr


def test_pyboard_dfu_command_line(images):
    result = dry_run("stm32f4", images["dfu"])
    assert result.returncode == 0 and f"$ dfu-util -a 0 -d 0483:df11 -D {images['dfu']}\n" in result.stderr


def test_nucleo_stlink_command_line(images):
    result = dry_run("nucleo_f446re", images["hex"])
    assert result.returncode == 0 and f"$ st-flash --reset --format ihex write {images['hex']}\n" in result.stderr


@pytest.mark.parametrize("board, image, fragment", [
    ("esp32", "dfu", "not an ESP32 .bin image"),
    ("stm32f4", "esp", "not a DfuSe .dfu image"),
    ("nucleo_f401re", "dfu", "with suffix .hex"),
])
def test_wrong_image_kind(images, board, image, fragment):
    assert_user_error(dry_run(board, images[image], "--port", "/dev/ttyUSB0"), fragment)


def test_esptool_needs_a_port(images):
    assert_user_error(dry_run("esp32", images["esp"]), "PORT=")


def test_no_board_found_lists_what_was_seen():
    """This machine has no USB boards: the real port scan finds none."""
    assert_user_error(run_hostgen("flash", "--board", "stm32f4"), "no stm32f4 found", "f055:9800", "ports seen")


def test_several_boards_found(monkeypatch):
    def fake(device, vid, pid):
        port = ListPortInfo(device)
        port.vid, port.pid = vid, pid
        return port

    monkeypatch.setattr(board_link.list_ports, "comports", lambda: [fake("/dev/ttyACM0", 0xF055, 0x9800),
                                                                   fake("/dev/ttyACM1", 0xF055, 0x9800),
                                                                   fake("/dev/ttyUSB0", 0x10C4, 0xEA60)])
    with pytest.raises(HostgenError, match="2 boards look like stm32f4: /dev/ttyACM0, /dev/ttyACM1"):
        find_port(load_board("stm32f4"))
    assert find_port(load_board("esp32")) == "/dev/ttyUSB0"


@pytest.mark.parametrize("chatter", [b"", b"\x00\xff garbage >>> nonsense \xaa" * 40])
def test_a_port_that_is_not_a_repl_times_out_clearly(chatter):
    controller, device = os.openpty()
    stop = threading.Event()

    def talk():
        while not stop.is_set():
            if chatter:
                os.write(controller, chatter)
            time.sleep(0.05)

    thread = threading.Thread(target=talk, daemon=True)
    thread.start()
    started = time.monotonic()
    result = run_hostgen("diag", "--port", os.ttyname(device), "--timeout", "3", "status", timeout=60)
    stop.set()
    assert_user_error(result, "does not answer as a MicroPython REPL")
    assert time.monotonic() - started < 30
    os.close(controller)
    os.close(device)


def test_a_board_with_another_arch_is_refused():
    board = load_board("stm32f4")
    with pytest.raises(HostgenError, match="reports arch xtensawin but boards/stm32f4.toml says armv7emsp"):
        board_arch(board, {"platform": "esp32", "arch": "xtensawin"}, lambda _: None)
    assert board_arch(board, {"platform": "pyboard", "arch": "armv7emsp"}, lambda _: None) == "armv7emsp"
    said = []
    assert board_arch(board, {"platform": "linux", "arch": "x64"}, said.append) == "x64" and "virtual board" in said[0]


def test_a_board_reporting_another_firmware_version_is_refused(tmp_path):
    (tmp_path / "faultline_config.py").write_text('CONFIG_DIGEST = "0123abcd"\n')
    board = load_board("esp32")
    good = f"faultline {__version__} board=esp32 arch=xtensawin config=0123abcd fw-00112233".encode()
    assert check_banner(b"MPY: soft reboot\r\n" + good + b"\r\n>>> ", board, tmp_path, "fw-00112233")
    with pytest.raises(HostgenError, match="reports faultline 9.9.9"):
        check_banner(b"faultline 9.9.9 board=esp32 arch=xtensawin config=0123abcd fw-00112233", board, tmp_path)
    with pytest.raises(HostgenError, match="config=ffffffff"):
        check_banner(f"faultline {__version__} board=esp32 arch=x config=ffffffff fw-00112233".encode(), board, tmp_path)
    with pytest.raises(HostgenError, match="boots fw-00112233, not the firmware just written"):
        check_banner(good, board, tmp_path, "fw-44556677")
    with pytest.raises(HostgenError, match="no faultline boot banner"):
        check_banner(b"MicroPython v1.24 on 2024\r\n>>> ", board, tmp_path)
