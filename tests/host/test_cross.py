"""Placement proven by the real ARM linker: regions, alignment, and the budget ASSERT."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, every_board_one_in_the_fast_tier, run_hostgen

from hostgen.codegen.families.stm32 import link_command
from hostgen.config.board import board_names, load_board

STM32_BOARDS = [name for name in board_names() if load_board(name).family == "stm32"]


def symbols(elf) -> dict[str, tuple[int, int]]:
    """name -> (address, size) from arm-none-eabi-nm."""
    listing = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) == 4:
            found[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
    return found


def section_types(elf) -> dict[str, str]:
    listing = subprocess.run(["arm-none-eabi-readelf", "-S", "-W", str(elf)], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"\]\s+(\.\S+)\s+(\w+)", listing))


@pytest.fixture(scope="module", params=every_board_one_in_the_fast_tier(STM32_BOARDS))
def linked(request, tmp_path_factory, gen_build, reference_tflite):
    board = load_board(request.param)
    out = tmp_path_factory.mktemp(board.name) / "build"
    shutil.copytree(gen_build(board.name, "--model", reference_tflite), out)  # cross writes into the build
    result = run_hostgen("cross", "--board", board.name, "--build", out)
    assert result.returncode == 0, result.stderr
    return board, out, out / "placement.elf"


def test_model_in_flash_arena_in_ram_both_aligned(linked):
    board, out, elf = linked
    found = symbols(elf)
    model_address, model_size = found["g_faultline_model_data"]
    arena_address, arena_size = found["g_faultline_tensor_arena"]
    flash, region = board["flash"], board.arena_region
    assert flash["model_origin"] <= model_address and model_address + model_size <= flash["model_origin"] + flash["model_size_bytes"]
    assert region.origin <= arena_address and arena_address + arena_size <= region.origin + region.size_bytes
    assert model_address % board.alignment_bytes == 0 and arena_address % 16 == 0
    assert model_size == (out / "faultline.tflite").stat().st_size
    types = section_types(elf)
    assert types[".model_data"] == "PROGBITS" and types[".tensor_arena"] == "NOBITS"
    assert arena_address >= region.origin + board.firmware_ram_bytes, "arena overlaps MicroPython's RAM"


def test_over_budget_arena_fails_the_link_by_assert(linked, tmp_path):
    board, out, _ = linked
    budget = board.budget_bytes()
    extra = tmp_path / "extra_arena.c"
    extra.write_text(
        f'unsigned char extra_arena[{budget}] __attribute__((section(".tensor_arena"), used, aligned(16)));\n'
    )
    result = subprocess.run(link_command(board, out, tmp_path / "over.elf", (extra,)), capture_output=True, text=True)
    assert result.returncode != 0
    assert f"faultline: tensor arena over the {board.name} budget of {budget} bytes" in result.stderr


def test_make_cross_links_the_default_build():
    """The Makefile's wiring, with this interpreter's hostgen and set-up taken as done (a test never runs pip)."""
    command = ["make", "-s", "-o", ".venv/.setup-complete", f"HOSTGEN={sys.executable} -m hostgen", "cross", "BOARD=stm32f4"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (Path(os.environ["HOSTGEN_BUILD_DIR"]) / "stm32f4" / "placement.elf").is_file()


def test_cross_refuses_esp32(gen_build, reference_tflite, tmp_path):
    out = tmp_path / "esp"
    shutil.copytree(gen_build("esp32", "--model", reference_tflite), out)
    result = run_hostgen("cross", "--board", "esp32", "--build", out)
    assert result.returncode != 0 and "ESP-IDF" in result.stderr
