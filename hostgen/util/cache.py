"""Results cached under build/.cache/, keyed by a hash of everything that made them.

A key folds in the inputs' bytes and the source of the code that computes the result,
so a changed input or a changed algorithm never reuses a stale figure.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import ModuleType

from hostgen.paths import CACHE_DIR
from hostgen.util.atomic import write_atomic


def code_key(*parts: bytes | str | Path | ModuleType) -> str:
    """SHA-256 over the parts: bytes and str as they are, files and modules by their contents."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, ModuleType):
            part = Path(part.__file__)
        if isinstance(part, Path):
            part = part.read_bytes()
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()


def cache_path(kind: str, key: str, suffix: str) -> Path:
    return CACHE_DIR / kind / f"{key}{suffix}"


def cached_json(kind: str, key: str, compute):
    """The JSON value stored under (kind, key), computed and stored first if absent."""
    path = cache_path(kind, key, ".json")
    if path.is_file():
        return json.loads(path.read_text())
    value = compute()
    write_atomic(path, json.dumps(value))
    return value


def cached_bytes(kind: str, key: str, suffix: str, compute) -> Path:
    """The path of the file stored under (kind, key), made by `compute() -> bytes` first if absent."""
    path = cache_path(kind, key, suffix)
    if not path.is_file():
        write_atomic(path, compute())
    return path
