"""A temporary directory that belongs to one object and goes with it."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


class WorkDirectory:
    """Owns `self.workdir`, a fresh temporary directory removed by close() (or at the end of a `with`)."""

    def __init__(self, prefix: str):
        self.workdir = Path(tempfile.mkdtemp(prefix=prefix))

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
