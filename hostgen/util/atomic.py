"""Files that appear whole or not at all, even across a crash or a power cut."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import shutil
import tempfile
from pathlib import Path

from hostgen.errors import HostgenError

AT_FDCWD = -100
RENAME_EXCHANGE = 2


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


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    exchange = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if exchange is None:
        return False
    if exchange(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), str(second))


def _recover(out: Path) -> None:
    """Put back a build that a swap cut short left retired, and remove what cut-short runs left beside `out`."""
    retired = sorted(out.parent.glob(f".{out.name}.old-*/{out.name}"), key=lambda path: path.stat().st_mtime)
    if retired and not out.exists():
        os.rename(retired[-1], out)
    for stale in [*out.parent.glob(f".{out.name}.staging-*"), *out.parent.glob(f".{out.name}.old-*")]:
        shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def _exclusive(out: Path):
    """One swap of `out` at a time, so that one run's recovery never takes another's staging directory."""
    with open(out.parent / f".{out.name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def staged_directory(out: Path):
    """Yield an empty staging directory beside `out`; on success it replaces `out` whole.

    Killed at any moment, `out` is the old build or the new one, never missing or part of
    one: the swap is one renameat2(RENAME_EXCHANGE). Where the system has no exchange, the
    two renames' window is closed by the next run, which puts the retired build back.
    """
    out = out.resolve()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive(out):
            _recover(out)
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
        with _exclusive(out):
            if not out.exists():
                os.rename(staging, out)
            elif _exchange(staging, out):
                shutil.rmtree(staging)  # it holds the old build now
            else:
                retired = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
                os.rename(out, retired / out.name)
                os.rename(staging, out)
                shutil.rmtree(retired)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
