"""Helpers shared by every test tier: run the CLI as a user would, check its errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hostgen.config.app import DEFAULT_APP
from hostgen.config.board import board_names

REPO = Path(__file__).resolve().parent.parent


def run_hostgen(*args: str, cwd: Path = REPO, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real CLI in its own process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "hostgen", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def run_in_process(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI in this process (for argument and error checks that need no isolation): same result shape."""
    import contextlib
    import io

    from hostgen.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exit_:  # --help, and argparse's own exits
            code = exit_.code or 0
    return subprocess.CompletedProcess(["hostgen", *args], code, out.getvalue(), err.getvalue())


def assert_runs_without_tensorflow(*args: str) -> None:
    """The CLI command completes and never imports TensorFlow (it takes seconds and a GB)."""
    script = (
        "import sys\nfrom hostgen.cli import main\n"
        f"code = main({[str(a) for a in args]!r})\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\nsys.exit(code)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def assert_user_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """A user error is one `hostgen:` line on stderr, a non-zero exit and no traceback."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert lines and lines[-1].startswith("hostgen: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]
    return lines[-1]


def app_with(tmp_path: Path, name: str = "app", **changes: str) -> Path:
    """The default app config with some `key = value` lines replaced."""
    lines = []
    for line in DEFAULT_APP.read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        lines.append(f"{key} = {changes.pop(key)}" if key in changes and "=" in line else line)
    extra = "\n".join(f"{k} = {v}" for k, v in changes.items())
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


FAST_TIER_BOARD = "stm32f4"


def every_board_one_in_the_fast_tier(names: list[str] | None = None) -> list:
    """Every board (or those in `names`) as a parameter, all but FAST_TIER_BOARD marked slow: `make test-fast` checks one board, `make test` all."""
    return [name if name == FAST_TIER_BOARD else pytest.param(name, marks=pytest.mark.slow) for name in names or board_names()]


class LazyBuilds(dict):
    """key -> make(key), made the first time a test asks for it: the fast tier builds only the boards it checks."""

    def __init__(self, make):
        super().__init__()
        self._make = make

    def __missing__(self, key):
        self[key] = self._make(key)
        return self[key]
