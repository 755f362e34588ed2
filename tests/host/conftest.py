"""Host-tier fixtures: the test model zoo, built once per session with real TensorFlow."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def zoo(tmp_path_factory) -> dict[str, Path]:
    from model_zoo import build_zoo

    return build_zoo(tmp_path_factory.mktemp("zoo"))
