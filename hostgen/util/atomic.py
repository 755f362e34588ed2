"""Files that appear whole or not at all, even across a crash or a power cut."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from hostgen.errors import HostgenError


@contextlib.contextmanager
def atomic_path(target: Path):
    """Yield a temporary path beside `target`; on success it replaces `target`, on failure it is removed."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial" + target.suffix, dir=target.parent)
    os.close(handle)
    partial = Path(name)
    try:
        yield partial
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def write_atomic(target: Path, data: bytes | str) -> None:
    """Write `data` to `target` so that readers see the old file or the new one, never a part."""
    with atomic_path(target) as partial:
        partial.write_bytes(data.encode() if isinstance(data, str) else data)


@contextlib.contextmanager
def staged_directory(out: Path):
    """Yield an empty staging directory beside `out`; on success it replaces `out` whole."""
    out = out.resolve()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=out.parent))
        umask = os.umask(0o022)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)
    except OSError as exc:
        raise HostgenError(
            f"output directory {out} is not writable ({exc.strerror}); choose another with --out"
        ) from None
    try:
        try:
            yield staging
        except OSError as exc:
            raise HostgenError(f"cannot write the build into {out}: {exc.strerror}; free space or choose another --out") from None
        if out.exists() and not out.is_dir():
            raise HostgenError(f"output path {out} exists and is not a directory; remove it or choose another --out")
        if out.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, retired / out.name)
            os.rename(staging, out)
            shutil.rmtree(retired)
        else:
            os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
