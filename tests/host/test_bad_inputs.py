"""Bad host inputs, as a table: each is one `hostgen:` line naming the bad value, a non-zero
exit, and the previous build left byte-identical."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from helpers import REPO, app_with, assert_user_error, run_hostgen, run_in_process

from hostgen.board.packets import encode
from hostgen.config.board import load_board

BOARD = "esp32"


def board_variant(tmp_path: Path, old: str, new: str) -> Path:
    text = (REPO / "boards" / f"{BOARD}.toml").read_text()
    assert old in text
    path = tmp_path / "variant" / f"{BOARD}.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text.replace(old, new, 1))
    return path


def app(tmp_path, **changes):
    return ["--app", app_with(tmp_path, **changes)]


def board(tmp_path, old, new):
    return ["--board", board_variant(tmp_path, old, new)]


def renamed_model(tmp_path, reference, name):
    path = tmp_path / name
    shutil.copy(reference, path)
    return ["--model", path]


def packets_file(tmp_path):
    path = tmp_path / "gateway.bin"
    path.write_bytes(encode("HEARTBEAT", 1, 3, 5000, uptime_ms=5000, heap_free=20000))
    return path


def text_npy(tmp_path):
    path = tmp_path / "recording.npy"
    path.write_text("time,value\n0,12\n1,13\n")
    return path


# (case, the `hostgen gen` arguments that replace the good ones, or another command, words the message must have)
GEN_CASES = {
    "rate_hz 1e8": (lambda t, r: app(t, rate_hz="100_000_000"), ["sampling.rate_hz", "1 to 50000"]),
    "stopband inf": (lambda t, r: app(t, stopband_db="inf"), ["filter.stopband_db", "inf"]),
    "remez ripple inf": (lambda t, r: app(t, passband_ripple_db="inf", design='"remez"'), ["filter.passband_ripple_db"]),
    "remez ripple 1e4": (lambda t, r: app(t, passband_ripple_db="1e4", design='"remez"'), ["filter.passband_ripple_db"]),
    "transition nan": (lambda t, r: app(t, transition_hz="nan"), ["filter.transition_hz"]),
    "normal_windows 1e9": (lambda t, r: app(t, normal_windows="1_000_000_000"), ["fallback.normal_windows", "100 to 50000"]),
    "baseline_margin 1": (lambda t, r: app(t, baseline_margin="1.0"), ["fallback.baseline_margin", "1.0", "use 0 to 0.99"]),
    "gateway_baud 0": (lambda t, r: board(t, "gateway_baud = 115_200", "gateway_baud = 0"), ["io.gateway_baud", "is 0"]),
    "clock_hz 0": (lambda t, r: board(t, "clock_hz = 160_000_000", "clock_hz = 0"), ["core.clock_hz"]),
    "cache line 2**30": (lambda t, r: board(t, "cache_line_bytes = 32", "cache_line_bytes = 1073741824"), ["core.cache_line_bytes"]),
    "flash 2**63": (lambda t, r: board(t, "size_bytes = 4_194_304", "size_bytes = 9223372036854775807"), ["32-bit address space"]),
    "sram size 0": (lambda t, r: board(t, "size_bytes = 124_580", "size_bytes = 0"), ["size_bytes is 0"]),
    "name modèle": (lambda t, r: ["--name", "modèle"], ["use --name mod_le"]),
    "name of 5000": (lambda t, r: ["--name", "a" * 5000], [f"use --name {'a' * 63}", "5000 characters"]),
    "model my model ü": (lambda t, r: renamed_model(t, r, "my model ü.tflite"), ["use --name my_model"]),
    "model a directory": (lambda t, r: ["--model", t], ["is a directory"]),
    "garbage .keras": (lambda t, r: ["--model", garbage_keras(t)], ["is not a Keras model"]),
}
OTHER_CASES = {
    "decode a directory": (lambda t: ["decode", t], ["is a directory"]),
    "monitor --seconds -1": (lambda t: ["monitor", "--port", packets_file(t), "--seconds", "-1"], ["--seconds -1"]),
    "monitor --save unwritable": (lambda t: ["monitor", "--port", packets_file(t), "--save", t / "no" / "such" / "x"], ["cannot write"]),
    "diag set abc": (lambda t: ["diag", "--port", t / "none", "set", "rms.fault", "abc"], ["value 'abc' is not an integer"]),
    "recording not NumPy": (lambda t: ["filter", "--board", BOARD, "--in", text_npy(t), "--out", t / "y.npy"], ["not a NumPy"]),
}
VBOARD_CASES = ["normal:-5", "normal:nan", "normal:1e9"]


def garbage_keras(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"not a zip" * 100)
    return path


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def previous_build(tmp_path_factory, gen_build, reference_tflite):
    out = tmp_path_factory.mktemp("previous") / BOARD
    shutil.copytree(gen_build(BOARD, "--model", reference_tflite), out)
    return out


@pytest.mark.parametrize("case", list(GEN_CASES))
def test_bad_gen_input_is_one_line_and_keeps_the_build(case, tmp_path, previous_build, reference_tflite):
    before = tree_digest(previous_build)
    make, words = GEN_CASES[case]
    extra = [str(a) for a in make(tmp_path, reference_tflite)]
    args = ["gen", "--board", BOARD, "--model", str(reference_tflite), "--out", str(previous_build)]
    for option in ("--board", "--model"):  # a case's own --board/--model replaces the good one
        if option in extra:
            at = args.index(option)
            del args[at:at + 2]
    assert_user_error(run_in_process(*args, *extra), *words)
    assert tree_digest(previous_build) == before, "the previous build changed"
    assert sorted(p.name for p in previous_build.parent.iterdir() if p.name != f".{BOARD}.lock") == [BOARD]


@pytest.mark.parametrize("case", list(OTHER_CASES))
def test_bad_input_to_other_commands_is_one_line(case, tmp_path):
    make, words = OTHER_CASES[case]
    assert_user_error(run_in_process(*make(tmp_path)), *words)


@pytest.mark.parametrize("spec", VBOARD_CASES)
def test_bad_vboard_scenario_is_one_line(spec, tmp_path):
    result = run_hostgen("vboard", "--board", BOARD, "--link", tmp_path / "r", "--gateway", tmp_path / "g", "--scenario", spec, timeout=60)
    assert_user_error(result, "scenario item")
    assert not (tmp_path / "r").exists()


def test_a_fraction_of_1_is_a_valid_board_figure(tmp_path):
    assert load_board(board_variant(tmp_path, "fraction = 0.70", "fraction = 1")).budget_bytes() > 0
