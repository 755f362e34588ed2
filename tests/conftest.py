"""Fixtures shared by every test tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import run_hostgen


@pytest.fixture(scope="session")
def reference_tflite() -> Path:
    """The reference int8 model (trained once and cached in build/reference/)."""
    result = run_hostgen("train")
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())
