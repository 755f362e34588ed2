"""Fixtures shared by every test tier."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Board builds and calibrations of a test run go to a directory of their own, so the
# developer's build/ (and any calibration in it) neither leaks in nor gets overwritten.
os.environ["HOSTGEN_BUILD_DIR"] = tempfile.mkdtemp(prefix="faultline-test-build-")

from helpers import run_hostgen  # noqa: E402  (after the environment is set)


def pytest_addoption(parser):
    group = parser.getgroup("hil", "hardware in the loop (tests/hil)")
    group.addoption("--port", help="a real board's REPL serial port; without it the HIL tests start a virtual board")
    group.addoption("--gateway", help="the real board's gateway (packet) serial port")
    group.addoption("--baud", type=int, default=115_200, help="REPL baud rate (default 115200)")
    group.addoption("--hil-board", default="stm32f4", help="the board under test: boards/<name>.toml (default stm32f4)")
    faults = parser.getgroup("faults", "fault injection (power loss, garbage files)")
    faults.addoption("--runs", type=int, help="runs per fault-injection test (the long version: --runs 100); default each test's CI size")


def pytest_collection_modifyitems(items):
    """A test that builds the model zoo (TensorFlow) is slow, whatever its file says."""
    for item in items:
        if "zoo" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(os.environ["HOSTGEN_BUILD_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def reference_tflite() -> Path:
    """The reference int8 model (trained once and cached in build/reference/)."""
    result = run_hostgen("train")
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


@pytest.fixture(scope="session")
def gen_build(tmp_path_factory):
    """gen_build(board, *options) -> the directory `hostgen gen --board BOARD *options` wrote, each request built once a session.

    Tests share these builds and only read them: one that writes into a build copies it first (shutil.copytree).
    """
    root = tmp_path_factory.mktemp("shared_builds")
    built: dict[tuple[str, ...], Path] = {}

    def build(board: str, *options) -> Path:
        request = (board, *map(str, options))
        if request not in built:
            out = root / str(len(built)) / board
            result = run_hostgen("gen", "--board", *request, "--out", out)
            assert result.returncode == 0, result.stderr
            built[request] = out
        return built[request]

    return build


@pytest.fixture
def runs(pytestconfig):
    """How many runs a fault-injection test makes: --runs, else the test's own CI-sized default."""
    return lambda default: pytestconfig.getoption("runs") or default
