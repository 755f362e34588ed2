"""The CLI's contract: a table of commands, one error form, help for each."""

from __future__ import annotations

import pytest
from helpers import assert_user_error, run_hostgen, run_in_process

from hostgen.cli import COMMANDS


def test_no_command_is_a_user_error():
    assert_user_error(run_hostgen(), "command")


def test_unknown_command_is_a_user_error():
    assert_user_error(run_in_process("frobnicate"), "frobnicate", "see 'hostgen --help'")


def test_unknown_option_is_a_user_error():
    assert_user_error(run_in_process("size", "--board", "stm32f4", "--colour"), "--colour", "see 'hostgen size --help'")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command):
    result = run_in_process(command, "--help")
    assert result.returncode == 0 and command in result.stdout


def test_boards_lists_every_board():
    result = run_hostgen("boards")
    assert result.returncode == 0
    assert all(name in result.stdout for name in ("esp32", "esp32s3", "stm32f4", "nucleo_f446re", "nucleo_f401re"))


@pytest.mark.parametrize("what, fragment", [(["set", "rms.fault", "abc"], "value 'abc' is not an integer"),
                                            (["set", "rms.fault", "12", "x"], "channel 'x' is not an integer")])
def test_diag_set_with_a_non_integer_names_it(what, fragment):
    from hostgen.cli.diag import board_call
    from hostgen.errors import HostgenError

    with pytest.raises(HostgenError, match=fragment):
        board_call(what)


def test_diag_help_says_how_to_reach_a_running_board():
    assert "resume" in run_in_process("diag", "--help").stdout
