"""Board files: schema, sources for every figure, and the errors a bad file gives."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from helpers import REPO, assert_user_error, run_hostgen

from hostgen.config.board import board_names, load_board

REQUIRED_BOARDS = {"esp32", "esp32s3", "stm32f4", "nucleo_f446re", "nucleo_f401re"}


def test_required_boards_exist():
    assert REQUIRED_BOARDS <= set(board_names())


@pytest.mark.parametrize("name", board_names())
def test_board_loads_with_a_positive_budget(name):
    board = load_board(name)
    assert board.budget_sram_bytes > 0
    assert 0 < board.budget_bytes() < board.arena_region.size_bytes
    assert board.alignment_bytes >= 16 and board.alignment_bytes & (board.alignment_bytes - 1) == 0
    assert board["flash"]["model_size_bytes"] > 0


@pytest.mark.parametrize("name", board_names())
def test_every_figure_names_its_source(name):
    """Each line that sets a number carries a comment saying where the number comes from."""
    for number, line in enumerate((REPO / "boards" / f"{name}.toml").read_text().splitlines(), 1):
        code = line.split("#", 1)[0]
        if "=" in code and re.search(r"=\s*[-0-9\[]", code) and re.search(r"\d", code):
            assert "#" in line and len(line.split("#", 1)[1].strip()) > 8, f"{name}.toml:{number} has no source: {line}"


def test_stm32f4_keeps_ccm_apart_from_main_sram():
    board = load_board("stm32f4")
    regions = {r.name: r for r in board.sram}
    assert regions["sram1"].size_bytes == 112 * 1024 and regions["sram2"].size_bytes == 16 * 1024
    assert regions["ccm"].size_bytes == 64 * 1024 and regions["ccm"].origin == 0x1000_0000
    assert board.arena_region.size_bytes == 128 * 1024


def _write_variant(tmp_path: Path, edit) -> Path:
    text = (REPO / "boards" / "stm32f4.toml").read_text()
    path = tmp_path / "stm32f4.toml"
    path.write_text(edit(text))
    return path


@pytest.mark.parametrize(
    "edit, fragments",
    [
        (lambda t: t.replace("clock_hz = ", "clock_hertz = "), ["unknown key 'core.clock_hertz'"]),
        (lambda t: re.sub(r"\nheap_bytes = [^\n]*", "", t), ["missing key 'micropython.heap_bytes'"]),
        (lambda t: t.replace("size_bytes = 1_048_576", 'size_bytes = "1 MB"'), ["flash.size_bytes", "must be int"]),
        (lambda t: t.replace("fraction = 0.70", "fraction = 1.5"), ["budget.fraction"]),
        (lambda t: t.replace('arena_regions = ["sram1", "sram2"]', 'arena_regions = ["sram1", "ccm"]'), ["not contiguous"]),
        (lambda t: t.replace("[repl]", "[rep]"), ["[rep"]),
        (lambda t: t.replace("clock_hz = 168_000_000", "clock_hz = 168_000_000\nclock_hz = 1"), ["not valid TOML"]),
    ],
)
def test_bad_board_file_names_file_and_key(tmp_path, edit, fragments):
    path = _write_variant(tmp_path, edit)
    result = run_hostgen("size", "--board", path, "--model", "nonexistent.tflite")
    assert_user_error(result, str(path), *fragments)


def test_unknown_board_lists_known_ones():
    line = assert_user_error(run_hostgen("size", "--board", "stm32f9"), "unknown board 'stm32f9'")
    for name in REQUIRED_BOARDS:
        assert name in line



@pytest.mark.parametrize("name", board_names())
def test_the_stock_heap_tier_2_runs_in(name):
    """An stm32's stock GC heap fills its RAM region past .data/.bss and the stack (more than the heap tier 1 keeps
    beside a TFLM build's static arena); an ESP32's is its heap figure."""
    from hostgen.codegen.families import family_of

    board = load_board(name)
    stock, micropython = family_of(board).stock_heap_bytes(board), board["micropython"]
    if board.family == "stm32":
        assert stock == board.arena_region.size_bytes - micropython["static_ram_bytes"] - micropython["stack_bytes"]
        assert stock == board.firmware_ram_bytes - micropython["static_ram_bytes"] - micropython["stack_bytes"] + board.budget_sram_bytes
        assert stock > micropython["heap_bytes"]
    else:
        assert stock == micropython["heap_bytes"]
