"""The one TOML reader, and the schema check every config file (board, app, limits) goes through."""

from __future__ import annotations

import tomllib
from pathlib import Path

from hostgen.errors import HostgenError


def read_toml(path: Path, what: str) -> dict:
    """A TOML file's tables; an unreadable or invalid file is a one-line error naming it."""
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise HostgenError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise HostgenError(f"{what} {path} is not valid TOML: {exc}") from None


def _type_ok(value, expected: str) -> bool:
    if expected == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "float":
        return isinstance(value, float)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "str":
        return isinstance(value, str) and value != ""
    item = expected[5:-1]
    return isinstance(value, list) and len(value) > 0 and all(_type_ok(v, item) for v in value)


def check_table(path: Path, where: str, table: dict, schema: dict[str, str], tables: tuple[str, ...] = ()) -> None:
    """Every key of `schema` present with its type, and no other key but the sub-`tables` named."""
    prefix = f"{where}." if where else ""
    for key in table:
        if key not in schema and key not in tables:
            allowed = ", ".join(sorted(schema) + [f"[{name}]" for name in tables])
            raise HostgenError(f"{path}: unknown key '{prefix}{key}' (allowed here: {allowed})")
    for key, expected in schema.items():
        if key not in table:
            raise HostgenError(f"{path}: missing key '{prefix}{key}' ({expected})")
        if not _type_ok(table[key], expected):
            raise HostgenError(
                f"{path}: key '{prefix}{key}' must be {expected}, got {table[key]!r}"
            )
        if expected == "int" and table[key] < 0:
            raise HostgenError(f"{path}: key '{prefix}{key}' must not be negative, got {table[key]}")
