"""HIL fixtures, the chain a person uses on the floor: port -> serial -> board.

The port comes from the test's parametrization (indirect), else --port, else a virtual
board started for the session. Everything else talks to whatever is on that port through
real pyserial and mpremote, so the same tests run against a real board.
"""

from __future__ import annotations

import pytest
import serial
from hil_support import SCENARIO, hostgen

from hostgen.board.vboard import VirtualBoardProcess
from hostgen.config.board import load_board


@pytest.fixture(scope="session")
def board_name(pytestconfig) -> str:
    return pytestconfig.getoption("hil_board")


@pytest.fixture(scope="session")
def virtual_board(board_name, tmp_path_factory):
    with VirtualBoardProcess(board_name, tmp_path_factory.mktemp("vboard"), SCENARIO) as vboard:
        yield vboard


@pytest.fixture(scope="session")
def port(request, pytestconfig) -> str:
    parametrized = getattr(request, "param", None)
    return parametrized or pytestconfig.getoption("port") or str(request.getfixturevalue("virtual_board").repl)


@pytest.fixture(scope="session")
def is_virtual(pytestconfig) -> bool:
    return not pytestconfig.getoption("port")


@pytest.fixture(scope="session")
def gateway(request, pytestconfig, is_virtual) -> str:
    if is_virtual:
        return str(request.getfixturevalue("virtual_board").gateway)
    if not pytestconfig.getoption("gateway"):
        pytest.skip("needs the board's packet port: pass --gateway /dev/ttyUSBn (the gateway UART's USB adapter)")
    return pytestconfig.getoption("gateway")


@pytest.fixture
def serial_port(port, pytestconfig):
    with serial.Serial(port, pytestconfig.getoption("baud"), timeout=0.2) as link:
        yield link


@pytest.fixture(scope="session")
def flashed(port, board_name) -> str:
    """The board, flashed with this build (the flash's own checks are the first HIL test)."""
    result = hostgen("flash", "--board", board_name, "--port", port)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="session")
def board(board_name):
    return load_board(board_name)
